//! Prometheus remote write 1.0.
//!
//! A request body is a snappy block-format (not framed) compressed protobuf `WriteRequest`
//! (`prometheus/prompb` `remote.proto` and `types.proto`). Every sample becomes one [`Point`]:
//! table = the `__name__` label, tags = the other labels sorted by name, one field `value`
//! (float), time = the sample's millisecond timestamp in nanoseconds.
//!
//! A malformed body (bad snappy, oversized, bad protobuf) rejects the whole request. A malformed
//! series (bad labels, timestamp overflow) rejects only that series; its reason goes to
//! [`Decoded::errors`] and the other series are kept. Native histograms and exemplars are parsed
//! for well-formedness but not turned into points; metadata is ignored.
//!
//! The request is read by `wire`, a zero-copy reader held to prost's behaviour by a
//! differential property test; the prost types in `prompb` remain for [`encode`] and as that
//! test's reference.

use prost::Message;

use crate::batch::{Batch, Mark, ValueRef};
use wire::{Label, Sample};

mod wire;
use crate::point::Point;

/// The label holding the metric name, which becomes the table.
const NAME_LABEL: &str = "__name__";
/// The name of the one field every remote-write point carries.
const VALUE_FIELD: &str = "value";
/// Label names that would collide with a point's own columns.
const RESERVED_LABELS: [(&str, &str); 2] = [
    ("time", "the time column"),
    (VALUE_FIELD, "the sample value field"),
];
/// Longest label name or value quoted in an error message, in characters.
const QUOTE_MAX_CHARS: usize = 64;

