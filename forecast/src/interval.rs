//! Prediction intervals and peak quantiles from backtest residuals.
//!
//! Before a cut-off, the chosen model is backtested on a few inner windows; the residual paths
//! (actual − forecast, one per inner window) calibrate everything probabilistic. Errors depend on
//! the hour of day far more than on the horizon (a rush-hour peak is missed by more than a night
//! trough), so residuals are pooled by their phase in the shortest season (with a neighbouring
//! phase on each side) and pointwise intervals are split-conformal quantiles of each pool.
//! Sample paths add whole residual days, drawn at random from the inner windows, to the point
//! forecast; the peak of a window is a quantile of the maximum over those paths, which is not
//! the maximum of pointwise upper bounds.

use crate::error::{Error, Result};
use std::ops::Range;

/// The residuals of one inner backtest window.
#[derive(Debug, Clone)]
pub struct ResidualPath {
    /// Grid index (`time / step`) of the first residual, which fixes every residual's phase.
    pub grid_start: i64,
    /// `actual − forecast` per step; NaN where the actual was masked.
    pub residuals: Vec<f64>,
}

/// Residuals of inner backtest windows, pooled by phase of the period.
#[derive(Debug, Clone)]
pub struct Calibration {
    period: usize,
    /// Residual days: `period` values indexed by phase, NaN where not observed.
    days: Vec<Vec<f64>>,
    /// Sorted finite residuals per phase, each pooled with `spread` neighbouring phases on
    /// each side.
    sorted: Vec<Vec<f64>>,
    windows: usize,
}

impl Calibration {
    /// Calibration from residual paths, pooled per phase of `period` with `spread` neighbouring
    /// phases on each side (a period of 1 pools everything).
    pub fn new(paths: &[ResidualPath], period: usize, spread: usize) -> Result<Self> {
        let period = period.max(1);
        let invalid = |reason: String| Error::InvalidParameter {
            name: "calibration",
            reason,
        };
        if paths.is_empty() || paths.iter().all(|p| p.residuals.is_empty()) {
            return Err(invalid("need at least one non-empty residual path".into()));
        }
        let p = period as i64;
        let mut days = Vec::new();
        let mut by_phase = vec![Vec::new(); period];
        for path in paths {
            let mut current: Option<(i64, Vec<f64>)> = None;
            for (h, r) in path.residuals.iter().enumerate() {
                let g = path.grid_start + h as i64;
                let (day, phase) = (g.div_euclid(p), g.rem_euclid(p) as usize);
                if current.as_ref().is_none_or(|(d, _)| *d != day) {
                    if let Some((_, v)) = current.take() {
                        days.push(v);
                    }
                    current = Some((day, vec![f64::NAN; period]));
                }
                if let Some((_, v)) = current.as_mut() {
                    v[phase] = *r;
                }
                if r.is_finite() {
                    by_phase[phase].push(*r);
                }
            }
            if let Some((_, v)) = current {
                days.push(v);
            }
        }
        let spread = spread.min(period.saturating_sub(1) / 2);
        let mut sorted = Vec::with_capacity(period);
        for ph in 0..period {
            let mut pool = Vec::new();
            for d in 0..=2 * spread {
                pool.extend_from_slice(&by_phase[(ph + period + d - spread) % period]);
            }
            // A phase the inner windows never saw unmasked (a short horizon, a milestone masked
            // at that hour) borrows from the nearest phases that have residuals.
            let mut wider = spread;
            while pool.is_empty() && wider < period / 2 {
                wider += 1;
                pool.extend_from_slice(&by_phase[(ph + wider) % period]);
                pool.extend_from_slice(&by_phase[(ph + period - wider % period) % period]);
            }
            if pool.is_empty() {
                return Err(invalid(format!("no finite residual at phase {ph}")));
            }
            pool.sort_by(f64::total_cmp);
            sorted.push(pool);
        }
        Ok(Self {
            period,
            days,
            sorted,
            windows: paths.len(),
        })
    }

    /// Number of residual paths (inner windows).
    pub fn windows(&self) -> usize {
        self.windows
    }

    fn phase(&self, grid: i64) -> usize {
        grid.rem_euclid(self.period as i64) as usize
    }

