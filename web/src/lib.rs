//! Web: the `crest` binary's server.
//!
//! A request enters the router built from [`server::route_table`], passes the auth guard (bearer
//! token with the route's scope), and reaches a handler in [`api`]: ingest handlers decode the
//! body with `ingest::decode` and hand points to the `ingest::Db`, which acks once they are
//! fsynced in the WAL; the SQL handler runs `query::QueryEngine` and encodes the result. The
//! background loop snapshots the buffer to Parquet and enforces retention. Statuses are decided
//! in one place, [`error::ApiError`].

pub mod alert;
pub mod api;
pub mod auth;
pub mod backtest_cmd;
pub mod cli;
pub mod config;
pub mod dashboards;
pub mod error;
pub mod loadgen;
pub mod metrics;
pub mod planning;
pub mod query_cache;
pub mod ratelimit;
pub mod scrape;
pub mod server;
pub mod simulate;
pub mod ui;
