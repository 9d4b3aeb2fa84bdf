#!/usr/bin/env bash
# Query paging from the playground: generates RECORDS Accounts (timed), then follows
# nextRecordsUrl through every page of
#   SELECT Id, Name, Industry, AnnualRevenue, BillingCity, CreatedDate FROM Account
# over one keep-alive connection, reading raw bytes (no JSON parsing), and reports pages/s and
# MB/s. A second row does the same with gzip; a third parses each page as JSON on the client
# (Python's json module); then a Rust client (crates/forcelink-playground/examples/parse_pages.rs,
# reqwest + serde_json) parses every page into serde_json::Value and into typed structs, each
# reported end to end and for the parsing alone. The Python rows also report the playground's
# CPU time (user + system, from /proc) over the run and the records it served per CPU-second:
# its serving speed apart from the client's share of the two cores. Prints a markdown table on
# stdout; progress on stderr.
#
# Settings (environment variables):
#   RECORDS   Accounts to generate   (default 1000000)
#   BATCH     Sforce-Query-Options batchSize (default 2000)
#   NO_BUILD=1 with FORCELINK_BIN and PARSE_PAGES_BIN: run those binaries, build nothing
set -euo pipefail
cd "$(dirname "$0")/.."

RECORDS="${RECORDS:-1000000}"
BATCH="${BATCH:-2000}"
. bench/lib.sh
for tool in cargo python3; do
  command -v "$tool" >/dev/null 2>&1 || { say "$tool is required"; exit 2; }
done

if [ "${NO_BUILD:-0}" != 1 ]; then
say "building the release binary"
cargo build --release --quiet -p forcelink-cli
cargo build --release --quiet -p forcelink-playground --example parse_pages
fi
BIN="${FORCELINK_BIN:-${CARGO_TARGET_DIR:-target}/release/forcelink}"
PARSE="${PARSE_PAGES_BIN:-${CARGO_TARGET_DIR:-target}/release/examples/parse_pages}"


say "starting the playground with $RECORDS generated Accounts"
START=$(date +%s.%N)
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
READY=$(date +%s.%N)

# Start-up without generation, to subtract key loading and binding from the generate time.
python3 - "$WORK/info.json" "$BATCH" "$RECORDS" "$START" "$READY" "$PG_PID" <<'PY'
import http.client, json, os, re, sys, time, urllib.parse, gzip

info = json.load(open(sys.argv[1]))
batch, records, start, ready = int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
pid = int(sys.argv[6])

def cpu_seconds():
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
u = urllib.parse.urlparse(info["instance_url"])
conn = http.client.HTTPConnection(u.hostname, u.port)
form = urllib.parse.urlencode({"grant_type": "client_credentials", "client_id": info["client"]["client_id"],
                               "client_secret": info["client"]["client_secret"]})
conn.request("POST", "/services/oauth2/token", form, {"Content-Type": "application/x-www-form-urlencoded"})
token = json.loads(conn.getresponse().read())["access_token"]
soql = "SELECT Id, Name, Industry, AnnualRevenue, BillingCity, CreatedDate FROM Account"
first = "/services/data/v66.0/query?" + urllib.parse.urlencode({"q": soql})
nxt = re.compile(rb'"nextRecordsUrl":"([^"]+)"')

def run(mode):
    headers = {"Authorization": "Bearer " + token, "Sforce-Query-Options": f"batchSize={batch}"}
    if mode == "gzip":
        headers["Accept-Encoding"] = "gzip"
    cpu0 = cpu_seconds()
    path, pages, wire, raw, seen, t0 = first, 0, 0, 0, 0, time.perf_counter()
    while path:
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            sys.exit(f"{path}: HTTP {resp.status}: {body[:300]!r}")
        wire += len(body)
        if resp.getheader("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        raw += len(body)
        pages += 1
        if mode == "parse":
            page = json.loads(body)
            seen += len(page["records"])
            path = page.get("nextRecordsUrl")
        else:
            m = nxt.search(body[:400])
            path = m.group(1).decode() if m else None
            seen += body.count(b'"attributes"')
    secs = time.perf_counter() - t0
    cpu = cpu_seconds() - cpu0
    if seen != records:
        sys.exit(f"{mode}: saw {seen} records, expected {records}")
    return pages, secs, wire, raw, cpu

print(f"Generate {records:,} Accounts + start: {ready - start:.2f} s\n")
print("| mode | pages | records/page | seconds | pages/s | records/s | MB/s on the wire | MB/s JSON | playground CPU s | records per playground CPU-s |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for mode, label in [("raw", "raw HTTP, no parsing"), ("gzip", "gzip, decompressed"), ("parse", "client parses JSON (Python)")]:
    pages, secs, wire, raw, cpu = run(mode)
    print(f"| {label} | {pages} | {records // max(pages, 1)} | {secs:.2f} | {pages / secs:.0f} | {records / secs:,.0f} | {wire / secs / 1e6:.1f} | {raw / secs / 1e6:.1f} | {cpu:.2f} | {records / max(cpu, 0.01):,.0f} |")
PY
"$PARSE" "$WORK/info.json" "$RECORDS" "$BATCH"
