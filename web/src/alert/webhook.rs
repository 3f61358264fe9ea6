//! Webhook delivery: Alertmanager's v4 JSON payload, an HMAC-SHA256 signature, retries with
//! exponential backoff and jitter, and the SSRF guard.
//!
//! 2xx is delivered. 5xx, 429, timeouts and connection errors are retried (backoff doubling from
//! 500 ms to [`Backoff::max`], each wait jittered to 50–100 %) until delivered: one payload per
//! group is in flight at a time, so an outage costs at most one duplicate per group (a payload
//! the receiver took but whose answer never arrived). Other 4xx and 3xx (redirects are never
//! followed, so credentials never cross them) fail at once. Responses are read up to
//! [`MAX_RESPONSE`] bytes and dropped.

use super::dispatch::Alert;
use super::route::{DEFAULT_WEBHOOK_TIMEOUT, WebhookConfig};
use super::ssrf::{self, Allow};
use super::{Labels, rfc3339};
use hmac::{KeyInit, Mac};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// Most response bytes read.
pub const MAX_RESPONSE: usize = 64 * 1024;

/// The signature header.
pub const SIGNATURE_HEADER: &str = "X-Crest-Signature";

/// Alertmanager's webhook body, version 4.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Payload {
    /// Always "4".
    pub version: &'static str,
    /// Group key.
    pub group_key: String,
    /// Alerts left out by `max_alerts`.
    pub truncated_alerts: usize,
    /// `firing` when any alert fires, else `resolved`.
    pub status: &'static str,
    /// Receiver name.
    pub receiver: String,
    /// Group labels.
    pub group_labels: Labels,
    /// Labels every alert shares.
    pub common_labels: Labels,
    /// Annotations every alert shares.
    pub common_annotations: BTreeMap<String, String>,
    /// Crest's external URL.
    #[serde(rename = "externalURL")]
    pub external_url: String,
    /// The alerts.
    pub alerts: Vec<PayloadAlert>,
}

/// One alert in the payload.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PayloadAlert {
    /// `firing` or `resolved`.
    pub status: &'static str,
    /// Labels.
    pub labels: Labels,
    /// Annotations.
    pub annotations: BTreeMap<String, String>,
    /// RFC 3339.
    pub starts_at: String,
    /// RFC 3339; `0001-01-01T00:00:00Z` while firing, as Alertmanager sends.
    pub ends_at: String,
    /// Link to the rule.
    #[serde(rename = "generatorURL")]
    pub generator_url: String,
    /// Label fingerprint.
    pub fingerprint: String,
}

fn common<'a>(
    maps: impl Iterator<Item = &'a BTreeMap<String, String>>,
) -> BTreeMap<String, String> {
    let mut it = maps;
    let Some(first) = it.next() else {
        return BTreeMap::new();
    };
    let mut c = first.clone();
    for m in it {
        c.retain(|k, v| m.get(k) == Some(v));
    }
    c
}

/// Builds the payload for `alerts` (firing first, then resolved, as given).
pub fn payload(
    receiver: &str,
    group_key: &str,
    group_labels: &Labels,
    alerts: &[Alert],
    external_url: &str,
    max_alerts: usize,
) -> Payload {
    let status = if alerts.iter().any(|a| !a.resolved()) {
        "firing"
    } else {
        "resolved"
    };
    let keep = if max_alerts == 0 {
        alerts.len()
    } else {
        max_alerts.min(alerts.len())
    };
    Payload {
        version: "4",
        group_key: group_key.to_string(),
        truncated_alerts: alerts.len() - keep,
        status,
        receiver: receiver.to_string(),
        group_labels: group_labels.clone(),
        common_labels: common(alerts.iter().map(|a| &a.labels)),
        common_annotations: common(alerts.iter().map(|a| &a.annotations)),
        external_url: external_url.to_string(),
        alerts: alerts[..keep]
            .iter()
            .map(|a| PayloadAlert {
                status: if a.resolved() { "resolved" } else { "firing" },
                labels: a.labels.clone(),
                annotations: a.annotations.clone(),
                starts_at: rfc3339(a.starts_at),
                ends_at: a
                    .ends_at
                    .map_or_else(|| "0001-01-01T00:00:00Z".to_string(), rfc3339),
                generator_url: a.generator_url.clone(),
                fingerprint: a.fingerprint.clone(),
            })
            .collect(),
    }
}

