//! Influx line protocol.
