//! Prediction intervals and peak quantiles from backtest residuals.
//!
//! Before a cut-off, the chosen model is backtested on a few inner windows; the residual paths
//! (actual − forecast, one per inner window) calibrate everything probabilistic:
//! pointwise intervals are split-conformal quantiles of the signed residuals pooled per horizon
//! bucket (a day), and sample paths add whole residual days, drawn at random, to the point
//! forecast. The peak of a window is then a quantile of the maximum over those paths, which is
//! not the maximum of pointwise upper bounds.

use crate::error::{Error, Result};
use std::ops::Range;

/// Residual paths of inner backtest windows, grouped by horizon bucket.
#[derive(Debug, Clone)]
pub struct Calibration {
    paths: Vec<Vec<f64>>,
    bucket: usize,
    /// Sorted residuals per bucket (finite ones only).
    sorted: Vec<Vec<f64>>,
}

impl Calibration {
    /// Calibration from residual paths (`actual − forecast` for steps `1..=H` of each inner
    /// window; NaN where the actual was masked), pooled in buckets of `bucket` steps.
    pub fn new(paths: Vec<Vec<f64>>, bucket: usize) -> Result<Self> {
        let horizon = paths.first().map_or(0, Vec::len);
        if horizon == 0 || paths.iter().any(|p| p.len() != horizon) {
            return Err(Error::InvalidParameter {
                name: "calibration",
                reason: format!(
                    "need at least one residual path, all of one non-zero length; got {} paths",
                    paths.len()
                ),
            });
        }
        let bucket = bucket.clamp(1, horizon);
        let n_buckets = horizon.div_ceil(bucket);
        let mut sorted = vec![Vec::new(); n_buckets];
        for p in &paths {
            for (h, r) in p.iter().enumerate() {
                if r.is_finite() {
                    sorted[h / bucket].push(*r);
                }
            }
        }
        for (b, s) in sorted.iter_mut().enumerate() {
            if s.is_empty() {
                return Err(Error::InvalidParameter {
                    name: "calibration",
                    reason: format!("no finite residual in horizon bucket {b}"),
                });
            }
            s.sort_by(f64::total_cmp);
        }
        Ok(Self {
            paths,
            bucket,
            sorted,
        })
    }

    /// Steps covered.
    pub fn horizon(&self) -> usize {
        self.paths.first().map_or(0, Vec::len)
    }

    /// Number of residual paths (inner windows).
    pub fn windows(&self) -> usize {
        self.paths.len()
    }

    /// Split-conformal bounds of the signed residual at step `h` for central level `level`:
    /// the `ceil((n+1)(1−a/2))`-th smallest and `floor((n+1)(a/2))`-th smallest residual of
    /// the bucket, `a = 1 − level`, clamped to the observed range.
    pub fn residual_bounds(&self, h: usize, level: f64) -> (f64, f64) {
        let b = (h / self.bucket).min(self.sorted.len() - 1);
        let s = &self.sorted[b];
        let n = s.len();
        let a = (1.0 - level).clamp(0.0, 1.0);
        let hi = ((n as f64 + 1.0) * (1.0 - a / 2.0)).ceil() as usize;
        let lo = ((n as f64 + 1.0) * (a / 2.0)).floor() as usize;
        let hi = hi.clamp(1, n) - 1;
        let lo = lo.clamp(1, n) - 1;
        (s[lo], s[hi])
    }
}

/// Lower and upper bounds, one per step.
#[derive(Debug, Clone, PartialEq)]
pub struct Interval {
    /// Central level, e.g. 0.95.
    pub level: f64,
    /// Lower bounds.
    pub lower: Vec<f64>,
    /// Upper bounds.
    pub upper: Vec<f64>,
}

/// A point forecast with what is needed to derive intervals and sample paths.
#[derive(Debug, Clone)]
pub struct Forecast {
    /// Name of the model that produced it.
    pub model: String,
    /// Unix seconds of the first forecast step.
    pub start: i64,
    /// Interval between steps, in seconds.
    pub step: i64,
    /// Point forecasts.
    pub point: Vec<f64>,
    /// Residuals the intervals come from.
    pub calibration: Calibration,
}

impl Forecast {
    /// Pointwise interval at central `level`. Steps beyond the calibration horizon use its last
    /// bucket.
    pub fn interval(&self, level: f64) -> Interval {
        let (lower, upper) = self
            .point
            .iter()
            .enumerate()
            .map(|(h, p)| {
                let (l, u) = self.calibration.residual_bounds(h, level);
                (p + l, p + u)
            })
            .unzip();
        Interval {
            level,
            lower,
            upper,
        }
    }

    /// `n` simulated paths over `range` (steps of the forecast): the point forecast plus, for
    /// each bucket (day), the residuals of that bucket from one inner window drawn at random,
    /// so a path keeps the shape of a real day's error. Deterministic for a given `seed`.
    pub fn sample_paths(&self, range: Range<usize>, n: usize, seed: u64) -> Vec<Vec<f64>> {
        let cal = &self.calibration;
        let horizon = cal.horizon();
        let mut rng = SplitMix64(seed);
        let range = range.start.min(self.point.len())..range.end.min(self.point.len());
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let mut path = Vec::with_capacity(range.len());
            let mut pick = usize::MAX;
            let mut bucket_of_pick = usize::MAX;
            for h in range.clone() {
                let hc = h.min(horizon - 1);
                let b = hc / cal.bucket;
                if b != bucket_of_pick || pick == usize::MAX {
                    // Draw a path whose residual here is finite (masked actuals are NaN).
                    pick = rng.below(cal.paths.len());
                    bucket_of_pick = b;
                }
                let mut r = cal.paths[pick][hc];
                if !r.is_finite() {
                    let s = &cal.sorted[b.min(cal.sorted.len() - 1)];
                    r = s[rng.below(s.len())];
                }
                path.push(self.point[h] + r);
            }
            out.push(path);
        }
        out
    }
}

