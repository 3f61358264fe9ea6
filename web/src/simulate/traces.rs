//! Sampled traces of the simulated fleet, as OTLP `ExportTraceServiceRequest`s.
//!
//! A few traces per simulated minute, each a request through the fleet (SCENARIO.md): a grab is
//! gateway → envelope-grab → (account, then payment); an open is gateway → envelope-open →
//! share; a feed read is gateway → feed. Every hop is a server span whose parent is the caller's
//! span; its duration is drawn from the callee's latency distribution at that moment and it
//! fails with the callee's error ratio (a failure fails the callers too). The minute's traces
//! are a pure function of (seed, minute).

use super::fleet::{
    ACCOUNT, APPS, CLUSTERS, FEED, GATEWAY, GRAB, OPEN, PAYMENT, SERVICES, SHARE,
    gateway_interface, instance_name,
};
use super::traffic::{LATENCY_SIGMA, Load, Scenario, latency_median, mix};
use ingest::decode::otlp::proto;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// OTLP `SPAN_KIND_SERVER`.
const KIND_SERVER: i32 = 2;
/// OTLP status codes.
const STATUS_OK: i32 = 1;
const STATUS_ERROR: i32 = 2;

/// One simulated span.
#[derive(Debug, Clone, PartialEq)]
pub struct SimSpan {
    /// Service index.
    pub service: usize,
    /// Cluster index.
    pub cluster: usize,
    /// `service.instance.id`.
    pub instance: String,
    /// 16-byte trace id.
    pub trace_id: [u8; 16],
    /// 8-byte span id.
    pub span_id: [u8; 8],
    /// Parent span id; `None` for the root.
    pub parent: Option<[u8; 8]>,
    /// `METHOD /route`, which is also the span name.
    pub interface: String,
    /// Start, Unix ns.
    pub start_ns: u64,
    /// End, Unix ns.
    pub end_ns: u64,
    /// Whether the request failed.
    pub error: bool,
    /// App id of the caller.
    pub app_id: &'static str,
    /// Whether the trace is synthetic (stress test or drill load).
    pub synthetic: bool,
}

/// Which requests a trace can follow: the backend behind the gateway and the backends it calls.
const FLOWS: [(usize, &[usize]); 3] = [(GRAB, &[ACCOUNT, PAYMENT]), (OPEN, &[SHARE]), (FEED, &[])];

struct Ctx<'a> {
    scn: &'a Scenario,
    rng: StdRng,
    t: f64,
    cluster: usize,
    trace_id: [u8; 16],
    app_id: &'static str,
    synthetic: bool,
    spans: Vec<SimSpan>,
}

impl Ctx<'_> {
    fn id(&mut self) -> [u8; 8] {
        loop {
            let id: [u8; 8] = self.rng.random();
            if id != [0; 8] {
                return id;
            }
        }
    }

    fn duration_ns(&mut self, load: &Load) -> u64 {
        // Box-Muller from two uniforms in (0, 1].
        let u1: f64 = 1.0 - self.rng.random::<f64>();
        let u2: f64 = self.rng.random();
        let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        let secs = latency_median(load.p99_s) * (LATENCY_SIGMA * z).exp();
        (secs * 1e9).max(50_000.0) as u64
    }

    /// Records the span of `service` (behind interface `interface`) called at `start_ns` and its
    /// children; returns its end and whether it failed.
    fn call(
        &mut self,
        service: usize,
        interface: String,
        parent: Option<[u8; 8]>,
        start_ns: u64,
        children: &[usize],
    ) -> (u64, bool) {
        let load = self.scn.load(service, self.cluster, self.t);
        let n = load.instances.max(1);
        let instance = instance_name(service, self.cluster, self.rng.random_range(0..n));
        let span_id = self.id();
        let own = self.duration_ns(&load);
        let mut error = self.rng.random::<f64>() < load.error_ratio;
        let mut cursor = start_ns + own / 4;
        if !error {
            for &child in children {
                let iface = SERVICES[child].interfaces[0].0.to_string();
                let (end, failed) = self.call(child, iface, Some(span_id), cursor + 200_000, &[]);
                cursor = end;
                if failed {
                    error = true;
                    break;
                }
            }
        }
        let end_ns = (start_ns + own).max(cursor + 100_000);
        self.spans.push(SimSpan {
            service,
            cluster: self.cluster,
            instance,
            trace_id: self.trace_id,
            span_id,
            parent,
            interface,
            start_ns,
            end_ns,
            error,
            app_id: self.app_id,
            synthetic: self.synthetic,
        });
        (end_ns, error)
    }
}

