//! The milestone timeline of the reference campaign (SCENARIO.md): three stress tests, a
//! disaster-recovery drill, four rehearsals and the live run, placed relative to the kick-off,
//! and the calendar file the simulator writes so that forecasts know what was played.
//!
//! All clock times of the scenario are UTC.

use super::fleet::{CLUSTERS, GRAB, OPEN, SERVICES};
use super::traffic::Scenario;
use serde::Serialize;

/// Seconds in a day.
pub const DAY: i64 = 86_400;
/// Seconds from a round's start (plus the service's lag) to its peak.
pub const ROUND_RISE_S: f64 = 20.0;
/// Seconds over which a round decays to 5 % of its extra traffic.
pub const ROUND_DECAY_S: f64 = 180.0;
/// Past this many seconds after its peak a round's extra traffic counts as gone.
const ROUND_TAIL_S: f64 = 900.0;
/// Stress tests ramp in steps of this fraction of the planned live peak.
pub const STRESS_STEP_FRACTION: f64 = 0.1;
/// Services that stress tests load.
pub const STRESSED: [usize; 2] = [GRAB, OPEN];

/// What a milestone is, as ARCHITECTURE.md names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Synthetic load ramped in steps on envelope-grab and envelope-open.
    StressTest,
    /// One cluster goes dark; its traffic moves to the others.
    DrDrill,
    /// Scripted red-envelope rounds with a share of the live audience.
    Rehearsal,
    /// The festival itself.
    Live,
}

impl Kind {
    /// The snake_case name used in files.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::StressTest => "stress_test",
            Self::DrDrill => "dr_drill",
            Self::Rehearsal => "rehearsal",
            Self::Live => "live",
        }
    }
}

/// What a milestone does to the traffic.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// Synthetic load on [`STRESSED`] ramped in equal-length steps of
    /// [`STRESS_STEP_FRACTION`] up to `target_fraction` of each service's planned live peak.
    Stress {
        /// Last step, as a fraction of the planned live peak.
        target_fraction: f64,
    },
    /// Cluster `dark` (index into [`CLUSTERS`]) serves nothing; the others absorb its traffic.
    Drill {
        /// Index of the cluster that goes dark.
        dark: usize,
    },
    /// Red-envelope rounds starting at `rounds` (Unix seconds), with `audience_share` of the
    /// live audience.
    Rounds {
        /// Fraction of the planned live audience (1 for the live run).
        audience_share: f64,
        /// Start of each round, Unix seconds.
        rounds: Vec<i64>,
    },
}

/// One milestone of the campaign.
#[derive(Debug, Clone, PartialEq)]
pub struct Milestone {
    /// Human name, e.g. `stress test 2`.
    pub name: String,
    /// Its kind.
    pub kind: Kind,
    /// Start, Unix seconds (inclusive).
    pub start: i64,
    /// End, Unix seconds (exclusive).
    pub end: i64,
    /// What it does to the traffic.
    pub plan: Plan,
}

impl Milestone {
    fn contains(&self, t: f64) -> bool {
        t >= self.start as f64 && t < self.end as f64
    }
}

/// The campaign's milestones in time order.
#[derive(Debug, Clone, PartialEq)]
pub struct Calendar {
    /// Day 0, 00:00 UTC, Unix seconds.
    pub kickoff: i64,
    /// The milestones, in time order.
    pub milestones: Vec<Milestone>,
}

impl Calendar {
    /// The SCENARIO.md timeline relative to `kickoff` (Unix seconds of day 0, 00:00 UTC).
    pub fn reference(kickoff: i64) -> Self {
        let at = |day: i64, h: i64, m: i64| kickoff + day * DAY + h * 3600 + m * 60;
        let mut milestones = Vec::new();
        for (i, (day, end_h, end_m, target)) in [(4, 3, 0, 0.5), (8, 3, 0, 0.8), (12, 3, 30, 1.2)]
            .into_iter()
            .enumerate()
        {
            milestones.push(Milestone {
                name: format!("stress test {}", i + 1),
                kind: Kind::StressTest,
                start: at(day, 2, 0),
                end: at(day, end_h, end_m),
                plan: Plan::Stress {
                    target_fraction: target,
                },
            });
        }
        milestones.push(Milestone {
            name: "DR drill".into(),
            kind: Kind::DrDrill,
            start: at(15, 14, 0),
            end: at(15, 14, 30),
            plan: Plan::Drill { dark: 1 },
        });
        for (i, (day, share)) in [(18, 0.10), (21, 0.25), (23, 0.50), (25, 0.80)]
            .into_iter()
            .enumerate()
        {
            milestones.push(Milestone {
                name: format!("rehearsal {}", i + 1),
                kind: Kind::Rehearsal,
                start: at(day, 20, 0),
                end: at(day, 22, 0),
                plan: Plan::Rounds {
                    audience_share: share,
                    rounds: vec![at(day, 20, 30), at(day, 21, 30)],
                },
            });
        }
        milestones.push(Milestone {
            name: "live run".into(),
            kind: Kind::Live,
            start: at(27, 20, 0),
            end: at(28, 0, 30),
            plan: Plan::Rounds {
                audience_share: 1.0,
                rounds: vec![
                    at(27, 20, 30),
                    at(27, 21, 30),
                    at(27, 22, 30),
                    at(27, 23, 30),
                ],
            },
        });
        Self {
            kickoff,
            milestones,
        }
    }

