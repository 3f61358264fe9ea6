//! The simulated fleet of `../shared/SCENARIO.md`: services with their interfaces, knees and
//! latency SLOs, the clusters and regions they run in, the app ids that call them, and how many
//! instances each service runs per cluster before the campaign and during it.

/// Clusters and the region each one is in; traffic is split evenly between them.
pub const CLUSTERS: [(&str, &str); 3] = [("c1", "north"), ("c2", "east"), ("c3", "south")];

/// App ids and their share of every service's traffic.
pub const APPS: [(&str, f64); 3] = [("douyin", 0.6), ("douyin_lite", 0.25), ("toutiao", 0.15)];

/// Index of the gateway in [`SERVICES`]; its traffic is the sum of the others'.
pub const GATEWAY: usize = 0;
/// Index of envelope-grab in [`SERVICES`].
pub const GRAB: usize = 1;
/// Index of envelope-open in [`SERVICES`].
pub const OPEN: usize = 2;
/// Index of share in [`SERVICES`].
pub const SHARE: usize = 3;
/// Index of account in [`SERVICES`].
pub const ACCOUNT: usize = 4;
/// Index of payment in [`SERVICES`].
pub const PAYMENT: usize = 5;
/// Index of feed in [`SERVICES`].
pub const FEED: usize = 6;

/// How a service reacts to a red-envelope round: it rises to `multiplier` × its organic level
/// `lag_s` seconds after the round starts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RoundResponse {
    /// Peak multiple of the organic level at the live run.
    pub multiplier: f64,
    /// Seconds after the round's start at which the rise begins.
    pub lag_s: f64,
}

/// One service of the reference campaign (the SCENARIO.md table, at scale 1).
#[derive(Debug, Clone, Copy)]
pub struct ServiceSpec {
    /// `service` label.
    pub name: &'static str,
    /// `interface` label values and each one's share of the service's traffic. The gateway's
    /// interfaces are one per backend (see [`gateway_interface`]) and this list is empty.
    pub interfaces: &'static [(&'static str, f64)],
    /// Organic peak QPS of the whole fleet at 21:00 on a weekday at kick-off; 0 for the gateway,
    /// whose traffic is the sum of the others'.
    pub organic_peak_qps: f64,
    /// Per-instance QPS at which the latency law diverges (ρ = 1).
    pub knee_qps: f64,
    /// p99 latency of an idle instance, in seconds.
    pub base_p99_s: f64,
    /// The p99 latency SLO, in seconds.
    pub slo_p99_s: f64,
    /// Instances per cluster before the campaign.
    pub instances_per_cluster: u32,
    /// Reaction to red-envelope rounds, if any.
    pub round: Option<RoundResponse>,
}

impl ServiceSpec {
    /// Load per instance, as a fraction of the knee, at which p99 meets the SLO exactly
    /// (from p99 = base / (1 − ρ)).
    pub fn rho_at_slo(&self) -> f64 {
        1.0 - self.base_p99_s / self.slo_p99_s
    }

    /// Per-instance capacity at the SLO in QPS at scale 1: the ground truth stress test 3 must
    /// recover.
    pub fn capacity_at_slo_qps(&self) -> f64 {
        self.knee_qps * self.rho_at_slo()
    }
}

/// The services of SCENARIO.md, gateway first.
pub const SERVICES: [ServiceSpec; 7] = [
    ServiceSpec {
        name: "gateway",
        interfaces: &[],
        organic_peak_qps: 0.0,
        knee_qps: 6_000.0,
        base_p99_s: 0.015,
        slo_p99_s: 0.1,
        instances_per_cluster: 12,
        round: None,
    },
    ServiceSpec {
        name: "envelope-grab",
        interfaces: &[("POST /envelope/grab", 0.9), ("GET /envelope/status", 0.1)],
        organic_peak_qps: 2_000.0,
        knee_qps: 2_000.0,
        base_p99_s: 0.040,
        slo_p99_s: 0.2,
        instances_per_cluster: 8,
        round: Some(RoundResponse {
            multiplier: 60.0,
            lag_s: 0.0,
        }),
    },
    ServiceSpec {
        name: "envelope-open",
        interfaces: &[("POST /envelope/open", 0.9), ("GET /envelope/history", 0.1)],
        organic_peak_qps: 1_500.0,
        knee_qps: 3_000.0,
        base_p99_s: 0.035,
        slo_p99_s: 0.2,
        instances_per_cluster: 6,
        round: Some(RoundResponse {
            multiplier: 40.0,
            lag_s: 5.0,
        }),
    },
    ServiceSpec {
        name: "share",
        interfaces: &[("POST /share", 0.85), ("GET /share/card", 0.15)],
        organic_peak_qps: 800.0,
        knee_qps: 5_000.0,
        base_p99_s: 0.025,
        slo_p99_s: 0.1,
        instances_per_cluster: 4,
        round: Some(RoundResponse {
            multiplier: 10.0,
            lag_s: 15.0,
        }),
    },
    ServiceSpec {
        name: "account",
        interfaces: &[("GET /account/balance", 0.8), ("GET /account/profile", 0.2)],
        organic_peak_qps: 3_000.0,
        knee_qps: 8_000.0,
        base_p99_s: 0.010,
        slo_p99_s: 0.1,
        instances_per_cluster: 4,
        round: None,
    },
    ServiceSpec {
        name: "payment",
        interfaces: &[
            ("POST /wallet/credit", 0.9),
            ("GET /wallet/transactions", 0.1),
        ],
        organic_peak_qps: 600.0,
        knee_qps: 1_500.0,
        base_p99_s: 0.060,
        slo_p99_s: 0.2,
        instances_per_cluster: 6,
        round: Some(RoundResponse {
            multiplier: 25.0,
            lag_s: 10.0,
        }),
    },
    ServiceSpec {
        name: "feed",
        interfaces: &[("GET /feed", 0.9), ("GET /feed/more", 0.1)],
        organic_peak_qps: 20_000.0,
        knee_qps: 4_000.0,
        base_p99_s: 0.080,
        slo_p99_s: 0.1,
        instances_per_cluster: 10,
        round: None,
    },
];

