//! Milestones: the named windows of a campaign (stress tests, drills, rehearsals, the live run)
//! with the drivers a plan scales the organic forecast by.
//!
//! Times are Unix seconds here; on the wire (JSON, files) they are RFC 3339 strings in UTC, or
//! Unix seconds as numbers, through [`rfc3339`].

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Longest milestone name accepted.
pub const MAX_NAME_LEN: usize = 200;
/// Longest notes accepted.
pub const MAX_NOTES_LEN: usize = 10_000;

/// What a milestone is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MilestoneKind {
    /// Synthetic load that measures capacity.
    StressTest,
    /// A disaster-recovery drill: a zone or cluster goes dark.
    DrDrill,
    /// A scripted rehearsal with part of the audience.
    Rehearsal,
    /// The event itself.
    Live,
}

impl MilestoneKind {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::StressTest => "stress_test",
            Self::DrDrill => "dr_drill",
            Self::Rehearsal => "rehearsal",
            Self::Live => "live",
        }
    }

    /// Parses the snake_case name.
    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "stress_test" => Self::StressTest,
            "dr_drill" => Self::DrDrill,
            "rehearsal" => Self::Rehearsal,
            "live" => Self::Live,
            other => {
                return Err(Error::InvalidParameter {
                    name: "kind",
                    reason: format!(
                        "{other:?} is not one of stress_test, dr_drill, rehearsal, live"
                    ),
                });
            }
        })
    }

    /// Whether the milestone's load is synthetic (masked out of organic fits).
    pub fn is_synthetic(self) -> bool {
        matches!(self, Self::StressTest | Self::DrDrill)
    }
}

/// Drivers of one service.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceDrivers {
    /// Peak over the organic baseline at the same time, e.g. 60 for a red-envelope round.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multiplier: Option<f64>,
    /// Load a stress test drives to, QPS of the whole fleet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_qps: Option<f64>,
}

/// What scales a milestone's traffic.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Drivers {
    /// Expected audience, in any unit used consistently across milestones (people, or a share
    /// of the live audience): a scored milestone's event effect is scaled by the ratio.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_audience: Option<f64>,
    /// Multiplier over the organic baseline for every service without its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multiplier: Option<f64>,
    /// Stress-test target for every service without its own, QPS of the whole fleet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_qps: Option<f64>,
    /// Per-service drivers.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub services: BTreeMap<String, ServiceDrivers>,
}

impl Drivers {
    /// The multiplier the drivers set for `service`, and which driver set it.
    pub fn multiplier_for(&self, service: &str) -> Option<(f64, String)> {
        if let Some(m) = self.services.get(service).and_then(|s| s.multiplier) {
            return Some((m, format!("drivers.services.{service}.multiplier")));
        }
        self.multiplier
            .map(|m| (m, "drivers.multiplier".to_string()))
    }

    /// The stress-test target the drivers set for `service`.
    pub fn target_for(&self, service: &str) -> Option<f64> {
        self.services
            .get(service)
            .and_then(|s| s.target_qps)
            .or(self.target_qps)
    }

    fn check(&self) -> Result<()> {
        let positive = |name: &'static str, v: Option<f64>| match v {
            Some(x) if !(x.is_finite() && x > 0.0) => Err(Error::InvalidParameter {
                name,
                reason: format!("{x} is not a positive finite number"),
            }),
            _ => Ok(()),
        };
        positive("drivers.expected_audience", self.expected_audience)?;
        positive("drivers.multiplier", self.multiplier)?;
        positive("drivers.target_qps", self.target_qps)?;
        for (name, s) in &self.services {
            if name.is_empty() {
                return Err(Error::InvalidParameter {
                    name: "drivers.services",
                    reason: "a service name is empty".into(),
                });
            }
            positive("drivers.services.*.multiplier", s.multiplier)?;
            positive("drivers.services.*.target_qps", s.target_qps)?;
        }
        Ok(())
    }
}

/// A milestone as a user writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MilestoneSpec {
    /// Unique, human name, e.g. `rehearsal 2`.
    pub name: String,
    /// Its kind.
    pub kind: MilestoneKind,
    /// Start (inclusive).
    #[serde(with = "rfc3339")]
    pub start: i64,
    /// End (exclusive).
    #[serde(with = "rfc3339")]
    pub end: i64,
    /// What scales its traffic.
    #[serde(default)]
    pub drivers: Drivers,
    /// Free text.
    #[serde(default)]
    pub notes: String,
}

