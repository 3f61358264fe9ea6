//! The per-rule state machine: inactive → pending → firing → resolved, Prometheus' semantics.
//!
//! An instance appears when a row first shows up (pending, `activeAt` = now) and fires once it
//! has been present for the rule's `for` (at once when `for` is 0). A pending instance whose row
//! disappears is forgotten; a firing one becomes resolved and is kept for
//! [`RESOLVED_RETENTION_MS`] so the resolved notification can go out, even across a restart.
//! Pure: time comes in as an argument.

use super::rules::{Rule, expand};
use super::{Labels, Millis, fingerprint, fp_hex};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How long a resolved instance is kept (Prometheus keeps them 15 minutes).
pub const RESOLVED_RETENTION_MS: Millis = 15 * 60_000;

/// Where an instance is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    /// Active for less than `for`.
    Pending,
    /// Active for at least `for`.
    Firing,
    /// Was firing, its row is gone.
    Resolved,
}

/// One alert instance of a rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Instance {
    /// Row labels + rule labels + `alertname`.
    pub labels: Labels,
    /// Expanded annotations.
    pub annotations: BTreeMap<String, String>,
    /// The `value` column at the last evaluation.
    pub value: Option<f64>,
    /// State.
    pub state: AlertState,
    /// When the row first appeared.
    pub active_at: Millis,
    /// When it started firing.
    #[serde(default)]
    pub fired_at: Option<Millis>,
    /// When it resolved.
    #[serde(default)]
    pub resolved_at: Option<Millis>,
}

impl Instance {
    /// The fingerprint of its labels.
    pub fn fingerprint(&self) -> u64 {
        fingerprint(&self.labels)
    }
}

/// One row of a rule's result.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Row labels (non-`value` columns; empty values dropped).
    pub labels: Labels,
    /// The `value` column.
    pub value: Option<f64>,
}

/// What one evaluation changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Step {
    /// Instances that became pending.
    pub pending: usize,
    /// Instances that started firing.
    pub fired: usize,
    /// Instances that resolved.
    pub resolved: usize,
}

impl Step {
    /// True when nothing changed state.
    pub fn is_quiet(&self) -> bool {
        self.pending == 0 && self.fired == 0 && self.resolved == 0
    }
}

/// The instances of one rule, keyed by fingerprint (hex).
pub type Instances = BTreeMap<String, Instance>;

