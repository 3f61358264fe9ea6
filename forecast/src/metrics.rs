//! Accuracy metrics of the benchmark protocol, as pure functions.
//!
//! All take equally long slices; NaN actuals (masked points) are skipped where noted.

/// In-sample mean absolute error of the seasonal naive forecast with lag `lag`:
/// mean of `|y[t] - y[t-lag]|`. The MASE and MSIS scale. `None` when the series is not longer
/// than `lag` or the scale is zero (a constant or exactly periodic series).
pub fn naive_scale(train: &[f64], lag: usize) -> Option<f64> {
    if lag == 0 || train.len() <= lag {
        return None;
    }
    let n = train.len() - lag;
    let s: f64 = (lag..train.len())
        .map(|t| (train[t] - train[t - lag]).abs())
        .sum();
    let scale = s / n as f64;
    (scale > 0.0 && scale.is_finite()).then_some(scale)
}

/// Mean absolute error, skipping NaN actuals. `NaN` if nothing is left.
pub fn mae(actual: &[f64], pred: &[f64]) -> f64 {
    let (s, n) = actual
        .iter()
        .zip(pred)
        .filter(|(a, _)| !a.is_nan())
        .fold((0.0, 0usize), |(s, n), (a, p)| (s + (a - p).abs(), n + 1));
    if n == 0 { f64::NAN } else { s / n as f64 }
}

/// Mean absolute scaled error: [`mae`] divided by `scale` (see [`naive_scale`]).
pub fn mase(actual: &[f64], pred: &[f64], scale: f64) -> f64 {
    mae(actual, pred) / scale
}

/// Fraction of actuals inside `[lower, upper]` (bounds included), skipping NaN actuals.
pub fn coverage(actual: &[f64], lower: &[f64], upper: &[f64]) -> f64 {
    let mut inside = 0usize;
    let mut n = 0usize;
    for ((a, l), u) in actual.iter().zip(lower).zip(upper) {
        if a.is_nan() {
            continue;
        }
        n += 1;
        if a >= l && a <= u {
            inside += 1;
        }
    }
    if n == 0 {
        f64::NAN
    } else {
        inside as f64 / n as f64
    }
}

/// Mean scaled interval score (M4 competition): for a `(1 - alpha)` interval,
/// mean of `(U - L) + 2/alpha * (L - Y) * [Y < L] + 2/alpha * (Y - U) * [Y > U]`, divided by
/// `scale`. Skips NaN actuals.
pub fn msis(actual: &[f64], lower: &[f64], upper: &[f64], alpha: f64, scale: f64) -> f64 {
    let mut s = 0.0;
    let mut n = 0usize;
    for ((a, l), u) in actual.iter().zip(lower).zip(upper) {
        if a.is_nan() {
            continue;
        }
        n += 1;
        s += u - l;
        if a < l {
            s += 2.0 / alpha * (l - a);
        }
        if a > u {
            s += 2.0 / alpha * (a - u);
        }
    }
    if n == 0 {
        f64::NAN
    } else {
        s / n as f64 / scale
    }
}

/// Daily-peak errors of one forecast window.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PeakStats {
    /// Sum over days of `|max(pred) - max(actual)| / max(actual)`.
    pub ape_sum: f64,
    /// Days that entered `ape_sum` (those with a positive actual peak).
    pub ape_days: usize,
    /// Days whose actual peak exceeded the highest upper bound of that day.
    pub over_band: usize,
    /// Days in the window.
    pub days: usize,
}

impl PeakStats {
    /// Adds another window's counts.
    pub fn add(&mut self, o: &PeakStats) {
        self.ape_sum += o.ape_sum;
        self.ape_days += o.ape_days;
        self.over_band += o.over_band;
        self.days += o.days;
    }

    /// Mean absolute percentage error of the daily peak (as a fraction).
    pub fn peak_ape(&self) -> f64 {
        if self.ape_days == 0 {
            f64::NAN
        } else {
            self.ape_sum / self.ape_days as f64
        }
    }

    /// Fraction of days whose actual peak was above the band.
    pub fn over_band_rate(&self) -> f64 {
        if self.days == 0 {
            f64::NAN
        } else {
            self.over_band as f64 / self.days as f64
        }
    }
}

