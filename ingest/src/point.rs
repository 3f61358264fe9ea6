//! The unit every decoder produces and every later stage consumes.

use serde::{Deserialize, Serialize};

/// One typed field value, as line protocol and remote write can express it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FieldValue {
    /// 64-bit float (line protocol `1.5`, every remote-write sample).
    F64(f64),
    /// Signed integer (line protocol `1i`).
    I64(i64),
    /// Unsigned integer (line protocol `1u`).
    U64(u64),
    /// Boolean (line protocol `t`, `true`, `F`, ...).
    Bool(bool),
    /// String (line protocol `"text"`).
    Str(String),
}

/// The Arrow-facing type of a field column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FieldType {
    /// Float64 column.
    F64,
    /// Int64 column.
    I64,
    /// UInt64 column.
    U64,
    /// Boolean column.
    Bool,
    /// Utf8 column.
    Str,
}

impl FieldValue {
    /// The column type this value needs.
    pub fn field_type(&self) -> FieldType {
        match self {
            FieldValue::F64(_) => FieldType::F64,
            FieldValue::I64(_) => FieldType::I64,
            FieldValue::U64(_) => FieldType::U64,
            FieldValue::Bool(_) => FieldType::Bool,
            FieldValue::Str(_) => FieldType::Str,
        }
    }
}

impl FieldType {
    /// Lowercase name used in error messages and the manifest.
    pub fn name(self) -> &'static str {
        match self {
            FieldType::F64 => "float",
            FieldType::I64 => "integer",
            FieldType::U64 => "unsigned",
            FieldType::Bool => "boolean",
            FieldType::Str => "string",
        }
    }
}

/// One row for one table: a series (tags) at one instant with one or more fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// Table (measurement or metric name).
    pub table: String,
    /// Tag key/value pairs, sorted by key, keys unique.
    pub tags: Vec<(String, String)>,
    /// Field name/value pairs, keys unique, at least one.
    pub fields: Vec<(String, FieldValue)>,
    /// Nanoseconds since the Unix epoch, UTC.
    pub time_ns: i64,
}

/// Timestamp precision of a line-protocol request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// Nanoseconds (the default).
    #[default]
    Nanosecond,
    /// Microseconds.
    Microsecond,
    /// Milliseconds.
    Millisecond,
    /// Seconds.
    Second,
}

impl Precision {
    /// Multiplier from this precision to nanoseconds.
    pub fn to_nanos_factor(self) -> i64 {
        match self {
            Precision::Nanosecond => 1,
            Precision::Microsecond => 1_000,
            Precision::Millisecond => 1_000_000,
            Precision::Second => 1_000_000_000,
        }
    }
}

impl std::str::FromStr for Precision {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ns" | "n" => Ok(Precision::Nanosecond),
            "us" | "u" | "µs" => Ok(Precision::Microsecond),
            "ms" => Ok(Precision::Millisecond),
            "s" => Ok(Precision::Second),
            other => Err(format!(
                "unknown precision {other:?}: expected one of ns, us, ms, s"
            )),
        }
    }
}
