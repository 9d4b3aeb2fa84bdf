#!/usr/bin/env bash
# `forcelink query` end to end: a release-built playground holding RECORDS generated Accounts,
# a client-credentials connection in a throwaway home, then
#   forcelink query "SELECT Id, Name, Industry, AnnualRevenue, BillingCity, CreatedDate FROM Account"
# once per output format (FORMATS), stdout to a file, each timed as a whole process (start-up,
# store, token, every page) with its own peak RSS (from wait4). The raw page fetch of
# bench/query-stream.sh (crates/forcelink-client/examples/query_stream.rs) runs in the same run as
# the reference. Each output's size and SHA-256 are printed, so two builds can be checked to write
# the same bytes. Prints a markdown table on stdout; progress on stderr.
#
# Settings (environment variables):
#   RECORDS   Accounts to generate                 (default 200000)
#   BATCH     records per page (--batch-size)      (default 2000)
#   FORMATS   formats to measure, space-separated  (default "ndjson csv json table")
set -euo pipefail
cd "$(dirname "$0")/.."

RECORDS="${RECORDS:-200000}"
BATCH="${BATCH:-2000}"
FORMATS="${FORMATS:-ndjson csv json table}"
. bench/lib.sh
for tool in cargo python3; do
  command -v "$tool" >/dev/null 2>&1 || { say "$tool is required"; exit 2; }
done

say "building the release binary and the client example"
cargo build --release --quiet -p forcelink-cli
cargo build --release --quiet -p forcelink-client --example query_stream
TARGET="$(cd "${CARGO_TARGET_DIR:-target}" && pwd)"
BIN="$TARGET/release/forcelink"
RUN="$TARGET/release/examples/query_stream"

say "starting the playground with $RECORDS generated Accounts"
"$BIN" playground --port 0 --instance-port 0 --info-file "$WORK/info.json" --key-dir "$WORK/keys" \
  --generate "Account=$RECORDS" >"$WORK/playground.log" 2>&1 &
PG_PID=$!
for _ in $(seq 1 6000); do
  [ -s "$WORK/info.json" ] && break
  kill -0 "$PG_PID" 2>/dev/null || { say "the playground exited:"; cat "$WORK/playground.log" >&2; exit 1; }
  sleep 0.05
done
[ -s "$WORK/info.json" ] || { say "the playground did not start within 300 s"; exit 1; }

python3 - "$BIN" "$RUN" "$WORK" "$RECORDS" "$BATCH" "$FORMATS" <<'PY'
import hashlib, json, os, subprocess, sys, time

bin_, run, work, records, batch, formats = sys.argv[1:7]
records, batch, formats = int(records), int(batch), formats.split()
info = json.load(open(os.path.join(work, "info.json")))
env = {"PATH": "/usr/bin:/bin", "HOME": work, "XDG_CONFIG_HOME": work + "/config",
       "XDG_DATA_HOME": work + "/data", "CS": info["client"]["client_secret"],
       "FORCELINK_ALLOW_ORIGINS": info["instance_url"]}
subprocess.run([bin_, "login", "client-credentials", "bench", "--login-url", info["instance_url"],
                "--client-id", info["client"]["client_id"], "--client-secret", "env:CS"],
               env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
soql = "SELECT Id, Name, Industry, AnnualRevenue, BillingCity, CreatedDate FROM Account"

def timed(argv, out_path):
    with open(out_path, "wb") as out:
        t = time.perf_counter()
        p = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(p.pid, 0)
        secs = time.perf_counter() - t
    err = p.stderr.read().decode(errors="replace")
    if status != 0:
        sys.exit(f"{' '.join(argv[:3])}: exit status {status}: {err}")
    return secs, usage.ru_maxrss

print(f"  raw", file=sys.stderr)
secs, _ = timed([run, os.path.join(work, "info.json"), "raw", "all", str(batch)], os.path.join(work, "raw.json"))
raw = json.load(open(os.path.join(work, "raw.json")))
if raw["records"] != records:
    sys.exit(f"raw: saw {raw['records']} records, expected {records}")
rows = [("raw HTTP, no parsing (client example)", raw["seconds"], raw["records_per_s"], raw["peak_rss_kib"], None, None)]
for fmt in formats:
    print(f"  forcelink query --format {fmt}", file=sys.stderr)
    path = os.path.join(work, f"out.{fmt}")
    secs, rss = timed([bin_, "query", soql, "-c", "bench", "--format", fmt, "--batch-size", str(batch)], path)
    size = os.path.getsize(path)
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    with open(path, "rb") as f:
        lines = sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
    expected = {"ndjson": records, "csv": records + 1, "json": records + 2, "table": records + 3}[fmt]
    if lines != expected:
        sys.exit(f"{fmt}: {lines} lines, expected {expected}")
    rows.append((f"forcelink query --format {fmt}", secs, records / secs, rss, size, digest.hexdigest()[:16]))

print(f"{records:,} generated Accounts, 6 fields, pages of {batch}; load average {os.getloadavg()[0]:.1f}\n")
print("| client | seconds | records/s | ratio to raw | peak RSS (MiB) | output bytes | output SHA-256 (first 16) |")
print("|---|---:|---:|---:|---:|---:|---|")
for name, secs, rate, rss, size, digest in rows:
    ratio = "—" if size is None else f"{rate / rows[0][2]:.2f}"
    print(f"| {name} | {secs:.2f} | {rate:,.0f} | {ratio} | {rss / 1024:.1f} | {'—' if size is None else f'{size:,}'} | {digest or '—'} |")
PY
