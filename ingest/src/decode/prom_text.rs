//! Prometheus text exposition format 0.0.4 and OpenMetrics 1.0 text, as scraped from `/metrics`.
//!
//! ```text
//! # HELP http_requests_total Requests served.
//! # TYPE http_requests_total counter
//! http_requests_total{method="post",code="200"} 1027 1395066363000
//! ```
//!
//! Every sample becomes one [`Point`] the way remote write maps them: table = the metric name,
//! tags = the labels sorted by name (an empty value means "absent" and is dropped), one field
//! `value` (float), time = the sample's timestamp or `default_time_ns`.
//!
//! * Lines are separated by `\n`; a trailing `\r` is dropped; blank lines are skipped.
//! * `# HELP`, `# TYPE` and other `#` comments are skipped; `# EOF` (OpenMetrics) ends the body.
//! * Label values escape `\\`, `\"` and `\n`; any other backslash is kept literally. A trailing
//!   comma in the label set is allowed.
//! * Values are floats, including `NaN`, `+Inf` and `-Inf`.
//! * Timestamps are optional: integer milliseconds in the Prometheus text format. A body ending
//!   with `# EOF` is OpenMetrics, whose timestamps are (possibly fractional) seconds.
//! * OpenMetrics exemplars (` # {labels} value [timestamp]` after the sample) are ignored.
//! * Histogram and summary series (`_bucket{le="..."}`, `_sum`, `_count`, `{quantile="..."}`)
//!   are kept as-is, each its own table.
//!
//! Every line is parsed on its own: a bad line becomes a [`LineError`] with its 1-based number
//! and never affects the others. The parser never panics on any input.

use crate::decode::line_protocol::LineError;
use crate::point::{FieldValue, Point};

/// The name of the one field every sample carries.
const VALUE_FIELD: &str = "value";
/// Label names that would collide with a point's own columns or the metric name.
const RESERVED_LABELS: [&str; 3] = ["time", VALUE_FIELD, "__name__"];
/// Longest token quoted in an error message, in characters.
const QUOTE_MAX_CHARS: usize = 64;

/// Decodes an exposition body into points and per-line errors. Samples without a timestamp
/// get `default_time_ns`.
pub fn parse(body: &[u8], default_time_ns: i64) -> (Vec<Point>, Vec<LineError>) {
    let openmetrics = is_openmetrics(body);
    let mut points = Vec::new();
    let mut errors = Vec::new();
    for (index, raw) in body.split(|&c| c == b'\n').enumerate() {
        let line = index + 1;
        let raw = raw.strip_suffix(b"\r".as_slice()).unwrap_or(raw);
        let text = match std::str::from_utf8(raw) {
            Ok(text) => text,
            Err(err) => {
                let at = err.valid_up_to();
                let byte = raw.get(at).copied().unwrap_or_default();
                errors.push(LineError {
                    line,
                    message: format!("invalid utf-8: byte 0x{byte:02x} at column {}", at + 1),
                });
                continue;
            }
        };
        let text = text.trim_matches(is_blank);
        if text.is_empty() {
            continue;
        }
        if let Some(comment) = text.strip_prefix('#') {
            if comment.trim_matches(is_blank) == "EOF" {
                break;
            }
            continue;
        }
        match parse_sample(text, openmetrics, default_time_ns) {
            Ok(point) => points.push(point),
            Err(message) => errors.push(LineError { line, message }),
        }
    }
    (points, errors)
}