/// Why a whole remote-write request was rejected.
#[derive(Debug, thiserror::Error)]
pub enum RemoteWriteError {
    /// The body is not valid snappy block format (an empty body included).
    #[error("body not snappy block format: {0}")]
    NotSnappy(#[source] snap::Error),
    /// The snappy header declares a decoded length above the caller's limit.
    #[error("declared decoded length {declared} exceeds limit {limit}")]
    TooLarge {
        /// Decoded length the snappy header claims, in bytes.
        declared: u64,
        /// The caller's limit, in bytes.
        limit: usize,
    },
    /// The decompressed bytes are not a valid `WriteRequest` protobuf.
    #[error("protobuf decode error: {0}")]
    Protobuf(#[from] wire::WireError),
}

/// The outcome of decoding one remote-write request.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Decoded {
    /// One point per sample of every accepted series, in request order.
    pub points: Vec<Point>,
    /// One message per rejected series, e.g. `series 3: missing __name__ label` (0-based index).
    pub errors: Vec<String>,
    /// Number of series in the request, rejected ones included.
    pub series: usize,
    /// Number of float samples in the request, those of rejected series included.
    pub samples: usize,
}

/// [`Decoded`] with the points in a [`Batch`], each tagged with its index among them: the
/// write path's form.
#[derive(Debug, Clone, Default)]
pub struct DecodedBatch {
    /// One point per sample of every accepted series, in request order.
    pub batch: Batch,
    /// One message per rejected series (see [`Decoded::errors`]).
    pub errors: Vec<String>,
    /// Number of series in the request, rejected ones included.
    pub series: usize,
    /// Number of float samples in the request, those of rejected series included.
    pub samples: usize,
}

/// Decompresses `body` (snappy block format) and decodes the `WriteRequest` inside.
///
/// The decoded length declared in the snappy header is checked against `max_decoded` before
/// anything is allocated, so a tiny body claiming a huge length costs nothing.
pub fn decode(body: &[u8], max_decoded: usize) -> Result<Decoded, RemoteWriteError> {
    let d = decode_batch(body, max_decoded)?;
    Ok(Decoded {
        points: d.batch.iter().map(|p| p.to_point()).collect(),
        errors: d.errors,
        series: d.series,
        samples: d.samples,
    })
}

/// [`decode`] into a [`Batch`].
pub fn decode_batch(body: &[u8], max_decoded: usize) -> Result<DecodedBatch, RemoteWriteError> {
    let raw = decompress(body, max_decoded)?;
    // About one sample per 60 bytes of protobuf; label strings are most of it.
    let mut out = DecodedBatch {
        batch: Batch::with_capacity(raw.len() / 60 + 1, raw.len()),
        ..DecodedBatch::default()
    };
    // Every label that reaches the batch was checked for control characters below (a series
    // with one is refused whole), and the field name is `value`.
    out.batch.set_printable();
    let mut index = 0usize;
    out.series = wire::for_each_series(&raw, |labels, samples| {
        out.samples += samples.len();
        if let Err(reason) = series_points(labels, samples, &mut out.batch) {
            out.errors.push(format!("series {index}: {reason}"));
        }
        index += 1;
    })?;
    crate::spare::BYTES.put(raw);
    Ok(out)
}

/// One series for [`encode`]: labels (including `__name__`) and `(timestamp_ms, value)` samples.
pub type Series = (Vec<(String, String)>, Vec<(i64, f64)>);

/// Encodes one `WriteRequest` holding `series` (labels including `__name__`, samples as
/// `(timestamp_ms, value)`) as snappy-compressed protobuf, as a remote-write client sends it.
///
/// Labels and samples are written in the order given. For tests and the load generator.
/// prost omits a proto3 double that `== 0.0`, so a `-0.0` value decodes as `0.0` (Prometheus'
/// Go encoder compares bits and keeps it; [`decode`] keeps it too).
///
/// # Panics
///
/// If the encoded protobuf exceeds the snappy block format's 4 GiB input limit.
pub fn encode(series: &[Series]) -> Vec<u8> {
    let request = prompb::WriteRequest {
        timeseries: series
            .iter()
            .map(|(labels, samples)| prompb::TimeSeries {
                labels: labels
                    .iter()
                    .map(|(name, value)| prompb::Label {
                        name: name.clone(),
                        value: value.clone(),
                    })
                    .collect(),
                samples: samples
                    .iter()
                    .map(|&(timestamp, value)| prompb::Sample { value, timestamp })
                    .collect(),
                exemplars: Vec::new(),
                histograms: Vec::new(),
            })
            .collect(),
        metadata: Vec::new(),
    };
    snap::raw::Encoder::new()
        .compress_vec(&request.encode_to_vec())
        .expect("remote-write request larger than the snappy block format's 4 GiB limit")
}

/// Snappy block decompression with the declared length checked before allocating.
fn decompress(body: &[u8], max_decoded: usize) -> Result<Vec<u8>, RemoteWriteError> {
    if body.is_empty() {
        // `decompress_len` reports 0 for an empty input, but a block always has a header.
        return Err(RemoteWriteError::NotSnappy(snap::Error::Empty));
    }
    let declared = match snap::raw::decompress_len(body) {
        Ok(n) => n,
        Err(snap::Error::TooBig { given, .. }) => {
            return Err(RemoteWriteError::TooLarge {
                declared: given,
                limit: max_decoded,
            });
        }
        Err(e) => return Err(RemoteWriteError::NotSnappy(e)),
    };
    if declared > max_decoded {
        return Err(RemoteWriteError::TooLarge {
            declared: declared as u64,
            limit: max_decoded,
        });
    }
    let mut raw = crate::spare::BYTES.take(declared);
    raw.resize(declared, 0);
    let n = snap::raw::Decoder::new()
        .decompress(body, &mut raw)
        .map_err(RemoteWriteError::NotSnappy)?;
    raw.truncate(n);
    Ok(raw)
}

/// Validates one series and appends a point per sample, or appends nothing and says why.
fn series_points(
    labels: &[Label<'_>],
    samples: &[Sample],
    batch: &mut Batch,
) -> Result<(), String> {
    let mark = batch.mark();
    let result = push_series(labels, samples, batch, mark);
    if result.is_err() {
        batch.rollback(mark);
    }
    result
}

fn push_series(
    labels: &[Label<'_>],
    samples: &[Sample],
    batch: &mut Batch,
    mark: Mark,
) -> Result<(), String> {
    let mut table = None;
    let mut plain = true;
    // Tags (labels but the name) in strictly increasing order with no empty value, as
    // Prometheus sends them: written once as the series' flat key, the tags pointing into it.
    let mut in_order = true;
    let mut prev: Option<&str> = None;
    for (position, label) in labels.iter().enumerate() {
        if label.name.is_empty() {
            return Err(format!("label {position} has an empty name"));
        }
        let (name_control, name_separator) = scan(label.name);
        let (value_control, value_separator) = scan(label.value);
        plain &= !name_separator && !value_separator;
        if name_control {
            return Err(format!(
                "label name {} contains a control character",
                quote(label.name)
            ));
        }
        if value_control {
            return Err(format!(
                "label {} value {} contains a control character",
                quote(label.name),
                quote(label.value)
            ));
        }
        if let Some((_, what)) = RESERVED_LABELS.iter().find(|(n, _)| *n == label.name) {
            return Err(format!(
                "label name {} is reserved for {what}",
                quote(label.name)
            ));
        }
        if label.name == NAME_LABEL {
            if table.is_some() {
                return Err(format!("duplicate label {}", quote(NAME_LABEL)));
            }
            if label.value.is_empty() {
                return Err(format!("empty {NAME_LABEL} label"));
            }
            table = Some(label.value);
        } else {
            in_order &= !label.value.is_empty() && prev.is_none_or(|p| p < label.name);
            prev = Some(label.name);
        }
    }
    let Some(table) = table else {
        return Err(format!("missing {NAME_LABEL} label"));
    };
    let tags = labels
        .iter()
        .filter(|l| l.name != NAME_LABEL)
        .map(|l| (l.name, l.value));
    let flat = if plain && in_order {
        Some(batch.add_tags_as_flat_key(tags))
    } else {
        for (k, v) in tags {
            batch.add_tag(k, v);
        }
        if let (_, Some(key)) = batch.sort_tags_since(mark) {
            return Err(format!("duplicate label {}", quote(key)));
        }
        // Every label is validated as sent; then an empty value, Prometheus' "label absent",
        // goes.
        batch.drop_empty_tags_since(mark);
        None
    };

    for (position, sample) in samples.iter().enumerate() {
        if sample.timestamp.checked_mul(1_000_000).is_none() {
            return Err(format!(
                "sample {position} timestamp {} ms overflows nanoseconds",
                sample.timestamp
            ));
        }
    }
    let mut samples = samples.iter();
    let Some(first) = samples.next() else {
        batch.rollback(mark);
        return Ok(());
    };
    batch.add_field(VALUE_FIELD, ValueRef::F64(first.value));
    let table = batch.push_str(table);
    let tag = batch.len();
    batch.finish(mark, tag, table, first.timestamp.saturating_mul(1_000_000));
    if plain {
        // No label holds `,` or `=`: the buffer can tell the series by its flat key alone.
        batch.set_last_plain(flat);
    }
    for sample in samples {
        let tag = batch.len();
        batch.repeat_with(
            tag,
            sample.timestamp.saturating_mul(1_000_000),
            ValueRef::F64(sample.value),
        );
    }
    Ok(())
}

/// Whether `s` holds a control character (C0, DEL or C1), and whether it holds `,` or `=`; one
/// pass over the bytes, decoding only text with non-ASCII (where C1 controls may hide).
fn scan(s: &str) -> (bool, bool) {
    let (mut control, mut separator, mut ascii) = (false, false, true);
    for c in s.bytes() {
        control |= c < 0x20 || c == 0x7f;
        separator |= c == b',' || c == b'=';
        ascii &= c < 0x80;
    }
    (
        control || (!ascii && s.chars().any(char::is_control)),
        separator,
    )
}

/// Debug-quotes (escaping control characters) a label name or value, truncated for messages.
fn quote(text: &str) -> String {
    match text.char_indices().nth(QUOTE_MAX_CHARS) {
        Some((cut, _)) => format!("{:?}...", &text[..cut]),
        None => format!("{text:?}"),
    }
}

/// Hand-written subset of `prometheus/prompb` (remote write 1.0). Field tags match the `.proto`
/// files; fields not declared here (e.g. histogram internals) are skipped by prost.
mod prompb {
    /// `prometheus.WriteRequest`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct WriteRequest {
        #[prost(message, repeated, tag = "1")]
        pub timeseries: Vec<TimeSeries>,
        #[prost(message, repeated, tag = "3")]
        pub metadata: Vec<MetricMetadata>,
    }

    /// `prometheus.TimeSeries`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct TimeSeries {
        #[prost(message, repeated, tag = "1")]
        pub labels: Vec<Label>,
        #[prost(message, repeated, tag = "2")]
        pub samples: Vec<Sample>,
        #[prost(message, repeated, tag = "3")]
        pub exemplars: Vec<Exemplar>,
        #[prost(message, repeated, tag = "4")]
        pub histograms: Vec<Histogram>,
    }

    /// `prometheus.Label`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct Label {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(string, tag = "2")]
        pub value: String,
    }

