//! The traffic model: QPS, latency and errors of every service in every cluster as a pure
//! function of (seed, simulated time).
//!
//! Organic demand follows SCENARIO.md: a daily cycle (trough at 04:00 at 15 % of the peak, peak
//! at 21:00), weekends 15 % higher, 1 % growth a week (1 at kick-off), a few percent of noise.
//! Red-envelope rounds multiply it; stress tests add synthetic load; the DR drill moves the dark
//! cluster's traffic to the others. Latency follows p99 = base / (1 − ρ), capped at 5 s, with
//! ρ = load per instance / knee; past ρ = 0.95 the excess is refused.

use super::calendar::{Calendar, DAY, Milestone, Plan, STRESSED, round_shape};
use super::fleet::{CLUSTERS, Fleet, GATEWAY, SERVICES, ServiceSpec};

/// Daily trough, as a fraction of the daily peak.
pub const TROUGH_FRACTION: f64 = 0.15;
/// Hour (UTC) of the daily trough.
pub const TROUGH_HOUR: f64 = 4.0;
/// Hour (UTC) of the daily peak.
pub const PEAK_HOUR: f64 = 21.0;
/// Weekend traffic relative to weekdays.
pub const WEEKEND_FACTOR: f64 = 1.15;
/// Organic growth per week.
pub const WEEKLY_GROWTH: f64 = 0.01;
/// Amplitude of the multiplicative noise (uniform in ±this).
pub const NOISE: f64 = 0.03;
/// Seconds during which the noise stays constant.
const NOISE_PERIOD_S: f64 = 15.0;
/// Highest p99 latency, seconds.
pub const MAX_P99_S: f64 = 5.0;
/// Load per instance (fraction of the knee) past which requests fail.
pub const ERROR_RHO: f64 = 0.95;
/// Spread (σ of ln) of each request's latency, a log-normal distribution.
pub const LATENCY_SIGMA: f64 = 0.5;
/// z of the 99th percentile of a standard normal distribution.
const Z99: f64 = 2.326_347_874;

/// Load and health of one service in one cluster at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Load {
    /// Organic requests per second arriving at the cluster.
    pub organic_qps: f64,
    /// Synthetic requests per second (stress tests, traffic moved by a drill).
    pub synthetic_qps: f64,
    /// Instances serving (0 when the cluster is dark).
    pub instances: u32,
    /// Load per instance as a fraction of the knee.
    pub rho: f64,
    /// p99 latency, seconds.
    pub p99_s: f64,
    /// Fraction of requests that fail.
    pub error_ratio: f64,
}

impl Load {
    /// All requests per second.
    pub fn total_qps(&self) -> f64 {
        self.organic_qps + self.synthetic_qps
    }
}

/// p99 latency of `spec` at load `rho`: base / (1 − ρ), capped at [`MAX_P99_S`].
pub fn p99_at(spec: &ServiceSpec, rho: f64) -> f64 {
    if rho >= 1.0 {
        MAX_P99_S
    } else {
        (spec.base_p99_s / (1.0 - rho.max(0.0))).min(MAX_P99_S)
    }
}

/// Fraction of requests refused at load `rho`: what exceeds [`ERROR_RHO`] of the knee.
pub fn error_ratio_at(rho: f64) -> f64 {
    if rho > ERROR_RHO {
        1.0 - ERROR_RHO / rho
    } else {
        0.0
    }
}

/// Median of the log-normal latency distribution whose 99th percentile is `p99`.
pub fn latency_median(p99: f64) -> f64 {
    p99 / (Z99 * LATENCY_SIGMA).exp()
}

/// Mean of the log-normal latency distribution whose 99th percentile is `p99`.
pub fn latency_mean(p99: f64) -> f64 {
    latency_median(p99) * (LATENCY_SIGMA * LATENCY_SIGMA / 2.0).exp()
}

/// Fraction of requests taking at most `x` seconds when the p99 is `p99`.
pub fn latency_cdf(p99: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    normal_cdf((x.ln() - latency_median(p99).ln()) / LATENCY_SIGMA)
}

