//! OTLP metrics to points, one table per (Prometheus-named) metric, field `value`.
//!
//! * gauge → `<name>` (`_ratio` for unit `1`); sum → `<name>` (`_total` when monotonic), delta
//!   sums store each interval's increment as sent;
//! * histogram → `<name>_bucket{le}` holding cumulative counts up to `le` (`+Inf` = count),
//!   `<name>_sum`, `<name>_count`;
//! * exponential histogram → the same three tables, its buckets first merged down to scale
//!   [`EXP_SCALE`] at most (so every series shares the same `le` bounds) and then written as
//!   cumulative `le` buckets;
//! * summary → `<name>{quantile}`, `<name>_sum`, `<name>_count`.
//!
//! Tags: resource attributes, then data-point attributes (which win on a name clash), named by
//! [`label_name`]; an attribute named `le` (histograms) or `quantile` (summaries) gives way to
//! the bucket or quantile tag and is dropped from `_sum` and `_count` too. Attributes whose names collide after normalisation are joined with `;` in
//! key order, as Prometheus does.

use super::proto::{self, metric::Data, number_data_point::Value as NumberValue};
use super::{Decoded, NameKind, float_label, label_name, metric_name, time_ns, value_string};
use crate::point::{FieldValue, Point};
use std::collections::BTreeMap;

/// The finest exponential-histogram scale kept: `2^(1/8)` growth, 8 buckets per doubling,
/// relative error of a quantile at most about 4.5 %.
pub const EXP_SCALE: i32 = 3;
/// The field every metric point carries.
const VALUE: &str = "value";
/// Tag names that would collide with a point's own columns, and what they become.
const RESERVED: [(&str, &str); 2] = [("time", "key_time"), ("value", "key_value")];

/// Normalised tags from attributes: name clashes joined with `;` in original-key order.
fn tags_of(attrs: &[proto::KeyValue]) -> BTreeMap<String, String> {
    let mut by_key: Vec<(&str, String)> = attrs
        .iter()
        .map(|kv| (kv.key.as_str(), value_string(kv.value.as_ref())))
        .filter(|(k, v)| !k.is_empty() && !v.is_empty())
        .collect();
    by_key.sort_by(|a, b| a.0.cmp(b.0));
    by_key.dedup_by(|a, b| a.0 == b.0);
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for (key, value) in by_key {
        let mut name = label_name(key);
        if let Some((_, renamed)) = RESERVED.iter().find(|(r, _)| *r == name) {
            name = (*renamed).to_string();
        }
        out.entry(name)
            .and_modify(|v| {
                v.push(';');
                v.push_str(&value);
            })
            .or_insert(value);
    }
    out
}

/// Writes points for one metric into `out`.
struct Sink<'a> {
    out: &'a mut Decoded,
    resource: &'a BTreeMap<String, String>,
    now_ns: i64,
}

impl Sink<'_> {
    fn tags(
        &self,
        attrs: &[proto::KeyValue],
        extra: Option<(&str, String)>,
    ) -> Vec<(String, String)> {
        let mut tags = self.resource.clone();
        tags.extend(tags_of(attrs));
        if let Some((k, v)) = extra {
            tags.insert(k.to_string(), v);
        }
        tags.into_iter().collect()
    }

    fn time(&self, unix_nano: u64) -> Result<i64, String> {
        if unix_nano == 0 {
            return Ok(self.now_ns);
        }
        time_ns(unix_nano, "time_unix_nano")
    }

    fn push(
        &mut self,
        index: usize,
        table: String,
        tags: Vec<(String, String)>,
        value: f64,
        time_ns: i64,
    ) {
        self.out.points.push((
            index,
            Point {
                table,
                tags,
                fields: vec![(VALUE.to_string(), FieldValue::F64(value))],
                time_ns,
            },
        ));
    }

    /// Allocates the next data-point position.
    fn next(&mut self) -> usize {
        self.out.items += 1;
        self.out.items - 1
    }

    fn reject(&mut self, index: usize, metric: &str, reason: impl std::fmt::Display) {
        self.out.rejected.push((
            index,
            format!("metric {metric:?} data point {index}: {reason}"),
        ));
    }
}

/// Maps a whole request.
pub(super) fn to_points(request: proto::ExportMetricsServiceRequest, now_ns: i64) -> Decoded {
    let mut out = Decoded::default();
    for rm in request.resource_metrics {
        let resource = rm
            .resource
            .map(|r| tags_of(&r.attributes))
            .unwrap_or_default();
        let mut sink = Sink {
            out: &mut out,
            resource: &resource,
            now_ns,
        };
        for sm in rm.scope_metrics {
            for m in sm.metrics {
                metric(&mut sink, m);
            }
        }
    }
    out
}

