//! Series preparation: raw `(time, value)` points become a regular series.
//!
//! Duplicate timestamps are averaged, gaps up to a limit are filled linearly, longer gaps are
//! refused, and windows that carry synthetic load (stress tests, drills) can be masked so that
//! organic fits do not learn from them.

use crate::error::{Error, Result};

/// A regularly spaced series: `values[i]` is at `start + i * step` (Unix seconds).
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Unix seconds of the first point.
    pub start: i64,
    /// Interval between points, in seconds.
    pub step: i64,
    /// Values, one per grid point, all finite.
    pub values: Vec<f64>,
    /// `true` where the point lies in a masked window (synthetic load): models fit on
    /// [`Series::organic_values`], which replaces these points.
    pub masked: Vec<bool>,
}

/// A half-open time range `[start, end)` in Unix seconds: a milestone, a holiday, a mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeWindow {
    /// First second inside the window.
    pub start: i64,
    /// First second after the window.
    pub end: i64,
}

impl TimeWindow {
    /// Whether `t` lies in the window.
    pub fn contains(&self, t: i64) -> bool {
        t >= self.start && t < self.end
    }
}

/// How to turn raw points into a [`Series`].
#[derive(Debug, Clone)]
pub struct PrepareOptions {
    /// Grid interval in seconds; `None` infers the most common difference between timestamps.
    pub step: Option<i64>,
    /// Longest run of missing grid points that is filled linearly.
    pub max_gap: usize,
    /// Drop points before this time (Unix seconds).
    pub from: Option<i64>,
    /// Drop points after this time (Unix seconds; a point exactly at `to` is kept).
    pub to: Option<i64>,
}

impl Default for PrepareOptions {
    /// Hourly data in practice: infer the interval, fill gaps of up to 12 points.
    fn default() -> Self {
        Self {
            step: None,
            max_gap: 12,
            from: None,
            to: None,
        }
    }
}

/// What preparation changed, for the user to see.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrepareReport {
    /// Raw points read.
    pub input_points: usize,
    /// Points dropped by `from`/`to`.
    pub sliced_out: usize,
    /// Raw points merged into another point with the same timestamp.
    pub duplicates_merged: usize,
    /// Grid points filled by linear interpolation.
    pub filled: usize,
}

/// Builds a regular series from raw points (any order).
///
/// Errors on an empty input, non-finite values, timestamps off the grid, or a gap longer than
/// `opts.max_gap`; never panics.
pub fn prepare(points: &[(i64, f64)], opts: &PrepareOptions) -> Result<(Series, PrepareReport)> {
    let mut report = PrepareReport {
        input_points: points.len(),
        ..PrepareReport::default()
    };
    for &(time, v) in points {
        if !v.is_finite() {
            return Err(Error::NotFinite { time });
        }
    }
    let mut pts: Vec<(i64, f64)> = points
        .iter()
        .copied()
        .filter(|(t, _)| opts.from.is_none_or(|f| *t >= f) && opts.to.is_none_or(|e| *t <= e))
        .collect();
    report.sliced_out = points.len() - pts.len();
    if pts.is_empty() {
        return Err(Error::Empty);
    }
    pts.sort_by_key(|p| p.0);
    // Merge duplicates by averaging.
    let mut merged: Vec<(i64, f64)> = Vec::with_capacity(pts.len());
    let mut i = 0;
    while i < pts.len() {
        let t = pts[i].0;
        let mut sum = 0.0;
        let mut n = 0usize;
        while i < pts.len() && pts[i].0 == t {
            sum += pts[i].1;
            n += 1;
            i += 1;
        }
        report.duplicates_merged += n - 1;
        merged.push((t, sum / n as f64));
    }
    let step = match opts.step {
        Some(s) if s > 0 => s,
        Some(s) => {
            return Err(Error::Interval {
                reason: format!("step {s} is not positive"),
            });
        }
        None => infer_step(&merged)?,
    };
    let start = merged[0].0;
    let mut values = Vec::with_capacity(merged.len());
    let mut prev: Option<(i64, f64)> = None;
    for &(t, v) in &merged {
        if (t - start) % step != 0 {
            return Err(Error::OffGrid {
                time: t,
                step,
                start,
            });
        }
        if let Some((pt, pv)) = prev {
            let missing = usize::try_from((t - pt) / step - 1).unwrap_or(usize::MAX);
            if missing > opts.max_gap {
                return Err(Error::GapTooLong {
                    after: pt,
                    missing,
                    max: opts.max_gap,
                });
            }
            for k in 1..=missing {
                let w = k as f64 / (missing + 1) as f64;
                values.push(pv + (v - pv) * w);
            }
            report.filled += missing;
        }
        values.push(v);
        prev = Some((t, v));
    }
    let masked = vec![false; values.len()];
    Ok((
        Series {
            start,
            step,
            values,
            masked,
        },
        report,
    ))
}

fn infer_step(pts: &[(i64, f64)]) -> Result<i64> {
    if pts.len() < 2 {
        return Err(Error::Interval {
            reason: "fewer than two distinct timestamps".into(),
        });
    }
    let mut diffs: Vec<i64> = pts.windows(2).map(|w| w[1].0 - w[0].0).collect();
    diffs.sort_unstable();
    // Most common difference.
    let mut best = (diffs[0], 0usize);
    let mut i = 0;
    while i < diffs.len() {
        let d = diffs[i];
        let mut n = 0;
        while i < diffs.len() && diffs[i] == d {
            n += 1;
            i += 1;
        }
        if n > best.1 {
            best = (d, n);
        }
    }
    Ok(best.0)
}

