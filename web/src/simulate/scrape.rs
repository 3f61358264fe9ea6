//! What a Prometheus scraping the simulated fleet every step would have collected, as
//! remote-write series.
//!
//! * `http_requests_total{service,interface,instance,cluster,region,app_id,code,synthetic}`:
//!   per instance, interface and app id; `code` is `200` or `503` (refused past ρ = 0.95);
//!   `synthetic="true"` series carry stress-test load and the traffic a DR drill moved, and
//!   exist only while that traffic flows.
//! * `http_request_duration_seconds_bucket{service,interface,cluster,region,le}` plus `_sum`
//!   and `_count`: per service, interface and cluster (every instance of a cluster carries the
//!   same load, so their latency distributions are the same), cumulative `le` buckets.
//! * `up{service,instance,cluster,region}`: 1, or 0 while the instance's cluster is dark.
//! * `instances{service,cluster,region}`: instances serving.
//!
//! Counters start at 0 at the first simulated instant and integrate the model's QPS over each
//! step, second by second around rounds and milestone edges.

use super::fleet::{APPS, CLUSTERS, GATEWAY, SERVICES, instance_name, interfaces};
use super::traffic::{Load, Scenario, latency_cdf, latency_mean};
use ingest::decode::remote_write::Series;

/// Upper bounds of the latency histogram, seconds (5 ms to 10 s); `+Inf` follows.
pub const BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Response codes of the request counter: served, refused.
const CODES: [&str; 2] = ["200", "503"];

/// Requests and latency integrated over one step for one service in one cluster.
#[derive(Debug, Clone, Default)]
struct Acc {
    /// `[synthetic][code]` request counts.
    requests: [[f64; 2]; 2],
    /// Requests at most each bound of [`BUCKETS`], then all (`+Inf`).
    buckets: [f64; BUCKETS.len() + 1],
    /// Total seconds spent.
    sum: f64,
}

impl Acc {
    fn add(&mut self, organic: f64, synthetic: f64, err: f64, p99: f64, dt: f64) {
        for (k, q) in [organic, synthetic].into_iter().enumerate() {
            self.requests[k][0] += q * (1.0 - err) * dt;
            self.requests[k][1] += q * err * dt;
        }
        let n = (organic + synthetic) * dt;
        if n <= 0.0 {
            return;
        }
        for (b, &le) in BUCKETS.iter().enumerate() {
            self.buckets[b] += n * latency_cdf(p99, le);
        }
        self.buckets[BUCKETS.len()] += n;
        self.sum += n * latency_mean(p99);
    }
}

/// One simulated series: labels, running value, samples not yet handed out.
#[derive(Debug)]
struct Slot {
    labels: Vec<(String, String)>,
    value: f64,
    pending: Vec<(i64, f64)>,
    /// Whether the last step emitted a sample (synthetic series emit one more after their
    /// traffic stops, then pause).
    live: bool,
}

impl Slot {
    fn new(mut labels: Vec<(String, String)>) -> Self {
        labels.sort();
        Self {
            labels,
            value: 0.0,
            pending: Vec::new(),
            live: false,
        }
    }
}

fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Per service and cluster: where its series start in the slot table.
#[derive(Debug, Clone, Copy)]
struct Layout {
    /// First request counter; index = base + (((i × interfaces + j) × apps + a) × 2 + synthetic) × 2 + code.
    requests: usize,
    /// First histogram series; index = base + j × (buckets + 3) + k (buckets, +Inf, sum, count).
    histograms: usize,
    /// First `up` series; index = base + i.
    up: usize,
    /// The `instances` series.
    instances: usize,
    /// Interfaces of the service.
    interfaces: usize,
}

/// Series per histogram: the buckets, `+Inf`, `_sum`, `_count`.
const HIST_SERIES: usize = BUCKETS.len() + 3;

