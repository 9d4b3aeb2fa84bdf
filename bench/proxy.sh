#!/usr/bin/env bash
# What the broker's proxy adds to one request: GET /services/data/v64.0/limits sent straight to
# a release-built playground with the token the broker hands out, and the same request through
# `forcelink serve` (GET /v1/connections/bench/sf/services/data/v64.0/limits), each over one
# keep-alive connection with wrk (1 thread, 1 connection). The two alternate for ROUNDS rounds so
# that a change in the machine's load touches both; the table shows every round and the median
# of the per-round differences of p50 and p99 (the added latency). Prints a markdown table on
# stdout; progress on stderr. Installs wrk from the machine's packages when missing.
#
# Settings (environment variables):
#   DURATION  length of each measured run   (default 5s)
#   ROUNDS    direct/proxy pairs             (default 5)
#   WARMUP    unmeasured run before the first pair, each side (default 2s; 0 to skip)
#   REQ       the proxied path after the instance URL (default /services/data/v64.0/limits)
#   BIN       a forcelink binary to measure instead of building the release one (to compare
#             two builds)
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${DURATION:-5s}"
ROUNDS="${ROUNDS:-5}"
WARMUP="${WARMUP:-2s}"
REQ="${REQ:-/services/data/v64.0/limits}"

. bench/lib.sh
BROKER_PID=""
stop_broker() {
  if [ -n "$BROKER_PID" ] && kill -0 "$BROKER_PID" 2>/dev/null; then
    kill "$BROKER_PID" 2>/dev/null || true
    wait "$BROKER_PID" 2>/dev/null || true
  fi
  cleanup
}
trap stop_broker EXIT

if ! command -v wrk >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    say "installing wrk"
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    $sudo apt-get update -qq >&2
    $sudo apt-get install -y -qq wrk >&2
  else
    say "wrk is required: https://github.com/wg/wrk (or your package manager)"
    exit 2
  fi
fi
for tool in cargo curl python3; do
  command -v "$tool" >/dev/null 2>&1 || { say "$tool is required"; exit 2; }
done

if [ -z "${BIN:-}" ]; then
  say "building the release binary"
  cargo build --release --quiet -p forcelink-cli
  BIN="$(pwd)/${CARGO_TARGET_DIR:-target}/release/forcelink"
  case "${CARGO_TARGET_DIR:-}" in /*) BIN="$CARGO_TARGET_DIR/release/forcelink" ;; esac
fi

say "starting the playground"
"$BIN" playground --port 0 --instance-port 0 --pubsub-port 0 --info-file "$WORK/info.json" --key-dir "$WORK/keys" \
  >"$WORK/playground.log" 2>&1 &
PG_PID=$!
for _ in $(seq 1 300); do
  [ -s "$WORK/info.json" ] && break
  kill -0 "$PG_PID" 2>/dev/null || { cat "$WORK/playground.log" >&2; exit 1; }
  sleep 0.1
done
[ -s "$WORK/info.json" ] || { say "the playground did not start"; exit 1; }
field() { sed -n "s/^ *\"$1\": \"\([^\"]*\)\",\{0,1\}\$/\1/p" "$WORK/info.json" | head -n 1; }
INSTANCE_URL="$(field instance_url)"
CONTROL_URL="$(field control_url)"
CONTROL_KEY="$(field control_key)"
CLIENT_ID="$(field client_id)"
CLIENT_SECRET="$(field client_secret)"
# The measured runs make far more API calls than the org's default daily allowance.
curl -fsS -X PATCH -H "Authorization: Bearer $CONTROL_KEY" -H 'Content-Type: application/json' \
  -d '{"daily_api_requests": 1000000000}' "$CONTROL_URL/settings" >/dev/null

export XDG_DATA_HOME="$WORK/data" XDG_CONFIG_HOME="$WORK/config"
KEY="$("$BIN" apikey create --name bench --connections '*' --scopes '*' --json | sed -n 's/^ *"key": "\(flk_[^"]*\)".*/\1/p')"
[ -n "$KEY" ] || { say "could not create an API key"; exit 1; }

say "starting the broker"
"$BIN" serve --bind 127.0.0.1:0 --allow-origin "$INSTANCE_URL" >"$WORK/serve.out" 2>"$WORK/serve.err" &
BROKER_PID=$!
for _ in $(seq 1 300); do
  grep -qx ready "$WORK/serve.out" && break
  kill -0 "$BROKER_PID" 2>/dev/null || { cat "$WORK/serve.err" >&2; exit 1; }
  sleep 0.1
