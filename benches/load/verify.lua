-- wrk script: POST /api/v2/api-keys/verify. With KEYS_FILE set, each request
-- presents the next key of that file (distinct keys: cache misses); otherwise
-- every request presents $KEY (one key: cache hits). VERIFY_PATH overrides the
-- path (the ceiling server serves /verify). DELAY_MS paces each connection.
-- PERMISSIONS adds that permission query to every request. RANDOM_KEYS=1 picks each
-- request's key from KEYS_FILE at random instead of in order. TAGS=fixed sends
-- two tags with every request; TAGS=random two tags drawn from 200 x 4 values
-- (usage analytics: distinct tag sets per key and minute).
local keys = {}
local next_key = 1
local path = os.getenv("VERIFY_PATH") or "/api/v2/api-keys/verify"
local delay_ms = tonumber(os.getenv("DELAY_MS") or "0")
local permissions = os.getenv("PERMISSIONS")
local random = os.getenv("RANDOM_KEYS") == "1"
local extra = permissions and (',"permissions":"' .. permissions .. '"') or ""
local tags = os.getenv("TAGS")
local regions = { "eu", "us", "ap", "sa" }
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  not_valid = 0
  math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)"), 16) % 100000)
  local file = os.getenv("KEYS_FILE")
  if file then
    for line in io.lines(file) do
      table.insert(keys, line)
    end
  else
    keys = { os.getenv("KEY") }
  end
end

function request()
  local key
  if random then
    key = keys[math.random(#keys)]
  else
    key = keys[next_key]
    next_key = next_key + 1
    if next_key > #keys then next_key = 1 end
  end
  local tagged = ""
  if tags == "fixed" then
    tagged = ',"tags":["path=/v1/charges","region=eu"]'
  elseif tags == "random" then
    tagged = ',"tags":["path=/v1/r' .. math.random(200) .. '","region=' .. regions[math.random(4)] .. '"]'
  end
  return wrk.format("POST", path, { ["Content-Type"] = "application/json" },
    '{"key":"' .. key .. '"' .. extra .. tagged .. '}')
end

function delay()
  return delay_ms
end

function response(status, headers, body)
  if status ~= 200 or not string.find(body, '"VALID"', 1, true) then
    not_valid = not_valid + 1
  end
end

function done(summary, latency, requests)
  local bad = 0
  for _, thread in ipairs(threads) do
    bad = bad + thread:get("not_valid")
  end
  io.write(string.format("not VALID: %d\n", bad))
  for _, p in ipairs({50, 90, 99, 99.9}) do
    io.write(string.format("p%s latency: %.2f ms\n", p, latency:percentile(p) / 1000))
  end
end