/// True if the body's last non-blank line is `# EOF`, i.e. the body is OpenMetrics.
fn is_openmetrics(body: &[u8]) -> bool {
    body.split(|&c| c == b'\n')
        .map(|l| l.strip_suffix(b"\r".as_slice()).unwrap_or(l))
        .rfind(|l| l.iter().any(|&c| c != b' ' && c != b'\t'))
        .is_some_and(|l| {
            std::str::from_utf8(l).is_ok_and(|t| {
                t.trim_matches(is_blank)
                    .strip_prefix('#')
                    .is_some_and(|c| c.trim_matches(is_blank) == "EOF")
            })
        })
}

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// Parses `name[{labels}] value [timestamp] [# exemplar]`.
fn parse_sample(text: &str, openmetrics: bool, default_time_ns: i64) -> Result<Point, String> {
    let name_end = text.find(|c: char| !is_name_char(c)).unwrap_or(text.len());
    let (name, mut rest) = text.split_at(name_end);
    if !name.starts_with(is_name_start) {
        return Err(format!("invalid metric name at {}", quote(text)));
    }
    let mut tags = Vec::new();
    if let Some(after) = rest.strip_prefix('{') {
        rest = parse_labels(after, &mut tags)?;
    }
    if !rest.starts_with(is_blank) {
        return Err(format!(
            "expected a space and a value after {}, found {}",
            quote(name),
            quote(rest)
        ));
    }
    // An OpenMetrics exemplar follows ` # `; it is not part of the sample.
    let sample = rest.split_once(" #").map_or(rest, |(s, _)| s);
    let mut parts = sample.split(is_blank).filter(|s| !s.is_empty());
    let value_text = parts
        .next()
        .ok_or_else(|| format!("missing value for {}", quote(name)))?;
    let value = parse_value(value_text)?;
    let time_ns = match parts.next() {
        None => default_time_ns,
        Some(ts) => parse_timestamp(ts, openmetrics)?,
    };
    if let Some(extra) = parts.next() {
        return Err(format!(
            "unexpected text {} after the timestamp",
            quote(extra)
        ));
    }
    tags.sort_by(|a: &(String, String), b| a.0.cmp(&b.0));
    if let Some(pair) = tags.windows(2).find(|pair| pair[0].0 == pair[1].0) {
        return Err(format!("duplicate label {}", quote(&pair[0].0)));
    }
    tags.retain(|(_, v)| !v.is_empty());
    Ok(Point {
        table: name.to_string(),
        tags,
        fields: vec![(VALUE_FIELD.to_string(), FieldValue::F64(value))],
        time_ns,
    })
}

/// Parses the label set after `{` up to and including `}`; returns the text after it.
fn parse_labels<'a>(mut s: &'a str, tags: &mut Vec<(String, String)>) -> Result<&'a str, String> {
    loop {
        s = s.trim_start_matches(is_blank);
        if let Some(after) = s.strip_prefix('}') {
            return Ok(after);
        }
        let name_end = s.find(|c: char| !is_name_char(c)).unwrap_or(s.len());
        let (name, after) = s.split_at(name_end);
        if name.is_empty() || !name.starts_with(is_name_start) || name.contains(':') {
            return Err(format!("invalid label name at {}", quote(s)));
        }
        if RESERVED_LABELS.contains(&name) {
            return Err(format!("label name {} is reserved", quote(name)));
        }
        let after = after.trim_start_matches(is_blank);
        let after = after
            .strip_prefix('=')
            .ok_or_else(|| format!("expected '=' after label {}", quote(name)))?;
        let after = after.trim_start_matches(is_blank);
        let after = after
            .strip_prefix('"')
            .ok_or_else(|| format!("expected '\"' to open the value of label {}", quote(name)))?;
        let (value, after) = parse_quoted(after)
            .ok_or_else(|| format!("unterminated value of label {}", quote(name)))?;
        tags.push((name.to_string(), value));
        let after = after.trim_start_matches(is_blank);
        if let Some(next) = after.strip_prefix(',') {
            s = next;
        } else if after.starts_with('}') {
            s = after;
        } else {
            return Err(format!(
                "expected ',' or '}}' after label {}, found {}",
                quote(name),
                quote(after)
            ));
        }
    }
}

/// Reads an escaped label value up to its closing quote; returns it and the text after the quote.
fn parse_quoted(s: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, s.get(i + 1..).unwrap_or_default())),
            '\\' => match chars.next() {
                Some((_, '\\')) => out.push('\\'),
                Some((_, '"')) => out.push('"'),
                Some((_, 'n')) => out.push('\n'),
                Some((_, other)) => {
                    out.push('\\');
                    out.push(other);
                }
                None => return None,
            },
            c => out.push(c),
        }
    }
    None
}

/// A sample value: a Go-style float, `NaN`, `+Inf`, `-Inf`.
fn parse_value(s: &str) -> Result<f64, String> {
    let lower = s.to_ascii_lowercase();
    match lower.as_str() {
        "nan" => return Ok(f64::NAN),
        "+inf" | "inf" => return Ok(f64::INFINITY),
        "-inf" => return Ok(f64::NEG_INFINITY),
        _ => {}
    }
    // Rust also accepts spellings such as `infinity`; only digits-based forms remain here.
    if lower.contains("inf") || lower.contains("nan") {
        return Err(format!("invalid value {}", quote(s)));
    }
    s.parse::<f64>()
        .map_err(|_| format!("invalid value {}", quote(s)))
}

