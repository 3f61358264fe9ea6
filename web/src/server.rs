//! The HTTP server: shared state, the route table (every route with the scope it needs), the
//! router built from it, and the background snapshot/retention loop.

use crate::api;
use crate::auth::{Auth, Denied, Scope};
use crate::error::ApiError;
use crate::metrics::ServerMetrics;
use crate::ratelimit::{Principal, RateLimiter};
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, delete, get, post, put};
use ingest::Db;
use query::QueryEngine;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Byte limits on request bodies.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    /// As sent (compressed).
    pub max_body: usize,
    /// After decompression.
    pub max_decoded: usize,
}

/// Everything handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub db: Arc<Db>,
    /// The SQL engine.
    pub engine: Arc<QueryEngine>,
    /// Tokens.
    pub auth: Arc<Auth>,
    /// Body limits.
    pub limits: BodyLimits,
    /// Crest's own metrics.
    pub metrics: Arc<ServerMetrics>,
    /// False while starting or shutting down.
    pub ready: Arc<AtomicBool>,
    /// Ingest rate limit per token, if configured.
    pub rate: Option<Arc<RateLimiter>>,
    /// Alert rules, state, silences and notifications.
    pub alerting: Arc<crate::alert::Alerting>,
    /// Milestones, plans and scores.
    pub planning: Arc<crate::planning::Planning>,
    /// Dashboards provisioned at start.
    pub dashboards: Arc<crate::dashboards::Dashboards>,
    /// Results of dashboard panel and variable queries, reused for `query_cache_ttl`.
    pub query_cache: Arc<crate::query_cache::QueryCache>,
    /// How long a dashboard query's result is reused (zero: never).
    pub query_cache_ttl: std::time::Duration,
}

impl AppState {
    /// Admits `points` more points from the request's principal under the ingest rate limit
    /// (a 429 when over it).
    pub fn admit(&self, who: Option<&Principal>, points: usize) -> Result<(), ApiError> {
        match (&self.rate, who) {
            (Some(rate), Some(p)) => rate.admit(&p.0, points),
            (Some(rate), None) => rate.admit("anonymous", points),
            (None, _) => Ok(()),
        }
    }
}

/// One route: method, path, and the scope it needs (`None`: public).
#[derive(Debug, Clone)]
pub struct RouteSpec {
    /// HTTP method.
    pub method: Method,
    /// Path template.
    pub path: &'static str,
    /// Scope needed; `None` only for health and readiness.
    pub scope: Option<Scope>,
}

