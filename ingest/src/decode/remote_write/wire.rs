//! A zero-copy reader of the `WriteRequest` protobuf.
//!
//! prost decodes every label into two owned `String`s and every series into two `Vec`s, about a
//! dozen allocations per sample of a typical request (one sample per series). This reader
//! borrows label strings from the decompressed bytes and reuses two scratch vectors, so a
//! request allocates nothing per series. It accepts and rejects exactly what the prost types in
//! `super::prompb` do (a differential property test holds it to that): unknown fields of every
//! wire type are skipped (groups included, nested up to prost's recursion limit), a known field
//! with another wire type is an error, strings must be UTF-8, the last of a repeated scalar
//! wins, and exemplars, histograms and metadata are checked for well-formedness and dropped.

/// prost's default recursion limit for nested messages and groups.
const RECURSION_LIMIT: u32 = 100;

/// Why the bytes are not a `WriteRequest`, with where: e.g. `time series 3: label 1:
/// invalid string value: data is not UTF-8 encoded`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct WireError(String);

impl WireError {
    fn new(reason: &str) -> Self {
        Self(reason.to_owned())
    }

    /// The same error, said to be inside `what`.
    fn within(self, what: std::fmt::Arguments<'_>) -> Self {
        Self(format!("{what}: {}", self.0))
    }
}

type Result<T> = std::result::Result<T, WireError>;

/// A label borrowed from the request bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Label<'a> {
    /// Label name.
    pub name: &'a str,
    /// Label value.
    pub value: &'a str,
}

/// A float sample.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Sample {
    /// The value.
    pub value: f64,
    /// Milliseconds since the epoch.
    pub timestamp: i64,
}

const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const START_GROUP: u8 = 3;
const END_GROUP: u8 = 4;
const FIXED32: u8 = 5;

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    fn varint(&mut self) -> Result<u64> {
        let mut value = 0u64;
        for i in 0..10 {
            let Some((&b, rest)) = self.buf.split_first() else {
                return Err(WireError::new("buffer underflow"));
            };
            self.buf = rest;
            if i == 9 && b > 1 {
                return Err(WireError::new("invalid varint"));
            }
            value |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Ok(value);
            }
        }
        Err(WireError::new("invalid varint"))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.buf.len() < n {
            return Err(WireError::new("buffer underflow"));
        }
        let (a, b) = self.buf.split_at(n);
        self.buf = b;
        Ok(a)
    }

    /// A field key: (field number, wire type).
    fn key(&mut self) -> Result<(u32, u8)> {
        let key = self.varint()?;
        let key = u32::try_from(key).map_err(|_| WireError::new("invalid key value"))?;
        let wire = (key & 7) as u8;
        if wire > FIXED32 {
            return Err(WireError::new("invalid wire type value"));
        }
        if key >> 3 == 0 {
            return Err(WireError::new("invalid tag value: 0"));
        }
        Ok((key >> 3, wire))
    }

    fn len_delimited(&mut self) -> Result<&'a [u8]> {
        let n = self.varint()?;
        let n = usize::try_from(n).map_err(|_| WireError::new("buffer underflow"))?;
        self.take(n)
    }

    fn fixed64(&mut self) -> Result<[u8; 8]> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(a)
    }

    /// Skips a field of an unknown number (for a group, up to its matching end). `limit` is
    /// prost's recursion budget of the message the field is in; like prost, a skip with none
    /// left fails.
    fn skip(&mut self, field: u32, wire: u8, limit: u32) -> Result<()> {
        let inner = nested(limit)?;
        match wire {
            VARINT => {
                self.varint()?;
            }
            FIXED64 => {
                self.take(8)?;
            }
            LEN => {
                self.len_delimited()?;
            }
            FIXED32 => {
                self.take(4)?;
            }
            START_GROUP => loop {
                let (f, w) = self.key()?;
                if w == END_GROUP {
                    if f != field {
                        return Err(WireError::new("unexpected end group tag"));
                    }
                    break;
                }
                self.skip(f, w, inner)?;
            },
            _ => return Err(WireError::new("unexpected end group tag")),
        }
        Ok(())
    }

    /// Reads a known field's value after checking its wire type.
    fn expect(&self, wire: u8, want: u8) -> Result<()> {
        if wire == want {
            Ok(())
        } else {
            Err(WireError::new("invalid wire type"))
        }
    }
}

