//! What a WAL record holds: a batch's points ([`codec`]), or the request that made them.
//!
//! Encoding every point of a request was about a twentieth of the server's CPU on the write
//! path, and the request is already in memory: a line-protocol body (the batch's text) or a
//! remote-write body (snappy-compressed, about a quarter of the encoded points' size). Such a
//! record keeps the body with what decoding it needs, plus the caller tags of the points
//! validation refused; replay decodes the body again with the same decoder and drops those.
//! Decoding is a pure function of those inputs, and the tags (a line number, a sample's index)
//! name one point each, so replay gets exactly the points that were acknowledged.
//!
//! Layout: `u32::MAX` (no point count is that large, so a record made by [`codec::encode`]
//! never starts with it), a kind byte, the kind's arguments, the refused tags (`u32` count,
//! `u64` each), then the body to the end.

use crate::batch::Batch;
use crate::decode::{line_protocol, remote_write};
use crate::point::{Point, Precision, codec};
use crate::wal::Tail;

const RAW: [u8; 4] = u32::MAX.to_le_bytes();
const LINE_PROTOCOL: u8 = 1;
const REMOTE_WRITE: u8 = 2;

/// Where a batch came from, when the WAL may keep the request instead of the points.
#[derive(Debug, Clone)]
pub enum Source {
    /// [`line_protocol::parse_body`] with these arguments made the batch; its text is the body.
    LineProtocol {
        /// Timestamp precision of the request.
        precision: Precision,
        /// Time given to lines without a timestamp, in nanoseconds.
        default_time_ns: i64,
    },
    /// [`remote_write::decode_batch`] made the batch from this body, as received.
    RemoteWrite(Vec<u8>),
}

/// A write on its way through the WAL: the batch validation kept, and the body its record ends
/// with, if any (the WAL writes it from here: see [`Tail`]).
#[derive(Debug)]
pub(crate) struct Logged {
    pub(crate) batch: Batch,
    tail: TailOf,
}

#[derive(Debug)]
enum TailOf {
    Nothing,
    /// The batch's text: a line-protocol body.
    Text,
    /// A remote-write body.
    Body(Vec<u8>),
}

impl Drop for Logged {
    /// A remote-write body goes back to the shelf for the next request's body.
    fn drop(&mut self) {
        if let TailOf::Body(body) = &mut self.tail {
            crate::spare::BYTES.put(std::mem::take(body));
        }
    }
}

impl Tail for Logged {
    fn tail(&self) -> &[u8] {
        match &self.tail {
            TailOf::Nothing => &[],
            TailOf::Text => self.batch.whole_text().map_or(&[], str::as_bytes),
            TailOf::Body(body) => body,
        }
    }
}

/// The record for the points of `batch` (what validation kept), made from `source` where it
/// can be (the batch's points minus those tagged in `refused`): the record's own bytes, and the
/// batch with the body the record ends with.
pub(crate) fn encode(batch: Batch, refused: &[usize], source: Option<Source>) -> (Vec<u8>, Logged) {
    let (args, tail) = match source {
        Some(Source::LineProtocol {
            precision,
            default_time_ns,
        }) if batch.whole_text().is_some() => {
            let mut args = vec![LINE_PROTOCOL, precision_code(precision)];
            args.extend_from_slice(&default_time_ns.to_le_bytes());
            (args, TailOf::Text)
        }
        Some(Source::RemoteWrite(body)) => (vec![REMOTE_WRITE], TailOf::Body(body)),
        _ => {
            let mut out = Vec::with_capacity(batch.len() * 48 + batch.text_len());
            codec::encode_batch(&batch, &mut out);
            let tail = TailOf::Nothing;
            return (out, Logged { batch, tail });
        }
    };
    let mut out = Vec::with_capacity(RAW.len() + args.len() + 4 + refused.len() * 8);
    out.extend_from_slice(&RAW);
    out.extend_from_slice(&args);
    out.extend_from_slice(
        &u32::try_from(refused.len())
            .unwrap_or(u32::MAX)
            .to_le_bytes(),
    );
    for tag in refused {
        out.extend_from_slice(&(*tag as u64).to_le_bytes());
    }
    (out, Logged { batch, tail })
}

/// The points of a record, or `None` if it does not decode.
pub(crate) fn decode(payload: &[u8]) -> Option<Vec<Point>> {
    let Some(rest) = payload.strip_prefix(&RAW) else {
        return codec::decode(payload);
    };
    let (&kind, rest) = rest.split_first()?;
    let (mut batch, refused) = match kind {
        LINE_PROTOCOL => {
            let (&precision, rest) = rest.split_first()?;
            let (time, rest) = rest.split_first_chunk::<8>()?;
            let (refused, body) = refused_tags(rest)?;
            let parsed = line_protocol::parse_body(
                body.to_vec(),
                precision_of(precision)?,
                i64::from_le_bytes(*time),
            );
            (parsed.batch, refused)
        }
        REMOTE_WRITE => {
            let (refused, body) = refused_tags(rest)?;
            // The body was within the size limit when it was accepted.
            (
                remote_write::decode_batch(body, usize::MAX).ok()?.batch,
                refused,
            )
        }
        _ => return None,
    };
    if !refused.is_empty() {
        batch.retain(|p| refused.binary_search(&p.tag()).is_err());
    }
    Some(batch.iter().map(|p| p.to_point()).collect())
}

