#!/usr/bin/env bash
# The broker's event relay end to end (bench/relay.py): Accounts written at a playground (its
# own process) → change events → a subscription in `forcelink serve` → a local receiver. Prints
# the latency of one change at a time, events/s and latency p50/p99 in a burst (commit →
# arrival), broker memory while the receiver is down and QUEUED events
# wait in the store's outbox, and the time to drain them. Needs python3 (standard library only).
#
# Settings (environment variables):
#   EVENTS   Accounts written for the throughput row     (default 10000)
#   QUEUED   events queued while the receiver is down     (default 100000)
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS="${EVENTS:-10000}"
QUEUED="${QUEUED:-100000}"
PY="${FORCELINK_PYTHON:-python3}"
. bench/lib.sh
say "building the release binary"
cargo build --release --quiet -p forcelink-cli
BIN="$(pwd)/${CARGO_TARGET_DIR:-target}/release/forcelink"
case "${CARGO_TARGET_DIR:-}" in /*) BIN="$CARGO_TARGET_DIR/release/forcelink" ;; esac
"$PY" bench/relay.py "$BIN" "$WORK" "$EVENTS" "$QUEUED"
