-- wrk script for scripts/bench-verifier.sh: each request presents one key from KEYS_FILE
-- (round robin, as Authorization: Bearer) for METHOD and URI_PATH, as nginx auth_request would,
-- with the client's address in X-Forwarded-For (the verifier trusts 127.0.0.1; the stored
-- keys are limited to networks holding 203.0.113.9).
local keys = {}
local i = 0
local method = os.getenv("METHOD") or "GET"
local path = os.getenv("URI_PATH") or "/v1/reports/2026"

function init(args)
  for line in io.lines(os.getenv("KEYS_FILE")) do
    keys[#keys + 1] = line
  end
end

function request()
  i = i % #keys + 1
  return wrk.format("GET", "/auth", {
    ["Authorization"] = "Bearer " .. keys[i],
    ["X-Original-Method"] = method,
    ["X-Original-URI"] = path,
    ["X-Forwarded-For"] = "203.0.113.9",
  })
end
