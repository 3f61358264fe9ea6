//! The rolling-origin backtest of the benchmark protocol.
//!
//! `W` non-overlapping windows of `H` steps tile the end of the series (cut-off
//! `k = n − (W − k)·H`). At every cut-off the [`Forecaster`] sees only the points before it
//! (fits use the last `train_len`); the window is scored by MASE (scale: in-sample MAE of the
//! shortest-season naive forecast on the training window), the coverage of the 80 % and 95 %
//! intervals, MSIS at 95 %, and the daily peaks; the same window is also forecast by the naive
//! forecast of the longest season, for the relative MASE.

use crate::error::{Error, Result};
use crate::forecaster::{Forecaster, ForecasterConfig};
use crate::metrics::{self, PeakStats};
use crate::model::{FitInput, Model, ModelChoice, SeasonalNaive};
use crate::series::{Series, TimeWindow};
use std::time::Instant;

/// Parameters of a backtest.
#[derive(Debug, Clone)]
pub struct BacktestConfig {
    /// Forecaster parameters (seasons, horizon = window length, training length, inner windows).
    pub forecaster: ForecasterConfig,
    /// Number of test windows `W`.
    pub windows: usize,
    /// Points per day, for the daily-peak metrics (24 for hourly data).
    pub day_len: usize,
}

impl BacktestConfig {
    /// The protocol in `shared/data/README.md`: hourly, H = 168, W = 8, 1,344 training points.
    pub fn hourly() -> Self {
        Self {
            forecaster: ForecasterConfig::hourly(),
            windows: 8,
            day_len: 24,
        }
    }
}

/// Scores of one test window.
#[derive(Debug, Clone)]
pub struct WindowScore {
    /// Index of the first test point.
    pub cutoff: usize,
    /// Unix seconds of the first test point.
    pub cutoff_time: i64,
    /// Model that produced the forecast.
    pub model: String,
    /// MASE of the model.
    pub mase: f64,
    /// MASE of the longest-season naive forecast.
    pub snaive_mase: f64,
    /// Coverage of the 80 % interval.
    pub cov80: f64,
    /// Coverage of the 95 % interval.
    pub cov95: f64,
    /// MSIS of the 95 % interval.
    pub msis95: f64,
    /// Daily-peak counts.
    pub peaks: PeakStats,
    /// Wall-clock seconds to choose, calibrate and fit at this origin.
    pub fit_seconds: f64,
}

/// One output row: the summary of one model run on one series (the CLI's columns).
#[derive(Debug, Clone, serde::Serialize)]
pub struct BacktestRow {
    /// Series name.
    pub series: String,
    /// Model name; `auto:<name>` for the automatic choice, with `+` joining the models chosen
    /// when different windows chose differently (most chosen first).
    pub model: String,
    /// Test windows.
    pub windows: usize,
    /// Mean MASE over windows.
    pub mase: f64,
    /// Geometric mean over windows of MASE / MASE of the longest-season naive forecast.
    pub rel_mase: f64,
    /// Mean coverage of the 80 % interval.
    pub cov80: f64,
    /// Mean coverage of the 95 % interval.
    pub cov95: f64,
    /// Mean MSIS of the 95 % interval.
    pub msis95: f64,
    /// Mean absolute percentage error of the daily peak (a fraction).
    pub peak_ape: f64,
    /// Fraction of test days whose actual peak exceeded that day's highest 95 % upper bound.
    pub peak_over_band: f64,
    /// Mean wall-clock seconds per window to choose, calibrate and fit.
    pub fit_seconds: f64,
}

/// A backtest's summary row and its per-window scores.
#[derive(Debug, Clone)]
pub struct BacktestReport {
    /// The summary.
    pub row: BacktestRow,
    /// Per-window detail.
    pub windows: Vec<WindowScore>,
}

/// Points a series needs for a backtest with `cfg`: the test windows, one training window and
/// one inner calibration window before the first cut-off.
pub fn required_len(cfg: &BacktestConfig) -> usize {
    let f = &cfg.forecaster;
    cfg.windows * f.horizon + f.train_len.max(2 * f.longest_season() + 1) + f.horizon
}

