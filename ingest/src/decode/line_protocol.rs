//! Influx line protocol.
//!
//! Follows the InfluxDB v2 line protocol reference:
//!
//! ```text
//! <measurement>[,<tag_key>=<tag_value>...] <field_key>=<field_value>[,<field_key>=<field_value>...] [<timestamp>]
//! ```
//!
//! * Lines are separated by `\n`; a trailing `\r` is dropped. Blank lines and lines whose first
//!   non-blank character is `#` are skipped. Leading and trailing spaces/tabs are ignored, and
//!   runs of spaces may separate the three sections.
//! * Escapes: the measurement escapes `,` and space; tag keys, tag values and field keys escape
//!   `,`, `=` and space; string field values escape `"` and `\`. In every element `\\` is one
//!   backslash and a backslash before any other character is literal (the reference's "escaping
//!   backslashes" table).
//! * Field values: float (`1`, `-1.5e10`; no `inf`/`NaN`), integer `1i`, unsigned `1u`, boolean
//!   (`t T true True TRUE f F false False FALSE`) or double-quoted string (at most 64 KiB).
//! * Timestamp: optional integer in the request precision, converted to nanoseconds; the result
//!   must lie in the reference's range `-9223372036854775806..=9223372036854775806`.
//! * Names must not be empty, must not contain control characters and must not begin with `_`
//!   (reserved by the reference); `time` is not allowed as a tag or field key; tag values must
//!   not be empty; duplicate tag or field keys, and a key used as both tag and field, are errors.
//!
//! Every line is parsed on its own: a bad line becomes a [`LineError`] and never affects the
//! lines around it. The parser is a single forward pass over each line and never panics.

use std::fmt::Write as _;

use crate::batch::{Batch, Span, ValueRef};
use crate::point::{FieldValue, Point, Precision};

/// Smallest timestamp the reference accepts, in nanoseconds.
const MIN_TIME_NS: i64 = i64::MIN + 2;
/// Largest timestamp the reference accepts, in nanoseconds.
const MAX_TIME_NS: i64 = i64::MAX - 1;
/// Longest string field value (after unescaping), in bytes: the reference's 64 KB limit.
const MAX_STRING_BYTES: usize = 64 * 1024;
/// Longest token quoted in an error message, in characters.
const QUOTE_MAX_CHARS: usize = 64;

/// One rejected line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    /// 1-based line number within the request body.
    pub line: usize,
    /// Lowercase description naming the problem and the offending token.
    pub message: String,
}

impl std::fmt::Display for LineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// The result of decoding one request body: the good lines' points and the bad lines' errors.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ParsedLines {
    /// Points in body order, each with its 1-based line number.
    pub points: Vec<(usize, Point)>,
    /// One error per rejected line, in body order.
    pub errors: Vec<LineError>,
}

/// [`ParsedLines`] with the points in a [`Batch`] (tagged by line number): the write path's form.
#[derive(Debug, Clone, Default)]
pub struct ParsedBatch {
    /// Points in body order, each tagged with its 1-based line number.
    pub batch: Batch,
    /// One error per rejected line, in body order.
    pub errors: Vec<LineError>,
}

/// Decodes a line-protocol body. Timestamps are read in `precision` and converted to
/// nanoseconds; lines without one get `default_time_ns` (already in nanoseconds).
pub fn parse(body: &[u8], precision: Precision, default_time_ns: i64) -> ParsedLines {
    let parsed = parse_batch(body, precision, default_time_ns);
    ParsedLines {
        points: parsed.batch.to_points(),
        errors: parsed.errors,
    }
}

/// [`parse`] into a [`Batch`]: no allocation per line.
pub fn parse_batch(body: &[u8], precision: Precision, default_time_ns: i64) -> ParsedBatch {
    parse_body(body.to_vec(), precision, default_time_ns)
}

/// [`parse_batch`] of a body the batch may keep: a body that is UTF-8 throughout (checked
/// once, which is fast) becomes the batch's text without a copy, and names and values without
/// escapes are referenced where they are instead of copied.
pub fn parse_body(body: Vec<u8>, precision: Precision, default_time_ns: i64) -> ParsedBatch {
    let printable = is_printable_ascii(&body);
    let points = body.len() / 100 + 1;
    let (batch, text, bytes) = match String::from_utf8(body) {
        Ok(text) => {
            let text = std::sync::Arc::new(text);
            (
                Batch::over_text(points, std::sync::Arc::clone(&text)),
                Some(text),
                Vec::new(),
            )
        }
        Err(e) => {
            let bytes = e.into_bytes();
            (Batch::with_capacity(points, bytes.len()), None, bytes)
        }
    };
    let whole = text.as_deref().map(String::as_str);
    let body = whole.map_or(bytes.as_slice(), str::as_bytes);
    let mut out = ParsedBatch {
        batch,
        errors: Vec::new(),
    };
    if printable {
        out.batch.set_printable();
    }
    let mut next_line = 0usize;
    // Lines found with memchr (vectorised) rather than a byte-by-byte split.
    let mut rest = Some(body);
    let lines = std::iter::from_fn(move || {
        let b = rest?;
        match memchr::memchr(b'\n', b) {
            Some(i) => {
                rest = b.get(i + 1..);
                b.get(..i)
            }
            None => {
                rest = None;
                Some(b)
            }
        }
    });
    for (index, raw) in lines.enumerate() {
        let line = index + 1;
        let line_start = next_line;
        next_line += raw.len() + 1;
        let raw = raw.strip_suffix(b"\r".as_slice()).unwrap_or(raw);
        let Some(start) = raw.iter().position(|&c| !is_blank(c)) else {
            continue;
        };
        if raw.get(start) == Some(&b'#') {
            continue;
        }
        let end = raw
            .iter()
            .rposition(|&c| !is_blank(c))
            .map_or(raw.len(), |i| i + 1);
        let trimmed = raw.get(start..end).unwrap_or_default();
        let in_text = whole.and_then(|w| w.get(line_start + start..line_start + end));
        let text = match in_text.map_or_else(|| std::str::from_utf8(trimmed), Ok) {
            Ok(text) => text,
            Err(err) => {
                let at = err.valid_up_to();
                let byte = trimmed.get(at).copied().unwrap_or_default();
                out.errors.push(LineError {
                    line,
                    message: format!(
                        "invalid utf-8: byte 0x{byte:02x} at column {}",
                        start + at + 1
                    ),
                });
                continue;
            }
        };
        let mark = out.batch.mark();
        let at = ParsedLine {
            number: line,
            text,
            offset: in_text.map(|_| line_start + start),
            printable,
        };
        if let Err(message) = parse_line(&mut out.batch, at, precision, default_time_ns) {
            out.batch.rollback(mark);
            out.errors.push(LineError { line, message });
        }
    }
    out
}