    /// The live run.
    pub fn live(&self) -> Option<&Milestone> {
        self.milestones.iter().find(|m| m.kind == Kind::Live)
    }

    /// The fraction of the planned live peak that stress tests add as synthetic load at `t`
    /// (0 outside stress tests).
    pub fn stress_fraction(&self, t: f64) -> f64 {
        for m in &self.milestones {
            if let Plan::Stress { target_fraction } = m.plan
                && m.contains(t)
            {
                let steps = (target_fraction / STRESS_STEP_FRACTION).round().max(1.0);
                let step_len = (m.end - m.start) as f64 / steps;
                let k = ((t - m.start as f64) / step_len).floor().min(steps - 1.0);
                return (k + 1.0) * STRESS_STEP_FRACTION;
            }
        }
        0.0
    }

    /// The cluster that is dark at `t`, if a drill is on.
    pub fn dark_cluster(&self, t: f64) -> Option<usize> {
        self.milestones.iter().find_map(|m| match m.plan {
            Plan::Drill { dark } if m.contains(t) => Some(dark),
            _ => None,
        })
    }

    /// Every round as (start, audience share).
    pub fn rounds(&self) -> impl Iterator<Item = (i64, f64)> + '_ {
        self.milestones.iter().flat_map(|m| match &m.plan {
            Plan::Rounds {
                audience_share,
                rounds,
            } => rounds.iter().map(|&r| (r, *audience_share)).collect(),
            _ => Vec::new(),
        })
    }

    /// Whether traffic may change faster than a scrape step somewhere in `[t0, t1]`: a round
    /// or a milestone boundary lies within it, so it is worth integrating second by second.
    pub fn is_sharp(&self, t0: f64, t1: f64) -> bool {
        let overlaps = |a: f64, b: f64| t0 <= b && t1 >= a;
        self.rounds()
            .any(|(r, _)| overlaps(r as f64, r as f64 + 60.0 + ROUND_RISE_S + ROUND_TAIL_S))
            || self.milestones.iter().any(|m| {
                overlaps(m.start as f64, m.start as f64) || overlaps(m.end as f64, m.end as f64)
            })
    }
}

/// The extra-traffic shape of a round `d` seconds after the service's rise began: a linear rise
/// to 1 over [`ROUND_RISE_S`], then an exponential decay to 5 % over [`ROUND_DECAY_S`].
pub fn round_shape(d: f64) -> f64 {
    if d < 0.0 {
        0.0
    } else if d < ROUND_RISE_S {
        d / ROUND_RISE_S
    } else if d < ROUND_RISE_S + ROUND_TAIL_S {
        (-3.0 * (d - ROUND_RISE_S) / ROUND_DECAY_S).exp()
    } else {
        0.0
    }
}

/// RFC 3339 (UTC, seconds) of Unix seconds `t`.
pub fn rfc3339(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| t.to_string())
}

/// The calendar file: what the simulator played, with the ground truth a forecast is scored
/// against. Written as JSON (or CSV of the milestones when the path ends in `.csv`).
#[derive(Debug, Clone, Serialize)]
pub struct CalendarFile {
    /// Format version.
    pub version: u32,
    /// Seed the simulator ran with.
    pub seed: u64,
    /// QPS and knee multiplier.
    pub scale: f64,
    /// Day 0, RFC 3339.
    pub kickoff: String,
    /// Time zone of every clock time in the scenario.
    pub timezone: &'static str,
    /// Seconds between samples of a series.
    pub step_seconds: i64,
    /// First simulated instant, RFC 3339.
    pub simulated_from: String,
    /// The milestones, in time order.
    pub milestones: Vec<MilestoneRecord>,
    /// Ground truth per service.
    pub services: Vec<ServiceRecord>,
}

