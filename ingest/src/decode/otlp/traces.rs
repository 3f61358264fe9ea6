//! OTLP spans to rows of the `spans` table.
//!
//! Tags (the row's identity, so a retried export overwrites instead of duplicating):
//! `service_name` (resource `service.name`, `unknown_service` when absent) and `span_id`
//! (16 hex digits). `time` is the span's start. Fields: `trace_id` (32 hex digits; the Parquet
//! files carry a bloom filter on it), `parent_span_id` (absent for a root), `name`, `kind`
//! (`internal`, `server`, `client`, `producer`, `consumer`, `unspecified`), `end_time` (Unix
//! ns), `duration_ns`, `status_code` (`unset`, `ok`, `error`), `status_message`, the promoted
//! attributes of [`PROMOTED_ATTRIBUTES`], and as JSON text: `attributes` (the other span
//! attributes, keys sorted), `resource_attributes`, `events`, `links`; `scope_name`,
//! `scope_version`.

use super::proto::{self, any_value::Value as AnyValueKind};
use super::{Decoded, attributes_json, hex, time_ns, value_string};
use crate::point::{FieldValue, Point};

/// The table spans are written to.
pub const SPANS_TABLE: &str = "spans";
/// Service name of spans whose resource has no `service.name` (the SDKs' default).
const UNKNOWN_SERVICE: &str = "unknown_service";

/// Attributes stored in their own column instead of the `attributes` map: column, whether it
/// is an integer column, and the attribute keys it is taken from (current name first, then
/// older semantic-convention names used when the current one is absent).
pub const PROMOTED_ATTRIBUTES: [(&str, bool, &[&str]); 8] = [
    ("http_route", false, &["http.route"]),
    (
        "http_request_method",
        false,
        &["http.request.method", "http.method"],
    ),
    (
        "http_response_status_code",
        true,
        &["http.response.status_code", "http.status_code"],
    ),
    ("rpc_system", false, &["rpc.system"]),
    ("rpc_service", false, &["rpc.service"]),
    ("rpc_method", false, &["rpc.method"]),
    ("db_system", false, &["db.system.name", "db.system"]),
    ("peer_service", false, &["peer.service"]),
];

const KINDS: [&str; 6] = [
    "unspecified",
    "internal",
    "server",
    "client",
    "producer",
    "consumer",
];
const STATUS: [&str; 3] = ["unset", "ok", "error"];

/// Maps a whole request.
pub(super) fn to_points(request: proto::ExportTraceServiceRequest) -> Decoded {
    let mut out = Decoded::default();
    for rs in request.resource_spans {
        let resource = rs.resource.map(|r| r.attributes).unwrap_or_default();
        let service = resource
            .iter()
            .rev()
            .find(|kv| kv.key == "service.name")
            .map(|kv| value_string(kv.value.as_ref()))
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| UNKNOWN_SERVICE.to_string());
        let others: Vec<proto::KeyValue> = resource
            .into_iter()
            .filter(|kv| kv.key != "service.name")
            .collect();
        let resource_json = (!others.is_empty()).then(|| attributes_json(&others).to_string());
        for ss in rs.scope_spans {
            let scope = ss.scope.unwrap_or_default();
            for span in ss.spans {
                let index = out.items;
                out.items += 1;
                match span_point(span, &service, resource_json.as_deref(), &scope) {
                    Ok(p) => out.points.push((index, p)),
                    Err(e) => out.rejected.push((index, format!("span {index}: {e}"))),
                }
            }
        }
    }
    out
}

fn id(bytes: &[u8], len: usize, what: &str) -> Result<String, String> {
    if bytes.len() != len {
        return Err(format!("{what} has {} bytes, expected {len}", bytes.len()));
    }
    if bytes.iter().all(|b| *b == 0) {
        return Err(format!("{what} is all zeroes (invalid)"));
    }
    Ok(hex(bytes))
}

