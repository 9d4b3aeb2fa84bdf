#!/usr/bin/env bash
# Salesforce events (the Pub/Sub API) with forcelink against a release-built playground (h2c on
# loopback):
#   - latency: LATENCY_WRITES Account creations through REST, one at a time, each waiting for its
#     change event on /data/AccountChangeEvent (p50/p99 from the start of the write);
#   - EVENTS platform events published to /event/Forcelink_Notice__e (PublishStream, batches of
#     100), then subscribed from EARLIEST and decoded by forcelink-client: SMALL and EVENTS
#     events, each run its own process
#     (crates/forcelink-client/examples/events_bench.rs), with its resident memory after SMALL
#     events and at the end (flat when the client keeps nothing per event);
#   - the CLI: `forcelink events subscribe … --replay earliest --count N` for CLI_EVENTS and
#     EVENTS, its NDJSON piped into `wc -l` (which checks the count), timed as a whole process
#     with its peak RSS.
# Prints markdown tables on stdout; progress on stderr.
#
# Settings (environment variables):
#   EVENTS          events published and read in the large runs   (default 1000000)
#   SMALL           events of the small client run, and where the  (default 100000)
#                   large run samples its memory
#   CLI_EVENTS      events of the small CLI run                    (default SMALL)
#   LATENCY_WRITES  REST writes timed to their change event        (default 200)
set -euo pipefail
cd "$(dirname "$0")/.."

