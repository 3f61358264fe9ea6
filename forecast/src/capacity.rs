//! Per-instance capacity at the SLO knee, from what a stress test recorded.
//!
//! Each observation is one interval of a stress test for one service: fleet QPS, instances
//! serving, p99 latency and error ratio. Load per instance is QPS / instances. The capacity is
//! the load per instance at which p99 reaches the latency SLO or the error ratio reaches the
//! error budget, whichever comes first:
//!
//! * The knee is the lowest load whose observation breaks the SLO *and* at or above which at
//!   least half of the observations break it too, so one noisy interval at low load does not
//!   pass for the knee.
//! * Between the highest good load below the knee and the knee itself the crossing point is
//!   interpolated: linearly in 1 / p99 for latency (queueing latency grows like 1 / (1 − ρ), so
//!   its reciprocal is linear in load) and linearly for the error ratio.
//! * When the test never broke the SLO, the highest load it held is a lower bound, and the
//!   estimate says so.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// A service's objectives.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Slo {
    /// p99 latency objective, seconds.
    pub p99_seconds: f64,
    /// Error-ratio budget (0..1).
    pub error_ratio: f64,
}

impl Slo {
    /// Checks both objectives are usable.
    pub fn check(&self) -> Result<()> {
        if !(self.p99_seconds.is_finite() && self.p99_seconds > 0.0) {
            return Err(Error::InvalidParameter {
                name: "slo.p99_seconds",
                reason: format!("{} is not a positive number of seconds", self.p99_seconds),
            });
        }
        if !(self.error_ratio.is_finite() && self.error_ratio > 0.0 && self.error_ratio < 1.0) {
            return Err(Error::InvalidParameter {
                name: "slo.error_ratio",
                reason: format!("{} is not in (0, 1)", self.error_ratio),
            });
        }
        Ok(())
    }
}

/// One interval of a stress test for one service.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    /// Start of the interval, Unix seconds.
    pub time: i64,
    /// Requests per second over the whole fleet.
    pub qps: f64,
    /// Instances serving.
    pub instances: f64,
    /// p99 latency, seconds (NaN when unknown).
    pub p99_seconds: f64,
    /// Failed requests / all requests.
    pub error_ratio: f64,
}

impl Observation {
    /// Load per instance.
    pub fn per_instance(&self) -> f64 {
        self.qps / self.instances
    }

    fn usable(&self) -> bool {
        self.qps.is_finite()
            && self.qps > 0.0
            && self.instances.is_finite()
            && self.instances > 0.0
            && self.error_ratio.is_finite()
            && !self.p99_seconds.is_nan()
    }
}

/// What limited the capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitedBy {
    /// p99 reached the latency objective.
    Latency,
    /// The error ratio reached the budget.
    Errors,
    /// Neither: the test never broke the SLO, so the figure is a lower bound.
    NotReached,
}

/// The capacity estimate with the evidence behind it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CapacityEstimate {
    /// QPS one instance serves within the SLO.
    pub per_instance_qps: f64,
    /// What limited it.
    pub limited_by: LimitedBy,
    /// Observations used.
    pub observations: usize,
    /// Highest load per instance observed within the SLO, below the knee.
    pub max_within_slo: f64,
    /// Lowest load per instance at the knee (None when never reached).
    pub knee_observed: Option<f64>,
    /// p99 at `max_within_slo`, seconds.
    pub p99_at_max_within: f64,
}

