//! Milestones, capacity from stress tests, capacity plans and their scoring: the server side of
//! the forecast-and-capacity loop (ARCHITECTURE.md). The arithmetic is in the pure `forecast`
//! crate; this module reads the data through SQL ([`demand`]), keeps milestones, plans and
//! scores in the metadata store ([`store`]) and serves them ([`api`], [`cli`]).

pub mod api;
pub mod cli;
pub mod demand;
pub mod export;
pub mod file;
pub mod live;
pub mod store;

use crate::config::PlanningConfig;
use crate::error::ApiError;
use crate::server::AppState;
use demand::{Demand, Traffic};
use forecast::capacity::{CapacityEstimate, LimitedBy, Slo, capacity_at_slo};
use forecast::milestone::{Milestone, MilestoneKind};
use forecast::plan::{PastScore, PeakQuantiles, PlanInput, PlanPolicy, PlanRow, score};
use forecast::{Forecaster, ModelChoice, PrepareOptions, TimeWindow, peak_quantiles, prepare};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use store::{MetaStore, MilestoneScore, StoreError, StoredPlan};

const HOUR: i64 = 3600;

/// What planning reads: the SQL engine and the database's schemas.
#[derive(Clone)]
pub struct Sources {
    /// SQL.
    pub engine: Arc<query::QueryEngine>,
    /// Table schemas.
    pub db: Arc<ingest::Db>,
}

impl AppState {
    /// The planning view of the server's data.
    pub fn sources(&self) -> Sources {
        Sources {
            engine: Arc::clone(&self.engine),
            db: Arc::clone(&self.db),
        }
    }
}

/// Milestones, plans and scores, with the settings they are computed under.
#[derive(Debug)]
pub struct Planning {
    /// The metadata store.
    pub store: MetaStore,
    /// `[planning]`.
    pub cfg: PlanningConfig,
    /// Plans and capacities the live alert rules reuse.
    pub live: live::LiveCache,
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(_) => ApiError {
                status: axum::http::StatusCode::NOT_FOUND,
                code: "not_found",
                message: e.to_string(),
            },
            StoreError::NameTaken(..) => ApiError {
                status: axum::http::StatusCode::CONFLICT,
                code: "conflict",
                message: e.to_string(),
            },
            StoreError::Db(_) => ApiError::internal(e),
        }
    }
}

/// Now, Unix seconds.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A service's per-instance capacity and where it came from.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceCapacity {
    /// Service.
    pub service: String,
    /// QPS one instance serves within the SLO (None: unknown).
    pub per_instance_qps: Option<f64>,
    /// Where the figure came from.
    pub source: String,
    /// The SLO it was measured against.
    pub slo: Slo,
    /// The stress tests it was measured in.
    pub stress_tests: Vec<String>,
    /// The estimate's evidence.
    pub estimate: Option<CapacityEstimate>,
}

