#!/usr/bin/env bash
# Connections that keep themselves alive, measured: the webhook outbox (deliveries per second to
# a local receiver, and the latency from an event to its arrival, p50/p99) and the background
# checks (the broker's CPU time per health interval for 10,000 connections, idle and used).
# Prints markdown tables on stdout; progress on stderr. Needs python3 (standard library only).
#
# Settings (environment variables):
#   EVENTS       events in the burst row                        (default 5000)
#   CONNECTIONS  connections for the scheduler rows             (default 10000)
#   INTERVAL     --health-interval for the scheduler rows       (default 30s)
#   ROUNDS       intervals measured per scheduler row           (default 2)
set -euo pipefail
cd "$(dirname "$0")/.."

EVENTS="${EVENTS:-5000}"
CONNECTIONS="${CONNECTIONS:-10000}"
INTERVAL="${INTERVAL:-30s}"
ROUNDS="${ROUNDS:-2}"
INTERVAL_S="${INTERVAL%s}"
case "$INTERVAL_S" in *[!0-9]*|"") echo "INTERVAL must be in seconds, e.g. 30s" >&2; exit 2 ;; esac
PY="${FORCELINK_PYTHON:-python3}"
HELP="bench/keepalive.py"

. bench/lib.sh
BROKER_PID=""
RECEIVER_PID=""
stop_all() {
  for pid in "$BROKER_PID" "$RECEIVER_PID"; do
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  cleanup
}
trap stop_all EXIT
for tool in cargo curl "$PY"; do
  command -v "$tool" >/dev/null 2>&1 || { say "$tool is required"; exit 2; }
done
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_for() { # description deadline-seconds command…
  local what=$1 limit=$2; shift 2
  local end=$(( $(date +%s) + limit ))
  until "$@"; do
    [ "$(date +%s)" -lt "$end" ] || { say "timed out waiting for $what"; exit 1; }
    sleep 0.2
  done
}

say "building the release binary"
cargo build --release --quiet -p forcelink-cli
BIN="$(pwd)/${CARGO_TARGET_DIR:-target}/release/forcelink"
case "${CARGO_TARGET_DIR:-}" in /*) BIN="$CARGO_TARGET_DIR/release/forcelink" ;; esac

say "starting the playground"
"$BIN" playground --port 0 --instance-port 0 --info-file "$WORK/info.json" --key-dir "$WORK/keys" \
  >"$WORK/playground.log" 2>&1 &
PG_PID=$!
wait_for "the playground" 30 test -s "$WORK/info.json"
field() { sed -n "s/^ *\"$1\": \"\([^\"]*\)\",\{0,1\}\$/\1/p" "$WORK/info.json" | head -n 1; }
INSTANCE_URL="$(field instance_url)"
CONTROL_URL="$(field control_url)"
CONTROL_KEY="$(field control_key)"
CLIENT_ID="$(field client_id)"
CLIENT_SECRET="$(field client_secret)"
curl -fsS -X PATCH -H "Authorization: Bearer $CONTROL_KEY" -H 'Content-Type: application/json' \
  -d '{"daily_api_requests": 1000000000}' "$CONTROL_URL/settings" >/dev/null

RECEIVER_PORT="$(free_port)"
"$PY" "$HELP" receive "$RECEIVER_PORT" "$WORK/received.log" 2>"$WORK/receiver.err" &
RECEIVER_PID=$!
touch "$WORK/received.log"

start_broker() { # data-dir interval
  export XDG_DATA_HOME="$WORK/$1" XDG_CONFIG_HOME="$WORK/$1-config"
  KEY="$("$BIN" apikey create --name bench --connections '*' --scopes '*' --json | sed -n 's/^ *"key": "\(flk_[^"]*\)".*/\1/p')"
  [ -n "$KEY" ] || { say "could not create an API key"; exit 1; }
  "$BIN" serve --bind 127.0.0.1:0 --health-interval "$2" --allow-origin "$INSTANCE_URL" \
    --allow-origin "http://127.0.0.1:$RECEIVER_PORT" >"$WORK/serve.out" 2>"$WORK/serve.err" &
  BROKER_PID=$!
  wait_for "the broker" 30 grep -qx ready "$WORK/serve.out"
  BROKER="$(sed -n 's#^ *page *\(http://[^/]*\)/.*#\1#p' "$WORK/serve.out")"
  [ -n "$BROKER" ] || { say "the broker did not start"; cat "$WORK/serve.err" >&2; exit 1; }
}
stop_broker() {
  kill "$BROKER_PID" 2>/dev/null || true
  wait "$BROKER_PID" 2>/dev/null || true
  BROKER_PID=""
}
received() { wc -l <"$WORK/received.log"; }
create() { "$PY" "$HELP" create "$BROKER" "$KEY" "$1" "$2" "$3" "$INSTANCE_URL" "$CLIENT_ID" "$CLIENT_SECRET"; }