/// Encodes a point as one line (no trailing newline) with a nanosecond timestamp, escaping as
/// needed; floats use Rust's shortest round-tripping form. The line parses back to an equal
/// point if the point follows the decoder's rules: no newline in string values, no NaN or
/// infinite floats, a measurement that does not start with `#` (it would read as a comment),
/// and at least one field.
pub fn encode_point(p: &Point) -> String {
    let mut out = String::with_capacity(64);
    push_escaped(&mut out, &p.table, Ctx::Measurement);
    for (key, value) in &p.tags {
        out.push(',');
        push_escaped(&mut out, key, Ctx::Key);
        out.push('=');
        push_escaped(&mut out, value, Ctx::Key);
    }
    out.push(' ');
    for (i, (key, value)) in p.fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_escaped(&mut out, key, Ctx::Key);
        out.push('=');
        // Writing to a String cannot fail.
        let _ = match value {
            FieldValue::F64(v) => write!(out, "{v:?}"),
            FieldValue::I64(v) => write!(out, "{v}i"),
            FieldValue::U64(v) => write!(out, "{v}u"),
            FieldValue::Bool(v) => write!(out, "{v}"),
            FieldValue::Str(s) => {
                out.push('"');
                push_escaped_string(&mut out, s);
                out.push('"');
                Ok(())
            }
        };
    }
    let _ = write!(out, " {}", p.time_ns);
    out
}

/// Which element a token belongs to; decides which characters a backslash escapes.
#[derive(Debug, Clone, Copy)]
enum Ctx {
    /// Measurement: `,` and space.
    Measurement,
    /// Tag key, tag value or field key: `,`, `=` and space.
    Key,
    /// String field value: `"`.
    Str,
}

impl Ctx {
    /// Whether `\` followed by `c` is an escape sequence. Every escapable character other than
    /// the backslash itself ends the token when unescaped.
    #[inline]
    fn escapable(self, c: u8) -> bool {
        match self {
            Ctx::Measurement => matches!(c, b'\\' | b',' | b' '),
            Ctx::Key => matches!(c, b'\\' | b',' | b' ' | b'='),
            Ctx::Str => matches!(c, b'\\' | b'"'),
        }
    }
}

/// Space or tab.
#[inline]
fn is_blank(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

/// First index at or after `i` that is not a blank.
fn skip_blanks(b: &[u8], mut i: usize) -> usize {
    while b.get(i).is_some_and(|&c| is_blank(c)) {
        i += 1;
    }
    i
}

/// Scans a token from `start` to its first unescaped delimiter (or the end). Returns the end
/// index and whether the token contains an escape sequence.
#[inline]
fn scan(b: &[u8], start: usize, ctx: Ctx) -> (usize, bool) {
    let mut i = start;
    let mut escaped = false;
    loop {
        // The next backslash or delimiter, found over the slice (no bounds check per byte).
        let Some(at) = b
            .get(i..)
            .and_then(|rest| rest.iter().position(|&c| c == b'\\' || ctx.escapable(c)))
        else {
            return (b.len(), escaped);
        };
        i += at;
        if b.get(i) != Some(&b'\\') {
            return (i, escaped);
        }
        if b.get(i + 1).is_some_and(|&n| ctx.escapable(n)) {
            escaped = true;
            i += 2;
        } else {
            i += 1;
        }
    }
}

/// `line[start..end]`; the indices always sit on ASCII delimiters, so the fallback (which only
/// ever leads to an error) is never taken.
#[inline]
fn sub(line: &str, start: usize, end: usize) -> &str {
    line.get(start..end).unwrap_or_default()
}

/// Appends the value of a token scanned with [`scan`] in the same context.
fn unescape_into(out: &mut String, raw: &str, escaped: bool, ctx: Ctx) {
    if !escaped {
        out.push_str(raw);
        return;
    }
    let mut rest = raw;
    while let Some(i) = rest.find('\\') {
        out.push_str(rest.get(..i).unwrap_or_default());
        let after = rest.get(i + 1..).unwrap_or_default();
        match after.as_bytes().first() {
            Some(&c) if ctx.escapable(c) => {
                out.push(char::from(c));
                rest = after.get(1..).unwrap_or_default();
            }
            _ => {
                out.push('\\');
                rest = after;
            }
        }
    }
    out.push_str(rest);
}

/// Appends a measurement, tag key, tag value or field key with the escapes `ctx` needs. A
/// backslash is doubled only where it would otherwise start an escape sequence (or end the
/// token), so names with ordinary backslashes such as `C:\dir` are written as they are.
fn push_escaped(out: &mut String, s: &str, ctx: Ctx) {
    if !s.bytes().any(|c| ctx.escapable(c)) {
        out.push_str(s);
        return;
    }
    let bytes = s.as_bytes();
    for (i, ch) in s.char_indices() {
        if ch == '\\' {
            if bytes.get(i + 1).is_none_or(|&n| ctx.escapable(n)) {
                out.push_str("\\\\");
            } else {
                out.push('\\');
            }
        } else if u8::try_from(ch).is_ok_and(|c| ctx.escapable(c)) {
            out.push('\\');
            out.push(ch);
        } else {
            out.push(ch);
        }
    }
}

/// Appends the inside of a string field value: `"` and `\` escaped.
fn push_escaped_string(out: &mut String, s: &str) {
    if !s.bytes().any(|c| c == b'"' || c == b'\\') {
        out.push_str(s);
        return;
    }
    for ch in s.chars() {
        if ch == '"' || ch == '\\' {
            out.push('\\');
        }
        out.push(ch);
    }
}

/// A token for an error message: Rust-quoted (control characters escaped), cut to
/// [`QUOTE_MAX_CHARS`] characters.
fn quote(text: &str) -> String {
    match text.char_indices().nth(QUOTE_MAX_CHARS) {
        Some((cut, _)) => format!("{:?}...", text.get(..cut).unwrap_or_default()),
        None => format!("{text:?}"),
    }
}

/// Whether `body` holds only printable ASCII and newlines: then no token of it can contain a
/// control character, and the per-token check is skipped. Written as a branch-free fold over
/// blocks so that it vectorises; anything else (tabs, carriage returns, non-ASCII) takes the
/// per-token check.
fn is_printable_ascii(body: &[u8]) -> bool {
    body.chunks(256).all(|block| {
        block.iter().fold(true, |ok, &c| {
            ok & ((0x20..0x7f).contains(&c) | (c == b'\n'))
        })
    })
}

/// Whether `s` contains a control character (C0, DEL or C1).
pub(crate) fn has_control(s: &str) -> bool {
    // One pass over the bytes; only text with non-ASCII (where C1 controls may hide) decodes.
    let mut ascii = true;
    for c in s.bytes() {
        if c < 0x20 || c == 0x7f {
            return true;
        }
        ascii &= c < 0x80;
    }
    !ascii && s.chars().any(char::is_control)
}

/// Rules shared by measurements, tag keys and field keys, checked on the raw token (escapes
/// never produce or hide a control character or a leading `_`).
fn check_name(kind: &str, raw: &str, printable: bool) -> Result<(), String> {
    if !printable && has_control(raw) {
        return Err(format!(
            "{kind} {} contains a control character",
            quote(raw)
        ));
    }
    if raw.starts_with('_') {
        return Err(format!(
            "{kind} {} must not begin with \"_\" (reserved)",
            quote(raw)
        ));
    }
    Ok(())
}

/// [`check_name`] plus the reserved key `time`.
fn check_key(kind: &str, raw: &str, printable: bool) -> Result<(), String> {
    check_name(kind, raw, printable)?;
    if raw == "time" {
        return Err(format!("{kind} \"time\" is not allowed"));
    }
    Ok(())
}

/// One trimmed line and where it is.
#[derive(Clone, Copy)]
struct ParsedLine<'a> {
    /// 1-based line number.
    number: usize,
    /// The line.
    text: &'a str,
    /// Its offset in the batch's text, when the batch was made over the body.
    offset: Option<usize>,
    /// The whole body is printable ASCII: no token needs a control-character check.
    printable: bool,
}