/// One milestone in the calendar file.
#[derive(Debug, Clone, Serialize)]
pub struct MilestoneRecord {
    /// Human name.
    pub name: String,
    /// `stress_test`, `dr_drill`, `rehearsal` or `live`.
    pub kind: &'static str,
    /// Start, RFC 3339 (inclusive).
    pub start: String,
    /// End, RFC 3339 (exclusive).
    pub end: String,
    /// Scale drivers and targets.
    pub drivers: serde_json::Value,
    /// What happens, in words.
    pub notes: String,
}

/// Ground truth about one service in the calendar file.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceRecord {
    /// `service` label.
    pub name: &'static str,
    /// `interface` labels.
    pub interfaces: Vec<String>,
    /// Organic peak QPS of the whole fleet at kick-off (scaled).
    pub organic_peak_qps: f64,
    /// Per-instance knee (scaled).
    pub knee_qps: f64,
    /// p99 of an idle instance, ms.
    pub base_p99_ms: f64,
    /// p99 SLO, ms.
    pub slo_p99_ms: f64,
    /// Per-instance capacity at the SLO (scaled).
    pub capacity_at_slo_qps: f64,
    /// Instances per cluster before kick-off.
    pub instances_per_cluster_before: u32,
    /// Instances per cluster from kick-off on.
    pub instances_per_cluster_campaign: u32,
    /// Noise-free peak of the whole fleet during the live run.
    pub live_peak_qps: f64,
}

impl CalendarFile {
    /// Builds the file for `scenario`, whose first simulated instant is `from`.
    pub fn new(scenario: &Scenario, from: i64, step_seconds: i64) -> Self {
        let cal = scenario.calendar();
        let services = (0..SERVICES.len())
            .map(|s| {
                let spec = &SERVICES[s];
                let k = scenario.scale();
                ServiceRecord {
                    name: spec.name,
                    interfaces: super::fleet::interfaces(s)
                        .into_iter()
                        .map(|i| i.name)
                        .collect(),
                    organic_peak_qps: scenario.organic_peak_qps(s),
                    knee_qps: spec.knee_qps * k,
                    base_p99_ms: spec.base_p99_s * 1e3,
                    slo_p99_ms: spec.slo_p99_s * 1e3,
                    capacity_at_slo_qps: spec.capacity_at_slo_qps() * k,
                    instances_per_cluster_before: scenario.fleet().organic[s],
                    instances_per_cluster_campaign: scenario.fleet().campaign[s],
                    live_peak_qps: scenario.planned_peak_qps(s),
                }
            })
            .collect();
        let milestones = cal
            .milestones
            .iter()
            .map(|m| MilestoneRecord {
                name: m.name.clone(),
                kind: m.kind.as_str(),
                start: rfc3339(m.start),
                end: rfc3339(m.end),
                drivers: drivers(scenario, m),
                notes: notes(m),
            })
            .collect();
        Self {
            version: 1,
            seed: scenario.seed(),
            scale: scenario.scale(),
            kickoff: rfc3339(cal.kickoff),
            timezone: "UTC",
            step_seconds,
            simulated_from: rfc3339(from),
            milestones,
            services,
        }
    }

    /// The milestones as CSV: name, kind, start, end, expected multiplier of envelope-grab,
    /// target QPS per service (one column each), notes.
    pub fn to_csv(&self) -> Result<Vec<u8>, csv::Error> {
        let mut w = csv::Writer::from_writer(Vec::new());
        let mut header = vec![
            "name".to_string(),
            "kind".into(),
            "start".into(),
            "end".into(),
            "expected_multiplier".into(),
        ];
        header.extend(SERVICES.iter().map(|s| format!("target_qps_{}", s.name)));
        header.push("notes".into());
        w.write_record(&header)?;
        for m in &self.milestones {
            let mut row = vec![
                m.name.clone(),
                m.kind.to_string(),
                m.start.clone(),
                m.end.clone(),
                m.drivers
                    .pointer("/expected_multiplier/envelope-grab")
                    .map(|v| v.to_string())
                    .unwrap_or_default(),
            ];
            for s in &SERVICES {
                row.push(
                    m.drivers
                        .pointer(&format!("/target_qps/{}", s.name))
                        .map(|v| v.to_string())
                        .unwrap_or_default(),
                );
            }
            row.push(m.notes.clone());
            w.write_record(&row)?;
        }
        w.into_inner().map_err(|e| e.into_error().into())
    }
}