/// Capacity of every service seen in the stress tests ended by `now`, plus every service the
/// config gives a capacity to.
pub async fn capacity(
    src: &Sources,
    p: &Planning,
    milestones: &[Milestone],
    now: i64,
) -> Result<BTreeMap<String, ServiceCapacity>, ApiError> {
    let cfg = &p.cfg;
    let step = cfg.step.0.as_secs().max(1) as i64;
    let tests: Vec<&Milestone> = milestones
        .iter()
        .filter(|m| m.spec.kind == MilestoneKind::StressTest && m.spec.end <= now)
        .collect();
    let windows: Vec<(i64, i64)> = tests.iter().map(|m| (m.spec.start, m.spec.end)).collect();
    let names: Vec<String> = tests.iter().map(|m| m.spec.name.clone()).collect();
    let mut observed = Demand::new(src, cfg).observations(&windows, step).await?;
    let mut services: Vec<String> = observed.keys().cloned().collect();
    for s in cfg.services.keys() {
        if !services.contains(s) {
            services.push(s.clone());
        }
    }
    let mut out = BTreeMap::new();
    for service in services {
        let slo = cfg.slo(&service);
        let fixed = cfg.services.get(&service).and_then(|s| s.per_instance_qps);
        let obs = observed.remove(&service).unwrap_or_default();
        let estimate = capacity_at_slo(&obs, &slo);
        let tests = names.join(", ");
        let (per_instance_qps, source) = match (fixed, &estimate) {
            (Some(c), _) => (
                Some(c),
                "config: [planning.services] per_instance_qps".to_string(),
            ),
            (None, Ok(e)) => match e.limited_by {
                // A lower bound from a test that never loaded the service near its knee would
                // size the fleet many times over; say so instead of guessing.
                LimitedBy::NotReached => (
                    None,
                    format!(
                        "unknown: the stress tests ({tests}) never took it past its SLO (it held {:.1} QPS per instance at p99 {:.0} ms); set [planning.services.\"{service}\"] per_instance_qps",
                        e.max_within_slo,
                        e.p99_at_max_within * 1e3
                    ),
                ),
                LimitedBy::Latency => (
                    Some(e.per_instance_qps),
                    format!("p99 knee in the stress tests ({tests})"),
                ),
                LimitedBy::Errors => (
                    Some(e.per_instance_qps),
                    format!("error-budget knee in the stress tests ({tests})"),
                ),
            },
            (None, Err(e)) => (
                None,
                if windows.is_empty() {
                    "unknown: no stress test has ended and the config gives none".to_string()
                } else {
                    format!("unknown: {e}")
                },
            ),
        };
        out.insert(
            service.clone(),
            ServiceCapacity {
                service,
                per_instance_qps,
                source,
                slo,
                stress_tests: names.clone(),
                estimate: estimate.ok(),
            },
        );
    }
    Ok(out)
}

/// A plan with the services that could not be planned.
#[derive(Debug, Clone, Serialize)]
pub struct PlanOutcome {
    /// The milestone.
    pub milestone: Milestone,
    /// When the plan was made (Unix seconds): data up to then, or up to the milestone's start.
    pub made_at: i64,
    /// One row per service.
    pub rows: Vec<PlanRow>,
    /// Services left out, with why.
    pub skipped: Vec<Skipped>,
}

/// A service a plan left out.
#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    /// Service.
    pub service: String,
    /// Why.
    pub reason: String,
}