/// Estimates per-instance capacity from stress-test observations.
pub fn capacity_at_slo(obs: &[Observation], slo: &Slo) -> Result<CapacityEstimate> {
    slo.check()?;
    let mut pts: Vec<&Observation> = obs.iter().filter(|o| o.usable()).collect();
    if pts.is_empty() {
        return Err(Error::Empty);
    }
    pts.sort_by(|a, b| a.per_instance().total_cmp(&b.per_instance()));
    let bad = |o: &Observation| o.p99_seconds > slo.p99_seconds || o.error_ratio > slo.error_ratio;
    // Bad observations at or above each position, counted from the top.
    let n = pts.len();
    let mut bad_above = vec![0usize; n + 1];
    for i in (0..n).rev() {
        bad_above[i] = bad_above[i + 1] + usize::from(bad(pts[i]));
    }
    let knee = (0..n).find(|&i| bad(pts[i]) && 2 * bad_above[i] >= n - i);
    let below = knee.unwrap_or(n);
    let Some(good) = pts[..below].iter().rev().find(|o| !bad(o)) else {
        return Err(Error::InvalidParameter {
            name: "observations",
            reason: format!(
                "no observation is within the SLO (p99 ≤ {} s, errors ≤ {}): the lowest load tested, {:.1} QPS per instance, already breaks it",
                slo.p99_seconds,
                slo.error_ratio,
                pts[0].per_instance()
            ),
        });
    };
    let x_good = good.per_instance();
    let Some(k) = knee else {
        return Ok(CapacityEstimate {
            per_instance_qps: x_good,
            limited_by: LimitedBy::NotReached,
            observations: n,
            max_within_slo: x_good,
            knee_observed: None,
            p99_at_max_within: good.p99_seconds,
        });
    };
    let b = pts[k];
    let x_bad = b.per_instance();
    let along = |t: f64| x_good + (x_bad - x_good) * t.clamp(0.0, 1.0);
    let mut best = (x_bad, LimitedBy::Latency);
    if b.p99_seconds > slo.p99_seconds {
        let (g, bb, s) = (
            1.0 / good.p99_seconds,
            1.0 / b.p99_seconds,
            1.0 / slo.p99_seconds,
        );
        let t = if (g - bb).abs() > f64::EPSILON {
            (g - s) / (g - bb)
        } else {
            0.0
        };
        best = (along(t), LimitedBy::Latency);
    }
    if b.error_ratio > slo.error_ratio {
        let d = b.error_ratio - good.error_ratio;
        let t = if d > f64::EPSILON {
            (slo.error_ratio - good.error_ratio) / d
        } else {
            0.0
        };
        let x = along(t);
        if x < best.0 || b.p99_seconds <= slo.p99_seconds {
            best = (x, LimitedBy::Errors);
        }
    }
    Ok(CapacityEstimate {
        per_instance_qps: best.0,
        limited_by: best.1,
        observations: n,
        max_within_slo: x_good,
        knee_observed: Some(x_bad),
        p99_at_max_within: good.p99_seconds,
    })
}