fn notes(m: &Milestone) -> String {
    match &m.plan {
        Plan::Stress { target_fraction } => format!(
            "synthetic load (synthetic=\"true\") tops envelope-grab and envelope-open up in steps of {:.0} % to {:.0} % of the planned live peak (the campaign fleet's capacity at the SLO)",
            STRESS_STEP_FRACTION * 100.0,
            target_fraction * 100.0
        ),
        Plan::Drill { dark } => {
            let others: Vec<&str> = CLUSTERS
                .iter()
                .enumerate()
                .filter(|(c, _)| c != dark)
                .map(|(_, c)| c.0)
                .collect();
            format!(
                "cluster {} goes dark (up=0, no requests); its traffic moves to {} as synthetic=\"true\" series",
                CLUSTERS[*dark].0,
                others.join(" and ")
            )
        }
        Plan::Rounds {
            audience_share,
            rounds,
        } => format!(
            "{} red-envelope rounds at {} with {:.0} % of the live audience",
            rounds.len(),
            rounds
                .iter()
                .map(|&r| rfc3339(r))
                .collect::<Vec<_>>()
                .join(", "),
            audience_share * 100.0
        ),
    }
}

fn drivers(scenario: &Scenario, m: &Milestone) -> serde_json::Value {
    use serde_json::{Map, Value, json};
    let by_service = |f: &dyn Fn(usize) -> Option<f64>| -> Value {
        let mut map = Map::new();
        for (s, spec) in SERVICES.iter().enumerate() {
            if let Some(v) = f(s) {
                map.insert(spec.name.to_string(), json!((v * 1000.0).round() / 1000.0));
            }
        }
        Value::Object(map)
    };
    match &m.plan {
        Plan::Stress { target_fraction } => json!({
            "services": STRESSED.iter().map(|&s| SERVICES[s].name).collect::<Vec<_>>(),
            "target_fraction_of_live_peak": target_fraction,
            "step_fraction": STRESS_STEP_FRACTION,
            "steps": (target_fraction / STRESS_STEP_FRACTION).round(),
            "synthetic": true,
            "target_qps": by_service(&|s| STRESSED.contains(&s)
                .then(|| target_fraction * scenario.planned_capacity_qps(s))),
        }),
        Plan::Drill { dark } => json!({
            "dark_cluster": CLUSTERS[*dark].0,
            "absorbing_clusters": CLUSTERS.iter().enumerate()
                .filter(|(c, _)| c != dark).map(|(_, c)| c.0).collect::<Vec<_>>(),
            "synthetic": true,
        }),
        Plan::Rounds {
            audience_share,
            rounds,
        } => json!({
            "audience_share": audience_share,
            "rounds": rounds.iter().map(|&r| rfc3339(r)).collect::<Vec<_>>(),
            "expected_multiplier": by_service(&|s| SERVICES[s].round
                .map(|r| (r.multiplier * audience_share).max(1.0))),
            "target_qps": by_service(&|s| Some(scenario.milestone_peak_qps(s, m))),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KICKOFF: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z

    #[test]
    fn reference_timeline_matches_scenario() {
        let c = Calendar::reference(KICKOFF);
        let kinds: Vec<Kind> = c.milestones.iter().map(|m| m.kind).collect();
        use Kind::*;
        assert_eq!(
            kinds,
            [
                StressTest, StressTest, StressTest, DrDrill, Rehearsal, Rehearsal, Rehearsal,
                Rehearsal, Live
            ]
        );
        let live = c.live().expect("live");
        assert_eq!(rfc3339(live.start), "2026-01-28T20:00:00Z");
        assert_eq!(rfc3339(live.end), "2026-01-29T00:30:00Z");
        assert_eq!(c.rounds().filter(|r| r.1 == 1.0).count(), 4);
        assert_eq!(rfc3339(c.milestones[2].end), "2026-01-13T03:30:00Z");
    }

    #[test]
    fn stress_steps_ramp_to_target() {
        let c = Calendar::reference(KICKOFF);
        let st3 = &c.milestones[2];
        assert_eq!(c.stress_fraction(st3.start as f64 - 1.0), 0.0);
        assert!((c.stress_fraction(st3.start as f64) - 0.1).abs() < 1e-9);
        assert!((c.stress_fraction(st3.end as f64 - 1.0) - 1.2).abs() < 1e-9);
        assert_eq!(c.stress_fraction(st3.end as f64), 0.0);
        let st1 = &c.milestones[0];
        assert!((c.stress_fraction(st1.end as f64 - 1.0) - 0.5).abs() < 1e-9);
    }

    #[test]
    fn round_shape_rises_then_decays() {
        assert_eq!(round_shape(-1.0), 0.0);
        assert!((round_shape(ROUND_RISE_S) - 1.0).abs() < 1e-9);
        let after_decay = round_shape(ROUND_RISE_S + ROUND_DECAY_S);
        assert!((after_decay - (-3.0f64).exp()).abs() < 1e-9);
        assert_eq!(round_shape(ROUND_RISE_S + ROUND_TAIL_S + 1.0), 0.0);
    }
}
