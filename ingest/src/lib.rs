//! Ingest: everything between the wire and the Parquet files.
//!
//! Data moves through this crate in one direction: a decoder (`decode`) turns request bytes into
//! [`point::Point`]s; the [`db::Db`] validates them against the table schemas and limits, appends
//! them to the WAL (`wal`, group-commit fsync) and only then applies them to the in-memory write
//! buffer (`buffer`), where queries see them at once. A snapshot (`persist`) writes buffered hour
//! partitions to Parquet under paths built in `paths`, commits them in the `manifest`, and only then
//! truncates the WAL. No HTTP and no DataFusion here.

pub mod decode;
pub mod point;
