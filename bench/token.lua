-- wrk script: client-credentials token requests against the playground's My Domain host.
--
-- Reads CLIENT_ID and CLIENT_SECRET from the environment (bench/oauth-token-rate.sh sets them
-- from the playground's info file) and POSTs the form body Salesforce expects. At the end it
-- prints one machine-readable line, "BENCH key=value ...", that the shell script turns into a
-- table row.

local function form_escape(s)
  return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

local client_id = os.getenv("CLIENT_ID") or error("CLIENT_ID is not set")
local client_secret = os.getenv("CLIENT_SECRET") or error("CLIENT_SECRET is not set")

wrk.method = "POST"
wrk.path = "/services/oauth2/token"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Accept"] = "application/json"
wrk.body = "grant_type=client_credentials"
  .. "&client_id=" .. form_escape(client_id)
  .. "&client_secret=" .. form_escape(client_secret)

-- summary.errors.status counts answers with HTTP status >= 400. The token endpoint never
-- redirects, so that is every non-2xx answer; the script cross-checks it with the
-- playground's own error counter.
function done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d seconds=%.3f rps=%.1f p50_ms=%.3f p99_ms=%.3f non2xx=%d connect=%d read=%d write=%d timeout=%d\n",
    summary.requests, seconds, summary.requests / seconds,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    e.status, e.connect, e.read, e.write, e.timeout))
end
