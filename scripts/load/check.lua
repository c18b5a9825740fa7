-- wrk script: POST a check of doc:N#view@user:ann, N cycling over 1000 documents.
local key = os.getenv("ZANZI_KEY") or ""
local n = 0
request = function()
  n = (n + 1) % 1000
  local body = string.format('{"resource":{"objectType":"doc","objectId":"d%d"},"permission":"view","subject":{"object":{"objectType":"user","objectId":"ann"}}}', n)
  return wrk.format("POST", "/v1/permissions/check", {["Authorization"] = "Bearer " .. key, ["Content-Type"] = "application/json"}, body)
end
