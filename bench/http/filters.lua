-- A different ?filter= on every request (Service.Meta.env == "qa" and a port no instance
-- has), so no answer is reused: every request pays the read, the filter and the render.
local n = 0
request = function()
  n = n + 1
  local filter = 'Service.Meta.env == "qa" and Service.Port != ' .. tostring(n)
  local encoded = filter:gsub("[^%w%-%._~]", function(c)
    return string.format("%%%02X", string.byte(c))
  end)
  return wrk.format("GET", "/v1/health/service/web?filter=" .. encoded)
end
