//! Query: SQL over Crest's data with DataFusion.
//!
//! A query arrives as SQL text at the [`engine::QueryEngine`], which checks it against the
//! read-only sandbox, plans it in a fresh session whose default schema lists the database's
//! tables, and runs it under a per-query memory pool, a timeout and a concurrency cap. Each table
//! is a [`table::CrestTable`]: it takes a consistent view of buffer ∪ Parquet from `ingest`,
//! prunes hours and files by the query's time bounds, and scans the rest. [`encode`] turns the
//! result into JSON, CSV, Arrow IPC or Parquet bytes. DataFusion appears in this crate only.

pub mod coop;
pub mod encode;
pub mod engine;
pub mod error;
pub mod histogram;
pub mod series;
pub mod table;

pub use engine::{ExtraTables, QueryConfig, QueryEngine, QueryResult};
pub use error::{QueryError, QueryErrorKind};