    /// `prometheus.Sample`; `timestamp` is in milliseconds.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct Sample {
        #[prost(double, tag = "1")]
        pub value: f64,
        #[prost(int64, tag = "2")]
        pub timestamp: i64,
    }

    /// `prometheus.Exemplar`; parsed, not ingested.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct Exemplar {
        #[prost(message, repeated, tag = "1")]
        pub labels: Vec<Label>,
        #[prost(double, tag = "2")]
        pub value: f64,
        #[prost(int64, tag = "3")]
        pub timestamp: i64,
    }

    /// `prometheus.Histogram` (native histogram), reduced to its timestamp: the buckets, counts
    /// and spans are skipped as unknown fields. Parsed, not ingested.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct Histogram {
        #[prost(int64, tag = "15")]
        pub timestamp: i64,
    }

    /// `prometheus.MetricMetadata`; parsed, not ingested.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct MetricMetadata {
        #[prost(enumeration = "MetricType", tag = "1")]
        pub r#type: i32,
        #[prost(string, tag = "2")]
        pub metric_family_name: String,
        #[prost(string, tag = "4")]
        pub help: String,
        #[prost(string, tag = "5")]
        pub unit: String,
    }

    /// `prometheus.MetricMetadata.MetricType`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
    #[repr(i32)]
    pub(super) enum MetricType {
        Unknown = 0,
        Counter = 1,
        Gauge = 2,
        Histogram = 3,
        GaugeHistogram = 4,
        Summary = 5,
        Info = 6,
        Stateset = 7,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::point::FieldValue;
    use proptest::prelude::*;

    const LIMIT: usize = 1 << 20;

    fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    fn snappy(raw: &[u8]) -> Vec<u8> {
        snap::raw::Encoder::new()
            .compress_vec(raw)
            .expect("compress")
    }

    /// Decodes one series with one sample at t=1000 ms; returns the points and errors.
    fn decode_one(pairs: &[(&str, &str)]) -> Decoded {
        decode(&encode(&[(labels(pairs), vec![(1_000, 1.5)])]), LIMIT).expect("request must decode")
    }

    fn assert_rejected(pairs: &[(&str, &str)], message: &str) {
        let decoded = decode_one(pairs);
        assert!(decoded.points.is_empty(), "{pairs:?}: {decoded:?}");
        assert_eq!(decoded.errors, vec![message.to_string()], "{pairs:?}");
        assert_eq!((decoded.series, decoded.samples), (1, 1));
    }

    /// Table, tags, field name, value bits, time.
    type Comparable = (String, Vec<(String, String)>, String, u64, i64);

    /// Points with the float value replaced by its bits, so NaN compares equal to itself.
    fn comparable(points: &[Point]) -> Vec<Comparable> {
        points
            .iter()
            .map(|p| {
                assert_eq!(p.fields.len(), 1);
                let FieldValue::F64(v) = p.fields[0].1 else {
                    panic!("not a float: {p:?}");
                };
                (
                    p.table.clone(),
                    p.tags.clone(),
                    p.fields[0].0.clone(),
                    v.to_bits(),
                    p.time_ns,
                )
            })
            .collect()
    }

    #[test]
    fn labels_holding_separators_stay_apart_from_the_series_they_spell() {
        let body = encode(&[
            (
                labels(&[("__name__", "up"), ("a", "x,b=y")]),
                vec![(1_000, 1.0)],
            ),
            (
                labels(&[("__name__", "up"), ("a", "x"), ("b", "y")]),
                vec![(1_000, 2.0)],
            ),
            (
                labels(&[("__name__", "up"), ("a", "x"), ("b", "y")]),
                vec![(2_000, 3.0), (3_000, 4.0)],
            ),
        ]);
        let mut batch = decode_batch(&body, LIMIT).expect("decodes").batch;
        batch.index_series();
        let mut tb = crate::buffer::TableBuffer::default();
        for p in batch.iter() {
            tb.insert_ref(p);
        }
        assert_eq!(tb.active_series(), 2);
    }

    #[test]
    fn sorted_and_unsorted_labels_of_one_series_find_one_series() {
        // Sorted labels take the path that writes the flat key once; the others are sorted
        // and keyed by the buffer's rule. Both must name the same series, with the same tags.
        let body = encode(&[
            (
                labels(&[("a", "1"), ("b", "2"), ("__name__", "up")]),
                vec![(1_000, 1.0)],
            ),
            (
                labels(&[("__name__", "up"), ("b", "2"), ("a", "1")]),
                vec![(2_000, 2.0)],
            ),
            (
                labels(&[("__name__", "up"), ("a", "1"), ("b", "2"), ("c", "")]),
                vec![(3_000, 3.0)],
            ),
            (labels(&[("__name__", "up")]), vec![(4_000, 4.0)]),
        ]);
        let mut batch = decode_batch(&body, LIMIT).expect("decodes").batch;
        let tags: Vec<Vec<(String, String)>> = batch
            .iter()
            .map(|p| {
                p.tags()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect()
            })
            .collect();
        let ab = labels(&[("a", "1"), ("b", "2")]);
        assert_eq!(tags, [ab.clone(), ab.clone(), ab, Vec::new()]);
        batch.index_series();
        let mut tb = crate::buffer::TableBuffer::default();
        for p in batch.iter() {
            tb.insert_ref(p);
        }
        assert_eq!(
            tb.active_series(),
            2,
            "{{a, b}} once, and the series without tags"
        );
    }

    #[test]
    fn wire_format_is_pinned() {
        // WriteRequest { timeseries: [ { labels: [__name__="up"], samples: [{1.0, 1000}] } ] },
        // written out byte by byte from the .proto field numbers and wire types.
        let mut label = vec![0x0a, 0x08];
        label.extend_from_slice(b"__name__");
        label.extend_from_slice(&[0x12, 0x02]);
        label.extend_from_slice(b"up");
        let mut sample = vec![0x09]; // field 1, fixed64
        sample.extend_from_slice(&1.0f64.to_le_bytes());
        sample.extend_from_slice(&[0x10, 0xe8, 0x07]); // field 2, varint 1000
        let mut series = vec![0x0a, label.len() as u8];
        series.extend_from_slice(&label);
        series.extend_from_slice(&[0x12, sample.len() as u8]);
        series.extend_from_slice(&sample);
        let mut request = vec![0x0a, series.len() as u8];
        request.extend_from_slice(&series);
        assert_eq!(request.len(), 32);

        let message = prompb::WriteRequest {
            timeseries: vec![prompb::TimeSeries {
                labels: vec![prompb::Label {
                    name: "__name__".into(),
                    value: "up".into(),
                }],
                samples: vec![prompb::Sample {
                    value: 1.0,
                    timestamp: 1_000,
                }],
                exemplars: vec![],
                histograms: vec![],
            }],
            metadata: vec![],
        };
        assert_eq!(message.encode_to_vec(), request);

        let body = encode(&[(labels(&[("__name__", "up")]), vec![(1_000, 1.0)])]);
        assert_eq!(
            snap::raw::Decoder::new()
                .decompress_vec(&body)
                .expect("decompress"),
            request
        );

        let decoded = decode(&snappy(&request), LIMIT).expect("request must decode");
        assert_eq!(
            decoded.points,
            vec![Point {
                table: "up".into(),
                tags: vec![],
                fields: vec![("value".into(), FieldValue::F64(1.0))],
                time_ns: 1_000_000_000,
            }]
        );
        assert!(decoded.errors.is_empty());
    }

    #[test]
    fn exemplars_histograms_and_metadata_are_skipped() {
        // A series carrying a float sample, an exemplar and a native histogram with fields this
        // module does not declare (count_int, sum, schema, positive_spans, positive_deltas).
        let mut histogram = vec![0x08, 0x05]; // count_int = 5
        histogram.push(0x19); // sum, fixed64
        histogram.extend_from_slice(&2.5f64.to_le_bytes());
        histogram.extend_from_slice(&[0x20, 0x05]); // schema = -3 (sint32 zigzag)
        histogram.extend_from_slice(&[0x5a, 0x04, 0x08, 0x00, 0x10, 0x02]); // span {0, 2}
        histogram.extend_from_slice(&[0x62, 0x02, 0x02, 0x04]); // packed sint64 deltas
        histogram.extend_from_slice(&[0x78, 0xd0, 0x0f]); // timestamp = 2000
        let exemplar = prompb::Exemplar {
            labels: vec![prompb::Label {
                name: "trace_id".into(),
                value: "abc".into(),
            }],
            value: 1.0,
            timestamp: 1_000,
        };
        let series = prompb::TimeSeries {
            labels: vec![prompb::Label {
                name: "__name__".into(),
                value: "rpc".into(),
            }],
            samples: vec![prompb::Sample {
                value: 3.0,
                timestamp: 1_000,
            }],
            exemplars: vec![exemplar],
            histograms: vec![],
        };
        let mut series_bytes = series.encode_to_vec();
        series_bytes.push(0x22); // field 4 (histograms), length-delimited
        series_bytes.push(histogram.len() as u8);
        series_bytes.extend_from_slice(&histogram);

        let metadata = prompb::MetricMetadata {
            r#type: prompb::MetricType::Counter as i32,
            metric_family_name: "rpc".into(),
            help: "RPCs served.".into(),
            unit: "".into(),
        };
        let metadata_bytes = metadata.encode_to_vec();
        assert_eq!(&metadata_bytes[..4], &[0x08, 0x01, 0x12, 0x03]);

        let mut request = vec![0x0a, series_bytes.len() as u8];
        request.extend_from_slice(&series_bytes);
        request.extend_from_slice(&[0x1a, metadata_bytes.len() as u8]);
        request.extend_from_slice(&metadata_bytes);

        let parsed = prompb::WriteRequest::decode(request.as_slice()).expect("request must decode");
        assert_eq!(parsed.timeseries[0].histograms.len(), 1);
        assert_eq!(parsed.timeseries[0].histograms[0].timestamp, 2_000);
        assert_eq!(parsed.metadata, vec![metadata]);

        let decoded = decode(&snappy(&request), LIMIT).expect("request must decode");
        assert!(decoded.errors.is_empty(), "{:?}", decoded.errors);
        assert_eq!((decoded.series, decoded.samples), (1, 1));
        assert_eq!(decoded.points.len(), 1);
        assert_eq!(decoded.points[0].table, "rpc");
        assert_eq!(decoded.points[0].fields[0].1, FieldValue::F64(3.0));
    }

    #[test]
    fn metadata_only_request_is_not_an_error() {
        let request = prompb::WriteRequest {
            timeseries: vec![],
            metadata: vec![prompb::MetricMetadata {
                r#type: prompb::MetricType::Gauge as i32,
                metric_family_name: "temperature".into(),
                help: "Degrees.".into(),
                unit: "celsius".into(),
            }],
        };
        let decoded =
            decode(&snappy(&request.encode_to_vec()), LIMIT).expect("request must decode");
        assert_eq!(decoded, Decoded::default());
    }

    #[test]
    fn empty_request_decodes_to_nothing() {
        let body = encode(&[]);
        assert_eq!(body, vec![0x00]);
        assert_eq!(
            decode(&body, LIMIT).expect("request must decode"),
            Decoded::default()
        );
    }

    #[test]
    fn unsorted_labels_are_sorted_and_empty_values_dropped() {
        let decoded = decode_one(&[
            ("zone", "b"),
            ("job", "api"),
            ("__name__", "http_requests_total"),
            ("empty", ""),
            ("instance", "h1:9090"),
        ]);
        assert!(decoded.errors.is_empty());
        assert_eq!(
            decoded.points,
            vec![Point {
                table: "http_requests_total".into(),
                tags: labels(&[("instance", "h1:9090"), ("job", "api"), ("zone", "b")]),
                fields: vec![("value".into(), FieldValue::F64(1.5))],
                time_ns: 1_000_000_000,
            }]
        );
    }

    #[test]
    fn stale_marker_nan_is_kept_bit_for_bit() {
        let stale = f64::from_bits(0x7ff0_0000_0000_0002);
        let body = encode(&[(
            labels(&[("__name__", "up")]),
            vec![(5, stale), (6, f64::NAN)],
        )]);
        let decoded = decode(&body, LIMIT).expect("request must decode");
        let bits: Vec<u64> = comparable(&decoded.points).iter().map(|p| p.3).collect();
        assert_eq!(bits, vec![stale.to_bits(), f64::NAN.to_bits()]);
    }

    #[test]
    fn series_errors_reject_only_their_series() {
        assert_rejected(&[("job", "a")], "series 0: missing __name__ label");
        assert_rejected(
            &[("__name__", ""), ("job", "a")],
            "series 0: empty __name__ label",
        );
        assert_rejected(
            &[("__name__", "m"), ("job", "a"), ("job", "b")],
            "series 0: duplicate label \"job\"",
        );
        assert_rejected(
            &[("__name__", "m"), ("__name__", "n")],
            "series 0: duplicate label \"__name__\"",
        );
        assert_rejected(
            &[("__name__", "m"), ("", "x")],
            "series 0: label 1 has an empty name",
        );
        assert_rejected(
            &[("__name__", "m"), ("a\0b", "x")],
            "series 0: label name \"a\\0b\" contains a control character",
        );
        assert_rejected(
            &[("__name__", "m"), ("job", "line\nbreak")],
            "series 0: label \"job\" value \"line\\nbreak\" contains a control character",
        );
        assert_rejected(
            &[("__name__", "m\u{7f}")],
            "series 0: label \"__name__\" value \"m\\u{7f}\" contains a control character",
        );
        assert_rejected(
            &[("__name__", "m"), ("time", "x")],
            "series 0: label name \"time\" is reserved for the time column",
        );
        assert_rejected(
            &[("__name__", "m"), ("value", "x")],
            "series 0: label name \"value\" is reserved for the sample value field",
        );

        // Overflowing timestamps reject the whole series; the neighbours survive.
        let max_ms = i64::MAX / 1_000_000;
        let body = encode(&[
            (
                labels(&[("__name__", "ok")]),
                vec![(max_ms, 1.0), (-max_ms, 2.0)],
            ),
            (
                labels(&[("__name__", "bad")]),
                vec![(1, 1.0), (max_ms + 1, 2.0)],
            ),
            (labels(&[("job", "x")]), vec![(1, 1.0)]),
            (labels(&[("__name__", "ok2")]), vec![(i64::MIN, 1.0)]),
            (labels(&[("__name__", "ok3")]), vec![(7, 3.0)]),
        ]);
        let decoded = decode(&body, LIMIT).expect("request must decode");
        assert_eq!(
            decoded.errors,
            vec![
                format!(
                    "series 1: sample 1 timestamp {} ms overflows nanoseconds",
                    max_ms + 1
                ),
                "series 2: missing __name__ label".to_string(),
                format!(
                    "series 3: sample 0 timestamp {} ms overflows nanoseconds",
                    i64::MIN
                ),
            ]
        );
        let kept: Vec<(&str, i64)> = decoded
            .points
            .iter()
            .map(|p| (p.table.as_str(), p.time_ns))
            .collect();
        assert_eq!(
            kept,
            vec![
                ("ok", max_ms * 1_000_000),
                ("ok", -max_ms * 1_000_000),
                ("ok3", 7_000_000)
            ]
        );
        assert_eq!((decoded.series, decoded.samples), (5, 7));
    }

    #[test]
    fn empty_value_labels_are_validated_before_being_dropped() {
        // `a=""` means "absent", but a malformed label list is malformed whatever the values.
        let decoded = decode_one(&[("__name__", "m"), ("time", ""), ("a", "1")]);
        assert_eq!(
            decoded.errors,
            vec!["series 0: label name \"time\" is reserved for the time column"]
        );
        let decoded = decode_one(&[("__name__", "m"), ("a", ""), ("a", "1")]);
        assert_eq!(decoded.errors, vec!["series 0: duplicate label \"a\""]);
    }

    #[test]
    fn long_label_is_truncated_in_message() {
        let long = "x".repeat(1_000);
        let decoded = decode_one(&[("__name__", "m"), ("time", "1"), (long.as_str(), "\u{1}")]);
        assert_eq!(
            decoded.errors,
            vec!["series 0: label name \"time\" is reserved for the time column"]
        );
        let decoded = decode_one(&[("__name__", "m"), (long.as_str(), "\u{1}")]);
        let message = &decoded.errors[0];
        assert!(message.len() < 200, "{message}");
        assert!(message.contains("\"... value \"\\u{1}\""), "{message}");
    }

    #[test]
    fn decompression_bomb_is_rejected_before_allocating() {
        // Snappy header: varint 1 GiB, then one 1-byte literal. Decoding it would need 1 GiB.
        let body = [0x80, 0x80, 0x80, 0x80, 0x04, 0x00, b'x'];
        assert_eq!(
            snap::raw::decompress_len(&body).expect("snappy header"),
            1 << 30
        );
        match decode(&body, 16 << 20) {
            Err(RemoteWriteError::TooLarge { declared, limit }) => {
                assert_eq!((declared, limit), (1 << 30, 16 << 20));
            }
            other => panic!("expected TooLarge, got {other:?}"),
        }
        let message = decode(&body, 16 << 20)
            .expect_err("request must be rejected")
            .to_string();
        assert_eq!(
            message,
            "declared decoded length 1073741824 exceeds limit 16777216"
        );

        // Above snappy's own 4 GiB ceiling: still the length error, not a format error.
        let body = [0xff, 0xff, 0xff, 0xff, 0x1f];
        let result = decode(&body, usize::MAX);
        assert!(
            matches!(
                result,
                Err(RemoteWriteError::TooLarge {
                    declared: 0x1_ffff_ffff,
                    ..
                })
            ),
            "{result:?}"
        );

        // Exactly at the limit is allowed through to decompression.
        let body = encode(&[(labels(&[("__name__", "up")]), vec![(1, 1.0)])]);
        let len = snap::raw::decompress_len(&body).expect("snappy header");
        assert_eq!(
            decode(&body, len)
                .expect("request must decode")
                .points
                .len(),
            1
        );
        assert!(matches!(
            decode(&body, len - 1),
            Err(RemoteWriteError::TooLarge { .. })
        ));
    }

    #[test]
    fn malformed_bodies_are_request_errors() {
        let err = decode(&[], LIMIT).expect_err("request must be rejected");
        assert!(matches!(err, RemoteWriteError::NotSnappy(_)));
        assert!(err.to_string().starts_with("body not snappy block format"));

        // Header claims 10 bytes, body delivers 1.
        let err = decode(&[0x0a, 0x00, b'x'], LIMIT).expect_err("request must be rejected");
        assert!(matches!(err, RemoteWriteError::NotSnappy(_)), "{err}");

        // Valid snappy, but the protobuf stops in the middle of a field.
        let err =
            decode(&snappy(&[0x0a, 0x05, 0x0a]), LIMIT).expect_err("request must be rejected");
        assert!(matches!(err, RemoteWriteError::Protobuf(_)), "{err}");
        assert!(err.to_string().starts_with("protobuf decode error: "));

        // Invalid UTF-8 in a label name rejects the request (prost checks strings).
        let err = decode(&snappy(&[0x0a, 0x04, 0x0a, 0x02, 0x0a, 0xff]), LIMIT)
            .expect_err("request must be rejected");
        assert!(matches!(err, RemoteWriteError::Protobuf(_)), "{err}");
    }

    fn label_name() -> impl Strategy<Value = String> {
        "[a-zA-Z_][a-zA-Z0-9_]{0,12}".prop_filter("reserved", |n| {
            !matches!(n.as_str(), "time" | "value" | "__name__")
        })
    }

    /// Metric name, tags sorted by name, samples.
    type NamedSeries = (String, Vec<(String, String)>, Vec<(i64, f64)>);

    fn series_strategy() -> impl Strategy<Value = NamedSeries> {
        let max_ms = i64::MAX / 1_000_000;
        (
            "[a-zA-Z_:][a-zA-Z0-9_:]{0,20}",
            prop::collection::btree_map(label_name(), "[^\\p{Cc}]{1,12}", 0..8),
            prop::collection::vec((-max_ms..=max_ms, any::<f64>()), 0..6),
        )
            .prop_map(|(name, tags, samples)| (name, tags.into_iter().collect(), samples))
    }

    proptest! {
        #[test]
        fn encode_decode_round_trip(
            series in prop::collection::vec(series_strategy(), 0..6),
            rotate in 0usize..16,
        ) {
            let mut expected = Vec::new();
            let mut input: Vec<Series> = Vec::new();
            for (name, tags, samples) in &series {
                for &(ms, v) in samples {
                    // prost writes no value when it `== 0.0`, so -0.0 comes back as 0.0.
                    let v = if v == 0.0 { 0.0 } else { v };
                    expected.push(Point {
                        table: name.clone(),
                        tags: tags.clone(),
                        fields: vec![("value".into(), FieldValue::F64(v))],
                        time_ns: ms * 1_000_000,
                    });
                }
                // Put __name__ anywhere and the other labels out of order.
                let mut labels = tags.clone();
                labels.reverse();
                labels.push(("__name__".into(), name.clone()));
                let len = labels.len();
                labels.rotate_left(rotate % len);
                input.push((labels, samples.clone()));
            }
            let decoded = decode(&encode(&input), usize::MAX).expect("request must decode");
            prop_assert!(decoded.errors.is_empty(), "{:?}", decoded.errors);
            prop_assert_eq!(decoded.series, series.len());
            prop_assert_eq!(decoded.samples, expected.len());
            prop_assert_eq!(comparable(&decoded.points), comparable(&expected));
        }

        #[test]
        fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..2048)) {
            let _ = decode(&body, LIMIT);
        }

        #[test]
        fn arbitrary_compressed_bytes_never_panic(
            raw in prop::collection::vec(any::<u8>(), 0..2048),
        ) {
            let _ = decode(&snappy(&raw), LIMIT);
        }

        #[test]
        fn mutated_requests_never_panic(
            series in prop::collection::vec(series_strategy(), 1..4),
            flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        ) {
            let input: Vec<Series> = series
                .into_iter()
                .map(|(name, mut tags, samples)| {
                    tags.push(("__name__".into(), name));
                    (tags, samples)
                })
                .collect();
            let body = encode(&input);
            let mut raw = snap::raw::Decoder::new().decompress_vec(&body).expect("decompress");
            for (at, byte) in flips {
                let i = at.index(raw.len());
                raw[i] = byte;
            }
            let _ = decode(&snappy(&raw), LIMIT);
        }
    }
}
