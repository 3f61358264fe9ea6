#!/usr/bin/env bash
# Server CPU per ingested sample, by thread: where the write path spends its time.
# usage: bench/ingest_cpu.sh [lp|rw] [runs]
# Starts one Crest, warms it up with one load, then sends `runs` loads of 100 hosts x 500 series
# x 40 samples (2 M samples each) with `crest loadgen`, and reads the server's threads' CPU time
# from /proc before and after. Prints each load's rate and the CPU seconds of the request
# threads (tokio-rt-worker), the WAL writer (crest-wal) and the apply thread (crest-apply).
# The load generator shares the machine, so compare builds back to back, several times: runs
# on this 2-core machine move by 5-10 %. Nothing here asserts timings.
set -euo pipefail
cd "$(dirname "$0")/.."
PROTO=${1:-lp}
RUNS=${2:-3}
BENCH=ingest-cpu
. bench/lib.sh

PORT=18087
"$CREST" serve --data-dir "$W/data" --listen "127.0.0.1:$PORT" --snapshot-interval 3600s \
  >"$W/serve.log" 2>&1 &
PIDS+=($!); SERVER=$!
for _ in $(seq 1 100); do curl -sf "127.0.0.1:$PORT/ready" >/dev/null && break; sleep 0.1; done
curl -sf "127.0.0.1:$PORT/ready" >/dev/null || { echo "crest did not start"; cat "$W/serve.log"; exit 1; }

load() { # seed hosts
  "$CREST" loadgen --url "http://127.0.0.1:$PORT" --protocol "$PROTO" --hosts "$2" --samples 40 \
    --seed "$1" 2>/dev/null | sed -n 's/.*"samples_per_sec":\([0-9]*\).*/\1/p'
}
# CPU seconds (user + system, in clock ticks) summed per thread name.
threads() {
  for t in /proc/"$SERVER"/task/*; do
    echo "$(tr -d ' ' <"$t/comm") $(awk '{print $14 + $15}' "$t/stat")"
  done | awk '{a[$1] += $2} END {for (k in a) print k, a[k]}' | sort
}

load 1 20 >/dev/null
threads >"$W/before"
rates=()
for s in $(seq 2 $((RUNS + 1))); do rates+=("$(load "$s" 100)"); done
threads >"$W/after"
samples=$((RUNS * 2000000))
echo "protocol $PROTO, $RUNS x 2 M samples; samples/s per load: ${rates[*]}"
hz=$(getconf CLK_TCK)
join "$W/before" "$W/after" | awk -v hz="$hz" -v n="$samples" '
  { d = ($3 - $2) / hz; total += d; if (d > 0.005) printf "  %-16s %6.2f s\n", $1, d }
  END { printf "  %-16s %6.2f s = %.2f us of server CPU per sample\n", "total", total, total / n * 1e6 }'
