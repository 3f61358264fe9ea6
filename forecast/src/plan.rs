//! Capacity plans and their scoring.
//!
//! For one milestone and service, the plan is:
//!
//! ```text
//! forecast peak (q)   = max(organic peak (q) × event multiplier, stress-test target)
//! usable per instance = capacity per instance × utilisation target
//! needed if all zones = ceil(forecast peak P99 / usable per instance)
//! instances needed    = ceil(needed if all zones / (zones − zones lost)) × zones
//! gap                 = instances needed − instances now
//! ```
//!
//! so that after losing `zone_loss_tolerance` zones the surviving ones still carry the P99 peak
//! at the utilisation target. Every term is a field of [`PlanRow`], so an export shows the
//! arithmetic. When a milestone ends it is scored ([`score`]): actual peak against the forecast.
//! The realised error corrects the multiplier of later milestones ([`resolve_multiplier`]).

use crate::error::{Error, Result};
use crate::milestone::{Drivers, MilestoneKind};
use serde::{Deserialize, Serialize};

/// How a plan sizes the fleet.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PlanPolicy {
    /// Highest planned load / capacity of an instance (0..1], e.g. 0.7.
    pub utilisation_target: f64,
    /// Zones (clusters) the fleet is spread over, evenly.
    pub zones: u32,
    /// Zones that may be lost with the rest still carrying the peak.
    pub zone_loss_tolerance: u32,
}

impl PlanPolicy {
    /// Checks the policy is usable.
    pub fn check(&self) -> Result<()> {
        if !(self.utilisation_target > 0.0 && self.utilisation_target <= 1.0) {
            return Err(Error::InvalidParameter {
                name: "utilisation_target",
                reason: format!("{} is not in (0, 1]", self.utilisation_target),
            });
        }
        if self.zones == 0 {
            return Err(Error::InvalidParameter {
                name: "zones",
                reason: "must be at least 1".into(),
            });
        }
        if self.zone_loss_tolerance >= self.zones {
            return Err(Error::InvalidParameter {
                name: "zone_loss_tolerance",
                reason: format!(
                    "{} leaves no zone of {} standing",
                    self.zone_loss_tolerance, self.zones
                ),
            });
        }
        Ok(())
    }
}

/// Quantiles of the organic (no-event) peak over the milestone window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PeakQuantiles {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
}

/// Everything a plan row is computed from.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanInput {
    /// Milestone name.
    pub milestone: String,
    /// Milestone kind.
    pub kind: MilestoneKind,
    /// Service.
    pub service: String,
    /// Organic peak over the window.
    pub baseline: PeakQuantiles,
    /// Model that forecast the baseline.
    pub model: String,
    /// Event multiplier and where it came from.
    pub multiplier: (f64, String),
    /// Stress-test target, fleet QPS.
    pub target_qps: Option<f64>,
    /// Per-instance capacity (None: unknown) and where it came from.
    pub capacity: (Option<f64>, String),
    /// Instances serving now, if known.
    pub instances_now: Option<f64>,
}

/// One row of a plan: every term of the arithmetic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanRow {
    /// Milestone name.
    pub milestone: String,
    /// Milestone kind.
    pub milestone_kind: MilestoneKind,
    /// Service.
    pub service: String,
    /// Model that forecast the organic baseline.
    pub model: String,
    /// Organic peak, median.
    pub baseline_peak_p50: f64,
    /// Organic peak, P90.
    pub baseline_peak_p90: f64,
    /// Organic peak, P99.
    pub baseline_peak_p99: f64,
    /// Event multiplier over the organic baseline.
    pub event_multiplier: f64,
    /// Where the multiplier came from.
    pub multiplier_source: String,
    /// Stress-test target, fleet QPS.
    pub target_qps: Option<f64>,
    /// Forecast peak QPS, median.
    pub forecast_peak_p50: f64,
    /// Forecast peak QPS, P90.
    pub forecast_peak_p90: f64,
    /// Forecast peak QPS, P99: what the fleet is sized for.
    pub forecast_peak_p99: f64,
    /// QPS one instance serves within the SLO (None: unknown, so nothing is sized).
    pub capacity_per_instance_qps: Option<f64>,
    /// Where the capacity came from.
    pub capacity_source: String,
    /// Utilisation target.
    pub utilisation_target: f64,
    /// Capacity × utilisation target.
    pub usable_qps_per_instance: Option<f64>,
    /// Zones the fleet is spread over.
    pub zones: u32,
    /// Zones that may be lost.
    pub zone_loss_tolerance: u32,
    /// Instances needed with every zone up.
    pub instances_needed_all_zones: Option<u64>,
    /// Instances needed so the surviving zones carry the peak (a multiple of `zones`).
    pub instances_needed: Option<u64>,
    /// Instances serving now.
    pub instances_now: Option<f64>,
    /// Needed − now (positive: instances to add).
    pub gap: Option<f64>,
}

