#!/usr/bin/env bash
# Query streaming with forcelink-client against a release-built playground holding RECORDS
# generated Accounts: streams
#   SELECT Id, Name, Industry, AnnualRevenue, BillingCity, CreatedDate FROM Account
# with forcelink (typed structs and serde_json::Value), and fetches the same pages raw (reqwest,
# no JSON parsing) in the same run, each in its own process
# (crates/forcelink-client/examples/query_stream.rs) so its peak RSS is its own. A second
# forcelink row streams only SMALL records (LIMIT) to show memory does not grow with the count.
# Prints a markdown table on stdout; progress on stderr.
#
# Settings (environment variables):
#   RECORDS   Accounts to generate            (default 1000000)
#   SMALL     record count of the small run   (default 100000)
#   BATCH     Sforce-Query-Options batchSize  (default 2000)
set -euo pipefail
cd "$(dirname "$0")/.."

RECORDS="${RECORDS:-1000000}"
SMALL="${SMALL:-100000}"
BATCH="${BATCH:-2000}"
. bench/lib.sh
for tool in cargo python3; do
  command -v "$tool" >/dev/null 2>&1 || { say "$tool is required"; exit 2; }
done

say "building the release binary and the client example"
cargo build --release --quiet -p forcelink-cli
cargo build --release --quiet -p forcelink-client --example query_stream
BIN="${CARGO_TARGET_DIR:-target}/release/forcelink"
RUN="${CARGO_TARGET_DIR:-target}/release/examples/query_stream"

say "starting the playground with $RECORDS generated Accounts"
"$BIN" playground --port 0 --instance-port 0 --info-file "$WORK/info.json" --key-dir "$WORK/keys" \
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

run() { # mode limit → one JSON line
  say "  $1, $2 records"
  timeout 600 "$RUN" "$WORK/info.json" "$1" "$2" "$BATCH"
}
say "measuring (each row is one process)"
{
  run raw all
  run typed all
  run value all
  run typed "$SMALL"
  run value "$SMALL"
} >"$WORK/rows.jsonl"

python3 - "$WORK/rows.jsonl" "$RECORDS" "$SMALL" "$BATCH" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
records, small, batch = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
raw = rows[0]
labels = {"raw": "raw HTTP, no parsing", "typed": "forcelink, typed struct", "value": "forcelink, serde_json::Value"}
print(f"{records:,} generated Accounts, 6 fields, pages of {batch}\n")
print("| client | records | seconds | records/s | ratio to raw | peak RSS (MiB) |")
print("|---|---:|---:|---:|---:|---:|")
for r in rows:
    expected = records if r is rows[0] or rows.index(r) < 3 else small
    if r["records"] != expected:
        sys.exit(f"{r['mode']}: saw {r['records']} records, expected {expected}")
    ratio = r["records_per_s"] / raw["records_per_s"] if r["mode"] != "raw" else 1.0
    ratio_text = "—" if r["mode"] == "raw" else f"{ratio:.2f}"
    print(f"| {labels[r['mode']]} | {r['records']:,} | {r['seconds']:.2f} | {r['records_per_s']:,.0f} | {ratio_text} | {r['peak_rss_kib'] / 1024:.1f} |")
PY