/// The recursion budget inside a message (or group) read with budget `limit`.
fn nested(limit: u32) -> Result<u32> {
    limit
        .checked_sub(1)
        .ok_or_else(|| WireError::new("recursion limit reached"))
}

/// Checks every field of a message whose fields have recursion budget `limit`, calling
/// `known` for the fields it handles (it returns false for a field it does not know, which is
/// then skipped).
fn fields<'a>(
    buf: &'a [u8],
    limit: u32,
    mut known: impl FnMut(&mut Reader<'a>, u32, u8) -> Result<bool>,
) -> Result<()> {
    let mut r = Reader { buf };
    while !r.is_empty() {
        let (field, wire) = r.key()?;
        if !known(&mut r, field, wire)? {
            r.skip(field, wire, limit)?;
        }
    }
    Ok(())
}

/// A length-delimited message field of a message with budget `limit`: its bytes and the
/// budget of its own fields.
fn message<'a>(r: &mut Reader<'a>, wire: u8, limit: u32) -> Result<(&'a [u8], u32)> {
    r.expect(wire, LEN)?;
    let inner = nested(limit)?;
    Ok((r.len_delimited()?, inner))
}

fn string<'a>(r: &mut Reader<'a>, wire: u8) -> Result<&'a str> {
    r.expect(wire, LEN)?;
    std::str::from_utf8(r.len_delimited()?)
        .map_err(|_| WireError::new("invalid string value: data is not UTF-8 encoded"))
}