fn ceil_clean(x: f64) -> u64 {
    // A ratio that is an integer up to rounding noise must not round up to the next one.
    let r = x.round();
    if (x - r).abs() < 1e-9 {
        r as u64
    } else {
        x.ceil() as u64
    }
}

/// Computes one plan row.
pub fn plan_row(input: &PlanInput, policy: &PlanPolicy) -> Result<PlanRow> {
    policy.check()?;
    let (cap, cap_source) = &input.capacity;
    if let Some(c) = cap
        && !(c.is_finite() && *c > 0.0)
    {
        return Err(Error::InvalidParameter {
            name: "capacity",
            reason: format!("{} from {}: {c} is not positive", input.service, cap_source),
        });
    }
    let (m, m_source) = &input.multiplier;
    if !(m.is_finite() && *m > 0.0) {
        return Err(Error::InvalidParameter {
            name: "multiplier",
            reason: format!("{} for {}: {m} is not positive", input.service, m_source),
        });
    }
    let b = input.baseline;
    if ![b.p50, b.p90, b.p99]
        .iter()
        .all(|v| v.is_finite() && *v >= 0.0)
    {
        return Err(Error::InvalidParameter {
            name: "baseline",
            reason: format!("{}: peak quantiles {b:?} are not finite", input.service),
        });
    }
    let target = input.target_qps.unwrap_or(0.0);
    let peak = |q: f64| (q * m).max(target);
    let (p50, p90, p99) = (peak(b.p50), peak(b.p90), peak(b.p99));
    let usable = cap.map(|c| c * policy.utilisation_target);
    let all_zones = usable.map(|u| ceil_clean(p99 / u).max(1));
    let surviving = u64::from(policy.zones - policy.zone_loss_tolerance);
    let needed =
        all_zones.map(|n| ceil_clean(n as f64 / surviving as f64).max(1) * u64::from(policy.zones));
    Ok(PlanRow {
        milestone: input.milestone.clone(),
        milestone_kind: input.kind,
        service: input.service.clone(),
        model: input.model.clone(),
        baseline_peak_p50: b.p50,
        baseline_peak_p90: b.p90,
        baseline_peak_p99: b.p99,
        event_multiplier: *m,
        multiplier_source: m_source.clone(),
        target_qps: input.target_qps,
        forecast_peak_p50: p50,
        forecast_peak_p90: p90,
        forecast_peak_p99: p99,
        capacity_per_instance_qps: *cap,
        capacity_source: cap_source.clone(),
        utilisation_target: policy.utilisation_target,
        usable_qps_per_instance: usable,
        zones: policy.zones,
        zone_loss_tolerance: policy.zone_loss_tolerance,
        instances_needed_all_zones: all_zones,
        instances_needed: needed,
        instances_now: input.instances_now,
        gap: needed
            .zip(input.instances_now)
            .map(|(n, now)| n as f64 - now),
    })
}

/// Forecast against actual for one service of an ended milestone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceScore {
    /// Service.
    pub service: String,
    /// Organic peak forecast, median.
    pub baseline_peak_p50: f64,
    /// Multiplier the forecast used.
    pub event_multiplier: f64,
    /// Forecast peak, median.
    pub forecast_peak_p50: f64,
    /// Forecast peak, P90.
    pub forecast_peak_p90: f64,
    /// Forecast peak, P99.
    pub forecast_peak_p99: f64,
    /// Peak QPS observed.
    pub actual_peak: f64,
    /// actual / forecast median − 1 (positive: demand above forecast).
    pub error: f64,
    /// |error|.
    pub ape: f64,
    /// Whether the actual peak stayed at or under the P99 the fleet was sized for.
    pub within_p99: bool,
    /// actual peak / organic peak median: the multiplier the event really had.
    pub realised_multiplier: f64,
}

