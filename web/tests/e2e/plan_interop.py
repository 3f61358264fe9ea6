"""Reads a Crest plan exported as CSV, JSON and Parquet with pandas and DuckDB, the way a
capacity planner would, and checks every format holds the same rows and columns.

usage: plan_interop.py PLAN.csv PLAN.json PLAN.parquet ROWS
"""
import sys

import duckdb
import pandas as pd

csv_path, json_path, pq_path, rows = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
frames = {
    "csv": pd.read_csv(csv_path),
    "json": pd.read_json(json_path, orient="records"),
    "parquet": pd.read_parquet(pq_path),
}
columns = list(frames["csv"].columns)
for name, df in frames.items():
    assert len(df) == rows, f"pandas {name}: {len(df)} rows, want {rows}"
    assert list(df.columns) == columns, f"pandas {name}: columns {list(df.columns)}"
    # The arithmetic holds in every format, on the planner's side.
    sized = df[df["instances_needed"].notna()]
    assert len(sized) > 0, f"pandas {name}: no sized service"
    for _, r in sized.iterrows():
        all_zones = -(-r["forecast_peak_p99"] // r["usable_qps_per_instance"])
        assert int(r["instances_needed_all_zones"]) == int(all_zones), (name, dict(r))
pd.testing.assert_series_equal(
    frames["csv"]["forecast_peak_p99"], frames["parquet"]["forecast_peak_p99"], check_names=False
)

con = duckdb.connect()
for name, source in [
    ("csv", f"read_csv_auto('{csv_path}')"),
    ("json", f"read_json_auto('{json_path}')"),
    ("parquet", f"read_parquet('{pq_path}')"),
]:
    n, services, needed = con.sql(
        f"SELECT count(*), count(DISTINCT service), sum(instances_needed) FROM {source}"
    ).fetchall()[0]
    assert n == rows and services == rows, f"duckdb {name}: {n} rows, {services} services"
    assert needed is not None and needed > 0, f"duckdb {name}: instances_needed {needed}"
print(f"pandas {pd.__version__} and duckdb {duckdb.__version__} read {rows} rows in csv, json, parquet")