fn span_point(
    span: proto::Span,
    service: &str,
    resource_json: Option<&str>,
    scope: &proto::InstrumentationScope,
) -> Result<Point, String> {
    let trace_id = id(&span.trace_id, 16, "trace_id")?;
    let span_id = id(&span.span_id, 8, "span_id")?;
    let parent = if span.parent_span_id.is_empty() || span.parent_span_id.iter().all(|b| *b == 0) {
        None
    } else {
        Some(id(&span.parent_span_id, 8, "parent_span_id")?)
    };
    if span.start_time_unix_nano == 0 {
        return Err("start_time_unix_nano is missing".into());
    }
    let start = time_ns(span.start_time_unix_nano, "start_time_unix_nano")?;
    let end = if span.end_time_unix_nano == 0 {
        start
    } else {
        time_ns(span.end_time_unix_nano, "end_time_unix_nano")?
    };
    let duration = end.saturating_sub(start).max(0);
    let kind = usize::try_from(span.kind)
        .ok()
        .and_then(|k| KINDS.get(k))
        .copied()
        .unwrap_or("unspecified");
    let status = span.status.unwrap_or_default();
    let status_code = usize::try_from(status.code)
        .ok()
        .and_then(|k| STATUS.get(k))
        .copied()
        .unwrap_or("unset");

    let mut fields: Vec<(String, FieldValue)> = Vec::with_capacity(20);
    let mut put = |k: &str, v: FieldValue| fields.push((k.to_string(), v));
    put("trace_id", FieldValue::Str(trace_id));
    if let Some(p) = parent {
        put("parent_span_id", FieldValue::Str(p));
    }
    put("name", FieldValue::Str(span.name));
    put("kind", FieldValue::Str(kind.to_string()));
    put("end_time", FieldValue::I64(end));
    put("duration_ns", FieldValue::I64(duration));
    put("status_code", FieldValue::Str(status_code.to_string()));
    if !status.message.is_empty() {
        put("status_message", FieldValue::Str(status.message));
    }
    if !scope.name.is_empty() {
        put("scope_name", FieldValue::Str(scope.name.clone()));
    }
    if !scope.version.is_empty() {
        put("scope_version", FieldValue::Str(scope.version.clone()));
    }
    if let Some(r) = resource_json {
        put("resource_attributes", FieldValue::Str(r.to_string()));
    }

    // Promoted attributes come out of the map; the rest stays in it.
    let mut attrs = span.attributes;
    for (column, integer, keys) in PROMOTED_ATTRIBUTES {
        let Some(pos) = keys
            .iter()
            .find_map(|k| attrs.iter().rposition(|kv| kv.key == *k))
        else {
            continue;
        };
        let value = if integer {
            match attrs[pos].value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(AnyValueKind::IntValue(n)) => Some(FieldValue::I64(*n)),
                Some(AnyValueKind::StringValue(s)) => s.trim().parse().ok().map(FieldValue::I64),
                Some(AnyValueKind::DoubleValue(d)) if d.fract() == 0.0 && d.abs() < 9e15 => {
                    Some(FieldValue::I64(*d as i64))
                }
                _ => None,
            }
        } else {
            Some(FieldValue::Str(value_string(attrs[pos].value.as_ref())))
        };
        if let Some(v) = value {
            let key = attrs[pos].key.clone();
            attrs.retain(|kv| kv.key != key);
            put(column, v);
        }
    }
    if !attrs.is_empty() {
        put(
            "attributes",
            FieldValue::Str(attributes_json(&attrs).to_string()),
        );
    }
    if !span.events.is_empty() {
        let events: Vec<serde_json::Value> = span
            .events
            .iter()
            .map(|e| {
                let mut o = serde_json::Map::new();
                o.insert("time_unix_nano".into(), e.time_unix_nano.into());
                o.insert("name".into(), e.name.clone().into());
                if !e.attributes.is_empty() {
                    o.insert("attributes".into(), attributes_json(&e.attributes));
                }
                serde_json::Value::Object(o)
            })
            .collect();
        put(
            "events",
            FieldValue::Str(serde_json::Value::Array(events).to_string()),
        );
    }
    if !span.links.is_empty() {
        let links: Vec<serde_json::Value> = span
            .links
            .iter()
            .map(|l| {
                let mut o = serde_json::Map::new();
                o.insert("trace_id".into(), hex(&l.trace_id).into());
                o.insert("span_id".into(), hex(&l.span_id).into());
                if !l.attributes.is_empty() {
                    o.insert("attributes".into(), attributes_json(&l.attributes));
                }
                serde_json::Value::Object(o)
            })
            .collect();
        put(
            "links",
            FieldValue::Str(serde_json::Value::Array(links).to_string()),
        );
    }
    Ok(Point {
        table: SPANS_TABLE.to_string(),
        tags: vec![
            ("service_name".to_string(), service.to_string()),
            ("span_id".to_string(), span_id),
        ],
        fields,
        time_ns: start,
    })
}
