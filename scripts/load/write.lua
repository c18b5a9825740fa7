-- wrk script: POST a write touching one new relationship per request (ids from a per-thread counter).
local key = os.getenv("ZANZI_KEY") or ""
local n = 0
local thread_id = 0
setup = function(thread)
  thread:set("tid", thread_id)
  thread_id = thread_id + 1
end
request = function()
  n = n + 1
  local body = string.format('{"updates":[{"operation":"OPERATION_TOUCH","relationship":{"resource":{"objectType":"doc","objectId":"w%s_%d"},"relation":"viewer","subject":{"object":{"objectType":"user","objectId":"ann"}}}}]}', tostring(tid), n)
  return wrk.format("POST", "/v1/relationships/write", {["Authorization"] = "Bearer " .. key, ["Content-Type"] = "application/json"}, body)
end
