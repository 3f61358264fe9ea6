#!/usr/bin/env bash
# Forecast accuracy benchmark: `crest backtest` on the four hourly series in ../shared/data by the
# protocol in ../shared/data/README.md (8 rolling windows of 168 h, refit on the last 1,344 h).
# usage: bench/forecast.sh [models] [data-dir]   e.g. bench/forecast.sh auto,snaive,snaive24,mstl,regression,ensemble
# CREST=path/to/crest skips the release build and uses that binary.
# Prints CSV rows (the columns of `crest backtest`) on stdout, then one `all` row per model:
# means over the series and the geometric mean of rel_mase; progress on stderr.
# Nothing here asserts accuracy or timings; compare with ../shared/data/forecast-peers.md.
set -euo pipefail
cd "$(dirname "$0")/.."
MODELS=${1:-auto,snaive,snaive24,mstl,regression,ensemble}
DATA=${2:-../shared/data}
BENCH=forecast-bench
. bench/lib.sh
COMMON=(--seasons 24,168 --horizon 168 --windows 8 --model "$MODELS" --format csv)

run() { "$CREST" backtest "${COMMON[@]}" "$@"; }
{
  run --csv "$DATA/hourly_bikesharing.csv" --series dc_bikeshare --time-column ts --value-column count
  run --csv "$DATA/hourly_electricity.csv" --series elec_hourly --time-column ts --value-column y
  run --csv "$DATA/hourly_traffic_volume.csv" --series i94_traffic --time-column date_time \
    --value-column traffic_volume --from "2016-07-01 00:00:00" --to "2018-09-30 23:00:00" --max-gap 12 \
    --event-column holiday
  run --csv "$DATA/hourly_sf_traffic.csv" --series sf_traffic --time-column ts --value-column y
} | awk -F, -v OFS=, '
  NR == 1 { print; next }
  /^series,/ { next }
  { print
    m = $2; sub(/^auto:.*/, "auto", m)   # one summary row for auto, whatever it chose
    if (!(m in n)) order[++k] = m
    n[m]++; lr[m] += log($5)
    for (i = 4; i <= 11; i++) if (i != 5) s[m, i] += $i }
  END { # over the series: arithmetic means, geometric mean of rel_mase (equal windows per series)
    for (j = 1; j <= k; j++) { m = order[j]
      printf "all,%s,%d,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f,%.5f\n", m, n[m] * 8, s[m, 4] / n[m],
        exp(lr[m] / n[m]), s[m, 6] / n[m], s[m, 7] / n[m], s[m, 8] / n[m], s[m, 9] / n[m],
        s[m, 10] / n[m], s[m, 11] / n[m] } }'
