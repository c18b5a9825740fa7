-- wrk script: add one new member per request to the facade group GROUP of org ORG
-- (`POST /v1beta1/organizations/ORG/groups/GROUP/users`), users u<N> with N distinct across
-- threads and connections; ADD_FROM (default 0) is the first index. Set TOKEN to a JWT of the
-- group's owner.
local token = os.getenv("TOKEN") or ""
local path = "/v1beta1/organizations/" .. (os.getenv("ORG") or "") .. "/groups/" .. (os.getenv("GROUP") or "") .. "/users"
local from = tonumber(os.getenv("ADD_FROM") or "0")
local threads = 0
setup = function(thread)
  thread:set("tid", threads)
  threads = threads + 1
end
local n = -1
request = function()
  n = n + 1
  local user = from + n * 2 + tid
  return wrk.format("POST", path, {["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json"},
    string.format('{"userIds":["u%d"]}', user))
end