/// Prometheus-style quantile of cumulative buckets `(upper bound, count)` sorted by bound, the
/// last being `+Inf`: linear inside the bucket that holds the rank, the highest finite bound when
/// the rank falls in `+Inf`. NaN when there are no observations.
pub fn bucket_quantile(q: f64, buckets: &[(f64, f64)]) -> f64 {
    let Some(&(_, total)) = buckets.last() else {
        return f64::NAN;
    };
    if total <= 0.0 || !(0.0..=1.0).contains(&q) {
        return f64::NAN;
    }
    let rank = q * total;
    let mut prev = (0.0, 0.0);
    for &(le, count) in buckets {
        if count >= rank {
            if le.is_infinite() {
                return prev.0;
            }
            let width = count - prev.1;
            let frac = if width > 0.0 {
                (rank - prev.1) / width
            } else {
                1.0
            };
            return prev.0 + (le - prev.0) * frac;
        }
        prev = (le, count);
    }
    prev.0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stress test against one service whose p99 follows base / (1 − ρ), ρ = load / knee, and
    /// whose errors start past ρ = 0.95, ramped in 10 % steps of `top`.
    fn ramp(knee: f64, base: f64, instances: f64, top: f64) -> Vec<Observation> {
        (1..=12)
            .map(|step| {
                let per = top * step as f64 / 12.0;
                let rho = per / knee;
                let p99 = if rho < 1.0 {
                    (base / (1.0 - rho)).min(5.0)
                } else {
                    5.0
                };
                Observation {
                    time: step * 60,
                    qps: per * instances,
                    instances,
                    p99_seconds: p99,
                    error_ratio: ((rho - 0.95) * 2.0).max(0.0),
                }
            })
            .collect()
    }

    #[test]
    fn knee_of_the_latency_law_is_recovered() {
        // knee 2000, base 40 ms, SLO 200 ms: capacity = 0.8 × 2000 = 1600 per instance.
        let obs = ramp(2000.0, 0.04, 24.0, 2000.0 * 1.1);
        let slo = Slo {
            p99_seconds: 0.2,
            error_ratio: 0.01,
        };
        let c = capacity_at_slo(&obs, &slo).expect("estimate");
        assert_eq!(c.limited_by, LimitedBy::Latency);
        assert!((c.per_instance_qps - 1600.0).abs() < 1.0, "{c:?}");
        assert!(c.max_within_slo < 1600.0 && c.knee_observed.expect("knee") > 1600.0);
    }

    #[test]
    fn error_budget_limits_first_when_it_is_tight() {
        // Latency SLO generous (2 s) so errors past ρ = 0.95 decide: the budget of 0.01 is
        // crossed at ρ = 0.955. Errors start between two steps (ρ 0.917 and 1.008), so the
        // linear interpolation from the last clean step lands early, never late.
        let obs = ramp(1000.0, 0.01, 4.0, 1100.0);
        let slo = Slo {
            p99_seconds: 2.0,
            error_ratio: 0.01,
        };
        let c = capacity_at_slo(&obs, &slo).expect("estimate");
        assert_eq!(c.limited_by, LimitedBy::Errors);
        assert!(
            c.per_instance_qps > c.max_within_slo && c.per_instance_qps <= 955.0,
            "{c:?}"
        );
    }

    #[test]
    fn a_test_that_never_breaks_the_slo_gives_a_lower_bound() {
        let obs = ramp(2000.0, 0.04, 8.0, 1000.0);
        let slo = Slo {
            p99_seconds: 0.2,
            error_ratio: 0.01,
        };
        let c = capacity_at_slo(&obs, &slo).expect("estimate");
        assert_eq!(c.limited_by, LimitedBy::NotReached);
        assert_eq!(c.per_instance_qps, 1000.0);
        assert_eq!(c.knee_observed, None);
    }

    #[test]
    fn one_noisy_interval_at_low_load_is_not_the_knee() {
        let mut obs = ramp(2000.0, 0.04, 24.0, 2200.0);
        obs[1].p99_seconds = 0.9;
        let slo = Slo {
            p99_seconds: 0.2,
            error_ratio: 0.01,
        };
        let c = capacity_at_slo(&obs, &slo).expect("estimate");
        assert!((c.per_instance_qps - 1600.0).abs() < 1.0, "{c:?}");
    }

    #[test]
    fn bad_input_is_refused() {
        let slo = Slo {
            p99_seconds: 0.2,
            error_ratio: 0.01,
        };
        assert!(matches!(capacity_at_slo(&[], &slo), Err(Error::Empty)));
        let nan = [Observation {
            time: 0,
            qps: f64::NAN,
            instances: 1.0,
            p99_seconds: 0.1,
            error_ratio: 0.0,
        }];
        assert!(matches!(capacity_at_slo(&nan, &slo), Err(Error::Empty)));
        let all_bad = ramp(100.0, 0.5, 1.0, 110.0);
        let e = capacity_at_slo(&all_bad, &slo).unwrap_err().to_string();
        assert!(e.contains("no observation is within the SLO"), "{e}");
        let bad_slo = Slo {
            p99_seconds: 0.0,
            error_ratio: 0.01,
        };
        assert!(capacity_at_slo(&all_bad, &bad_slo).is_err());
    }

    #[test]
    fn bucket_quantile_matches_prometheus() {
        // 100 observations: 50 ≤ 0.1, 90 ≤ 0.2, 100 ≤ +Inf.
        let b = [(0.1, 50.0), (0.2, 90.0), (f64::INFINITY, 100.0)];
        assert!((bucket_quantile(0.5, &b) - 0.1).abs() < 1e-12);
        assert!((bucket_quantile(0.7, &b) - 0.15).abs() < 1e-12);
        assert_eq!(bucket_quantile(0.99, &b), 0.2);
        assert!((bucket_quantile(0.25, &b) - 0.05).abs() < 1e-12);
        assert!(bucket_quantile(0.5, &[(f64::INFINITY, 0.0)]).is_nan());
    }
}