/// Quantiles `qs` (each in `[0, 1]`) of the maximum of the forecast over `window` (steps of the
/// forecast), from 2,000 simulated paths: what a capacity plan needs for "P90 of the peak".
pub fn peak_quantiles(fc: &Forecast, window: Range<usize>, qs: &[f64]) -> Result<Vec<f64>> {
    if window.is_empty() || window.end > fc.point.len() {
        return Err(Error::InvalidParameter {
            name: "window",
            reason: format!(
                "{}..{} is empty or beyond the {} forecast steps",
                window.start,
                window.end,
                fc.point.len()
            ),
        });
    }
    if let Some(q) = qs.iter().find(|q| !(0.0..=1.0).contains(*q)) {
        return Err(Error::InvalidParameter {
            name: "quantile",
            reason: format!("{q} is not in [0, 1]"),
        });
    }
    let mut peaks: Vec<f64> = fc
        .sample_paths(window, 2000, 0x5eed)
        .iter()
        .map(|p| p.iter().copied().fold(f64::NEG_INFINITY, f64::max))
        .collect();
    peaks.sort_by(f64::total_cmp);
    Ok(qs.iter().map(|q| quantile_sorted(&peaks, *q)).collect())
}

/// Linear-interpolation quantile of sorted values (type 7).
pub fn quantile_sorted(s: &[f64], q: f64) -> f64 {
    if s.is_empty() {
        return f64::NAN;
    }
    let pos = q.clamp(0.0, 1.0) * (s.len() - 1) as f64;
    let i = pos.floor() as usize;
    let j = (i + 1).min(s.len() - 1);
    s[i] + (s[j] - s[i]) * (pos - i as f64)
}

/// Small deterministic generator for sample paths (no dependency, reproducible).
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fc(point: Vec<f64>, paths: Vec<Vec<f64>>, bucket: usize) -> Forecast {
        Forecast {
            model: "test".into(),
            start: 0,
            step: 1,
            point,
            calibration: Calibration::new(paths, bucket).unwrap(),
        }
    }

    #[test]
    fn conformal_bounds_by_hand() {
        // One bucket with residuals -2..=7 (10 values), level 0.8, a = 0.2:
        // hi = ceil(11 * 0.9) = 10 -> 10th smallest = 7; lo = floor(11 * 0.1) = 1 -> -2.
        let paths = vec![(0..10).map(|r| f64::from(r) - 2.0).collect::<Vec<_>>()];
        let cal = Calibration::new(paths, 10).unwrap();
        assert_eq!(cal.residual_bounds(3, 0.8), (-2.0, 7.0));
        // level 0.5, a = 0.5: hi = ceil(11*0.75) = 9 -> 6; lo = floor(11*0.25) = 2 -> -1
        assert_eq!(cal.residual_bounds(0, 0.5), (-1.0, 6.0));
    }

    #[test]
    fn intervals_use_their_bucket() {
        let f = fc(
            vec![10.0, 10.0, 10.0, 10.0],
            vec![vec![-1.0, 1.0, -5.0, 5.0], vec![0.0, 0.0, 0.0, 0.0]],
            2,
        );
        let i = f.interval(0.9);
        assert_eq!(i.lower, vec![9.0, 9.0, 5.0, 5.0]);
        assert_eq!(i.upper, vec![11.0, 11.0, 15.0, 15.0]);
    }

    #[test]
    fn peak_quantile_is_not_max_of_pointwise_bounds() {
        // Two days of two steps; residual days are either (0, 0) or (+10 at one step).
        // Pointwise 99% upper bound is +10 at each step, so the max of bounds is 20 for a
        // flat point forecast of 10. The peak of a path is 10 or 20.
        let paths = vec![
            vec![0.0, 0.0, 0.0, 0.0],
            vec![10.0, 0.0, 10.0, 0.0],
            vec![0.0, 0.0, 0.0, 0.0],
            vec![0.0, 0.0, 0.0, 0.0],
        ];
        let f = fc(vec![10.0; 4], paths, 2);
        let q = peak_quantiles(&f, 0..4, &[0.1, 0.5, 0.99]).unwrap();
        assert_eq!(q[0], 10.0);
        // P(peak = 20) = 1 - (3/4)^2 = 7/16 < 0.5, so the median peak is 10.
        assert_eq!(q[1], 10.0);
        assert_eq!(q[2], 20.0);
        assert!(peak_quantiles(&f, 0..5, &[0.5]).is_err());
        assert!(peak_quantiles(&f, 0..4, &[1.5]).is_err());
    }

    #[test]
    fn quantile_interpolates() {
        assert_eq!(quantile_sorted(&[0.0, 10.0], 0.25), 2.5);
        assert_eq!(quantile_sorted(&[1.0, 2.0, 3.0], 1.0), 3.0);
    }
}