/// The `per_minute` sampled traces of the minute starting at `minute` (Unix seconds), spans in
/// a fixed order.
pub fn minute_traces(scn: &Scenario, minute: i64, per_minute: u32) -> Vec<SimSpan> {
    let mut rng = StdRng::seed_from_u64(mix(scn.seed() ^ mix(minute as u64)));
    let mut spans = Vec::new();
    let t = minute as f64 + 30.0;
    let serving: Vec<usize> = (0..CLUSTERS.len())
        .filter(|&c| scn.calendar().dark_cluster(t) != Some(c))
        .collect();
    if serving.is_empty() {
        return spans;
    }
    let weights: Vec<(f64, f64)> = FLOWS
        .iter()
        .map(|(b, _)| {
            serving.iter().fold((0.0, 0.0), |(o, s), &c| {
                let l = scn.backend_load(*b, c, t);
                (o + l.organic_qps, s + l.synthetic_qps)
            })
        })
        .collect();
    let total: f64 = weights.iter().map(|w| w.0 + w.1).sum();
    if total <= 0.0 {
        return spans;
    }
    for _ in 0..per_minute {
        let mut pick = rng.random::<f64>() * total;
        let mut flow = FLOWS.len() - 1;
        for (i, w) in weights.iter().enumerate() {
            if pick < w.0 + w.1 {
                flow = i;
                break;
            }
            pick -= w.0 + w.1;
        }
        let (o, s) = weights[flow];
        let synthetic = rng.random::<f64>() * (o + s) < s;
        let cluster = serving[rng.random_range(0..serving.len())];
        let mut a = rng.random::<f64>();
        let mut app_id = APPS[0].0;
        for (name, share) in APPS {
            if a < share {
                app_id = name;
                break;
            }
            a -= share;
        }
        let trace_id: [u8; 16] = loop {
            let id: [u8; 16] = rng.random();
            if id != [0; 16] {
                break id;
            }
        };
        let start_ns = (minute as u64) * 1_000_000_000 + rng.random_range(0..60_000_000_000u64);
        let mut ctx = Ctx {
            scn,
            rng: StdRng::seed_from_u64(rng.random()),
            t,
            cluster,
            trace_id,
            app_id,
            synthetic,
            spans: Vec::new(),
        };
        let (backend, children) = FLOWS[flow];
        // The gateway calls the backend, which calls its own children.
        let gw_id = ctx.id();
        let gw_load = scn.load(GATEWAY, cluster, t);
        let gw_own = ctx.duration_ns(&gw_load);
        let gw_instance = instance_name(
            GATEWAY,
            cluster,
            ctx.rng.random_range(0..gw_load.instances.max(1)),
        );
        let gw_refused = ctx.rng.random::<f64>() < gw_load.error_ratio;
        let (end, failed) = if gw_refused {
            (start_ns + gw_own, true)
        } else {
            let iface = SERVICES[backend].interfaces[0].0.to_string();
            let (e, f) = ctx.call(backend, iface, Some(gw_id), start_ns + 300_000, children);
            ((start_ns + gw_own).max(e + 200_000), f)
        };
        ctx.spans.push(SimSpan {
            service: GATEWAY,
            cluster,
            instance: gw_instance,
            trace_id,
            span_id: gw_id,
            parent: None,
            interface: gateway_interface(backend),
            start_ns,
            end_ns: end,
            error: failed,
            app_id,
            synthetic,
        });
        spans.append(&mut ctx.spans);
    }
    spans
}

fn kv(key: &str, value: proto::any_value::Value) -> proto::KeyValue {
    proto::KeyValue {
        key: key.into(),
        value: Some(proto::AnyValue { value: Some(value) }),
    }
}

fn text(key: &str, v: &str) -> proto::KeyValue {
    kv(key, proto::any_value::Value::StringValue(v.into()))
}

