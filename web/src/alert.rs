//! Alerting: SQL rules evaluated on a schedule, routed, grouped and delivered as webhooks.
//!
//! Rule files ([`rules`]) name SQL queries; every row a query returns is an active alert instance.
//! The evaluation loop ([`service`]) runs each group at its interval and steps each instance
//! through pending → firing → resolved ([`state`]). The dispatcher ([`dispatch`]) routes alerts
//! by label matchers through the Alertmanager-shaped tree ([`route`]), drops the silenced
//! ([`silence`]) and inhibited ones, groups the rest and decides, with the notification log, when
//! a group is due (`group_wait`, `group_interval`, `repeat_interval`). [`webhook`] delivers the
//! Alertmanager v4 payload with a signature, retries and the SSRF guard of [`ssrf`]. Rule state,
//! silences and the notification log live in one versioned file ([`store`]) written atomically
//! after every change, so a restart neither drops nor repeats a firing.

pub mod api;
pub mod dispatch;
pub mod matcher;
pub mod replay;
pub mod route;
pub mod rules;
pub mod service;
pub mod silence;
pub mod ssrf;
pub mod state;
pub mod store;
pub mod webhook;

pub use service::{AlertFlags, Alerting, AlertingArgs};

use std::collections::BTreeMap;
use std::time::Duration;

/// A label set, sorted by name.
pub type Labels = BTreeMap<String, String>;

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

/// Now, in ms since the epoch.
pub fn now_ms() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// RFC 3339 with milliseconds, in UTC (the format Alertmanager sends).
pub fn rfc3339(ms: Millis) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_else(|| "0001-01-01T00:00:00Z".into())
}

/// Parses RFC 3339 (`2026-05-01T12:00:00Z`) or integer ms since the epoch.
pub fn parse_time(s: &str) -> Result<Millis, String> {
    let s = s.trim();
    if let Ok(n) = s.parse::<i64>() {
        return Ok(n);
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp_millis())
        .map_err(|e| format!("invalid time {s:?}: use RFC 3339 like 2026-05-01T12:00:00Z ({e})"))
}

/// The label-set fingerprint (FNV-1a 64 over sorted name/value pairs), stable across restarts.
pub fn fingerprint(labels: &Labels) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (k, v) in labels {
        for b in k.bytes().chain([0xff]).chain(v.bytes()).chain([0xff]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// A fingerprint as Alertmanager prints it (16 hex digits).
pub fn fp_hex(fp: u64) -> String {
    format!("{fp:016x}")
}

/// Formats labels as `{a="1", b="2"}`.
pub fn labels_string(labels: &Labels) -> String {
    let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", inner.join(", "))
}

/// A duration in Prometheus' syntax: `500ms`, `30s`, `5m`, `1h30m`, `2d`, `1w`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PromDuration(pub Duration);

impl PromDuration {
    /// Milliseconds.
    pub fn ms(self) -> Millis {
        i64::try_from(self.0.as_millis()).unwrap_or(i64::MAX)
    }
}

impl std::str::FromStr for PromDuration {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        if t == "0" {
            return Ok(Self(Duration::ZERO));
        }
        let bad = || format!("invalid duration {s:?}: use e.g. 500ms, 30s, 5m, 1h30m");
        let mut rest = t;
        let mut total: u64 = 0;
        if rest.is_empty() {
            return Err(bad());
        }
        while !rest.is_empty() {
            let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
            let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
            rest = &rest[digits..];
            let unit_len = rest
                .find(|c: char| c.is_ascii_digit())
                .unwrap_or(rest.len());
            let mult: u64 = match &rest[..unit_len] {
                "ms" => 1,
                "s" => 1_000,
                "m" => 60_000,
                "h" => 3_600_000,
                "d" => 86_400_000,
                "w" => 7 * 86_400_000,
                "y" => 365 * 86_400_000,
                _ => return Err(bad()),
            };
            total = n
                .checked_mul(mult)
                .and_then(|x| total.checked_add(x))
                .ok_or_else(bad)?;
            rest = &rest[unit_len..];
        }
        Ok(Self(Duration::from_millis(total)))
    }
}

impl<'de> serde::Deserialize<'de> for PromDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl std::fmt::Display for PromDuration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = self.0.as_millis();
        if ms == 0 {
            write!(f, "0s")
        } else if ms.is_multiple_of(3_600_000) {
            write!(f, "{}h", ms / 3_600_000)
        } else if ms.is_multiple_of(60_000) {
            write!(f, "{}m", ms / 60_000)
        } else if ms.is_multiple_of(1_000) {
            write!(f, "{}s", ms / 1_000)
        } else {
            write!(f, "{ms}ms")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_durations() {
        let p = |s: &str| s.parse::<PromDuration>().map(|d| d.ms());
        assert_eq!(p("500ms"), Ok(500));
        assert_eq!(p("1h30m"), Ok(5_400_000));
        assert_eq!(p("0"), Ok(0));
        assert_eq!(p("2d"), Ok(172_800_000));
        assert!(p("5 minutes").is_err());
        assert!(p("").is_err());
        assert!(p("10").is_err());
    }

    #[test]
    fn fingerprint_depends_on_every_label() {
        let a: Labels = [("a".to_string(), "1".to_string())].into();
        let b: Labels = [("a".to_string(), "2".to_string())].into();
        let c: Labels = [("a1".to_string(), "".to_string())].into();
        assert_ne!(fingerprint(&a), fingerprint(&b));
        assert_ne!(fingerprint(&a), fingerprint(&c));
        assert_eq!(fingerprint(&a), fingerprint(&a.clone()));
        assert_eq!(fp_hex(fingerprint(&a)).len(), 16);
    }
}
