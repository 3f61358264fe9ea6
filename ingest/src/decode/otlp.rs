//! OTLP/HTTP metrics and traces (`ExportMetricsServiceRequest`, `ExportTraceServiceRequest`),
//! as protobuf or as OTLP/JSON.
//!
//! Both encodings are read into the same hand-written prost messages ([`proto`]; JSON through
//! [`json`]), then mapped to [`Point`]s: metrics to one table per metric with Prometheus names
//! ([`names`], mapping in `metrics`), spans to rows of the [`SPANS_TABLE`] (mapping in `traces`).
//! The whole mapping is documented in `docs/otlp.md`.
//!
//! A body that does not decode rejects the whole request ([`OtlpError`]). A data point or span
//! that decodes but cannot be stored (no value, bad ids, bucket counts that do not match the
//! bounds, a timestamp out of range) is rejected alone: its reason goes to `rejected`, tagged
//! with its 0-based position in the request, and the rest is kept, as OTLP's `partial_success`
//! expects. Decoding never panics on any input.

mod json;
mod metrics;
mod names;
pub mod proto;
mod traces;

use crate::point::Point;
use prost::Message;
use proto::any_value::Value as AnyValueKind;

pub use names::{NameKind, float_label, label_name, metric_name};
pub use traces::{PROMOTED_ATTRIBUTES, SPANS_TABLE};

/// How a request body (and so its response) is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// `application/x-protobuf`.
    Protobuf,
    /// `application/json` (OTLP/JSON).
    Json,
}

impl Encoding {
    /// The encoding a `Content-Type` names, if OTLP defines it.
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        let mime = content_type.split(';').next().unwrap_or("").trim();
        match mime.to_ascii_lowercase().as_str() {
            "application/x-protobuf" | "application/protobuf" => Some(Self::Protobuf),
            "application/json" => Some(Self::Json),
            _ => None,
        }
    }

    /// The `Content-Type` of a response in this encoding.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Protobuf => "application/x-protobuf",
            Self::Json => "application/json",
        }
    }
}

/// Why a whole OTLP request was rejected.
#[derive(Debug, thiserror::Error)]
pub enum OtlpError {
    /// The body is not a valid protobuf message of the expected type.
    #[error("protobuf decode error: {0}")]
    Protobuf(#[from] prost::DecodeError),
    /// The body is not valid OTLP/JSON; the message names the path of the bad value.
    #[error("json decode error: {0}")]
    Json(String),
}

/// The outcome of decoding one request.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Decoded {
    /// Points to write, each tagged with the position of the data point or span it came from
    /// (a histogram data point becomes several points with the same tag).
    pub points: Vec<(usize, Point)>,
    /// Rejected data points or spans: position and reason.
    pub rejected: Vec<(usize, String)>,
    /// Messages about the request that reject nothing (a metric without data, ...).
    pub warnings: Vec<String>,
    /// Data points (metrics) or spans (traces) in the request.
    pub items: usize,
}

/// Decodes an `ExportMetricsServiceRequest`; data points without a timestamp get `now_ns`.
pub fn decode_metrics(body: &[u8], encoding: Encoding, now_ns: i64) -> Result<Decoded, OtlpError> {
    let request = match encoding {
        Encoding::Protobuf => proto::ExportMetricsServiceRequest::decode(body)?,
        Encoding::Json => json::metrics_request(body).map_err(OtlpError::Json)?,
    };
    Ok(metrics::to_points(request, now_ns))
}

/// Decodes an `ExportTraceServiceRequest` into rows of the spans table.
pub fn decode_traces(body: &[u8], encoding: Encoding) -> Result<Decoded, OtlpError> {
    let request = match encoding {
        Encoding::Protobuf => proto::ExportTraceServiceRequest::decode(body)?,
        Encoding::Json => json::traces_request(body).map_err(OtlpError::Json)?,
    };
    Ok(traces::to_points(request))
}

/// Encodes an `ExportMetricsServiceResponse`; `partial_success` is set only when something was
/// rejected or there is a message.
pub fn metrics_response(rejected: usize, message: &str, encoding: Encoding) -> Vec<u8> {
    export_response(rejected, message, encoding, "rejectedDataPoints", |r, m| {
        proto::ExportMetricsServiceResponse {
            partial_success: Some(proto::ExportMetricsPartialSuccess {
                rejected_data_points: r,
                error_message: m,
            }),
        }
        .encode_to_vec()
    })
}

/// Encodes an `ExportTraceServiceResponse`, like [`metrics_response`].
pub fn traces_response(rejected: usize, message: &str, encoding: Encoding) -> Vec<u8> {
    export_response(rejected, message, encoding, "rejectedSpans", |r, m| {
        proto::ExportTraceServiceResponse {
            partial_success: Some(proto::ExportTracePartialSuccess {
                rejected_spans: r,
                error_message: m,
            }),
        }
        .encode_to_vec()
    })
}

