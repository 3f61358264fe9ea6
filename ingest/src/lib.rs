//! Ingest: everything between the wire and the Parquet files.
//!
//! Data moves through this crate in one direction: a decoder (`decode`) turns request bytes into
//! a [`batch::Batch`] (line protocol and remote write fill one directly; the others build
//! [`point::Point`]s and convert); the [`db::Db`] validates it against the table schemas and
//! limits on the request's thread, appends it to the WAL (`wal`: a writer thread with
//! group-commit fsync, then an apply thread) and applies it to the in-memory write buffer
//! (`buffer`: per table and hour, an append-only log of rows, built into Arrow when read) before
//! acknowledging, so queries see it at once. A snapshot writes buffered hour partitions to
//! Parquet (`persist`) under paths built in `paths`, commits them in the `manifest`, and only
//! then truncates the WAL. Small tables' hours share files (`compact`), and compaction merges
//! the files an hour's small tables ended up in. No HTTP and no DataFusion here.

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
pub mod spare;
pub mod wal;

pub use db::{Db, DbArgs, DbConfig};
pub use error::{Error, ErrorKind};
