//! Trace APIs over the `spans` table, answered with the query crate's SQL engine.
//!
//! * `GET /api/v1/traces/{trace_id}`: every span of one trace, no time range needed (the
//!   Parquet files' bloom filter on `trace_id` skips row groups without it).
//! * `GET /api/v1/traces?service=&operation=&kind=&min_duration=&max_duration=&status=&attr.KEY=VALUE&start=&end=&limit=`:
//!   traces with at least one span matching every given condition, newest first.
//! * `GET /api/v1/services[?start=&end=]`: services and their operations.
//! * `GET /api/v1/traces/red?service=&operation=&start=&end=`: rate, errors and p50/p90/p99
//!   duration per service, operation and span kind.
//! * `GET /api/v1/traces/dependencies?start=&end=`: caller → callee edges between services
//!   from parent/child links, with call and error counts.
//!
//! Times are RFC 3339 or Unix seconds (as Prometheus' API takes them); `end` defaults to now
//! and `start` to one hour before `end`. Durations are a number with a unit (`250ms`, `1.5s`,
//! `100us`, `2m`). A bad parameter is a 400 that names it; an unknown parameter too.
//!
//! User values reach SQL only as validated numbers or as string literals through [`sql_str`]
//! (the engine's generic dialect has no backslash escapes, so doubling `'` is the whole
//! escaping); column names come from this file only.

use crate::error::ApiError;
use crate::server::AppState;
use axum::Json;
use axum::extract::{Path, Query, State};
use futures::StreamExt;
use ingest::decode::otlp::{PROMOTED_ATTRIBUTES, SPANS_TABLE};
use query::encode::Format;
use serde_json::{Map, Value};
use std::collections::BTreeSet;

/// Nanoseconds per second.
const NS_PER_S: i64 = 1_000_000_000;
/// Default and largest `limit` of a search.
const DEFAULT_LIMIT: usize = 20;
const MAX_LIMIT: usize = 1000;
/// How far before a window's start a parent (or root) span is looked for.
const PARENT_LOOKBACK_NS: i64 = 3600 * NS_PER_S;
/// The dependency join runs over windows of children this long...
const DEPENDENCY_CHUNK_NS: i64 = 3600 * NS_PER_S;
/// ...this many at a time.
const DEPENDENCY_CONCURRENCY: usize = 2;
/// Columns whose text is JSON, returned as JSON.
const JSON_COLUMNS: [&str; 4] = ["attributes", "resource_attributes", "events", "links"];

/// A SQL string literal holding `s`.
pub fn sql_str(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The columns the spans table has now (it grows as new fields arrive).
struct Spans {
    cols: BTreeSet<String>,
}

impl Spans {
    /// `None` when no span was ever written.
    fn load(app: &AppState) -> Option<Self> {
        let schema = app.db.table_schema(SPANS_TABLE)?;
        let mut cols: BTreeSet<String> = schema.tags.into_iter().collect();
        cols.extend(schema.fields.into_keys());
        Some(Self { cols })
    }

    fn has(&self, c: &str) -> bool {
        self.cols.contains(c)
    }

    /// The column, or a typed NULL when no span has had it yet.
    fn col(&self, alias: &str, c: &str, sql_type: &str) -> String {
        if self.has(c) {
            if alias.is_empty() {
                format!("\"{c}\"")
            } else {
                format!("{alias}.\"{c}\"")
            }
        } else {
            format!("CAST(NULL AS {sql_type})")
        }
    }
}

async fn rows(app: &AppState, sql: String) -> Result<Vec<Map<String, Value>>, ApiError> {
    tracing::debug!(sql = %sql, "Trace API query.");
    let started = std::time::Instant::now();
    let result = app.engine.sql(&sql).await;
    app.metrics.observe_query(started.elapsed(), result.is_ok());
    let result = result?;
    let bytes = tokio::task::spawn_blocking(move || {
        query::encode::encode(Format::Json, &result.schema, &result.batches)
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::internal)?;
    serde_json::from_slice(&bytes).map_err(ApiError::internal)
}

// ------------------------------------------------------------------ parameters

type Params = Vec<(String, String)>;

fn bad(param: &str, why: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!("query parameter `{param}`: {why}"))
}

/// Rejects parameters outside `known` (and `attr.*` when `attrs` is set).
fn check_known(params: &Params, known: &[&str], attrs: bool) -> Result<(), ApiError> {
    for (k, _) in params {
        if known.contains(&k.as_str()) || (attrs && k.starts_with("attr.") && k.len() > 5) {
            continue;
        }
        let mut all: Vec<String> = known.iter().map(|s| format!("`{s}`")).collect();
        if attrs {
            all.push("`attr.KEY`".into());
        }
        return Err(ApiError::bad_request(format!(
            "unknown query parameter `{k}`; expected {}",
            all.join(", ")
        )));
    }
    Ok(())
}

fn param<'a>(params: &'a Params, name: &str) -> Result<Option<&'a str>, ApiError> {
    let mut found = params.iter().filter(|(k, _)| k == name);
    let first = found.next().map(|(_, v)| v.as_str());
    if found.next().is_some() {
        return Err(bad(name, "given more than once"));
    }
    Ok(first.filter(|v| !v.is_empty()))
}

