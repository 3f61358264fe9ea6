//! Liveness, readiness and Crest's own metrics.

use crate::server::AppState;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::sync::atomic::Ordering;

/// `GET /health`: the process is up.
pub async fn health() -> &'static str {
    "ok\n"
}

/// `GET /ready`: 200 while serving, 503 while starting or shutting down.
pub async fn ready(State(app): State<AppState>) -> Response {
    if app.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response()
    }
}

/// `GET /metrics`: Prometheus text format 0.0.4.
pub async fn metrics(State(app): State<AppState>) -> Response {
    let mut text = app.metrics.render(&app.db);
    let (hits, misses) = app.query_cache.stats();
    for (name, help, v) in [
        (
            "crest_dashboard_cache_hits_total",
            "Dashboard panel and variable queries answered from the results cache.",
            hits,
        ),
        (
            "crest_dashboard_cache_misses_total",
            "Dashboard panel and variable queries that ran.",
            misses,
        ),
    ] {
        text.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}\n"
        ));
    }
    let mut resp = text.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    resp
}
