//! `histogram_quantile(φ, le, count)`: PromQL's quantile over cumulative histogram buckets, as a
//! SQL aggregate.
//!
//! Each input row is one bucket: its upper bound `le` (a tag such as `'0.25'` or `'+Inf'`, or a
//! number) and its cumulative count (or the count's increase over a window, for a rate). Rows
//! with the same `le` are summed first, as PromQL's `sum by (le)` does, so p99 latency per
//! service over every instance is one query:
//!
//! ```sql
//! SELECT service, histogram_quantile(0.99, le, increase) AS p99
//! FROM (SELECT service, le, max(value) - min(value) AS increase
//!       FROM http_request_duration_seconds_bucket
//!       WHERE time > now() - INTERVAL '5 minutes' GROUP BY service, instance, le)
//! GROUP BY service
//! ```
//!
//! The estimate follows Prometheus: the bucket where the rank φ·total falls, interpolated
//! linearly inside it (from 0 for the first bucket when its bound is positive); φ < 0 gives -∞,
//! φ > 1 gives +∞; without a `+Inf` bucket, fewer than two buckets or no observations, NULL;
//! a rank in the `+Inf` bucket gives the highest finite bound. Counts that decrease with `le`
//! (a race between scrapes) are made monotonic first.

use arrow::array::{Array, ArrayRef, AsArray, Float64Array, ListArray};
use arrow::datatypes::{DataType, Field, FieldRef, Float64Type};
use datafusion::common::{Result, ScalarValue, exec_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{Accumulator, AggregateUDFImpl, Signature, Volatility};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The aggregate function.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct HistogramQuantile {
    signature: Signature,
}

impl Default for HistogramQuantile {
    fn default() -> Self {
        Self {
            signature: Signature::any(3, Volatility::Immutable),
        }
    }
}

impl AggregateUDFImpl for HistogramQuantile {
    fn name(&self) -> &str {
        "histogram_quantile"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn accumulator(&self, _acc_args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::<Buckets>::default())
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let list = || DataType::List(Arc::new(Field::new_list_field(DataType::Float64, true)));
        Ok(vec![
            Arc::new(Field::new(
                format!("{}_q", args.name),
                DataType::Float64,
                true,
            )),
            Arc::new(Field::new(format!("{}_le", args.name), list(), true)),
            Arc::new(Field::new(format!("{}_count", args.name), list(), true)),
        ])
    }
}

/// Parses a bucket bound the way Prometheus writes them (`0.25`, `+Inf`, `1e+06`).
fn parse_le(s: &str) -> Option<f64> {
    match s.trim() {
        "+Inf" | "Inf" | "inf" | "+inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        t => t.parse().ok().filter(|v: &f64| !v.is_nan()),
    }
}

/// The accumulated buckets of one group: bound → summed count.
#[derive(Debug, Default)]
struct Buckets {
    q: Option<f64>,
    counts: BTreeMap<u64, (f64, f64)>,
}

/// A total order key for finite and infinite bounds.
fn key(le: f64) -> u64 {
    let bits = le.to_bits();
    if le.is_sign_negative() {
        !bits
    } else {
        bits | (1 << 63)
    }
}

impl Buckets {
    fn add(&mut self, le: f64, count: f64) {
        let e = self.counts.entry(key(le)).or_insert((le, 0.0));
        e.1 += count;
    }

    fn quantile(&self) -> Option<f64> {
        let q = self.q?;
        if q.is_nan() {
            return Some(f64::NAN);
        }
        if q < 0.0 {
            return Some(f64::NEG_INFINITY);
        }
        if q > 1.0 {
            return Some(f64::INFINITY);
        }
        let mut buckets: Vec<(f64, f64)> = self.counts.values().copied().collect();
        if buckets.len() < 2 || buckets.last().is_none_or(|(le, _)| *le != f64::INFINITY) {
            return None;
        }
        let mut max = 0.0f64;
        for b in &mut buckets {
            max = max.max(b.1);
            b.1 = max;
        }
        let total = buckets.last().map_or(0.0, |b| b.1);
        if total <= 0.0 {
            return None;
        }
        let rank = q * total;
        let i = buckets
            .iter()
            .position(|b| b.1 >= rank)
            .unwrap_or(buckets.len() - 1);
        if i == buckets.len() - 1 {
            return Some(buckets[buckets.len() - 2].0);
        }
        let (upper, count_at_upper) = buckets[i];
        let (lower, count_below) = if i == 0 {
            if upper <= 0.0 {
                return Some(upper);
            }
            (0.0, 0.0)
        } else {
            buckets[i - 1]
        };
        let in_bucket = count_at_upper - count_below;
        if in_bucket <= 0.0 {
            return Some(upper);
        }
        Some(lower + (upper - lower) * ((rank - count_below) / in_bucket))
    }
}

fn as_f64(a: &ArrayRef) -> Result<Arc<Float64Array>> {
    let c = arrow::compute::cast(a, &DataType::Float64)?;
    Ok(Arc::new(c.as_primitive::<Float64Type>().clone()))
}

impl Accumulator for Buckets {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let [q, le, count] = values else {
            return exec_err!("histogram_quantile takes (quantile, le, count)");
        };
        let q = as_f64(q)?;
        if self.q.is_none()
            && let Some(v) = q.iter().flatten().next()
        {
            self.q = Some(v);
        }
        let les = arrow::compute::cast(le, &DataType::Utf8)?;
        let les = les.as_string::<i32>();
        let counts = as_f64(count)?;
        for i in 0..les.len() {
            if les.is_null(i) || counts.is_null(i) {
                continue;
            }
            let Some(bound) = parse_le(les.value(i)) else {
                return exec_err!(
                    "histogram_quantile: bucket bound {:?} is not a number or +Inf",
                    les.value(i)
                );
            };
            self.add(bound, counts.value(i));
        }
        Ok(())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Float64(self.quantile()))
    }

    fn size(&self) -> usize {
        std::mem::size_of::<Self>() + self.counts.len() * 40
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let (les, counts): (Vec<f64>, Vec<f64>) = self.counts.values().copied().unzip();
        let list = |v: Vec<f64>| {
            ScalarValue::List(Arc::new(
                ListArray::from_iter_primitive::<Float64Type, _, _>([Some(
                    v.into_iter().map(Some).collect::<Vec<_>>(),
                )]),
            ))
        };
        Ok(vec![ScalarValue::Float64(self.q), list(les), list(counts)])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let [q, les, counts] = states else {
            return exec_err!("histogram_quantile: bad state");
        };
        let q = as_f64(q)?;
        if self.q.is_none()
            && let Some(v) = q.iter().flatten().next()
        {
            self.q = Some(v);
        }
        let (les, counts) = (les.as_list::<i32>(), counts.as_list::<i32>());
        for row in 0..les.len() {
            if les.is_null(row) || counts.is_null(row) {
                continue;
            }
            let (l, c) = (les.value(row), counts.value(row));
            let (l, c) = (
                l.as_primitive::<Float64Type>(),
                c.as_primitive::<Float64Type>(),
            );
            for i in 0..l.len().min(c.len()) {
                self.add(l.value(i), c.value(i));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(phi: f64, buckets: &[(f64, f64)]) -> Option<f64> {
        let mut b = Buckets {
            q: Some(phi),
            ..Buckets::default()
        };
        for (le, c) in buckets {
            b.add(*le, *c);
        }
        b.quantile()
    }

    /// Figures checked by hand against Prometheus' algorithm.
    #[test]
    fn matches_prometheus_interpolation() {
        let inf = f64::INFINITY;
        let h = [(0.1, 10.0), (0.5, 60.0), (1.0, 90.0), (inf, 100.0)];
        // rank 50 is in (0.1, 0.5]: 0.1 + 0.4 * (50 - 10) / 50 = 0.42
        assert!((q(0.5, &h).expect("q") - 0.42).abs() < 1e-12);
        // rank 5 in the first bucket, interpolated from 0: 0.1 * 5 / 10 = 0.05
        assert!((q(0.05, &h).expect("q") - 0.05).abs() < 1e-12);
        // rank 99 falls in +Inf: the highest finite bound.
        assert_eq!(q(0.99, &h), Some(1.0));
        assert_eq!(q(1.5, &h), Some(inf));
        assert_eq!(q(-0.1, &h), Some(f64::NEG_INFINITY));
        assert_eq!(q(0.5, &[(0.1, 10.0), (0.5, 60.0)]), None, "no +Inf bucket");
        assert_eq!(q(0.5, &[(inf, 0.0), (1.0, 0.0)]), None, "no observations");
        // Same bounds from two series are summed; a decreasing count is made monotonic.
        let two = [
            (0.1, 5.0),
            (0.1, 5.0),
            (0.5, 30.0),
            (0.5, 30.0),
            (1.0, 45.0),
            (1.0, 45.0),
            (inf, 100.0),
        ];
        assert!((q(0.5, &two).expect("q") - 0.42).abs() < 1e-12);
        let racy = [(0.1, 10.0), (0.5, 8.0), (inf, 20.0)];
        // rank 8 in the first bucket (10 after the fix): 0.1 * 8 / 10
        assert!((q(0.4, &racy).expect("q") - 0.08).abs() < 1e-12);
    }

    #[test]
    fn bounds_parse_like_prometheus_writes_them() {
        assert_eq!(parse_le("+Inf"), Some(f64::INFINITY));
        assert_eq!(parse_le("0.25"), Some(0.25));
        assert_eq!(parse_le("1e+06"), Some(1e6));
        assert_eq!(parse_le("fast"), None);
        assert!(key(-1.0) < key(0.0) && key(0.0) < key(0.5) && key(0.5) < key(f64::INFINITY));
    }
}