# --- The outbox: one webhook on connection.created; each new connection is one delivery.
say "outbox: starting the broker"
start_broker outbox 1h
curl -fsS -X POST -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' "$BROKER/v1/webhooks" \
  -d "{\"url\": \"http://127.0.0.1:$RECEIVER_PORT/hook\", \"events\": [\"connection.created\"]}" >/dev/null
OUTBOX_ROWS=()
outbox_row() { # scenario count threads
  local before; before="$(received)"
  say "outbox: $1 ($2 events)"
  local rate; rate="$(create "o$RANDOM-" "$2" "$3")"
  wait_for "$2 deliveries" 300 test "$(received)" -ge "$(( before + $2 ))"
  read -r n p50 p99 first last < <("$PY" "$HELP" latency "$WORK/received.log" "$before")
  OUTBOX_ROWS+=("$(printf '| %s | %s | %s | %.0f | %s ms | %s ms |' "$1" "$n" "$rate" \
    "$(awk -v n="$n" -v a="$first" -v b="$last" 'BEGIN { d = b - a; print (d > 0 ? n / d : 0) }')" "$p50" "$p99")")
}
outbox_row "one event at a time" 200 1
outbox_row "burst from 8 clients" "$EVENTS" 8
stop_broker

# --- The scheduler: CONNECTIONS client-credentials connections, idle then used.
say "scheduler: starting the broker (--health-interval $INTERVAL)"
start_broker scheduler "$INTERVAL"
say "scheduler: creating $CONNECTIONS connections"
create s "$CONNECTIONS" 8 >/dev/null
SCHED_ROWS=()
stats() { curl -fsS -H "Authorization: Bearer $CONTROL_KEY" "$CONTROL_URL/stats"; }
# API calls plus token requests the org saw: what the checks cost Salesforce.
requests() { stats | "$PY" -c 'import json, sys; s = json.load(sys.stdin); print(s["api_requests"] + s["token_requests"]["total"])'; }
scheduler_row() { # scenario
  say "scheduler: $1: one interval to settle, then $ROUNDS measured ($INTERVAL each)"
  sleep "$INTERVAL_S"
  local cpu0 req0 cpu1 req1
  cpu0="$("$PY" "$HELP" cpu "$BROKER_PID")"; req0="$(requests)"
  sleep "$(( INTERVAL_S * ROUNDS ))"
  cpu1="$("$PY" "$HELP" cpu "$BROKER_PID")"; req1="$(requests)"
  SCHED_ROWS+=("$(printf '| %s | %s | %.2f s | %.0f µs | %s | %s MiB |' "$1" "$CONNECTIONS" \
    "$(awk -v a="$cpu0" -v b="$cpu1" -v r="$ROUNDS" 'BEGIN { print (b - a) / r }')" \
    "$(awk -v a="$cpu0" -v b="$cpu1" -v r="$ROUNDS" -v n="$CONNECTIONS" 'BEGIN { print (b - a) / r / n * 1e6 }')" \
    "$(( (req1 - req0) / ROUNDS ))" "$("$PY" "$HELP" rss "$BROKER_PID")")")
}
scheduler_row "idle for more than a day (or never used): left alone"
say "scheduler: one token for each connection (now used within a day)"
"$PY" "$HELP" tokens "$BROKER" "$KEY" s "$CONNECTIONS" 8
scheduler_row "used within a day: token kept fresh, /limits read, approvals counted"
stop_broker

echo
echo "forcelink broker on loopback, SQLite store, release build ($(nproc 2>/dev/null || echo '?') CPUs shared by the broker, the playground and the clients)"
echo
echo "Webhook outbox (a local receiver answering 204 at once; latency: event written → delivery received):"
echo
echo "| scenario | deliveries | events created/s | deliveries/s | p50 | p99 |"
echo "|---|---|---|---|---|---|"
printf '%s\n' "${OUTBOX_ROWS[@]}"
echo
echo "Background checks (--health-interval $INTERVAL; CPU is the broker process's user + system time):"
echo
echo "| connections | count | CPU per interval | CPU per connection and interval | org requests per interval | broker RSS |"
echo "|---|---|---|---|---|---|"
printf '%s\n' "${SCHED_ROWS[@]}"
