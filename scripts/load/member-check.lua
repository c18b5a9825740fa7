-- wrk script: POST /v1/permissions/check of app/project:PROJECT#get@app/user:u<N>, each user
-- once (N distinct across the two threads, from CHECK_FROM), at least as fresh as ZEDTOKEN:
-- the first check of members just added through the facade.
local key = os.getenv("ZANZI_KEY") or ""
local project = os.getenv("PROJECT") or ""
local zedtoken = os.getenv("ZEDTOKEN") or ""
local from = tonumber(os.getenv("CHECK_FROM") or "0")
local threads = 0
setup = function(thread)
  thread:set("tid", threads)
  threads = threads + 1
end
local n = -1
request = function()
  n = n + 1
  local user = from + n * 2 + tid
  local body = string.format('{"consistency":{"atLeastAsFresh":{"token":"%s"}},"resource":{"objectType":"app/project","objectId":"%s"},"permission":"get","subject":{"object":{"objectType":"app/user","objectId":"u%d"}}}', zedtoken, project, user)
  return wrk.format("POST", "/v1/permissions/check", {["Authorization"] = "Bearer " .. key, ["Content-Type"] = "application/json"}, body)
end