fn label(buf: &[u8], limit: u32) -> Result<Label<'_>> {
    let mut l = Label::default();
    fields(buf, limit, |r, field, wire| {
        match field {
            1 => l.name = string(r, wire)?,
            2 => l.value = string(r, wire)?,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok(l)
}

fn int64(r: &mut Reader<'_>, wire: u8) -> Result<i64> {
    r.expect(wire, VARINT)?;
    Ok(r.varint()? as i64)
}

fn double(r: &mut Reader<'_>, wire: u8) -> Result<f64> {
    r.expect(wire, FIXED64)?;
    Ok(f64::from_le_bytes(r.fixed64()?))
}

fn sample(buf: &[u8], limit: u32) -> Result<Sample> {
    let mut s = Sample::default();
    fields(buf, limit, |r, field, wire| {
        match field {
            1 => s.value = double(r, wire)?,
            2 => s.timestamp = int64(r, wire)?,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok(s)
}

fn exemplar(buf: &[u8], limit: u32) -> Result<()> {
    fields(buf, limit, |r, field, wire| {
        match field {
            1 => {
                let (m, l) = message(r, wire, limit)?;
                label(m, l)?;
            }
            2 => {
                double(r, wire)?;
            }
            3 => {
                int64(r, wire)?;
            }
            _ => return Ok(false),
        }
        Ok(true)
    })
}

fn histogram(buf: &[u8], limit: u32) -> Result<()> {
    fields(buf, limit, |r, field, wire| {
        if field == 15 {
            int64(r, wire)?;
            return Ok(true);
        }
        Ok(false)
    })
}

fn metadata(buf: &[u8], limit: u32) -> Result<()> {
    fields(buf, limit, |r, field, wire| {
        match field {
            1 => {
                r.expect(wire, VARINT)?;
                r.varint()?;
            }
            2 | 4 | 5 => {
                string(r, wire)?;
            }
            _ => return Ok(false),
        }
        Ok(true)
    })
}

/// Reads a `WriteRequest`, calling `series` with each time series' labels and samples in
/// order. Everything is checked before anything is returned: on an error the caller must
/// drop what `series` collected. Returns the number of series.
pub fn for_each_series<'a>(
    buf: &'a [u8],
    mut series: impl FnMut(&[Label<'a>], &[Sample]),
) -> Result<usize> {
    let mut labels: Vec<Label<'a>> = Vec::new();
    let mut samples: Vec<Sample> = Vec::new();
    let mut count = 0usize;
    let top = RECURSION_LIMIT;
    fields(buf, top, |r, field, wire| {
        match field {
            1 => {
                let (ts, limit) = message(r, wire, top)
                    .map_err(|e| e.within(format_args!("time series {count}")))?;
                labels.clear();
                samples.clear();
                let (mut exemplars, mut histograms) = (0usize, 0usize);
                fields(ts, limit, |r, field, wire| {
                    let (m, l) = match field {
                        1..=4 => message(r, wire, limit)?,
                        _ => return Ok(false),
                    };
                    match field {
                        1 => labels.push(
                            label(m, l)
                                .map_err(|e| e.within(format_args!("label {}", labels.len())))?,
                        ),
                        2 => samples.push(
                            sample(m, l)
                                .map_err(|e| e.within(format_args!("sample {}", samples.len())))?,
                        ),
                        3 => {
                            exemplar(m, l)
                                .map_err(|e| e.within(format_args!("exemplar {exemplars}")))?;
                            exemplars += 1;
                        }
                        _ => {
                            histogram(m, l)
                                .map_err(|e| e.within(format_args!("histogram {histograms}")))?;
                            histograms += 1;
                        }
                    }
                    Ok(true)
                })
                .map_err(|e| e.within(format_args!("time series {count}")))?;
                series(&labels, &samples);
                count += 1;
            }
            3 => {
                let (m, l) = message(r, wire, top)?;
                metadata(m, l).map_err(|e| e.within(format_args!("metadata")))?;
            }
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::super::prompb;
    use super::*;
    use proptest::prelude::*;
    use prost::Message;

    type Owned = Vec<(Vec<(String, String)>, Vec<(u64, i64)>)>;

    fn ours(buf: &[u8]) -> Option<Owned> {
        let mut out = Vec::new();
        let n = for_each_series(buf, |labels, samples| {
            out.push((
                labels
                    .iter()
                    .map(|l| (l.name.to_owned(), l.value.to_owned()))
                    .collect(),
                samples
                    .iter()
                    .map(|s| (s.value.to_bits(), s.timestamp))
                    .collect(),
            ));
        })
        .ok()?;
        assert_eq!(n, out.len());
        Some(out)
    }

    fn prost(buf: &[u8]) -> Option<Owned> {
        let req = prompb::WriteRequest::decode(buf).ok()?;
        Some(
            req.timeseries
                .into_iter()
                .map(|ts| {
                    (
                        ts.labels.into_iter().map(|l| (l.name, l.value)).collect(),
                        ts.samples
                            .into_iter()
                            .map(|s| (s.value.to_bits(), s.timestamp))
                            .collect(),
                    )
                })
                .collect(),
        )
    }

    fn same(buf: &[u8]) -> std::result::Result<(), TestCaseError> {
        prop_assert_eq!(ours(buf), prost(buf), "bytes {:?}", buf);
        Ok(())
    }

    fn label() -> impl Strategy<Value = prompb::Label> {
        ("\\PC{0,6}", "\\PC{0,6}").prop_map(|(name, value)| prompb::Label { name, value })
    }

    fn request() -> impl Strategy<Value = prompb::WriteRequest> {
        let sample = (any::<f64>(), any::<i64>())
            .prop_map(|(value, timestamp)| prompb::Sample { value, timestamp });
        let exemplar = (
            proptest::collection::vec(label(), 0..2),
            any::<f64>(),
            any::<i64>(),
        )
            .prop_map(|(labels, value, timestamp)| prompb::Exemplar {
                labels,
                value,
                timestamp,
            });
        let series = (
            proptest::collection::vec(label(), 0..4),
            proptest::collection::vec(sample, 0..3),
            proptest::collection::vec(exemplar, 0..2),
            proptest::collection::vec(any::<i64>(), 0..2),
        )
            .prop_map(|(labels, samples, exemplars, hs)| prompb::TimeSeries {
                labels,
                samples,
                exemplars,
                histograms: hs
                    .into_iter()
                    .map(|timestamp| prompb::Histogram { timestamp })
                    .collect(),
            });
        let metadata = (0i32..8, "\\PC{0,4}", "\\PC{0,4}").prop_map(|(t, name, help)| {
            prompb::MetricMetadata {
                r#type: t,
                metric_family_name: name,
                help,
                unit: String::new(),
            }
        });
        (
            proptest::collection::vec(series, 0..4),
            proptest::collection::vec(metadata, 0..2),
        )
            .prop_map(|(timeseries, metadata)| prompb::WriteRequest {
                timeseries,
                metadata,
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn valid_requests_read_like_prost(req in request()) {
            let buf = req.encode_to_vec();
            prop_assert!(ours(&buf).is_some());
            same(&buf)?;
        }

        #[test]
        fn damaged_requests_are_refused_or_read_like_prost(
            req in request(),
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..4),
        ) {
            let mut buf = req.encode_to_vec();
            for (at, byte, kind) in edits {
                if buf.is_empty() {
                    buf.push(byte);
                    continue;
                }
                let i = at.index(buf.len());
                match kind {
                    0 => buf[i] = byte,
                    1 => buf.insert(i, byte),
                    _ => buf.truncate(i),
                }
            }
            same(&buf)?;
        }

        #[test]
        fn arbitrary_bytes_are_refused_or_read_like_prost(
            buf in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            same(&buf)?;
        }
    }

    /// A top-level unknown field 9 holding `depth` nested groups, then one series.
    fn nested_groups(depth: usize) -> Vec<u8> {
        let mut buf = Vec::new();
        for _ in 0..depth {
            buf.push((9 << 3) | START_GROUP);
        }
        for _ in 0..depth {
            buf.push((9 << 3) | END_GROUP);
        }
        let series = prompb::WriteRequest {
            timeseries: vec![prompb::TimeSeries {
                labels: vec![prompb::Label {
                    name: "__name__".into(),
                    value: "up".into(),
                }],
                ..Default::default()
            }],
            metadata: Vec::new(),
        };
        buf.extend(series.encode_to_vec());
        buf
    }

    #[test]
    fn unknown_fields_of_every_wire_type_are_skipped_and_groups_nest_as_deep_as_prost_allows() {
        // Field 7: varint, fixed64, length-delimited, fixed32; then the series.
        let mut buf = vec![7 << 3, 0x96, 0x01, (7 << 3) | FIXED64];
        buf.extend([1u8; 8]);
        buf.extend([
            (7 << 3) | LEN,
            2,
            b'x',
            b'y',
            (7 << 3) | FIXED32,
            1,
            2,
            3,
            4,
        ]);
        buf.extend(nested_groups(0));
        assert_eq!(ours(&buf).map(|s| s.len()), Some(1));
        assert_eq!(ours(&buf), prost(&buf));
        let mut accepted = 0;
        for depth in [1, 2, 50, 98, 99, 100, 101, 102, 150] {
            let buf = nested_groups(depth);
            assert_eq!(ours(&buf), prost(&buf), "{depth} nested groups");
            accepted += usize::from(ours(&buf).is_some());
        }
        assert!(
            (4..9).contains(&accepted),
            "the limit lies inside the range tried"
        );
    }

    #[test]
    fn an_error_says_where_in_the_request_it_is() {
        // A length-delimited field (short bodies only).
        fn msg(field: u8, body: &[u8]) -> Vec<u8> {
            let mut out = vec![(field << 3) | LEN, u8::try_from(body.len()).expect("short")];
            out.extend_from_slice(body);
            out
        }
        let label = |name: &[u8], value: &[u8]| msg(1, &[msg(1, name), msg(2, value)].concat());
        // Series 0 is fine; series 1's second label has a name that is not UTF-8, and a sample.
        let sample = msg(2, &[9 << 3, 1]);
        let series0 = msg(1, &[label(b"a", b"b"), label(b"c", b"d")].concat());
        let series1 = msg(
            1,
            &[label(b"a", b"b"), label(&[0xff], b"d"), sample].concat(),
        );
        let buf = [series0, series1].concat();
        let err = for_each_series(&buf, |_, _| {}).expect_err("refused");
        assert_eq!(
            err.to_string(),
            "time series 1: label 1: invalid string value: data is not UTF-8 encoded"
        );
        let cut = for_each_series(&buf[..buf.len() - 1], |_, _| {}).expect_err("refused");
        assert_eq!(cut.to_string(), "time series 1: buffer underflow");
    }

    #[test]
    fn a_known_field_with_another_wire_type_is_refused() {
        // timeseries (field 1) sent as a varint.
        let buf = [1 << 3, 5];
        assert_eq!(ours(&buf), None);
        assert_eq!(prost(&buf), None);
        // A label name that is not UTF-8.
        let buf = [
            (1 << 3) | LEN,
            5,
            (1 << 3) | LEN,
            3,
            (1 << 3) | LEN,
            1,
            0xff,
        ];
        assert_eq!(ours(&buf), None);
        assert_eq!(prost(&buf), None);
    }
}
