//! What the stored metrics say about demand and latency, read through SQL.
//!
//! Requests come from a Prometheus-style counter (`[planning] requests_metric`, one cumulative
//! series per label set). A sample closes the interval before it, so bins are
//! `(start, start + step]`. Per series and time bin the highest value is taken; the increase of a
//! bin is that value minus the series' previous bin's (a drop is a counter reset, and then the
//! new value is the increase), divided by the time between them; the first bin of a series has
//! none. Summed per service and bin, that is QPS. A bin where many series reset at once (a
//! fleet restart) under-counts and is marked partial, and left out. The same goes for the
//! latency histogram's cumulative `le` buckets, from which p99 is interpolated the way PromQL's
//! `histogram_quantile` does.

use super::Sources;
use crate::config::PlanningConfig;
use crate::error::ApiError;
use forecast::capacity::{Observation, bucket_quantile};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// Double-quoted SQL identifier.
pub fn ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Single-quoted SQL string.
pub fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// One bin of one service.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Bin {
    /// Requests per second.
    pub qps: f64,
    /// Failed requests per second.
    pub errors: f64,
    /// Instances that served requests.
    pub instances: f64,
    /// Zones that served requests.
    pub zones: f64,
    /// More than a tenth of the service's series reset their counter in this bin (a restart
    /// or deploy): the increase before each reset is lost, so the bin under-counts.
    pub partial: bool,
}

/// Which traffic to count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Traffic {
    /// Everything.
    All,
    /// Only series not labelled synthetic.
    Organic,
}

/// Reads demand and latency for the planner.
pub struct Demand<'a> {
    src: &'a Sources,
    cfg: &'a PlanningConfig,
}

async fn rows(src: &Sources, sql: &str) -> Result<Vec<Map<String, Value>>, ApiError> {
    tracing::debug!(sql = %sql, "Planning query.");
    let result = src.engine.sql(sql).await?;
    let bytes = tokio::task::spawn_blocking(move || {
        query::encode::encode(query::encode::Format::Json, &result.schema, &result.batches)
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::internal)?;
    serde_json::from_slice(&bytes).map_err(ApiError::internal)
}

fn num(row: &Map<String, Value>, k: &str) -> f64 {
    match row.get(k) {
        Some(Value::Number(n)) => n.as_f64().unwrap_or(f64::NAN),
        Some(Value::String(s)) => s.parse().unwrap_or(f64::NAN),
        _ => f64::NAN,
    }
}

fn text(row: &Map<String, Value>, k: &str) -> String {
    match row.get(k) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(v) => v.to_string(),
    }
}

impl<'a> Demand<'a> {
    /// A reader over `src` with `cfg`'s metric and label names.
    pub fn new(src: &'a Sources, cfg: &'a PlanningConfig) -> Self {
        Self { src, cfg }
    }

    fn tags(&self, table: &str) -> Option<BTreeSet<String>> {
        self.src.db.table_schema(table).map(|s| s.tags)
    }

    /// The rate of `table`'s counter per series and bin, as a subquery with the columns `t` (bin
    /// start, Unix seconds), `rate` (increase per second since the series' previous bin, so
    /// samples sparser than the bins still give rates, not sums), `reset` and the tags in
    /// `keep`.
    fn increases(
        &self,
        table: &str,
        tags: &BTreeSet<String>,
        keep: &[&str],
        filter: &str,
        (from, to, step): (i64, i64, i64),
    ) -> String {
        let part: Vec<String> = tags.iter().map(|t| ident(t)).collect();
        let keep_cols: String = keep.iter().map(|k| format!(", {}", ident(k))).collect();
        // A sample reports the counter at the end of the interval it covers, so a sample at
        // exactly a bin's start closes the previous bin: bins are `(start, start + step]`.
        let bin = format!(
            "date_bin(INTERVAL '{step} seconds', time - INTERVAL '1 nanosecond', TIMESTAMP '1970-01-01T00:00:00Z')"
        );
        // A look-back so the first bin in range has a previous one (an hour at least, for
        // samples sparser than the bins).
        let lo = (from - step.max(3600)) * 1_000_000_000;
        let hi = to * 1_000_000_000;
        let by: String = part.iter().map(|p| format!("{p}, ")).collect();
        format!(
            "SELECT t{keep_cols}, (CASE WHEN v >= prev THEN v - prev ELSE v END) / CAST(t - prev_t AS DOUBLE) AS rate, \
             CASE WHEN v < prev THEN 1 ELSE 0 END AS reset \
             FROM (SELECT t{all_cols}, v, lag(v) OVER (PARTITION BY {part} ORDER BY t) AS prev, \
                          lag(t) OVER (PARTITION BY {part} ORDER BY t) AS prev_t \
                   FROM (SELECT CAST({bin} AS BIGINT) / 1000000000 AS t, {by}max(value) AS v \
                         FROM {table} WHERE time > to_timestamp_nanos({lo}) AND time <= to_timestamp_nanos({hi}){filter} \
                         GROUP BY {by}1) b) s \
             WHERE prev IS NOT NULL AND t >= {from}",
            all_cols = part.iter().map(|p| format!(", {p}")).collect::<String>(),
            part = if part.is_empty() {
                "1".to_string()
            } else {
                part.join(", ")
            },
            table = ident(table),
        )
    }