/// RFC 3339 or Unix seconds (fractions allowed), in nanoseconds.
fn parse_time(name: &str, v: &str) -> Result<i64, ApiError> {
    if let Ok(secs) = v.parse::<f64>() {
        let ns = secs * 1e9;
        if ns.is_finite() && ns.abs() < 9.2e18 {
            return Ok(ns.round() as i64);
        }
        return Err(bad(name, format!("{v:?} is out of range")));
    }
    arrow::compute::kernels::cast_utils::string_to_timestamp_nanos(v).map_err(|_| {
        bad(
            name,
            format!("{v:?} is neither RFC 3339 (2024-05-01T12:00:00Z) nor Unix seconds"),
        )
    })
}

/// `[start, end]` in ns: `end` defaults to now, `start` to `end` minus `default_span_ns`.
fn window(params: &Params, default_span_ns: i64) -> Result<(i64, i64), ApiError> {
    let end = match param(params, "end")? {
        Some(v) => parse_time("end", v)?,
        None => ingest::clock::Clock::now_ns(&ingest::clock::SystemClock),
    };
    let start = match param(params, "start")? {
        Some(v) => parse_time("start", v)?,
        None => end.saturating_sub(default_span_ns),
    };
    if start > end {
        return Err(bad("start", "is after `end`"));
    }
    Ok((start, end))
}

/// `250ms`, `1.5s`, `100us`, `2m`, `1h`, `300ns` in nanoseconds.
fn parse_duration(name: &str, v: &str) -> Result<i64, ApiError> {
    let v = v.trim();
    let split = v
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| {
            bad(
                name,
                format!("{v:?} has no unit: use ns, us, ms, s, m or h"),
            )
        })?;
    let (num, unit) = v.split_at(split);
    let factor = match unit {
        "ns" => 1.0,
        "us" | "µs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        "m" => 60e9,
        "h" => 3600e9,
        _ => {
            return Err(bad(
                name,
                format!("unknown unit {unit:?}: use ns, us, ms, s, m or h"),
            ));
        }
    };
    let n: f64 = num
        .parse()
        .map_err(|_| bad(name, format!("{v:?} is not a duration")))?;
    let ns = n * factor;
    if !ns.is_finite() || ns >= 9.2e18 {
        return Err(bad(name, format!("{v:?} is out of range")));
    }
    Ok(ns.round() as i64)
}

fn time_filter(alias: &str, start: i64, end: i64) -> String {
    let t = if alias.is_empty() {
        "time".to_string()
    } else {
        format!("{alias}.time")
    };
    format!("{t} >= to_timestamp_nanos({start}) AND {t} <= to_timestamp_nanos({end})")
}