fn metric(sink: &mut Sink<'_>, m: proto::Metric) {
    let Some(data) = m.data else {
        sink.out
            .warnings
            .push(format!("metric {:?} has no data and was skipped", m.name));
        return;
    };
    let kind = match &data {
        Data::Gauge(_) => NameKind::Gauge,
        Data::Sum(s) if s.is_monotonic => NameKind::Counter,
        _ => NameKind::Other,
    };
    let name = metric_name(&m.name, &m.unit, kind);
    if name.is_empty() {
        // Every data point of a nameless metric is rejected, so the count stays right.
        let n = match &data {
            Data::Gauge(g) => g.data_points.len(),
            Data::Sum(s) => s.data_points.len(),
            Data::Histogram(h) => h.data_points.len(),
            Data::ExponentialHistogram(h) => h.data_points.len(),
            Data::Summary(s) => s.data_points.len(),
        };
        for _ in 0..n {
            let i = sink.next();
            sink.reject(i, &m.name, "metric name is empty after normalisation");
        }
        return;
    }
    match data {
        Data::Gauge(g) => each_point(sink, &name, g.data_points, |dp| dp.flags, number),
        Data::Sum(s) => each_point(sink, &name, s.data_points, |dp| dp.flags, number),
        Data::Histogram(h) => each_point(sink, &name, h.data_points, |dp| dp.flags, histogram),
        Data::ExponentialHistogram(h) => {
            each_point(sink, &name, h.data_points, |dp| dp.flags, exponential)
        }
        Data::Summary(s) => each_point(sink, &name, s.data_points, |dp| dp.flags, summary),
    }
}

/// Converts each data point with `convert`, counting every point, skipping those flagged as
/// having no recorded value, and rejecting by index those `convert` refuses.
fn each_point<P>(
    sink: &mut Sink<'_>,
    name: &str,
    points: Vec<P>,
    flags: fn(&P) -> u32,
    convert: fn(&mut Sink<'_>, usize, &str, P) -> Result<(), String>,
) {
    for dp in points {
        let i = sink.next();
        if flags(&dp) & proto::FLAG_NO_RECORDED_VALUE != 0 {
            continue;
        }
        if let Err(e) = convert(sink, i, name, dp) {
            sink.reject(i, name, e);
        }
    }
}

/// One gauge or sum data point: one sample.
fn number(
    sink: &mut Sink<'_>,
    index: usize,
    name: &str,
    dp: proto::NumberDataPoint,
) -> Result<(), String> {
    let value = match dp.value {
        Some(NumberValue::AsDouble(d)) => d,
        // Prometheus samples are floats; integers beyond 2^53 lose precision, as there.
        Some(NumberValue::AsInt(n)) => n as f64,
        None => return Err("no value (neither asDouble nor asInt)".to_string()),
    };
    let time = sink.time(dp.time_unix_nano)?;
    let tags = sink.tags(&dp.attributes, None);
    sink.push(index, name.to_string(), tags, value, time);
    Ok(())
}

/// One histogram data point ready to write: cumulative `(le, count)` pairs without `+Inf`.
struct Cumulative<'a> {
    attrs: &'a [proto::KeyValue],
    time: i64,
    buckets: Vec<(f64, u64)>,
    count: u64,
    sum: Option<f64>,
}

/// Writes `_bucket` (the cumulative pairs, then `+Inf` = count), `_sum` and `_count`.
fn write_histogram(sink: &mut Sink<'_>, index: usize, name: &str, h: Cumulative<'_>) {
    let bucket_table = format!("{name}_bucket");
    for &(le, c) in &h.buckets {
        let tags = sink.tags(h.attrs, Some(("le", float_label(le))));
        sink.push(index, bucket_table.clone(), tags, c as f64, h.time);
    }
    let tags = sink.tags(h.attrs, Some(("le", "+Inf".to_string())));
    sink.push(index, bucket_table, tags, h.count as f64, h.time);
    // An `le` attribute was replaced in the buckets; the same series must not keep it here.
    let mut tags = sink.tags(h.attrs, None);
    tags.retain(|(k, _)| k != "le");
    if let Some(s) = h.sum {
        sink.push(index, format!("{name}_sum"), tags.clone(), s, h.time);
    }
    sink.push(index, format!("{name}_count"), tags, h.count as f64, h.time);
}

fn histogram(
    sink: &mut Sink<'_>,
    index: usize,
    name: &str,
    dp: proto::HistogramDataPoint,
) -> Result<(), String> {
    let time = sink.time(dp.time_unix_nano)?;
    let bounds = &dp.explicit_bounds;
    if !dp.bucket_counts.is_empty() && dp.bucket_counts.len() != bounds.len() + 1 {
        return Err(format!(
            "{} bucket counts for {} explicit bounds; expected {}",
            dp.bucket_counts.len(),
            bounds.len(),
            bounds.len() + 1
        ));
    }
    if let Some(w) = bounds
        .windows(2)
        .find(|w| w[0].partial_cmp(&w[1]) != Some(std::cmp::Ordering::Less))
    {
        return Err(format!(
            "explicit bounds must be strictly increasing, found {} then {}",
            w[0], w[1]
        ));
    }
    if bounds.iter().any(|b| b.is_nan()) {
        return Err("explicit bounds contain NaN".into());
    }
    let mut cumulative = Vec::with_capacity(bounds.len());
    if !dp.bucket_counts.is_empty() {
        let mut running = 0u64;
        for (bound, count) in bounds.iter().zip(&dp.bucket_counts) {
            running = running.saturating_add(*count);
            if *bound != f64::INFINITY {
                cumulative.push((*bound, running));
            }
        }
    }
    write_histogram(
        sink,
        index,
        name,
        Cumulative {
            attrs: &dp.attributes,
            time,
            buckets: cumulative,
            count: dp.count,
            sum: dp.sum,
        },
    );
    Ok(())
}

