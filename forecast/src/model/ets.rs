//! Exponential smoothing of a deseasonalised series, fitted by a grid search: the trend
//! forecaster of [`super::Mstl`]'s fast variant.
//!
//! `augurs`' `AutoETS` fits six ETS models by Nelder–Mead and picks one by AICc; on 1,344
//! hourly points that is most of an MSTL fit's time. On a series that MSTL has already
//! deseasonalised, two additive-error models are what it picks in practice: simple exponential
//! smoothing (ETS(A,N,N)) and the damped additive trend (ETS(A,Ad,N)). Here both are fitted by a
//! coarse grid over their smoothing parameters (one pass over the data per grid point, no
//! optimiser) and the one with the lower AICc wins.

use augurs_core::Forecast;
use augurs_mstl::{FittedTrendModel, TrendModel};
use std::borrow::Cow;

type DynError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// `alpha` of simple exponential smoothing.
const ALPHAS: [f64; 8] = [0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 0.99];
/// `alpha` of the damped trend, coarser: the trend model is the rarer choice.
const TREND_ALPHAS: [f64; 5] = [0.1, 0.3, 0.5, 0.7, 0.9];
/// `beta` as a fraction of `alpha` (ETS requires `beta <= alpha`).
const BETA_FRACTIONS: [f64; 2] = [0.01, 0.1];
const PHIS: [f64; 2] = [0.9, 0.98];

/// ETS(A,N,N) or ETS(A,Ad,N), chosen by AICc, parameters from a grid.
#[derive(Debug, Clone, Copy, Default)]
pub struct GridEts;

/// Smoothing parameters and the states after the last point.
#[derive(Debug, Clone, PartialEq)]
struct Run {
    alpha: f64,
    beta: f64,
    phi: f64,
    damped: bool,
    sse: f64,
    level: f64,
    slope: f64,
}

/// One pass of the recursions; `fitted` receives the one-step predictions when given.
fn run(
    y: &[f64],
    alpha: f64,
    beta: f64,
    phi: f64,
    damped: bool,
    mut fitted: Option<&mut Vec<f64>>,
) -> Run {
    let mut level = y[0];
    let mut slope = if damped && y.len() > 1 {
        y[1] - y[0]
    } else {
        0.0
    };
    let mut sse = 0.0;
    for &v in y {
        let pred = if damped { level + phi * slope } else { level };
        if let Some(f) = fitted.as_deref_mut() {
            f.push(pred);
        }
        let e = v - pred;
        sse += e * e;
        if damped {
            level = pred + alpha * e;
            slope = phi * slope + beta * e;
        } else {
            level += alpha * e;
        }
    }
    Run {
        alpha,
        beta,
        phi,
        damped,
        sse,
        level,
        slope,
    }
}

/// AICc of a Gaussian additive-error model with `k` estimated parameters.
fn aicc(sse: f64, n: usize, k: usize) -> f64 {
    let n_f = n as f64;
    let k_f = k as f64;
    let base = n_f * (sse.max(f64::MIN_POSITIVE) / n_f).ln() + 2.0 * k_f;
    if n > k + 1 {
        base + 2.0 * k_f * (k_f + 1.0) / (n_f - k_f - 1.0)
    } else {
        f64::INFINITY
    }
}

impl TrendModel for GridEts {
    fn name(&self) -> Cow<'_, str> {
        "ets_grid".into()
    }

    fn fit(&self, y: &[f64]) -> Result<Box<dyn FittedTrendModel + Sync + Send>, DynError> {
        if y.len() < 3 || y.iter().any(|v| !v.is_finite()) {
            return Err("ets_grid needs at least 3 finite points".into());
        }
        let n = y.len();
        let mut best: Option<(f64, Run)> = None;
        let mut consider = |r: Run, k: usize| {
            let score = aicc(r.sse, n, k);
            if score.is_finite() && best.as_ref().is_none_or(|(b, _)| score < *b) {
                best = Some((score, r));
            }
        };
        for &alpha in &ALPHAS {
            // alpha and the initial level.
            consider(run(y, alpha, 0.0, 1.0, false, None), 2);
        }
        for &alpha in &TREND_ALPHAS {
            for &bf in &BETA_FRACTIONS {
                for &phi in &PHIS {
                    // alpha, beta, phi and the initial level and slope.
                    consider(run(y, alpha, alpha * bf, phi, true, None), 5);
                }
            }
        }
        let Some((_, best)) = best else {
            return Err("ets_grid: no finite fit".into());
        };
        let mut fitted = Vec::with_capacity(n);
        run(
            y,
            best.alpha,
            best.beta,
            best.phi,
            best.damped,
            Some(&mut fitted),
        );
        Ok(Box::new(FittedGridEts { run: best, fitted }))
    }
}

#[derive(Debug)]
struct FittedGridEts {
    run: Run,
    fitted: Vec<f64>,
}

impl FittedTrendModel for FittedGridEts {
    fn predict_inplace(
        &self,
        horizon: usize,
        _level: Option<f64>,
        forecast: &mut Forecast,
    ) -> Result<(), DynError> {
        // Intervals are not this model's business: Crest calibrates them from backtests.
        let r = &self.run;
        let mut damp = 0.0;
        let mut power = 1.0;
        forecast.point = (0..horizon)
            .map(|_| {
                if r.damped {
                    power *= r.phi;
                    damp += power;
                    r.level + damp * r.slope
                } else {
                    r.level
                }
            })
            .collect();
        forecast.intervals = None;
        Ok(())
    }

    fn predict_in_sample_inplace(
        &self,
        _level: Option<f64>,
        forecast: &mut Forecast,
    ) -> Result<(), DynError> {
        forecast.point.clone_from(&self.fitted);
        forecast.intervals = None;
        Ok(())
    }

    fn training_data_size(&self) -> Option<usize> {
        Some(self.fitted.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_level_series_is_forecast_flat_at_its_level() {
        let y: Vec<f64> = (0..200)
            .map(|i| 50.0 + if i % 2 == 0 { 1.0 } else { -1.0 })
            .collect();
        let f = GridEts.fit(&y).unwrap().predict(10, None).unwrap();
        for v in f.point {
            assert!((v - 50.0).abs() < 1.5, "{v}");
        }
    }

    #[test]
    fn a_trend_is_followed_and_damped() {
        let y: Vec<f64> = (0..300).map(|i| 10.0 + 2.0 * i as f64).collect();
        let f = GridEts.fit(&y).unwrap().predict(24, None).unwrap();
        // The next step continues the line; later steps rise ever more slowly.
        assert!((f.point[0] - 610.0).abs() < 2.0, "{}", f.point[0]);
        assert!(f.point[23] > f.point[0]);
        let d_first = f.point[1] - f.point[0];
        let d_last = f.point[23] - f.point[22];
        assert!(d_last <= d_first + 1e-9, "{d_first} {d_last}");
    }

    #[test]
    fn too_short_or_non_finite_input_is_an_error() {
        assert!(GridEts.fit(&[1.0, 2.0]).is_err());
        assert!(GridEts.fit(&[1.0, f64::NAN, 2.0, 3.0]).is_err());
    }

    #[test]
    fn in_sample_predictions_cover_the_training_data() {
        let y: Vec<f64> = (0..50).map(f64::from).collect();
        let m = GridEts.fit(&y).unwrap();
        assert_eq!(m.training_data_size(), Some(50));
        assert_eq!(m.predict_in_sample(None).unwrap().point.len(), 50);
    }
}
