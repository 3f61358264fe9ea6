//! OTLP/JSON: the proto3 JSON mapping with OTLP's exceptions, read into the [`proto`] messages
//! so that both encodings share one mapping to points.
//!
//! As the OTLP specification asks: field names are lowerCamelCase (`traceId`) and the
//! original snake_case (`trace_id`) is accepted too; trace and span ids are hex strings, not
//! base64; 64-bit integers may be strings or numbers; enums may be integers or their names;
//! `bytesValue` is base64; doubles may be `"NaN"`, `"Infinity"`, `"-Infinity"`; unknown fields
//! are ignored. A value of the wrong JSON type is an error naming its path in the request.

use super::proto::{self, any_value, metric, number_data_point};
use serde_json::{Map, Value};

type R<T> = Result<T, String>;

/// Parses an `ExportMetricsServiceRequest` from JSON bytes.
pub fn metrics_request(body: &[u8]) -> R<proto::ExportMetricsServiceRequest> {
    let v = parse(body)?;
    let o = at("request", object(&v))?;
    Ok(proto::ExportMetricsServiceRequest {
        resource_metrics: list(o, "resourceMetrics", "resource_metrics", resource_metrics)?,
    })
}

/// Parses an `ExportTraceServiceRequest` from JSON bytes.
pub fn traces_request(body: &[u8]) -> R<proto::ExportTraceServiceRequest> {
    let v = parse(body)?;
    let o = at("request", object(&v))?;
    Ok(proto::ExportTraceServiceRequest {
        resource_spans: list(o, "resourceSpans", "resource_spans", resource_spans)?,
    })
}

fn parse(body: &[u8]) -> R<Value> {
    // serde_json limits nesting to 128 levels, so hostile depth is an error, not an overflow.
    serde_json::from_slice(body).map_err(|e| format!("invalid JSON: {e}"))
}

// ------------------------------------------------------------------ generic helpers

fn object(v: &Value) -> R<&Map<String, Value>> {
    v.as_object()
        .ok_or_else(|| format!(": expected an object, found {}", kind(v)))
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A field by its JSON name or its proto name; `null` counts as absent.
fn get<'a>(o: &'a Map<String, Value>, camel: &str, snake: &str) -> Option<&'a Value> {
    o.get(camel)
        .or_else(|| o.get(snake))
        .filter(|v| !v.is_null())
}

/// Prefixes an error with the field it came from.
fn at<T>(name: &str, r: R<T>) -> R<T> {
    r.map_err(|e| {
        if e.starts_with('[') || e.starts_with(':') || e.starts_with('.') {
            format!("{name}{e}")
        } else {
            format!("{name}.{e}")
        }
    })
}

fn list<T>(
    o: &Map<String, Value>,
    camel: &str,
    snake: &str,
    each: impl Fn(&Value) -> R<T>,
) -> R<Vec<T>> {
    let Some(v) = get(o, camel, snake) else {
        return Ok(Vec::new());
    };
    let arr = at(
        camel,
        v.as_array()
            .ok_or_else(|| format!(": expected an array, found {}", kind(v))),
    )?;
    arr.iter()
        .enumerate()
        .map(|(i, x)| at(&format!("{camel}[{i}]"), each(x)))
        .collect()
}

fn message<T>(
    o: &Map<String, Value>,
    camel: &str,
    snake: &str,
    each: impl Fn(&Value) -> R<T>,
) -> R<Option<T>> {
    get(o, camel, snake).map(|v| at(camel, each(v))).transpose()
}

fn string(o: &Map<String, Value>, camel: &str, snake: &str) -> R<String> {
    match get(o, camel, snake) {
        None => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(v) => Err(format!("{camel}: expected a string, found {}", kind(v))),
    }
}

fn boolean(o: &Map<String, Value>, camel: &str, snake: &str) -> R<bool> {
    match get(o, camel, snake) {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(v) => Err(format!("{camel}: expected a boolean, found {}", kind(v))),
    }
}

/// A 64-bit unsigned integer: a number or a decimal string.
fn u64_of(v: &Value) -> R<u64> {
    let parsed = match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    parsed.ok_or_else(|| format!(": expected an unsigned 64-bit integer, found {v}"))
}

/// A 64-bit signed integer: a number or a decimal string.
fn i64_of(v: &Value) -> R<i64> {
    let parsed = match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    parsed.ok_or_else(|| format!(": expected a signed 64-bit integer, found {v}"))
}