/// Makes the plan for `m` from data before `min(now, m.start)`.
pub async fn plan(
    src: &Sources,
    p: &Arc<Planning>,
    m: &Milestone,
    now: i64,
) -> Result<PlanOutcome, ApiError> {
    let cfg = &p.cfg;
    let milestones = p.store.milestones()?;
    let cutoff = now.min(m.spec.start).div_euclid(HOUR) * HOUR;
    let from = cutoff - cfg.history.0.as_secs() as i64;
    let d = Demand::new(src, cfg);
    let hourly = d.bins(None, Traffic::Organic, from, cutoff, HOUR).await?;
    let caps = capacity(src, p, &milestones, cutoff).await?;
    let scores = p.store.scores()?;
    // Every other milestone's window is masked out of the organic history.
    let masks: Vec<TimeWindow> = milestones
        .iter()
        .filter(|x| x.id != m.id)
        .map(|x| x.spec.window())
        .collect();
    let spec = m.spec.clone();
    let policy_default = PlanPolicy {
        utilisation_target: cfg.utilisation_target,
        zones: 1,
        zone_loss_tolerance: cfg.zone_loss_tolerance,
    };
    let cfg2 = cfg.clone();
    let milestone = m.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        let by_id: BTreeMap<u64, &Milestone> = milestones.iter().map(|x| (x.id, x)).collect();
        let mut rows = Vec::new();
        let mut skipped = Vec::new();
        for (service, bins) in &hourly {
            let points: Vec<(i64, f64)> = bins
                .iter()
                .filter(|(_, b)| !b.partial)
                .map(|(t, b)| (*t, b.qps))
                .collect();
            let baseline = match baseline_peak(&points, &masks, &spec) {
                Ok(b) => b,
                Err(reason) => {
                    skipped.push(Skipped {
                        service: service.clone(),
                        reason,
                    });
                    continue;
                }
            };
            let past: Vec<PastScore<'_>> = scores
                .iter()
                .filter_map(|s| {
                    let pm = by_id.get(&s.milestone_id)?;
                    (pm.spec.end <= spec.start).then_some((pm, s))
                })
                .flat_map(|(pm, s)| {
                    s.services.iter().map(move |sc| PastScore {
                        milestone: &pm.spec.name,
                        kind: pm.spec.kind,
                        end: pm.spec.end,
                        expected_audience: pm.spec.drivers.expected_audience,
                        score: sc,
                    })
                })
                .collect();
            let multiplier =
                forecast::plan::resolve_multiplier(service, spec.kind, &spec.drivers, &past);
            let cap = caps.get(service);
            let last_day = bins.range(cutoff - 24 * HOUR..);
            let zones_seen = last_day.clone().map(|(_, b)| b.zones).fold(0.0, f64::max);
            let instances_now = bins
                .iter()
                .next_back()
                .map(|(_, b)| b.instances)
                .filter(|n| n.is_finite() && *n > 0.0);
            let zones = cfg2
                .zones
                .unwrap_or(if zones_seen.is_finite() && zones_seen >= 1.0 {
                    zones_seen as u32
                } else {
                    1
                });
            let policy = PlanPolicy {
                utilisation_target: cfg2
                    .services
                    .get(service)
                    .and_then(|s| s.utilisation_target)
                    .unwrap_or(policy_default.utilisation_target),
                zones,
                zone_loss_tolerance: policy_default.zone_loss_tolerance.min(zones - 1),
            };
            let input = PlanInput {
                milestone: spec.name.clone(),
                kind: spec.kind,
                service: service.clone(),
                baseline: baseline.1,
                model: baseline.0,
                multiplier,
                target_qps: spec.drivers.target_for(service),
                capacity: (
                    cap.and_then(|c| c.per_instance_qps),
                    cap.map_or_else(
                        || "unknown: not seen in any stress test and not in the config".into(),
                        |c| c.source.clone(),
                    ),
                ),
                instances_now,
            };
            match forecast::plan::plan_row(&input, &policy) {
                Ok(r) => rows.push(r),
                Err(e) => skipped.push(Skipped {
                    service: service.clone(),
                    reason: e.to_string(),
                }),
            }
        }
        PlanOutcome {
            milestone,
            made_at: cutoff,
            rows,
            skipped,
        }
    })
    .await
    .map_err(ApiError::internal)?;
    if now < m.spec.start && !outcome.rows.is_empty() {
        p.store.put_plan(
            m.id,
            &StoredPlan {
                made_at: outcome.made_at,
                rows: outcome.rows.clone(),
            },
        )?;
    }
    Ok(outcome)
}

/// Model name and quantiles of the organic peak over `spec`'s window, forecast from hourly
/// `points` (masked where other milestones ran).
fn baseline_peak(
    points: &[(i64, f64)],
    masks: &[TimeWindow],
    spec: &forecast::milestone::MilestoneSpec,
) -> Result<(String, PeakQuantiles), String> {
    let opts = PrepareOptions {
        step: Some(HOUR),
        max_gap: 12,
        from: None,
        to: None,
    };
    let (mut series, _) = prepare(points, &opts).map_err(|e| format!("history: {e}"))?;
    series.mask_windows(masks);
    let end = series.time_at(series.len());
    let first = (spec.start - end).div_euclid(HOUR).max(0) as usize;
    let last = (spec.end - end + HOUR - 1).div_euclid(HOUR).max(1) as usize;
    let cfg =
        forecast::ForecasterConfig::for_history(series.len(), last).map_err(|e| e.to_string())?;
    let f = Forecaster::new(cfg, ModelChoice::Auto).map_err(|e| e.to_string())?;
    let out = f.forecast(&series, masks).map_err(|e| e.to_string())?;
    let q = peak_quantiles(&out.forecast, first.min(last - 1)..last, &[0.5, 0.9, 0.99])
        .map_err(|e| e.to_string())?;
    let clamp = |v: f64| v.max(0.0);
    Ok((
        out.forecast.model.clone(),
        PeakQuantiles {
            p50: clamp(q[0]),
            p90: clamp(q[1]),
            p99: clamp(q[2]),
        },
    ))
}

