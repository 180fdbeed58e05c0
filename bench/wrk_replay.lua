-- wrk script for the Refairn benchmarks (bench/harness.py writes the request file).
--
-- Each request is sent once, in file order: the file holds pre-generated, complete HTTP requests
-- (unique event ids, fresh signatures), each record "<length>\n<bytes>". BENCH_CYCLE=1 starts
-- again at the top when the file runs out (duplicates runs); otherwise the thread stops and the
-- run is flagged "exhausted". done() prints one JSON line that the harness parses.

local path = os.getenv("BENCH_REQUESTS")
local cycle = os.getenv("BENCH_CYCLE") == "1"
local requests = {}
local count = 0
local index = 0
local threads = {}

-- Globals, so done() can read them from every thread with thread:get().
non2xx = 0
exhausted = 0
status_text = ""
local statuses = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  local file = assert(io.open(path, "rb"))
  local data = file:read("*a")
  file:close()
  local pos = 1
  local size = #data
  while pos <= size do
    local newline = data:find("\n", pos, true)
    local length = tonumber(data:sub(pos, newline - 1))
    count = count + 1
    requests[count] = data:sub(newline + 1, newline + length)
    pos = newline + length + 1
  end
end

function request()
  index = index + 1
  if index > count then
    if cycle then
      index = 1
    else
      exhausted = 1
      wrk.thread:stop()
      index = count
    end
  end
  return requests[index]
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    statuses[status] = (statuses[status] or 0) + 1
    local parts = {}
    for code, n in pairs(statuses) do
      table.insert(parts, code .. ":" .. n)
    end
    status_text = table.concat(parts, ",")
  end
end

function done(summary, latency, requests)
  local bad, out, text = 0, 0, {}
  for _, thread in ipairs(threads) do
    bad = bad + thread:get("non2xx")
    out = out + thread:get("exhausted")
    local s = thread:get("status_text")
    if s ~= "" then table.insert(text, s) end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"timeout":%d,' ..
    '"non2xx":%d,"exhausted":%d,"p50_us":%d,"p99_us":%d,"p999_us":%d,"max_us":%d,"mean_us":%.1f,' ..
    '"statuses":"%s"}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.timeout, bad, out,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9), latency.max, latency.mean,
    table.concat(text, ",")))
end
