-- wrk script: POST /v1/permissions/check of app/project:PROJECT#get@app/user:u<N> at least as
-- fresh as ZEDTOKEN, for N in CHECK_FROM .. CHECK_FROM+CHECK_COUNT-1 (spread over the two
-- threads). Each thread stops after its share of CHECK_COUNT answers, so every user is checked
-- about once: the first check of members just added through the facade (a few requests still
-- in flight at the stop wrap around to users already checked).
local key = os.getenv("ZANZI_KEY") or ""
local project = os.getenv("PROJECT") or ""
local zedtoken = os.getenv("ZEDTOKEN") or ""
local from = tonumber(os.getenv("CHECK_FROM") or "0")
local count = tonumber(os.getenv("CHECK_COUNT") or "1000")
local threads = 0
setup = function(thread)
  thread:set("tid", threads)
  threads = threads + 1
end
local n = -1
local answered = 0
request = function()
  n = n + 1
  local user = from + ((n * 2 + tid) % count)
  local body = string.format('{"consistency":{"atLeastAsFresh":{"token":"%s"}},"resource":{"objectType":"app/project","objectId":"%s"},"permission":"get","subject":{"object":{"objectType":"app/user","objectId":"u%d"}}}', zedtoken, project, user)
  return wrk.format("POST", "/v1/permissions/check", {["Authorization"] = "Bearer " .. key, ["Content-Type"] = "application/json"}, body)
end
response = function(status, headers, body)
  answered = answered + 1
  if answered >= count / 2 then
    wrk.thread:stop()
  end
end
