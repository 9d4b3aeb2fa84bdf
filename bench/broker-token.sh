#!/usr/bin/env bash
# The broker on loopback, measured with wrk: cached-token hand-outs
# (GET /v1/connections/{name}/token) per second and their latency, and the proxy
# (GET /v1/connections/{name}/sf/services/data/v64.0/limits) against calling the playground
# directly with the same token. Prints a markdown table on stdout; progress on stderr.
#
# Settings (environment variables):
#   DURATION     length of each measured run          (default 10s)
#   THREADS      wrk threads for the concurrent rows  (default 2)
#   CONNECTIONS  connections for the concurrent rows  (default 32)
#   WARMUP       unmeasured run before each row        (default 2s; 0 to skip)
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${DURATION:-10s}"
THREADS="${THREADS:-2}"
CONNECTIONS="${CONNECTIONS:-32}"
WARMUP="${WARMUP:-2s}"

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
for tool in cargo curl; do
  command -v "$tool" >/dev/null 2>&1 || { say "$tool is required"; exit 2; }
done

say "building the release binary"
cargo build --release --quiet -p forcelink-cli
BIN="$(pwd)/${CARGO_TARGET_DIR:-target}/release/forcelink"
case "${CARGO_TARGET_DIR:-}" in /*) BIN="$CARGO_TARGET_DIR/release/forcelink" ;; esac

say "starting the playground"
"$BIN" playground --port 0 --instance-port 0 --info-file "$WORK/info.json" --key-dir "$WORK/keys" \
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

# The broker's own store, key and API key, in the work directory.
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
# One hand-out by hand first: a misconfigured run fails instead of measuring errors.
ACCESS_TOKEN="$(curl -fsS -H "Authorization: Bearer $KEY" "$BROKER/v1/connections/bench/token" \
  | sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p')"
[ -n "$ACCESS_TOKEN" ] || { say "the first token hand-out failed"; exit 1; }

ROWS=()
row() { # scenario url bearer path threads connections
  local scenario=$1 url=$2 bearer=$3 path=$4 threads=$5 connections=$6 out line
  run() { BEARER="$bearer" REQ_PATH="$path" wrk --threads "$threads" --connections "$connections" \
    --duration "$1" --timeout 5s --script bench/broker.lua "$url"; }
  if [ "$WARMUP" != 0 ]; then
    say "warming up: $scenario ($WARMUP)"
    run "$WARMUP" >/dev/null
  fi
  say "measuring: $scenario ($threads threads, $connections connections, $DURATION)"
  out="$(run "$DURATION")"
  line="$(grep '^BENCH ' <<<"$out")" || { say "$out"; exit 1; }
  get() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$line"; }
  local socket=$(( $(get connect) + $(get read) + $(get write) + $(get timeout) ))
  [ "$socket" -eq 0 ] || say "note: $socket socket errors in '$scenario'"
  ROWS+=("$(printf '| %s | %s | %.0f | %.2f ms | %.2f ms | %s |' \
    "$scenario" "$connections" "$(get rps)" "$(get p50_ms)" "$(get p99_ms)" "$(get non2xx)")")
}

LIMITS=/services/data/v64.0/limits
row "broker: cached token" "$BROKER" "$KEY" /v1/connections/bench/token "$THREADS" "$CONNECTIONS"
row "broker: cached token, one connection" "$BROKER" "$KEY" /v1/connections/bench/token 1 1
row "broker proxy: GET limits" "$BROKER" "$KEY" "/v1/connections/bench/sf$LIMITS" "$THREADS" "$CONNECTIONS"
row "playground direct: GET limits" "$INSTANCE_URL" "$ACCESS_TOKEN" "$LIMITS" "$THREADS" "$CONNECTIONS"
row "broker proxy: GET limits, one connection" "$BROKER" "$KEY" "/v1/connections/bench/sf$LIMITS" 1 1
row "playground direct: GET limits, one connection" "$INSTANCE_URL" "$ACCESS_TOKEN" "$LIMITS" 1 1

RENEWALS="$(curl -fsS -H "Authorization: Bearer $KEY" "$BROKER/metrics" | sed -n 's/^forcelink_token_renewals_total{connection="bench"} //p')"
echo
echo "forcelink broker on loopback, HTTP/1.1 keep-alive, SQLite store"
echo "($(nproc 2>/dev/null || echo '?') CPUs shared by wrk, the broker and the playground; $DURATION per row; $(wrk --version 2>&1 | head -n 1 | cut -d' ' -f1-2); token renewals during the run: $RENEWALS)"
echo
echo "| scenario | connections | requests/s | p50 | p99 | non-2xx |"
echo "|---|---|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
