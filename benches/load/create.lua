-- wrk script: POST /api/v2/api-keys with a bearer token from $TOKEN, and count
-- every non-201 answer so a run with errors cannot pass for a fast one.
wrk.method = "POST"
wrk.path = "/api/v2/api-keys"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("TOKEN")
wrk.body = '{"name":"load-test","description":"created by benches/load/create.lua"}'

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  non_201 = 0
end

function response(status, headers, body)
  if status ~= 201 then
    non_201 = non_201 + 1
  end
end

function done(summary, latency, requests)
  local bad = 0
  for _, thread in ipairs(threads) do
    bad = bad + thread:get("non_201")
  end
  io.write(string.format("non-201 responses: %d\n", bad))
  for _, p in ipairs({50, 90, 99, 99.9}) do
    io.write(string.format("p%s latency: %.2f ms\n", p, latency:percentile(p) / 1000))
  end
end
