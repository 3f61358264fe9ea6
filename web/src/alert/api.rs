//! Alerting HTTP API (read scope for GETs, write scope for silences):
//! `GET /api/v1/rules`, `GET /api/v1/alerts`, `GET /api/v1/alerts/notifications`,
//! `GET|POST /api/v1/silences`, `DELETE /api/v1/silences/{id}`.
//!
//! Rules and alerts answer in Prometheus' shape (`{"status":"success","data":...}`), silences in
//! Alertmanager API v2's (`postableSilence` in, `gettableSilence` out, `{"silenceID"}` back).

use super::matcher::Matcher;
use super::silence::Silence;
use super::state::AlertState;
use super::{Labels, Millis, fp_hex, now_ms, parse_time, rfc3339};
use crate::error::ApiError;
use crate::ratelimit::Principal;
use crate::server::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{Value, json};

fn ok(data: Value) -> Json<Value> {
    Json(json!({ "status": "success", "data": data }))
}

/// `GET /api/v1/rules`: groups, rules with state, health and alerts, and rule files that failed.
pub async fn rules(State(app): State<AppState>) -> Json<Value> {
    let a = &app.alerting;
    let core = a.core.lock().await;
    let groups: Vec<Value> = a
        .groups
        .iter()
        .map(|g| {
            let rules: Vec<Value> = g
                .rules
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    let id = g.rule_id(i);
                    let instances = core.state.rules.get(&id);
                    let state = instances
                        .map(|m| {
                            if m.values().any(|x| x.state == AlertState::Firing) {
                                "firing"
                            } else if m.values().any(|x| x.state == AlertState::Pending) {
                                "pending"
                            } else {
                                "inactive"
                            }
                        })
                        .unwrap_or("inactive");
                    let health = core.health.get(&id).cloned().unwrap_or_default();
                    json!({
                        "id": id,
                        "name": r.alert,
                        "type": "alerting",
                        "query": r.expr.describe(),
                        "expr": r.expr,
                        "duration": r.for_.0.as_secs_f64(),
                        "labels": r.labels,
                        "annotations": r.annotations,
                        "state": state,
                        "health": if health.last_evaluation.is_none() { "unknown" } else if health.last_error.is_some() { "err" } else { "ok" },
                        "lastError": health.last_error,
                        "lastEvaluation": health.last_evaluation.map(rfc3339),
                        "evaluationTime": health.evaluation_time,
                        "alerts": instances.map(|m| m.values().map(|x| instance_json(x, None)).collect::<Vec<_>>()).unwrap_or_default(),
                    })
                })
                .collect();
            json!({
                "name": g.name,
                "file": g.file.display().to_string(),
                "interval": g.interval.map_or(a.default_interval.as_secs_f64(), |d| d.0.as_secs_f64()),
                "rules": rules,
            })
        })
        .collect();
    ok(json!({
        "groups": groups,
        "loadErrors": a.load_errors.iter().map(|e| json!({"file": e.file, "line": e.line, "column": e.column, "message": e.message, "error": e.to_string()})).collect::<Vec<_>>(),
        "evaluations": core.evaluations,
    }))
}

fn instance_json(i: &super::state::Instance, muted: Option<(Vec<String>, bool)>) -> Value {
    let mut v = json!({
        "labels": i.labels,
        "annotations": i.annotations,
        "state": i.state,
        "activeAt": rfc3339(i.active_at),
        "firedAt": i.fired_at.map(rfc3339),
        "resolvedAt": i.resolved_at.map(rfc3339),
        "value": i.value,
        "fingerprint": fp_hex(i.fingerprint()),
    });
    if let Some((silenced_by, inhibited)) = muted {
        v["silencedBy"] = json!(silenced_by);
        v["inhibited"] = json!(inhibited);
    }
    v
}

/// `GET /api/v1/alerts`: every pending, firing and (recently) resolved instance, with whether
/// silences or inhibition mute it.
pub async fn alerts(State(app): State<AppState>) -> Json<Value> {
    let a = &app.alerting;
    let core = a.core.lock().await;
    let now = now_ms();
    let firing: Vec<&Labels> = core
        .state
        .rules
        .values()
        .flat_map(|m| m.values())
        .filter(|i| i.state == AlertState::Firing)
        .map(|i| &i.labels)
        .collect();
    let list: Vec<Value> = core
        .state
        .rules
        .iter()
        .flat_map(|(id, m)| m.values().map(move |i| (id, i)))
        .map(|(id, i)| {
            let mut v = instance_json(i, Some(a.muted(&core.state, &firing, &i.labels, now)));
            v["rule"] = json!(id);
            v
        })
        .collect();
    ok(json!({ "alerts": list, "evaluations": core.evaluations }))
}

