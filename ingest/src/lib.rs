//! Ingest: everything between the wire and the Parquet files.
//!
//! Data moves through this crate in one direction: a decoder (`decode`) turns request bytes into
//! [`point::Point`]s; the [`db::Db`] validates them against the table schemas and limits, appends
//! them to the WAL (`wal`, group-commit fsync) and applies them to the in-memory write buffer
//! (`buffer`) before acknowledging, so queries see them at once. A snapshot writes buffered hour
//! partitions to Parquet (`persist`) under paths built in `paths`, commits them in the `manifest`,
//! and only then truncates the WAL. Small tables' hours share files (`compact`), and
//! compaction merges the files an hour's small tables ended up in. No HTTP and no DataFusion here.

pub mod batch;
pub mod buffer;
pub mod clock;
pub mod compact;
pub mod db;
pub mod decode;
pub mod error;
pub mod failpoint;
pub mod manifest;
pub mod paths;
pub mod persist;
pub mod point;
pub mod schema;
pub mod wal;

pub use db::{Db, DbArgs, DbConfig};
pub use error::{Error, ErrorKind};