/// The route table: the router is built from it and the auth test walks it, so no route can
/// exist without a scope decision and a test.
pub fn route_table() -> Vec<(RouteSpec, MethodRouter<AppState>)> {
    use Scope::*;
    let r = |method: Method, path, scope, mr| {
        (
            RouteSpec {
                method,
                path,
                scope,
            },
            mr,
        )
    };
    vec![
        r(Method::GET, "/health", None, get(api::health::health)),
        r(Method::GET, "/ready", None, get(api::health::ready)),
        r(
            Method::GET,
            "/metrics",
            Some(Read),
            get(api::health::metrics),
        ),
        r(
            Method::POST,
            "/api/v1/write",
            Some(Write),
            post(api::write::remote_write),
        ),
        r(
            Method::POST,
            "/api/v2/write",
            Some(Write),
            post(api::write::line_protocol_v2),
        ),
        r(
            Method::POST,
            "/write",
            Some(Write),
            post(api::write::line_protocol_v1),
        ),
        r(
            Method::POST,
            "/v1/metrics",
            Some(Write),
            post(api::otlp::metrics),
        ),
        r(
            Method::POST,
            "/v1/traces",
            Some(Write),
            post(api::otlp::traces),
        ),
        r(
            Method::GET,
            "/api/v1/traces/{trace_id}",
            Some(Read),
            get(api::traces::trace_by_id),
        ),
        r(
            Method::GET,
            "/api/v1/traces",
            Some(Read),
            get(api::traces::search),
        ),
        r(
            Method::GET,
            "/api/v1/traces/red",
            Some(Read),
            get(api::traces::red),
        ),
        r(
            Method::GET,
            "/api/v1/traces/dependencies",
            Some(Read),
            get(api::traces::dependencies),
        ),
        r(
            Method::GET,
            "/api/v1/services",
            Some(Read),
            get(api::traces::services),
        ),
        r(
            Method::POST,
            "/api/v1/sql",
            Some(Read),
            post(api::sql::post_sql),
        ),
        r(
            Method::GET,
            "/api/v1/sql",
            Some(Read),
            get(api::sql::get_sql),
        ),
        r(
            Method::GET,
            "/api/v1/tables",
            Some(Read),
            get(api::admin::tables),
        ),
        r(
            Method::POST,
            "/api/v1/admin/snapshot",
            Some(Admin),
            post(api::admin::snapshot),
        ),
        r(
            Method::POST,
            "/api/v1/admin/retention",
            Some(Admin),
            post(api::admin::retention),
        ),
        r(
            Method::POST,
            "/api/v1/admin/compact",
            Some(Admin),
            post(api::admin::compact),
        ),
        r(
            Method::GET,
            "/api/v1/milestones",
            Some(Read),
            get(crate::planning::api::list),
        ),
        r(
            Method::POST,
            "/api/v1/milestones",
            Some(Write),
            post(crate::planning::api::create),
        ),
        r(
            Method::POST,
            "/api/v1/milestones/import",
            Some(Write),
            post(crate::planning::api::import),
        ),
        r(
            Method::GET,
            "/api/v1/milestones/{id}",
            Some(Read),
            get(crate::planning::api::get_one),
        ),
        r(
            Method::PUT,
            "/api/v1/milestones/{id}",
            Some(Write),
            put(crate::planning::api::update),
        ),
        r(
            Method::DELETE,
            "/api/v1/milestones/{id}",
            Some(Write),
            delete(crate::planning::api::delete),
        ),
        r(
            Method::GET,
            "/api/v1/milestones/{id}/score",
            Some(Read),
            get(crate::planning::api::score),
        ),
        r(
            Method::GET,
            "/api/v1/capacity",
            Some(Read),
            get(crate::planning::api::capacity_handler),
        ),
        r(
            Method::GET,
            "/api/v1/plans/{milestone}",
            Some(Read),
            get(crate::planning::api::plan_handler),
        ),
        r(
            Method::GET,
            "/api/v1/dashboards",
            Some(Read),
            get(api::dashboards::list),
        ),
        r(
            Method::GET,
            "/api/v1/dashboards/{uid}",
            Some(Read),
            get(api::dashboards::get_one),
        ),
        r(
            Method::GET,
            "/api/v1/dashboards/{uid}/variables/{name}",
            Some(Read),
            get(api::dashboards::variable),
        ),
        r(
            Method::GET,
            "/api/v1/dashboards/{uid}/panels/{index}",
            Some(Read),
            get(api::dashboards::panel),
        ),
        r(
            Method::GET,
            "/api/v1/rules",
            Some(Read),
            get(crate::alert::api::rules),
        ),
        r(
            Method::GET,
            "/api/v1/alerts",
            Some(Read),
            get(crate::alert::api::alerts),
        ),
        r(
            Method::GET,
            "/api/v1/alerts/notifications",
            Some(Read),
            get(crate::alert::api::notifications),
        ),
        r(
            Method::GET,
            "/api/v1/silences",
            Some(Read),
            get(crate::alert::api::list_silences),
        ),
        r(
            Method::POST,
            "/api/v1/silences",
            Some(Write),
            post(crate::alert::api::create_silence),
        ),
        r(
            Method::DELETE,
            "/api/v1/silences/{id}",
            Some(Write),
            delete(crate::alert::api::expire_silence),
        ),
    ]
}

