//! Aggregation groups and their timers, and the notification log that decides whether a due
//! group is sent. Pure: the caller passes the current alerts and the time on every tick.
//!
//! A group is created when its first alert arrives and first flushes `group_wait` later (at once
//! when the alert is older than that, e.g. after a restart); later flushes come every
//! `group_interval`. A flush is sent only when the notification log says so
//! ([`needs_update`], Alertmanager's rule): new firing alerts, newly resolved ones (with
//! `send_resolved`), everything resolved, or `repeat_interval` elapsed since the last send.

use super::route::{AmConfig, RouteOpts};
use super::{Labels, Millis};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// An alert as routed and sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// Labels.
    pub labels: Labels,
    /// Annotations.
    pub annotations: BTreeMap<String, String>,
    /// When it started firing.
    pub starts_at: Millis,
    /// When it resolved (`None` while firing).
    pub ends_at: Option<Millis>,
    /// Link back to the rule.
    pub generator_url: String,
    /// Label fingerprint (hex).
    pub fingerprint: String,
}

impl Alert {
    /// True once resolved.
    pub fn resolved(&self) -> bool {
        self.ends_at.is_some()
    }
}

/// An aggregation group.
#[derive(Debug, Clone)]
pub struct Group {
    /// Group key: route key + group labels.
    pub key: String,
    /// Group labels.
    pub labels: Labels,
    /// Route options (receiver, timers).
    pub opts: RouteOpts,
    /// Current alerts by fingerprint.
    pub alerts: BTreeMap<String, Alert>,
    /// When the next flush is due.
    pub next_flush: Millis,
    flushed: bool,
}

/// A due group handed to the notifier.
#[derive(Debug, Clone, PartialEq)]
pub struct Flush {
    /// Group key.
    pub group_key: String,
    /// Group labels.
    pub group_labels: Labels,
    /// Route options.
    pub opts: RouteOpts,
    /// Every alert in the group, firing and resolved.
    pub alerts: Vec<Alert>,
}

/// All groups.
#[derive(Debug, Default)]
pub struct Dispatcher {
    groups: BTreeMap<String, Group>,
}

impl Dispatcher {
    /// Places `alerts` in their groups (creating and dropping groups as needed) and returns the
    /// groups due at `now`.
    pub fn tick(&mut self, cfg: &AmConfig, alerts: &[Alert], now: Millis) -> Vec<Flush> {
        let mut present: BTreeMap<String, BTreeMap<String, Alert>> = BTreeMap::new();
        for a in alerts {
            for r in cfg.match_routes(&a.labels) {
                let (labels, key) = cfg.group_of(r, &a.labels);
                let opts = &cfg.nodes[r].opts;
                let g = self.groups.entry(key.clone()).or_insert_with(|| Group {
                    key: key.clone(),
                    labels,
                    opts: opts.clone(),
                    alerts: BTreeMap::new(),
                    next_flush: now + opts.group_wait,
                    flushed: false,
                });
                // An alert older than group_wait (say, firing across a restart) flushes at once.
                if !g.flushed && a.starts_at + g.opts.group_wait <= now {
                    g.next_flush = g.next_flush.min(now);
                }
                present
                    .entry(key)
                    .or_default()
                    .insert(a.fingerprint.clone(), a.clone());
            }
        }
        for (key, g) in &mut self.groups {
            g.alerts = present.remove(key).unwrap_or_default();
        }
        self.groups.retain(|_, g| !g.alerts.is_empty());
        let mut out = Vec::new();
        for g in self.groups.values_mut() {
            if g.next_flush <= now {
                g.next_flush = now + g.opts.group_interval;
                g.flushed = true;
                out.push(Flush {
                    group_key: g.key.clone(),
                    group_labels: g.labels.clone(),
                    opts: g.opts.clone(),
                    alerts: g.alerts.values().cloned().collect(),
                });
            }
        }
        out
    }

    /// The groups, for the API.
    pub fn groups(&self) -> impl Iterator<Item = &Group> {
        self.groups.values()
    }
}

/// What was last sent for one group to one integration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NflogEntry {
    /// Firing fingerprints in that notification.
    pub firing: BTreeSet<String>,
    /// Resolved fingerprints in that notification.
    pub resolved: BTreeSet<String>,
    /// When it was delivered.
    pub sent_at: Millis,
}