EVENTS="${EVENTS:-1000000}"
SMALL="${SMALL:-100000}"
CLI_EVENTS="${CLI_EVENTS:-$SMALL}"
LATENCY_WRITES="${LATENCY_WRITES:-200}"
for v in EVENTS SMALL CLI_EVENTS LATENCY_WRITES; do
  [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || { echo "$v must be a positive whole number, got '${!v}'" >&2; exit 2; }
done
if [ "$SMALL" -gt "$EVENTS" ] || [ "$CLI_EVENTS" -gt "$EVENTS" ]; then
  echo "SMALL ($SMALL) and CLI_EVENTS ($CLI_EVENTS) must not exceed EVENTS ($EVENTS)" >&2; exit 2
fi
. bench/lib.sh
for tool in cargo python3; do
  command -v "$tool" >/dev/null 2>&1 || { say "$tool is required"; exit 2; }
done

say "building the release binary and the client example"
cargo build --release --quiet -p forcelink-cli
cargo build --release --quiet -p forcelink-client --example events_bench
TARGET="$(cd "${CARGO_TARGET_DIR:-target}" && pwd)"
BIN="$TARGET/release/forcelink"
RUN="$TARGET/release/examples/events_bench"

say "starting the playground"
"$BIN" playground --port 0 --instance-port 0 --pubsub-port 0 --info-file "$WORK/info.json" \
  --key-dir "$WORK/keys" >"$WORK/playground.log" 2>&1 &
PG_PID=$!
for _ in $(seq 1 600); do
  [ -s "$WORK/info.json" ] && break
  kill -0 "$PG_PID" 2>/dev/null || { say "the playground exited:"; cat "$WORK/playground.log" >&2; exit 1; }
  sleep 0.05
done
[ -s "$WORK/info.json" ] || { say "the playground did not start within 30 s"; exit 1; }

python3 - "$BIN" "$RUN" "$WORK" "$PG_PID" "$EVENTS" "$SMALL" "$CLI_EVENTS" "$LATENCY_WRITES" <<'PY'
import json, os, subprocess, sys, time

bin_, run, work, pg_pid = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
events, small, cli_events, writes = (int(a) for a in sys.argv[5:9])
info_path = os.path.join(work, "info.json")
info = json.load(open(info_path))
say = lambda *a: print(*a, file=sys.stderr, flush=True)

def example(*args, timeout=900):
    out = subprocess.run([run, info_path, *map(str, args)], check=True, stdout=subprocess.PIPE, timeout=timeout)
    return json.loads(out.stdout)

def pg_rss_mib():
    for line in open(f"/proc/{pg_pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0

# Latency first, while the event log is empty.
say(f"  latency: {writes} REST writes, each to its change event")
lat = example("latency", writes)
say(f"  publishing {events:,} platform events")
pub = example("publish", events)
say(f"  client: {small:,} events decoded")
sub_small = example("subscribe", small, small)
say(f"  client: {events:,} events decoded")
sub_large = example("subscribe", events, small)
for r in (sub_small, sub_large):
    if r["subscribes"] != 1:
        sys.exit(f"a subscribe run resubscribed ({r['subscribes']} subscribe calls): the rate would be wrong")

say(f"  CLI: {cli_events:,} and {events:,} events to NDJSON")
env = {"PATH": "/usr/bin:/bin", "HOME": work, "XDG_CONFIG_HOME": work + "/config",
       "XDG_DATA_HOME": work + "/data", "CS": info["client"]["client_secret"],
       # The playground's instance origin and its Pub/Sub endpoint (h2c) may receive its tokens.
       "FORCELINK_ALLOW_ORIGINS": f"{info['instance_url']},http://{info['pubsub_endpoint']}"}
subprocess.run([bin_, "login", "client-credentials", "bench", "--login-url", info["instance_url"],
                "--client-id", info["client"]["client_id"], "--client-secret", "env:CS"],
               env=env, check=True, stdout=subprocess.DEVNULL)
def cli(n):
    """`forcelink events subscribe … --count n`, its NDJSON counted by `wc -l` through a pipe."""
    t = time.perf_counter()
    p = subprocess.Popen([bin_, "events", "subscribe", "/event/Forcelink_Notice__e", "-c", "bench",
                          "--replay", "earliest", "--count", str(n),
                          "--pubsub-endpoint", info["pubsub_endpoint"]], env=env, stdout=subprocess.PIPE)
    wc = subprocess.Popen(["wc", "-lc"], stdin=p.stdout, stdout=subprocess.PIPE)
    p.stdout.close()
    _, status, usage = os.wait4(p.pid, 0)
    seconds = time.perf_counter() - t
    lines, size = (int(x) for x in wc.communicate()[0].split())
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"forcelink events subscribe exited with {os.waitstatus_to_exitcode(status)}")
    if lines != n:
        sys.exit(f"the CLI printed {lines} lines, expected {n}")
    return {"events": n, "seconds": seconds, "peak_rss_kib": usage.ru_maxrss, "mib": size / 2**20}

cli_runs = [cli(n) for n in sorted({cli_events, events})]

mib = lambda kib: kib / 1024
print(f"Pub/Sub API on loopback (h2c), {os.cpu_count()} cores shared by the playground and the client\n")
print("| measurement | events | seconds | events/s | memory (MiB) |")
print("|---|---:|---:|---:|---|")
print(f"| publish (PublishStream, batches of 100), for reference | {pub['events']:,} | {pub['seconds']:.2f} | {pub['events_per_s']:,.0f} | |")
for r in (sub_small, sub_large):
    mem = f"RSS {mib(r['rss_end_kib']):.1f} at the end, peak {mib(r['peak_rss_kib']):.1f}"
    if r["events"] > r["mark"]:
        mem = f"RSS {mib(r['rss_at_mark_kib']):.1f} at {r['mark']:,}, " + mem
    print(f"| forcelink-client, decoded | {r['events']:,} | {r['seconds']:.2f} | {r['events_per_s']:,.0f} | {mem} |")
for r in cli_runs:
    print(f"| `forcelink events subscribe --count` → NDJSON ({r['mib']:.0f} MiB), whole process | {r['events']:,} | {r['seconds']:.2f} | {r['events'] / r['seconds']:,.0f} | peak {mib(r['peak_rss_kib']):.1f} |")
print()
print("| latency: REST write → change event at the subscriber | writes | p50 | p99 | max | REST call p50 |")
print("|---|---:|---:|---:|---:|---:|")
print(f"| one write at a time, from the start of the write | {lat['writes']} | {lat['p50_ms']:.2f} ms | {lat['p99_ms']:.2f} ms | {lat['max_ms']:.2f} ms | {lat['rest_p50_ms']:.2f} ms |")
print(f"\nplayground RSS at the end: {pg_rss_mib():.0f} MiB (it keeps every event for 72 h of its clock)")
PY
