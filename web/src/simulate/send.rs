//! Sends request bodies to a running Crest: remote write to `/api/v1/write`, OTLP traces to
//! `/v1/traces`, retrying 429 and 503 after their `Retry-After` and connection failures with
//! back-off, and counting what went through for the progress line.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

/// Longest wait between two tries, whatever `Retry-After` says.
const MAX_WAIT: Duration = Duration::from_secs(30);

/// One request body, ready to send.
#[derive(Debug, Clone)]
pub enum Body {
    /// A snappy-compressed remote-write `WriteRequest` holding `samples` samples.
    RemoteWrite {
        /// The body.
        bytes: Vec<u8>,
        /// Samples inside.
        samples: u64,
        /// Simulated time the body reaches, Unix seconds.
        until: i64,
    },
    /// A protobuf `ExportTraceServiceRequest` holding `spans` spans.
    Traces {
        /// The body.
        bytes: Vec<u8>,
        /// Spans inside.
        spans: u64,
        /// Simulated time the body reaches, Unix seconds.
        until: i64,
    },
}

/// Counters of what went through, shared with the progress reporter.
#[derive(Debug, Default)]
pub struct Stats {
    /// Samples acknowledged.
    pub samples: AtomicU64,
    /// Spans acknowledged.
    pub spans: AtomicU64,
    /// Requests acknowledged.
    pub requests: AtomicU64,
    /// Tries that were refused or failed and retried.
    pub retries: AtomicU64,
    /// Body bytes acknowledged.
    pub bytes: AtomicU64,
    /// Latest simulated time acknowledged, Unix seconds.
    pub reached: AtomicI64,
}

/// Why a body could not be delivered.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The server answered with a status that retrying will not fix.
    #[error("{url} answered {status}: {body}")]
    Refused {
        /// Target URL.
        url: String,
        /// HTTP status.
        status: u16,
        /// Start of the response body.
        body: String,
    },
    /// Retries ran out.
    #[error("{url}: gave up after {tries} tries; last error: {last}")]
    GaveUp {
        /// Target URL.
        url: String,
        /// Tries made.
        tries: u32,
        /// The last failure.
        last: String,
    },
}

/// HTTP client for one Crest.
#[derive(Debug, Clone)]
pub struct Sender {
    client: reqwest::Client,
    base: String,
    token: Option<String>,
    max_retries: u32,
}

impl Sender {
    /// A sender to `base` (e.g. `http://127.0.0.1:8086`) with an optional bearer token.
    pub fn new(base: &str, token: Option<String>, max_retries: u32) -> reqwest::Result<Self> {
        Ok(Self {
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(120))
                .build()?,
            base: base.trim_end_matches('/').to_string(),
            token,
            max_retries,
        })
    }

    /// Delivers `body`, retrying what can be retried, and counts it in `stats`.
    pub async fn send(&self, body: Body, stats: &Stats) -> Result<(), SendError> {
        let (url, content_type, bytes) = match &body {
            Body::RemoteWrite { bytes, .. } => (
                format!("{}/api/v1/write", self.base),
                "application/x-protobuf",
                bytes,
            ),
            Body::Traces { bytes, .. } => (
                format!("{}/v1/traces", self.base),
                "application/x-protobuf",
                bytes,
            ),
        };
        let mut tries = 0u32;
        loop {
            tries += 1;
            let mut req = self
                .client
                .post(&url)
                .header("Content-Type", content_type)
                .body(bytes.clone());
            if matches!(body, Body::RemoteWrite { .. }) {
                req = req
                    .header("Content-Encoding", "snappy")
                    .header("X-Prometheus-Remote-Write-Version", "0.1.0");
            }
            if let Some(t) = &self.token {
                req = req.bearer_auth(t);
            }
            let (wait, last) = match req.send().await {
                Ok(r) if r.status().is_success() => {
                    let (n_samples, n_spans, until) = match &body {
                        Body::RemoteWrite { samples, until, .. } => (*samples, 0, *until),
                        Body::Traces { spans, until, .. } => (0, *spans, *until),
                    };
                    stats.samples.fetch_add(n_samples, Ordering::Relaxed);
                    stats.spans.fetch_add(n_spans, Ordering::Relaxed);
                    stats.requests.fetch_add(1, Ordering::Relaxed);
                    stats.bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                    stats.reached.fetch_max(until, Ordering::Relaxed);
                    return Ok(());
                }
                Ok(r) => {
                    let status = r.status().as_u16();
                    let retry_after = r
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    let text: String = r
                        .text()
                        .await
                        .unwrap_or_default()
                        .chars()
                        .take(300)
                        .collect();
                    if !matches!(status, 429 | 502 | 503 | 504) {
                        return Err(SendError::Refused {
                            url,
                            status,
                            body: text,
                        });
                    }
                    (
                        retry_after.unwrap_or_else(|| backoff(tries)),
                        format!("{status}: {text}"),
                    )
                }
                Err(e) => (backoff(tries), e.to_string()),
            };
            if tries > self.max_retries {
                return Err(SendError::GaveUp { url, tries, last });
            }
            stats.retries.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(wait.min(MAX_WAIT)).await;
        }
    }
}

/// 0.25 s, 0.5 s, 1 s, … up to [`MAX_WAIT`].
fn backoff(tries: u32) -> Duration {
    Duration::from_millis(250u64.saturating_mul(1 << tries.min(7).saturating_sub(1)))
}