/// Scores one plan row against the actual peak.
pub fn score(row: &PlanRow, actual_peak: f64) -> Result<ServiceScore> {
    if !(actual_peak.is_finite() && actual_peak >= 0.0) {
        return Err(Error::InvalidParameter {
            name: "actual_peak",
            reason: format!("{}: {actual_peak} is not a QPS", row.service),
        });
    }
    let error = if row.forecast_peak_p50 > 0.0 {
        actual_peak / row.forecast_peak_p50 - 1.0
    } else {
        f64::NAN
    };
    let realised = if row.baseline_peak_p50 > 0.0 {
        actual_peak / row.baseline_peak_p50
    } else {
        f64::NAN
    };
    Ok(ServiceScore {
        service: row.service.clone(),
        baseline_peak_p50: row.baseline_peak_p50,
        event_multiplier: row.event_multiplier,
        forecast_peak_p50: row.forecast_peak_p50,
        forecast_peak_p90: row.forecast_peak_p90,
        forecast_peak_p99: row.forecast_peak_p99,
        actual_peak,
        error,
        ape: error.abs(),
        within_p99: actual_peak <= row.forecast_peak_p99,
        realised_multiplier: realised,
    })
}

/// A scored earlier milestone, as [`resolve_multiplier`] sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct PastScore<'a> {
    /// Its name.
    pub milestone: &'a str,
    /// Its kind.
    pub kind: MilestoneKind,
    /// Its end, Unix seconds.
    pub end: i64,
    /// Its expected audience driver.
    pub expected_audience: Option<f64>,
    /// Its score for the service in question.
    pub score: &'a ServiceScore,
}

/// Corrections are kept within this factor of the driver, so one bad scoring cannot wreck a plan.
const MAX_CORRECTION: f64 = 5.0;

