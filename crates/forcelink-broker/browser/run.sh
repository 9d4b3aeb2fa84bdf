#!/usr/bin/env bash
# The broker's browser test: installs playwright-core (npm; no browser download) and Debian's
# chromium when missing, starts a stand-in workflow tool (tool.mjs: where connect links return,
# a webhook receiver) and `forcelink serve --playground` allowing the tool's origin, and drives
# the page with test.mjs. Leaves screenshots at target/broker-browser*.png.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"

if [ ! -x /usr/bin/chromium ]; then
  echo "installing Debian's chromium" >&2
  apt-get update -qq && apt-get install -y -qq chromium >/dev/null
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "error: npm is required (apt-get install -y npm)" >&2
  exit 2
fi
if [ ! -d "$here/node_modules/playwright-core" ]; then
  (cd "$here" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error >&2)
fi

(cd "$root" && cargo build -q -p forcelink-cli)
work="$(mktemp -d)"
pid=""
tool_pid=""
cleanup() {
  for p in $pid $tool_pid; do
    kill "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

# The workflow tool first: its origin must be allowed when the broker starts.
node "$here/tool.mjs" >"$work/tool.out" 2>"$work/tool.err" &
tool_pid=$!
for _ in $(seq 1 100); do
  [ -s "$work/tool.out" ] && break
  kill -0 "$tool_pid" 2>/dev/null || { cat "$work/tool.err" >&2; exit 1; }
  sleep 0.1
done
tool_port="$(head -n1 "$work/tool.out")"
[ -n "$tool_port" ] || { echo "the stand-in workflow tool did not start" >&2; exit 1; }
export TOOL_URL="http://127.0.0.1:$tool_port"

out="$work/serve.out"
export INFO_FILE="$work/info.json"
"$target/debug/forcelink" serve --playground --bind 127.0.0.1:0 --allow-origin "$TOOL_URL" \
  --info-file "$INFO_FILE" >"$out" 2>"$work/serve.err" &
pid=$!
for _ in $(seq 1 300); do
  grep -qx ready "$out" && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/serve.err" >&2; exit 1; }
  sleep 0.1
done
grep -qx ready "$out" || { echo "forcelink serve did not become ready" >&2; cat "$work/serve.err" >&2; exit 1; }

# The broker's URL, the admin key and the playground's app and user come from the info file.
mkdir -p "$target"
export SCREENSHOT="$target/broker-browser.png"
node "$here/test.mjs"