fn u64_field(o: &Map<String, Value>, camel: &str, snake: &str) -> R<u64> {
    get(o, camel, snake).map_or(Ok(0), |v| at(camel, u64_of(v)))
}

fn i32_field(o: &Map<String, Value>, camel: &str, snake: &str) -> R<i32> {
    get(o, camel, snake).map_or(Ok(0), |v| {
        at(
            camel,
            i64_of(v).and_then(|n| {
                i32::try_from(n).map_err(|_| format!(": {n} is out of the 32-bit range"))
            }),
        )
    })
}

fn u32_field(o: &Map<String, Value>, camel: &str, snake: &str) -> R<u32> {
    get(o, camel, snake).map_or(Ok(0), |v| {
        at(
            camel,
            u64_of(v).and_then(|n| {
                u32::try_from(n).map_err(|_| format!(": {n} is out of the 32-bit range"))
            }),
        )
    })
}

/// A double: a number, or `"NaN"`, `"Infinity"`, `"-Infinity"`, or a numeric string.
fn f64_of(v: &Value) -> R<f64> {
    match v {
        Value::Number(n) => n.as_f64().ok_or_else(|| format!(": {n} is not a double")),
        Value::String(s) => match s.as_str() {
            "NaN" => Ok(f64::NAN),
            "Infinity" => Ok(f64::INFINITY),
            "-Infinity" => Ok(f64::NEG_INFINITY),
            other => other
                .trim()
                .parse()
                .map_err(|_| format!(": expected a double, found {v}")),
        },
        _ => Err(format!(": expected a double, found {}", kind(v))),
    }
}

fn f64_field(o: &Map<String, Value>, camel: &str, snake: &str) -> R<Option<f64>> {
    get(o, camel, snake)
        .map(|v| at(camel, f64_of(v)))
        .transpose()
}

/// An enum given as its number or its name (`names[i]` is the name of value `i`).
fn enumeration(o: &Map<String, Value>, camel: &str, snake: &str, names: &[&str]) -> R<i32> {
    match get(o, camel, snake) {
        None => Ok(0),
        Some(Value::String(s)) => {
            if let Some(i) = names.iter().position(|n| n == s) {
                return Ok(i32::try_from(i).unwrap_or(0));
            }
            s.trim().parse::<i32>().map_err(|_| {
                format!(
                    "{camel}: unknown value {s:?}; expected one of {}",
                    names.join(", ")
                )
            })
        }
        Some(v @ Value::Number(_)) => at(
            camel,
            i64_of(v).and_then(|n| i32::try_from(n).map_err(|_| format!(": {n} is out of range"))),
        ),
        Some(v) => Err(format!("{camel}: expected an enum, found {}", kind(v))),
    }
}

/// Trace and span ids: hex in OTLP/JSON (case-insensitive); empty means absent.
fn hex_id(o: &Map<String, Value>, camel: &str, snake: &str) -> R<Vec<u8>> {
    match get(o, camel, snake) {
        None => Ok(Vec::new()),
        Some(Value::String(s)) => {
            decode_hex(s).ok_or_else(|| format!("{camel}: {s:?} is not a hex string"))
        }
        Some(v) => Err(format!("{camel}: expected a hex string, found {}", kind(v))),
    }
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    if !b.len().is_multiple_of(2) {
        return None;
    }
    b.chunks(2)
        .map(|pair| {
            let hi = (pair[0] as char).to_digit(16)?;
            let lo = (pair[1] as char).to_digit(16)?;
            u8::try_from(hi * 16 + lo).ok()
        })
        .collect()
}

/// Standard or URL-safe base64, padding optional.
fn decode_base64(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0u32;
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' => break,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((acc >> bits) & 0xff).unwrap_or(0));
        }
    }
    Some(out)
}

// ------------------------------------------------------------------ common

