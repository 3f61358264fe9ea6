#!/usr/bin/env bash
# Ingest and query benchmark: Crest side by side with VictoriaMetrics on loopback.
# usage: bench/run.sh [hosts] [samples-per-series] [repeats]
# Needs: apt-get install -y victoria-metrics ; builds crest in release mode unless
# CREST=path/to/crest is given.
# Ingest: each repeat loads a fresh Crest and a fresh VictoriaMetrics (empty data directories)
# with the same workload, alternating which goes first; the table shows the median of the
# repeats, the ratio of the medians, and the range. A single load lasts a fraction of a second
# on this 2-core machine and moves by 10-20 % from load to load, either server; the median of
# alternating loads is what the ratio is made of. Server CPU per sample (utime + stime of the
# server process over the load, from /proc) moves much less and is printed too.
# Prints a table of figures; nothing here asserts timings.
set -euo pipefail
cd "$(dirname "$0")/.."
HOSTS=${1:-20}
SAMPLES=${2:-40}
REPEATS=${3:-3}
BENCH=bench
. bench/lib.sh

start_crest() { # dir port
  "$CREST" serve --data-dir "$1" --listen "127.0.0.1:$2" --snapshot-interval 3600s >"$1.log" 2>&1 &
  PIDS+=($!); CREST_PID=$!
  for _ in $(seq 1 100); do curl -sf "127.0.0.1:$2/ready" >/dev/null && return; sleep 0.1; done
  echo "crest did not start"; cat "$1.log"; exit 1
}
stop_crest() { kill -TERM "$CREST_PID"; wait "$CREST_PID" 2>/dev/null || true; }
start_vm() { # dir port
  victoria-metrics -storageDataPath="$1" -httpListenAddr="127.0.0.1:$2" -search.latencyOffset=0s \
    -search.disableCache -retentionPeriod=100y >"$1.log" 2>&1 &
  PIDS+=($!); VM_PID=$!
  for _ in $(seq 1 100); do curl -sf "127.0.0.1:$2/health" >/dev/null && return; sleep 0.1; done
  echo "victoria-metrics did not start"; exit 1
}
stop_vm() { kill -TERM "$VM_PID"; wait "$VM_PID" 2>/dev/null || true; }
rate() { sed -n 's/.*"samples_per_sec":\([0-9.]*\).*/\1/p'; }
total() { sed -n 's/.*"samples":\([0-9]*\).*/\1/p'; }