/// Runs the backtest of `choice` on `series`. `events` are known calendar events (holidays,
/// milestones) that event-aware models may use; `progress` is called after each window with
/// its index and score.
pub fn backtest(
    series: &Series,
    name: &str,
    cfg: &BacktestConfig,
    choice: &ModelChoice,
    events: &[TimeWindow],
    progress: &mut dyn FnMut(usize, &WindowScore),
) -> Result<BacktestReport> {
    if cfg.windows == 0 {
        return Err(Error::InvalidParameter {
            name: "windows",
            reason: "must be positive".into(),
        });
    }
    let forecaster = Forecaster::new(cfg.forecaster.clone(), choice.clone())?;
    let f = &cfg.forecaster;
    let n = series.len();
    let need = required_len(cfg);
    if n < need {
        return Err(Error::TooShort {
            have: n,
            need,
            what: format!(
                "{} test windows of {}, {} training points and one calibration window",
                cfg.windows, f.horizon, f.train_len
            ),
        });
    }
    let snaive = SeasonalNaive::new(f.longest_season());
    let mut scores = Vec::with_capacity(cfg.windows);
    for k in 0..cfg.windows {
        let cutoff = n - (cfg.windows - k) * f.horizon;
        let history = series.slice(0..cutoff);
        let t0 = Instant::now();
        let outcome = forecaster.forecast(&history, events)?;
        let fit_seconds = t0.elapsed().as_secs_f64();
        let fc = &outcome.forecast;
        let actual: Vec<f64> = (cutoff..cutoff + f.horizon)
            .map(|i| {
                if series.masked[i] {
                    f64::NAN
                } else {
                    series.values[i]
                }
            })
            .collect();
        let organic = history.organic_values(f.longest_season());
        let train = cutoff.saturating_sub(f.train_len)..cutoff;
        let scale = metrics::naive_scale(&organic[train.clone()], f.shortest_season()).ok_or(
            Error::ZeroScale {
                time: series.time_at(cutoff),
            },
        )?;
        let i80 = fc.interval(0.8);
        let i95 = fc.interval(0.95);
        let naive_pred = snaive
            .fit(&FitInput {
                start: series.time_at(train.start),
                step: series.step,
                y: &organic[train],
                events,
            })?
            .predict(f.horizon)?;
        let score = WindowScore {
            cutoff,
            cutoff_time: series.time_at(cutoff),
            model: fc.model.clone(),
            mase: metrics::mase(&actual, &fc.point, scale),
            snaive_mase: metrics::mase(&actual, &naive_pred, scale),
            cov80: metrics::coverage(&actual, &i80.lower, &i80.upper),
            cov95: metrics::coverage(&actual, &i95.lower, &i95.upper),
            msis95: metrics::msis(&actual, &i95.lower, &i95.upper, 0.05, scale),
            peaks: metrics::daily_peaks(&actual, &fc.point, &i95.upper, cfg.day_len),
            fit_seconds,
        };
        progress(k, &score);
        scores.push(score);
    }
    Ok(BacktestReport {
        row: summarise(name, choice, &scores),
        windows: scores,
    })
}

fn mean(xs: impl Iterator<Item = f64>) -> f64 {
    let (s, n) = xs
        .filter(|x| x.is_finite())
        .fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    if n == 0 { f64::NAN } else { s / n as f64 }
}

fn summarise(name: &str, choice: &ModelChoice, scores: &[WindowScore]) -> BacktestRow {
    let model = match choice {
        ModelChoice::Fixed(m) => m.name(),
        ModelChoice::Auto => {
            let mut counts: Vec<(String, usize)> = Vec::new();
            for s in scores {
                match counts.iter_mut().find(|(m, _)| *m == s.model) {
                    Some((_, c)) => *c += 1,
                    None => counts.push((s.model.clone(), 1)),
                }
            }
            // Most chosen first; stable, so ties keep first-chosen order.
            counts.sort_by_key(|c| std::cmp::Reverse(c.1));
            let names: Vec<String> = counts.into_iter().map(|(m, _)| m).collect();
            format!("auto:{}", names.join("+"))
        }
    };
    let rel: Vec<f64> = scores.iter().map(|s| s.mase / s.snaive_mase).collect();
    let mut peaks = PeakStats::default();
    for s in scores {
        peaks.add(&s.peaks);
    }
    BacktestRow {
        series: name.to_string(),
        model,
        windows: scores.len(),
        mase: mean(scores.iter().map(|s| s.mase)),
        rel_mase: metrics::geometric_mean(&rel),
        cov80: mean(scores.iter().map(|s| s.cov80)),
        cov95: mean(scores.iter().map(|s| s.cov95)),
        msis95: mean(scores.iter().map(|s| s.msis95)),
        peak_ape: peaks.peak_ape(),
        peak_over_band: peaks.over_band_rate(),
        fit_seconds: mean(scores.iter().map(|s| s.fit_seconds)),
    }
}