fn any_value(v: &Value) -> R<proto::AnyValue> {
    let o = object(v)?;
    let value = if let Some(s) = get(o, "stringValue", "string_value") {
        match s {
            Value::String(s) => Some(any_value::Value::StringValue(s.clone())),
            other => {
                return Err(format!(
                    "stringValue: expected a string, found {}",
                    kind(other)
                ));
            }
        }
    } else if get(o, "boolValue", "bool_value").is_some() {
        Some(any_value::Value::BoolValue(boolean(
            o,
            "boolValue",
            "bool_value",
        )?))
    } else if let Some(n) = get(o, "intValue", "int_value") {
        Some(any_value::Value::IntValue(at("intValue", i64_of(n))?))
    } else if let Some(d) = get(o, "doubleValue", "double_value") {
        Some(any_value::Value::DoubleValue(at("doubleValue", f64_of(d))?))
    } else if let Some(a) = get(o, "arrayValue", "array_value") {
        let ao = at("arrayValue", object(a))?;
        Some(any_value::Value::ArrayValue(proto::ArrayValue {
            values: at("arrayValue", list(ao, "values", "values", any_value))?,
        }))
    } else if let Some(k) = get(o, "kvlistValue", "kvlist_value") {
        let ko = at("kvlistValue", object(k))?;
        Some(any_value::Value::KvlistValue(proto::KeyValueList {
            values: at("kvlistValue", list(ko, "values", "values", key_value))?,
        }))
    } else if let Some(b) = get(o, "bytesValue", "bytes_value") {
        let s = b.as_str().ok_or("bytesValue: expected a base64 string")?;
        Some(any_value::Value::BytesValue(
            decode_base64(s).ok_or("bytesValue: not base64")?,
        ))
    } else {
        None
    };
    Ok(proto::AnyValue { value })
}

fn key_value(v: &Value) -> R<proto::KeyValue> {
    let o = object(v)?;
    Ok(proto::KeyValue {
        key: string(o, "key", "key")?,
        value: message(o, "value", "value", any_value)?,
    })
}

fn attributes(o: &Map<String, Value>) -> R<Vec<proto::KeyValue>> {
    list(o, "attributes", "attributes", key_value)
}

fn resource(v: &Value) -> R<proto::Resource> {
    Ok(proto::Resource {
        attributes: attributes(object(v)?)?,
    })
}

fn scope(v: &Value) -> R<proto::InstrumentationScope> {
    let o = object(v)?;
    Ok(proto::InstrumentationScope {
        name: string(o, "name", "name")?,
        version: string(o, "version", "version")?,
    })
}

// ------------------------------------------------------------------ metrics

const TEMPORALITY: [&str; 3] = [
    "AGGREGATION_TEMPORALITY_UNSPECIFIED",
    "AGGREGATION_TEMPORALITY_DELTA",
    "AGGREGATION_TEMPORALITY_CUMULATIVE",
];

fn resource_metrics(v: &Value) -> R<proto::ResourceMetrics> {
    let o = object(v)?;
    Ok(proto::ResourceMetrics {
        resource: message(o, "resource", "resource", resource)?,
        scope_metrics: list(o, "scopeMetrics", "scope_metrics", scope_metrics)?,
    })
}

fn scope_metrics(v: &Value) -> R<proto::ScopeMetrics> {
    let o = object(v)?;
    Ok(proto::ScopeMetrics {
        scope: message(o, "scope", "scope", scope)?,
        metrics: list(o, "metrics", "metrics", metric)?,
    })
}

fn metric(v: &Value) -> R<proto::Metric> {
    let o = object(v)?;
    let data = if let Some(g) = get(o, "gauge", "gauge") {
        let go = at("gauge", object(g))?;
        Some(metric::Data::Gauge(proto::Gauge {
            data_points: at("gauge", number_points(go))?,
        }))
    } else if let Some(s) = get(o, "sum", "sum") {
        let so = at("sum", object(s))?;
        Some(metric::Data::Sum(at(
            "sum",
            (|| {
                Ok(proto::Sum {
                    data_points: number_points(so)?,
                    aggregation_temporality: enumeration(
                        so,
                        "aggregationTemporality",
                        "aggregation_temporality",
                        &TEMPORALITY,
                    )?,
                    is_monotonic: boolean(so, "isMonotonic", "is_monotonic")?,
                })
            })(),
        )?))
    } else if let Some(h) = get(o, "histogram", "histogram") {
        let ho = at("histogram", object(h))?;
        Some(metric::Data::Histogram(at(
            "histogram",
            (|| {
                Ok(proto::Histogram {
                    data_points: list(ho, "dataPoints", "data_points", histogram_point)?,
                    aggregation_temporality: enumeration(
                        ho,
                        "aggregationTemporality",
                        "aggregation_temporality",
                        &TEMPORALITY,
                    )?,
                })
            })(),
        )?))
    } else if let Some(h) = get(o, "exponentialHistogram", "exponential_histogram") {
        let ho = at("exponentialHistogram", object(h))?;
        Some(metric::Data::ExponentialHistogram(at(
            "exponentialHistogram",
            (|| {
                Ok(proto::ExponentialHistogram {
                    data_points: list(ho, "dataPoints", "data_points", exp_histogram_point)?,
                    aggregation_temporality: enumeration(
                        ho,
                        "aggregationTemporality",
                        "aggregation_temporality",
                        &TEMPORALITY,
                    )?,
                })
            })(),
        )?))
    } else if let Some(s) = get(o, "summary", "summary") {
        let so = at("summary", object(s))?;
        Some(metric::Data::Summary(proto::Summary {
            data_points: at(
                "summary",
                list(so, "dataPoints", "data_points", summary_point),
            )?,
        }))
    } else {
        None
    };
    Ok(proto::Metric {
        name: string(o, "name", "name")?,
        description: string(o, "description", "description")?,
        unit: string(o, "unit", "unit")?,
        data,
    })
}

