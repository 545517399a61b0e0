-- wrk script: create keys for many organisations (one bearer token per line of
-- $TOKENS_FILE, used in turn) until $LIMIT keys (default 100000) were captured,
-- appending each private key to $OUT_FILE.
local tokens = {}
local next_token = 1
local captured = 0
local limit = tonumber(os.getenv("LIMIT") or "100000")
local out

function init(args)
  for line in io.lines(os.getenv("TOKENS_FILE")) do
    table.insert(tokens, line)
  end
  out = io.open(os.getenv("OUT_FILE"), "a")
end

function request()
  local token = tokens[next_token]
  next_token = next_token % #tokens + 1
  return wrk.format("POST", "/api/v2/api-keys",
    { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token }, '{"name":"memory"}')
end

function response(status, headers, body)
  if status == 201 then
    local key = string.match(body, '"private_key":"(sk_[%w_]+)"')
    if key then
      out:write(key, "\n")
      captured = captured + 1
      if captured >= limit then
        out:flush()
        wrk.thread:stop()
      end
    end
  end
end
