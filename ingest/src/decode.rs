//! Wire decoders: bytes from a client into [`crate::point::Point`]s. They never panic on any input.

pub mod line_protocol;
pub mod otlp;
pub mod prom_text;
pub mod remote_write;
