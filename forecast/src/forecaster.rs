//! What Crest does at a forecast origin: choose a model, fit it, calibrate its intervals.
//!
//! Everything uses only the history handed in (data before the cut-off). Inner rolling-origin
//! windows of `horizon` steps tile the end of that history; every candidate is fitted before
//! each inner origin and scored by MASE; the best mean wins. The winner's residuals on those
//! same windows calibrate its intervals ([`crate::interval`]); then it is refitted on the last
//! `train_len` points and predicts the horizon.

use crate::error::{Error, Result};
use crate::interval::{Calibration, Forecast, ResidualPath};
use crate::metrics;
use crate::model::{FitInput, Model, ModelChoice, candidates};
use crate::series::{Series, TimeWindow};
use std::sync::Arc;

/// Parameters of a [`Forecaster`].
#[derive(Debug, Clone)]
pub struct ForecasterConfig {
    /// Seasonal periods in steps, e.g. `[24, 168]` for hourly data.
    pub seasons: Vec<usize>,
    /// Steps to forecast.
    pub horizon: usize,
    /// Points each fit sees (the most recent ones).
    pub train_len: usize,
    /// Inner backtest windows used for model choice and interval calibration.
    pub inner_windows: usize,
    /// Neighbouring phases (hours) on each side pooled with a phase's residuals when
    /// calibrating intervals.
    pub calibration_spread: usize,
}

impl ForecasterConfig {
    /// The benchmark protocol for hourly data: seasons 24 and 168, a week ahead, eight weeks of
    /// training, eight inner windows.
    pub fn hourly() -> Self {
        Self {
            seasons: vec![24, 168],
            horizon: 168,
            train_len: 1344,
            inner_windows: 8,
            calibration_spread: 1,
        }
    }

    /// A configuration for `n` hourly points of history and a forecast `horizon` (steps), as a
    /// plan needs: the weekly season when at least two weeks remain for training before an
    /// inner window, else the daily one alone; inner windows that cover about three days (at
    /// least eight); up to eight weeks of training. Errors when not even two days plus one window fit.
    pub fn for_history(n: usize, horizon: usize) -> Result<Self> {
        let horizon = horizon.max(1);
        let seasons = if n >= 2 * 168 + horizon {
            vec![24, 168]
        } else {
            vec![24]
        };
        let longest = seasons.iter().copied().max().unwrap_or(24);
        let Some(room) = n.checked_sub(2 * longest).filter(|r| *r >= horizon) else {
            return Err(Error::TooShort {
                have: n,
                need: 2 * longest + horizon,
                what: format!(
                    "hourly history for a {horizon}-step forecast: two days of training plus one inner window"
                ),
            });
        };
        let cfg = Self {
            seasons,
            horizon,
            train_len: (n - horizon).clamp(2 * longest, 1344),
            // Enough windows to see every hour of the day about three times, at least eight,
            // and no more than the history holds.
            inner_windows: (72usize.div_ceil(horizon).max(8))
                .min(room / horizon)
                .clamp(1, 72),
            calibration_spread: 1,
        };
        cfg.check()?;
        Ok(cfg)
    }

    /// Checks the parameters once; [`Forecaster::new`] calls it.
    pub fn check(&self) -> Result<()> {
        if self.seasons.is_empty() || self.seasons.contains(&0) {
            return Err(Error::InvalidParameter {
                name: "seasons",
                reason: format!("{:?}: need at least one period, all positive", self.seasons),
            });
        }
        if self.horizon == 0 {
            return Err(Error::InvalidParameter {
                name: "horizon",
                reason: "must be positive".into(),
            });
        }
        if self.inner_windows == 0 {
            return Err(Error::InvalidParameter {
                name: "inner_windows",
                reason: "must be positive: intervals are calibrated on them".into(),
            });
        }
        let longest = self.longest_season();
        if self.train_len < 2 * longest {
            return Err(Error::InvalidParameter {
                name: "train_len",
                reason: format!(
                    "{} is shorter than two longest seasons ({})",
                    self.train_len,
                    2 * longest
                ),
            });
        }
        Ok(())
    }

