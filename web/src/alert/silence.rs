//! Silences: matchers with a time window; an alert matching every matcher of an active silence is
//! not notified. Expiring a silence sets its end to now (it stays listed as expired).

use super::matcher::{Matcher, all_match};
use super::{Labels, Millis, rfc3339};
use serde::{Deserialize, Serialize};

/// A silence, as persisted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Silence {
    /// Random id.
    pub id: String,
    /// All must match.
    pub matchers: Vec<Matcher>,
    /// Start (ms).
    pub starts_at: Millis,
    /// End (ms).
    pub ends_at: Millis,
    /// Who created it (the token's name).
    pub created_by: String,
    /// Why.
    #[serde(default)]
    pub comment: String,
}

/// Where a silence is in its window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SilenceState {
    /// Not started.
    Pending,
    /// In force.
    Active,
    /// Over.
    Expired,
}

impl Silence {
    /// Its state at `now`.
    pub fn state(&self, now: Millis) -> SilenceState {
        if now >= self.ends_at {
            SilenceState::Expired
        } else if now < self.starts_at {
            SilenceState::Pending
        } else {
            SilenceState::Active
        }
    }

    /// True when it is active at `now` and matches `labels`.
    pub fn mutes(&self, labels: &Labels, now: Millis) -> bool {
        self.state(now) == SilenceState::Active && all_match(&self.matchers, labels)
    }

    /// The API view (Alertmanager v2's `gettableSilence`).
    pub fn to_api(&self, now: Millis) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "matchers": self.matchers,
            "startsAt": rfc3339(self.starts_at),
            "endsAt": rfc3339(self.ends_at),
            "createdBy": self.created_by,
            "comment": self.comment,
            "status": { "state": self.state(now) },
        })
    }
}

/// The ids of the silences muting `labels` at `now`.
pub fn silenced_by(silences: &[Silence], labels: &Labels, now: Millis) -> Vec<String> {
    silences
        .iter()
        .filter(|s| s.mutes(labels, now))
        .map(|s| s.id.clone())
        .collect()
}

/// Expires silence `id` at `now`; false when there is no such silence. An already expired
/// silence stays as it was.
pub fn expire(silences: &mut [Silence], id: &str, now: Millis) -> bool {
    match silences.iter_mut().find(|s| s.id == id) {
        Some(s) => {
            if s.ends_at > now {
                s.ends_at = now;
                if s.starts_at > now {
                    s.starts_at = now;
                }
            }
            true
        }
        None => false,
    }
}

/// Drops silences expired for longer than `keep` ms (Alertmanager keeps them 5 days).
pub fn gc(silences: &mut Vec<Silence>, now: Millis, keep: Millis) {
    silences.retain(|s| now - s.ends_at <= keep);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn silence(start: Millis, end: Millis) -> Silence {
        Silence {
            id: "s1".into(),
            matchers: vec![Matcher::parse(r#"service="checkout""#).expect("m")],
            starts_at: start,
            ends_at: end,
            created_by: "t".into(),
            comment: String::new(),
        }
    }

    #[test]
    fn silences_mute_only_inside_their_window_and_only_matching_alerts() {
        let s = silence(1_000, 5_000);
        let hit: Labels = [("service".to_string(), "checkout".to_string())].into();
        let miss: Labels = [("service".to_string(), "search".to_string())].into();
        assert!(!s.mutes(&hit, 999));
        assert!(s.mutes(&hit, 1_000));
        assert!(s.mutes(&hit, 4_999));
        assert!(!s.mutes(&hit, 5_000));
        assert!(!s.mutes(&miss, 2_000));
        assert_eq!(s.state(0), SilenceState::Pending);
        assert_eq!(s.state(5_000), SilenceState::Expired);
    }

    #[test]
    fn expiring_ends_the_silence_now() {
        let mut v = vec![silence(1_000, 50_000)];
        let hit: Labels = [("service".to_string(), "checkout".to_string())].into();
        assert_eq!(silenced_by(&v, &hit, 2_000), ["s1"]);
        assert!(expire(&mut v, "s1", 2_000));
        assert!(silenced_by(&v, &hit, 2_000).is_empty());
        assert_eq!(v[0].state(2_000), SilenceState::Expired);
        assert!(!expire(&mut v, "nope", 2_000));
        gc(&mut v, 2_000 + 10, 10);
        assert_eq!(v.len(), 1);
        gc(&mut v, 2_000 + 11, 10);
        assert!(v.is_empty());
    }
}