/// Splits the window into days of `day_len` points (the last may be shorter) and compares
/// daily maxima: forecast vs actual peak, and actual peak vs the day's highest `upper` bound.
/// Days whose actuals are all NaN are skipped.
pub fn daily_peaks(actual: &[f64], pred: &[f64], upper: &[f64], day_len: usize) -> PeakStats {
    let mut st = PeakStats::default();
    let day_len = day_len.max(1);
    let n = actual.len().min(pred.len()).min(upper.len());
    let mut i = 0;
    while i < n {
        let j = (i + day_len).min(n);
        let a_max = max_finite(&actual[i..j]);
        if let Some(a_max) = a_max {
            st.days += 1;
            let p_max = max_finite(&pred[i..j]).unwrap_or(f64::NAN);
            let u_max = max_finite(&upper[i..j]).unwrap_or(f64::NEG_INFINITY);
            if a_max > 0.0 {
                st.ape_sum += (p_max - a_max).abs() / a_max;
                st.ape_days += 1;
            }
            if a_max > u_max {
                st.over_band += 1;
            }
        }
        i = j;
    }
    st
}

fn max_finite(xs: &[f64]) -> Option<f64> {
    xs.iter()
        .copied()
        .filter(|x| !x.is_nan())
        .fold(None, |m, x| Some(m.map_or(x, |m: f64| m.max(x))))
}

/// Geometric mean of positive finite values (others skipped); `NaN` if none.
pub fn geometric_mean(xs: &[f64]) -> f64 {
    let logs: Vec<f64> = xs
        .iter()
        .filter(|x| x.is_finite() && **x > 0.0)
        .map(|x| x.ln())
        .collect();
    if logs.is_empty() {
        f64::NAN
    } else {
        (logs.iter().sum::<f64>() / logs.len() as f64).exp()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn naive_scale_by_hand() {
        // lag 2: |3-1| + |4-2| + |9-3| = 2 + 2 + 6 = 10 over 3 -> 10/3
        assert!(close(
            naive_scale(&[1.0, 2.0, 3.0, 4.0, 9.0], 2).unwrap(),
            10.0 / 3.0
        ));
        assert_eq!(naive_scale(&[1.0, 2.0], 2), None);
        assert_eq!(naive_scale(&[5.0, 5.0, 5.0], 1), None);
    }

    #[test]
    fn mase_by_hand() {
        // errors 1, 2, 3 -> MAE 2; scale 4 -> 0.5
        assert!(close(mase(&[1.0, 2.0, 3.0], &[2.0, 0.0, 6.0], 4.0), 0.5));
        // NaN actual skipped: errors 1, 3 -> 2
        assert!(close(mae(&[1.0, f64::NAN, 3.0], &[2.0, 0.0, 6.0]), 2.0));
    }

    #[test]
    fn coverage_by_hand() {
        let a = [1.0, 5.0, 10.0, 2.0];
        let l = [0.0, 5.0, 0.0, 3.0];
        let u = [2.0, 6.0, 9.0, 4.0];
        // inside: 1 yes, 5 yes (bound), 10 no, 2 no -> 0.5
        assert!(close(coverage(&a, &l, &u), 0.5));
    }

    #[test]
    fn msis_by_hand() {
        // alpha 0.05 -> penalty factor 40.
        // t1: y=5 in [4,6]: width 2
        // t2: y=10, [4,6]: width 2 + 40*4 = 162
        // t3: y=0, [1,3]: width 2 + 40*1 = 42
        // mean = 206/3; scale 2 -> 206/6
        let v = msis(
            &[5.0, 10.0, 0.0],
            &[4.0, 4.0, 1.0],
            &[6.0, 6.0, 3.0],
            0.05,
            2.0,
        );
        assert!(close(v, 206.0 / 6.0), "{v}");
    }

    #[test]
    fn daily_peaks_by_hand() {
        // two days of 3 points
        let actual = [1.0, 10.0, 2.0, 4.0, 8.0, 1.0];
        let pred = [1.0, 8.0, 2.0, 4.0, 10.0, 1.0];
        let upper = [3.0, 9.0, 4.0, 6.0, 12.0, 3.0];
        let st = daily_peaks(&actual, &pred, &upper, 3);
        // day 1: |8-10|/10 = 0.2; actual 10 > max upper 9 -> over
        // day 2: |10-8|/8 = 0.25; 8 <= 12
        assert_eq!(st.days, 2);
        assert_eq!(st.over_band, 1);
        assert!(close(st.peak_ape(), 0.225));
        assert!(close(st.over_band_rate(), 0.5));
    }

    #[test]
    fn geometric_mean_by_hand() {
        assert!(close(geometric_mean(&[1.0, 4.0]), 2.0));
        assert!(close(geometric_mean(&[2.0, f64::NAN, 8.0]), 4.0));
        assert!(geometric_mean(&[]).is_nan());
    }
}