/// `GET /api/v1/alerts/notifications`: recent deliveries (newest first), the notification log
/// and the current aggregation groups.
pub async fn notifications(State(app): State<AppState>) -> Json<Value> {
    let core = app.alerting.core.lock().await;
    let history: Vec<_> = core
        .state
        .history
        .iter()
        .rev()
        .map(|d| {
            let mut v = json!(d);
            v["at"] = json!(rfc3339(d.at));
            v
        })
        .collect();
    let groups: Vec<Value> = core
        .dispatcher
        .groups()
        .map(|g| {
            json!({
                "groupKey": g.key,
                "receiver": g.opts.receiver,
                "labels": g.labels,
                "alerts": g.alerts.len(),
                "nextFlush": rfc3339(g.next_flush),
            })
        })
        .collect();
    let log: Value = core
        .state
        .nflog
        .iter()
        .map(|(k, e)| {
            (
                k.clone(),
                json!({"firing": e.firing, "resolved": e.resolved, "sentAt": rfc3339(e.sent_at)}),
            )
        })
        .collect::<serde_json::Map<_, _>>()
        .into();
    ok(json!({ "history": history, "log": log, "groups": groups }))
}

/// `GET /api/v1/silences`.
pub async fn list_silences(State(app): State<AppState>) -> Json<Value> {
    let core = app.alerting.core.lock().await;
    let now = now_ms();
    Json(Value::Array(
        core.state.silences.iter().map(|s| s.to_api(now)).collect(),
    ))
}

/// Alertmanager's `postableSilence`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewSilence {
    /// Ignored on create (Alertmanager uses it to update; Crest creates a new one).
    #[serde(default)]
    id: Option<String>,
    matchers: Vec<Matcher>,
    #[serde(default)]
    starts_at: Option<String>,
    #[serde(default)]
    ends_at: Option<String>,
    /// Alternative to `endsAt`: e.g. `2h`.
    #[serde(default)]
    duration: Option<String>,
    #[serde(default)]
    created_by: Option<String>,
    #[serde(default)]
    comment: String,
}

/// `POST /api/v1/silences`.
pub async fn create_silence(
    State(app): State<AppState>,
    who: Option<axum::Extension<Principal>>,
    body: axum::body::Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let n: NewSilence = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid silence: {e}")))?;
    let _ = n.id;
    if n.matchers.is_empty() {
        return Err(ApiError::bad_request(
            "a silence needs at least one matcher",
        ));
    }
    if n.matchers.iter().all(|m| m.matches(&Labels::new())) {
        return Err(ApiError::bad_request(
            "these matchers match every alert (they all match empty labels); name at least one label value",
        ));
    }
    let now = now_ms();
    let starts_at = match &n.starts_at {
        Some(s) => parse_time(s).map_err(ApiError::bad_request)?.max(now),
        None => now,
    };
    let ends_at: Millis = match (&n.ends_at, &n.duration) {
        (Some(e), _) => parse_time(e).map_err(ApiError::bad_request)?,
        (None, Some(d)) => {
            let d: super::PromDuration = d.parse().map_err(ApiError::bad_request)?;
            starts_at + d.ms()
        }
        (None, None) => {
            return Err(ApiError::bad_request(
                "a silence needs `endsAt` or `duration`",
            ));
        }
    };
    if ends_at <= starts_at {
        return Err(ApiError::bad_request("`endsAt` must be after `startsAt`"));
    }
    let id = format!("{:032x}", rand::random::<u128>());
    let created_by = n
        .created_by
        .filter(|c| !c.is_empty())
        .or_else(|| who.map(|p| p.0.0.clone()))
        .unwrap_or_else(|| "anonymous".into());
    app.alerting
        .add_silence(Silence {
            id: id.clone(),
            matchers: n.matchers,
            starts_at,
            ends_at,
            created_by,
            comment: n.comment,
        })
        .await;
    Ok((StatusCode::OK, Json(json!({ "silenceID": id }))))
}

/// `DELETE /api/v1/silences/{id}`: expires it.
pub async fn expire_silence(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    if app.alerting.expire_silence(&id).await {
        Ok(Json(json!({ "silenceID": id, "status": "expired" })))
    } else {
        Err(ApiError {
            status: StatusCode::NOT_FOUND,
            code: "not_found",
            message: format!("no silence {id:?}"),
        })
    }
}
