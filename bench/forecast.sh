#!/usr/bin/env bash
# Forecast accuracy benchmark: `crest backtest` on the four hourly series in ../shared/data by the
# protocol in ../shared/data/README.md (8 rolling windows of 168 h, refit on the last 1,344 h).
# usage: bench/forecast.sh [models] [data-dir]   e.g. bench/forecast.sh auto,snaive,snaive24,mstl,regression,ensemble
# CREST=path/to/crest skips the release build and uses that binary.
# Prints CSV rows (the columns of `crest backtest`) on stdout; progress on stderr.
# Nothing here asserts accuracy or timings; compare with ../shared/data/forecast-peers.md.
set -euo pipefail
cd "$(dirname "$0")/.."
MODELS=${1:-auto,snaive,snaive24,mstl,regression,ensemble}
DATA=${2:-../shared/data}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/crest-target}"
[ -n "${CREST:-}" ] || cargo build --release -p crest-web --bin crest >/dev/null
CREST="${CREST:-$CARGO_TARGET_DIR/release/crest}"
COMMON=(--seasons 24,168 --horizon 168 --windows 8 --model "$MODELS" --format csv)

run() { "$CREST" backtest "${COMMON[@]}" "$@"; }
{
  run --csv "$DATA/hourly_bikesharing.csv" --series dc_bikeshare --time-column ts --value-column count
  run --csv "$DATA/hourly_electricity.csv" --series elec_hourly --time-column ts --value-column y
  run --csv "$DATA/hourly_traffic_volume.csv" --series i94_traffic --time-column date_time \
    --value-column traffic_volume --from "2016-07-01 00:00:00" --to "2018-09-30 23:00:00" --max-gap 12 \
    --event-column holiday
  run --csv "$DATA/hourly_sf_traffic.csv" --series sf_traffic --time-column ts --value-column y
} | awk 'NR == 1 || !/^series,/'
