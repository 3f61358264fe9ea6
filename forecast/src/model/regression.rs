//! Linear regression on calendar and event features, fitted by least squares with `linfa`.
//!
//! Features of point `t`: a linear trend; Fourier terms of every season, phased on the absolute
//! grid so that they mean the same hour of day and day of week in training and forecast; event
//! indicators (the event itself, the day before it and the day after it); and lags of whole
//! longest seasons, which the forecast fills recursively beyond the first season.

use super::{FitInput, Fitted, Model, model_err};
use crate::error::{Error, Result};
use crate::series::TimeWindow;
use linfa::Dataset;
use linfa::traits::{Fit as _, Predict as _};
use linfa_linear::{FittedLinearRegression, LinearRegression};
use ndarray::{Array1, Array2};

/// Parameters of [`Regression`].
#[derive(Debug, Clone)]
pub struct RegressionParams {
    /// Seasonal periods in steps.
    pub seasons: Vec<usize>,
    /// Fourier harmonics per season (capped at half the period); same order as `seasons`,
    /// missing entries use the last given or 10.
    pub harmonics: Vec<usize>,
    /// Lags, in multiples of the longest season (e.g. `[1, 2]` for one and two weeks back).
    pub season_lags: Vec<usize>,
    /// Include a linear trend.
    pub trend: bool,
    /// Seconds before/after an event that the lead/lag indicators cover (one day).
    pub event_lead_lag: i64,
}

impl RegressionParams {
    /// Defaults for these seasons: 10 harmonics for the shortest season, 6 for the others
    /// (their multiples of the shorter ones are skipped), lags of 1 and 2 longest seasons, trend
    /// on, event lead/lag of a day.
    pub fn new(seasons: Vec<usize>) -> Self {
        Self {
            seasons,
            harmonics: vec![10, 6],
            season_lags: vec![1, 2],
            trend: true,
            event_lead_lag: 86_400,
        }
    }
}

/// Linear regression on trend, Fourier, event and lag features.
#[derive(Debug, Clone)]
pub struct Regression {
    params: RegressionParams,
    /// Distinct Fourier frequencies as (harmonic, period), reduced so that duplicates between
    /// seasons (harmonic 7 of a week is harmonic 1 of a day) appear once.
    freqs: Vec<(usize, usize)>,
    /// `(sin, cos)` of every frequency at every phase of its period, so that a feature row is
    /// lookups, not trigonometry: `waves[f][g mod p]` for frequency `f = (k, p)`.
    waves: Vec<Vec<(f64, f64)>>,
    lags: Vec<usize>,
}

impl Regression {
    /// The model with these parameters.
    pub fn new(params: RegressionParams) -> Self {
        let mut freqs: Vec<(usize, usize)> = Vec::new();
        let mut seasons = params.seasons.clone();
        seasons.sort_unstable();
        seasons.dedup();
        for (i, &p) in seasons.iter().enumerate() {
            if p < 2 {
                continue;
            }
            let k_max = params
                .harmonics
                .get(i)
                .or(params.harmonics.last())
                .copied()
                .unwrap_or(10)
                .min(p / 2);
            for k in 1..=k_max {
                let g = gcd(k, p);
                let f = (k / g, p / g);
                if !freqs.contains(&f) {
                    freqs.push(f);
                }
            }
        }
        let longest = seasons.last().copied().unwrap_or(1);
        let mut lags: Vec<usize> = params
            .season_lags
            .iter()
            .filter(|m| **m > 0)
            .map(|m| m * longest)
            .collect();
        lags.sort_unstable();
        lags.dedup();
        let waves = freqs
            .iter()
            .map(|&(k, p)| {
                (0..p)
                    .map(|phase| {
                        let a = std::f64::consts::TAU * k as f64 * phase as f64 / p as f64;
                        (a.sin(), a.cos())
                    })
                    .collect()
            })
            .collect();
        Self {
            params,
            freqs,
            waves,
            lags,
        }
    }

    fn max_lag(&self) -> usize {
        self.lags.last().copied().unwrap_or(0)
    }

    /// Feature row for grid point `i` (index into the training slice, may run past it).
    /// `hist` holds the observed values followed by predictions so far.
    fn row(
        &self,
        x: &mut Vec<f64>,
        input: &Layout<'_>,
        i: usize,
        hist: &[f64],
        event_cols: &[bool; 3],
    ) {
        x.clear();
        if self.params.trend {
            x.push(i as f64 / input.n_train as f64);
        }
        let g = input.grid0 + i as i64;
        for wave in &self.waves {
            let (sin, cos) = wave[g.rem_euclid(wave.len() as i64) as usize];
            x.push(sin);
            x.push(cos);
        }
        let t = input.start + i as i64 * input.step;
        let d = self.params.event_lead_lag;
        let on = |t: i64| input.events.iter().any(|w| w.contains(t));
        if event_cols[0] {
            x.push(f64::from(u8::from(on(t))));
        }
        if event_cols[1] {
            // The event starts within the next day: the run-up.
            x.push(f64::from(u8::from(!on(t) && on(t + d))));
        }
        if event_cols[2] {
            // The event ended within the last day: the aftermath.
            x.push(f64::from(u8::from(!on(t) && on(t - d))));
        }
        for &l in &self.lags {
            x.push(hist[i - l]);
        }
    }
}

