#!/usr/bin/env bash
# The broker's browser test: installs playwright-core (npm; no browser download) and Debian's
# chromium when missing, starts `forcelink serve --playground` on a free port, and drives the
# page with test.mjs. Leaves a screenshot at target/broker-browser.png.
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
out="$work/serve.out"
"$target/debug/forcelink" serve --playground --bind 127.0.0.1:0 >"$out" 2>"$work/serve.err" &
pid=$!
cleanup() {
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
for _ in $(seq 1 300); do
  grep -qx ready "$out" && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/serve.err" >&2; exit 1; }
  sleep 0.1
done
grep -qx ready "$out" || { echo "forcelink serve did not become ready" >&2; cat "$work/serve.err" >&2; exit 1; }

field() { grep -m1 "^ *$1 " "$out" | sed -E "s/^ *$1 +//; s/ .*//"; }
user_line="$(grep -m1 '^ *user ' "$out" | sed -E 's/^ *user +//')"
mkdir -p "$target"
export BROKER_URL="$(field page | sed 's#/$##')"
export ADMIN_KEY="$(field 'admin API key')"
export ORG_LOGIN_URL="$(field 'login URL')"
export CLIENT_ID="$(field 'client id')"
export CLIENT_SECRET="$(field 'client secret')"
export ORG_USERNAME="${user_line%% / *}"
export ORG_PASSWORD="${user_line##* / }"
export SCREENSHOT="$target/broker-browser.png"
node "$here/test.mjs"