/// The event multiplier for `service` in a milestone of `kind` with `drivers`, and where it came
/// from, given the scores of milestones that ended before it. In order of preference:
///
/// 1. a multiplier in the drivers, times the correction (actual / forecast median) of the most
///    recent scored event (rehearsal or live) for the service;
/// 2. the realised multiplier of the most recent scored event, its event part scaled by the
///    ratio of expected audiences when both milestones give one;
/// 3. 1: the organic baseline.
///
/// Stress tests and drills carry synthetic load with explicit targets: their multiplier is 1
/// unless a driver sets one.
pub fn resolve_multiplier(
    service: &str,
    kind: MilestoneKind,
    drivers: &Drivers,
    past: &[PastScore<'_>],
) -> (f64, String) {
    let latest = past
        .iter()
        .filter(|p| !p.kind.is_synthetic())
        .filter(|p| p.score.service == service)
        .filter(|p| p.score.error.is_finite() && p.score.realised_multiplier.is_finite())
        .max_by_key(|p| p.end);
    if let Some((m, source)) = drivers.multiplier_for(service) {
        return match latest {
            Some(p) if !kind.is_synthetic() => {
                let c = (1.0 + p.score.error).clamp(1.0 / MAX_CORRECTION, MAX_CORRECTION);
                (
                    m * c,
                    format!(
                        "{source} ({m}) × correction {c:.3} (actual / forecast median of {:?})",
                        p.milestone
                    ),
                )
            }
            _ => (m, source),
        };
    }
    if kind.is_synthetic() {
        return (1.0, "1: synthetic load, sized by its target".into());
    }
    if let Some(p) = latest {
        let r = p.score.realised_multiplier.max(0.0);
        if let (Some(now), Some(then)) = (drivers.expected_audience, p.expected_audience) {
            let m = (1.0 + (r - 1.0) * now / then).max(0.0);
            return (
                m,
                format!(
                    "realised multiplier {r:.3} of {:?} (audience {then}) scaled to audience {now}",
                    p.milestone
                ),
            );
        }
        return (r, format!("realised multiplier of {:?}", p.milestone));
    }
    (
        1.0,
        "1: no driver and no scored event before it (organic baseline)".into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> PlanInput {
        PlanInput {
            milestone: "live run".into(),
            kind: MilestoneKind::Live,
            service: "envelope-grab".into(),
            baseline: PeakQuantiles {
                p50: 2000.0,
                p90: 2200.0,
                p99: 2500.0,
            },
            model: "mstl".into(),
            multiplier: (60.0, "drivers.multiplier".into()),
            target_qps: None,
            capacity: (Some(1600.0), "stress test 3".into()),
            instances_now: Some(24.0),
        }
    }

    const POLICY: PlanPolicy = PlanPolicy {
        utilisation_target: 0.75,
        zones: 3,
        zone_loss_tolerance: 1,
    };

    /// Pins the arithmetic: 2500 × 60 = 150,000 QPS at P99; 1600 × 0.75 = 1200 usable per
    /// instance; 125 instances with every zone; 125 / 2 surviving zones = 62.5 → 63 per zone;
    /// 189 in all; gap 165.
    #[test]
    fn plan_arithmetic_is_pinned() {
        let r = plan_row(&input(), &POLICY).expect("row");
        assert_eq!(r.forecast_peak_p50, 120_000.0);
        assert_eq!(r.forecast_peak_p90, 132_000.0);
        assert_eq!(r.forecast_peak_p99, 150_000.0);
        assert_eq!(r.usable_qps_per_instance, Some(1200.0));
        assert_eq!(r.instances_needed_all_zones, Some(125));
        assert_eq!(r.instances_needed, Some(189));
        assert_eq!(r.gap, Some(165.0));
        let json = serde_json::to_value(&r).expect("json");
        assert_eq!(json["milestone_kind"], "live");
        assert_eq!(json["multiplier_source"], "drivers.multiplier");
    }

    #[test]
    fn exact_ratios_do_not_round_up_and_a_target_floors_the_peak() {
        let mut i = input();
        i.multiplier = (1.0, "1".into());
        i.baseline.p99 = 2400.0; // exactly 2 instances of 1200 usable
        let p = PlanPolicy {
            zones: 1,
            zone_loss_tolerance: 0,
            ..POLICY
        };
        assert_eq!(plan_row(&i, &p).expect("row").instances_needed, Some(2));
        i.target_qps = Some(6000.0);
        let r = plan_row(&i, &p).expect("row");
        assert_eq!(r.forecast_peak_p50, 6000.0);
        assert_eq!(r.instances_needed, Some(5));
        // Unknown capacity: the forecast stands, nothing is sized.
        i.capacity = (None, "unknown".into());
        let r = plan_row(&i, &p).expect("row");
        assert_eq!((r.instances_needed, r.gap), (None, None));
        assert_eq!(r.forecast_peak_p99, 6000.0);
    }

    #[test]
    fn bad_policy_and_inputs_are_named() {
        let mut p = POLICY;
        p.zone_loss_tolerance = 3;
        assert!(
            plan_row(&input(), &p)
                .unwrap_err()
                .to_string()
                .contains("zone_loss_tolerance")
        );
        let mut i = input();
        i.capacity.0 = Some(0.0);
        assert!(
            plan_row(&i, &POLICY)
                .unwrap_err()
                .to_string()
                .contains("capacity")
        );
        let mut i = input();
        i.baseline.p99 = f64::NAN;
        assert!(
            plan_row(&i, &POLICY)
                .unwrap_err()
                .to_string()
                .contains("baseline")
        );
    }

    #[test]
    fn scores_correct_the_next_multiplier() {
        let mut i = input();
        i.milestone = "rehearsal 3".into();
        i.kind = MilestoneKind::Rehearsal;
        i.multiplier = (30.0, "drivers.multiplier".into());
        let row = plan_row(&i, &POLICY).expect("row");
        // Forecast median 60,000; actual 54,000: 10 % low, realised 27×.
        let s = score(&row, 54_000.0).expect("score");
        assert!((s.error + 0.1).abs() < 1e-12);
        assert!((s.realised_multiplier - 27.0).abs() < 1e-12);
        assert!(s.within_p99);
        let past = [PastScore {
            milestone: "rehearsal 3",
            kind: MilestoneKind::Rehearsal,
            end: 100,
            expected_audience: Some(0.5),
            score: &s,
        }];
        // A driver: corrected by 0.9.
        let d = Drivers {
            multiplier: Some(60.0),
            ..Drivers::default()
        };
        let (m, src) = resolve_multiplier("envelope-grab", MilestoneKind::Live, &d, &past);
        assert!((m - 54.0).abs() < 1e-9, "{m} {src}");
        assert!(src.contains("correction 0.900"), "{src}");
        // No driver, audiences: 1 + 26 × 1.0 / 0.5 = 53.
        let d = Drivers {
            expected_audience: Some(1.0),
            ..Drivers::default()
        };
        let (m, src) = resolve_multiplier("envelope-grab", MilestoneKind::Live, &d, &past);
        assert!((m - 53.0).abs() < 1e-9, "{m} {src}");
        // Another service has no score: organic.
        let (m, _) = resolve_multiplier("feed", MilestoneKind::Live, &d, &past);
        assert_eq!(m, 1.0);
        // Stress tests are not corrected by event scores.
        let (m, _) = resolve_multiplier(
            "envelope-grab",
            MilestoneKind::StressTest,
            &Drivers::default(),
            &past,
        );
        assert_eq!(m, 1.0);
        assert!(score(&row, f64::NAN).is_err());
    }
}