/// Alertmanager API v2 `postableAlerts` for `alerts`, the body Prometheus posts to
/// `/api/v2/alerts`. A firing alert's `endsAt` is `firing_until`: Alertmanager resolves it by
/// itself then unless it is sent again, so a Crest that disappears does not leave it firing.
pub fn postable_alerts(alerts: &[Alert], firing_until: super::Millis) -> serde_json::Value {
    serde_json::Value::Array(
        alerts
            .iter()
            .map(|a| {
                let mut v = serde_json::json!({
                    "labels": a.labels,
                    "annotations": a.annotations,
                    "startsAt": rfc3339(a.starts_at),
                    "endsAt": rfc3339(a.ends_at.unwrap_or(firing_until)),
                });
                if !a.generator_url.is_empty() {
                    v["generatorURL"] = serde_json::Value::String(a.generator_url.clone());
                }
                v
            })
            .collect(),
    )
}

/// `sha256=<hex HMAC-SHA256 of body>`.
pub fn sign(secret: &str, body: &[u8]) -> String {
    // HMAC takes keys of any length; this cannot fail.
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Retry timing.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// First wait.
    pub initial: Duration,
    /// Longest wait.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(15),
        }
    }
}

impl Backoff {
    /// The wait before retry `n` (0-based), jittered to 50–100 %.
    pub fn wait(&self, n: u32, jitter: f64) -> Duration {
        let base = self.initial.saturating_mul(1u32 << n.min(20)).min(self.max);
        base.mul_f64(jitter.clamp(0.5, 1.0))
    }
}

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// 2xx.
    Delivered,
    /// Worth retrying (5xx, 429, timeout, connection error, DNS failure).
    Retry(String),
    /// Not worth retrying (other 4xx, 3xx, SSRF refusal, bad URL).
    Fatal(String),
}

/// Classifies an HTTP status.
pub fn classify(status: u16) -> Attempt {
    match status {
        200..=299 => Attempt::Delivered,
        429 | 500..=599 => Attempt::Retry(format!("receiver answered {status}")),
        300..=399 => Attempt::Fatal(format!(
            "receiver answered {status}; redirects are not followed"
        )),
        _ => Attempt::Fatal(format!("receiver answered {status}; not retried")),
    }
}

/// One POST of `body` to the webhook.
pub async fn attempt(w: &WebhookConfig, body: &[u8], allow: &Allow) -> Attempt {
    let (t, addrs) = match ssrf::resolve(&w.url, allow).await {
        Ok(x) => x,
        Err(e) if e.starts_with("cannot resolve") => return Attempt::Retry(e),
        Err(e) => return Attempt::Fatal(e),
    };
    let timeout = w.timeout.map_or(DEFAULT_WEBHOOK_TIMEOUT, |d| d.0);
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(timeout)
        .user_agent(concat!("Crest/", env!("CARGO_PKG_VERSION")));
    if t.host.parse::<std::net::IpAddr>().is_err() {
        // Connect only to the addresses just checked.
        builder = builder.resolve_to_addrs(&t.host, &addrs);
    }
    let client = match builder.build() {
        Ok(c) => c,
        Err(e) => return Attempt::Fatal(format!("cannot build HTTP client: {e}")),
    };
    let mut req = client
        .post(&w.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body.to_vec());
    if let Some(secret) = &w.hmac_secret {
        req = req.header(SIGNATURE_HEADER, sign(secret, body));
    }
    let mut resp = match req.send().await {
        Ok(r) => r,
        Err(e) if e.is_timeout() => return Attempt::Retry(format!("timed out after {timeout:?}")),
        Err(e) => return Attempt::Retry(format!("cannot reach receiver: {e}")),
    };
    let status = resp.status().as_u16();
    // Read (and drop) at most MAX_RESPONSE bytes, so a hostile receiver cannot make us buffer.
    let mut read = 0usize;
    while read < MAX_RESPONSE {
        match resp.chunk().await {
            Ok(Some(c)) => read += c.len(),
            _ => break,
        }
    }
    classify(status)
}

/// The result of delivering one payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Attempts made.
    pub attempts: u32,
    /// `None` when delivered; else why it was given up.
    pub error: Option<String>,
}

