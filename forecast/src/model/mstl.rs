//! MSTL decomposition from the `augurs` crates, with an AutoETS trend (`mstl`) or the
//! grid-fitted ETS of [`super::ets`] (`mstl_fast`).

use super::ets::GridEts;
use super::{FitInput, Fitted, Model, model_err};
use crate::error::{Error, Result};
use augurs_core::{Fit, Predict};
use augurs_ets::AutoETS;
use augurs_mstl::{MSTLModel, TrendModel};

/// How [`Mstl`] forecasts the deseasonalised series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MstlTrend {
    /// `augurs`' non-seasonal AutoETS: six models fitted by Nelder–Mead, chosen by AICc (what
    /// statsforecast's `MSTL(trend_forecaster=AutoETS())` and augurs' `MSTL.ets` do).
    AutoEts,
    /// [`GridEts`]: ETS(A,N,N) or ETS(A,Ad,N) from a parameter grid, an order of magnitude
    /// faster.
    GridEts,
}

/// MSTL over the seasons, the deseasonalised remainder forecast by a non-seasonal ETS.
#[derive(Debug, Clone)]
pub struct Mstl {
    periods: Vec<usize>,
    trend: MstlTrend,
}

impl Mstl {
    /// MSTL for these seasonal periods (in steps), with the AutoETS trend.
    pub fn new(periods: Vec<usize>) -> Self {
        Self::with_trend(periods, MstlTrend::AutoEts)
    }

    /// MSTL for these seasonal periods (in steps), with the given trend forecaster.
    pub fn with_trend(mut periods: Vec<usize>, trend: MstlTrend) -> Self {
        periods.retain(|p| *p > 1);
        periods.sort_unstable();
        periods.dedup();
        Self { periods, trend }
    }
}

impl Model for Mstl {
    fn name(&self) -> String {
        match self.trend {
            MstlTrend::AutoEts => "mstl".into(),
            MstlTrend::GridEts => "mstl_fast".into(),
        }
    }

    fn min_train_len(&self) -> usize {
        // STL needs two full cycles of every period.
        2 * self.periods.iter().copied().max().unwrap_or(1) + 1
    }

    fn fit(&self, input: &FitInput<'_>) -> Result<Box<dyn Fitted>> {
        if input.y.len() < self.min_train_len() {
            return Err(Error::TooShort {
                have: input.y.len(),
                need: self.min_train_len(),
                what: self.name(),
            });
        }
        let trend: Box<dyn TrendModel + Send + Sync> = match self.trend {
            MstlTrend::AutoEts => Box::new(AutoETS::non_seasonal().into_trend_model()),
            MstlTrend::GridEts => Box::new(GridEts),
        };
        let model = MSTLModel::new(self.periods.clone(), trend);
        let fitted = model.fit(input.y).map_err(|e| model_err(&self.name(), e))?;
        Ok(Box::new(FittedMstl { fitted }))
    }
}

struct FittedMstl {
    fitted: augurs_mstl::FittedMSTLModel,
}

impl Fitted for FittedMstl {
    fn predict(&self, horizon: usize) -> Result<Vec<f64>> {
        let f = self
            .fitted
            .predict(horizon, None)
            .map_err(|e| model_err("mstl", e))?;
        if f.point.len() != horizon || f.point.iter().any(|v| !v.is_finite()) {
            return Err(model_err("mstl", "non-finite or short forecast"));
        }
        Ok(f.point)
    }
}
