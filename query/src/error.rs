//! Query errors, each with a kind the HTTP layer maps to a status once.

/// How the HTTP layer should answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryErrorKind {
    /// Bad SQL, unknown table or column, a refused statement: 400.
    InvalidQuery,
    /// The query ran out of its time or memory budget: 422.
    TooExpensive,
    /// Too many queries at once: 503 with Retry-After.
    Busy,
    /// Anything else: 500, logged.
    Internal,
}

/// Errors of the query crate.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// A statement the read-only sandbox refuses.
    #[error("statement refused: {0} (the SQL endpoint is read-only)")]
    Refused(String),
    /// Planning or execution failed because of the query.
    #[error("{0}")]
    Invalid(String),
    /// The query ran past its timeout.
    #[error("query exceeded its time limit of {0:?}")]
    Timeout(std::time::Duration),
    /// The query needed more memory than its pool.
    #[error("query exceeded its memory limit of {limit} bytes: {detail}")]
    Memory {
        /// Pool size.
        limit: usize,
        /// DataFusion's message.
        detail: String,
    },
    /// All query slots are busy.
    #[error("too many concurrent queries (limit {0}); retry shortly")]
    Busy(usize),
    /// An internal failure.
    #[error("internal query error: {0}")]
    Internal(String),
}

impl QueryError {
    /// The kind, for status mapping.
    pub fn kind(&self) -> QueryErrorKind {
        match self {
            QueryError::Refused(_) | QueryError::Invalid(_) => QueryErrorKind::InvalidQuery,
            QueryError::Timeout(_) | QueryError::Memory { .. } => QueryErrorKind::TooExpensive,
            QueryError::Busy(_) => QueryErrorKind::Busy,
            QueryError::Internal(_) => QueryErrorKind::Internal,
        }
    }
}