done
BROKER="$(sed -n 's#^ *page *\(http://[^/]*\)/.*#\1#p' "$WORK/serve.out")"
[ -n "$BROKER" ] || { say "the broker did not start"; cat "$WORK/serve.err" >&2; exit 1; }

curl -fsS -X POST -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' "$BROKER/v1/connections" \
  -d "{\"name\": \"bench\", \"method\": \"client-credentials\", \"environment\": \"custom\", \"login_url\": \"$INSTANCE_URL\", \"client_id\": \"$CLIENT_ID\", \"client_secret\": \"$CLIENT_SECRET\"}" >/dev/null
ACCESS_TOKEN="$(curl -fsS -H "Authorization: Bearer $KEY" "$BROKER/v1/connections/bench/token" \
  | sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p')"
[ -n "$ACCESS_TOKEN" ] || { say "the first token hand-out failed"; exit 1; }
# Both answers by hand first: a misconfigured run fails instead of measuring errors.
DIRECT_BYTES="$(curl -fsS -H "Authorization: Bearer $ACCESS_TOKEN" "$INSTANCE_URL$REQ" | wc -c)"
PROXY_BYTES="$(curl -fsS -H "Authorization: Bearer $KEY" "$BROKER/v1/connections/bench/sf$REQ" | wc -c)"
[ "$DIRECT_BYTES" -gt 0 ] && [ "$PROXY_BYTES" -gt 0 ] || { say "an answer was empty"; exit 1; }

wrk_line() { # url bearer path duration → "BENCH …"
  local out
  out="$(BEARER="$2" REQ_PATH="$3" wrk --threads 1 --connections 1 --duration "$4" --timeout 5s \
    --script bench/broker.lua "$1")"
  grep '^BENCH ' <<<"$out" || { say "$out"; exit 1; }
}
direct() { wrk_line "$INSTANCE_URL" "$ACCESS_TOKEN" "$REQ" "$1"; }
proxied() { wrk_line "$BROKER" "$KEY" "/v1/connections/bench/sf$REQ" "$1"; }

if [ "$WARMUP" != 0 ]; then
  say "warming up ($WARMUP each)"
  direct "$WARMUP" >/dev/null
  proxied "$WARMUP" >/dev/null
fi
: >"$WORK/rounds"
for round in $(seq 1 "$ROUNDS"); do
  say "round $round/$ROUNDS: direct, then through the proxy ($DURATION each)"
  echo "direct $round $(direct "$DURATION")" >>"$WORK/rounds"
  echo "proxy $round $(proxied "$DURATION")" >>"$WORK/rounds"
done

python3 - "$WORK/rounds" "$REQ" "$DIRECT_BYTES" "$DURATION" "$(uptime | sed 's/.*load average: //')" <<'PY'
import os, statistics, sys
runs = {}
for line in open(sys.argv[1]):
    side, rnd, _, *pairs = line.split()
    kv = dict(p.split("=", 1) for p in pairs)
    runs[(side, int(rnd))] = kv
req, size, duration, load = sys.argv[2:6]
rounds = sorted({r for _, r in runs})
print(f"GET {req} ({size} bytes), one keep-alive connection (wrk, 1 thread), {duration} per run; "
      f"{os.cpu_count()} cores, load average after the run {load}\n")
print("| round | direct req/s | direct p50 | direct p99 | proxy req/s | proxy p50 | proxy p99 | added p50 | added p99 | errors |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
added50, added99 = [], []
for r in rounds:
    d, p = runs[("direct", r)], runs[("proxy", r)]
    a50 = float(p["p50_ms"]) - float(d["p50_ms"])
    a99 = float(p["p99_ms"]) - float(d["p99_ms"])
    added50.append(a50); added99.append(a99)
    errs = int(d["non2xx"]) + int(p["non2xx"])
    for k in ("connect", "read", "write", "timeout"):
        errs += int(d[k]) + int(p[k])
    print(f"| {r} | {float(d['rps']):.0f} | {float(d['p50_ms']):.3f} ms | {float(d['p99_ms']):.3f} ms | "
          f"{float(p['rps']):.0f} | {float(p['p50_ms']):.3f} ms | {float(p['p99_ms']):.3f} ms | "
          f"{a50:+.3f} ms | {a99:+.3f} ms | {errs} |")
print(f"\nadded by the proxy, median of {len(rounds)} rounds: p50 {statistics.median(added50):+.3f} ms, "
      f"p99 {statistics.median(added99):+.3f} ms (target: p50 <= 0.1 ms)")
PY
