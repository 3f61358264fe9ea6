//! Forecast: Crest's forecasting, pure and synchronous (no async runtime, no query engine).
//!
//! Raw `(time, value)` points become a regular [`Series`] ([`series::prepare`]: duplicates
//! averaged, short gaps filled, synthetic-load windows masked). At a forecast origin a
//! [`Forecaster`] backtests the candidate [`model`]s on inner windows of the history, keeps the
//! best, refits it on the most recent points and calibrates its intervals from its inner
//! residuals ([`interval`]); the resulting [`Forecast`] gives pointwise intervals and
//! [`peak_quantiles`] of a window's maximum for capacity plans. [`backtest`] runs that loop over
//! rolling origins and scores it with the pure functions in [`metrics`].
//!
//! Around the forecasts: [`milestone`]s (the campaign's windows and their drivers),
//! [`capacity`] at the SLO knee from stress-test observations, and [`plan`] rows (forecast peak,
//! multiplier, capacity, zone-loss tolerance, instances needed, gap) with their scoring.

pub mod backtest;
pub mod capacity;
pub mod error;
pub mod forecaster;
pub mod interval;
pub mod metrics;
pub mod milestone;
pub mod model;
pub mod plan;
pub mod series;

pub use backtest::{BacktestConfig, BacktestReport, BacktestRow, backtest};
pub use error::{Error, ErrorKind, Result};
pub use forecaster::{Forecaster, ForecasterConfig, Outcome};
pub use interval::{Forecast, Interval, peak_quantiles};
pub use model::ModelChoice;
pub use series::{PrepareOptions, PrepareReport, Series, TimeWindow, prepare};
