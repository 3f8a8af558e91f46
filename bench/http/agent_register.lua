-- wrk script: every request registers a new service with the local agent
-- (PUT /v1/agent/service/register): validated, persisted to the data dir (fsync),
-- then carried into the catalog by anti-entropy.
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
  local body = '{"Name":"agentbench","ID":"agentbench-' .. id .. '","Port":80}'
  return wrk.format("PUT", "/v1/agent/service/register", {["Content-Type"] = "application/json"}, body)
end
