#!/usr/bin/env bash
# Wall time of `forcelink token get CONNECTION` with a cached token: the whole process (start,
# open the SQLite store, decrypt, print), as a script or a workflow step would run it. Signs a
# client-credentials connection in to a release-built playground in a throwaway home, then runs
# `token get` RUNS times (after WARMUP runs) and prints a markdown table of the wall times
# (target: median <= 15 ms). Also reports `--json` and a `--renew` (one token request each) for
# comparison. Progress on stderr.
#
# Settings (environment variables):
#   RUNS     timed runs per row (default 200)
#   WARMUP   untimed runs first (default 10)
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS="${RUNS:-200}"
WARMUP="${WARMUP:-10}"
. bench/lib.sh
for tool in cargo python3; do
  command -v "$tool" >/dev/null 2>&1 || { say "$tool is required"; exit 2; }
done

say "building the release binary"
cargo build --release --quiet -p forcelink-cli
BIN="$(pwd)/${CARGO_TARGET_DIR:-target}/release/forcelink"

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

python3 - "$BIN" "$WORK" "$RUNS" "$WARMUP" <<'PY'
import json, os, statistics, subprocess, sys, time

bin_, work, runs, warmup = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
info = json.load(open(os.path.join(work, "info.json")))
env = {"PATH": "/usr/bin:/bin", "HOME": work, "XDG_CONFIG_HOME": work + "/config",
       "XDG_DATA_HOME": work + "/data", "CS": info["client"]["client_secret"],
       # The playground's instance origin may receive its credentials (the host rule).
       "FORCELINK_ALLOW_ORIGINS": info["instance_url"]}
def run(*args):
    subprocess.run([bin_, *args], env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
run("login", "client-credentials", "bench", "--login-url", info["instance_url"],
    "--client-id", info["client"]["client_id"], "--client-secret", "env:CS")

def timed(args, n):
    for _ in range(warmup):
        run(*args)
    out = []
    for _ in range(n):
        t = time.perf_counter()
        run(*args)
        out.append((time.perf_counter() - t) * 1000)
    return out

rows = [("token get bench (cached)", timed(["token", "get", "bench"], runs)),
        ("token get bench --json (cached)", timed(["token", "get", "bench", "--json"], runs)),
        ("token get bench --renew (1 token request)", timed(["token", "get", "bench", "--renew"], max(runs // 10, 10)))]
print(f"`forcelink token get`, {os.cpu_count()} cores, wall time per process (ms)\n")
print("| command | runs | median | p90 | p99 | min |")
print("|---|---:|---:|---:|---:|---:|")
for name, xs in rows:
    xs.sort()
    q = lambda p: xs[min(len(xs) - 1, int(p * len(xs)))]
    print(f"| {name} | {len(xs)} | {statistics.median(xs):.1f} | {q(0.9):.1f} | {q(0.99):.1f} | {xs[0]:.1f} |")
print("\ntarget: cached median <= 15 ms")
PY