    /// Longest seasonal period.
    pub fn longest_season(&self) -> usize {
        self.seasons.iter().copied().max().unwrap_or(1)
    }

    /// Shortest seasonal period: the lag of the MASE scale and the width of interval buckets.
    pub fn shortest_season(&self) -> usize {
        self.seasons.iter().copied().min().unwrap_or(1)
    }
}

/// Chooses, fits and calibrates a model on a history.
#[derive(Debug, Clone)]
pub struct Forecaster {
    cfg: ForecasterConfig,
    choice: ModelChoice,
}

/// Inner-backtest score of one candidate.
#[derive(Debug, Clone, PartialEq)]
pub struct CandidateScore {
    /// Model name.
    pub model: String,
    /// Mean MASE over the inner windows (`inf` when it failed to fit or dropped out of the
    /// race).
    pub mean_mase: f64,
    /// Inner windows it was scored on.
    pub windows: usize,
}

/// Inner windows every candidate of `auto` is scored on before the race drops any.
pub const RACE_WINDOWS: usize = 3;
/// How much worse than the leader's mean MASE (a fraction) a candidate may be after
/// [`RACE_WINDOWS`] and stay in the race.
pub const RACE_MARGIN: f64 = 0.15;

/// One candidate's progress through the inner windows.
#[derive(Default)]
struct Run {
    paths: Vec<ResidualPath>,
    mases: Vec<f64>,
    failed: Option<Error>,
    dropped: bool,
}

impl Run {
    /// Mean of the finite MASEs; 0 when there are none (a constant history: any working
    /// model ties).
    fn mean_mase(&self) -> f64 {
        let finite: Vec<f64> = self
            .mases
            .iter()
            .copied()
            .filter(|v| v.is_finite())
            .collect();
        if finite.is_empty() {
            0.0
        } else {
            finite.iter().sum::<f64>() / finite.len() as f64
        }
    }
}

/// A forecast plus how the model was chosen.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The forecast of the chosen model, with its calibration.
    pub forecast: Forecast,
    /// Scores of all candidates, in candidate order.
    pub scores: Vec<CandidateScore>,
}

struct InnerWindow {
    train: std::ops::Range<usize>,
    origin: usize,
}

impl Forecaster {
    /// A forecaster for `choice` (one model, or the automatic choice).
    pub fn new(cfg: ForecasterConfig, choice: ModelChoice) -> Result<Self> {
        cfg.check()?;
        Ok(Self { cfg, choice })
    }

    /// The configuration.
    pub fn config(&self) -> &ForecasterConfig {
        &self.cfg
    }

