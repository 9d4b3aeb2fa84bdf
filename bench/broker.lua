-- wrk script for bench/broker-token.sh: GET REQ_PATH with "Authorization: Bearer BEARER" (both
-- from the environment), then one machine-readable line, "BENCH key=value ...", for the table.

local bearer = os.getenv("BEARER") or error("BEARER is not set")
wrk.method = "GET"
wrk.path = os.getenv("REQ_PATH") or error("REQ_PATH is not set")
wrk.headers["Authorization"] = "Bearer " .. bearer
wrk.headers["Accept"] = "application/json"

function done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d seconds=%.3f rps=%.1f p50_ms=%.3f p99_ms=%.3f non2xx=%d connect=%d read=%d write=%d timeout=%d\n",
    summary.requests, seconds, summary.requests / seconds,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    e.status, e.connect, e.read, e.write, e.timeout))
end
