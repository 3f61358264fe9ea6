#!/usr/bin/env bash
# Ingest rate on a fresh server, as bench/run.sh sees it: each load starts its own Crest on an
# empty data directory and sends one bench-sized workload (20 hosts x 500 series x 40 samples,
# 400,000 samples) with `crest loadgen`. Prints each load's samples/s and their mean.
# usage: bench/ingest_fresh.sh [lp|rw] [loads]
# Compare builds by alternating them (CREST=path/to/crest), several times: single loads on this
# 2-core machine move by 10 % or more. Nothing here asserts timings.
set -euo pipefail
cd "$(dirname "$0")/.."
PROTO=${1:-lp}
LOADS=${2:-4}
BENCH=ingest-fresh
. bench/lib.sh

PORT=18087
rates=()
for n in $(seq 1 "$LOADS"); do
  "$CREST" serve --data-dir "$W/data-$n" --listen "127.0.0.1:$PORT" --snapshot-interval 3600s \
    >"$W/serve-$n.log" 2>&1 &
  PIDS+=($!); SERVER=$!
  for _ in $(seq 1 100); do curl -sf "127.0.0.1:$PORT/ready" >/dev/null && break; sleep 0.1; done
  curl -sf "127.0.0.1:$PORT/ready" >/dev/null || { echo "crest did not start"; cat "$W/serve-$n.log"; exit 1; }
  rates+=("$("$CREST" loadgen --url "http://127.0.0.1:$PORT" --protocol "$PROTO" --hosts 20 \
    --samples 40 2>/dev/null | sed -n 's/.*"samples_per_sec":\([0-9]*\).*/\1/p')")
  kill -TERM "$SERVER"; wait "$SERVER" 2>/dev/null || true
  rm -rf "$W/data-$n"
done
echo "protocol $PROTO, $LOADS fresh loads of 400,000 samples; samples/s: ${rates[*]}"
printf '%s\n' "${rates[@]}" | awk '{s += $1} END {printf "  mean %.0f samples/s\n", s / NR}'