/// Parses one trimmed, non-empty, non-comment line into `batch` as a point tagged `line_no`.
/// On an error the caller takes back what was written.
fn parse_line(
    batch: &mut Batch,
    at: ParsedLine<'_>,
    precision: Precision,
    default_time_ns: i64,
) -> Result<(), String> {
    let line = at.text;
    let b = line.as_bytes();
    let mark = batch.mark();
    // A token's value in the batch: where it stands in the text when the line is part of it
    // and the token has no escapes, else unescaped into the text.
    let token =
        |batch: &mut Batch, start: usize, end: usize, escaped: bool, ctx: Ctx| match at.offset {
            Some(off) if !escaped => batch.span(off + start, off + end),
            _ => batch.push_with(|out| unescape_into(out, sub(line, start, end), escaped, ctx)),
        };

    // Measurement.
    let (m_end, m_escaped) = scan(b, 0, Ctx::Measurement);
    let m_raw = sub(line, 0, m_end);
    if m_raw.is_empty() {
        return Err("missing measurement".to_owned());
    }
    check_name("measurement", m_raw, at.printable)?;

    // Tag set.
    let mut pos = m_end;
    let mut tags_escaped = false;
    while b.get(pos) == Some(&b',') {
        let k_start = pos + 1;
        let (k_end, k_escaped) = scan(b, k_start, Ctx::Key);
        let k_raw = sub(line, k_start, k_end);
        if k_raw.is_empty() {
            return Err(format!("empty tag key in measurement {}", quote(m_raw)));
        }
        if b.get(k_end) != Some(&b'=') {
            return Err(format!("missing \"=\" after tag key {}", quote(k_raw)));
        }
        check_key("tag key", k_raw, at.printable)?;
        let v_start = k_end + 1;
        let (v_end, v_escaped) = scan(b, v_start, Ctx::Key);
        let v_raw = sub(line, v_start, v_end);
        if v_raw.is_empty() {
            return Err(format!("empty value for tag {}", quote(k_raw)));
        }
        if b.get(v_end) == Some(&b'=') {
            return Err(format!(
                "unescaped \"=\" in value {} of tag {}",
                quote(sub(line, v_start, skip_token(b, v_end))),
                quote(k_raw)
            ));
        }
        if !at.printable && has_control(v_raw) {
            return Err(format!(
                "value {} of tag {} contains a control character",
                quote(v_raw),
                quote(k_raw)
            ));
        }
        let k = token(batch, k_start, k_end, k_escaped, Ctx::Key);
        let v = token(batch, v_start, v_end, v_escaped, Ctx::Key);
        batch.add_tag_spans(k, v);
        tags_escaped |= k_escaped || v_escaped;
        pos = v_end;
    }
    let tags_end = pos;

    // Field set.
    if b.get(pos) != Some(&b' ') {
        return Err(format!("missing fields for measurement {}", quote(m_raw)));
    }
    pos = skip_blanks(b, pos);
    loop {
        let (k_end, k_escaped) = scan(b, pos, Ctx::Key);
        let k_raw = sub(line, pos, k_end);
        if k_raw.is_empty() {
            return Err(match batch.field_names_since(mark).last() {
                Some(prev) => format!("empty field key after field {}", quote(prev)),
                None => "empty field key".to_owned(),
            });
        }
        if b.get(k_end) != Some(&b'=') {
            return Err(format!("missing \"=\" after field key {}", quote(k_raw)));
        }
        check_key("field key", k_raw, at.printable)?;
        let key = token(batch, pos, k_end, k_escaped, Ctx::Key);
        let v_end = parse_field_value(batch, line, k_end + 1, k_raw, key)?;
        if b.get(v_end) == Some(&b',') {
            pos = v_end + 1;
        } else {
            pos = v_end;
            break;
        }
    }

    // Timestamp.
    let ts_start = skip_blanks(b, pos);
    let time_ns = if ts_start >= b.len() {
        default_time_ns
    } else {
        let ts_end = b
            .get(ts_start..)
            .and_then(|rest| rest.iter().position(|&c| is_blank(c)))
            .map_or(b.len(), |i| ts_start + i);
        let after = skip_blanks(b, ts_end);
        if after < b.len() {
            return Err(format!(
                "unexpected text {} after timestamp",
                quote(sub(line, after, b.len()))
            ));
        }
        parse_timestamp(sub(line, ts_start, ts_end), precision)?
    };

    // Key rules across the whole line. A sorted tag set without escapes, as it stands in the
    // text, is the series' flat key (`k=v,k=v`): the buffer's lookup needs no copy of it.
    let (sorted, dup) = batch.sort_tags_since(mark);
    if let Some(key) = dup {
        return Err(format!("duplicate tag key {}", quote(key)));
    }
    let flat = match at.offset {
        Some(off) if !tags_escaped && sorted => {
            let first = if tags_end > m_end { m_end + 1 } else { m_end };
            Some(batch.span(off + first, off + tags_end))
        }
        _ => None,
    };
    if let Some(key) = duplicate_field(batch.field_names_since(mark)) {
        return Err(format!("duplicate field key {}", quote(&key)));
    }
    if batch.tags_since(mark).len() > 0
        && let Some(key) = batch
            .field_names_since(mark)
            .find(|key| batch.has_tag_since(mark, key))
    {
        return Err(format!("key {} is used as both tag and field", quote(key)));
    }

    let table = token(batch, 0, m_end, m_escaped, Ctx::Measurement);
    batch.finish(mark, at.number, table, time_ns);
    // Unescaped keys and values cannot hold `,` or `=`: the tags are plain.
    if !tags_escaped {
        batch.set_last_plain(flat);
    }
    Ok(())
}

/// End of the unescaped-delimiter-free run starting at `i` (for quoting a whole bad token).
fn skip_token(b: &[u8], mut i: usize) -> usize {
    while b.get(i).is_some_and(|&c| c != b' ' && c != b',') {
        i += 1;
    }
    i
}

/// The first key that occurs twice, without quadratic work on wide lines.
fn duplicate_field<'a>(keys: impl ExactSizeIterator<Item = &'a str> + Clone) -> Option<String> {
    if keys.len() <= 8 {
        for (i, key) in keys.clone().enumerate() {
            if keys.clone().take(i).any(|prev| prev == key) {
                return Some(key.to_owned());
            }
        }
        None
    } else {
        let mut keys: Vec<&str> = keys.collect();
        keys.sort_unstable();
        keys.windows(2)
            .find(|pair| pair[0] == pair[1])
            .map(|pair| pair[0].to_owned())
    }
}