/// Generates the scrape samples of the fleet step by step.
#[derive(Debug)]
pub struct Scraper {
    scenario: Scenario,
    step: i64,
    next: i64,
    slots: Vec<Slot>,
    layout: Vec<Vec<Layout>>,
    shares: Vec<Vec<f64>>,
}

impl Scraper {
    /// A scraper whose first sample is at `start` (Unix seconds), one every `step` seconds.
    pub fn new(scenario: Scenario, start: i64, step: i64) -> Self {
        let mut slots = Vec::new();
        let mut layout = Vec::new();
        let mut shares = Vec::new();
        for (s, spec) in SERVICES.iter().enumerate() {
            let ifaces = interfaces(s);
            shares.push(ifaces.iter().map(|i| i.share).collect());
            let n = scenario.fleet().max_instances(s);
            let mut per_cluster = Vec::new();
            for (c, &(cluster, region)) in CLUSTERS.iter().enumerate() {
                let base = [
                    ("service", spec.name),
                    ("cluster", cluster),
                    ("region", region),
                ];
                let requests = slots.len();
                for i in 0..n {
                    let instance = instance_name(s, c, i);
                    for iface in &ifaces {
                        for (app, _) in APPS {
                            for synthetic in ["false", "true"] {
                                for code in CODES {
                                    let mut l = labels(&base);
                                    l.extend(labels(&[
                                        ("__name__", "http_requests_total"),
                                        ("instance", &instance),
                                        ("interface", &iface.name),
                                        ("app_id", app),
                                        ("synthetic", synthetic),
                                        ("code", code),
                                    ]));
                                    slots.push(Slot::new(l));
                                }
                            }
                        }
                    }
                }
                let histograms = slots.len();
                for iface in &ifaces {
                    let mut with = |name: &str, le: Option<String>| {
                        let mut l = labels(&base);
                        l.extend(labels(&[("__name__", name), ("interface", &iface.name)]));
                        if let Some(le) = le {
                            l.push(("le".into(), le));
                        }
                        slots.push(Slot::new(l));
                    };
                    for le in BUCKETS {
                        with("http_request_duration_seconds_bucket", Some(le.to_string()));
                    }
                    with("http_request_duration_seconds_bucket", Some("+Inf".into()));
                    with("http_request_duration_seconds_sum", None);
                    with("http_request_duration_seconds_count", None);
                }
                let up = slots.len();
                for i in 0..n {
                    let mut l = labels(&base);
                    l.extend(labels(&[
                        ("__name__", "up"),
                        ("instance", &instance_name(s, c, i)),
                    ]));
                    slots.push(Slot::new(l));
                }
                let instances = slots.len();
                let mut l = labels(&base);
                l.push(("__name__".into(), "instances".into()));
                slots.push(Slot::new(l));
                per_cluster.push(Layout {
                    requests,
                    histograms,
                    up,
                    instances,
                    interfaces: ifaces.len(),
                });
            }
            layout.push(per_cluster);
        }
        Self {
            scenario,
            step,
            next: start,
            slots,
            layout,
            shares,
        }
    }

    /// The scenario being played.
    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    /// Time of the next sample, Unix seconds.
    pub fn next_sample(&self) -> i64 {
        self.next
    }

    /// Number of series the fleet can have.
    pub fn series_count(&self) -> usize {
        self.slots.len()
    }

    /// Produces every sample at or before `until` not produced yet and returns the series that
    /// got samples (samples as `(ms, value)`), in a fixed order.
    pub fn advance(&mut self, until: i64) -> Vec<Series> {
        while self.next <= until {
            let t = self.next;
            self.sample(t);
            self.next += self.step;
        }
        self.slots
            .iter_mut()
            .filter(|s| !s.pending.is_empty())
            .map(|s| (s.labels.clone(), std::mem::take(&mut s.pending)))
            .collect()
    }