fn is_hex_id(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Turns JSON-text columns into JSON and puts promoted attributes back under their OTLP keys.
fn span_json(mut row: Map<String, Value>) -> Map<String, Value> {
    for c in JSON_COLUMNS {
        if let Some(Value::String(text)) = row.get(c)
            && let Ok(v) = serde_json::from_str::<Value>(text)
        {
            row.insert(c.to_string(), v);
        }
    }
    let mut attrs = match row.remove("attributes") {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    for (column, _, keys) in PROMOTED_ATTRIBUTES {
        if let Some(v) = row.remove(column)
            && !v.is_null()
        {
            attrs.insert(keys[0].to_string(), v);
        }
    }
    row.insert("attributes".into(), Value::Object(attrs));
    row
}

/// The span columns returned by the APIs that list spans.
fn span_select(spans: &Spans) -> String {
    let mut cols = vec![
        "trace_id".to_string(),
        "span_id".to_string(),
        spans.col("", "parent_span_id", "VARCHAR") + " AS parent_span_id",
        "service_name".to_string(),
        "name".to_string(),
        "kind".to_string(),
        "CAST(time AS BIGINT) AS start_time_unix_nano".to_string(),
        "end_time AS end_time_unix_nano".to_string(),
        "duration_ns".to_string(),
        "status_code".to_string(),
    ];
    let optional = [
        "status_message",
        "attributes",
        "resource_attributes",
        "events",
        "links",
        "scope_name",
        "scope_version",
    ];
    for c in optional
        .iter()
        .copied()
        .chain(PROMOTED_ATTRIBUTES.iter().map(|(c, _, _)| *c))
    {
        if spans.has(c) {
            cols.push(format!("\"{c}\""));
        }
    }
    cols.join(", ")
}

// ------------------------------------------------------------------ handlers

/// `GET /api/v1/traces/{trace_id}`.
pub async fn trace_by_id(
    State(app): State<AppState>,
    Path(trace_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    if !is_hex_id(&trace_id, 32) {
        return Err(ApiError::bad_request(format!(
            "path parameter `trace_id` must be 32 hex digits, got {:?}",
            trace_id.chars().take(64).collect::<String>()
        )));
    }
    let trace_id = trace_id.to_ascii_lowercase();
    let not_found = || ApiError {
        status: axum::http::StatusCode::NOT_FOUND,
        code: "not_found",
        message: format!("no spans of trace {trace_id}"),
    };
    let Some(spans) = Spans::load(&app) else {
        return Err(not_found());
    };
    let sql = format!(
        "SELECT {} FROM {SPANS_TABLE} WHERE trace_id = {} ORDER BY time, span_id",
        span_select(&spans),
        sql_str(&trace_id)
    );
    let found = rows(&app, sql).await?;
    if found.is_empty() {
        return Err(not_found());
    }
    let spans: Vec<Value> = found
        .into_iter()
        .map(|r| Value::Object(span_json(r)))
        .collect();
    Ok(Json(
        serde_json::json!({ "trace_id": trace_id, "spans": spans }),
    ))
}

/// Conditions for one `attr.KEY=VALUE`.
fn attr_condition(spans: &Spans, key: &str, value: &str) -> Result<String, ApiError> {
    let name = format!("attr.{key}");
    if let Some((column, integer, _)) = PROMOTED_ATTRIBUTES
        .iter()
        .find(|(_, _, keys)| keys.contains(&key))
    {
        let cond = if *integer {
            let n: i64 = value
                .trim()
                .parse()
                .map_err(|_| bad(&name, format!("{value:?} is not an integer")))?;
            format!("\"{column}\" = {n}")
        } else {
            format!("\"{column}\" = {}", sql_str(value))
        };
        return Ok(if spans.has(column) {
            cond
        } else {
            "FALSE".into()
        });
    }
    // The maps are compact JSON with sorted keys, so `"key":value` followed by `,` or `}`
    // finds the attribute exactly (a JSON string value carries its own closing quote).
    let k = Value::String(key.to_string()).to_string();
    let mut needles = vec![format!("{k}:{}", Value::String(value.to_string()))];
    let literal = value.trim();
    if literal.parse::<i64>().is_ok()
        || literal.parse::<f64>().is_ok_and(f64::is_finite)
        || literal == "true"
        || literal == "false"
    {
        needles.push(format!("{k}:{literal},"));
        needles.push(format!("{k}:{literal}}}"));
    }
    let mut ors = Vec::new();
    for c in ["attributes", "resource_attributes"] {
        if spans.has(c) {
            for n in &needles {
                ors.push(format!("strpos(\"{c}\", {}) > 0", sql_str(n)));
            }
        }
    }
    if ors.is_empty() {
        return Ok("FALSE".into());
    }
    Ok(format!("({})", ors.join(" OR ")))
}

/// `GET /api/v1/traces`: search.
pub async fn search(
    State(app): State<AppState>,
    Query(params): Query<Params>,
) -> Result<Json<Value>, ApiError> {
    check_known(
        &params,
        &[
            "service",
            "operation",
            "kind",
            "min_duration",
            "max_duration",
            "status",
            "start",
            "end",
            "limit",
        ],
        true,
    )?;
    let (start, end) = window(&params, 3600 * NS_PER_S)?;
    let limit = match param(&params, "limit")? {
        None => DEFAULT_LIMIT,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| bad("limit", format!("must be an integer from 1 to {MAX_LIMIT}")))?,
    };
    let mut conds = vec![time_filter("", start, end)];
    let Some(spans) = Spans::load(&app) else {
        // Parameters are still checked, so a bad request fails the same way on an empty store.
        search_conditions(
            &params,
            &Spans {
                cols: BTreeSet::new(),
            },
            &mut conds,
        )?;
        return Ok(Json(serde_json::json!({ "traces": [] })));
    };
    search_conditions(&params, &spans, &mut conds)?;
    let sql = format!(
        "SELECT trace_id, CAST(MIN(time) AS BIGINT) AS first_start_ns, COUNT(*) AS matched_spans, \
         MAX(duration_ns) AS max_duration_ns \
         FROM {SPANS_TABLE} WHERE {} GROUP BY trace_id ORDER BY first_start_ns DESC, trace_id LIMIT {limit}",
        conds.join(" AND ")
    );
    let found = rows(&app, sql).await?;
    let ids: Vec<String> = found
        .iter()
        .filter_map(|r| r.get("trace_id").and_then(Value::as_str))
        .filter(|id| is_hex_id(id, 32))
        .map(sql_str)
        .collect();
    let mut roots = Map::new();
    if !ids.is_empty() {
        let root_cond = if spans.has("parent_span_id") {
            "parent_span_id IS NULL"
        } else {
            "TRUE"
        };
        let sql = format!(
            "SELECT trace_id, service_name, name, CAST(time AS BIGINT) AS start_ns, duration_ns \
             FROM {SPANS_TABLE} WHERE trace_id IN ({}) AND {root_cond} AND {}",
            ids.join(", "),
            time_filter("", start.saturating_sub(PARENT_LOOKBACK_NS), end)
        );
        for r in rows(&app, sql).await? {
            if let Some(id) = r.get("trace_id").and_then(Value::as_str) {
                roots.insert(id.to_string(), Value::Object(r.clone()));
            }
        }
    }
    let traces: Vec<Value> = found
        .into_iter()
        .map(|r| {
            let id = r.get("trace_id").and_then(Value::as_str).unwrap_or("");
            let root = roots.get(id);
            let get = |k: &str| root.and_then(|x| x.get(k)).cloned().unwrap_or(Value::Null);
            serde_json::json!({
                "trace_id": id,
                "start_time_unix_nano": get("start_ns").as_i64().map(Value::from).unwrap_or_else(|| r.get("first_start_ns").cloned().unwrap_or(Value::Null)),
                "root_service_name": get("service_name"),
                "root_name": get("name"),
                "duration_ns": get("duration_ns"),
                "matched_spans": r.get("matched_spans").cloned().unwrap_or(Value::Null),
                "max_matched_duration_ns": r.get("max_duration_ns").cloned().unwrap_or(Value::Null),
            })
        })
        .collect();
    Ok(Json(serde_json::json!({ "traces": traces })))
}

fn search_conditions(
    params: &Params,
    spans: &Spans,
    conds: &mut Vec<String>,
) -> Result<(), ApiError> {
    if let Some(s) = param(params, "service")? {
        conds.push(format!("service_name = {}", sql_str(s)));
    }
    if let Some(s) = param(params, "operation")? {
        conds.push(format!("name = {}", sql_str(s)));
    }
    if let Some(k) = param(params, "kind")? {
        let k = k.to_ascii_lowercase();
        if ![
            "internal",
            "server",
            "client",
            "producer",
            "consumer",
            "unspecified",
        ]
        .contains(&k.as_str())
        {
            return Err(bad(
                "kind",
                "must be internal, server, client, producer, consumer or unspecified",
            ));
        }
        conds.push(format!("kind = {}", sql_str(&k)));
    }
    if let Some(v) = param(params, "min_duration")? {
        conds.push(format!(
            "duration_ns >= {}",
            parse_duration("min_duration", v)?
        ));
    }
    if let Some(v) = param(params, "max_duration")? {
        conds.push(format!(
            "duration_ns <= {}",
            parse_duration("max_duration", v)?
        ));
    }
    if let Some(s) = param(params, "status")? {
        let s = s.to_ascii_lowercase();
        if !["ok", "error", "unset"].contains(&s.as_str()) {
            return Err(bad("status", "must be ok, error or unset"));
        }
        conds.push(format!("status_code = {}", sql_str(&s)));
    }
    for (k, v) in params {
        if let Some(key) = k.strip_prefix("attr.") {
            conds.push(attr_condition(spans, key, v)?);
        }
    }
    Ok(())
}

/// `GET /api/v1/services`.
pub async fn services(
    State(app): State<AppState>,
    Query(params): Query<Params>,
) -> Result<Json<Value>, ApiError> {
    check_known(&params, &["start", "end"], false)?;
    let range = if param(&params, "start")?.is_some() || param(&params, "end")?.is_some() {
        let (s, e) = window(&params, 3600 * NS_PER_S)?;
        time_filter("", s, e)
    } else {
        "TRUE".to_string()
    };
    if Spans::load(&app).is_none() {
        return Ok(Json(serde_json::json!({ "services": [] })));
    }
    let sql = format!(
        "SELECT service_name, name, COUNT(*) AS spans FROM {SPANS_TABLE} WHERE {range} \
         GROUP BY service_name, name ORDER BY service_name, name"
    );
    let mut out: Vec<(String, Vec<Value>)> = Vec::new();
    for r in rows(&app, sql).await? {
        let service = r
            .get("service_name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let op = serde_json::json!({
            "name": r.get("name").cloned().unwrap_or(Value::Null),
            "spans": r.get("spans").cloned().unwrap_or(Value::Null),
        });
        match out.last_mut() {
            Some((s, ops)) if *s == service => ops.push(op),
            _ => out.push((service, vec![op])),
        }
    }
    let services: Vec<Value> = out
        .into_iter()
        .map(|(name, operations)| serde_json::json!({ "name": name, "operations": operations }))
        .collect();
    Ok(Json(serde_json::json!({ "services": services })))
}

/// `GET /api/v1/traces/red`.
pub async fn red(
    State(app): State<AppState>,
    Query(params): Query<Params>,
) -> Result<Json<Value>, ApiError> {
    check_known(&params, &["service", "operation", "start", "end"], false)?;
    let (start, end) = window(&params, 3600 * NS_PER_S)?;
    let mut conds = vec![time_filter("", start, end)];
    if let Some(s) = param(&params, "service")? {
        conds.push(format!("service_name = {}", sql_str(s)));
    }
    if let Some(s) = param(&params, "operation")? {
        conds.push(format!("name = {}", sql_str(s)));
    }
    let seconds = ((end - start) as f64 / 1e9).max(1e-9);
    let window_json = serde_json::json!({ "start_unix_nano": start, "end_unix_nano": end });
    if Spans::load(&app).is_none() {
        return Ok(Json(
            serde_json::json!({ "window": window_json, "operations": [] }),
        ));
    }
    let pct = |p: f64| format!("approx_percentile_cont({p}) WITHIN GROUP (ORDER BY duration_ns)");
    let sql = format!(
        "SELECT service_name, name, kind, COUNT(*) AS requests, \
         SUM(CASE WHEN status_code = 'error' THEN 1 ELSE 0 END) AS errors, \
         {} AS p50, {} AS p90, {} AS p99 \
         FROM {SPANS_TABLE} WHERE {} GROUP BY service_name, name, kind \
         ORDER BY service_name, name, kind",
        pct(0.5),
        pct(0.9),
        pct(0.99),
        conds.join(" AND ")
    );
    let ops: Vec<Value> = rows(&app, sql)
        .await?
        .into_iter()
        .map(|r| {
            let requests = r.get("requests").and_then(Value::as_f64).unwrap_or(0.0);
            let errors = r.get("errors").and_then(Value::as_f64).unwrap_or(0.0);
            let ns = |k: &str| r.get(k).and_then(Value::as_f64).map(|v| v.round() as i64);
            serde_json::json!({
                "service_name": r.get("service_name"),
                "operation": r.get("name"),
                "kind": r.get("kind"),
                "requests": requests as u64,
                "errors": errors as u64,
                "rate_per_second": requests / seconds,
                "error_ratio": if requests > 0.0 { errors / requests } else { 0.0 },
                "p50_duration_ns": ns("p50"),
                "p90_duration_ns": ns("p90"),
                "p99_duration_ns": ns("p99"),
            })
        })
        .collect();
    Ok(Json(
        serde_json::json!({ "window": window_json, "operations": ops }),
    ))
}

/// `GET /api/v1/traces/dependencies`.
pub async fn dependencies(
    State(app): State<AppState>,
    Query(params): Query<Params>,
) -> Result<Json<Value>, ApiError> {
    check_known(&params, &["start", "end"], false)?;
    let (start, end) = window(&params, 3600 * NS_PER_S)?;
    let window_json = serde_json::json!({ "start_unix_nano": start, "end_unix_nano": end });
    let Some(spans) = Spans::load(&app) else {
        return Ok(Json(
            serde_json::json!({ "window": window_json, "dependencies": [] }),
        ));
    };
    if !spans.has("parent_span_id") {
        return Ok(Json(
            serde_json::json!({ "window": window_json, "dependencies": [] }),
        ));
    }
    // Chunks cover only the part of the window that holds spans: "everything" in the UI is a
    // window of decades, which would otherwise be hundreds of thousands of empty joins.
    let extent = rows(
        &app,
        format!(
            "SELECT CAST(MIN(time) AS BIGINT) AS lo, CAST(MAX(time) AS BIGINT) AS hi \
             FROM {SPANS_TABLE} WHERE {}",
            time_filter("", start, end)
        ),
    )
    .await?;
    let bound = |k: &str| {
        extent
            .first()
            .and_then(|r| r.get(k))
            .and_then(Value::as_i64)
    };
    let (Some(lo), Some(hi)) = (bound("lo"), bound("hi")) else {
        return Ok(Json(
            serde_json::json!({ "window": window_json, "dependencies": [] }),
        ));
    };
    let end = hi.min(end);
    // One join per chunk of the window keeps the join's memory bounded by a chunk's spans
    // (a day of 10 M spans in one self-join is over the per-query pool); the counts add up.
    // Chunks stay on the window's own hour grid, starting at the one that holds the first span.
    let mut chunk_start =
        start + (lo.max(start) - start) / DEPENDENCY_CHUNK_NS * DEPENDENCY_CHUNK_NS;
    let mut chunks = Vec::new();
    loop {
        let chunk_end = chunk_start.saturating_add(DEPENDENCY_CHUNK_NS).min(end);
        // The window's end is inclusive; a chunk's end belongs to the next chunk.
        let child_filter = if chunk_end == end {
            time_filter("c", chunk_start, chunk_end)
        } else {
            format!(
                "c.time >= to_timestamp_nanos({chunk_start}) AND c.time < to_timestamp_nanos({chunk_end})"
            )
        };
        chunks.push(format!(
            "SELECT p.service_name AS caller, c.service_name AS callee, COUNT(*) AS calls, \
             SUM(CASE WHEN c.status_code = 'error' THEN 1 ELSE 0 END) AS errors \
             FROM {SPANS_TABLE} c JOIN {SPANS_TABLE} p \
               ON c.trace_id = p.trace_id AND c.parent_span_id = CAST(p.span_id AS VARCHAR) \
             WHERE {} AND {} AND CAST(p.service_name AS VARCHAR) <> CAST(c.service_name AS VARCHAR) \
             GROUP BY p.service_name, c.service_name",
            child_filter,
            time_filter(
                "p",
                chunk_start.saturating_sub(PARENT_LOOKBACK_NS),
                chunk_end
            ),
        ));
        if chunk_end == end {
            break;
        }
        chunk_start = chunk_end;
    }
    // A few chunks at a time keep both cores busy (one join is mostly one thread) while the
    // memory stays a few chunks' worth; the counts add up in any order.
    let mut results = futures::stream::iter(chunks.into_iter().map(|sql| rows(&app, sql)))
        .buffer_unordered(DEPENDENCY_CONCURRENCY);
    let mut edges: std::collections::BTreeMap<(String, String), (u64, u64)> = Default::default();
    while let Some(chunk) = results.next().await {
        for r in chunk? {
            let text = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("").to_string();
            let count = |k: &str| r.get(k).and_then(Value::as_u64).unwrap_or(0);
            let e = edges.entry((text("caller"), text("callee"))).or_default();
            e.0 += count("calls");
            e.1 += count("errors");
        }
    }
    let deps: Vec<Value> = edges
        .into_iter()
        .map(|((caller, callee), (calls, errors))| {
            serde_json::json!({ "caller": caller, "callee": callee, "calls": calls, "errors": errors })
        })
        .collect();
    // Where spans begin and end inside the window, so a client can turn counts into rates over
    // the time that holds data rather than the whole (possibly decades-long) window.
    Ok(Json(serde_json::json!({
        "window": window_json,
        "first_span_unix_nano": lo,
        "last_span_unix_nano": hi,
        "dependencies": deps,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_literals_double_quotes_only() {
        assert_eq!(sql_str("a'b"), "'a''b'");
        assert_eq!(sql_str(r"\'; DROP"), r"'\''; DROP'");
    }

    #[test]
    fn durations_and_times_parse_or_name_the_parameter() {
        assert_eq!(parse_duration("d", "250ms").expect("ok"), 250_000_000);
        assert_eq!(parse_duration("d", "1.5s").expect("ok"), 1_500_000_000);
        assert_eq!(parse_duration("d", "100us").expect("ok"), 100_000);
        assert_eq!(parse_duration("d", "2m").expect("ok"), 120_000_000_000);
        let e = parse_duration("min_duration", "10").expect_err("no unit");
        assert!(e.message.contains("`min_duration`"), "{}", e.message);
        assert!(parse_duration("d", "1e999s").is_err());
        assert_eq!(
            parse_time("t", "1700000000").expect("ok"),
            1_700_000_000 * NS_PER_S
        );
        assert_eq!(
            parse_time("t", "2023-11-14T22:13:20Z").expect("ok"),
            1_700_000_000 * NS_PER_S
        );
        let e = parse_time("start", "yesterday").expect_err("bad");
        assert!(e.message.contains("`start`"), "{}", e.message);
    }

    #[test]
    fn attribute_needles_are_json_literals() {
        let spans = Spans {
            cols: ["attributes".to_string(), "http_route".to_string()].into(),
        };
        let c = attr_condition(&spans, "user.id", "u'1").expect("ok");
        assert_eq!(c, r#"(strpos("attributes", '"user.id":"u''1"') > 0)"#);
        let c = attr_condition(&spans, "n", "5").expect("ok");
        assert!(
            c.contains(r#"'"n":5,'"#) && c.contains(r#"'"n":5}'"#),
            "{c}"
        );
        let c = attr_condition(&spans, "http.route", "/x").expect("ok");
        assert_eq!(c, r#""http_route" = '/x'"#);
        let c = attr_condition(&spans, "http.status_code", "200").expect("ok");
        assert_eq!(
            c, "FALSE",
            "a promoted column no span has yet matches nothing"
        );
        let e = attr_condition(&spans, "http.response.status_code", "abc").expect_err("int");
        assert!(e.message.contains("`attr.http.response.status_code`"));
    }
}
