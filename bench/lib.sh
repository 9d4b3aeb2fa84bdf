# Shared by the benchmark scripts (sourced, not run): progress output, a temporary work
# directory, and stopping the playground they start (PG_PID) on exit or Ctrl-C.
say() { echo "$*" >&2; }

WORK="$(mktemp -d)"
PG_PID=""
cleanup() {
  if [ -n "$PG_PID" ] && kill -0 "$PG_PID" 2>/dev/null; then
    kill "$PG_PID" 2>/dev/null || true
    wait "$PG_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
