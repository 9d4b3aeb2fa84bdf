#!/usr/bin/env bash
# Bulk API 2.0 with forcelink-client against a release-built playground: ingest (insert of a
# generated CSV file: create, uploads of 16 MiB, UploadComplete, polling, successful and failed
# results streamed to a file) and export (a query job of SELECT Id, Name, Industry,
# AnnualRevenue, BillingCity, CreatedDate FROM Account, every result page streamed to a file),
# each at SMALL and LARGE rows, each in its own process
# (crates/forcelink-client/examples/bulk_bench.rs) so its peak RSS (VmHWM) is its own.
# Then the playground's own speed (bench/bulk_raw.py, Python standard library): ingest
# processing rows/s of the same files (UploadComplete answered → JobComplete seen, with the
# playground's CPU time) and query result pages fetched raw (records/s, as the raw row of
# bench/query-pages.sh does for REST query pages).
# Prints markdown tables on stdout; progress on stderr.
#
# Settings (environment variables):
#   SMALL   rows of the small runs   (default 100000)
#   LARGE   rows of the large runs   (default 1000000)
#   CLIENT  0 to skip the forcelink-client rows (default 1)
#   NO_BUILD=1 with FORCELINK_BIN and BULK_BENCH_BIN: run those binaries, build nothing
set -euo pipefail
cd "$(dirname "$0")/.."

SMALL="${SMALL:-100000}"
LARGE="${LARGE:-1000000}"
CLIENT="${CLIENT:-1}"
. bench/lib.sh
for tool in cargo python3; do
  command -v "$tool" >/dev/null 2>&1 || { say "$tool is required"; exit 2; }
done

if [ "${NO_BUILD:-0}" != 1 ]; then
say "building the release binary and the client example"
cargo build --release --quiet -p forcelink-cli
[ "$CLIENT" = 0 ] || cargo build --release --quiet -p forcelink-client --example bulk_bench
fi
BIN="${FORCELINK_BIN:-${CARGO_TARGET_DIR:-target}/release/forcelink}"
RUN="${BULK_BENCH_BIN:-${CARGO_TARGET_DIR:-target}/release/examples/bulk_bench}"

say "generating $SMALL and $LARGE rows of CSV"
if [ "$CLIENT" = 0 ]; then
  # The same rows bulk_bench's `gen` writes.
  for pair in "small $SMALL" "large $LARGE"; do
    set -- $pair
    python3 - "$2" >"$WORK/$1.csv" <<'PY'
import sys
out = sys.stdout
out.write("Name,Industry,AnnualRevenue,BillingCity,Description\n")
industries, cities = ["Energy", "Banking", "Retail", "Technology", "Agriculture"], ["Paris", "Lyon", "Boston", "Osaka"]
for i in range(int(sys.argv[1])):
    out.write(f'Bench Account {i},{industries[i % 5]},{(i % 1000) * 1000},{cities[i % 4]},"bulk, row {i}"\n')
PY
  done
else
  "$RUN" gen "$WORK/small.csv" "$SMALL"
  "$RUN" gen "$WORK/large.csv" "$LARGE"
fi

say "starting the playground with $LARGE generated Accounts"
"$BIN" playground --port 0 --instance-port 0 --pubsub-port 0 --info-file "$WORK/info.json" --key-dir "$WORK/keys" \
  --generate "Account=$LARGE" >"$WORK/playground.log" 2>&1 &
PG_PID=$!
for _ in $(seq 1 6000); do
  [ -s "$WORK/info.json" ] && break
  if ! kill -0 "$PG_PID" 2>/dev/null; then
    say "the playground exited:"; cat "$WORK/playground.log" >&2; exit 1
  fi
  sleep 0.05
done
[ -s "$WORK/info.json" ] || { say "the playground did not start within 300 s"; exit 1; }

say "measuring the playground's own ingest processing and result pages"
python3 bench/bulk_raw.py "$WORK/info.json" "$PG_PID" "$LARGE" "$WORK/small.csv" "$WORK/large.csv" >"$WORK/raw.jsonl"

say "measuring (each row is one process)"
: >"$WORK/rows.jsonl"
[ "$CLIENT" = 0 ] || {
  say "  export, $SMALL rows";  timeout 900 "$RUN" export "$WORK/info.json" "$SMALL" "$WORK/export-small.csv"
  say "  export, $LARGE rows";  timeout 900 "$RUN" export "$WORK/info.json" "$LARGE" "$WORK/export-large.csv"
  say "  ingest, $SMALL rows";  timeout 900 "$RUN" ingest "$WORK/info.json" "$WORK/small.csv"
  say "  ingest, $LARGE rows";  timeout 1800 "$RUN" ingest "$WORK/info.json" "$WORK/large.csv"
} >"$WORK/rows.jsonl"

python3 - "$WORK/raw.jsonl" "$WORK/rows.jsonl" "$WORK" <<'PY'
import json, os, sys
raw = [json.loads(l) for l in open(sys.argv[1])]
rows = [json.loads(l) for l in open(sys.argv[2])]
work = sys.argv[3]
print("The playground's own speed (loopback, Python client reading raw bytes)\n")
print("| measurement | records | seconds | records/s | playground CPU s | records per playground CPU-s |")
print("|---|---:|---:|---:|---:|---:|")
for r in raw:
    if r["mode"] == "ingest":
        label = f"ingest processing (UploadComplete → JobComplete; totalProcessingTime {r['processing_ms'] / 1000:.2f} s)"
    else:
        label = f"query result pages, raw ({r['pages']} pages, {r['bytes'] / 2**20:.1f} MiB)"
    print(f"| {label} | {r['records']:,} | {r['seconds']:.2f} | {r['records'] / r['seconds']:,.0f} | "
          f"{r['cpu_seconds']:.2f} | {r['records'] / max(r['cpu_seconds'], 0.01):,.0f} |")
print()
if not rows:
    sys.exit(0)
print("Bulk API 2.0 through the playground (release build, loopback); forcelink-client's own process\n")
print("| operation | records | CSV size (MiB) | seconds | records/s | peak RSS (MiB) |")
print("|---|---:|---:|---:|---:|---:|")
sizes = {"export": ["export-small.csv", "export-large.csv"], "ingest": ["small.csv", "large.csv"]}
seen = {"export": 0, "ingest": 0}
for r in rows:
    f = sizes[r["mode"]][seen[r["mode"]]]
    seen[r["mode"]] += 1
    size = os.path.getsize(os.path.join(work, f)) / 2**20
    extra = ""
    if r["mode"] == "ingest":
        extra = f" ({r['uploads']} uploads; upload {r['upload_s']:.1f} s, processed at {r['processed_s']:.1f} s)"
    print(f"| {r['mode']}{extra} | {r['records']:,} | {size:.1f} | {r['seconds']:.2f} | {r['records_per_s']:,.0f} | {r['peak_rss_kib'] / 1024:.1f} |")
PY