fn number_points(o: &Map<String, Value>) -> R<Vec<proto::NumberDataPoint>> {
    list(o, "dataPoints", "data_points", number_point)
}

fn number_point(v: &Value) -> R<proto::NumberDataPoint> {
    let o = object(v)?;
    let value = if let Some(d) = get(o, "asDouble", "as_double") {
        Some(number_data_point::Value::AsDouble(at(
            "asDouble",
            f64_of(d),
        )?))
    } else if let Some(i) = get(o, "asInt", "as_int") {
        Some(number_data_point::Value::AsInt(at("asInt", i64_of(i))?))
    } else {
        None
    };
    Ok(proto::NumberDataPoint {
        attributes: attributes(o)?,
        start_time_unix_nano: u64_field(o, "startTimeUnixNano", "start_time_unix_nano")?,
        time_unix_nano: u64_field(o, "timeUnixNano", "time_unix_nano")?,
        value,
        flags: u32_field(o, "flags", "flags")?,
    })
}

fn histogram_point(v: &Value) -> R<proto::HistogramDataPoint> {
    let o = object(v)?;
    Ok(proto::HistogramDataPoint {
        attributes: attributes(o)?,
        start_time_unix_nano: u64_field(o, "startTimeUnixNano", "start_time_unix_nano")?,
        time_unix_nano: u64_field(o, "timeUnixNano", "time_unix_nano")?,
        count: u64_field(o, "count", "count")?,
        sum: f64_field(o, "sum", "sum")?,
        bucket_counts: list(o, "bucketCounts", "bucket_counts", u64_of)?,
        explicit_bounds: list(o, "explicitBounds", "explicit_bounds", f64_of)?,
        flags: u32_field(o, "flags", "flags")?,
    })
}

fn buckets(v: &Value) -> R<proto::Buckets> {
    let o = object(v)?;
    Ok(proto::Buckets {
        offset: i32_field(o, "offset", "offset")?,
        bucket_counts: list(o, "bucketCounts", "bucket_counts", u64_of)?,
    })
}

fn exp_histogram_point(v: &Value) -> R<proto::ExponentialHistogramDataPoint> {
    let o = object(v)?;
    Ok(proto::ExponentialHistogramDataPoint {
        attributes: attributes(o)?,
        start_time_unix_nano: u64_field(o, "startTimeUnixNano", "start_time_unix_nano")?,
        time_unix_nano: u64_field(o, "timeUnixNano", "time_unix_nano")?,
        count: u64_field(o, "count", "count")?,
        sum: f64_field(o, "sum", "sum")?,
        scale: i32_field(o, "scale", "scale")?,
        zero_count: u64_field(o, "zeroCount", "zero_count")?,
        positive: message(o, "positive", "positive", buckets)?,
        negative: message(o, "negative", "negative", buckets)?,
        flags: u32_field(o, "flags", "flags")?,
        zero_threshold: f64_field(o, "zeroThreshold", "zero_threshold")?.unwrap_or(0.0),
    })
}

fn quantile(v: &Value) -> R<proto::ValueAtQuantile> {
    let o = object(v)?;
    Ok(proto::ValueAtQuantile {
        quantile: f64_field(o, "quantile", "quantile")?.unwrap_or(0.0),
        value: f64_field(o, "value", "value")?.unwrap_or(0.0),
    })
}

