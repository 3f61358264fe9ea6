//! Ingest rate limit per token: a token bucket of points per second. Over the limit a write is
//! refused whole with 429 and `Retry-After` (RELIABILITY.md: rate limits are 429, overload 503).

use crate::error::ApiError;
use axum::http::StatusCode;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::time::Instant;

/// Who is writing: the name of the token the request authenticated with (`anonymous` when no
/// tokens are configured). Put into request extensions by the auth guard.
#[derive(Debug, Clone)]
pub struct Principal(pub String);

/// Points-per-second buckets, one per principal.
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    /// `rate` points per second with bursts up to `burst` (at least `rate`); `None` when
    /// `rate` is 0 (no limit).
    pub fn new(rate: u64, burst: u64) -> Option<Self> {
        (rate > 0).then(|| Self {
            rate: rate as f64,
            burst: burst.max(rate) as f64,
            buckets: Mutex::new(HashMap::new()),
        })
    }

    /// Takes `n` points from `who`'s bucket, or refuses with a 429 saying when to retry. A
    /// request larger than the burst passes when the bucket is full and leaves it in debt, so a
    /// big batch is slowed, never refused forever.
    pub fn admit(&self, who: &str, n: usize) -> Result<(), ApiError> {
        self.admit_at(who, n, Instant::now())
    }

    fn admit_at(&self, who: &str, n: usize, now: Instant) -> Result<(), ApiError> {
        let n = n as f64;
        let mut buckets = self.buckets.lock();
        let (tokens, last) = buckets.entry(who.to_string()).or_insert((self.burst, now));
        let elapsed = now.saturating_duration_since(*last).as_secs_f64();
        *tokens = (*tokens + elapsed * self.rate).min(self.burst);
        *last = now;
        let needed = n.min(self.burst);
        if *tokens >= needed {
            *tokens -= n;
            return Ok(());
        }
        let wait = ((needed - *tokens) / self.rate).ceil().max(1.0);
        Err(ApiError {
            status: StatusCode::TOO_MANY_REQUESTS,
            code: "rate_limited",
            message: format!(
                "token {who:?} is over its ingest rate of {} points/s (burst {}); retry in {wait} s",
                self.rate, self.burst
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bucket_refills_at_the_rate_and_principals_are_separate() {
        let r = RateLimiter::new(100, 200).expect("limited");
        let t0 = Instant::now();
        assert!(r.admit_at("a", 150, t0).is_ok());
        let err = r.admit_at("a", 100, t0).expect_err("over");
        assert_eq!(err.status, StatusCode::TOO_MANY_REQUESTS);
        assert!(err.message.contains("100 points/s"), "{}", err.message);
        assert!(
            r.admit_at("b", 200, t0).is_ok(),
            "another token has its own bucket"
        );
        assert!(
            r.admit_at("a", 100, t0 + Duration::from_millis(500))
                .is_ok()
        );
        // A batch bigger than the burst passes on a full bucket, then the debt is paid.
        assert!(r.admit_at("c", 500, t0).is_ok());
        assert!(r.admit_at("c", 1, t0 + Duration::from_secs(2)).is_err());
        assert!(r.admit_at("c", 1, t0 + Duration::from_secs(4)).is_ok());
        assert!(RateLimiter::new(0, 10).is_none());
    }
}