impl MilestoneSpec {
    /// Checks every field; the error names the first bad one.
    pub fn check(&self) -> Result<()> {
        let name = self.name.trim();
        if name.is_empty() || name.len() > MAX_NAME_LEN || name.chars().any(char::is_control) {
            return Err(Error::InvalidParameter {
                name: "name",
                reason: format!(
                    "must be 1 to {MAX_NAME_LEN} bytes without control characters and not blank"
                ),
            });
        }
        if self.end <= self.start {
            return Err(Error::InvalidParameter {
                name: "end",
                reason: format!(
                    "{} is not after start {}",
                    rfc3339::format(self.end),
                    rfc3339::format(self.start)
                ),
            });
        }
        if self.notes.len() > MAX_NOTES_LEN {
            return Err(Error::InvalidParameter {
                name: "notes",
                reason: format!("longer than {MAX_NOTES_LEN} bytes"),
            });
        }
        self.drivers.check()
    }

    /// The window `[start, end)`.
    pub fn window(&self) -> crate::TimeWindow {
        crate::TimeWindow {
            start: self.start,
            end: self.end,
        }
    }

    /// Where the milestone stands at `now`.
    pub fn status(&self, now: i64) -> MilestoneStatus {
        if now < self.start {
            MilestoneStatus::Upcoming
        } else if now < self.end {
            MilestoneStatus::Running
        } else {
            MilestoneStatus::Done
        }
    }
}

/// Where a milestone stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MilestoneStatus {
    /// Not started.
    Upcoming,
    /// Under way.
    Running,
    /// Ended.
    Done,
}

/// A stored milestone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Milestone {
    /// Store-assigned id.
    pub id: u64,
    /// What the user wrote.
    #[serde(flatten)]
    pub spec: MilestoneSpec,
}

/// RFC 3339 in UTC on the wire, Unix seconds inside; numbers are read as Unix seconds.
pub mod rfc3339 {
    use serde::{Deserialize, Deserializer, Serializer, de};

    /// `2026-01-28T20:00:00Z`.
    pub fn format(t: i64) -> String {
        chrono::DateTime::from_timestamp(t, 0).map_or_else(
            || t.to_string(),
            |d| d.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        )
    }

    /// Parses RFC 3339 (any offset; fractions of a second are dropped) or Unix seconds.
    pub fn parse(s: &str) -> Result<i64, String> {
        let s = s.trim();
        if let Ok(n) = s.parse::<i64>() {
            return Ok(n);
        }
        chrono::DateTime::parse_from_rfc3339(s)
            .map(|d| d.timestamp())
            .map_err(|e| format!("{s:?} is not an RFC 3339 time (e.g. 2026-01-28T20:00:00Z): {e}"))
    }

    /// Serde serializer.
    pub fn serialize<S: Serializer>(t: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(*t))
    }

    /// Serde deserializer.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Wire {
            Secs(i64),
            Text(String),
        }
        match Wire::deserialize(d)? {
            Wire::Secs(n) => Ok(n),
            Wire::Text(s) => parse(&s).map_err(de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> MilestoneSpec {
        serde_json::from_str(
            r#"{"name":"live run","kind":"live","start":"2026-01-28T20:00:00Z",
                "end":"2026-01-29T00:30:00+00:00",
                "drivers":{"expected_audience":1.0,"services":{"envelope-grab":{"multiplier":60}}}}"#,
        )
        .expect("parses")
    }

    #[test]
    fn wire_form_round_trips() {
        let s = spec();
        assert_eq!(s.start, 1_769_630_400);
        assert_eq!(s.end - s.start, 4 * 3600 + 1800);
        s.check().expect("valid");
        let json = serde_json::to_string(&s).expect("json");
        assert!(
            json.contains("\"start\":\"2026-01-28T20:00:00Z\""),
            "{json}"
        );
        let back: MilestoneSpec = serde_json::from_str(&json).expect("back");
        assert_eq!(back, s);
        assert_eq!(
            s.drivers.multiplier_for("envelope-grab"),
            Some((60.0, "drivers.services.envelope-grab.multiplier".into()))
        );
        assert_eq!(s.drivers.multiplier_for("feed"), None);
    }

    #[test]
    fn bad_fields_are_named() {
        let mut s = spec();
        s.end = s.start;
        assert!(
            s.check()
                .unwrap_err()
                .to_string()
                .contains("invalid parameter end")
        );
        let mut s = spec();
        s.name = " ".into();
        assert!(s.check().unwrap_err().to_string().contains("name"));
        let mut s = spec();
        s.drivers.multiplier = Some(f64::NAN);
        assert!(
            s.check()
                .unwrap_err()
                .to_string()
                .contains("drivers.multiplier")
        );
        let err = serde_json::from_str::<MilestoneSpec>(
            r#"{"name":"x","kind":"party","start":0,"end":1}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("party"), "{err}");
        let err = serde_json::from_str::<MilestoneSpec>(
            r#"{"name":"x","kind":"live","start":"yesterday","end":1}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("RFC 3339"), "{err}");
    }

    #[test]
    fn status_follows_the_clock() {
        let s = spec();
        assert_eq!(s.status(s.start - 1), MilestoneStatus::Upcoming);
        assert_eq!(s.status(s.start), MilestoneStatus::Running);
        assert_eq!(s.status(s.end), MilestoneStatus::Done);
    }
}