/// Applies one evaluation's rows at `now`.
pub fn step(
    instances: &mut Instances,
    rule: &Rule,
    samples: Vec<Sample>,
    now: Millis,
) -> Result<Step, String> {
    let mut out = Step::default();
    let mut seen: BTreeMap<String, (Labels, Option<f64>)> = BTreeMap::new();
    for s in samples {
        let mut labels: Labels = s
            .labels
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .collect();
        for (k, v) in &rule.labels {
            labels.insert(k.clone(), expand(v, &labels.clone(), s.value));
        }
        labels.insert("alertname".into(), rule.alert.clone());
        let fp = fp_hex(fingerprint(&labels));
        if seen.contains_key(&fp) {
            return Err(format!(
                "rule {:?}: two rows have the same labels {}; add a column that tells them apart",
                rule.alert,
                super::labels_string(&labels)
            ));
        }
        seen.insert(fp, (labels, s.value));
    }
    let for_ms = rule.for_.ms();
    for (fp, (labels, value)) in &seen {
        let annotations: BTreeMap<String, String> = rule
            .annotations
            .iter()
            .map(|(k, v)| (k.clone(), expand(v, labels, *value)))
            .collect();
        match instances.get_mut(fp) {
            Some(i) if i.state != AlertState::Resolved => {
                i.value = *value;
                i.annotations = annotations;
                if i.state == AlertState::Pending && now - i.active_at >= for_ms {
                    i.state = AlertState::Firing;
                    i.fired_at = Some(now);
                    out.fired += 1;
                }
            }
            _ => {
                let firing = for_ms == 0;
                instances.insert(
                    fp.clone(),
                    Instance {
                        labels: labels.clone(),
                        annotations,
                        value: *value,
                        state: if firing {
                            AlertState::Firing
                        } else {
                            AlertState::Pending
                        },
                        active_at: now,
                        fired_at: firing.then_some(now),
                        resolved_at: None,
                    },
                );
                if firing {
                    out.fired += 1;
                } else {
                    out.pending += 1;
                }
            }
        }
    }
    instances.retain(|fp, i| {
        if seen.contains_key(fp) {
            return true;
        }
        match i.state {
            AlertState::Pending => false,
            AlertState::Firing => {
                i.state = AlertState::Resolved;
                i.resolved_at = Some(now);
                out.resolved += 1;
                true
            }
            AlertState::Resolved => i
                .resolved_at
                .is_some_and(|r| now - r <= RESOLVED_RETENTION_MS),
        }
    });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::PromDuration;
    use crate::alert::rules::RuleExpr;
    use std::time::Duration;

    fn rule(for_ms: u64) -> Rule {
        Rule {
            alert: "Slow".into(),
            expr: RuleExpr::Sql {
                sql: "SELECT 1".into(),
            },
            for_: PromDuration(Duration::from_millis(for_ms)),
            labels: [("severity".to_string(), "page".to_string())].into(),
            annotations: [(
                "summary".to_string(),
                "{{ $labels.service }} {{ $value }}".to_string(),
            )]
            .into(),
        }
    }

    fn sample(service: &str, v: f64) -> Sample {
        Sample {
            labels: [("service".to_string(), service.to_string())].into(),
            value: Some(v),
        }
    }

    fn states(i: &Instances) -> Vec<AlertState> {
        i.values().map(|x| x.state).collect()
    }

    #[test]
    fn for_holds_pending_until_it_has_elapsed() {
        let r = rule(3_000);
        let mut i = Instances::new();
        let s = step(&mut i, &r, vec![sample("a", 1.0)], 1_000).expect("step");
        assert_eq!(s.pending, 1);
        assert_eq!(states(&i), [AlertState::Pending]);
        step(&mut i, &r, vec![sample("a", 2.0)], 3_999).expect("step");
        assert_eq!(states(&i), [AlertState::Pending]);
        let s = step(&mut i, &r, vec![sample("a", 3.0)], 4_000).expect("step");
        assert_eq!(s.fired, 1);
        let inst = i.values().next().expect("one");
        assert_eq!(inst.state, AlertState::Firing);
        assert_eq!(inst.active_at, 1_000);
        assert_eq!(inst.fired_at, Some(4_000));
        assert_eq!(inst.annotations["summary"], "a 3");
        assert_eq!(inst.labels["alertname"], "Slow");
        assert_eq!(inst.labels["severity"], "page");
    }

    #[test]
    fn pending_that_goes_away_is_forgotten_and_restarts_from_zero() {
        let r = rule(3_000);
        let mut i = Instances::new();
        step(&mut i, &r, vec![sample("a", 1.0)], 0).expect("step");
        let s = step(&mut i, &r, vec![], 2_000).expect("step");
        assert!(s.is_quiet());
        assert!(i.is_empty());
        step(&mut i, &r, vec![sample("a", 1.0)], 2_500).expect("step");
        step(&mut i, &r, vec![sample("a", 1.0)], 4_000).expect("step");
        assert_eq!(states(&i), [AlertState::Pending]);
    }

    #[test]
    fn firing_resolves_is_kept_then_expires_and_can_fire_again() {
        let r = rule(0);
        let mut i = Instances::new();
        let s = step(&mut i, &r, vec![sample("a", 1.0)], 0).expect("step");
        assert_eq!(s.fired, 1);
        let s = step(&mut i, &r, vec![], 1_000).expect("step");
        assert_eq!(s.resolved, 1);
        assert_eq!(states(&i), [AlertState::Resolved]);
        assert_eq!(i.values().next().and_then(|x| x.resolved_at), Some(1_000));
        // Comes back: a new instance, firing again with a new start.
        step(&mut i, &r, vec![sample("a", 1.0)], 2_000).expect("step");
        let inst = i.values().next().expect("one");
        assert_eq!(
            (inst.state, inst.fired_at),
            (AlertState::Firing, Some(2_000))
        );
        step(&mut i, &r, vec![], 3_000).expect("step");
        step(&mut i, &r, vec![], 3_000 + RESOLVED_RETENTION_MS).expect("step");
        assert_eq!(i.len(), 1);
        step(&mut i, &r, vec![], 3_001 + RESOLVED_RETENTION_MS).expect("step");
        assert!(i.is_empty());
    }

    #[test]
    fn rows_with_equal_labels_are_an_error() {
        let r = rule(0);
        let mut i = Instances::new();
        let e = step(&mut i, &r, vec![sample("a", 1.0), sample("a", 2.0)], 0).expect_err("dup");
        assert!(e.contains("same labels"), "{e}");
    }

    #[test]
    fn rule_labels_override_row_labels() {
        let r = rule(0);
        let mut i = Instances::new();
        let mut s = sample("a", 1.0);
        s.labels.insert("severity".into(), "info".into());
        step(&mut i, &r, vec![s], 0).expect("step");
        assert_eq!(i.values().next().expect("one").labels["severity"], "page");
    }
}
