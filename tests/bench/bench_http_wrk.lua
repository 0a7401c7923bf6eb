-- bench_http_wrk.lua - wrk script for the closed-loop maximum of POST /v1/score (docs/api.md).
counter = 0
request = function()
  counter = counter + 1
  local body = string.format('{"id":"w%d-%d","account":"acct-%d","ts":%d,"amount":12.5,"merchant":"m-%d","card":"card-%d"}', math.random(1,1e9), counter, counter % 10000, 1767225600000 + counter * 10, counter % 97, counter % 10000)
  return wrk.format("POST", "/v1/score", {["Content-Type"]="application/json"}, body)
end