    /// Requests, errors, instances and zones per service and bin of `step` seconds over
    /// `[from, to)`, for `service` or every service.
    pub async fn bins(
        &self,
        service: Option<&str>,
        traffic: Traffic,
        from: i64,
        to: i64,
        step: i64,
    ) -> Result<BTreeMap<String, BTreeMap<i64, Bin>>, ApiError> {
        let c = self.cfg;
        let table = &c.requests_metric;
        let Some(tags) = self.tags(table) else {
            return Ok(BTreeMap::new());
        };
        if !tags.contains(&c.service_label) {
            return Err(ApiError::bad_request(format!(
                "table {table:?} has no {:?} label to tell services apart ([planning] service_label)",
                c.service_label
            )));
        }
        let mut filter = String::new();
        if let Some(s) = service {
            filter.push_str(&format!(" AND {} = {}", ident(&c.service_label), lit(s)));
        }
        if traffic == Traffic::Organic && tags.contains(&c.synthetic_label) {
            let l = ident(&c.synthetic_label);
            filter.push_str(&format!(" AND ({l} IS NULL OR {l} <> 'true')"));
        }
        let mut keep = vec![c.service_label.as_str()];
        for l in [&c.instance_label, &c.code_label, &c.zone_label] {
            if tags.contains(l.as_str()) {
                keep.push(l);
            }
        }
        let inc = self.increases(table, &tags, &keep, &filter, (from, to, step));
        let count_distinct = |label: &str| {
            if tags.contains(label) {
                format!(
                    "count(DISTINCT CASE WHEN rate > 0 THEN {} END)",
                    ident(label)
                )
            } else {
                "CAST(NULL AS BIGINT)".to_string()
            }
        };
        let errors = if tags.contains(&c.code_label) {
            format!(
                "sum(CASE WHEN regexp_like({}, {}) THEN rate ELSE 0 END)",
                ident(&c.code_label),
                lit(&c.error_code_regex)
            )
        } else {
            "0".to_string()
        };
        let sql = format!(
            "SELECT {svc} AS service, t, sum(rate) AS qps, {errors} AS errors, \
             {instances} AS instances, {zones} AS zones, sum(reset) AS resets, count(*) AS series \
             FROM ({inc}) i GROUP BY {svc}, t ORDER BY 1, 2",
            svc = ident(&c.service_label),
            instances = count_distinct(&c.instance_label),
            zones = count_distinct(&c.zone_label),
        );
        let mut out: BTreeMap<String, BTreeMap<i64, Bin>> = BTreeMap::new();
        for r in rows(self.src, &sql).await? {
            let t = num(&r, "t") as i64;
            out.entry(text(&r, "service")).or_default().insert(
                t,
                Bin {
                    qps: num(&r, "qps"),
                    errors: num(&r, "errors"),
                    instances: num(&r, "instances"),
                    zones: num(&r, "zones"),
                    partial: num(&r, "resets") * 10.0 > num(&r, "series"),
                },
            );
        }
        Ok(out)
    }

    /// p99 latency (seconds) per service and bin over `[from, to)`, from the histogram.
    pub async fn p99(
        &self,
        from: i64,
        to: i64,
        step: i64,
    ) -> Result<BTreeMap<String, BTreeMap<i64, f64>>, ApiError> {
        let c = self.cfg;
        let table = format!("{}_bucket", c.latency_metric);
        let Some(tags) = self.tags(&table) else {
            return Ok(BTreeMap::new());
        };
        if !tags.contains("le") || !tags.contains(&c.service_label) {
            return Err(ApiError::bad_request(format!(
                "histogram table {table:?} needs `le` and {:?} labels",
                c.service_label
            )));
        }
        let inc = self.increases(
            &table,
            &tags,
            &[&c.service_label, "le"],
            "",
            (from, to, step),
        );
        let sql = format!(
            "SELECT {svc} AS service, t, \"le\" AS le, sum(rate) AS n FROM ({inc}) i \
             GROUP BY {svc}, t, \"le\" ORDER BY 1, 2",
            svc = ident(&c.service_label),
        );
        let mut per_bin: BTreeMap<String, BTreeMap<i64, Vec<(f64, f64)>>> = BTreeMap::new();
        for r in rows(self.src, &sql).await? {
            let le = text(&r, "le");
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                match le.parse::<f64>() {
                    Ok(v) => v,
                    Err(_) => continue,
                }
            };
            per_bin
                .entry(text(&r, "service"))
                .or_default()
                .entry(num(&r, "t") as i64)
                .or_default()
                .push((le, num(&r, "n")));
        }
        Ok(per_bin
            .into_iter()
            .map(|(s, bins)| {
                let q = bins
                    .into_iter()
                    .map(|(t, mut b)| {
                        b.sort_by(|x, y| x.0.total_cmp(&y.0));
                        (t, bucket_quantile(0.99, &b))
                    })
                    .collect();
                (s, q)
            })
            .collect())
    }

    /// Stress-test observations per service over each window: QPS, instances, p99, errors.
    pub async fn observations(
        &self,
        windows: &[(i64, i64)],
        step: i64,
    ) -> Result<BTreeMap<String, Vec<Observation>>, ApiError> {
        let mut out: BTreeMap<String, Vec<Observation>> = BTreeMap::new();
        for &(from, to) in windows {
            let bins = self.bins(None, Traffic::All, from, to, step).await?;
            let p99 = self.p99(from, to, step).await?;
            for (service, bins) in bins {
                let lat = p99.get(&service);
                let obs = out.entry(service).or_default();
                for (t, b) in bins.into_iter().filter(|(_, b)| !b.partial) {
                    obs.push(Observation {
                        time: t,
                        qps: b.qps,
                        instances: b.instances,
                        p99_seconds: lat.and_then(|l| l.get(&t)).copied().unwrap_or(f64::NAN),
                        error_ratio: if b.qps > 0.0 { b.errors / b.qps } else { 0.0 },
                    });
                }
            }
        }
        Ok(out)
    }
}