/// Parses the field value starting at `start` and adds the field (key `key_raw`) to the
/// point under construction; returns the index just past the value, which holds `,`, a space,
/// or is the end of the line.
fn parse_field_value(
    batch: &mut Batch,
    line: &str,
    start: usize,
    key_raw: &str,
    key: Span,
) -> Result<usize, String> {
    let b = line.as_bytes();
    if b.get(start) == Some(&b'"') {
        let body_start = start + 1;
        let (close, escaped) = scan(b, body_start, Ctx::Str);
        if close >= b.len() {
            return Err(format!("unterminated string in field {}", quote(key_raw)));
        }
        let end = close + 1;
        if let Some(&c) = b.get(end)
            && c != b','
            && c != b' '
        {
            return Err(format!(
                "invalid field value {} for field {}: text after closing quote",
                quote(sub(line, start, skip_token(b, end))),
                quote(key_raw)
            ));
        }
        let value = batch.push_with(|out| {
            unescape_into(out, sub(line, body_start, close), escaped, Ctx::Str);
        });
        let len = value.len();
        if len > MAX_STRING_BYTES {
            return Err(format!(
                "string value of field {} is {len} bytes, over the {MAX_STRING_BYTES}-byte limit",
                quote(key_raw),
            ));
        }
        batch.add_str_field_spans(key, value);
        return Ok(end);
    }

    let end = skip_token(b, start);
    let token = sub(line, start, end);
    if token.is_empty() {
        return Err(format!("missing value for field {}", quote(key_raw)));
    }
    match parse_scalar(token) {
        Ok(value) => {
            batch.add_field_span(key, ValueRef::from(&value));
            Ok(end)
        }
        Err(ScalarError::Invalid) => Err(format!(
            "invalid field value {} for field {}",
            quote(token),
            quote(key_raw)
        )),
        Err(ScalarError::OutOfRange(kind)) => Err(format!(
            "{kind} field value {} out of range for field {}",
            quote(token),
            quote(key_raw)
        )),
    }
}

/// Why a non-string field value was rejected.
enum ScalarError {
    /// Not a valid literal of any type.
    Invalid,
    /// A well-formed literal of the named type that does not fit it.
    OutOfRange(&'static str),
}

/// Float, integer, unsigned or boolean literal.
fn parse_scalar(token: &str) -> Result<FieldValue, ScalarError> {
    if let Some(digits) = token.strip_suffix('i') {
        if !is_integer_literal(digits) {
            return Err(ScalarError::Invalid);
        }
        return digits
            .parse()
            .map(FieldValue::I64)
            .map_err(|_| ScalarError::OutOfRange("integer"));
    }
    if let Some(digits) = token.strip_suffix('u') {
        if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
            return Err(ScalarError::Invalid);
        }
        return digits
            .parse()
            .map(FieldValue::U64)
            .map_err(|_| ScalarError::OutOfRange("unsigned"));
    }
    match token {
        "t" | "T" | "true" | "True" | "TRUE" => return Ok(FieldValue::Bool(true)),
        "f" | "F" | "false" | "False" | "FALSE" => return Ok(FieldValue::Bool(false)),
        _ => {}
    }
    if !is_float_literal(token.as_bytes()) {
        return Err(ScalarError::Invalid);
    }
    match token.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(FieldValue::F64(v)),
        Ok(_) => Err(ScalarError::OutOfRange("float")),
        Err(_) => Err(ScalarError::Invalid),
    }
}

/// `-?[0-9]+`.
fn is_integer_literal(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    !digits.is_empty() && digits.bytes().all(|c| c.is_ascii_digit())
}

/// A cheap pre-filter that leaves only decimal literals (no sign but a leading `-`, no `inf`,
/// `nan` or hex) for the standard float parser to validate exactly.
fn is_float_literal(b: &[u8]) -> bool {
    let mut digit = false;
    let mut prev = 0u8;
    for (i, &c) in b.iter().enumerate() {
        match c {
            b'0'..=b'9' => digit = true,
            b'.' | b'e' | b'E' => {}
            b'+' | b'-' => {
                let after_exponent = prev == b'e' || prev == b'E';
                if !(after_exponent || (c == b'-' && i == 0)) {
                    return false;
                }
            }
            _ => return false,
        }
        prev = c;
    }
    digit
}

/// Short name of a precision for messages.
fn precision_name(precision: Precision) -> &'static str {
    match precision {
        Precision::Nanosecond => "ns",
        Precision::Microsecond => "us",
        Precision::Millisecond => "ms",
        Precision::Second => "s",
    }
}