/// Scores ended milestone `m`: the plan made before it (or one recomputed from data before its
/// start) against the actual peak per service, recorded in the store.
pub async fn score_milestone(
    src: &Sources,
    p: &Arc<Planning>,
    m: &Milestone,
    now: i64,
) -> Result<MilestoneScore, ApiError> {
    if now < m.spec.end {
        return Err(ApiError {
            status: axum::http::StatusCode::CONFLICT,
            code: "not_ended",
            message: format!(
                "milestone {:?} ends at {}; it is scored after it ends",
                m.spec.name,
                forecast::milestone::rfc3339::format(m.spec.end)
            ),
        });
    }
    let (rows, kind, made_at, skipped) = match p.store.plan(m.id)? {
        Some(sp) => (sp.rows, "stored", sp.made_at, vec![]),
        None => {
            let o = plan(src, p, m, m.spec.start).await?;
            (o.rows, "recomputed", o.made_at, o.skipped)
        }
    };
    let step = p.cfg.step.0.as_secs().max(1) as i64;
    let actual = Demand::new(src, &p.cfg)
        .bins(None, Traffic::All, m.spec.start, m.spec.end, step)
        .await?;
    let mut services = Vec::new();
    for r in &rows {
        let Some(bins) = actual.get(&r.service) else {
            continue;
        };
        let peak = bins.values().map(|b| b.qps).fold(0.0, f64::max);
        services.push(score(r, peak).map_err(|e| ApiError::bad_request(e.to_string()))?);
    }
    if services.is_empty() {
        let why = if rows.is_empty() {
            let reasons: Vec<String> = skipped
                .iter()
                .map(|k| format!("{}: {}", k.service, k.reason))
                .collect();
            format!(
                "no service could be forecast from data before its start ({})",
                if reasons.is_empty() {
                    "no traffic recorded before it".to_string()
                } else {
                    reasons.join("; ")
                }
            )
        } else {
            "no traffic was recorded during it".to_string()
        };
        return Err(ApiError {
            status: axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            code: "nothing_to_score",
            message: format!("milestone {:?} cannot be scored: {why}", m.spec.name),
        });
    }
    let s = MilestoneScore {
        milestone_id: m.id,
        milestone: m.spec.name.clone(),
        scored_at: now,
        plan: kind.to_string(),
        plan_made_at: made_at,
        services,
    };
    p.store.put_score(&s)?;
    Ok(s)
}

/// Scores every milestone that ended at least two steps ago and has no score, once a minute,
/// until `stop`. One that cannot be scored yet (no data) is retried hourly.
pub async fn scoring_loop(app: AppState, stop: Arc<std::sync::atomic::AtomicBool>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failed: BTreeMap<u64, i64> = BTreeMap::new();
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        tick.tick().await;
        let p = Arc::clone(&app.planning);
        let grace = 2 * p.cfg.step.0.as_secs() as i64;
        let t = now();
        let Ok(all) = p.store.milestones() else {
            continue;
        };
        for m in all.iter().filter(|m| m.spec.end + grace <= t) {
            if matches!(p.store.score(m.id), Ok(Some(_)))
                || failed.get(&m.id).is_some_and(|at| t - at < HOUR)
            {
                continue;
            }
            match score_milestone(&app.sources(), &p, m, t).await {
                Ok(s) => {
                    failed.remove(&m.id);
                    tracing::info!(milestone = %m.spec.name, services = s.services.len(), "Milestone scored.");
                }
                Err(e) => {
                    failed.insert(m.id, t);
                    tracing::warn!(milestone = %m.spec.name, error = %e.message, "Scoring a milestone failed; retrying in an hour.");
                }
            }
        }
    }
}
