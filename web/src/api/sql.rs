//! `POST /api/v1/sql` (body: SQL text or `{"sql": "..."}`) and `GET /api/v1/sql?sql=...`.

use crate::api::body;
use crate::error::ApiError;
use crate::server::AppState;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use query::encode::Format;
use serde::Deserialize;

/// Query parameters.
#[derive(Debug, Deserialize)]
pub struct SqlParams {
    /// Result format: json, jsonl, csv, arrow, parquet.
    format: Option<String>,
    /// The SQL (GET form).
    sql: Option<String>,
}

#[derive(Deserialize)]
struct SqlBody {
    sql: String,
}

/// Runs the SQL in the body.
pub async fn post_sql(
    State(app): State<AppState>,
    Query(p): Query<SqlParams>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let bytes = body::read(&headers, body, app.limits).await?;
    let text =
        std::str::from_utf8(&bytes).map_err(|_| ApiError::bad_request("SQL body is not UTF-8"))?;
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"))
        || text.trim_start().starts_with('{');
    let sql = if is_json {
        serde_json::from_str::<SqlBody>(text)
            .map_err(|e| {
                ApiError::bad_request(format!("JSON body must be {{\"sql\": \"...\"}}: {e}"))
            })?
            .sql
    } else {
        text.to_string()
    };
    run(app, &sql, p.format.as_deref(), &headers).await
}

/// Runs `?sql=`.
pub async fn get_sql(
    State(app): State<AppState>,
    Query(p): Query<SqlParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let sql = p
        .sql
        .clone()
        .ok_or_else(|| ApiError::bad_request("missing query parameter `sql`"))?;
    run(app, &sql, p.format.as_deref(), &headers).await
}

async fn run(
    app: AppState,
    sql: &str,
    format: Option<&str>,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    if sql.trim().is_empty() {
        return Err(ApiError::bad_request("empty SQL"));
    }
    let format = match format {
        Some(f) => Format::from_param(f).ok_or_else(|| {
            ApiError::bad_request(format!(
                "unknown format {f:?}: use json, jsonl, csv, arrow or parquet"
            ))
        })?,
        None => headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .and_then(Format::from_accept)
            .unwrap_or(Format::Json),
    };
    let started = std::time::Instant::now();
    let result = app.engine.sql(sql).await;
    app.metrics.observe_query(started.elapsed(), result.is_ok());
    let result = result?;
    let schema = std::sync::Arc::clone(&result.schema);
    let bytes = tokio::task::spawn_blocking(move || {
        query::encode::encode(format, &schema, &result.batches)
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::internal)?;
    let mut resp = bytes.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    Ok(resp)
}
