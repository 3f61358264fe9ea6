#!/usr/bin/env bash
# Ingest and query benchmark: Crest side by side with VictoriaMetrics on loopback.
# usage: bench/run.sh [hosts] [samples-per-series]
# Needs: apt-get install -y victoria-metrics ; builds crest in release mode unless
# CREST=path/to/crest is given.
# Prints a table of figures; nothing here asserts timings.
set -euo pipefail
cd "$(dirname "$0")/.."
HOSTS=${1:-20}
SAMPLES=${2:-40}
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

echo "workload: $HOSTS hosts x 500 series x $SAMPLES samples (15 s interval), fsync on (Crest acks after WAL fsync)"
printf '%-34s %14s %14s %8s\n' "figure" "crest" "victoria" "ratio"
for proto in lp rw; do
  start_crest "$W/crest-$proto" 18086
  C=$("$CREST" loadgen --url http://127.0.0.1:18086 --protocol $proto --hosts "$HOSTS" --samples "$SAMPLES" 2>/dev/null)
  N=$(echo "$C" | total)
  curl -sf -XPOST 127.0.0.1:18086/api/v1/admin/snapshot >/dev/null
  stop_crest
  # persisted data: per-table files and shared files (either may not exist)
  CB=$({ du -sbc "$W/crest-$proto/tables" "$W/crest-$proto/shared" 2>/dev/null || true; } | tail -1 | cut -f1)
  start_vm "$W/vm-$proto" 18428
  V=$("$CREST" loadgen --url http://127.0.0.1:18428 --target victoriametrics --protocol $proto --hosts "$HOSTS" --samples "$SAMPLES" 2>/dev/null)
  sleep 2; curl -sf 127.0.0.1:18428/internal/force_flush >/dev/null || true; sleep 1
  stop_vm
  VB=$(du -sb "$W/vm-$proto/data" | cut -f1)
  cr=$(echo "$C" | rate); vr=$(echo "$V" | rate)
  printf '%-34s %14.0f %14.0f %8.2f\n' "ingest samples/s ($proto)" "$cr" "$vr" "$(echo "$cr / $vr" | bc -l)"
  printf '%-34s %14.2f %14.2f %8.2f\n' "bytes/sample on disk ($proto)" "$(echo "$CB / $N" | bc -l)" "$(echo "$VB / $N" | bc -l)" "$(echo "$CB / $VB" | bc -l)"
done

# SQL latency on the line-protocol data set (restart first: cold = first query after start).
start_crest "$W/crest-lp" 18086
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
