//! Live signals for the festival alert rules: actual QPS against the running milestone's
//! forecast band, and actual load against capacity (headroom).
//!
//! Each returns the active instances the way a SQL rule's rows are: labels and a value, so the
//! alert state machine, routing and delivery treat both kinds like any other rule.

use super::demand::{Bin, Demand, Traffic};
use super::{Planning, ServiceCapacity, Sources, capacity, plan};
use crate::alert::Labels;
use crate::alert::state::Sample;
use forecast::milestone::Milestone;
use forecast::plan::PlanRow;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Capacity estimates are reused this long.
const CAPACITY_TTL_S: i64 = 600;

/// Plans and capacities kept between evaluations.
#[derive(Debug, Default)]
pub struct LiveCache {
    /// Per milestone id: the spec the plan was made for and its rows.
    plans: parking_lot::Mutex<BTreeMap<u64, (String, Vec<PlanRow>)>>,
    /// When the capacities were computed, and them.
    capacity: parking_lot::Mutex<Option<(i64, BTreeMap<String, ServiceCapacity>)>>,
}

/// Which forecast quantile is the band's upper edge.
pub fn band_column(q: &str) -> Option<fn(&PlanRow) -> f64> {
    match q {
        "p50" => Some(|r| r.forecast_peak_p50),
        "p90" => Some(|r| r.forecast_peak_p90),
        "p99" => Some(|r| r.forecast_peak_p99),
        _ => None,
    }
}

/// Load per service over the last complete `window` before `now` (Unix seconds).
async fn load(
    src: &Sources,
    p: &Planning,
    now: i64,
    window: i64,
) -> Result<BTreeMap<String, Bin>, String> {
    let window = window.max(1);
    let end = now.div_euclid(window) * window;
    let bins = Demand::new(src, &p.cfg)
        .bins(None, Traffic::All, end - window, end, window)
        .await
        .map_err(|e| e.message)?;
    Ok(bins
        .into_iter()
        .filter_map(|(s, b)| Some((s, *b.get(&(end - window))?)))
        .collect())
}

fn running(p: &Planning, now: i64) -> Result<Vec<Milestone>, String> {
    Ok(p.store
        .milestones()
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|m| m.spec.start <= now && now < m.spec.end)
        .collect())
}

/// The plan rows for running milestone `m`: the stored plan, else one made from data before
/// its start (cached until the milestone changes).
async fn rows_for(
    src: &Sources,
    p: &Arc<Planning>,
    m: &Milestone,
    now: i64,
) -> Result<Vec<PlanRow>, String> {
    if let Some(sp) = p.store.plan(m.id).map_err(|e| e.to_string())? {
        return Ok(sp.rows);
    }
    let key = serde_json::to_string(&m.spec).unwrap_or_default();
    if let Some((k, rows)) = p.live.plans.lock().get(&m.id)
        && *k == key
    {
        return Ok(rows.clone());
    }
    let o = plan(src, p, m, now).await.map_err(|e| e.message)?;
    p.live.plans.lock().insert(m.id, (key, o.rows.clone()));
    Ok(o.rows)
}

/// Services whose QPS over the last `window` is above the `quantile` forecast peak of a running
/// milestone; the value is the QPS.
pub async fn above_band(
    src: &Sources,
    p: &Arc<Planning>,
    now: i64,
    quantile: &str,
    window: i64,
) -> Result<Vec<Sample>, String> {
    let col = band_column(quantile).ok_or_else(|| format!("unknown band quantile {quantile:?}"))?;
    let ms = running(p, now)?;
    if ms.is_empty() {
        return Ok(vec![]);
    }
    let live = load(src, p, now, window).await?;
    let mut out = Vec::new();
    for m in &ms {
        for r in rows_for(src, p, m, now).await? {
            let Some(b) = live.get(&r.service) else {
                continue;
            };
            if b.qps > col(&r) {
                out.push(Sample {
                    labels: labels(&r.service, Some(m)),
                    value: Some(b.qps),
                });
            }
        }
    }
    Ok(out)
}

/// Services whose load over the last `window` is above `limit` of their capacity (per-instance
/// capacity × instances serving); the value is the ratio.
pub async fn headroom(
    src: &Sources,
    p: &Arc<Planning>,
    now: i64,
    limit: f64,
    window: i64,
) -> Result<Vec<Sample>, String> {
    let caps = {
        let cached = p.live.capacity.lock().clone();
        match cached {
            Some((at, c)) if now - at < CAPACITY_TTL_S && now >= at => c,
            _ => {
                let all = p.store.milestones().map_err(|e| e.to_string())?;
                let c = capacity(src, p, &all, now).await.map_err(|e| e.message)?;
                *p.live.capacity.lock() = Some((now, c.clone()));
                c
            }
        }
    };
    let ms = running(p, now)?;
    let live = load(src, p, now, window).await?;
    let mut out = Vec::new();
    for (service, b) in &live {
        let Some(per) = caps.get(service).and_then(|c| c.per_instance_qps) else {
            continue;
        };
        if !(b.instances.is_finite() && b.instances > 0.0) {
            continue;
        }
        let ratio = b.qps / (per * b.instances);
        if ratio > limit {
            out.push(Sample {
                labels: labels(service, ms.first()),
                value: Some(ratio),
            });
        }
    }
    Ok(out)
}

fn labels(service: &str, m: Option<&Milestone>) -> Labels {
    let mut l = Labels::new();
    l.insert("service".into(), service.to_string());
    if let Some(m) = m {
        l.insert("milestone".into(), m.spec.name.clone());
        l.insert("milestone_kind".into(), m.spec.kind.as_str().into());
    }
    l
}