fn summary_point(v: &Value) -> R<proto::SummaryDataPoint> {
    let o = object(v)?;
    Ok(proto::SummaryDataPoint {
        attributes: attributes(o)?,
        start_time_unix_nano: u64_field(o, "startTimeUnixNano", "start_time_unix_nano")?,
        time_unix_nano: u64_field(o, "timeUnixNano", "time_unix_nano")?,
        count: u64_field(o, "count", "count")?,
        sum: f64_field(o, "sum", "sum")?.unwrap_or(0.0),
        quantile_values: list(o, "quantileValues", "quantile_values", quantile)?,
        flags: u32_field(o, "flags", "flags")?,
    })
}

// ------------------------------------------------------------------ traces

const SPAN_KIND: [&str; 6] = [
    "SPAN_KIND_UNSPECIFIED",
    "SPAN_KIND_INTERNAL",
    "SPAN_KIND_SERVER",
    "SPAN_KIND_CLIENT",
    "SPAN_KIND_PRODUCER",
    "SPAN_KIND_CONSUMER",
];

const STATUS_CODE: [&str; 3] = ["STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR"];

fn resource_spans(v: &Value) -> R<proto::ResourceSpans> {
    let o = object(v)?;
    Ok(proto::ResourceSpans {
        resource: message(o, "resource", "resource", resource)?,
        scope_spans: list(o, "scopeSpans", "scope_spans", scope_spans)?,
    })
}

fn scope_spans(v: &Value) -> R<proto::ScopeSpans> {
    let o = object(v)?;
    Ok(proto::ScopeSpans {
        scope: message(o, "scope", "scope", scope)?,
        spans: list(o, "spans", "spans", span)?,
    })
}

fn span(v: &Value) -> R<proto::Span> {
    let o = object(v)?;
    Ok(proto::Span {
        trace_id: hex_id(o, "traceId", "trace_id")?,
        span_id: hex_id(o, "spanId", "span_id")?,
        trace_state: string(o, "traceState", "trace_state")?,
        parent_span_id: hex_id(o, "parentSpanId", "parent_span_id")?,
        name: string(o, "name", "name")?,
        kind: enumeration(o, "kind", "kind", &SPAN_KIND)?,
        start_time_unix_nano: u64_field(o, "startTimeUnixNano", "start_time_unix_nano")?,
        end_time_unix_nano: u64_field(o, "endTimeUnixNano", "end_time_unix_nano")?,
        attributes: attributes(o)?,
        events: list(o, "events", "events", event)?,
        links: list(o, "links", "links", link)?,
        status: message(o, "status", "status", status)?,
    })
}

fn event(v: &Value) -> R<proto::Event> {
    let o = object(v)?;
    Ok(proto::Event {
        time_unix_nano: u64_field(o, "timeUnixNano", "time_unix_nano")?,
        name: string(o, "name", "name")?,
        attributes: attributes(o)?,
    })
}

fn link(v: &Value) -> R<proto::Link> {
    let o = object(v)?;
    Ok(proto::Link {
        trace_id: hex_id(o, "traceId", "trace_id")?,
        span_id: hex_id(o, "spanId", "span_id")?,
        attributes: attributes(o)?,
    })
}

fn status(v: &Value) -> R<proto::Status> {
    let o = object(v)?;
    Ok(proto::Status {
        message: string(o, "message", "message")?,
        code: enumeration(o, "code", "code", &STATUS_CODE)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_and_hex() {
        assert_eq!(decode_base64("aGVsbG8="), Some(b"hello".to_vec()));
        assert_eq!(decode_base64("aGVsbG8"), Some(b"hello".to_vec()));
        assert_eq!(decode_base64("a*"), None);
        assert_eq!(decode_hex("0aFf"), Some(vec![0x0a, 0xff]));
        assert_eq!(decode_hex("0g"), None);
        assert_eq!(decode_hex("abc"), None);
        assert_eq!(decode_hex("é0"), None);
    }

    #[test]
    fn errors_name_the_path() {
        let body = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz"}]}]}]}"#;
        let err = traces_request(body).expect_err("bad id");
        assert_eq!(
            err,
            "resourceSpans[0].scopeSpans[0].spans[0].traceId: \"zz\" is not a hex string"
        );
        let body = br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"m","gauge":{"dataPoints":[{"asInt":"x"}]}}]}]}]}"#;
        let err = metrics_request(body).expect_err("bad int");
        assert!(
            err.starts_with("resourceMetrics[0].scopeMetrics[0].metrics[0].gauge.dataPoints[0].asInt: expected a signed 64-bit integer"),
            "{err}"
        );
        let err = metrics_request(b"[1]").expect_err("not an object");
        assert_eq!(err, "request: expected an object, found an array");
    }
}