struct Layout<'a> {
    start: i64,
    step: i64,
    grid0: i64,
    n_train: usize,
    events: &'a [TimeWindow],
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

impl Model for Regression {
    fn name(&self) -> String {
        "regression".into()
    }

    fn min_train_len(&self) -> usize {
        let longest = self.params.seasons.iter().copied().max().unwrap_or(1);
        self.max_lag() + 2 * longest.max(self.freqs.len() * 2 + 8)
    }

    fn fit(&self, input: &FitInput<'_>) -> Result<Box<dyn Fitted>> {
        let n = input.y.len();
        if n < self.min_train_len() {
            return Err(Error::TooShort {
                have: n,
                need: self.min_train_len(),
                what: self.name(),
            });
        }
        let layout = Layout {
            start: input.start,
            step: input.step,
            grid0: input.start.div_euclid(input.step.max(1)),
            n_train: n,
            events: input.events,
        };
        let d = self.params.event_lead_lag;
        let t_of = |i: usize| input.start + i as i64 * input.step;
        let on = |t: i64| input.events.iter().any(|w| w.contains(t));
        // An indicator column enters only if it is not constant over the rows fitted on:
        // otherwise least squares has nothing to estimate it from.
        let rows = self.max_lag()..n;
        let mut event_cols = [false; 3];
        if !input.events.is_empty() {
            let count = |f: &dyn Fn(i64) -> bool| rows.clone().filter(|&i| f(t_of(i))).count();
            let c = [
                count(&|t| on(t)),
                count(&|t| !on(t) && on(t + d)),
                count(&|t| !on(t) && on(t - d)),
            ];
            for (col, c) in event_cols.iter_mut().zip(c) {
                *col = c > 0 && c < rows.len();
            }
        }
        let mut x = Vec::new();
        self.row(&mut x, &layout, rows.start, input.y, &event_cols);
        let width = x.len();
        let mut data = Vec::with_capacity(rows.len() * width);
        for i in rows.clone() {
            self.row(&mut x, &layout, i, input.y, &event_cols);
            data.extend_from_slice(&x);
        }
        let xm = Array2::from_shape_vec((rows.len(), width), data)
            .map_err(|e| model_err("regression", e))?;
        let ym = Array1::from_iter(input.y[rows].iter().copied());
        let ds = Dataset::new(xm, ym);
        let fitted = LinearRegression::new()
            .fit(&ds)
            .map_err(|e| model_err("regression", e))?;
        Ok(Box::new(FittedRegression {
            model: self.clone(),
            fitted,
            y: input.y.to_vec(),
            start: input.start,
            step: input.step,
            events: input.events.to_vec(),
            event_cols,
            width,
        }))
    }
}

struct FittedRegression {
    model: Regression,
    fitted: FittedLinearRegression<f64>,
    y: Vec<f64>,
    start: i64,
    step: i64,
    events: Vec<TimeWindow>,
    event_cols: [bool; 3],
    width: usize,
}

impl Fitted for FittedRegression {
    fn predict(&self, horizon: usize) -> Result<Vec<f64>> {
        let n = self.y.len();
        let layout = Layout {
            start: self.start,
            step: self.step,
            grid0: self.start.div_euclid(self.step.max(1)),
            n_train: n,
            events: &self.events,
        };
        let mut hist = self.y.clone();
        let mut x = Vec::with_capacity(self.width);
        // Predict one longest-lag block at a time: within a block every lag is known.
        let block = self.model.lags.first().copied().unwrap_or(horizon).max(1);
        let mut done = 0;
        while done < horizon {
            let m = block.min(horizon - done);
            let mut data = Vec::with_capacity(m * self.width);
            for i in n + done..n + done + m {
                self.model.row(&mut x, &layout, i, &hist, &self.event_cols);
                data.extend_from_slice(&x);
            }
            let xm = Array2::from_shape_vec((m, self.width), data)
                .map_err(|e| model_err("regression", e))?;
            let p = self.fitted.predict(&xm);
            for v in p.iter() {
                if !v.is_finite() {
                    return Err(model_err("regression", "non-finite forecast"));
                }
                hist.push(*v);
            }
            done += m;
        }
        Ok(hist[n..].to_vec())
    }
}