/// A timestamp: integer milliseconds, or (OpenMetrics) seconds, possibly fractional.
fn parse_timestamp(s: &str, openmetrics: bool) -> Result<i64, String> {
    let overflow = || format!("timestamp {} overflows nanoseconds", quote(s));
    if openmetrics {
        if let Some(ns) = decimal_seconds_ns(s) {
            return ns.ok_or_else(overflow);
        }
        let secs: f64 = s
            .parse()
            .map_err(|_| format!("invalid timestamp {}", quote(s)))?;
        let ns = (secs * 1e9).round();
        if !ns.is_finite() || ns >= i64::MAX as f64 || ns <= i64::MIN as f64 {
            return Err(overflow());
        }
        // In range and finite: the conversion is exact enough for a timestamp.
        #[allow(clippy::cast_possible_truncation)]
        return Ok(ns as i64);
    }
    let ms: i64 = s.parse().map_err(|_| {
        format!(
            "invalid timestamp {} (expected integer milliseconds)",
            quote(s)
        )
    })?;
    ms.checked_mul(1_000_000).ok_or_else(overflow)
}

/// Exact nanoseconds of `[-]digits[.digits]` seconds (`Some(None)` on overflow); `None` if
/// the text has another shape. Digits beyond nanoseconds are truncated.
fn decimal_seconds_ns(s: &str) -> Option<Option<i64>> {
    let (negative, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if int.is_empty() || !int.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    if !frac.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let Ok(secs) = int.parse::<i64>() else {
        return Some(None);
    };
    let mut frac_ns: i64 = 0;
    for (i, c) in frac.bytes().take(9).enumerate() {
        frac_ns += i64::from(c - b'0') * 10_i64.pow(8 - i as u32);
    }
    let ns = secs
        .checked_mul(1_000_000_000)
        .and_then(|n| n.checked_add(frac_ns));
    Some(if negative { ns.map(|n| -n) } else { ns })
}

/// Debug-quotes a token, truncated for messages.
fn quote(text: &str) -> String {
    match text.char_indices().nth(QUOTE_MAX_CHARS) {
        Some((cut, _)) => format!("{:?}...", &text[..cut]),
        None => format!("{text:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NOW: i64 = 1_700_000_000_000_000_000;

    fn tags(p: &Point) -> Vec<(&str, &str)> {
        p.tags
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    fn value(p: &Point) -> f64 {
        match p.fields.as_slice() {
            [(name, FieldValue::F64(v))] if name == "value" => *v,
            other => panic!("unexpected fields {other:?}"),
        }
    }

    #[test]
    fn parses_a_typical_exposition() {
        let body = "\
# HELP http_requests_total The total number of HTTP requests.
# TYPE http_requests_total counter
http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000
http_requests_total{method=\"post\",code=\"400\"}    3 1395066363000

# A plain comment.
metric_without_timestamp_and_labels 12.47
something_weird{problem=\"division by zero\"} +Inf -3982045
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{le=\"0.05\"} 24054
http_request_duration_seconds_bucket{le=\"+Inf\"} 144320
http_request_duration_seconds_sum 53423
http_request_duration_seconds_count 144320
rpc_duration_seconds{quantile=\"0.5\",} 4773
nan_gauge NaN
neg_gauge -Inf
";
        let (points, errors) = parse(body.as_bytes(), NOW);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(points.len(), 11);
        let p = &points[0];
        assert_eq!(p.table, "http_requests_total");
        assert_eq!(tags(p), [("code", "200"), ("method", "post")]);
        assert_eq!(value(p), 1027.0);
        assert_eq!(p.time_ns, 1_395_066_363_000_000_000);
        assert_eq!(value(&points[1]), 3.0);
        assert_eq!(points[2].table, "metric_without_timestamp_and_labels");
        assert!(points[2].tags.is_empty());
        assert_eq!(points[2].time_ns, NOW);
        assert_eq!(value(&points[3]), f64::INFINITY);
        assert_eq!(points[3].time_ns, -3_982_045_000_000);
        assert_eq!(points[4].table, "http_request_duration_seconds_bucket");
        assert_eq!(tags(&points[4]), [("le", "0.05")]);
        assert_eq!(tags(&points[5]), [("le", "+Inf")]);
        assert_eq!(points[6].table, "http_request_duration_seconds_sum");
        assert_eq!(tags(&points[8]), [("quantile", "0.5")]);
        assert!(value(&points[9]).is_nan());
        assert_eq!(value(&points[10]), f64::NEG_INFINITY);
    }

    #[test]
    fn unescapes_label_values() {
        let body = r#"msdos_file_access_time_seconds{path="C:\\DIR\\FILE.TXT",error="Cannot find file:\n\"FILE.TXT\"",odd="a\tb"} 1.458255915e9"#;
        let (points, errors) = parse(body.as_bytes(), NOW);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            tags(&points[0]),
            [
                ("error", "Cannot find file:\n\"FILE.TXT\""),
                ("odd", "a\\tb"),
                ("path", "C:\\DIR\\FILE.TXT"),
            ]
        );
        assert_eq!(value(&points[0]), 1.458_255_915e9);
    }

    #[test]
    fn bad_lines_are_reported_by_number_and_the_rest_kept() {
        let body = "good 1\nbad{a=\"x\" 2\n3starts_with_digit 1\nalso_good{b=\"y\"} 2\nno_value\nbad_value abc\ndup{a=\"1\",a=\"2\"} 1\nts 1 notanumber\nreserved{time=\"1\"} 1\r\n";
        let (points, errors) = parse(body.as_bytes(), NOW);
        let names: Vec<&str> = points.iter().map(|p| p.table.as_str()).collect();
        assert_eq!(names, ["good", "also_good"]);
        let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, [2, 3, 5, 6, 7, 8, 9], "{errors:?}");
        assert!(errors[4].message.contains("duplicate label"), "{errors:?}");
        assert!(errors[6].message.contains("reserved"), "{errors:?}");
    }

    #[test]
    fn empty_label_values_are_absent() {
        let (points, errors) = parse(b"m{a=\"\",b=\"1\"} 1", NOW);
        assert!(errors.is_empty());
        assert_eq!(tags(&points[0]), [("b", "1")]);
    }

    #[test]
    fn openmetrics_uses_seconds_and_stops_at_eof() {
        let body = "\
# TYPE foo counter
# UNIT foo seconds
foo_total{a=\"b\"} 17.0 1520879607.789 # {trace_id=\"KOO5S4vxi0o\"} 0.67
foo_created 1520430000.123
bar 1 1520879607
# EOF
";
        let (points, errors) = parse(body.as_bytes(), NOW);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(points.len(), 3);
        assert_eq!(points[0].table, "foo_total");
        assert_eq!(value(&points[0]), 17.0);
        assert_eq!(points[0].time_ns, 1_520_879_607_789_000_000);
        assert_eq!(points[1].time_ns, NOW);
        assert_eq!(points[2].time_ns, 1_520_879_607_000_000_000);

        let (points, _) = parse(b"a 1\n# EOF\nb 2\n", NOW);
        assert_eq!(points.len(), 1);
    }

    #[test]
    fn invalid_utf8_is_a_line_error() {
        let (points, errors) = parse(b"ok 1\nm{a=\"\xff\"} 1\n", NOW);
        assert_eq!(points.len(), 1);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].line, 2);
        assert!(errors[0].message.contains("utf-8"));
    }

    #[test]
    fn timestamp_overflow_is_an_error() {
        let (points, errors) = parse(b"m 1 9223372036854775807", NOW);
        assert!(points.is_empty());
        assert!(errors[0].message.contains("overflows"), "{errors:?}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        #[test]
        fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..512)) {
            let (points, errors) = parse(&body, NOW);
            let lines = body.split(|&c| c == b'\n').count();
            prop_assert!(points.len() + errors.len() <= lines);
        }

        #[test]
        fn exposition_like_text_never_panics(body in "[a-z_{}=\",# \\\\\n.0-9+IfNa-]{0,200}") {
            let _ = parse(body.as_bytes(), NOW);
        }

        #[test]
        fn label_values_round_trip(v in "\\PC{0,20}") {
            let escaped = v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
            let body = format!("m{{l=\"{escaped}\"}} 1");
            let (points, errors) = parse(body.as_bytes(), NOW);
            prop_assert!(errors.is_empty(), "{:?}", errors);
            let want: Vec<(String, String)> = if v.is_empty() { vec![] } else { vec![("l".into(), v)] };
            prop_assert_eq!(&points[0].tags, &want);
        }
    }
}