fn export_response(
    rejected: usize,
    message: &str,
    encoding: Encoding,
    json_count_name: &str,
    protobuf: impl Fn(i64, String) -> Vec<u8>,
) -> Vec<u8> {
    let rejected_i64 = i64::try_from(rejected).unwrap_or(i64::MAX);
    if rejected == 0 && message.is_empty() {
        return match encoding {
            Encoding::Protobuf => Vec::new(),
            Encoding::Json => b"{}".to_vec(),
        };
    }
    match encoding {
        Encoding::Protobuf => protobuf(rejected_i64, message.to_string()),
        Encoding::Json => {
            let mut partial = serde_json::Map::new();
            if rejected > 0 {
                // proto3 JSON writes int64 as a string.
                partial.insert(
                    json_count_name.to_string(),
                    serde_json::Value::String(rejected.to_string()),
                );
            }
            partial.insert(
                "errorMessage".to_string(),
                serde_json::Value::String(message.to_string()),
            );
            serde_json::json!({ "partialSuccess": partial })
                .to_string()
                .into_bytes()
        }
    }
}

/// `google.rpc.Code` values used in error bodies.
pub mod rpc_code {
    /// `INVALID_ARGUMENT`.
    pub const INVALID_ARGUMENT: i32 = 3;
    /// `RESOURCE_EXHAUSTED`.
    pub const RESOURCE_EXHAUSTED: i32 = 8;
    /// `INTERNAL`.
    pub const INTERNAL: i32 = 13;
    /// `UNAVAILABLE`.
    pub const UNAVAILABLE: i32 = 14;
    /// `UNAUTHENTICATED`.
    pub const UNAUTHENTICATED: i32 = 16;
    /// `PERMISSION_DENIED`.
    pub const PERMISSION_DENIED: i32 = 7;
    /// `UNIMPLEMENTED`.
    pub const UNIMPLEMENTED: i32 = 12;
}

/// Encodes a `google.rpc.Status` error body (code from [`rpc_code`]).
pub fn status_body(code: i32, message: &str, encoding: Encoding) -> Vec<u8> {
    match encoding {
        Encoding::Protobuf => proto::RpcStatus {
            code,
            message: message.to_string(),
        }
        .encode_to_vec(),
        Encoding::Json => serde_json::json!({ "code": code, "message": message })
            .to_string()
            .into_bytes(),
    }
}

// ------------------------------------------------------------------ attributes

/// An attribute value as a tag value: strings as they are, numbers and booleans in decimal,
/// bytes in base64, arrays and maps as compact JSON.
fn value_string(v: Option<&proto::AnyValue>) -> String {
    match v.and_then(|v| v.value.as_ref()) {
        None => String::new(),
        Some(AnyValueKind::StringValue(s)) => s.clone(),
        Some(AnyValueKind::BoolValue(b)) => b.to_string(),
        Some(AnyValueKind::IntValue(i)) => i.to_string(),
        Some(AnyValueKind::DoubleValue(d)) => float_label(*d),
        Some(AnyValueKind::BytesValue(b)) => base64(b),
        Some(other @ (AnyValueKind::ArrayValue(_) | AnyValueKind::KvlistValue(_))) => {
            value_json_kind(other).to_string()
        }
    }
}

/// An attribute value as JSON (maps with sorted keys; non-finite doubles as strings).
fn value_json(v: Option<&proto::AnyValue>) -> serde_json::Value {
    match v.and_then(|v| v.value.as_ref()) {
        None => serde_json::Value::Null,
        Some(kind) => value_json_kind(kind),
    }
}

fn value_json_kind(v: &AnyValueKind) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        AnyValueKind::StringValue(s) => J::String(s.clone()),
        AnyValueKind::BoolValue(b) => J::Bool(*b),
        AnyValueKind::IntValue(i) => J::from(*i),
        AnyValueKind::DoubleValue(d) => serde_json::Number::from_f64(*d)
            .map(J::Number)
            .unwrap_or_else(|| J::String(float_label(*d))),
        AnyValueKind::BytesValue(b) => J::String(base64(b)),
        AnyValueKind::ArrayValue(a) => {
            J::Array(a.values.iter().map(|x| value_json(Some(x))).collect())
        }
        AnyValueKind::KvlistValue(kv) => attributes_json(&kv.values),
    }
}

/// Attributes as a JSON object, keys sorted; a repeated key keeps its last value.
fn attributes_json(attrs: &[proto::KeyValue]) -> serde_json::Value {
    let sorted: std::collections::BTreeMap<&str, serde_json::Value> = attrs
        .iter()
        .map(|kv| (kv.key.as_str(), value_json(kv.value.as_ref())))
        .collect();
    serde_json::Value::Object(
        sorted
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    )
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    out
}

/// A timestamp in nanoseconds as an `i64`, or why not.
fn time_ns(unix_nano: u64, what: &str) -> Result<i64, String> {
    i64::try_from(unix_nano)
        .map_err(|_| format!("{what} {unix_nano} is beyond the storable range (after 2262)"))
}

#[cfg(test)]
mod tests;