# CPU seconds (user + system) a process has used so far.
cpu_of() { awk '{printf "%.2f", ($14 + $15) / 100}' "/proc/$1/stat"; }
median() { tr ' ' '\n' | grep . | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
range() { tr ' ' '\n' | grep . | sort -g | awk 'NR == 1 {lo = $1} {hi = $1} END {printf "%.0f-%.0f", lo, hi}'; }

# One load on a fresh server: prints "samples/s cpu-seconds bytes-on-disk samples".
crest_load() { # proto repeat
  local d="$W/crest-$1-$2" c0 out load
  start_crest "$d" 18086
  c0=$(cpu_of "$CREST_PID")
  out=$("$CREST" loadgen --url http://127.0.0.1:18086 --protocol "$1" --hosts "$HOSTS" --samples "$SAMPLES" 2>/dev/null)
  load="$(echo "$out" | rate) $(echo "$(cpu_of "$CREST_PID") - $c0" | bc -l)"
  curl -sf -XPOST 127.0.0.1:18086/api/v1/admin/snapshot >/dev/null
  stop_crest
  # persisted data: per-table files and shared files (either may not exist)
  echo "$load $({ du -sbc "$d/tables" "$d/shared" 2>/dev/null || true; } | tail -1 | cut -f1) $(echo "$out" | total)"
}
vm_load() { # proto repeat
  local d="$W/vm-$1-$2" c0 out load
  start_vm "$d" 18428
  c0=$(cpu_of "$VM_PID")
  out=$("$CREST" loadgen --url http://127.0.0.1:18428 --target victoriametrics --protocol "$1" --hosts "$HOSTS" --samples "$SAMPLES" 2>/dev/null)
  load="$(echo "$out" | rate) $(echo "$(cpu_of "$VM_PID") - $c0" | bc -l)"
  sleep 2; curl -sf 127.0.0.1:18428/internal/force_flush >/dev/null || true; sleep 1
  stop_vm
  echo "$load $(du -sb "$d/data" | cut -f1) $(echo "$out" | total)"
}
# Column $1 of each load line given after $2, as is (k = 0) or per sample times k.
column() {
  local c=$1 k=$2; shift 2
  printf '%s\n' "$@" | awk -v c="$c" -v k="$k" '{printf "%.4f ", k ? $c * k / $4 : $c}'
}

echo "workload: $HOSTS hosts x 500 series x $SAMPLES samples (15 s interval), fsync on (Crest acks after WAL fsync); $REPEATS fresh loads of each server, alternating"
printf '%-38s %14s %14s %8s\n' "figure (median of the loads)" "crest" "victoria" "ratio"
for proto in lp rw; do
  C=(); V=()
  for r in $(seq 1 "$REPEATS"); do
    if [ $((r % 2)) -eq 1 ]; then
      C+=("$(crest_load $proto "$r")"); V+=("$(vm_load $proto "$r")")
    else
      V+=("$(vm_load $proto "$r")"); C+=("$(crest_load $proto "$r")")
    fi
  done
  cr=$(column 1 0 "${C[@]}"); vr=$(column 1 0 "${V[@]}")
  cc=$(column 2 1000000 "${C[@]}"); vc=$(column 2 1000000 "${V[@]}")
  cb=$(column 3 1 "${C[@]}"); vb=$(column 3 1 "${V[@]}")
  m() { echo "$1" | median; }
  printf '%-38s %14.0f %14.0f %8.2f\n' "ingest samples/s ($proto)" "$(m "$cr")" "$(m "$vr")" "$(echo "$(m "$cr") / $(m "$vr")" | bc -l)"
  printf '%-38s %14s %14s\n' "  range over the loads" "$(echo "$cr" | range)" "$(echo "$vr" | range)"
  printf '%-38s %14.2f %14.2f %8.2f\n' "server CPU us/sample ($proto)" "$(m "$cc")" "$(m "$vc")" "$(echo "$(m "$cc") / $(m "$vc")" | bc -l)"
  printf '%-38s %14.2f %14.2f %8.2f\n' "bytes/sample on disk ($proto)" "$(m "$cb")" "$(m "$vb")" "$(echo "$(m "$cb") / $(m "$vb")" | bc -l)"
done

# SQL latency on the line-protocol data set (restart first: cold = first query after start).
start_crest "$W/crest-lp-1" 18086
q1="SELECT date_bin(INTERVAL '1 minute', time) AS minute, mode, (max(value) - min(value)) / 60 AS rate FROM node_cpu_seconds_total WHERE time > now() - INTERVAL '1 hour' GROUP BY 1, 2 ORDER BY 1, 2"
timeit() { curl -s -o /dev/null -w '%{time_total}' -XPOST 127.0.0.1:18086/api/v1/sql --data-binary "$1"; }
cold=$(timeit "$q1"); warm=$(for _ in 1 2 3 4 5; do timeit "$q1"; echo; done | sort -n | sed -n 3p)
printf '%-34s %14s %14s\n' "dashboard query 1h cold/warm (s)" "$cold" "$warm"
stop_crest

# 7-day aggregation: 2 hosts x 500 series, one sample every 5 minutes for 7 days.
start_crest "$W/crest-7d" 18086
"$CREST" loadgen --url http://127.0.0.1:18086 --protocol lp --hosts 2 --samples 2016 --interval-secs 300 >/dev/null 2>&1
curl -sf -XPOST 127.0.0.1:18086/api/v1/admin/snapshot >/dev/null
stop_crest
start_crest "$W/crest-7d" 18086
q2="SELECT host, date_bin(INTERVAL '1 day', time) AS day, avg(value) AS avg, max(value) AS max FROM node_filesystem_avail_bytes WHERE time > now() - INTERVAL '7 days' GROUP BY 1, 2 ORDER BY 1, 2"
cold=$(timeit "$q2"); warm=$(for _ in 1 2 3 4 5; do timeit "$q2"; echo; done | sort -n | sed -n 3p)
printf '%-34s %14s %14s\n' "7-day aggregation cold/warm (s)" "$cold" "$warm"
stop_crest
