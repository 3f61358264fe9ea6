//! Table listing and administrative actions.

use crate::error::ApiError;
use crate::server::AppState;
use axum::Json;
use axum::extract::State;
use std::sync::Arc;

/// `GET /api/v1/tables`: every table with its columns.
pub async fn tables(State(app): State<AppState>) -> Json<serde_json::Value> {
    let tables: Vec<serde_json::Value> = app
        .db
        .table_names()
        .into_iter()
        .filter_map(|name| {
            let s = app.db.table_schema(&name)?;
            let fields: serde_json::Map<String, serde_json::Value> = s
                .fields
                .iter()
                .map(|(k, t)| (k.clone(), serde_json::Value::from(t.name())))
                .collect();
            Some(serde_json::json!({ "name": name, "tags": s.tags, "fields": fields }))
        })
        .collect();
    Json(serde_json::json!({ "tables": tables }))
}

/// `POST /api/v1/admin/snapshot`: persist the buffer now.
pub async fn snapshot(State(app): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let db = Arc::clone(&app.db);
    let r = tokio::task::spawn_blocking(move || db.snapshot())
        .await
        .map_err(ApiError::internal)??;
    Ok(Json(serde_json::json!({
        "files": r.files, "rows": r.rows, "bytes": r.bytes,
        "wal_segments_removed": r.wal_segments_removed, "evicted": r.evicted,
    })))
}

/// `POST /api/v1/admin/compact`: merge cold hours' scattered small-table files now.
pub async fn compact(State(app): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let db = Arc::clone(&app.db);
    let r = tokio::task::spawn_blocking(move || db.compact())
        .await
        .map_err(ApiError::internal)??;
    Ok(Json(serde_json::json!({
        "hours": r.hours, "files_before": r.files_before, "files_after": r.files_after,
        "rows": r.rows,
    })))
}

/// `POST /api/v1/admin/retention`: drop expired hours now.
pub async fn retention(State(app): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let db = Arc::clone(&app.db);
    let n = tokio::task::spawn_blocking(move || db.enforce_retention())
        .await
        .map_err(ApiError::internal)??;
    Ok(Json(serde_json::json!({ "files_removed": n })))
}