/// Alertmanager's decision whether a due group is sent.
pub fn needs_update(
    entry: Option<&NflogEntry>,
    firing: &BTreeSet<String>,
    resolved: &BTreeSet<String>,
    send_resolved: bool,
    repeat_interval: Millis,
    now: Millis,
) -> bool {
    let Some(e) = entry else {
        return !firing.is_empty();
    };
    if !firing.is_subset(&e.firing) {
        return true;
    }
    if firing.is_empty() {
        // Everything resolved: tell the receiver once (or just clear the log if it does not
        // want resolved notifications; the caller sends nothing then).
        return !e.firing.is_empty();
    }
    if send_resolved && !resolved.is_subset(&e.resolved) {
        return true;
    }
    e.sent_at + repeat_interval <= now
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::ssrf::Allow;

    const CFG: &str = r#"
route:
  receiver: r
  group_by: [alertname]
  group_wait: 1s
  group_interval: 2s
  repeat_interval: 4s
receivers:
  - name: r
"#;

    fn alert(name: &str, id: &str, starts: Millis, ends: Option<Millis>) -> Alert {
        let labels: Labels = [
            ("alertname".to_string(), name.to_string()),
            ("id".to_string(), id.to_string()),
        ]
        .into();
        Alert {
            fingerprint: crate::alert::fp_hex(crate::alert::fingerprint(&labels)),
            labels,
            annotations: BTreeMap::new(),
            starts_at: starts,
            ends_at: ends,
            generator_url: String::new(),
        }
    }

    /// Drives dispatcher + log like the service does, with a fake clock stepping 100 ms, and
    /// returns the times a notification was sent with its firing/resolved counts.
    fn run(
        timeline: &dyn Fn(Millis) -> Vec<Alert>,
        until: Millis,
        send_resolved: bool,
    ) -> Vec<(Millis, usize, usize)> {
        let cfg = AmConfig::parse(CFG, &Allow::default()).expect("cfg");
        let mut d = Dispatcher::default();
        let mut log: BTreeMap<String, NflogEntry> = BTreeMap::new();
        let mut sent = Vec::new();
        let mut now = 10_000;
        while now <= until {
            for f in d.tick(&cfg, &timeline(now), now) {
                let firing: BTreeSet<String> = f
                    .alerts
                    .iter()
                    .filter(|a| !a.resolved())
                    .map(|a| a.fingerprint.clone())
                    .collect();
                let resolved: BTreeSet<String> = f
                    .alerts
                    .iter()
                    .filter(|a| a.resolved())
                    .map(|a| a.fingerprint.clone())
                    .collect();
                if needs_update(
                    log.get(&f.group_key),
                    &firing,
                    &resolved,
                    send_resolved,
                    f.opts.repeat_interval,
                    now,
                ) {
                    if !firing.is_empty() || send_resolved {
                        sent.push((now, firing.len(), resolved.len()));
                    }
                    log.insert(
                        f.group_key.clone(),
                        NflogEntry {
                            firing,
                            resolved,
                            sent_at: now,
                        },
                    );
                }
            }
            now += 100;
        }
        sent
    }

    #[test]
    fn group_wait_then_group_interval_then_repeat_interval() {
        // A fires at 10.0s; B joins the same group at 11.5s; both resolve at 20.0s.
        let tl = |now: Millis| {
            let mut v = vec![alert("X", "a", 10_000, (now >= 20_000).then_some(20_000))];
            if now >= 11_500 {
                v.push(alert("X", "b", 11_500, (now >= 20_000).then_some(20_000)));
            }
            v
        };
        let sent = run(&tl, 30_000, true);
        assert_eq!(
            sent,
            [
                (11_000, 1, 0), // group_wait 1s after the group appeared
                (13_000, 2, 0), // next group_interval (2s) tick: B is new
                (17_000, 2, 0), // nothing new: repeat_interval (4s) after 13.0
                (21_000, 0, 2), // resolved, at the next interval tick after 20.0
            ]
        );
    }

    #[test]
    fn without_send_resolved_nothing_is_sent_for_resolutions() {
        let tl = |now: Millis| vec![alert("X", "a", 10_000, (now >= 12_000).then_some(12_000))];
        let sent = run(&tl, 30_000, false);
        assert_eq!(sent, [(11_000, 1, 0)]);
    }

    #[test]
    fn an_old_alert_in_a_new_group_flushes_at_once() {
        let cfg = AmConfig::parse(CFG, &Allow::default()).expect("cfg");
        let mut d = Dispatcher::default();
        let f = d.tick(&cfg, &[alert("X", "a", 0, None)], 60_000);
        assert_eq!(f.len(), 1);
    }

    #[test]
    fn groups_split_by_group_by_labels_and_vanish_when_empty() {
        let cfg = AmConfig::parse(CFG, &Allow::default()).expect("cfg");
        let mut d = Dispatcher::default();
        let f = d.tick(
            &cfg,
            &[
                alert("X", "a", 0, None),
                alert("Y", "a", 0, None),
                alert("X", "b", 0, None),
            ],
            10_000,
        );
        assert_eq!(f.len(), 2);
        assert_eq!(f.iter().map(|x| x.alerts.len()).sum::<usize>(), 3);
        d.tick(&cfg, &[], 10_100);
        assert_eq!(d.groups().count(), 0);
    }

    #[test]
    fn log_rules() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<BTreeSet<_>>();
        let e = NflogEntry {
            firing: s(&["a"]),
            resolved: s(&[]),
            sent_at: 0,
        };
        assert!(!needs_update(None, &s(&[]), &s(&["a"]), true, 10, 0));
        assert!(needs_update(None, &s(&["a"]), &s(&[]), true, 10, 0));
        assert!(!needs_update(Some(&e), &s(&["a"]), &s(&[]), true, 10, 9));
        assert!(needs_update(Some(&e), &s(&["a"]), &s(&[]), true, 10, 10));
        assert!(needs_update(
            Some(&e),
            &s(&["a", "b"]),
            &s(&[]),
            true,
            10,
            1
        ));
        assert!(needs_update(Some(&e), &s(&[]), &s(&["a"]), false, 10, 1));
        // One of two resolved: only with send_resolved.
        let e2 = NflogEntry {
            firing: s(&["a", "b"]),
            ..e.clone()
        };
        assert!(needs_update(Some(&e2), &s(&["a"]), &s(&["b"]), true, 10, 1));
        assert!(!needs_update(
            Some(&e2),
            &s(&["a"]),
            &s(&["b"]),
            false,
            10,
            1
        ));
    }
}
