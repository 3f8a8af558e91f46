-- wrk script: every request registers a new node with one service through
-- PUT /v1/catalog/register, i.e. one Raft commit per request.
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

function init(args)
  n = 0
end

function request()
  n = n + 1
  local id = tostring(tid) .. "-" .. tostring(n)
  local body = '{"Node":"bench-' .. id .. '","Address":"192.0.2.1",' ..
    '"Service":{"Service":"bench","ID":"bench-' .. id .. '","Port":80}}'
  return wrk.format("PUT", "/v1/catalog/register", {["Content-Type"] = "application/json"}, body)
end
