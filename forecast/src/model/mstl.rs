//! MSTL decomposition with an AutoETS trend, from the `augurs` crates.

use super::{FitInput, Fitted, Model, model_err};
use crate::error::{Error, Result};
use augurs_core::{Fit, Predict};
use augurs_ets::AutoETS;
use augurs_mstl::MSTLModel;

/// MSTL over the seasons, the deseasonalised remainder forecast by a non-seasonal AutoETS
/// (what statsforecast's `MSTL(trend_forecaster=AutoETS())` and augurs' `MSTL.ets` do).
#[derive(Debug, Clone)]
pub struct Mstl {
    periods: Vec<usize>,
}

impl Mstl {
    /// MSTL for these seasonal periods (in steps).
    pub fn new(mut periods: Vec<usize>) -> Self {
        periods.retain(|p| *p > 1);
        periods.sort_unstable();
        periods.dedup();
        Self { periods }
    }
}

impl Model for Mstl {
    fn name(&self) -> String {
        "mstl".into()
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
        let trend = AutoETS::non_seasonal().into_trend_model();
        let model = MSTLModel::new(self.periods.clone(), trend);
        let fitted = model.fit(input.y).map_err(|e| model_err("mstl", e))?;
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