/// The upper bound of bucket `index` at `scale`: `2^((index + 1) · 2^-scale)`.
fn exp_upper(index: i64, scale: i32) -> f64 {
    ((index + 1) as f64 * (-f64::from(scale)).exp2()).exp2()
}

/// Merges buckets down to `to` scale: index `i` becomes `i >> (from - to)` (floor).
fn downscale(b: Option<&proto::Buckets>, from: i32, to: i32) -> BTreeMap<i64, u64> {
    let mut out = BTreeMap::new();
    let Some(b) = b else { return out };
    let shift = u32::try_from(from - to).unwrap_or(0);
    for (k, c) in b.bucket_counts.iter().enumerate() {
        let index = i64::from(b.offset) + k as i64;
        let entry = out.entry(index >> shift).or_insert(0u64);
        *entry = entry.saturating_add(*c);
    }
    out
}

fn exponential(
    sink: &mut Sink<'_>,
    index: usize,
    name: &str,
    dp: proto::ExponentialHistogramDataPoint,
) -> Result<(), String> {
    let time = sink.time(dp.time_unix_nano)?;
    if !(-10..=20).contains(&dp.scale) {
        return Err(format!("scale {} is outside -10..=20", dp.scale));
    }
    let scale = dp.scale.min(EXP_SCALE);
    let positive = downscale(dp.positive.as_ref(), dp.scale, scale);
    let negative = downscale(dp.negative.as_ref(), dp.scale, scale);
    let fill = |m: &BTreeMap<i64, u64>| -> Vec<(i64, u64)> {
        match (m.keys().next(), m.keys().next_back()) {
            (Some(&lo), Some(&hi)) => (lo..=hi)
                .map(|i| (i, m.get(&i).copied().unwrap_or(0)))
                .collect(),
            _ => Vec::new(),
        }
    };
    // Bounds ascending: negative buckets from the largest magnitude, the zero bucket, then the
    // positive buckets. A negative bucket i holds [-2^((i+1)·s), -2^(i·s)), so its `le` is
    // -upper(i - 1).
    let mut pairs: Vec<(f64, u64)> = Vec::new();
    for (i, c) in fill(&negative).into_iter().rev() {
        pairs.push((-exp_upper(i - 1, scale), c));
    }
    let zero_le = if dp.zero_threshold.is_finite() && dp.zero_threshold > 0.0 {
        dp.zero_threshold
    } else {
        0.0
    };
    pairs.push((zero_le, dp.zero_count));
    for (i, c) in fill(&positive) {
        pairs.push((exp_upper(i, scale), c));
    }
    // Cumulate, merging any bound that does not increase into the next one.
    let mut cumulative: Vec<(f64, u64)> = Vec::with_capacity(pairs.len());
    let mut running = 0u64;
    for (le, c) in pairs {
        running = running.saturating_add(c);
        match cumulative.last_mut() {
            Some(last) if le <= last.0 => last.1 = running,
            _ if le.is_finite() => cumulative.push((le, running)),
            _ => {}
        }
    }
    write_histogram(
        sink,
        index,
        name,
        Cumulative {
            attrs: &dp.attributes,
            time,
            buckets: cumulative,
            count: dp.count,
            sum: dp.sum,
        },
    );
    Ok(())
}

fn summary(
    sink: &mut Sink<'_>,
    index: usize,
    name: &str,
    dp: proto::SummaryDataPoint,
) -> Result<(), String> {
    let time = sink.time(dp.time_unix_nano)?;
    if let Some(q) = dp
        .quantile_values
        .iter()
        .find(|q| !(0.0..=1.0).contains(&q.quantile))
    {
        return Err(format!("quantile {} is outside [0, 1]", q.quantile));
    }
    for q in &dp.quantile_values {
        let tags = sink.tags(&dp.attributes, Some(("quantile", float_label(q.quantile))));
        sink.push(index, name.to_string(), tags, q.value, time);
    }
    let mut tags = sink.tags(&dp.attributes, None);
    tags.retain(|(k, _)| k != "quantile");
    sink.push(index, format!("{name}_sum"), tags.clone(), dp.sum, time);
    sink.push(index, format!("{name}_count"), tags, dp.count as f64, time);
    Ok(())
}
