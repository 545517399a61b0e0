-- wrk script: create keys and append each returned private key to $OUT_FILE
-- (one per line), so later runs can present many distinct real keys.
wrk.method = "POST"
wrk.path = "/api/v2/api-keys"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("TOKEN")
wrk.body = '{"name":"bench"}'
local out

function init(args)
  out = io.open(os.getenv("OUT_FILE"), "a")
  non_201 = 0
end

function response(status, headers, body)
  if status == 201 then
    local key = string.match(body, '"private_key":"(sk_[%w_]+)"')
    if key then out:write(key, "\n") out:flush() end
  else
    non_201 = non_201 + 1
  end
end
