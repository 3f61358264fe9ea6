//! The crate's one error type.

/// What went wrong in preparing a series, fitting a model or running a backtest.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The series has no usable points.
    #[error("the series is empty")]
    Empty,
    /// A value is NaN or infinite.
    #[error("value at time {time} is not a finite number")]
    NotFinite {
        /// Unix seconds of the offending point.
        time: i64,
    },
    /// The sampling interval could not be determined or is not positive.
    #[error("cannot determine a regular sampling interval: {reason}")]
    Interval {
        /// Why.
        reason: String,
    },
    /// A timestamp does not fall on the regular grid.
    #[error("timestamp {time} is not on the {step}s grid starting at {start}")]
    OffGrid {
        /// Unix seconds of the offending point.
        time: i64,
        /// Grid interval in seconds.
        step: i64,
        /// First grid point.
        start: i64,
    },
    /// A gap is longer than what may be filled.
    #[error(
        "gap of {missing} missing points after time {after} is longer than the {max} that may be filled"
    )]
    GapTooLong {
        /// Unix seconds of the last point before the gap.
        after: i64,
        /// Number of missing grid points.
        missing: usize,
        /// Longest fillable gap in points.
        max: usize,
    },
    /// The series is too short for what was asked.
    #[error("series too short: {have} points, {need} needed ({what})")]
    TooShort {
        /// Points available.
        have: usize,
        /// Points needed.
        need: usize,
        /// What needed them.
        what: String,
    },
    /// A parameter is out of range.
    #[error("invalid parameter {name}: {reason}")]
    InvalidParameter {
        /// Parameter name.
        name: &'static str,
        /// Why it is invalid.
        reason: String,
    },
    /// The training window before a cut-off has no seasonal-naive error to scale by.
    #[error(
        "the training window before time {time} has zero seasonal-naive error (constant or exactly periodic): MASE is undefined"
    )]
    ZeroScale {
        /// Unix seconds of the cut-off.
        time: i64,
    },
    /// An unknown model name.
    #[error(
        "unknown model {0:?} (expected auto, snaive, snaive<period>, mstl, regression or ensemble)"
    )]
    UnknownModel(String),
    /// A model failed to fit or predict.
    #[error("model {model} failed: {reason}")]
    Model {
        /// Model name.
        model: String,
        /// The underlying error, as text.
        reason: String,
    },
}

/// The kind of an [`Error`], for callers that map errors to statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The caller's input or parameters are unusable.
    InvalidInput,
    /// Something failed inside a model.
    Internal,
}

impl Error {
    /// Which kind of error this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Model { .. } => ErrorKind::Internal,
            _ => ErrorKind::InvalidInput,
        }
    }
}

/// Result with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
