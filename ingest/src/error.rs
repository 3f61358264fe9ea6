//! The crate's one error type; each variant knows its kind so the HTTP layer maps it once.

use std::path::PathBuf;

/// What kind of failure an [`Error`] is, for mapping to a status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The client sent something wrong: a 4xx.
    InvalidInput,
    /// A limit was hit (cardinality, size): a 4xx the client should not retry unchanged.
    LimitExceeded,
    /// Try again later: disk full, memory pressure, shutting down (503 + Retry-After).
    Unavailable,
    /// A bug or an operator problem: logged, 500.
    Internal,
}

/// Errors of the ingest crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O failure on a named path.
    #[error("i/o error on {path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The WAL holds a corrupt record that is not a torn tail.
    #[error(
        "wal segment {path} corrupt at offset {offset}: {reason}; start with --wal-repair to drop it and everything after"
    )]
    WalCorrupt {
        /// Segment file.
        path: PathBuf,
        /// Byte offset of the bad record.
        offset: u64,
        /// What was wrong.
        reason: String,
    },
    /// The WAL writer has stopped (shutdown or an earlier fatal error).
    #[error("wal writer is not running: {0}")]
    WalClosed(String),
    /// The disk is full: writes are refused until space returns.
    #[error("no space left on the data volume ({0}); writes resume when space returns")]
    DiskFull(String),
    /// More bytes wait for the WAL writer than its backlog limit allows.
    #[error("wal backlog of {queued} bytes is over its limit of {limit}; retry shortly")]
    WalBacklog {
        /// Bytes waiting.
        queued: usize,
        /// The limit.
        limit: usize,
    },
    /// The write buffer is over its memory limit.
    #[error("write buffer is full ({used} bytes of {limit}); retry after the next snapshot")]
    BufferFull {
        /// Bytes in use.
        used: usize,
        /// The limit.
        limit: usize,
    },
    /// A field's type differs from the column's type.
    #[error("field {field:?} of table {table:?} is {found} but the column is {expected}")]
    TypeConflict {
        /// Table name.
        table: String,
        /// Field name.
        field: String,
        /// The column's type.
        expected: &'static str,
        /// The type sent.
        found: &'static str,
    },
    /// A table, tag or field name that cannot be stored.
    #[error("invalid name {name:?}: {reason}")]
    InvalidName {
        /// The name.
        name: String,
        /// Why.
        reason: &'static str,
    },
    /// A per-point or per-table limit.
    #[error("{0}")]
    Limit(String),
    /// A Parquet encode or decode failure.
    #[error("parquet error on {path}: {source}")]
    Parquet {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: parquet::errors::ParquetError,
    },
    /// An Arrow failure while building or reading batches.
    #[error("arrow error: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// The manifest could not be read or written.
    #[error("manifest {path}: {reason}")]
    Manifest {
        /// Manifest file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
}

impl Error {
    /// The kind, for status-code mapping.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::TypeConflict { .. } | Error::InvalidName { .. } => ErrorKind::InvalidInput,
            Error::Limit(_) => ErrorKind::LimitExceeded,
            Error::DiskFull(_)
            | Error::BufferFull { .. }
            | Error::WalBacklog { .. }
            | Error::WalClosed(_) => ErrorKind::Unavailable,
            Error::Io { source, .. } if is_disk_full(source) => ErrorKind::Unavailable,
            Error::Io { .. }
            | Error::WalCorrupt { .. }
            | Error::Parquet { .. }
            | Error::Arrow(_)
            | Error::Manifest { .. } => ErrorKind::Internal,
        }
    }

    /// Wraps an I/O error with its path, turning ENOSPC into [`Error::DiskFull`].
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        let path = path.into();
        if is_disk_full(&source) {
            Error::DiskFull(format!("{}: {source}", path.display()))
        } else {
            Error::Io { path, source }
        }
    }
}

/// True for ENOSPC and EDQUOT.
pub fn is_disk_full(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    ) || matches!(e.raw_os_error(), Some(28) | Some(122))
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