/// Delivers `body`, retrying retryable failures until delivered.
pub async fn deliver(w: &WebhookConfig, body: &[u8], allow: &Allow, backoff: Backoff) -> Outcome {
    let mut n: u32 = 0;
    loop {
        n += 1;
        match attempt(w, body, allow).await {
            Attempt::Delivered => {
                return Outcome {
                    attempts: n,
                    error: None,
                };
            }
            Attempt::Fatal(e) => {
                tracing::warn!(target = %redact(&w.url), attempts = n, error = %e, "Webhook refused; not retried.");
                return Outcome {
                    attempts: n,
                    error: Some(e),
                };
            }
            Attempt::Retry(e) => {
                let wait = backoff.wait(n - 1, rand::random_range(0.5..=1.0));
                tracing::info!(target = %redact(&w.url), attempts = n, error = %e, wait_ms = wait.as_millis() as u64, "Webhook failed; retrying.");
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// `scheme://host:port` of a URL, without path or query (they often carry tokens).
pub fn redact(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => format!(
            "{}://{}:{}",
            u.scheme(),
            u.host_str().unwrap_or(""),
            u.port_or_known_default().unwrap_or(0)
        ),
        Err(_) => "<invalid url>".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(id: &str, resolved: bool) -> Alert {
        let labels: Labels = [
            ("alertname".to_string(), "Slow".to_string()),
            ("id".to_string(), id.to_string()),
            ("severity".to_string(), "page".to_string()),
        ]
        .into();
        Alert {
            fingerprint: crate::alert::fp_hex(crate::alert::fingerprint(&labels)),
            labels,
            annotations: [("summary".to_string(), format!("{id} is slow"))].into(),
            starts_at: 1_770_000_000_000,
            ends_at: resolved.then_some(1_770_000_060_000),
            generator_url: "http://crest/x".into(),
        }
    }

    #[test]
    fn payload_has_alertmanagers_v4_shape() {
        let gl: Labels = [("alertname".to_string(), "Slow".to_string())].into();
        let p = payload(
            "pager",
            "{}:{alertname=\"Slow\"}",
            &gl,
            &[alert("a", false), alert("b", true)],
            "http://crest",
            0,
        );
        let v = serde_json::to_value(&p).expect("json");
        for k in [
            "version",
            "groupKey",
            "truncatedAlerts",
            "status",
            "receiver",
            "groupLabels",
            "commonLabels",
            "commonAnnotations",
            "externalURL",
            "alerts",
        ] {
            assert!(v.get(k).is_some(), "missing {k}: {v}");
        }
        assert_eq!(v["version"], "4");
        assert_eq!(v["status"], "firing");
        assert_eq!(v["commonLabels"]["severity"], "page");
        assert!(v["commonLabels"].get("id").is_none());
        assert_eq!(v["commonAnnotations"], serde_json::json!({}));
        let a = &v["alerts"][0];
        for k in [
            "status",
            "labels",
            "annotations",
            "startsAt",
            "endsAt",
            "generatorURL",
            "fingerprint",
        ] {
            assert!(a.get(k).is_some(), "missing alerts[].{k}");
        }
        assert_eq!(a["endsAt"], "0001-01-01T00:00:00Z");
        assert_eq!(a["startsAt"], "2026-02-02T02:40:00.000Z");
        assert_eq!(v["alerts"][1]["status"], "resolved");
        let t = payload(
            "r",
            "k",
            &gl,
            &[alert("a", false), alert("b", false)],
            "",
            1,
        );
        assert_eq!((t.alerts.len(), t.truncated_alerts), (1, 1));
        let r = payload("r", "k", &gl, &[alert("a", true)], "", 0);
        assert_eq!(r.status, "resolved");
    }

    #[test]
    fn signature_is_rfc4231_hmac_sha256() {
        // RFC 4231 test case 2.
        assert_eq!(
            sign("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn statuses_are_classified() {
        assert_eq!(classify(200), Attempt::Delivered);
        assert_eq!(classify(204), Attempt::Delivered);
        assert!(matches!(classify(503), Attempt::Retry(_)));
        assert!(matches!(classify(500), Attempt::Retry(_)));
        assert!(matches!(classify(429), Attempt::Retry(_)));
        assert!(matches!(classify(400), Attempt::Fatal(_)));
        assert!(matches!(classify(404), Attempt::Fatal(_)));
        assert!(matches!(classify(302), Attempt::Fatal(_)));
    }

    #[test]
    fn backoff_doubles_caps_and_jitters() {
        let b = Backoff {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(4),
        };
        assert_eq!(b.wait(0, 1.0), Duration::from_millis(500));
        assert_eq!(b.wait(1, 1.0), Duration::from_secs(1));
        assert_eq!(b.wait(3, 1.0), Duration::from_secs(4));
        assert_eq!(b.wait(30, 1.0), Duration::from_secs(4));
        assert_eq!(b.wait(1, 0.5), Duration::from_millis(500));
        assert_eq!(
            b.wait(1, 0.1),
            Duration::from_millis(500),
            "jitter floor is 50%"
        );
    }

    #[test]
    fn redact_drops_path_and_query() {
        assert_eq!(
            redact("http://h.example:8080/hook/SECRET?t=1"),
            "http://h.example:8080"
        );
    }
}