impl Series {
    /// A series from values on a grid, nothing masked (for tests and synthetic data).
    pub fn from_values(start: i64, step: i64, values: Vec<f64>) -> Self {
        let masked = vec![false; values.len()];
        Self {
            start,
            step,
            values,
            masked,
        }
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether the series has no points.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Unix seconds of point `i`.
    pub fn time_at(&self, i: usize) -> i64 {
        self.start + i as i64 * self.step
    }

    /// Marks every point inside one of `windows` as synthetic.
    pub fn mask_windows(&mut self, windows: &[TimeWindow]) {
        for (i, m) in self.masked.iter_mut().enumerate() {
            let t = self.start + i as i64 * self.step;
            if windows.iter().any(|w| w.contains(t)) {
                *m = true;
            }
        }
    }

    /// The points `range` as a new series (masks kept).
    pub fn slice(&self, range: std::ops::Range<usize>) -> Series {
        Series {
            start: self.time_at(range.start),
            step: self.step,
            values: self.values[range.clone()].to_vec(),
            masked: self.masked[range].to_vec(),
        }
    }

    /// Values with masked points replaced by organic estimates: the value one `period`
    /// earlier if that is organic (or already replaced), otherwise linear interpolation between
    /// the nearest organic neighbours. Used for fitting, so synthetic load is not learned.
    pub fn organic_values(&self, period: usize) -> Vec<f64> {
        let mut out = self.values.clone();
        if !self.masked.iter().any(|m| *m) {
            return out;
        }
        let mut done = vec![false; out.len()];
        for i in 0..out.len() {
            if !self.masked[i] {
                done[i] = true;
            } else if period > 0 && i >= period && done[i - period] {
                out[i] = out[i - period];
                done[i] = true;
            }
        }
        // Remaining masked points: interpolate between organic neighbours.
        let mut i = 0;
        while i < out.len() {
            if done[i] {
                i += 1;
                continue;
            }
            let j = (i..out.len()).find(|&k| done[k]).unwrap_or(out.len());
            let left = i.checked_sub(1).map(|k| out[k]);
            let right = out.get(j).copied();
            for (k, v) in out[i..j].iter_mut().enumerate() {
                *v = match (left, right) {
                    (Some(l), Some(r)) => l + (r - l) * ((k + 1) as f64 / (j + 1 - i) as f64),
                    (Some(l), None) => l,
                    (None, Some(r)) => r,
                    (None, None) => 0.0,
                };
            }
            i = j;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_duplicates_and_fills_gaps() {
        let pts = [
            (3600 * 3, 30.0),
            (0, 0.0),
            (3600, 10.0),
            (3600, 20.0),
            // 7200 missing
        ];
        let (s, r) = prepare(&pts, &PrepareOptions::default()).unwrap();
        assert_eq!(s.start, 0);
        assert_eq!(s.step, 3600);
        assert_eq!(s.values, vec![0.0, 15.0, 22.5, 30.0]);
        assert_eq!(r.duplicates_merged, 1);
        assert_eq!(r.filled, 1);
    }

    #[test]
    fn refuses_long_gap_nan_and_off_grid() {
        let opts = PrepareOptions {
            max_gap: 1,
            ..PrepareOptions::default()
        };
        let pts = [(0, 1.0), (10, 1.0), (40, 1.0)];
        assert!(matches!(
            prepare(&pts, &opts),
            Err(Error::GapTooLong { missing: 2, .. })
        ));
        assert!(matches!(
            prepare(&[(0, 1.0), (10, f64::NAN)], &opts),
            Err(Error::NotFinite { time: 10 })
        ));
        assert!(matches!(
            prepare(&[(0, 1.0), (10, 1.0), (20, 1.0), (25, 1.0)], &opts),
            Err(Error::OffGrid { time: 25, .. })
        ));
        assert!(matches!(prepare(&[], &opts), Err(Error::Empty)));
    }

    #[test]
    fn slices_by_time() {
        let pts: Vec<(i64, f64)> = (0..10).map(|i| (i * 60, i as f64)).collect();
        let opts = PrepareOptions {
            from: Some(120),
            to: Some(300),
            ..PrepareOptions::default()
        };
        let (s, r) = prepare(&pts, &opts).unwrap();
        assert_eq!(s.values, vec![2.0, 3.0, 4.0, 5.0]);
        assert_eq!(r.sliced_out, 6);
    }

    #[test]
    fn masked_points_replaced_by_previous_period_or_interpolated() {
        let mut s = Series::from_values(0, 1, vec![1.0, 2.0, 1.0, 2.0, 100.0, 200.0, 5.0]);
        s.mask_windows(&[TimeWindow { start: 4, end: 6 }]);
        assert_eq!(s.organic_values(2), vec![1.0, 2.0, 1.0, 2.0, 1.0, 2.0, 5.0]);
        let mut s = Series::from_values(0, 1, vec![1.0, 100.0, 100.0, 4.0]);
        s.mask_windows(&[TimeWindow { start: 1, end: 3 }]);
        assert_eq!(s.organic_values(0), vec![1.0, 2.0, 3.0, 4.0]);
    }
}
