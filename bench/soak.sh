#!/usr/bin/env bash
# The broker under faults for a while: mixed load (cached tokens, the proxy, an action, the signed-in
# page) for MINUTES while the playground injects delays, 503s, Salesforce's 500, truncated bodies,
# dropped connections and HTML maintenance pages, and expires its sessions every 10 s. Prints:
# answers by route and status, errors by type (an UNTYPED one is a bug), the broker's RSS and open
# descriptors over the run (they should stay flat), and audit rows against requests made.
# A benchmark, not a test: it reports, it does not assert. Needs python3 (standard library).
#
# Settings (environment variables):
#   MINUTES   how long the load runs (default 10)
set -euo pipefail
cd "$(dirname "$0")/.."

MINUTES="${MINUTES:-10}"
PY="${FORCELINK_PYTHON:-python3}"

. bench/lib.sh
BROKER_PID=""
stop_all() {
  if [ -n "$BROKER_PID" ] && kill -0 "$BROKER_PID" 2>/dev/null; then
    kill "$BROKER_PID" 2>/dev/null || true
    wait "$BROKER_PID" 2>/dev/null || true
  fi
  cleanup
}
trap stop_all EXIT
for tool in cargo curl "$PY"; do
  command -v "$tool" >/dev/null 2>&1 || { say "$tool is required"; exit 2; }
done
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
read -r INSTANCE_URL CONTROL_URL CONTROL_KEY CLIENT_ID CLIENT_SECRET < <("$PY" -c '
import json, sys; i = json.load(open(sys.argv[1]))
print(i["instance_url"], i["control_url"], i["control_key"], i["client"]["client_id"], i["client"]["client_secret"])' "$WORK/info.json")
curl -fsS -X PATCH -H "Authorization: Bearer $CONTROL_KEY" -H 'Content-Type: application/json' \
  -d '{"daily_api_requests": 1000000000}' "$CONTROL_URL/settings" >/dev/null

export XDG_DATA_HOME="$WORK/data" XDG_CONFIG_HOME="$WORK/config"
KEY="$("$BIN" apikey create --name soak --connections '*' --scopes '*' --json | sed -n 's/^ *"key": "\(flk_[^"]*\)".*/\1/p')"
[ -n "$KEY" ] || { say "could not create an API key"; exit 1; }
say "starting the broker"
"$BIN" serve --bind 127.0.0.1:0 --allow-origin "$INSTANCE_URL" >"$WORK/serve.out" 2>"$WORK/serve.err" &
BROKER_PID=$!
wait_for "the broker" 30 grep -qx ready "$WORK/serve.out"
BROKER="$(sed -n 's#^ *page *\(http://[^/]*\)/.*#\1#p' "$WORK/serve.out")"
[ -n "$BROKER" ] || { say "the broker did not start"; cat "$WORK/serve.err" >&2; exit 1; }
curl -fsS -X POST -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' "$BROKER/v1/connections" \
  -d "{\"name\": \"soak\", \"method\": \"client-credentials\", \"environment\": \"custom\", \"login_url\": \"$INSTANCE_URL\", \"client_id\": \"$CLIENT_ID\", \"client_secret\": \"$CLIENT_SECRET\"}" >/dev/null
curl -fsS -o /dev/null -H "Authorization: Bearer $KEY" "$BROKER/v1/connections/soak/token" \
  || { say "the first token hand-out failed"; exit 1; }

say "soaking for $MINUTES minutes"
"$PY" bench/soak.py run "$BROKER" "$KEY" "$WORK/info.json" "$(( MINUTES * 60 ))" "$BROKER_PID" "$WORK/soak.json"
sleep 2   # the audit buffer flushes every second
"$BIN" store audit --limit 10000000 --json >"$WORK/audit.json"
"$PY" - "$WORK/soak.json" "$WORK/audit.json" "$MINUTES" "$(nproc 2>/dev/null || echo '?')" <<'PY'
import json, re, sys
soak, audit, minutes, cpus = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), sys.argv[3], sys.argv[4]
audit = audit["result"] if isinstance(audit, dict) else audit  # --json wraps it as {"status", "result"}
print(f"\nforcelink broker under faults for {minutes} minutes ({cpus} CPUs shared with the playground and the driver)\n")
print("| route | status | answers |\n|---|---|---|")
for k, n in soak["answers"].items():
    route, status = k.split(" ", 1)
    print(f"| {route} | {status if status != '0' else 'no answer'} | {n} |")
print("\n| error type | count |\n|---|---|")
for k, n in soak["errors"].items():
    print(f"| {k} | {n} |")
untyped = sum(n for k, n in soak["errors"].items() if k.startswith("UNTYPED"))
print("\n| | start | " + " | ".join(f"{s['at_s']} s" for s in soak["samples"]) + " |")
print("|---|---|" + "---|" * len(soak["samples"]))
print("| RSS (MiB) | %.0f | " % soak["start"]["rss_mib"] + " | ".join("%.0f" % s["rss_mib"] for s in soak["samples"]) + " |")
print("| open descriptors | %d | " % soak["start"]["fds"] + " | ".join(str(s["fds"]) for s in soak["samples"]) + " |")
count = lambda d: int(m.group(1)) if (m := re.search(r"(\d+) times?\)?$", d or "")) else 1
rows = [e for e in audit if e["connection"] == "soak"]
issued = sum(count(e["detail"]) for e in rows if e["action"] == "token.issued")
proxied = sum(count(e["detail"]) for e in rows if e["action"] == "proxy.request")
actions = sum(1 for e in rows if e["action"].startswith("action."))
ok_tokens = sum(n for k, n in soak["answers"].items() if k == "token 200") + 1  # + the first by hand
proxy_answered = sum(n for k, n in soak["answers"].items() if k.startswith("proxy ") and not k.endswith(" 0"))
action_answered = sum(n for k, n in soak["answers"].items() if k.startswith("action ") and not k.endswith(" 0"))
print("\n| audited | rows say | requests made |\n|---|---|---|")
print(f"| tokens handed out (token.issued) | {issued} | {ok_tokens} (200 answers) |")
print(f"| proxied requests (proxy.request) | {proxied} | {proxy_answered} (answered) |")
print(f"| actions (action.*) | {actions} | {action_answered} (answered) |")
print(f"\nuntyped errors: {untyped}")
PY