/// The gateway's interface in front of backend `b`: its main route under `/api`.
pub fn gateway_interface(b: usize) -> String {
    let main = SERVICES[b].interfaces.first().map_or("GET /", |i| i.0);
    match main.split_once(' ') {
        Some((method, path)) => format!("{method} /api{path}"),
        None => format!("/api{main}"),
    }
}

/// The `interface` labels of service `s` with each one's share; for the gateway, one per
/// backend with the backend's index instead of a share (see [`Interface::backend`]).
pub fn interfaces(s: usize) -> Vec<Interface> {
    if s == GATEWAY {
        (1..SERVICES.len())
            .map(|b| Interface {
                name: gateway_interface(b),
                share: 1.0,
                backend: Some(b),
            })
            .collect()
    } else {
        SERVICES[s]
            .interfaces
            .iter()
            .map(|&(name, share)| Interface {
                name: name.to_string(),
                share,
                backend: None,
            })
            .collect()
    }
}

/// One `interface` of a service.
#[derive(Debug, Clone, PartialEq)]
pub struct Interface {
    /// `interface` label, e.g. `POST /envelope/grab`.
    pub name: String,
    /// Share of the service's traffic (1 for the gateway's, which carry their backend's).
    pub share: f64,
    /// For the gateway: the backend whose traffic this interface carries.
    pub backend: Option<usize>,
}

/// The `instance` label of instance `i` of service `s` in cluster `c`.
pub fn instance_name(s: usize, c: usize, i: u32) -> String {
    format!("{}-{}-{i:02}", SERVICES[s].name, CLUSTERS[c].0)
}

/// Instances per cluster of every service, before the campaign and from kick-off on.
#[derive(Debug, Clone, PartialEq)]
pub struct Fleet {
    /// Per service: instances per cluster before kick-off (the SCENARIO.md table).
    pub organic: Vec<u32>,
    /// Per service: instances per cluster from kick-off on, sized so that the planned live peak
    /// loads each instance to at most its capacity at the SLO.
    pub campaign: Vec<u32>,
}

impl Fleet {
    /// Sizes the campaign fleet from each service's planned live peak (whole fleet, QPS at
    /// scale 1): per cluster, ceil(peak / clusters / capacity at SLO), never fewer than before.
    pub fn sized_for(planned_peak_qps: &[f64]) -> Self {
        let organic: Vec<u32> = SERVICES.iter().map(|s| s.instances_per_cluster).collect();
        let campaign = SERVICES
            .iter()
            .zip(planned_peak_qps)
            .map(|(s, &peak)| {
                let need = (peak / CLUSTERS.len() as f64 / s.capacity_at_slo_qps()).ceil();
                // `need` is a small positive count; the cast cannot truncate meaningfully.
                (need.max(0.0) as u32).max(s.instances_per_cluster)
            })
            .collect();
        Self { organic, campaign }
    }

    /// The most instances service `s` ever runs per cluster.
    pub fn max_instances(&self, s: usize) -> u32 {
        self.organic[s].max(self.campaign[s])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_follows_knee_and_latency_law() {
        let grab = &SERVICES[GRAB];
        assert!((grab.capacity_at_slo_qps() - 1_600.0).abs() < 1e-9);
        let account = &SERVICES[ACCOUNT];
        assert!((account.capacity_at_slo_qps() - 7_200.0).abs() < 1e-9);
    }

    #[test]
    fn interface_shares_sum_to_one() {
        for (s, spec) in SERVICES.iter().enumerate().skip(1) {
            let total: f64 = interfaces(s).iter().map(|i| i.share).sum();
            assert!((total - 1.0).abs() < 1e-9, "{}", spec.name);
        }
        assert_eq!(interfaces(GATEWAY).len(), SERVICES.len() - 1);
        assert_eq!(gateway_interface(GRAB), "POST /api/envelope/grab");
        let apps: f64 = APPS.iter().map(|a| a.1).sum();
        assert!((apps - 1.0).abs() < 1e-9);
    }

    #[test]
    fn campaign_fleet_never_shrinks() {
        let f = Fleet::sized_for(&[0.0; 7]);
        assert_eq!(f.campaign, f.organic);
        let mut peaks = [0.0; 7];
        peaks[GRAB] = 120_000.0;
        let f = Fleet::sized_for(&peaks);
        assert_eq!(f.campaign[GRAB], 25);
    }
}