/// Groups spans by service instance into one OTLP export request.
pub fn export_request(spans: &[SimSpan]) -> proto::ExportTraceServiceRequest {
    let mut by_resource: std::collections::BTreeMap<(usize, usize, &str), Vec<proto::Span>> =
        Default::default();
    for s in spans {
        let (method, route) = s.interface.split_once(' ').unwrap_or(("GET", &s.interface));
        let mut attributes = vec![
            text("http.request.method", method),
            text("http.route", route),
            kv(
                "http.response.status_code",
                proto::any_value::Value::IntValue(if s.error { 503 } else { 200 }),
            ),
            text("app_id", s.app_id),
        ];
        if s.synthetic {
            attributes.push(kv("synthetic", proto::any_value::Value::BoolValue(true)));
        }
        by_resource
            .entry((s.service, s.cluster, &s.instance))
            .or_default()
            .push(proto::Span {
                trace_id: s.trace_id.to_vec(),
                span_id: s.span_id.to_vec(),
                trace_state: String::new(),
                parent_span_id: s.parent.map(|p| p.to_vec()).unwrap_or_default(),
                name: s.interface.clone(),
                kind: KIND_SERVER,
                start_time_unix_nano: s.start_ns,
                end_time_unix_nano: s.end_ns,
                attributes,
                events: Vec::new(),
                links: Vec::new(),
                status: Some(proto::Status {
                    message: if s.error {
                        "overloaded".into()
                    } else {
                        String::new()
                    },
                    code: if s.error { STATUS_ERROR } else { STATUS_OK },
                }),
            });
    }
    proto::ExportTraceServiceRequest {
        resource_spans: by_resource
            .into_iter()
            .map(
                |((service, cluster, instance), spans)| proto::ResourceSpans {
                    resource: Some(proto::Resource {
                        attributes: vec![
                            text("service.name", SERVICES[service].name),
                            text("service.instance.id", instance),
                            text("cloud.region", CLUSTERS[cluster].1),
                            text("cluster", CLUSTERS[cluster].0),
                        ],
                    }),
                    scope_spans: vec![proto::ScopeSpans {
                        scope: Some(proto::InstrumentationScope {
                            name: "crest-simulate".into(),
                            version: env!("CARGO_PKG_VERSION").into(),
                        }),
                        spans,
                    }],
                },
            )
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const KICKOFF: i64 = 1_767_225_600;

    #[test]
    fn traces_link_parents_across_services() {
        let scn = Scenario::new(9, 1.0, KICKOFF);
        let mut spans = Vec::new();
        for m in 0..30 {
            spans.extend(minute_traces(
                &scn,
                KICKOFF + 5 * 86_400 + 20 * 3600 + m * 60,
                4,
            ));
        }
        assert!(spans.len() >= 120 * 2);
        let by_id: HashMap<[u8; 8], &SimSpan> = spans.iter().map(|s| (s.span_id, s)).collect();
        assert_eq!(by_id.len(), spans.len(), "span ids unique");
        let mut edges = std::collections::BTreeSet::new();
        for s in &spans {
            match s.parent {
                None => assert_eq!(s.service, GATEWAY),
                Some(p) => {
                    let parent = by_id[&p];
                    assert_eq!(parent.trace_id, s.trace_id);
                    assert!(parent.start_ns <= s.start_ns && parent.end_ns >= s.end_ns);
                    edges.insert((SERVICES[parent.service].name, SERVICES[s.service].name));
                }
            }
        }
        for e in [
            ("gateway", "envelope-grab"),
            ("envelope-grab", "account"),
            ("envelope-grab", "payment"),
            ("gateway", "envelope-open"),
            ("envelope-open", "share"),
        ] {
            assert!(edges.contains(&e), "{e:?} missing from {edges:?}");
        }
    }

    #[test]
    fn traces_are_deterministic_by_seed() {
        let a = Scenario::new(1, 1.0, KICKOFF);
        let b = Scenario::new(2, 1.0, KICKOFF);
        let m = KICKOFF + 86_400;
        assert_eq!(minute_traces(&a, m, 5), minute_traces(&a, m, 5));
        assert_ne!(minute_traces(&a, m, 5), minute_traces(&b, m, 5));
    }

    #[test]
    fn export_request_round_trips_through_the_decoder() {
        use prost::Message;
        let scn = Scenario::new(1, 1.0, KICKOFF);
        let spans = minute_traces(&scn, KICKOFF + 3600, 3);
        let bytes = export_request(&spans).encode_to_vec();
        let back = proto::ExportTraceServiceRequest::decode(bytes.as_slice()).expect("decode");
        let n: usize = back
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len())
            .sum();
        assert_eq!(n, spans.len());
    }
}
