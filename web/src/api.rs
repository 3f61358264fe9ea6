//! HTTP handlers, one module per area.

pub mod admin;
pub mod body;
pub mod dashboards;
pub mod health;
pub mod otlp;
pub mod otlp_grpc;
pub mod sql;
pub mod traces;
pub mod write;
