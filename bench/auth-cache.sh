#!/usr/bin/env bash
# Cached TokenCache::get_token cost (criterion), printed as a markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo bench -p forcelink-auth --bench cache >&2

target="${CARGO_TARGET_DIR:-target}"
python3 - "$target/criterion" <<'PY'
import json, os, sys
root = sys.argv[1]
rows = [
    ("get_token cached, 1 task", "1 task (current-thread runtime)"),
    ("get_token cached, 8 concurrent tasks (per call)", "8 concurrent tasks (2 worker threads), per call"),
]
print("| scenario | mean ns/call | 95% CI |")
print("|---|---|---|")
for name, label in rows:
    path = os.path.join(root, name, "new", "estimates.json")
    with open(path) as f:
        mean = json.load(f)["mean"]
    ci = mean["confidence_interval"]
    print(f"| {label} | {mean['point_estimate']:.0f} | {ci['lower_bound']:.0f}–{ci['upper_bound']:.0f} |")
PY
