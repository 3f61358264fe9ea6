//! Seasonal naive: tomorrow is like the same hour one season ago.

use super::{FitInput, Fitted, Model};
use crate::error::{Error, Result};

/// Repeats the last full season: `y[n + h] = y[n + h - period * k]` with the smallest `k` that
/// lands inside the training data.
#[derive(Debug, Clone)]
pub struct SeasonalNaive {
    period: usize,
}

impl SeasonalNaive {
    /// Seasonal naive with this period in steps (at least 1).
    pub fn new(period: usize) -> Self {
        Self {
            period: period.max(1),
        }
    }
}

impl Model for SeasonalNaive {
    fn name(&self) -> String {
        format!("snaive{}", self.period)
    }

    fn min_train_len(&self) -> usize {
        self.period
    }

    fn fit(&self, input: &FitInput<'_>) -> Result<Box<dyn Fitted>> {
        if input.y.len() < self.period {
            return Err(Error::TooShort {
                have: input.y.len(),
                need: self.period,
                what: self.name(),
            });
        }
        Ok(Box::new(FittedSeasonalNaive {
            last: input.y[input.y.len() - self.period..].to_vec(),
        }))
    }
}

struct FittedSeasonalNaive {
    last: Vec<f64>,
}

impl Fitted for FittedSeasonalNaive {
    fn predict(&self, horizon: usize) -> Result<Vec<f64>> {
        let p = self.last.len();
        Ok((0..horizon).map(|h| self.last[h % p]).collect())
    }
}
