#!/usr/bin/env bash
# A large file as a ContentVersion with forcelink-client's `upload_document_file` (multipart,
# read from the file while it is sent): the client's peak RSS and throughput, each upload its own
# process (crates/forcelink-client/examples/upload_bench.rs). Two receivers:
#   - a release-built playground (the real answer, and its own limit on request bodies);
#   - a discarding receiver on loopback (Python's standard library: reads the body in 1 MiB
#     chunks, counts it, answers a ContentVersion id), so a file larger than the playground
#     takes can be sent whole.
# Prints a markdown table on stdout; progress on stderr.
#
# Settings (environment variables):
#   SIZES_MIB   file sizes to upload, space-separated  (default "16 256 1024")
set -euo pipefail
cd "$(dirname "$0")/.."

SIZES_MIB="${SIZES_MIB:-16 256 1024}"
. bench/lib.sh
for tool in cargo python3; do
  command -v "$tool" >/dev/null 2>&1 || { say "$tool is required"; exit 2; }
done

say "building the release binary and the client example"
cargo build --release --quiet -p forcelink-cli
cargo build --release --quiet -p forcelink-client --example upload_bench
TARGET="$(cd "${CARGO_TARGET_DIR:-target}" && pwd)"
BIN="$TARGET/release/forcelink"
RUN="$TARGET/release/examples/upload_bench"

say "starting the playground"
"$BIN" playground --port 0 --instance-port 0 --info-file "$WORK/info.json" --key-dir "$WORK/keys" \
  >"$WORK/playground.log" 2>&1 &
PG_PID=$!
for _ in $(seq 1 600); do
  [ -s "$WORK/info.json" ] && break
  kill -0 "$PG_PID" 2>/dev/null || { say "the playground exited:"; cat "$WORK/playground.log" >&2; exit 1; }
  sleep 0.05
done
[ -s "$WORK/info.json" ] || { say "the playground did not start"; exit 1; }

say "starting the discarding receiver"
cat >"$WORK/sink.py" <<'PY'
import http.server, json, sys
class Sink(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def answer(self, status, doc):
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_POST(self):
        left = int(self.headers.get("Content-Length", "0"))
        got = 0
        while left:
            chunk = self.rfile.read(min(left, 1 << 20))
            if not chunk: break
            got += len(chunk); left -= len(chunk)
        with open(sys.argv[2], "a") as f: f.write(f"{got}\n")
        self.answer(201, {"id": "068000000000001AAA", "success": True, "errors": []})
    def do_GET(self):
        self.answer(200, {"attributes": {"type": "ContentVersion"}, "Id": "068000000000001AAA",
                          "ContentDocumentId": "069000000000001AAA"})
server = http.server.HTTPServer(("127.0.0.1", 0), Sink)
open(sys.argv[1], "w").write(str(server.server_address[1]))
server.serve_forever()
PY
python3 "$WORK/sink.py" "$WORK/sink.port" "$WORK/sink.log" &
SINK_PID=$!
trap 'kill $SINK_PID 2>/dev/null || true; cleanup' EXIT
for _ in $(seq 1 100); do [ -s "$WORK/sink.port" ] && break; sleep 0.05; done
SINK="http://127.0.0.1:$(cat "$WORK/sink.port")"

{
  for mib in $SIZES_MIB; do
    say "  $mib MiB file"
    truncate -s 0 "$WORK/file.bin"
    head -c "$((mib * 1024 * 1024))" /dev/urandom >"$WORK/file.bin"
    printf '{"receiver":"playground","mib":%s,"run":%s}\n' "$mib" "$(timeout 600 "$RUN" "$WORK/info.json" "$WORK/file.bin")"
    printf '{"receiver":"sink","mib":%s,"run":%s,"received":%s}\n' "$mib" \
      "$(timeout 600 "$RUN" --token bench "$SINK" "$WORK/file.bin")" "$(tail -n 1 "$WORK/sink.log")"
  done
} >"$WORK/rows.jsonl"
rm -f "$WORK/file.bin"

python3 - "$WORK/rows.jsonl" <<'PY'
import json, os, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print(f"upload_document_file, multipart from disk; load average {os.getloadavg()[0]:.1f}\n")
print("| receiver | file (MiB) | seconds | MiB/s | outcome | client peak RSS (MiB) |")
print("|---|---:|---:|---:|---|---:|")
for r in rows:
    run = r["run"]
    out = run["outcome"]
    if out["ok"]:
        text = "created"
        if r["receiver"] == "sink":
            text += f", {r['received']:,} body bytes received"
    else:
        text = "refused: " + out["error"][:120].replace("|", "/")
    print(f"| {r['receiver']} | {r['mib']} | {run['seconds']:.2f} | {run['mib_per_s']:,.0f} | {text} | {run['peak_rss_kib'] / 1024:.1f} |")
PY
