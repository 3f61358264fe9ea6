# Prelude shared by the bench scripts; source it after `cd` to the repository root.
# Sets CREST: the release build of crest, built here unless CREST=path/to/crest is given (the old
# CREST_BIN of bench/ui.sh is accepted too). Sets W: a work directory under /var/tmp, named
# after BENCH (default "bench"), removed on exit. Every PID a script appends to PIDS is stopped
# on exit: only processes the script started, by PID.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/crest-target}"
CREST="${CREST:-${CREST_BIN:-}}"
[ -n "$CREST" ] || cargo build --release -p crest-web --bin crest >/dev/null
CREST="${CREST:-$CARGO_TARGET_DIR/release/crest}"
W=$(mktemp -d "/var/tmp/crest-${BENCH:-bench}.XXXXXX")
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$W"
}
trap cleanup EXIT
