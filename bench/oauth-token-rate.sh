#!/usr/bin/env bash
# Client-credentials token requests per second against a release-built playground on loopback,
# measured with wrk (bench/token.lua). Prints a markdown table on stdout; progress on stderr.
#
# Settings (environment variables):
#   DURATION     length of each measured run          (default 10s)
#   THREADS      wrk threads for the concurrent row   (default 2)
#   CONNECTIONS  connections for the concurrent row   (default 32)
#   WARMUP       unmeasured run before each row        (default 2s; 0 to skip)
#   WRK_TIMEOUT  wrk's per-request timeout            (default 5s)
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${DURATION:-10s}"
THREADS="${THREADS:-2}"
CONNECTIONS="${CONNECTIONS:-32}"
WARMUP="${WARMUP:-2s}"
WRK_TIMEOUT="${WRK_TIMEOUT:-5s}"

. bench/lib.sh

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
BIN="${CARGO_TARGET_DIR:-target}/release/forcelink"


say "starting the playground"
"$BIN" playground --port 0 --instance-port 0 --info-file "$WORK/info.json" --key-dir "$WORK/keys" \
  >"$WORK/playground.log" 2>&1 &
PG_PID=$!

# The info file is written atomically once both hosts listen: its existence means ready.
for _ in $(seq 1 300); do
  [ -s "$WORK/info.json" ] && break
  if ! kill -0 "$PG_PID" 2>/dev/null; then
    say "the playground exited:"
    cat "$WORK/playground.log" >&2
    exit 1
  fi
  sleep 0.1
done
if [ ! -s "$WORK/info.json" ]; then
  say "the playground did not write its info file within 30 s"
  exit 1
fi

# One value from the (pretty-printed, flat-keyed) info file; no JSON tool needed.
field() { sed -n "s/^ *\"$1\": \"\([^\"]*\)\",\{0,1\}\$/\1/p" "$WORK/info.json" | head -n 1; }
INSTANCE_URL="$(field instance_url)"
CONTROL_URL="$(field control_url)"
CONTROL_KEY="$(field control_key)"
CLIENT_ID="$(field client_id)"
CLIENT_SECRET="$(field client_secret)"
export CLIENT_ID CLIENT_SECRET

control() { curl -fsS -X "$1" -H "Authorization: Bearer $CONTROL_KEY" "$CONTROL_URL$2"; }
# The playground's own count of failed token requests since the last reset.
token_errors() { control GET /stats | grep -o '"token_errors":{"total":[0-9]*' | grep -o '[0-9]*$'; }

# One request by hand first: a misconfigured run should fail loudly, not measure errors.
status="$(curl -s -o "$WORK/first.json" -w '%{http_code}' -X POST "$INSTANCE_URL/services/oauth2/token" \
  --data-urlencode grant_type=client_credentials --data-urlencode "client_id=$CLIENT_ID" \
  --data-urlencode "client_secret=$CLIENT_SECRET")"
if [ "$status" != 200 ]; then
  say "a single token request failed with HTTP $status: $(cat "$WORK/first.json")"
  exit 1
fi

wrk_run() { # threads connections duration
  wrk --threads "$1" --connections "$2" --duration "$3" --timeout "$WRK_TIMEOUT" \
    --script bench/token.lua "$INSTANCE_URL"
}

ROWS=()
row() { # scenario threads connections
  local scenario=$1 threads=$2 connections=$3 out line errors_before
  # Every row starts from the seed (no tokens minted by earlier rows), then warms up: the
  # first seconds after a reset that freed many tokens show stalls that are not the steady state.
  control POST /reset >/dev/null
  if [ "$WARMUP" != 0 ]; then
    say "warming up: $scenario ($WARMUP)"
    wrk_run "$threads" "$connections" "$WARMUP" >/dev/null
  fi
  errors_before="$(token_errors)"
  say "measuring: $scenario ($threads threads, $connections connections, $DURATION)"
  out="$(wrk_run "$threads" "$connections" "$DURATION")"
  line="$(grep '^BENCH ' <<<"$out")" || { say "$out"; exit 1; }
  get() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$line"; }
  local non2xx socket server_errors
  non2xx="$(get non2xx)"
  socket=$(( $(get connect) + $(get read) + $(get write) + $(get timeout) ))
  server_errors=$(( $(token_errors) - errors_before ))
  if [ "$server_errors" != "$non2xx" ]; then
    say "note: wrk saw $non2xx non-2xx answers, the playground counted $server_errors failed token requests"
  fi
  if [ "$socket" -ne 0 ]; then
    say "note: $socket socket errors (connect/read/write/timeout) in '$scenario'"
  fi
  ROWS+=("$(printf '| %s | %s | %.0f | %.2f ms | %.2f ms | %s |' \
    "$scenario" "$connections" "$(get rps)" "$(get p50_ms)" "$(get p99_ms)" "$non2xx")")
}

row "client credentials, concurrent" "$THREADS" "$CONNECTIONS"
row "client credentials, one connection" 1 1

echo
echo "forcelink playground: client-credentials token requests, loopback, HTTP/1.1 keep-alive"
echo "($(nproc 2>/dev/null || echo '?') CPUs shared by wrk and the playground; $DURATION per row; $(wrk --version 2>&1 | head -n 1 | cut -d' ' -f1-2))"
echo
echo "| scenario | connections | requests/s | p50 | p99 | non-2xx |"
echo "|---|---|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