/// Parses a timestamp in `precision` into nanoseconds within the reference's range.
fn parse_timestamp(token: &str, precision: Precision) -> Result<i64, String> {
    // Up to 19 digits (a nanosecond timestamp has 19) cannot overflow a u64: read them in one
    // pass (every line has a timestamp). Anything else, or a value past i64, takes the general
    // path, which also words the errors.
    let b = token.as_bytes();
    if !b.is_empty() && b.len() <= 19 && b.iter().all(u8::is_ascii_digit) {
        let value = b.iter().fold(0u64, |n, &c| n * 10 + u64::from(c - b'0'));
        if let Ok(value) = i64::try_from(value)
            && let Some(ns) = value.checked_mul(precision.to_nanos_factor())
            && (MIN_TIME_NS..=MAX_TIME_NS).contains(&ns)
        {
            return Ok(ns);
        }
    }
    if !is_integer_literal(token) {
        return Err(format!("invalid timestamp {}", quote(token)));
    }
    let out_of_range = || {
        format!(
            "timestamp {} out of range at precision {}",
            quote(token),
            precision_name(precision)
        )
    };
    let value: i64 = token.parse().map_err(|_| out_of_range())?;
    let ns = value
        .checked_mul(precision.to_nanos_factor())
        .ok_or_else(out_of_range)?;
    if !(MIN_TIME_NS..=MAX_TIME_NS).contains(&ns) {
        return Err(out_of_range());
    }
    Ok(ns)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    const DEFAULT_NS: i64 = 1_700_000_000_000_000_000;

    fn parse_ns(body: &str) -> ParsedLines {
        parse(body.as_bytes(), Precision::Nanosecond, DEFAULT_NS)
    }

    /// The single point of a one-line body, failing with the error otherwise.
    fn one(body: &str) -> Point {
        let parsed = parse_ns(body);
        assert!(parsed.errors.is_empty(), "{body:?}: {:?}", parsed.errors);
        assert_eq!(parsed.points.len(), 1, "{body:?}");
        parsed
            .points
            .into_iter()
            .next()
            .map(|(_, p)| p)
            .expect("one point")
    }

    /// The single error message of a one-line body.
    fn err(body: &str) -> String {
        let parsed = parse_ns(body);
        assert!(parsed.points.is_empty(), "{body:?}: {:?}", parsed.points);
        assert_eq!(parsed.errors.len(), 1, "{body:?}");
        assert_eq!(parsed.errors[0].line, 1);
        parsed.errors.into_iter().next().expect("one error").message
    }

    fn field(body: &str) -> FieldValue {
        let p = one(body);
        assert_eq!(p.fields.len(), 1);
        p.fields.into_iter().next().expect("one field").1
    }

    fn s(x: &str) -> String {
        x.to_owned()
    }

    #[test]
    fn full_line() {
        let p = one(r#"cpu,host=a,region=west usage=1.5,count=3i,n=7u,ok=true,msg="hi" 1000"#);
        assert_eq!(
            p,
            Point {
                table: s("cpu"),
                tags: vec![(s("host"), s("a")), (s("region"), s("west"))],
                fields: vec![
                    (s("usage"), FieldValue::F64(1.5)),
                    (s("count"), FieldValue::I64(3)),
                    (s("n"), FieldValue::U64(7)),
                    (s("ok"), FieldValue::Bool(true)),
                    (s("msg"), FieldValue::Str(s("hi"))),
                ],
                time_ns: 1000,
            }
        );
    }

    #[test]
    fn tags_are_sorted_and_fields_keep_order() {
        let p = one("m,z=1,a=2,m=3 y=1,x=2");
        let keys: Vec<&str> = p.tags.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["a", "m", "z"]);
        let fields: Vec<&str> = p.fields.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(fields, ["y", "x"]);
    }

    #[test]
    fn measurement_escapes() {
        assert_eq!(one(r"my\ meas\,ure f=1").table, "my meas,ure");
        // `=` is not special in a measurement, so `\=` stays as written.
        assert_eq!(one(r"a\=b=c f=1").table, r"a\=b=c");
        assert_eq!(one(r#"m"q'x f=1"#).table, r#"m"q'x"#);
        assert_eq!(one(r"C:\dir f=1").table, r"C:\dir");
        assert_eq!(one(r"m\\ f=1").table, r"m\");
        assert_eq!(one(r"m\\\, f=1").table, r"m\,");
        // An escaped space does not end the measurement.
        assert_eq!(one(r"\ lead f=1").table, " lead");
    }

    #[test]
    fn tag_and_field_key_escapes() {
        let p = one(r"m,k\ 1\,\==v\ 1\,\= f\ \,\=x=1");
        assert_eq!(p.tags, vec![(s("k 1,="), s("v 1,="))]);
        assert_eq!(p.fields[0].0, "f ,=x");
        let p = one(r#"m,"k"='v' "f"=1"#);
        assert_eq!(p.tags, vec![(s("\"k\""), s("'v'"))]);
        assert_eq!(p.fields[0].0, "\"f\"");
    }

    #[test]
    fn backslash_table_from_the_reference() {
        // `\` -> `\`, `\\` -> `\`, `\\\` -> `\\`, `\\\\` -> `\\`, 5 -> 3, 6 -> 3.
        for (n, want) in [(1, 1), (2, 1), (3, 2), (4, 2), (5, 3), (6, 3)] {
            let line = format!("m,t=a{}z f=1", "\\".repeat(n));
            let p = one(&line);
            assert_eq!(p.tags[0].1, format!("a{}z", "\\".repeat(want)), "{line}");
            let line = format!("m f=\"a{}z\"", "\\".repeat(n));
            assert_eq!(
                field(&line),
                FieldValue::Str(format!("a{}z", "\\".repeat(want))),
                "{line}"
            );
        }
        // A doubled backslash before a delimiter leaves the delimiter unescaped.
        let p = one(r"m,t=a\\,u=b f=1");
        assert_eq!(p.tags, vec![(s("t"), s(r"a\")), (s("u"), s("b"))]);
        assert_eq!(one(r"m,t=a\\ f=1").tags[0].1, r"a\");
        // An escaped space at the end of a tag value swallows the separator.
        assert_eq!(
            err(r"m,t=a\ f=1"),
            r#"unescaped "=" in value "a\\ f=1" of tag "t""#
        );
        assert!(err(r"m,t=a\ 1").starts_with("missing fields"));
    }

    #[test]
    fn string_values() {
        assert_eq!(
            field(r#"m s="a b,c=d \"q\" x\\y \z""#),
            FieldValue::Str(s(r#"a b,c=d "q" x\y \z"#))
        );
        assert_eq!(field(r#"m s="""#), FieldValue::Str(s("")));
        assert_eq!(
            field(r##"m s="# not a comment""##),
            FieldValue::Str(s("# not a comment"))
        );
        assert_eq!(field(r#"m s="true""#), FieldValue::Str(s("true")));
        assert_eq!(field(r#"m s="1i""#), FieldValue::Str(s("1i")));
        assert_eq!(
            field("m s=\"tab\there\r\""),
            FieldValue::Str(s("tab\there\r"))
        );
        let p = one(r#"m a="x,y=1 z",b=2 5"#);
        assert_eq!(
            p.fields,
            vec![
                (s("a"), FieldValue::Str(s("x,y=1 z"))),
                (s("b"), FieldValue::F64(2.0))
            ]
        );
        assert_eq!(p.time_ns, 5);
        let long = "x".repeat(MAX_STRING_BYTES);
        assert_eq!(
            field(&format!("m s=\"{long}\"")),
            FieldValue::Str(long.clone())
        );
        let too_long = format!("m s=\"{long}y\"");
        assert!(err(&too_long).contains("over the 65536-byte limit"));
    }

    #[test]
    fn unicode() {
        let p = one("温度,地点=北京 值=1.5,説明=\"ok 🚀\" 1");
        assert_eq!(p.table, "温度");
        assert_eq!(p.tags, vec![(s("地点"), s("北京"))]);
        assert_eq!(
            p.fields,
            vec![
                (s("值"), FieldValue::F64(1.5)),
                (s("説明"), FieldValue::Str(s("ok 🚀")))
            ]
        );
        assert_eq!(one("🍭,é=ü f=1").table, "🍭");
    }

    #[test]
    fn floats() {
        for (text, want) in [
            ("1", 1.0),
            ("1.5", 1.5),
            ("-1e10", -1e10),
            ("1E+5", 1e5),
            ("2.5e-3", 2.5e-3),
            ("-1.234456e+78", -1.234456e78),
            (".5", 0.5),
            ("5.", 5.0),
            ("-0.0", -0.0),
            ("007", 7.0),
            ("1e-400", 0.0),
            ("1.7976931348623157e308", f64::MAX),
        ] {
            match field(&format!("m f={text}")) {
                FieldValue::F64(v) => assert_eq!(v.to_bits(), want.to_bits(), "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
        for text in [
            "inf", "-inf", "Inf", "NaN", "nan", "infinity", "+1", "1.2.3", "1e", "e5", "-", ".",
            "0x10", "1_000", "--1", "1e5e", "1-2", "12x",
        ] {
            let message = err(&format!("m f={text}"));
            assert!(
                message.starts_with("invalid field value"),
                "{text}: {message}"
            );
        }
        assert_eq!(
            err("m f=1e400"),
            r#"float field value "1e400" out of range for field "f""#
        );
    }

    #[test]
    fn integers_and_unsigned() {
        assert_eq!(field("m f=1i"), FieldValue::I64(1));
        assert_eq!(field("m f=-12485903i"), FieldValue::I64(-12_485_903));
        assert_eq!(field("m f=9223372036854775807i"), FieldValue::I64(i64::MAX));
        assert_eq!(
            field("m f=-9223372036854775808i"),
            FieldValue::I64(i64::MIN)
        );
        assert_eq!(field("m f=0u"), FieldValue::U64(0));
        assert_eq!(
            field("m f=18446744073709551615u"),
            FieldValue::U64(u64::MAX)
        );
        assert_eq!(
            err("m f=9223372036854775808i"),
            r#"integer field value "9223372036854775808i" out of range for field "f""#
        );
        assert!(err("m f=-9223372036854775809i").contains("out of range"));
        assert_eq!(
            err("m f=18446744073709551616u"),
            r#"unsigned field value "18446744073709551616u" out of range for field "f""#
        );
        for text in [
            "1.5i", "1e3i", "i", "-i", "+1i", "1ii", "1I", "-1u", "u", "+1u", "1.0u", "1iu",
        ] {
            let message = err(&format!("m f={text}"));
            assert_eq!(
                message,
                format!("invalid field value {text:?} for field \"f\""),
                "{text}"
            );
        }
    }

    #[test]
    fn booleans() {
        for text in ["t", "T", "true", "True", "TRUE"] {
            assert_eq!(
                field(&format!("m f={text}")),
                FieldValue::Bool(true),
                "{text}"
            );
        }
        for text in ["f", "F", "false", "False", "FALSE"] {
            assert_eq!(
                field(&format!("m f={text}")),
                FieldValue::Bool(false),
                "{text}"
            );
        }
        for text in ["tRUE", "yes", "tr", "falsE", "on", "1b"] {
            assert!(
                err(&format!("m f={text}")).starts_with("invalid field value"),
                "{text}"
            );
        }
    }

    #[test]
    fn comments_blank_lines_and_crlf() {
        let body =
            "# header\r\n\r\n   \n\t# indented comment\nm f=1 1\r\n  m f=2 2  \r\nm f=3 3\n\n";
        let parsed = parse_ns(body);
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        let got: Vec<(usize, i64)> = parsed.points.iter().map(|(l, p)| (*l, p.time_ns)).collect();
        assert_eq!(got, [(5, 1), (6, 2), (7, 3)]);
        // `#` only starts a comment at the beginning of a line.
        assert_eq!(one("m#x f=1").table, "m#x");
        // A comment line may hold anything, even invalid UTF-8.
        assert_eq!(
            parse(b"# \xff\xfe\n", Precision::Nanosecond, 0),
            ParsedLines::default()
        );
    }

    #[test]
    fn whitespace_between_sections() {
        let p = one("  m,t=1   f=1   7   ");
        assert_eq!(p.time_ns, 7);
        let p = one("m f=1\t");
        assert_eq!(p.time_ns, DEFAULT_NS);
        assert_eq!(one("m f=1 \t 8").time_ns, 8);
        assert_eq!(err("m f=1 7 8"), r#"unexpected text "8" after timestamp"#);
        assert_eq!(err("m f=1 7x"), r#"invalid timestamp "7x""#);
        assert_eq!(err("m f=1,g=2 x=1"), r#"invalid timestamp "x=1""#);
    }

    #[test]
    fn precisions() {
        for (precision, want) in [
            (Precision::Nanosecond, 5),
            (Precision::Microsecond, 5_000),
            (Precision::Millisecond, 5_000_000),
            (Precision::Second, 5_000_000_000),
        ] {
            let parsed = parse(b"m f=1 5\nm f=1 -5\nm f=1", precision, 42);
            assert!(parsed.errors.is_empty());
            let times: Vec<i64> = parsed.points.iter().map(|(_, p)| p.time_ns).collect();
            assert_eq!(times, [want, -want, 42], "{precision:?}");
        }
    }

    #[test]
    fn timestamp_limits() {
        assert_eq!(one("m f=1 9223372036854775806").time_ns, i64::MAX - 1);
        assert_eq!(one("m f=1 -9223372036854775806").time_ns, i64::MIN + 2);
        assert_eq!(one("m f=1 0").time_ns, 0);
        assert_eq!(one("m f=1 -1").time_ns, -1);
        assert_eq!(one("m f=1 -0").time_ns, 0);
        for ts in [
            "9223372036854775807",
            "-9223372036854775807",
            "-9223372036854775808",
            "9999999999999999999",
            "99999999999999999999",
        ] {
            assert_eq!(
                err(&format!("m f=1 {ts}")),
                format!("timestamp {ts:?} out of range at precision ns")
            );
        }
        let at = |body: &str, precision| parse(body.as_bytes(), precision, 0);
        let over = at("m f=1 9223372037", Precision::Second);
        assert_eq!(
            over.errors[0].message,
            r#"timestamp "9223372037" out of range at precision s"#
        );
        assert_eq!(
            at("m f=1 9223372036", Precision::Second).points[0]
                .1
                .time_ns,
            9_223_372_036_000_000_000
        );
        assert_eq!(
            at("m f=1 -9223372036854776", Precision::Millisecond)
                .errors
                .len(),
            1
        );
        assert_eq!(
            at("m f=1 -9223372036854775", Precision::Microsecond).points[0]
                .1
                .time_ns,
            -9_223_372_036_854_775_000
        );
        for ts in ["+5", "5.0", "1e9", "0x5", "-", "5i"] {
            assert_eq!(
                err(&format!("m f=1 {ts}")),
                format!("invalid timestamp {ts:?}")
            );
        }
    }

    #[test]
    fn structural_errors() {
        for (line, want) in [
            (",t=1 f=1", "missing measurement"),
            ("m", r#"missing fields for measurement "m""#),
            ("m,t=1", r#"missing fields for measurement "m""#),
            ("m ", r#"missing fields for measurement "m""#),
            ("m  ", r#"missing fields for measurement "m""#),
            ("m,t=1 ", r#"missing fields for measurement "m""#),
            ("m, f=1", r#"empty tag key in measurement "m""#),
            ("m,=v f=1", r#"empty tag key in measurement "m""#),
            ("m,t=1, f=1", r#"empty tag key in measurement "m""#),
            ("m,t f=1", r#"missing "=" after tag key "t""#),
            ("m,t= f=1", r#"empty value for tag "t""#),
            ("m,t=,u=1 f=1", r#"empty value for tag "t""#),
            ("m,t=a=b f=1", r#"unescaped "=" in value "a=b" of tag "t""#),
            ("m f", r#"missing "=" after field key "f""#),
            ("m f,g=1", r#"missing "=" after field key "f""#),
            ("m =1", "empty field key"),
            ("m ,f=1", "empty field key"),
            ("m f=1,", r#"empty field key after field "f""#),
            ("m f=1,,g=2", r#"empty field key after field "f""#),
            ("m f=", r#"missing value for field "f""#),
            ("m f= 1", r#"missing value for field "f""#),
            ("m f=,g=1", r#"missing value for field "f""#),
            (
                "m usage=12x",
                r#"invalid field value "12x" for field "usage""#,
            ),
            (r#"m msg="abc"#, r#"unterminated string in field "msg""#),
            (r#"m msg="abc\""#, r#"unterminated string in field "msg""#),
            (
                r#"m msg="abc" 1 ""#,
                r#"unexpected text "\"" after timestamp"#,
            ),
            (
                r#"m msg="a"b"#,
                r#"invalid field value "\"a\"b" for field "msg": text after closing quote"#,
            ),
            (r#"m f=1" "#, r#"invalid field value "1\"" for field "f""#),
            ("m,t=1,t=2 f=1", r#"duplicate tag key "t""#),
            ("m,b=1,a=2,b=3 f=1", r#"duplicate tag key "b""#),
            ("m f=1,f=2i", r#"duplicate field key "f""#),
            ("m,k=1 k=1", r#"key "k" is used as both tag and field"#),
            ("m,time=1 f=1", r#"tag key "time" is not allowed"#),
            ("m time=1", r#"field key "time" is not allowed"#),
            (
                "_m f=1",
                r#"measurement "_m" must not begin with "_" (reserved)"#,
            ),
            (
                "m,_t=1 f=1",
                r#"tag key "_t" must not begin with "_" (reserved)"#,
            ),
            (
                "m _f=1",
                r#"field key "_f" must not begin with "_" (reserved)"#,
            ),
        ] {
            assert_eq!(err(line), want, "{line:?}");
        }
        // `time` is fine as a measurement, a tag value or inside a key.
        assert_eq!(one("time,t=time times=1").table, "time");
        // A wide line finds duplicates too.
        let mut wide: String = (0..20).map(|i| format!("f{i}=1,")).collect();
        wide.push_str("f7=2");
        assert_eq!(err(&format!("m {wide}")), r#"duplicate field key "f7""#);
    }

    #[test]
    fn a_control_character_in_a_later_line_is_still_found() {
        // A printable body skips the per-token check; one control character anywhere turns
        // it back on for every line.
        let parsed = parse_ns("m,k=v f=1 1\nm,k=v\u{1} f=1 2\nm,k=w f=1 3\n");
        assert_eq!(parsed.points.len(), 2);
        let lines: Vec<usize> = parsed.errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, [2]);
        assert!(parsed.errors[0].message.contains("control character"));
    }

    #[test]
    fn control_characters_and_bad_utf8() {
        assert_eq!(
            err("m\u{0}x f=1"),
            r#"measurement "m\0x" contains a control character"#
        );
        assert_eq!(
            err("m\tx f=1"),
            r#"measurement "m\tx" contains a control character"#
        );
        assert_eq!(
            err("m,k\u{1}=v f=1"),
            r#"tag key "k\u{1}" contains a control character"#
        );
        assert_eq!(
            err("m,k=v\u{7f} f=1"),
            r#"value "v\u{7f}" of tag "k" contains a control character"#
        );
        assert_eq!(
            err("m f\u{85}x=1"),
            r#"field key "f\u{85}x" contains a control character"#
        );
        // Control characters are fine inside string field values.
        assert_eq!(
            field("m s=\"a\u{0}b\u{1b}\""),
            FieldValue::Str(s("a\u{0}b\u{1b}"))
        );
        let parsed = parse(
            b"m f=1 1\nm,t=\xff f=1\n  m\xc3 f=1\nm f=4 4",
            Precision::Nanosecond,
            0,
        );
        assert_eq!(
            parsed.errors,
            vec![
                LineError {
                    line: 2,
                    message: s("invalid utf-8: byte 0xff at column 5")
                },
                LineError {
                    line: 3,
                    message: s("invalid utf-8: byte 0xc3 at column 4")
                },
            ]
        );
        let lines: Vec<usize> = parsed.points.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, [1, 4]);
    }

    #[test]
    fn bad_lines_do_not_stop_good_lines() {
        let body = "m f=1 1\nbad\nm f=2 2\n\nm f=\"open\nm f=3 3\nm,t=1,t=2 f=1\n# c\nm f=4 4";
        let parsed = parse_ns(body);
        let good: Vec<(usize, i64)> = parsed.points.iter().map(|(l, p)| (*l, p.time_ns)).collect();
        assert_eq!(good, [(1, 1), (3, 2), (6, 3), (9, 4)]);
        let bad: Vec<usize> = parsed.errors.iter().map(|e| e.line).collect();
        assert_eq!(bad, [2, 5, 7]);
        assert_eq!(
            parsed.errors[1].message,
            r#"unterminated string in field "f""#
        );
        assert_eq!(
            parsed.errors[1].to_string(),
            r#"line 5: unterminated string in field "f""#
        );
    }

    #[test]
    fn long_tokens_are_cut_in_messages() {
        let long = "x".repeat(1000);
        let message = err(&format!("m f={long}"));
        assert_eq!(
            message,
            format!(
                "invalid field value \"{}\"... for field \"f\"",
                "x".repeat(64)
            )
        );
    }

    #[test]
    fn wide_lines_are_linear() {
        let n = 50_000;
        let fields: Vec<String> = (0..n).map(|i| format!("f{i}={i}i")).collect();
        let tags: Vec<String> = (0..n).map(|i| format!("t{i}=v")).collect();
        let line = format!("m,{} {} 1", tags.join(","), fields.join(","));
        let p = one(&line);
        assert_eq!((p.tags.len(), p.fields.len()), (n, n));
        let escapes = "\\".repeat(200_000);
        assert_eq!(one(&format!("m,t=a{escapes} f=1")).tags[0].1.len(), 100_001);
        let quotes = "\\\"".repeat(100_000);
        assert!(err(&format!("m s=\"{quotes}")).starts_with("unterminated string"));
    }

    #[test]
    fn encode_examples() {
        let p = Point {
            table: s("my meas,ure=x"),
            tags: vec![(s("a b"), s("c,d=e")), (s("path"), s(r"C:\dir\"))],
            fields: vec![
                (s("f=1"), FieldValue::F64(1.0)),
                (s("i"), FieldValue::I64(-3)),
                (s("u"), FieldValue::U64(4)),
                (s("b"), FieldValue::Bool(false)),
                (s("s"), FieldValue::Str(s(r#"say "hi" \o/"#))),
                (s("big"), FieldValue::F64(1e300)),
                (s("tiny"), FieldValue::F64(-5e-324)),
            ],
            time_ns: -7,
        };
        let line = encode_point(&p);
        assert_eq!(
            line,
            r#"my\ meas\,ure=x,a\ b=c\,d\=e,path=C:\dir\\ f\=1=1.0,i=-3i,u=4u,b=false,s="say \"hi\" \\o/",big=1e300,tiny=-5e-324 -7"#
        );
        assert_eq!(one(&line), p);
    }

    // ---- property tests ----

    /// Characters for names: heavy on the ones line protocol treats specially.
    fn name_char() -> impl Strategy<Value = char> {
        prop_oneof![
            3 => prop::sample::select(vec![
                ' ', ',', '=', '"', '\'', '\\', '#', '_', 'i', 'u', 't', '1', '.', '-', 'é', 'µ',
                '中', '🚀', '\u{a0}', '\u{2028}', '\u{feff}',
            ]),
            3 => prop::char::range('a', 'z'),
            2 => any::<char>(),
        ]
        .prop_filter("no control characters", |c| !c.is_control())
    }

    fn name() -> impl Strategy<Value = String> {
        prop::collection::vec(name_char(), 1..10)
            .prop_map(|chars| chars.into_iter().collect::<String>())
            .prop_filter("no reserved _ prefix", |n| !n.starts_with('_'))
    }

    fn measurement() -> impl Strategy<Value = String> {
        name().prop_filter("a leading # is a comment", |n| !n.starts_with('#'))
    }

    fn key() -> impl Strategy<Value = String> {
        name().prop_filter("time is reserved", |n| n != "time")
    }

    fn string_value() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop_oneof![
                prop::sample::select(vec!['"', '\\', ' ', ',', '=', '\r', '\t', '\0', '#']),
                any::<char>(),
            ]
            .prop_filter("no newline", |c| *c != '\n'),
            0..12,
        )
        .prop_map(|chars| chars.into_iter().collect())
    }

    fn field_value() -> impl Strategy<Value = FieldValue> {
        prop_oneof![
            any::<f64>()
                .prop_filter("finite", |v| v.is_finite())
                .prop_map(FieldValue::F64),
            any::<i64>().prop_map(FieldValue::I64),
            any::<u64>().prop_map(FieldValue::U64),
            any::<bool>().prop_map(FieldValue::Bool),
            string_value().prop_map(FieldValue::Str),
        ]
    }

    fn point() -> impl Strategy<Value = Point> {
        (
            measurement(),
            prop::collection::btree_map(key(), name(), 0..4),
            prop::collection::vec((key(), field_value()), 1..5),
            MIN_TIME_NS..=MAX_TIME_NS,
        )
            .prop_filter_map(
                "need a field whose key is unique",
                |(table, tags, raw, time_ns)| {
                    let tags: BTreeMap<String, String> = tags;
                    let mut fields: Vec<(String, FieldValue)> = Vec::new();
                    for (k, v) in raw {
                        if !tags.contains_key(&k) && !fields.iter().any(|(f, _)| *f == k) {
                            fields.push((k, v));
                        }
                    }
                    (!fields.is_empty()).then(|| Point {
                        table,
                        tags: tags.into_iter().collect(),
                        fields,
                        time_ns,
                    })
                },
            )
    }

    /// Equality that also tells -0.0 from 0.0.
    fn same(a: &Point, b: &Point) -> bool {
        a == b
            && a.fields
                .iter()
                .zip(&b.fields)
                .all(|(x, y)| match (&x.1, &y.1) {
                    (FieldValue::F64(x), FieldValue::F64(y)) => x.to_bits() == y.to_bits(),
                    _ => true,
                })
    }

    /// Structural promises every parse result keeps, whatever the input.
    fn check_invariants(body: &[u8], parsed: &ParsedLines) {
        let lines = body.split(|&c| c == b'\n').count();
        let mut numbers: Vec<usize> = parsed.points.iter().map(|(l, _)| *l).collect();
        numbers.extend(parsed.errors.iter().map(|e| e.line));
        numbers.sort_unstable();
        assert!(
            numbers.windows(2).all(|w| w[0] < w[1]),
            "one result per line"
        );
        assert!(numbers.iter().all(|&l| (1..=lines).contains(&l)));
        for (_, p) in &parsed.points {
            assert!(!p.table.is_empty());
            assert!(!p.fields.is_empty());
            assert!(
                p.tags.windows(2).all(|w| w[0].0 < w[1].0),
                "tags sorted and unique"
            );
            assert!(
                p.tags
                    .iter()
                    .all(|(k, v)| !k.is_empty() && !v.is_empty() && k != "time")
            );
            assert!(p.fields.iter().all(|(k, _)| !k.is_empty() && k != "time"));
            assert!(p.fields.iter().all(|(_, v)| match v {
                FieldValue::F64(f) => f.is_finite(),
                _ => true,
            }));
        }
        for e in &parsed.errors {
            assert!(!e.message.is_empty());
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn printable_ascii_is_exactly_what_it_says(
            bytes in proptest::collection::vec(
                prop_oneof![60 => 0x20u8..0x7f, 6 => Just(b'\n'), 1 => any::<u8>()],
                0..700,
            )
        ) {
            let expected = bytes.iter().all(|&c| (0x20..0x7f).contains(&c) || c == b'\n');
            prop_assert_eq!(is_printable_ascii(&bytes), expected);
        }

        #[test]
        fn round_trip(points in prop::collection::vec(point(), 1..4)) {
            let lines: Vec<String> = points.iter().map(encode_point).collect();
            for line in &lines {
                prop_assert!(!line.contains('\n'));
            }
            let body = lines.join("\n");
            let parsed = parse(body.as_bytes(), Precision::Nanosecond, 0);
            prop_assert!(parsed.errors.is_empty(), "{:?}\n{}", parsed.errors, body);
            prop_assert_eq!(parsed.points.len(), points.len());
            for (i, ((line, got), want)) in parsed.points.iter().zip(&points).enumerate() {
                prop_assert_eq!(*line, i + 1);
                prop_assert!(same(got, want), "{:?}\n{:?}\n{}", got, want, lines[i]);
            }
        }

        #[test]
        fn round_trip_with_crlf_and_comments(p in point()) {
            let body = format!("# c\r\n{}\r\n\r\n", encode_point(&p));
            let parsed = parse(body.as_bytes(), Precision::Nanosecond, 0);
            prop_assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
            prop_assert_eq!(parsed.points.len(), 1);
            prop_assert_eq!(parsed.points[0].0, 2);
            prop_assert!(same(&parsed.points[0].1, &p));
        }

        #[test]
        fn arbitrary_bytes_never_panic(
            body in prop::collection::vec(
                prop_oneof![
                    any::<u8>(),
                    prop::sample::select(b" ,=\\\"\n\r\t#itufTe.-+0123456789".to_vec()),
                ],
                0..400,
            ),
            precision in prop::sample::select(vec![
                Precision::Nanosecond,
                Precision::Microsecond,
                Precision::Millisecond,
                Precision::Second,
            ]),
        ) {
            let parsed = parse(&body, precision, 0);
            check_invariants(&body, &parsed);
        }

        #[test]
        fn mutated_lines_never_panic(
            points in prop::collection::vec(point(), 1..4),
            edits in prop::collection::vec(
                (any::<prop::sample::Index>(), 0u8..3, prop_oneof![
                    any::<u8>(),
                    prop::sample::select(b" ,=\\\"\n\r#i".to_vec()),
                ]),
                1..8,
            ),
        ) {
            let mut body = points.iter().map(encode_point).collect::<Vec<_>>().join("\n").into_bytes();
            for (at, op, byte) in edits {
                let i = at.index(body.len() + 1);
                match op {
                    0 if i < body.len() => body[i] = byte,
                    1 => body.insert(i, byte),
                    _ if i < body.len() => {
                        body.remove(i);
                    }
                    _ => body.push(byte),
                }
            }
            let parsed = parse(&body, Precision::Second, 0);
            check_invariants(&body, &parsed);
        }
    }
}
