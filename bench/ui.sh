#!/usr/bin/env bash
# UI benchmark: time until the festival dashboard (12 panels, 24 h range) is fully drawn in
# headless Chromium on loopback, cold (first load after start) and warm (loaded again).
# usage: bench/ui.sh [runs]     Needs chromium + chromedriver (apt). Prints figures only.
# CREST=path/to/crest uses that binary instead of building the release one.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-5}
BENCH=ui-bench
. bench/lib.sh
PORT=18106
WD=18107
"$CREST" serve --data-dir "$W/data" --listen 127.0.0.1:$PORT --dashboards dashboards >"$W/serve.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do curl -sf 127.0.0.1:$PORT/ready >/dev/null && break; sleep 0.1; done
START=$(date -u -d '-24 hours' +%Y-%m-%dT%H:%M:00Z)
"$CREST" simulate --url http://127.0.0.1:$PORT --start "$START" --backfill 24h --step 60s \
  --speed 0 --no-traces --calendar-out "$W/calendar.json" 2>/dev/null | tail -1
curl -sf -XPOST 127.0.0.1:$PORT/api/v1/admin/snapshot >/dev/null || true
chromedriver --port=$WD >/dev/null 2>&1 &
PIDS+=($!)
sleep 1
python3 - "$PORT" "$WD" "$RUNS" <<'EOF'
import json, sys, time, urllib.request
port, wd, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
def call(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"http://127.0.0.1:{wd}{path}", data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=300) as r:
        return json.loads(r.read())["value"]
caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
    "binary": "/usr/bin/chromium", "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
    "--disable-dev-shm-usage", "--window-size=1400,1000"]}}}}
sid = call("POST", "/session", caps)["sessionId"]
S = f"/session/{sid}"
url = f"http://127.0.0.1:{port}/d/festival-overview?from=now-24h&to=now"
# Drawn: every panel shows its chart or its error (a query over its time or memory limit).
drawn = ("return document.querySelectorAll('section[data-panel]').length >= 12 && "
         "document.querySelectorAll('section[data-panel] .panel-body, section[data-panel] .error').length "
         "=== document.querySelectorAll('section[data-panel]').length;")
errors = "return Array.from(document.querySelectorAll('section[data-panel] .error')).map(e => e.innerText);"
times = []
try:
    for i in range(runs):
        t0 = time.time()
        call("POST", S + "/url", {"url": url})
        while not call("POST", S + "/execute/sync", {"script": drawn, "args": []}):
            time.sleep(0.02)
        times.append(time.time() - t0)
        failed = call("POST", S + "/execute/sync", {"script": errors, "args": []})
        print(f"load {i + 1}: {times[-1]:.2f} s ({'cold' if i == 0 else 'warm'}), panels failed: {len(failed)} {failed[:2]}")
finally:
    call("DELETE", S)
warm = sorted(times[1:])
if warm:
    print(f"festival dashboard, 12 panels, 24 h: cold {times[0]:.2f} s, warm median {warm[len(warm) // 2]:.2f} s")
EOF