/// The refused tags (sorted) and the body after them.
fn refused_tags(bytes: &[u8]) -> Option<(Vec<usize>, &[u8])> {
    let (n, mut rest) = bytes.split_first_chunk::<4>()?;
    let n = u32::from_le_bytes(*n) as usize;
    if n > rest.len() / 8 {
        return None;
    }
    let mut tags = Vec::with_capacity(n);
    for _ in 0..n {
        let (tag, after) = rest.split_first_chunk::<8>()?;
        tags.push(usize::try_from(u64::from_le_bytes(*tag)).ok()?);
        rest = after;
    }
    tags.sort_unstable();
    Some((tags, rest))
}

fn precision_code(p: Precision) -> u8 {
    match p {
        Precision::Nanosecond => 0,
        Precision::Microsecond => 1,
        Precision::Millisecond => 2,
        Precision::Second => 3,
    }
}

fn precision_of(code: u8) -> Option<Precision> {
    Some(match code {
        0 => Precision::Nanosecond,
        1 => Precision::Microsecond,
        2 => Precision::Millisecond,
        3 => Precision::Second,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The payload the WAL writes: the record's bytes, then the tail.
    fn payload(batch: Batch, refused: &[usize], source: Option<Source>) -> Vec<u8> {
        let (mut bytes, logged) = encode(batch, refused, source);
        bytes.extend_from_slice(logged.tail());
        bytes
    }

    fn lp(body: &str) -> (Batch, Source) {
        let parsed =
            line_protocol::parse_body(body.as_bytes().to_vec(), Precision::Second, 7_000_000_000);
        (
            parsed.batch,
            Source::LineProtocol {
                precision: Precision::Second,
                default_time_ns: 7_000_000_000,
            },
        )
    }

    #[test]
    fn a_remote_write_body_goes_back_to_the_shelf_with_its_record() {
        // A size no other test uses, so a parallel test does not take this spare first.
        let mut body = Vec::with_capacity(345_679);
        body.resize(300_000, 7u8);
        let at = body.as_ptr();
        let (_, logged) = encode(Batch::default(), &[], Some(Source::RemoteWrite(body)));
        assert_eq!(logged.tail().len(), 300_000);
        drop(logged);
        // A fresh vector would have the capacity asked for; the spare has the body's.
        let again = crate::spare::BYTES.take(300_000);
        assert_eq!((again.as_ptr(), again.capacity()), (at, 345_679));
        assert!(again.is_empty());
    }

    #[test]
    fn a_line_protocol_record_replays_the_kept_points_only() {
        let body = "cpu,host=a value=1 10\nbad line\ncpu,host=b value=2 11\nmem used=3i\n";
        let (mut batch, source) = lp(body);
        let expected: Vec<Point> = batch
            .iter()
            .filter(|p| p.tag() != 3)
            .map(|p| p.to_point())
            .collect();
        batch.retain(|p| p.tag() != 3);
        let record = payload(batch, &[3], Some(source));
        assert!(record.starts_with(&RAW), "the body itself is kept");
        assert!(record.ends_with(body.as_bytes()));
        let points = decode(&record).expect("decodes");
        assert_eq!(points, expected);
        assert_eq!(points.len(), 2);
        // The line without a timestamp gets the request's time, not replay's.
        let (batch, source) = lp("mem used=3i\n");
        let points = decode(&payload(batch, &[], Some(source))).expect("decodes");
        assert_eq!(points[0].time_ns, 7_000_000_000);
    }

    #[test]
    fn a_remote_write_record_keeps_the_compressed_body() {
        let series: Vec<remote_write::Series> = vec![
            (
                vec![("__name__".into(), "up".into()), ("job".into(), "a".into())],
                vec![(1_000, 1.0), (2_000, 0.0)],
            ),
            (
                vec![("__name__".into(), "up".into()), ("job".into(), "b".into())],
                vec![(1_000, 1.0)],
            ),
        ];
        let body = remote_write::encode(&series);
        let mut batch = remote_write::decode_batch(&body, usize::MAX)
            .expect("decodes")
            .batch;
        batch.retain(|p| p.tag() != 1);
        let expected: Vec<Point> = batch.iter().map(|p| p.to_point()).collect();
        let record = payload(batch, &[1], Some(Source::RemoteWrite(body.clone())));
        assert!(record.ends_with(&body));
        assert_eq!(decode(&record).expect("decodes"), expected);
        assert_eq!(expected.len(), 2);
    }

    #[test]
    fn without_a_source_or_a_whole_body_the_points_are_encoded() {
        let points = vec![(
            0,
            Point {
                table: "t".into(),
                tags: vec![],
                fields: vec![("f".into(), crate::point::FieldValue::F64(1.0))],
                time_ns: 5,
            },
        )];
        let batch = Batch::from_points(points.clone());
        let source = Source::LineProtocol {
            precision: Precision::Nanosecond,
            default_time_ns: 0,
        };
        for s in [None, Some(source)] {
            let record = payload(batch.clone(), &[], s);
            assert!(!record.starts_with(&RAW));
            assert_eq!(decode(&record), Some(vec![points[0].1.clone()]));
        }
    }

    #[test]
    fn a_damaged_raw_record_does_not_decode() {
        let (batch, source) = lp("cpu value=1 1\n");
        let record = payload(batch, &[], Some(source));
        assert_eq!(decode(&record[..5]), None, "cut after the kind");
        let mut bad_kind = record.clone();
        bad_kind[4] = 9;
        assert_eq!(decode(&bad_kind), None);
        let mut bad_precision = record.clone();
        bad_precision[5] = 9;
        assert_eq!(decode(&bad_precision), None);
        let mut too_many_refused = record;
        too_many_refused[14..18].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode(&too_many_refused), None);
    }
}