    /// Forecasts `horizon` steps after the end of `history`, using nothing else but `events`
    /// (known calendar events, which may lie in the future).
    pub fn forecast(&self, history: &Series, events: &[TimeWindow]) -> Result<Outcome> {
        let cfg = &self.cfg;
        let models: Vec<Arc<dyn Model>> = match &self.choice {
            ModelChoice::Auto => candidates(&cfg.seasons),
            ModelChoice::Fixed(m) => vec![Arc::clone(m)],
        };
        let organic = history.organic_values(cfg.longest_season());
        let n = organic.len();
        let min_train = models
            .iter()
            .map(|m| m.min_train_len())
            .min()
            .unwrap_or(1)
            .max(2 * cfg.longest_season())
            .max(cfg.shortest_season() + 1);
        let inner: Vec<InnerWindow> = (1..=cfg.inner_windows)
            .filter_map(|k| {
                let origin = n.checked_sub(k * cfg.horizon)?;
                let start = origin.saturating_sub(cfg.train_len);
                (origin - start >= min_train).then_some(InnerWindow {
                    train: start..origin,
                    origin,
                })
            })
            .collect();
        if inner.is_empty() {
            return Err(Error::TooShort {
                have: n,
                need: min_train + cfg.horizon,
                what: format!(
                    "history before a forecast origin: at least one inner window of {} after {} training points",
                    cfg.horizon, min_train
                ),
            });
        }
        let fit_on = |m: &dyn Model, range: std::ops::Range<usize>| {
            m.fit(&FitInput {
                start: history.time_at(range.start),
                step: history.step,
                y: &organic[range],
                events,
            })
        };
        // Candidates race through the inner windows, most recent first. After the first
        // `RACE_WINDOWS`, a candidate whose mean MASE is worse than the leader's by more than
        // `RACE_MARGIN` drops out: it would not be chosen, and its fits are most of the cost.
        let auto = matches!(self.choice, ModelChoice::Auto);
        let mut runs: Vec<Run> = models.iter().map(|_| Run::default()).collect();
        for (wi, w) in inner.iter().enumerate() {
            if auto && wi == RACE_WINDOWS {
                let leader = runs
                    .iter()
                    .filter(|r| r.failed.is_none() && !r.mases.is_empty())
                    .map(Run::mean_mase)
                    .fold(f64::INFINITY, f64::min);
                if leader.is_finite() {
                    for r in &mut runs {
                        if r.failed.is_none() && r.mean_mase() > leader * (1.0 + RACE_MARGIN) {
                            r.dropped = true;
                        }
                    }
                }
            }
            for (m, run) in models.iter().zip(&mut runs) {
                if run.failed.is_some() || run.dropped || w.train.len() < m.min_train_len() {
                    continue;
                }
                let pred = fit_on(m.as_ref(), w.train.clone()).and_then(|f| f.predict(cfg.horizon));
                let pred = match pred {
                    Ok(p) => p,
                    Err(e) => {
                        if !auto {
                            return Err(e);
                        }
                        run.failed = Some(e);
                        continue;
                    }
                };
                let actual: Vec<f64> = (w.origin..w.origin + cfg.horizon)
                    .map(|i| {
                        if history.masked[i] {
                            f64::NAN
                        } else {
                            history.values[i]
                        }
                    })
                    .collect();
                if let Some(scale) =
                    metrics::naive_scale(&organic[w.train.clone()], cfg.shortest_season())
                {
                    run.mases.push(metrics::mase(&actual, &pred, scale));
                }
                run.paths.push(ResidualPath {
                    grid_start: history.time_at(w.origin).div_euclid(history.step.max(1)),
                    residuals: actual.iter().zip(&pred).map(|(a, p)| a - p).collect(),
                });
            }
        }
        let scores: Vec<CandidateScore> = models
            .iter()
            .zip(&runs)
            .map(|(m, r)| CandidateScore {
                model: m.name(),
                mean_mase: if r.failed.is_some() || r.dropped || r.paths.is_empty() {
                    f64::INFINITY
                } else {
                    r.mean_mase()
                },
                windows: r.paths.len(),
            })
            .collect();
        let residuals: Vec<Vec<ResidualPath>> = runs.into_iter().map(|r| r.paths).collect();
        // Best mean inner MASE; ties go to the earlier (simpler) candidate.
        let mut best: Option<usize> = None;
        for (i, s) in scores.iter().enumerate() {
            if s.mean_mase.is_finite() && best.is_none_or(|b| s.mean_mase < scores[b].mean_mase) {
                best = Some(i);
            }
        }
        let Some(best) = best else {
            return Err(Error::TooShort {
                have: n,
                need: models.iter().map(|m| m.min_train_len()).max().unwrap_or(0) + cfg.horizon,
                what: "fitting any candidate model before the forecast origin".into(),
            });
        };
        let model = &models[best];
        let train = n.saturating_sub(cfg.train_len)..n;
        let point = fit_on(model.as_ref(), train)?.predict(cfg.horizon)?;
        let calibration = Calibration::new(
            &residuals[best],
            cfg.shortest_season(),
            cfg.calibration_spread,
        )?;
        Ok(Outcome {
            forecast: Forecast {
                model: model.name(),
                start: history.time_at(n),
                step: history.step,
                point,
                calibration,
            },
            scores,
        })
    }
}
