-- A different ?filter= on every request that every instance matches (a port none has
-- is excluded), so each answer is the whole list read and rendered anew: the cold path of
-- the unfiltered read, plus one cheap filter test per instance.
local n = 0
request = function()
  n = n + 1
  local filter = 'Service.Port != ' .. tostring(n)
  local encoded = filter:gsub("[^%w%-%._~]", function(c)
    return string.format("%%%02X", string.byte(c))
  end)
  return wrk.format("GET", "/v1/health/service/web?filter=" .. encoded)
end