/// Standard normal CDF (Abramowitz and Stegun 7.1.26, error below 1.5e-7).
fn normal_cdf(z: f64) -> f64 {
    let x = z.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erf = 1.0 - poly * (-x * x).exp();
    if z >= 0.0 {
        0.5 * (1.0 + erf)
    } else {
        0.5 * (1.0 - erf)
    }
}

/// SplitMix64: a well-mixed 64-bit hash, so that noise is a pure function of its inputs.
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Uniform in [-1, 1) from a hash.
fn unit(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
}

/// Daily cycle at `t` (Unix seconds): 1 at [`PEAK_HOUR`], [`TROUGH_FRACTION`] at
/// [`TROUGH_HOUR`], half-cosines in between.
pub fn daily(t: f64) -> f64 {
    let h = t.rem_euclid(DAY as f64) / 3600.0;
    let up = PEAK_HOUR - TROUGH_HOUR;
    let x = if (TROUGH_HOUR..PEAK_HOUR).contains(&h) {
        (1.0 - (std::f64::consts::PI * (h - TROUGH_HOUR) / up).cos()) / 2.0
    } else {
        let since_peak = (h - PEAK_HOUR).rem_euclid(24.0);
        (1.0 + (std::f64::consts::PI * since_peak / (24.0 - up)).cos()) / 2.0
    };
    TROUGH_FRACTION + (1.0 - TROUGH_FRACTION) * x
}

/// Weekly cycle: [`WEEKEND_FACTOR`] on Saturdays and Sundays (UTC), else 1.
pub fn weekly(t: f64) -> f64 {
    // 1970-01-01 was a Thursday: day 0 → 4 with Sunday = 0.
    let dow = ((t / DAY as f64).floor() as i64 + 4).rem_euclid(7);
    if dow == 0 || dow == 6 {
        WEEKEND_FACTOR
    } else {
        1.0
    }
}

/// The campaign: seed, scale, timeline and fleet, and every load derived from them.
#[derive(Debug, Clone)]
pub struct Scenario {
    seed: u64,
    scale: f64,
    calendar: Calendar,
    fleet: Fleet,
    /// Noise-free live peak of each service's whole fleet, scaled.
    planned_peak: Vec<f64>,
}

