//! Planning HTTP API.
//!
//! * `GET /api/v1/milestones`, `POST /api/v1/milestones` (one milestone, JSON),
//!   `POST /api/v1/milestones/import` (a milestone file, JSON or YAML: created or replaced by
//!   name, all or none), `GET|PUT|DELETE /api/v1/milestones/{id}` (`id` or name).
//! * `GET /api/v1/milestones/{id}/score`: forecast vs actual peak per service once it ended
//!   (`?rescore=true` recomputes).
//! * `GET /api/v1/capacity`: per-instance capacity per service from the stress tests.
//! * `GET /api/v1/plans/{milestone}`: the plan. Without `format` a JSON object with the rows
//!   and the services left out; with `?format=csv|json|jsonl|parquet|arrow` (or an Accept
//!   header for one of those) the rows alone as a table, every term a column.

use super::{Planning, capacity, export, now, plan, score_milestone};
use crate::api::body;
use crate::error::ApiError;
use crate::server::AppState;
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use forecast::milestone::{Milestone, MilestoneSpec};
use query::encode::Format;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

fn view(m: &Milestone, t: i64) -> Value {
    let mut v = serde_json::to_value(m).unwrap_or(Value::Null);
    if let Some(o) = v.as_object_mut() {
        o.insert("status".into(), json!(m.spec.status(t)));
    }
    v
}

async fn spec_of(app: &AppState, headers: &HeaderMap, b: Body) -> Result<MilestoneSpec, ApiError> {
    let bytes = body::read(headers, b, app.limits).await?;
    let spec: MilestoneSpec = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("invalid milestone: {e}")))?;
    spec.check()
        .map_err(|e| ApiError::bad_request(format!("invalid milestone: {e}")))?;
    Ok(spec)
}

fn blocking<T: Send + 'static>(
    p: &Arc<Planning>,
    f: impl FnOnce(&Planning) -> Result<T, super::StoreError> + Send + 'static,
) -> impl std::future::Future<Output = Result<T, ApiError>> {
    let p = Arc::clone(p);
    async move {
        tokio::task::spawn_blocking(move || f(&p))
            .await
            .map_err(ApiError::internal)?
            .map_err(ApiError::from)
    }
}

/// `GET /api/v1/milestones`.
pub async fn list(State(app): State<AppState>) -> Result<Json<Value>, ApiError> {
    let all = blocking(&app.planning, |p| p.store.milestones()).await?;
    let t = now();
    Ok(Json(Value::Array(all.iter().map(|m| view(m, t)).collect())))
}

/// `POST /api/v1/milestones`.
pub async fn create(
    State(app): State<AppState>,
    headers: HeaderMap,
    b: Body,
) -> Result<Response, ApiError> {
    let spec = spec_of(&app, &headers, b).await?;
    let m = blocking(&app.planning, move |p| p.store.create(&spec)).await?;
    Ok((StatusCode::CREATED, Json(view(&m, now()))).into_response())
}

/// `POST /api/v1/milestones/import`.
pub async fn import(
    State(app): State<AppState>,
    headers: HeaderMap,
    b: Body,
) -> Result<Json<Value>, ApiError> {
    let bytes = body::read(&headers, b, app.limits).await?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| ApiError::bad_request("milestone file is not UTF-8"))?;
    let specs = super::file::parse(text)
        .map_err(|e| ApiError::bad_request(format!("milestone file: {e}")))?;
    let saved = blocking(&app.planning, move |p| p.store.upsert_all(&specs)).await?;
    let t = now();
    Ok(Json(Value::Array(
        saved.iter().map(|m| view(m, t)).collect(),
    )))
}

/// `GET /api/v1/milestones/{id}`.
pub async fn get_one(
    State(app): State<AppState>,
    Path(key): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let m = blocking(&app.planning, move |p| p.store.milestone(&key)).await?;
    Ok(Json(view(&m, now())))
}

/// `PUT /api/v1/milestones/{id}`.
pub async fn update(
    State(app): State<AppState>,
    Path(key): Path<String>,
    headers: HeaderMap,
    b: Body,
) -> Result<Json<Value>, ApiError> {
    let spec = spec_of(&app, &headers, b).await?;
    let m = blocking(&app.planning, move |p| {
        let id = p.store.milestone(&key)?.id;
        p.store.update(id, &spec)
    })
    .await?;
    Ok(Json(view(&m, now())))
}

/// `DELETE /api/v1/milestones/{id}`.
pub async fn delete(
    State(app): State<AppState>,
    Path(key): Path<String>,
) -> Result<StatusCode, ApiError> {
    blocking(&app.planning, move |p| {
        let id = p.store.milestone(&key)?.id;
        p.store.delete(id)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `?rescore=`.
#[derive(Debug, Deserialize)]
pub struct ScoreParams {
    #[serde(default)]
    rescore: bool,
}

/// `GET /api/v1/milestones/{id}/score`.
pub async fn score(
    State(app): State<AppState>,
    Path(key): Path<String>,
    Query(q): Query<ScoreParams>,
) -> Result<Json<Value>, ApiError> {
    let m = blocking(&app.planning, move |p| p.store.milestone(&key)).await?;
    let id = m.id;
    if !q.rescore
        && let Some(s) = blocking(&app.planning, move |p| p.store.score(id)).await?
    {
        return Ok(Json(serde_json::to_value(s).map_err(ApiError::internal)?));
    }
    let p = Arc::clone(&app.planning);
    let s = score_milestone(&app.sources(), &p, &m, now()).await?;
    Ok(Json(serde_json::to_value(s).map_err(ApiError::internal)?))
}

/// `GET /api/v1/capacity`.
pub async fn capacity_handler(State(app): State<AppState>) -> Result<Json<Value>, ApiError> {
    let all = blocking(&app.planning, |p| p.store.milestones()).await?;
    let caps = capacity(&app.sources(), &app.planning, &all, now()).await?;
    Ok(Json(json!(caps.into_values().collect::<Vec<_>>())))
}

/// `?format=`.
#[derive(Debug, Deserialize)]
pub struct PlanParams {
    format: Option<String>,
}

/// `GET /api/v1/plans/{milestone}`.
pub async fn plan_handler(
    State(app): State<AppState>,
    Path(key): Path<String>,
    Query(q): Query<PlanParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let format = match q.format.as_deref() {
        Some(f) => Some(Format::from_param(f).ok_or_else(|| {
            ApiError::bad_request(format!(
                "unknown format {f:?}: use csv, json, jsonl, parquet or arrow"
            ))
        })?),
        None => headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .filter(|a| !a.contains("application/json") && !a.contains("*/*"))
            .and_then(Format::from_accept),
    };
    let m = blocking(&app.planning, move |p| p.store.milestone(&key)).await?;
    let p = Arc::clone(&app.planning);
    let outcome = plan(&app.sources(), &p, &m, now()).await?;
    let Some(format) = format else {
        return Ok(
            Json(serde_json::to_value(&outcome).map_err(ApiError::internal)?).into_response(),
        );
    };
    let bytes = tokio::task::spawn_blocking(move || {
        let b = export::plan_batch(outcome.made_at, &outcome.rows)?;
        query::encode::encode(format, &b.schema(), &[b])
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::internal)?;
    let mut resp = Body::from(bytes).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    Ok(resp)
}
