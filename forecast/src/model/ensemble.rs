//! Equal-weight mean of several models' forecasts.

use super::{FitInput, Fitted, Model};
use crate::error::Result;
use std::sync::Arc;

/// The mean of its members' point forecasts; combinations of a seasonal naive and a
/// decomposition model are often better than either (the M4 lesson).
#[derive(Debug, Clone)]
pub struct Ensemble {
    name: String,
    members: Vec<Arc<dyn Model>>,
}

impl Ensemble {
    /// An ensemble named `name` over `members` (at least one).
    pub fn new(name: impl Into<String>, members: Vec<Arc<dyn Model>>) -> Self {
        Self {
            name: name.into(),
            members,
        }
    }
}

impl Model for Ensemble {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn min_train_len(&self) -> usize {
        self.members
            .iter()
            .map(|m| m.min_train_len())
            .max()
            .unwrap_or(1)
    }

    fn fit(&self, input: &FitInput<'_>) -> Result<Box<dyn Fitted>> {
        let fitted = self
            .members
            .iter()
            .map(|m| m.fit(input))
            .collect::<Result<Vec<_>>>()?;
        Ok(Box::new(FittedEnsemble { fitted }))
    }
}

struct FittedEnsemble {
    fitted: Vec<Box<dyn Fitted>>,
}

impl Fitted for FittedEnsemble {
    fn predict(&self, horizon: usize) -> Result<Vec<f64>> {
        let mut sum = vec![0.0; horizon];
        for f in &self.fitted {
            for (s, v) in sum.iter_mut().zip(f.predict(horizon)?) {
                *s += v;
            }
        }
        let n = self.fitted.len().max(1) as f64;
        Ok(sum.into_iter().map(|s| s / n).collect())
    }
}