impl Scenario {
    /// The reference campaign with day 0 at `kickoff` (Unix seconds, 00:00 UTC). `scale`
    /// multiplies every QPS and every knee, so ρ, latency and instance counts do not change.
    pub fn new(seed: u64, scale: f64, kickoff: i64) -> Self {
        let organic = SERVICES.iter().map(|s| s.instances_per_cluster).collect();
        let mut s = Self {
            seed,
            scale,
            calendar: Calendar::reference(kickoff),
            fleet: Fleet {
                campaign: Vec::clone(&organic),
                organic,
            },
            planned_peak: Vec::new(),
        };
        let live = s.calendar.live().cloned();
        s.planned_peak = (0..SERVICES.len())
            .map(|svc| match &live {
                Some(m) => s.milestone_peak_qps(svc, m),
                None => s.organic_peak_qps(svc),
            })
            .collect();
        let unscaled: Vec<f64> = s.planned_peak.iter().map(|p| p / scale).collect();
        s.fleet = Fleet::sized_for(&unscaled);
        s
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The QPS and knee multiplier.
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// The timeline.
    pub fn calendar(&self) -> &Calendar {
        &self.calendar
    }

    /// Instances per cluster before and during the campaign.
    pub fn fleet(&self) -> &Fleet {
        &self.fleet
    }

    /// Noise-free live-run peak of service `s`'s whole fleet (scaled QPS).
    pub fn planned_peak_qps(&self, s: usize) -> f64 {
        self.planned_peak.get(s).copied().unwrap_or(0.0)
    }

    /// What the campaign fleet of service `s` serves within its SLO (scaled QPS, all
    /// clusters): the "planned live peak" stress tests ramp towards, so that 100 % loads every
    /// instance to its capacity at the SLO and 120 % takes it past the knee.
    pub fn planned_capacity_qps(&self, s: usize) -> f64 {
        f64::from(self.fleet.campaign[s])
            * CLUSTERS.len() as f64
            * SERVICES[s].capacity_at_slo_qps()
            * self.scale
    }

    /// Organic peak QPS of service `s`'s whole fleet at kick-off (scaled); the gateway's is the
    /// sum of the others'.
    pub fn organic_peak_qps(&self, s: usize) -> f64 {
        if s == GATEWAY {
            (1..SERVICES.len()).map(|b| self.organic_peak_qps(b)).sum()
        } else {
            SERVICES[s].organic_peak_qps * self.scale
        }
    }

    /// Noise-free organic QPS of backend `s`'s whole fleet at `t` (scaled); the gateway's is the
    /// sum of the backends'.
    pub fn organic_fleet_qps(&self, s: usize, t: f64) -> f64 {
        if s == GATEWAY {
            return (1..SERVICES.len())
                .map(|b| self.organic_fleet_qps(b, t))
                .sum();
        }
        let weeks = (t - self.calendar.kickoff as f64) / (7 * DAY) as f64;
        self.organic_peak_qps(s) * daily(t) * weekly(t) * (1.0 + WEEKLY_GROWTH).powf(weeks)
    }

    /// How many times its organic level service `s` receives at `t` because of rounds.
    pub fn round_multiplier(&self, s: usize, t: f64) -> f64 {
        let Some(resp) = SERVICES[s].round else {
            return 1.0;
        };
        let mut m = 1.0;
        for (r, share) in self.calendar.rounds() {
            let extra = (resp.multiplier * share - 1.0).max(0.0);
            m += extra * round_shape(t - r as f64 - resp.lag_s);
        }
        m
    }

    /// Noise-free demand of service `s`'s whole fleet at `t`: organic level × rounds (no
    /// synthetic load); the gateway's is the sum of the backends'.
    pub fn demand_qps(&self, s: usize, t: f64) -> f64 {
        if s == GATEWAY {
            return (1..SERVICES.len()).map(|b| self.demand_qps(b, t)).sum();
        }
        self.organic_fleet_qps(s, t) * self.round_multiplier(s, t)
    }

    /// Noise-free peak demand of service `s` during milestone `m`: the highest demand in the
    /// two minutes after each of its rounds, or during the milestone when it has none.
    pub fn milestone_peak_qps(&self, s: usize, m: &Milestone) -> f64 {
        let windows: Vec<(i64, i64)> = match &m.plan {
            Plan::Rounds { rounds, .. } => rounds.iter().map(|&r| (r, r + 120)).collect(),
            _ => vec![(m.start, m.end)],
        };
        let mut peak: f64 = 0.0;
        for (a, b) in windows {
            let stride = if b - a > 600 { 60 } else { 1 };
            let mut t = a;
            while t < b {
                peak = peak.max(self.demand_qps(s, t as f64));
                t += stride;
            }
        }
        peak
    }

    /// Instances of service `s` per cluster the fleet has at `t`, dark or not.
    pub fn configured_instances(&self, s: usize, t: f64) -> u32 {
        if t < self.calendar.kickoff as f64 {
            self.fleet.organic[s]
        } else {
            self.fleet.campaign[s]
        }
    }

    /// Multiplicative noise of service `s` in cluster `c` at `t`, constant for 15 s.
    pub fn noise(&self, s: usize, c: usize, t: f64) -> f64 {
        let slot = (t / NOISE_PERIOD_S).floor() as i64 as u64;
        let h = mix(self.seed ^ mix((s as u64) << 8 | c as u64) ^ mix(slot));
        1.0 + NOISE * unit(h)
    }

    /// Load of backend `s` (not the gateway) in cluster `c` at `t`.
    pub fn backend_load(&self, s: usize, c: usize, t: f64) -> Load {
        let clusters = CLUSTERS.len() as f64;
        let demand = self.demand_qps(s, t) / clusters;
        let dark = self.calendar.dark_cluster(t);
        let (organic, mut synthetic) = match dark {
            Some(d) if d == c => (0.0, 0.0),
            Some(d) => (
                demand * self.noise(s, c, t),
                demand * self.noise(s, d, t) / (clusters - 1.0),
            ),
            None => (demand * self.noise(s, c, t), 0.0),
        };
        let fraction = self.calendar.stress_fraction(t);
        if fraction > 0.0 && STRESSED.contains(&s) && dark != Some(c) {
            // The stress test tops the cluster's traffic up to its share of the target.
            let live = clusters - f64::from(u8::from(dark.is_some()));
            let target = fraction * self.planned_capacity_qps(s) / live;
            synthetic += (target - organic - synthetic).max(0.0);
        }
        let instances = if dark == Some(c) {
            0
        } else {
            self.configured_instances(s, t)
        };
        self.health(s, organic, synthetic, instances)
    }

    /// Load of the gateway in cluster `c` given every backend's load there (`backends[b]` for
    /// backend `b`; index 0 ignored).
    pub fn gateway_load(&self, c: usize, t: f64, backends: &[Load]) -> Load {
        let organic = backends.iter().skip(1).map(|l| l.organic_qps).sum();
        let synthetic = backends.iter().skip(1).map(|l| l.synthetic_qps).sum();
        let instances = if self.calendar.dark_cluster(t) == Some(c) {
            0
        } else {
            self.configured_instances(GATEWAY, t)
        };
        self.health(GATEWAY, organic, synthetic, instances)
    }

    /// Load of any service `s` in cluster `c` at `t`.
    pub fn load(&self, s: usize, c: usize, t: f64) -> Load {
        if s == GATEWAY {
            let backends: Vec<Load> = (0..SERVICES.len())
                .map(|b| {
                    if b == GATEWAY {
                        Load::default()
                    } else {
                        self.backend_load(b, c, t)
                    }
                })
                .collect();
            self.gateway_load(c, t, &backends)
        } else {
            self.backend_load(s, c, t)
        }
    }

    fn health(&self, s: usize, organic: f64, synthetic: f64, instances: u32) -> Load {
        let spec = &SERVICES[s];
        let rho = if instances == 0 {
            0.0
        } else {
            (organic + synthetic) / (f64::from(instances) * spec.knee_qps * self.scale)
        };
        Load {
            organic_qps: organic,
            synthetic_qps: synthetic,
            instances,
            rho,
            p99_s: p99_at(spec, rho),
            error_ratio: error_ratio_at(rho),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::calendar::Kind;
    use super::super::fleet::{FEED, GRAB, OPEN, PAYMENT, SHARE};
    use super::*;

    /// 2026-01-01T00:00:00Z, a Thursday.
    const KICKOFF: i64 = 1_767_225_600;

    fn at(day: i64, h: i64, m: i64) -> f64 {
        (KICKOFF + day * DAY + h * 3600 + m * 60) as f64
    }

    fn total(scn: &Scenario, s: usize, t: f64) -> f64 {
        (0..CLUSTERS.len())
            .map(|c| scn.load(s, c, t).total_qps())
            .sum()
    }

    #[test]
    fn daily_cycle_troughs_at_four_and_peaks_at_nine_pm() {
        let scn = Scenario::new(1, 1.0, KICKOFF);
        // Day 5 is a Tuesday: no weekend effect.
        let peak = scn.organic_fleet_qps(FEED, at(5, 21, 0));
        let trough = scn.organic_fleet_qps(FEED, at(5, 4, 0));
        assert!(
            (trough / peak - TROUGH_FRACTION).abs() < 1e-3, // growth from 04:00 to 21:00
            "{trough} {peak}"
        );
        for h in 0..24 {
            let v = scn.organic_fleet_qps(FEED, at(5, h, 0));
            assert!(v <= peak + 1e-9 && v >= trough - 1e-9, "{h}: {v}");
        }
        // Organic peak at kick-off is the SCENARIO number (day 0 is a Thursday), grown by 21 h.
        let growth = (1.0 + WEEKLY_GROWTH).powf(21.0 / 168.0);
        let grab = scn.organic_fleet_qps(GRAB, at(0, 21, 0)) / growth;
        assert!((grab - 2_000.0).abs() < 1e-6, "{grab}");
    }

    #[test]
    fn weekends_are_fifteen_percent_higher() {
        let scn = Scenario::new(1, 1.0, KICKOFF);
        // Day 2 is Saturday 2026-01-03, day 1 a Friday.
        let sat = scn.organic_fleet_qps(GRAB, at(2, 21, 0));
        let fri = scn.organic_fleet_qps(GRAB, at(1, 21, 0));
        let growth_day = (1.0 + WEEKLY_GROWTH).powf(1.0 / 7.0);
        assert!((sat / fri / growth_day - WEEKEND_FACTOR).abs() < 1e-9);
        // A week later the same hour is 1 % higher.
        let next = scn.organic_fleet_qps(GRAB, at(9, 21, 0));
        assert!((next / sat - 1.0 - WEEKLY_GROWTH).abs() < 1e-9);
    }

    #[test]
    fn observed_qps_has_noise_of_a_few_percent() {
        let scn = Scenario::new(1, 1.0, KICKOFF);
        let mut seen_above = false;
        let mut seen_below = false;
        for k in 0..100 {
            let t = at(5, 10, 0) + 15.0 * f64::from(k);
            let ratio = total(&scn, GRAB, t) / scn.demand_qps(GRAB, t);
            assert!((ratio - 1.0).abs() <= NOISE, "{ratio}");
            seen_above |= ratio > 1.005;
            seen_below |= ratio < 0.995;
        }
        assert!(seen_above && seen_below);
    }

    #[test]
    fn live_peaks_reach_the_multipliers_and_exceed_rehearsals_by_the_share() {
        let scn = Scenario::new(1, 1.0, KICKOFF);
        let live = scn.calendar().live().expect("live").clone();
        for (s, m) in [(GRAB, 60.0), (OPEN, 40.0), (PAYMENT, 25.0), (SHARE, 10.0)] {
            let Plan::Rounds { rounds, .. } = &live.plan else {
                panic!("live has rounds");
            };
            for &r in rounds {
                let lag = SERVICES[s].round.expect("round").lag_s;
                let t = r as f64 + lag + 20.0;
                let ratio = scn.demand_qps(s, t) / scn.organic_fleet_qps(s, t);
                assert!((ratio - m).abs() < 1e-6, "{} {ratio}", SERVICES[s].name);
            }
            for reh in scn
                .calendar()
                .milestones
                .iter()
                .filter(|x| x.kind == Kind::Rehearsal)
            {
                let Plan::Rounds {
                    audience_share,
                    rounds,
                } = &reh.plan
                else {
                    panic!("rehearsal has rounds");
                };
                let t = rounds[0] as f64 + SERVICES[s].round.expect("round").lag_s + 20.0;
                let ratio = scn.demand_qps(s, t) / scn.organic_fleet_qps(s, t);
                let want = (m * audience_share).max(1.0);
                assert!((ratio - want).abs() < 1e-6, "{} {}: {ratio}", reh.name, m);
                assert!(scn.planned_peak_qps(s) > scn.milestone_peak_qps(s, reh));
            }
        }
        // Grab: live peak vs rehearsal 4 peak is the inverse of the audience share, up to the
        // organic difference between the two days.
        let r4 = &scn.calendar().milestones[7];
        let ratio = scn.planned_peak_qps(GRAB) / scn.milestone_peak_qps(GRAB, r4);
        let organic = scn.organic_fleet_qps(GRAB, at(27, 20, 30))
            / scn.organic_fleet_qps(GRAB, at(25, 20, 30));
        assert!((ratio / organic - 1.0 / 0.8).abs() < 0.01, "{ratio}");
        // Feed has no rounds: its live peak is organic.
        assert!(scn.planned_peak_qps(FEED) < 1.3 * SERVICES[FEED].organic_peak_qps);
    }

    #[test]
    fn dr_drill_moves_the_dark_cluster_to_the_others() {
        let scn = Scenario::new(7, 1.0, KICKOFF);
        let drill = at(15, 14, 10);
        let before = at(15, 13, 50);
        for (s, spec) in SERVICES.iter().enumerate() {
            let dark = scn.load(s, 1, drill);
            assert_eq!(dark.total_qps(), 0.0, "{}", spec.name);
            assert_eq!(dark.instances, 0);
            assert!(scn.load(s, 1, before).total_qps() > 0.0);
            let expect = scn.demand_qps(s, drill);
            let got = total(&scn, s, drill);
            assert!(
                (got / expect - 1.0).abs() < NOISE + 1e-9,
                "{}: {got} vs {expect}",
                spec.name
            );
            for c in [0, 2] {
                let l = scn.load(s, c, drill);
                assert!(l.synthetic_qps > 0.4 * l.organic_qps, "{}", spec.name);
            }
        }
        // Exactly preserved: the moved traffic is the dark cluster's own noisy demand.
        let moved: f64 = [0, 2]
            .iter()
            .map(|&c| scn.load(GRAB, c, drill).synthetic_qps)
            .sum();
        let d = scn.demand_qps(GRAB, drill) / 3.0 * scn.noise(GRAB, 1, drill);
        assert!((moved - d).abs() < 1e-9);
    }

    #[test]
    fn latency_and_errors_rise_past_capacity() {
        let grab = &SERVICES[GRAB];
        assert!((p99_at(grab, 0.0) - 0.040).abs() < 1e-12);
        assert!((p99_at(grab, grab.rho_at_slo()) - grab.slo_p99_s).abs() < 1e-12);
        assert!(p99_at(grab, 0.9) > p99_at(grab, 0.5));
        assert_eq!(p99_at(grab, 1.3), MAX_P99_S);
        assert_eq!(error_ratio_at(0.9), 0.0);
        assert!(error_ratio_at(1.1) > error_ratio_at(1.0));
        assert!(error_ratio_at(1.0) > 0.0);
        // The distribution's 99th percentile is the p99.
        assert!((latency_cdf(0.2, 0.2) - 0.99).abs() < 1e-4);

        // Stress test 3 crosses the knee: the last step errs, the early ones do not, and the
        // step at 100 % of the plan sits at the SLO capacity.
        let scn = Scenario::new(1, 1.0, KICKOFF);
        for s in [GRAB, OPEN] {
            let first = scn.load(s, 0, at(12, 2, 1));
            let full = scn.load(s, 0, at(12, 3, 10));
            let last = scn.load(s, 0, at(12, 3, 29));
            assert_eq!(first.error_ratio, 0.0);
            assert!(first.p99_s < SERVICES[s].slo_p99_s);
            assert!(last.error_ratio > 0.0 && last.p99_s > SERVICES[s].slo_p99_s);
            assert!(last.synthetic_qps > 10.0 * last.organic_qps);
            let rho_slo = SERVICES[s].rho_at_slo();
            assert!((full.rho - rho_slo).abs() < 1e-9, "{}", full.rho);
            let below = scn.load(s, 0, at(12, 3, 0));
            assert!(below.p99_s < SERVICES[s].slo_p99_s);
        }
        // The campaign fleet keeps the live peak within the SLO.
        let live = scn.calendar().live().expect("live");
        for (s, spec) in SERVICES.iter().enumerate() {
            let per_instance = scn.planned_peak_qps(s)
                / 3.0
                / f64::from(scn.configured_instances(s, live.start as f64));
            assert!(
                per_instance <= spec.capacity_at_slo_qps() * 1.0001,
                "{}",
                spec.name
            );
        }
    }

    #[test]
    fn same_seed_same_noise_other_seed_other_noise() {
        let a = Scenario::new(1, 1.0, KICKOFF);
        let b = Scenario::new(1, 1.0, KICKOFF);
        let c = Scenario::new(2, 1.0, KICKOFF);
        let t = at(3, 12, 0);
        assert_eq!(a.load(GRAB, 0, t), b.load(GRAB, 0, t));
        assert_ne!(a.load(GRAB, 0, t), c.load(GRAB, 0, t));
    }

    #[test]
    fn scale_multiplies_qps_but_not_rho() {
        let a = Scenario::new(1, 1.0, KICKOFF);
        let b = Scenario::new(1, 0.01, KICKOFF);
        let t = at(27, 20, 30) + 20.0;
        let (la, lb) = (a.load(GRAB, 0, t), b.load(GRAB, 0, t));
        assert!((lb.total_qps() / la.total_qps() - 0.01).abs() < 1e-9);
        assert!((lb.rho - la.rho).abs() < 1e-9);
        assert_eq!(a.fleet(), b.fleet());
    }
}
