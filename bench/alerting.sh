#!/usr/bin/env bash
# Alerting benchmark: how many SQL rules Crest evaluates per second over 24 h of simulated
# festival data, and how long a sample takes from its acknowledgement to the webhook.
# usage: bench/alerting.sh [rules] [groups]     (defaults: 1000 rules in 10 groups)
# Builds crest in release mode (CREST=path/to/crest skips the build); prints figures, asserts nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
RULES=${1:-1000}
NGROUPS=${2:-10}
BENCH=alert-bench
. bench/lib.sh
PORT=18096
SINK=18097

# 1. 24 h of the festival at one sample a minute per series, ending now.
"$CREST" serve --data-dir "$W/data" --listen 127.0.0.1:$PORT >"$W/seed.log" 2>&1 &
PIDS+=($!); SEED=$!
for _ in $(seq 1 100); do curl -sf 127.0.0.1:$PORT/ready >/dev/null && break; sleep 0.1; done
START=$(date -u -d '-24 hours' +%Y-%m-%dT%H:%M:00Z)
"$CREST" simulate --url http://127.0.0.1:$PORT --start "$START" --backfill 24h --step 60s \
  --speed 0 --no-traces --calendar-out "$W/calendar.json" 2>/dev/null | tail -1 > "$W/sim.json"
SAMPLES=$(sed -n 's/.*"samples":\([0-9]*\).*/\1/p' "$W/sim.json")
kill -TERM $SEED; wait $SEED 2>/dev/null || true

# 2. RULES error-ratio rules over the last 5 minutes, spread over GROUPS groups every 15 s;
#    each has its own threshold so none is a copy the engine could share.
python3 - "$RULES" "$NGROUPS" >"$W/rules.yml" <<'EOF'
import sys
rules, groups = int(sys.argv[1]), int(sys.argv[2])
print("groups:")
per = rules // groups
for g in range(groups):
    print(f"  - name: bench-{g}\n    interval: 15s\n    rules:")
    for r in range(per):
        t = 0.001 * (g * per + r + 1)
        print(f"""      - alert: ErrorRatio{g}_{r}
        expr: |
          SELECT service, sum(CASE WHEN code = '503' THEN n ELSE 0 END) / sum(n) AS value
          FROM (SELECT service, code, max(value) - min(value) AS n FROM http_requests_total
                WHERE time > $__now - INTERVAL '5 minutes' AND time <= $__now
                GROUP BY service, interface, instance, "cluster", app_id, code, synthetic)
          GROUP BY service HAVING sum(n) > 0 AND sum(CASE WHEN code = '503' THEN n ELSE 0 END) / sum(n) > {t:.6f}""")
EOF
# A probe rule for the latency figure, evaluated every second, delivered at once.
cat >"$W/probe.yml" <<'EOF'
groups:
  - name: probe
    interval: 1s
    rules:
      - alert: ProbeHigh
        expr: SELECT service, max(v) AS value FROM probe WHERE time > $__now - INTERVAL '1 minute' GROUP BY service HAVING max(v) > 10
EOF
cat >"$W/am.yml" <<EOF
route:
  receiver: sink
  group_by: [alertname]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: sink
    webhook_configs:
      - url: http://127.0.0.1:$SINK/hook
EOF
python3 - "$SINK" "$W/hooks.txt" <<'EOF' &
import sys, time, http.server
port, out = int(sys.argv[1]), sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with open(out, "a") as f:
            f.write(f"{time.time():.6f} {body!r}\n")
        self.send_response(200); self.end_headers()
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
EOF
PIDS+=($!)
"$CREST" serve --data-dir "$W/data" --listen 127.0.0.1:$PORT --rules "$W/rules.yml" \
  --rules "$W/probe.yml" --alertmanager-config "$W/am.yml" --webhook-allow 127.0.0.1/32 \
  >"$W/serve.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do curl -sf 127.0.0.1:$PORT/ready >/dev/null && break; sleep 0.1; done

# 3. Wait for three rounds of every group, then read each group's evaluation time.
sleep 50
curl -sf 127.0.0.1:$PORT/api/v1/rules > "$W/rules.json"
python3 - "$W/rules.json" "$RULES" "$NGROUPS" "$SAMPLES" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))["data"]
rules, groups, samples = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
bench = [g for g in d["groups"] if g["name"].startswith("bench-")]
times = [sum(r.get("evaluationTime", 0) for r in g["rules"]) for g in bench]
errors = sum(1 for g in bench for r in g["rules"] if r.get("lastError"))
evaluated = sum(1 for g in bench for r in g["rules"] if r.get("lastEvaluation"))
print(f"data: {samples} samples (24 h at 60 s, ~5,200 series)")
print(f"rules: {rules} in {groups} groups every 15 s; evaluated {evaluated}, with errors {errors}")
print(f"one round of a group (100 rules, sequential): max {max(times):.2f} s, mean {sum(times)/len(times):.2f} s")
print(f"all {rules} rules, groups in parallel: {max(times):.2f} s per round -> {rules / max(times):.0f} rules/s (fits a 15 s interval: {max(times) < 15})")
EOF

# 4. Acknowledged sample -> webhook received, 5 times.
for i in 1 2 3 4 5; do
  : > "$W/hooks.txt"
  svc="s$i"
  t0=$(date +%s.%N)
  curl -sf -XPOST "127.0.0.1:$PORT/api/v2/write?bucket=b&precision=ns" \
    --data-binary "probe,service=$svc v=50 $(date +%s%N)" >/dev/null
  for _ in $(seq 1 300); do grep -q "$svc" "$W/hooks.txt" 2>/dev/null && break; sleep 0.05; done
  t1=$(awk -v s="$svc" 'index($0, s) {print $1; exit}' "$W/hooks.txt")
  echo "ack -> webhook ($i): $(echo "$t1 - $t0" | bc -l | cut -c1-5) s"
  sleep 2
done
