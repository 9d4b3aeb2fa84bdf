#!/usr/bin/env bash
# The broker on loopback, measured with wrk: cached-token hand-outs
# (GET /v1/connections/{name}/token) per second and their latency, and the proxy
# (GET /v1/connections/{name}/sf/services/data/v64.0/limits) against calling the playground
# directly with the same token, and nginx serving a static response of the same size as a
# token hand-out with the same wrk command: the ratio of the two is the figure to watch (it
# does not depend on how fast the machine is). Prints a markdown table on stdout; progress on
# stderr. Installs wrk and nginx from the machine's packages when missing.
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
NGINX_PID=""
stop_broker() {
  for pid in "$BROKER_PID" "$NGINX_PID"; do
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
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
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
  if command -v apt-get >/dev/null 2>&1; then
    say "installing nginx (the static-response baseline)"
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    $sudo apt-get update -qq >&2
    $sudo apt-get install -y -qq nginx-light >&2 || $sudo apt-get install -y -qq nginx >&2
  else
    say "nginx is required for the baseline row (or your package manager)"
    exit 2
  fi
fi
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
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

# nginx serving the first hand-out's exact bytes as a static file, with as many workers as the
# machine has cores (the broker's runtime uses every core too).
TOKEN_BODY_BYTES="$(curl -fsS -H "Authorization: Bearer $KEY" "$BROKER/v1/connections/bench/token" | tee "$WORK/token.json" | wc -c)"
mkdir -p "$WORK/nginx/www" "$WORK/nginx/logs"
cp "$WORK/token.json" "$WORK/nginx/www/token"
NGINX_PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
cat >"$WORK/nginx/nginx.conf" <<CONF
$( [ "$(id -u)" -eq 0 ] && echo "user root;" || true )
worker_processes auto;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/logs/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx/tmp;
  proxy_temp_path $WORK/nginx/tmp;
  fastcgi_temp_path $WORK/nginx/tmp;
  uwsgi_temp_path $WORK/nginx/tmp;
  scgi_temp_path $WORK/nginx/tmp;
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location = /token { root $WORK/nginx/www; default_type application/json; }
  }
}
CONF
say "starting nginx (static baseline, $TOKEN_BODY_BYTES bytes)"
"$NGINX" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -g 'daemon off;' 2>"$WORK/nginx/start.err" &
NGINX_PID=$!
for _ in $(seq 1 100); do
  curl -fsS -o /dev/null "http://127.0.0.1:$NGINX_PORT/token" 2>/dev/null && break
  kill -0 "$NGINX_PID" 2>/dev/null || { cat "$WORK/nginx/start.err" >&2; exit 1; }
  sleep 0.1
done
[ "$(curl -fsS "http://127.0.0.1:$NGINX_PORT/token" | wc -c)" -eq "$TOKEN_BODY_BYTES" ] \
  || { say "nginx does not serve the baseline file"; exit 1; }

ROWS=()
RPS=""
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
  RPS="$(get rps)"
  ROWS+=("$(printf '| %s | %s | %.0f | %.2f ms | %.2f ms | %s |' \
    "$scenario" "$connections" "$(get rps)" "$(get p50_ms)" "$(get p99_ms)" "$(get non2xx)")")
}

LIMITS=/services/data/v64.0/limits
row "broker: cached token" "$BROKER" "$KEY" /v1/connections/bench/token "$THREADS" "$CONNECTIONS"
BROKER_RPS="$RPS"
row "nginx: static file of the same size" "http://127.0.0.1:$NGINX_PORT" "$KEY" /token "$THREADS" "$CONNECTIONS"
NGINX_RPS="$RPS"
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
echo
printf 'cached token against nginx serving the same %s bytes: %.2f (%.0f / %.0f requests/s)\n' \
  "$TOKEN_BODY_BYTES" "$(awk -v b="$BROKER_RPS" -v n="$NGINX_RPS" 'BEGIN { print b / n }')" "$BROKER_RPS" "$NGINX_RPS"
