#!/usr/bin/env bash
# OTLP benchmark: metric points/s and spans/s ingested over OTLP/HTTP protobuf on loopback,
# bytes per span on disk, trace-by-id latency with SPANS spans stored, and the RED query over
# the 24 h they cover.
# usage: bench/otlp.sh [spans]     (default 10,000,000)
# CREST=path/to/crest skips the release build. Prints figures, asserts nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
SPANS=${1:-10000000}
BENCH=otlp-bench
. bench/lib.sh
PORT=18116
URL=http://127.0.0.1:$PORT
"$CREST" serve --data-dir "$W/data" --listen 127.0.0.1:$PORT --otlp-grpc-listen off >"$W/serve.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do curl -sf $URL/ready >/dev/null && break; sleep 0.1; done

echo "== OTLP metrics: 20 hosts x 500 series x 40 samples (400,000 points), 10,000 a request, 4 in flight"
"$CREST" loadgen --url $URL --protocol otlp-metrics --hosts 20 --samples 40 2>/dev/null

echo "== OTLP spans: $SPANS spans over the last 24 h, traces of 8 spans, 10,000 a request, 4 in flight"
"$CREST" loadgen --url $URL --protocol otlp-traces --spans "$SPANS" --span-hours 24 2>/dev/null
curl -sf -XPOST $URL/api/v1/admin/snapshot >/dev/null
STORED=$(curl -sf -XPOST $URL/api/v1/sql --data 'SELECT count(*) AS n FROM spans' | sed -n 's/.*"n":\([0-9]*\).*/\1/p')
BYTES=$(find "$W/data/tables" -path '*spans*' -name '*.parquet' -printf '%s\n' | awk '{s += $1} END {print s + 0}')
echo "spans stored: $STORED; Parquet bytes: $BYTES; bytes per span: $(echo "$BYTES / $STORED" | bc -l | cut -c1-6)"

echo "== trace by id (20 random traces, each fetched twice)"
IDS=$(curl -sf -XPOST "$URL/api/v1/sql?format=csv" \
  --data "SELECT trace_id FROM spans WHERE parent_span_id IS NULL ORDER BY random() LIMIT 20" | tail -n +2)
python3 - "$URL" $IDS <<'EOF'
import json, sys, time, urllib.error, urllib.request
url, ids = sys.argv[1], sys.argv[2:]
def get(path):
    t = time.time()
    try:
        with urllib.request.urlopen(url + path, timeout=120) as r:
            body = json.loads(r.read())
    except urllib.error.HTTPError as e:
        body = {"error": e.code, "message": e.read().decode()[:300], "spans": []}
        print(f"{path}: {e.code} {body['message']}")
    return time.time() - t, body
first, second, spans = [], [], []
for i in ids:
    t, b = get(f"/api/v1/traces/{i}")
    first.append(t); spans.append(len(b["spans"]))
    t, _ = get(f"/api/v1/traces/{i}")
    second.append(t)
q = lambda xs, p: sorted(xs)[min(len(xs) - 1, int(p * len(xs)))]
print(f"traces: {len(ids)}, spans each: {min(spans)}-{max(spans)}")
print(f"first fetch: median {q(first, 0.5) * 1000:.0f} ms, p95 {q(first, 0.95) * 1000:.0f} ms")
print(f"second fetch: median {q(second, 0.5) * 1000:.0f} ms, p95 {q(second, 0.95) * 1000:.0f} ms")
for label, path in [("RED per service and operation, 24 h", "/api/v1/traces/red?start=%d" % (time.time() - 86400)),
                    ("dependencies, 24 h", "/api/v1/traces/dependencies?start=%d" % (time.time() - 86400))]:
    times = []
    for _ in range(3):
        t, b = get(path)
        times.append(t)
    print(f"{label}: {', '.join(f'{t:.2f}' for t in times)} s")
EOF
echo "server peak RSS: $(grep VmHWM /proc/${PIDS[0]}/status | awk '{print $2 / 1024 " MiB"}')"