    /// Integrates the step ending at `t` and records one sample per active series.
    fn sample(&mut self, t: i64) {
        let step = self.step as f64;
        let t1 = t as f64;
        let t0 = t1 - step;
        let subs = if self.scenario.calendar().is_sharp(t0, t1) {
            self.step.max(1) as usize
        } else {
            1
        };
        let dt = step / subs as f64;
        let ms = t * 1000;
        for c in 0..CLUSTERS.len() {
            // acc[s] for backends; gw[b] for the gateway's interface in front of backend b.
            let mut acc = vec![Acc::default(); SERVICES.len()];
            let mut gw = vec![Acc::default(); SERVICES.len()];
            for k in 0..subs {
                let tau = t0 + (k as f64 + 0.5) * dt;
                let loads: Vec<Load> = (0..SERVICES.len())
                    .map(|b| {
                        if b == GATEWAY {
                            Load::default()
                        } else {
                            self.scenario.backend_load(b, c, tau)
                        }
                    })
                    .collect();
                let g = self.scenario.gateway_load(c, tau, &loads);
                for b in 1..SERVICES.len() {
                    let l = &loads[b];
                    acc[b].add(l.organic_qps, l.synthetic_qps, l.error_ratio, l.p99_s, dt);
                    let err = 1.0 - (1.0 - g.error_ratio) * (1.0 - l.error_ratio);
                    gw[b].add(l.organic_qps, l.synthetic_qps, err, g.p99_s, dt);
                }
            }
            for (s, own) in acc.iter().enumerate() {
                let configured = self.scenario.configured_instances(s, t1);
                let dark = self.scenario.calendar().dark_cluster(t1) == Some(c);
                let lay = self.layout[s][c];
                for i in 0..configured as usize {
                    self.slots[lay.up + i]
                        .pending
                        .push((ms, if dark { 0.0 } else { 1.0 }));
                }
                let serving = if dark { 0 } else { configured };
                self.slots[lay.instances]
                    .pending
                    .push((ms, f64::from(serving)));
                if serving == 0 {
                    continue;
                }
                for j in 0..lay.interfaces {
                    let (a, share) = if s == GATEWAY {
                        (&gw[j + 1], 1.0)
                    } else {
                        (own, self.shares[s][j])
                    };
                    let h = lay.histograms + j * HIST_SERIES;
                    for (b, &v) in a.buckets.iter().enumerate() {
                        self.slots[h + b].value += v * share;
                    }
                    self.slots[h + BUCKETS.len() + 1].value += a.sum * share;
                    let count = self.slots[h + BUCKETS.len()].value;
                    self.slots[h + BUCKETS.len() + 2].value = count;
                    for k in 0..HIST_SERIES {
                        let slot = &mut self.slots[h + k];
                        let v = if k == BUCKETS.len() + 1 {
                            slot.value
                        } else {
                            slot.value.floor()
                        };
                        slot.pending.push((ms, v));
                    }
                    for i in 0..serving as usize {
                        for (ai, (_, app_share)) in APPS.iter().enumerate() {
                            for syn in 0..2 {
                                for code in 0..2 {
                                    let idx = lay.requests
                                        + (((i * lay.interfaces + j) * APPS.len() + ai) * 2 + syn)
                                            * 2
                                        + code;
                                    let inc = a.requests[syn][code] * share * app_share
                                        / f64::from(serving);
                                    let slot = &mut self.slots[idx];
                                    slot.value += inc;
                                    // Organic series always report; synthetic ones while their
                                    // traffic flows, plus one sample after.
                                    let active = syn == 0 || inc > 0.0;
                                    if active || slot.live {
                                        slot.pending.push((ms, slot.value.floor()));
                                    }
                                    slot.live = active && syn == 1;
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::fleet::FEED;
    use super::*;
    use std::collections::HashMap;

    const KICKOFF: i64 = 1_767_225_600;

    type SeriesMap = HashMap<Vec<(String, String)>, Vec<(i64, f64)>>;
    type HistMap = HashMap<(String, String, String, i64), Vec<(f64, f64)>>;

    fn series_map(all: &[Series]) -> SeriesMap {
        let mut m = SeriesMap::new();
        for (l, s) in all {
            m.entry(l.clone()).or_default().extend(s.iter().copied());
        }
        m
    }

    fn get<'a>(l: &'a [(String, String)], k: &str) -> &'a str {
        l.iter().find(|x| x.0 == k).map_or("", |x| x.1.as_str())
    }

    #[test]
    fn counters_grow_and_buckets_are_cumulative() {
        let scn = Scenario::new(3, 1.0, KICKOFF);
        let start = KICKOFF + 12 * 86_400 + 2 * 3600 - 300;
        let mut sc = Scraper::new(scn, start, 15);
        let mut all = sc.advance(start + 3600);
        all.extend(sc.advance(start + 2 * 3600));
        let m = series_map(&all);
        let mut hist = HistMap::new();
        for (l, samples) in &m {
            for w in samples.windows(2) {
                assert!(w[0].0 < w[1].0, "{l:?} out of order");
                if get(l, "__name__") != "up" && get(l, "__name__") != "instances" {
                    assert!(w[1].1 >= w[0].1, "{l:?} decreased");
                }
            }
            if get(l, "__name__") == "http_request_duration_seconds_bucket" {
                let le = get(l, "le");
                let le = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().expect("le")
                };
                for &(ts, v) in samples {
                    hist.entry((
                        get(l, "service").into(),
                        get(l, "interface").into(),
                        get(l, "cluster").into(),
                        ts,
                    ))
                    .or_default()
                    .push((le, v));
                }
            }
        }
        assert!(!hist.is_empty());
        for (k, mut b) in hist {
            assert_eq!(b.len(), BUCKETS.len() + 1, "{k:?}");
            b.sort_by(|x, y| x.0.total_cmp(&y.0));
            for w in b.windows(2) {
                assert!(w[1].1 >= w[0].1, "{k:?} not cumulative: {b:?}");
            }
        }
        // Stress test 3 refuses requests on envelope-grab and feeds synthetic series.
        let errors: f64 = m
            .iter()
            .filter(|(l, _)| get(l, "service") == "envelope-grab" && get(l, "code") == "503")
            .map(|(_, s)| s.last().map_or(0.0, |x| x.1))
            .sum();
        assert!(errors > 0.0);
        let synthetic = m
            .iter()
            .filter(|(l, _)| get(l, "synthetic") == "true")
            .count();
        assert!(synthetic > 0);
    }

    #[test]
    fn counter_rates_follow_the_model() {
        let scn = Scenario::new(3, 1.0, KICKOFF);
        let start = KICKOFF + 5 * 86_400 + 20 * 3600;
        let expect = scn.demand_qps(FEED, (start + 1800) as f64);
        let mut sc = Scraper::new(scn, start, 15);
        let first = series_map(&sc.advance(start));
        let last = series_map(&sc.advance(start + 3600));
        let sum = |m: &SeriesMap| -> f64 {
            m.iter()
                .filter(|(l, _)| {
                    get(l, "__name__") == "http_requests_total" && get(l, "service") == "feed"
                })
                .map(|(_, s)| s.last().map_or(0.0, |x| x.1))
                .sum()
        };
        let rate = (sum(&last) - sum(&first)) / 3600.0;
        assert!((rate / expect - 1.0).abs() < 0.05, "{rate} vs {expect}");
    }

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        let run = |seed: u64| {
            let scn = Scenario::new(seed, 1.0, KICKOFF);
            let start = KICKOFF + 27 * 86_400 + 20 * 3600 + 1200;
            let mut sc = Scraper::new(scn, start, 15);
            ingest::decode::remote_write::encode(&sc.advance(start + 900))
        };
        assert_eq!(run(5), run(5));
        assert_ne!(run(5), run(6));
    }
}
