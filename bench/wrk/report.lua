-- wrk script: send the request named by the environment (method, body file, content type,
-- more headers), optionally pacing each connection (WRK_THINK_MS),
-- and print the run's figures as one JSON line at the end (latency in microseconds).
local method = os.getenv("WRK_METHOD") or "GET"
local body_file = os.getenv("WRK_BODY_FILE")
wrk.method = method
if body_file then
  local f = assert(io.open(body_file, "rb"))
  wrk.body = f:read("*a")
  f:close()
  wrk.headers["Content-Type"] = os.getenv("WRK_CONTENT_TYPE") or "application/json"
end
-- More headers, "Name: value" separated by newlines (v2's Inference-Header-Content-Length).
for line in (os.getenv("WRK_HEADERS") or ""):gmatch("[^\n]+") do
  local name, value = line:match("^([^:]+):%s*(.*)$")
  if name then wrk.headers[name] = value end
end

-- Pacing: each connection waits a random time, uniform on [0, 2 * WRK_THINK_MS]
-- milliseconds, before each request, so that many connections together send at a steady
-- rate with random gaps, as independent clients would. wrk takes whole milliseconds: adding
-- a uniform [0, 1) before rounding down keeps the mean at WRK_THINK_MS exactly. Defined
-- only when asked: wrk takes a timer per request once a script has delay().
local think_ms = tonumber(os.getenv("WRK_THINK_MS") or "")
if think_ms then
  delay = function()
    return math.floor(2 * think_ms * math.random() + math.random())
  end
end

done = function(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "bytes": %d, "errors_connect": %d, ' ..
    '"errors_read": %d, "errors_write": %d, "errors_status": %d, "errors_timeout": %d, ' ..
    '"p50_us": %d, "p90_us": %d, "p99_us": %d, "p999_us": %d, "max_us": %d, "mean_us": %.1f}\n',
    summary.requests, summary.duration, summary.bytes, errors.connect, errors.read,
    errors.write, errors.status, errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max, latency.mean))
end