#[derive(Clone)]
struct Guard {
    app: AppState,
    route: usize,
    scope: Option<Scope>,
}

async fn guard(State(g): State<Guard>, mut req: Request, next: Next) -> Response {
    if let Some(scope) = g.scope {
        let header = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok());
        let denied = match g.app.auth.check(header, scope) {
            Ok(name) => {
                let p = Principal(name.to_string());
                req.extensions_mut().insert(p);
                None
            }
            Err(Denied::Unauthenticated(why)) => Some(ApiError {
                status: StatusCode::UNAUTHORIZED,
                code: "unauthorized",
                message: why.to_string(),
            }),
            Err(Denied::Forbidden(s)) => Some(ApiError {
                status: StatusCode::FORBIDDEN,
                code: "forbidden",
                message: format!("this token lacks the {} scope", s.name()),
            }),
        };
        if let Some(e) = denied {
            g.app.metrics.record(g.route, e.status);
            return e.into_response();
        }
    }
    let resp = next.run(req).await;
    g.app.metrics.record(g.route, resp.status());
    resp
}

/// Builds the router from the route table.
pub fn router(state: AppState) -> Router {
    let mut router = Router::new();
    for (i, (spec, mr)) in route_table().into_iter().enumerate() {
        let g = Guard {
            app: state.clone(),
            route: i,
            scope: spec.scope,
        };
        router = router.route(
            spec.path,
            mr.layer(middleware::from_fn_with_state(g, guard)),
        );
    }
    router
        .fallback(|| async {
            ApiError {
                status: StatusCode::NOT_FOUND,
                code: "not_found",
                message: "no such route".into(),
            }
        })
        // The handlers enforce the configured limits themselves (with a clear 413); this only
        // lifts axum's default so they get to.
        .layer(axum::extract::DefaultBodyLimit::max(
            state.limits.max_body.saturating_add(1),
        ))
        .with_state(state)
}

/// How often the background loop looks at the write buffer's fill between snapshots.
const PRESSURE_CHECK: Duration = Duration::from_secs(1);

/// Persists the buffer every `interval` (and as soon as the buffer is over half full),
/// enforces retention and compacts cold hours, until `stop` turns true.
pub async fn background_loop(db: Arc<Db>, interval: Duration, stop: Arc<AtomicBool>) {
    // Every interval, and sooner when the write buffer is over half full: waiting a whole
    // interval then would answer writes with 503 until the snapshot evicts cold hours.
    let mut check = tokio::time::interval(interval.min(PRESSURE_CHECK));
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    check.tick().await;
    let mut last = tokio::time::Instant::now();
    // Whether an early snapshot can help: not after one that evicted nothing (every buffered
    // hour still hot), which would only rewrite the same hours each second; the next regular
    // snapshot looks again.
    let mut early_helps = true;
    while !stop.load(Ordering::Relaxed) {
        check.tick().await;
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let due = last.elapsed() >= interval;
        let pressed = early_helps && db.buffer_bytes() > db.max_buffer_bytes() / 2;
        if !due && !pressed {
            continue;
        }
        last = tokio::time::Instant::now();
        let d = Arc::clone(&db);
        match tokio::task::spawn_blocking(move || {
            let r = d.snapshot()?;
            let expired = d.enforce_retention()?;
            d.compact()?;
            Ok::<_, ingest::Error>((r, expired))
        })
        .await
        {
            Ok(Ok((r, expired))) => {
                early_helps = due || r.evicted > 0 || expired > 0;
                if r.files > 0 || expired > 0 {
                    tracing::info!(
                        files = r.files,
                        rows = r.rows,
                        bytes = r.bytes,
                        wal_segments_removed = r.wal_segments_removed,
                        evicted = r.evicted,
                        expired,
                        "Snapshot done."
                    );
                }
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "Snapshot failed; the WAL keeps the data and the next one retries.")
            }
            Err(e) => tracing::error!(error = %e, "Snapshot task panicked."),
        }
    }
}
