//! Dashboards API (read scope):
//!
//! * `GET /api/v1/dashboards`: every provisioned dashboard (uid, title, panels) and the files
//!   that failed to load, with file and line.
//! * `GET /api/v1/dashboards/{uid}`: one dashboard as provisioned.
//! * `GET /api/v1/dashboards/{uid}/variables/{name}?from=&to=`: a variable's choices.
//! * `GET /api/v1/dashboards/{uid}/panels/{index}?from=&to=&width=&var-<name>=...`: a panel's
//!   rows, with the SQL it expanded to and the bucket width. `from`/`to` take `now`,
//!   `now-6h`, RFC 3339 or Unix ms (defaults: the dashboard's); `width` is the panel's width in
//!   pixels (default 1000), so `$__interval` gives one bucket per pixel or more; a variable left
//!   out takes its default (multi: every choice; else the first).
//!
//! A range relative to `now` is moved forward to the next multiple of the bucket width, so
//! every request inside one bucket expands to the same SQL and the results cache
//! ([`crate::query_cache`]) can answer reloads and auto-refreshes; the last bucket is then the
//! one still filling.

use crate::dashboards::{Context, Dashboard, expand, interval_for, parse_time};
use crate::error::ApiError;
use crate::query_cache::Rows;
use crate::server::AppState;
use axum::Json;
use axum::extract::{Path, Query, State};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};

fn not_found(what: String) -> ApiError {
    ApiError {
        status: axum::http::StatusCode::NOT_FOUND,
        code: "not_found",
        message: what,
    }
}

fn dashboard<'a>(app: &'a AppState, uid: &str) -> Result<&'a Dashboard, ApiError> {
    app.dashboards
        .dashboards
        .get(uid)
        .ok_or_else(|| not_found(format!("no dashboard {uid:?}")))
}

async fn rows(app: &AppState, sql: &str) -> Result<Rows, ApiError> {
    app.query_cache
        .get_or_run(sql, app.query_cache_ttl, || async {
            let started = std::time::Instant::now();
            let result = app.engine.sql(sql).await;
            app.metrics.observe_query(started.elapsed(), result.is_ok());
            let result = result?;
            let bytes = tokio::task::spawn_blocking(move || {
                query::encode::encode(query::encode::Format::Json, &result.schema, &result.batches)
            })
            .await
            .map_err(ApiError::internal)?
            .map_err(ApiError::internal)?;
            let rows: Vec<Map<String, Value>> =
                serde_json::from_slice(&bytes).map_err(ApiError::internal)?;
            Ok(std::sync::Arc::new(rows))
        })
        .await
}

/// `GET /api/v1/dashboards`.
pub async fn list(State(app): State<AppState>) -> Json<Value> {
    let d = &app.dashboards;
    Json(json!({
        "dashboards": d.dashboards.values().map(|x| json!({
            "uid": x.uid, "title": x.title, "panels": x.panels.len(),
        })).collect::<Vec<_>>(),
        "errors": d.errors,
    }))
}

/// `GET /api/v1/dashboards/{uid}`.
pub async fn get_one(
    State(app): State<AppState>,
    Path(uid): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let d = dashboard(&app, &uid)?;
    Ok(Json(serde_json::to_value(d).map_err(ApiError::internal)?))
}

/// The request's range in Unix ms; one that ends at `now` is moved forward to the next
/// multiple of the bucket width that `pixels` gives it.
fn range(d: &Dashboard, q: &HashMap<String, String>, pixels: u32) -> Result<(i64, i64), ApiError> {
    let now = crate::planning::now() * 1000;
    let from = q.get("from").unwrap_or(&d.from);
    let to = q.get("to").unwrap_or(&d.to);
    let f = parse_time(from, now).map_err(|e| ApiError::bad_request(format!("from: {e}")))?;
    let t = parse_time(to, now).map_err(|e| ApiError::bad_request(format!("to: {e}")))?;
    if f >= t {
        return Err(ApiError::bad_request(format!(
            "from ({from}) must be before to ({to})"
        )));
    }
    if !to.trim_start().starts_with("now") {
        return Ok((f, t));
    }
    let bucket_ms = interval_for(f, t, pixels) * 1000;
    let shift = (bucket_ms - t.rem_euclid(bucket_ms)) % bucket_ms;
    Ok((f + shift, t + shift))
}

async fn choices(
    app: &AppState,
    d: &Dashboard,
    name: &str,
    base: &Context,
) -> Result<Vec<String>, ApiError> {
    let v = d
        .variables
        .iter()
        .find(|v| v.name == name)
        .ok_or_else(|| not_found(format!("dashboard {:?} has no variable {name:?}", d.uid)))?;
    let sql = expand(&v.query, base).map_err(ApiError::bad_request)?;
    let rows = rows(app, &sql).await?;
    Ok(rows
        .iter()
        .filter_map(|r| r.values().next())
        .filter_map(|v| match v {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        })
        .collect())
}

/// `GET /api/v1/dashboards/{uid}/variables/{name}`.
pub async fn variable(
    State(app): State<AppState>,
    Path((uid, name)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let d = dashboard(&app, &uid)?;
    let (from_ms, to_ms) = range(d, &q, 1000)?;
    let base = Context {
        from_ms,
        to_ms,
        interval_s: interval_for(from_ms, to_ms, 1000),
        vars: BTreeMap::new(),
    };
    Ok(Json(json!(choices(&app, d, &name, &base).await?)))
}

/// `GET /api/v1/dashboards/{uid}/panels/{index}`.
pub async fn panel(
    State(app): State<AppState>,
    Path((uid, index)): Path<(String, usize)>,
    Query(q): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    let d = dashboard(&app, &uid)?;
    let p = d.panels.get(index).ok_or_else(|| {
        not_found(format!(
            "dashboard {uid:?} has {} panels; no panel {index}",
            d.panels.len()
        ))
    })?;
    let single: HashMap<String, String> = q.iter().cloned().collect();
    let width: u32 = match single.get("width") {
        Some(w) => w
            .parse()
            .ok()
            .filter(|w| (1..=20_000).contains(w))
            .ok_or_else(|| {
                ApiError::bad_request(format!("width {w:?} is not 1 to 20000 pixels"))
            })?,
        None => 1000,
    };
    let (from_ms, to_ms) = range(d, &single, width)?;
    let mut ctx = Context {
        from_ms,
        to_ms,
        interval_s: interval_for(from_ms, to_ms, width),
        vars: BTreeMap::new(),
    };
    for v in &d.variables {
        let given: Vec<String> = q
            .iter()
            .filter(|(k, _)| k.strip_prefix("var-") == Some(v.name.as_str()))
            .map(|(_, x)| x.clone())
            .collect();
        let asked_all = given.len() == 1 && given[0] == "$__all";
        let values = if !given.is_empty() && !asked_all {
            given
        } else if let (Some(def), false) = (&v.default, asked_all) {
            vec![def.clone()]
        } else {
            let all = choices(&app, d, &v.name, &ctx).await?;
            if v.multi || asked_all {
                all
            } else {
                all.into_iter().take(1).collect()
            }
        };
        ctx.vars.insert(v.name.clone(), values);
    }
    let sql = expand(&p.sql, &ctx).map_err(ApiError::bad_request)?;
    let rows = rows(&app, &sql).await?;
    Ok(Json(json!({
        "sql": sql,
        "interval_s": ctx.interval_s,
        "from": from_ms,
        "to": to_ms,
        "vars": ctx.vars,
        "rows": &*rows,
    })))
}
