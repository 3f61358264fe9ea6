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

/// Compact binary encoding of a batch of points, the WAL record payload.
///
/// `count: u32` then per point: `table`, `ntags: u32`, tags as key/value strings, `nfields: u32`,
/// fields as name, type byte, value, then `time: i64`. Strings are `len: u32` + UTF-8. LE.
pub mod codec {
    use super::{FieldValue, Point};
    use crate::batch::{Batch, ValueRef};

    /// Appends the encoding of `points` to `out`.
    pub fn encode(points: &[Point], out: &mut Vec<u8>) {
        put_u32(out, points.len());
        for p in points {
            put_point(
                out,
                &p.table,
                p.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                p.fields
                    .iter()
                    .map(|(k, v)| (k.as_str(), ValueRef::from(v))),
                p.time_ns,
            );
        }
    }

    /// Appends the encoding of a batch's points to `out` (the same bytes as [`encode`] of
    /// its owned points).
    pub fn encode_batch(batch: &Batch, out: &mut Vec<u8>) {
        put_u32(out, batch.len());
        for p in batch.iter() {
            put_point(out, p.table(), p.tags(), p.fields(), p.time_ns());
        }
    }

    fn put_point<'a>(
        out: &mut Vec<u8>,
        table: &str,
        tags: impl ExactSizeIterator<Item = (&'a str, &'a str)>,
        fields: impl ExactSizeIterator<Item = (&'a str, ValueRef<'a>)>,
        time_ns: i64,
    ) {
        put_str(out, table);
        put_u32(out, tags.len());
        for (k, v) in tags {
            put_str(out, k);
            put_str(out, v);
        }
        put_u32(out, fields.len());
        for (k, v) in fields {
            put_str(out, k);
            match v {
                ValueRef::F64(x) => {
                    out.push(0);
                    out.extend_from_slice(&x.to_le_bytes());
                }
                ValueRef::I64(x) => {
                    out.push(1);
                    out.extend_from_slice(&x.to_le_bytes());
                }
                ValueRef::U64(x) => {
                    out.push(2);
                    out.extend_from_slice(&x.to_le_bytes());
                }
                ValueRef::Bool(x) => {
                    out.push(3);
                    out.push(u8::from(x));
                }
                ValueRef::Str(s) => {
                    out.push(4);
                    put_str(out, s);
                }
            }
        }
        out.extend_from_slice(&time_ns.to_le_bytes());
    }

    fn put_u32(out: &mut Vec<u8>, n: usize) {
        out.extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes());
    }

    fn put_str(out: &mut Vec<u8>, s: &str) {
        put_u32(out, s.len());
        out.extend_from_slice(s.as_bytes());
    }

    struct Reader<'a>(&'a [u8]);

    impl<'a> Reader<'a> {
        fn take(&mut self, n: usize) -> Option<&'a [u8]> {
            if self.0.len() < n {
                return None;
            }
            let (a, b) = self.0.split_at(n);
            self.0 = b;
            Some(a)
        }
        fn u32(&mut self) -> Option<usize> {
            let b = self.take(4)?;
            Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
        }
        fn u64(&mut self) -> Option<[u8; 8]> {
            let mut a = [0u8; 8];
            a.copy_from_slice(self.take(8)?);
            Some(a)
        }
        fn str(&mut self) -> Option<String> {
            let n = self.u32()?;
            String::from_utf8(self.take(n)?.to_vec()).ok()
        }
    }

    /// Decodes a payload written by [`encode`]; `None` if it is malformed.
    pub fn decode(bytes: &[u8]) -> Option<Vec<Point>> {
        let mut r = Reader(bytes);
        let n = r.u32()?;
        let mut points = Vec::with_capacity(n.min(bytes.len() / 16));
        for _ in 0..n {
            let table = r.str()?;
            let nt = r.u32()?;
            let mut tags = Vec::with_capacity(nt.min(256));
            for _ in 0..nt {
                tags.push((r.str()?, r.str()?));
            }
            let nf = r.u32()?;
            let mut fields = Vec::with_capacity(nf.min(256));
            for _ in 0..nf {
                let name = r.str()?;
                let v = match r.take(1)?[0] {
                    0 => FieldValue::F64(f64::from_le_bytes(r.u64()?)),
                    1 => FieldValue::I64(i64::from_le_bytes(r.u64()?)),
                    2 => FieldValue::U64(u64::from_le_bytes(r.u64()?)),
                    3 => FieldValue::Bool(r.take(1)?[0] != 0),
                    4 => FieldValue::Str(r.str()?),
                    _ => return None,
                };
                fields.push((name, v));
            }
            let time_ns = i64::from_le_bytes(r.u64()?);
            points.push(Point {
                table,
                tags,
                fields,
                time_ns,
            });
        }
        r.0.is_empty().then_some(points)
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use proptest::prelude::*;

        fn value() -> impl Strategy<Value = FieldValue> {
            prop_oneof![
                any::<i64>().prop_map(FieldValue::I64),
                any::<u64>().prop_map(FieldValue::U64),
                any::<bool>().prop_map(FieldValue::Bool),
                ".*".prop_map(FieldValue::Str),
                (-1e300f64..1e300).prop_map(FieldValue::F64),
            ]
        }

        proptest! {
            #[test]
            fn round_trip(points in proptest::collection::vec(
                (".*", proptest::collection::vec((".*", ".*"), 0..4),
                 proptest::collection::vec((".*", value()), 1..4), any::<i64>())
                    .prop_map(|(table, tags, fields, time_ns)| Point { table, tags, fields, time_ns }),
                0..8)) {
                let mut buf = Vec::new();
                encode(&points, &mut buf);
                prop_assert_eq!(decode(&buf), Some(points.clone()));
                // A batch of the same points encodes to the same bytes.
                let mut from_batch = Vec::new();
                encode_batch(&Batch::from_points(points.into_iter().enumerate().collect()), &mut from_batch);
                prop_assert_eq!(from_batch, buf);
            }

            #[test]
            fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
                let _ = decode(&bytes);
            }
        }
    }
}
