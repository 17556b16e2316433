-- wrk script used by bench/run.ts: POST a fixed body (read from a file, binary-safe) and print
-- a machine-readable summary. Configured through the environment:
--   BENCH_BODY_FILE       path of the request body (required)
--   BENCH_CONTENT_TYPE    Content-Type header (default application/json)
--   BENCH_HEADERS         extra headers, one "Name: value" per line
--   BENCH_PROGRESS_EVERY  when > 0, write "PROGRESS <n>" to stderr every n responses (per thread;
--                         run with -t 1 for exact counts). Defining response() makes wrk parse
--                         each response through Lua, so only the memory run turns it on.

local body_file = os.getenv("BENCH_BODY_FILE")
assert(body_file, "BENCH_BODY_FILE is not set")
local f = assert(io.open(body_file, "rb"))
local body = f:read("*a")
f:close()

wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = os.getenv("BENCH_CONTENT_TYPE") or "application/json"
local extra = os.getenv("BENCH_HEADERS") or ""
for line in extra:gmatch("[^\n]+") do
  local k, v = line:match("^%s*([^:]+):%s*(.-)%s*$")
  if k then wrk.headers[k] = v end
end

local every = tonumber(os.getenv("BENCH_PROGRESS_EVERY") or "0") or 0
if every > 0 then
  local n = 0
  function response(status, headers, resp_body)
    n = n + 1
    if n % every == 0 then
      io.stderr:write("PROGRESS " .. n .. "\n")
      io.stderr:flush()
    end
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