    /// Split-conformal bounds of the signed residual at grid index `grid` for central level
    /// `level`: with `n` pooled residuals and `a = 1 − level`, the `ceil((n+1)(1−a/2))`-th and
    /// `floor((n+1)(a/2))`-th smallest, clamped to the observed range.
    pub fn residual_bounds(&self, grid: i64, level: f64) -> (f64, f64) {
        let s = &self.sorted[self.phase(grid)];
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
    /// Grid index (`time / step`) of forecast step `h`.
    fn grid(&self, h: usize) -> i64 {
        self.start.div_euclid(self.step.max(1)) + h as i64
    }

    /// Pointwise interval at central `level`.
    pub fn interval(&self, level: f64) -> Interval {
        let (lower, upper) = self
            .point
            .iter()
            .enumerate()
            .map(|(h, p)| {
                let (l, u) = self.calibration.residual_bounds(self.grid(h), level);
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
    /// each period (day) it touches, the residuals of one inner-window day drawn at random, so a
    /// path keeps the shape of a real day's error. Deterministic for a given `seed`.
    pub fn sample_paths(&self, range: Range<usize>, n: usize, seed: u64) -> Vec<Vec<f64>> {
        let cal = &self.calibration;
        let p = cal.period as i64;
        let mut rng = SplitMix64(seed);
        let range = range.start.min(self.point.len())..range.end.min(self.point.len());
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let mut path = Vec::with_capacity(range.len());
            let mut day_of_pick = None;
            let mut pick = 0;
            for h in range.clone() {
                let g = self.grid(h);
                let day = g.div_euclid(p);
                if day_of_pick != Some(day) {
                    pick = rng.below(cal.days.len());
                    day_of_pick = Some(day);
                }
                let phase = cal.phase(g);
                let mut r = cal.days[pick][phase];
                if !r.is_finite() {
                    // Not observed on that day (masked, or a partial day): any residual of
                    // this phase.
                    let s = &cal.sorted[phase];
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

    fn path(grid_start: i64, residuals: Vec<f64>) -> ResidualPath {
        ResidualPath {
            grid_start,
            residuals,
        }
    }

    fn fc(point: Vec<f64>, cal: Calibration) -> Forecast {
        Forecast {
            model: "test".into(),
            start: 0,
            step: 1,
            point,
            calibration: cal,
        }
    }

    #[test]
    fn conformal_bounds_by_hand() {
        // Period 1: one pool with residuals -2..=7 (10 values). Level 0.8, a = 0.2:
        // hi = ceil(11 * 0.9) = 10 -> 10th smallest = 7; lo = floor(11 * 0.1) = 1 -> -2.
        let paths = [path(0, (0..10).map(|r| f64::from(r) - 2.0).collect())];
        let cal = Calibration::new(&paths, 1, 0).unwrap();
        assert_eq!(cal.residual_bounds(3, 0.8), (-2.0, 7.0));
        // level 0.5, a = 0.5: hi = ceil(11*0.75) = 9 -> 6; lo = floor(11*0.25) = 2 -> -1
        assert_eq!(cal.residual_bounds(0, 0.5), (-1.0, 6.0));
    }

    #[test]
    fn intervals_follow_the_phase_not_the_horizon() {
        // Period 2: even phases err by +-1, odd phases by +-5. Paths start on different phases.
        let cal = Calibration::new(
            &[
                path(0, vec![-1.0, 5.0, 1.0, -5.0]),
                path(1, vec![5.0, 1.0, -5.0, -1.0]),
            ],
            2,
            0,
        )
        .unwrap();
        let i = fc(vec![10.0; 4], cal).interval(0.5);
        assert_eq!(i.lower, vec![9.0, 5.0, 9.0, 5.0]);
        assert_eq!(i.upper, vec![11.0, 15.0, 11.0, 15.0]);
    }

    #[test]
    fn neighbouring_phases_are_pooled() {
        // Period 4, spread 1: phase 0 pools phases 3, 0, 1.
        let cal = Calibration::new(&[path(0, vec![1.0, 2.0, 100.0, 3.0])], 4, 1).unwrap();
        assert_eq!(cal.residual_bounds(0, 0.0001), (1.0, 3.0));
        assert_eq!(cal.residual_bounds(2, 0.0001), (2.0, 100.0));
    }

    #[test]
    fn a_phase_never_observed_borrows_from_the_nearest() {
        // Period 6, no spread: phases 2 and 3 only have NaN (masked); phase 2 borrows from
        // phases 1 and 3 (→ 1), phase 3 from 2 and 4 (→ 4) before widening further.
        let cal = Calibration::new(
            &[path(0, vec![0.0, 1.0, f64::NAN, f64::NAN, 4.0, 5.0])],
            6,
            0,
        )
        .unwrap();
        assert_eq!(cal.residual_bounds(2, 0.0001), (1.0, 1.0));
        assert_eq!(cal.residual_bounds(3, 0.0001), (4.0, 4.0));
        assert!(Calibration::new(&[path(0, vec![f64::NAN; 3])], 3, 0).is_err());
    }

    #[test]
    fn peak_quantile_is_not_max_of_pointwise_bounds() {
        // Days of two steps; a residual day is either (0, 0) or (+10, 0). The pointwise 99%
        // upper bound is +10 at phase 0, so over two days the max of bounds is 20 for a flat
        // point forecast of 10; the peak of a path is 10 or 20 and P(20) = 1 - (3/4)^2 = 7/16.
        let paths = [
            path(0, vec![0.0, 0.0, 0.0, 0.0]),
            path(0, vec![10.0, 0.0, 0.0, 0.0]),
        ];
        let f = fc(vec![10.0; 4], Calibration::new(&paths, 2, 0).unwrap());
        let q = peak_quantiles(&f, 0..4, &[0.1, 0.5, 0.99]).unwrap();
        assert_eq!(q[0], 10.0);
        // The median peak is 10, though the max of pointwise 99% bounds is 20.
        assert_eq!(q[1], 10.0);
        assert_eq!(q[2], 20.0);
        assert_eq!(
            f.interval(0.99)
                .upper
                .iter()
                .copied()
                .fold(f64::MIN, f64::max),
            20.0
        );
        assert!(peak_quantiles(&f, 0..5, &[0.5]).is_err());
        assert!(peak_quantiles(&f, 0..4, &[1.5]).is_err());
    }

    #[test]
    fn quantile_interpolates() {
        assert_eq!(quantile_sorted(&[0.0, 10.0], 0.25), 2.5);
        assert_eq!(quantile_sorted(&[1.0, 2.0, 3.0], 1.0), 3.0);
    }
}
