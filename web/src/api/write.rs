//! Ingest endpoints: Prometheus remote write 1.0 and Influx line protocol (v2 and v1 paths).

use crate::api::body;
use crate::error::ApiError;
use crate::ratelimit::Principal;
use crate::server::AppState;
use axum::Extension;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ingest::db::Source;
use ingest::decode::{line_protocol, remote_write};
use ingest::point::Precision;
use serde::Deserialize;

/// `POST /api/v1/write`: snappy-compressed protobuf `WriteRequest`.
pub async fn remote_write(
    State(app): State<AppState>,
    who: Option<Extension<Principal>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    if let Some(ct) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    {
        let mime = ct.split(';').next().unwrap_or("").trim();
        if mime != "application/x-protobuf" {
            return Err(ApiError::unsupported_media(format!(
                "Content-Type {ct:?} is not supported here: remote write 1.0 sends application/x-protobuf"
            )));
        }
    }
    let enc = body::content_encoding(&headers);
    if enc != "snappy" {
        return Err(ApiError::unsupported_media(format!(
            "Content-Encoding {enc:?} is not supported here: remote write 1.0 sends snappy (block format)"
        )));
    }
    let bytes = body::read_vec(&headers, body, app.limits).await?;
    let decoded =
        remote_write::decode_batch(&bytes, app.limits.max_decoded).map_err(|e| match e {
            remote_write::RemoteWriteError::TooLarge { .. } => ApiError::too_large(e.to_string()),
            other => ApiError::bad_request(other.to_string()),
        })?;
    app.admit(who.as_deref(), decoded.batch.len())?;
    let mut errors = decoded.errors;
    // The WAL keeps the compressed body rather than the decoded samples.
    let out = app
        .db
        .write_decoded(decoded.batch, Some(Source::RemoteWrite(bytes)))
        .await?;
    for (i, e) in &out.rejected {
        errors.push(format!("sample {i}: {e}"));
    }
    if errors.is_empty() {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let mut text = format!(
        "{} of the request's samples were rejected ({} accepted):\n",
        errors.len(),
        out.accepted
    );
    for e in errors.iter().take(100) {
        text.push_str(e);
        text.push('\n');
    }
    Ok((StatusCode::BAD_REQUEST, text).into_response())
}

/// Query parameters of the line-protocol endpoints.
#[derive(Debug, Deserialize)]
pub struct LpParams {
    /// v2: target bucket.
    bucket: Option<String>,
    /// v1: target database.
    db: Option<String>,
    /// Timestamp precision.
    precision: Option<String>,
}

/// `POST /api/v2/write?bucket=B&precision=ns|us|ms|s`.
pub async fn line_protocol_v2(
    State(app): State<AppState>,
    who: Option<Extension<Principal>>,
    Query(p): Query<LpParams>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    if p.bucket.as_deref().is_none_or(str::is_empty) {
        return Err(ApiError::bad_request("missing query parameter `bucket`"));
    }
    line_protocol(app, who, p.precision.as_deref(), headers, body).await
}

/// `POST /write?db=B&precision=...` (InfluxDB 1.x form).
pub async fn line_protocol_v1(
    State(app): State<AppState>,
    who: Option<Extension<Principal>>,
    Query(p): Query<LpParams>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    if p.db.as_deref().is_none_or(str::is_empty) {
        return Err(ApiError::bad_request("missing query parameter `db`"));
    }
    line_protocol(app, who, p.precision.as_deref(), headers, body).await
}

async fn line_protocol(
    app: AppState,
    who: Option<Extension<Principal>>,
    precision: Option<&str>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let precision: Precision = match precision {
        None | Some("") => Precision::Nanosecond,
        Some(s) => s.parse().map_err(ApiError::bad_request)?,
    };
    let enc = body::content_encoding(&headers);
    if enc != "identity" && enc != "gzip" {
        return Err(ApiError::unsupported_media(format!(
            "Content-Encoding {enc:?} is not supported: send identity or gzip"
        )));
    }
    let bytes = body::read_vec(&headers, body, app.limits).await?;
    let text = if enc == "gzip" {
        body::gunzip(&bytes, app.limits.max_decoded)?
    } else {
        if bytes.len() > app.limits.max_decoded {
            return Err(ApiError::too_large(format!(
                "body exceeds the decoded-size limit of {} bytes",
                app.limits.max_decoded
            )));
        }
        bytes
    };
    let now = ingest::clock::Clock::now_ns(&ingest::clock::SystemClock);
    let now = now - now.rem_euclid(precision.to_nanos_factor());
    let parsed = line_protocol::parse_body(text, precision, now);
    let total = parsed.batch.len() + parsed.errors.len();
    app.admit(who.as_deref(), parsed.batch.len())?;
    // The WAL keeps the body rather than the decoded points.
    let source = Source::LineProtocol {
        precision,
        default_time_ns: now,
    };
    let out = app.db.write_decoded(parsed.batch, Some(source)).await?;
    let mut errors: Vec<(usize, String)> = parsed
        .errors
        .into_iter()
        .map(|e| (e.line, e.message))
        .collect();
    errors.extend(out.rejected.iter().map(|(line, e)| (*line, e.to_string())));
    if errors.is_empty() {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    errors.sort_by_key(|(l, _)| *l);
    let first = &errors[0];
    let body = serde_json::json!({
        "code": "invalid",
        "message": format!(
            "partial write: {} of {} lines rejected, {} points written; first: line {}: {}",
            errors.len(), total, out.accepted, first.0, first.1
        ),
        "line": first.0,
        "accepted": out.accepted,
        "rejected": errors.len(),
        "errors": errors.iter().take(100).map(|(l, m)| serde_json::json!({"line": l, "message": m})).collect::<Vec<_>>(),
    });
    Ok((StatusCode::BAD_REQUEST, axum::Json(body)).into_response())
}
