//! `crest loadgen`: a node-exporter-like workload (about 500 series per host, 15 s interval,
//! counters and gauges) sent over line protocol, remote write or OTLP/HTTP protobuf, to Crest or
//! to a peer such as VictoriaMetrics, reporting samples per second; or OTLP/HTTP spans (traces
//! of eight spans across services, spread over a time range), reporting spans per second.
//! Bodies are built before the clock starts.

use clap::{Args, ValueEnum};
use ingest::decode::otlp::proto;
use prost::Message;
use rand::{Rng, SeedableRng};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Wire protocol to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Protocol {
    /// Influx line protocol.
    Lp,
    /// Prometheus remote write 1.0.
    Rw,
    /// OTLP/HTTP protobuf metrics (`/v1/metrics`): the same series as gauges and monotonic sums.
    OtlpMetrics,
    /// OTLP/HTTP protobuf spans (`/v1/traces`): `--spans` spans over `--span-hours`.
    OtlpTraces,
}

/// Which server's paths to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Target {
    /// Crest: `/api/v2/write?bucket=..` and `/api/v1/write`.
    Crest,
    /// VictoriaMetrics: `/write` and `/api/v1/write`.
    Victoriametrics,
}

/// `crest loadgen` flags.
#[derive(Debug, Args)]
pub struct LoadgenArgs {
    /// Base URL of the server, e.g. http://127.0.0.1:8086.
    #[arg(long)]
    pub url: String,
    /// Wire protocol.
    #[arg(long, value_enum, default_value = "lp")]
    pub protocol: Protocol,
    /// Server kind (decides the paths).
    #[arg(long, value_enum, default_value = "crest")]
    pub target: Target,
    /// Simulated hosts.
    #[arg(long, default_value_t = 20)]
    pub hosts: usize,
    /// Series per host.
    #[arg(long, default_value_t = 500)]
    pub series_per_host: usize,
    /// Samples per series (one every --interval-secs).
    #[arg(long, default_value_t = 40)]
    pub samples: usize,
    /// Seconds between samples of a series.
    #[arg(long, default_value_t = 15)]
    pub interval_secs: i64,
    /// Samples per request.
    #[arg(long, default_value_t = 10_000)]
    pub batch: usize,
    /// Requests in flight.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// First timestamp, ms since the epoch (default: so the last sample is now).
    #[arg(long)]
    pub start_ms: Option<i64>,
    /// Bearer token.
    #[arg(long, env = "CREST_TOKEN")]
    pub token: Option<String>,
    /// Seed of the value generator.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Spans to send with `--protocol otlp-traces` (`--batch` spans per request).
    #[arg(long, default_value_t = 100_000)]
    pub spans: usize,
    /// Hours before now over which the spans' start times spread.
    #[arg(long, default_value_t = 24)]
    pub span_hours: i64,
}

/// One series of the workload: metric name, labels, counter or gauge.
struct Series {
    name: String,
    labels: Vec<(String, String)>,
    counter: bool,
    rate: f64,
    base: f64,
}

/// The node-exporter-like series of one host.
fn host_series(host: usize, per_host: usize, rng: &mut rand::rngs::StdRng) -> Vec<Series> {
    let mut out = Vec::with_capacity(per_host);
    let host_labels = |extra: Vec<(String, String)>| {
        let mut l = vec![
            ("host".to_string(), format!("host-{host:04}")),
            ("instance".to_string(), format!("host-{host:04}:9100")),
            ("job".to_string(), "node".to_string()),
        ];
        l.extend(extra);
        l.sort();
        l
    };
    let mut push = |name: String,
                    extra: Vec<(String, String)>,
                    counter: bool,
                    rng: &mut rand::rngs::StdRng| {
        out.push(Series {
            name,
            labels: host_labels(extra),
            counter,
            rate: rng.random_range(0.1..1000.0),
            base: rng.random_range(0.0..1e9),
        });
    };
    for cpu in 0..8 {
        for mode in [
            "idle", "user", "system", "iowait", "irq", "softirq", "steal", "nice",
        ] {
            push(
                "node_cpu_seconds_total".into(),
                vec![
                    ("cpu".into(), cpu.to_string()),
                    ("mode".into(), mode.into()),
                ],
                true,
                rng,
            );
        }
    }
    for dev in ["eth0", "eth1", "lo", "docker0"] {
        for m in [
            "receive_bytes",
            "transmit_bytes",
            "receive_packets",
            "transmit_packets",
            "receive_errs",
            "transmit_errs",
            "receive_drop",
            "transmit_drop",
        ] {
            push(
                format!("node_network_{m}_total"),
                vec![("device".into(), dev.into())],
                true,
                rng,
            );
        }
    }
    for dev in ["sda", "sdb", "nvme0n1", "nvme1n1"] {
        for m in [
            "reads_completed",
            "writes_completed",
            "read_bytes",
            "written_bytes",
            "io_time_seconds",
        ] {
            push(
                format!("node_disk_{m}_total"),
                vec![("device".into(), dev.into())],
                true,
                rng,
            );
        }
    }
    for mp in [
        "/", "/boot", "/var", "/home", "/data", "/tmp", "/srv", "/opt",
    ] {
        for m in [
            "avail_bytes",
            "size_bytes",
            "free_bytes",
            "files",
            "files_free",
        ] {
            push(
                format!("node_filesystem_{m}"),
                vec![
                    ("mountpoint".into(), mp.into()),
                    ("fstype".into(), "ext4".into()),
                ],
                false,
                rng,
            );
        }
    }
    let mut i = 0;
    while out.len() < per_host {
        let counter = i % 3 == 0;
        let name = if counter {
            format!("node_vmstat_metric_{i}_total")
        } else {
            format!("node_memory_metric_{i}_bytes")
        };
        out.push(Series {
            name,
            labels: host_labels(vec![]),
            counter,
            rate: rng.random_range(0.1..1000.0),
            base: rng.random_range(0.0..1e9),
        });
        i += 1;
    }
    out.truncate(per_host);
    out
}

/// Builds every request body of the workload, in time order.
fn build_bodies(a: &LoadgenArgs) -> (Vec<Vec<u8>>, u64) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(a.seed);
    let series: Vec<Series> = (0..a.hosts)
        .flat_map(|h| host_series(h, a.series_per_host, &mut rng))
        .collect();
    let step_ms = a.interval_secs * 1000;
    let now_ms = ingest::clock::Clock::now_ns(&ingest::clock::SystemClock) / 1_000_000;
    let start = a.start_ms.unwrap_or(now_ms - step_ms * a.samples as i64);
    let mut bodies = Vec::new();
    let mut lp = String::new();
    let mut rw: Vec<ingest::decode::remote_write::Series> = Vec::new();
    let mut otlp: Vec<proto::Metric> = Vec::new();
    let mut in_batch = 0usize;
    let mut total = 0u64;
    let flush = |lp: &mut String,
                 rw: &mut Vec<ingest::decode::remote_write::Series>,
                 otlp: &mut Vec<proto::Metric>,
                 bodies: &mut Vec<Vec<u8>>| {
        match a.protocol {
            Protocol::Lp => bodies.push(std::mem::take(lp).into_bytes()),
            Protocol::Rw => bodies.push(ingest::decode::remote_write::encode(rw)),
            Protocol::OtlpMetrics | Protocol::OtlpTraces => bodies.push(
                proto::ExportMetricsServiceRequest {
                    resource_metrics: vec![proto::ResourceMetrics {
                        resource: Some(proto::Resource {
                            attributes: vec![kv("service.name", "loadgen")],
                        }),
                        scope_metrics: vec![proto::ScopeMetrics {
                            scope: None,
                            metrics: std::mem::take(otlp),
                        }],
                    }],
                }
                .encode_to_vec(),
            ),
        }
        rw.clear();
    };
    for k in 0..a.samples {
        let t = start + step_ms * k as i64;
        for s in &series {
            let jitter: f64 = rng.random_range(0.0..1.0);
            let v = if s.counter {
                (s.base + s.rate * (k as f64) * (a.interval_secs as f64) + jitter).floor()
            } else {
                (s.base * (1.0 + 0.01 * ((k as f64) / 40.0).sin()) + jitter * 1000.0).round()
            };
            match a.protocol {
                Protocol::Lp => {
                    lp.push_str(&s.name);
                    for (k, v) in &s.labels {
                        lp.push(',');
                        lp.push_str(k);
                        lp.push('=');
                        lp.push_str(
                            &v.replace(' ', "\\ ")
                                .replace(',', "\\,")
                                .replace('=', "\\="),
                        );
                    }
                    lp.push_str(&format!(" value={v:?} {}\n", t * 1_000_000));
                }
                Protocol::Rw => {
                    let mut labels = s.labels.clone();
                    labels.push(("__name__".into(), s.name.clone()));
                    rw.push((labels, vec![(t, v)]));
                }
                Protocol::OtlpMetrics | Protocol::OtlpTraces => {
                    let point = proto::NumberDataPoint {
                        attributes: s.labels.iter().map(|(k, v)| kv(k, v)).collect(),
                        start_time_unix_nano: u64::try_from(start).unwrap_or(0) * 1_000_000,
                        time_unix_nano: u64::try_from(t).unwrap_or(0) * 1_000_000,
                        value: Some(proto::number_data_point::Value::AsDouble(v)),
                        ..Default::default()
                    };
                    let data = if s.counter {
                        proto::metric::Data::Sum(proto::Sum {
                            data_points: vec![point],
                            aggregation_temporality: 2,
                            is_monotonic: true,
                        })
                    } else {
                        proto::metric::Data::Gauge(proto::Gauge {
                            data_points: vec![point],
                        })
                    };
                    otlp.push(proto::Metric {
                        name: s.name.clone(),
                        data: Some(data),
                        ..Default::default()
                    });
                }
            }
            in_batch += 1;
            total += 1;
            if in_batch == a.batch {
                flush(&mut lp, &mut rw, &mut otlp, &mut bodies);
                in_batch = 0;
            }
        }
    }
    if in_batch > 0 {
        flush(&mut lp, &mut rw, &mut otlp, &mut bodies);
    }
    (bodies, total)
}

fn kv(key: &str, value: &str) -> proto::KeyValue {
    proto::KeyValue {
        key: key.to_string(),
        value: Some(proto::AnyValue {
            value: Some(proto::any_value::Value::StringValue(value.to_string())),
        }),
    }
}

/// The services a span may belong to, and each one's operations.
const SPAN_SERVICES: [(&str, [&str; 3]); 6] = [
    (
        "gateway",
        ["GET /envelope", "POST /envelope/open", "GET /share"],
    ),
    ("envelope-grab", ["grab", "reserve", "commit"]),
    ("envelope-open", ["open", "credit", "notify"]),
    ("share", ["share", "render", "publish"]),
    ("account", ["lookup", "balance", "update"]),
    ("payment", ["authorize", "capture", "refund"]),
];

/// Spans per trace: a gateway root, then children across the other services.
const SPANS_PER_TRACE: usize = 8;
/// How often one request is retried after a 503 or 429 before it counts as an error.
const MAX_RETRIES: u32 = 60;

/// Builds `--spans` spans in requests of `--batch`, traces of [`SPANS_PER_TRACE`] spans whose
/// start times spread evenly over the last `--span-hours`.
fn build_span_bodies(a: &LoadgenArgs) -> (Vec<Vec<u8>>, u64) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(a.seed);
    let now_ns = ingest::clock::Clock::now_ns(&ingest::clock::SystemClock);
    let range_ns = a.span_hours.max(1) * 3_600_000_000_000;
    let traces = a.spans.div_ceil(SPANS_PER_TRACE);
    let per_request = a.batch.max(SPANS_PER_TRACE);
    let mut bodies = Vec::new();
    let mut by_service: Vec<Vec<proto::Span>> = vec![Vec::new(); SPAN_SERVICES.len()];
    let mut in_batch = 0usize;
    let mut total = 0u64;
    let flush = |by_service: &mut Vec<Vec<proto::Span>>, bodies: &mut Vec<Vec<u8>>| {
        let resource_spans = SPAN_SERVICES
            .iter()
            .zip(by_service.iter_mut())
            .filter(|(_, spans)| !spans.is_empty())
            .map(|((service, _), spans)| proto::ResourceSpans {
                resource: Some(proto::Resource {
                    attributes: vec![kv("service.name", service)],
                }),
                scope_spans: vec![proto::ScopeSpans {
                    scope: None,
                    spans: std::mem::take(spans),
                }],
            })
            .collect();
        bodies.push(proto::ExportTraceServiceRequest { resource_spans }.encode_to_vec());
    };
    for t in 0..traces {
        let start = now_ns - range_ns + (range_ns / traces.max(1) as i64) * t as i64;
        let trace_id: [u8; 16] = rng.random();
        let root_id: [u8; 8] = rng.random();
        let n = SPANS_PER_TRACE.min(a.spans - t * SPANS_PER_TRACE);
        for i in 0..n {
            let svc = if i == 0 {
                0
            } else {
                1 + (i - 1) % (SPAN_SERVICES.len() - 1)
            };
            let (_, ops) = SPAN_SERVICES[svc];
            let id: [u8; 8] = if i == 0 { root_id } else { rng.random() };
            let offset_ns = i as i64 * 1_000_000;
            let duration_ns: i64 = rng.random_range(1_000_000..200_000_000);
            let error = rng.random_range(0..100) == 0;
            by_service[svc].push(proto::Span {
                trace_id: trace_id.to_vec(),
                span_id: id.to_vec(),
                parent_span_id: if i == 0 { Vec::new() } else { root_id.to_vec() },
                name: ops[i % ops.len()].to_string(),
                kind: if i == 0 { 2 } else { 3 },
                start_time_unix_nano: u64::try_from(start + offset_ns).unwrap_or(0),
                end_time_unix_nano: u64::try_from(start + offset_ns + duration_ns).unwrap_or(0),
                attributes: vec![
                    kv("http.route", ops[i % ops.len()]),
                    kv("region", "cn-north"),
                ],
                status: Some(proto::Status {
                    message: String::new(),
                    code: if error { 2 } else { 1 },
                }),
                ..Default::default()
            });
            in_batch += 1;
            total += 1;
        }
        if in_batch >= per_request {
            flush(&mut by_service, &mut bodies);
            in_batch = 0;
        }
    }
    if in_batch > 0 {
        flush(&mut by_service, &mut bodies);
    }
    (bodies, total)
}

/// Runs the workload and prints one JSON summary line.
pub async fn run(a: LoadgenArgs) -> anyhow::Result<()> {
    let built = Instant::now();
    let (bodies, samples) = if a.protocol == Protocol::OtlpTraces {
        build_span_bodies(&a)
    } else {
        build_bodies(&a)
    };
    let bytes: usize = bodies.iter().map(Vec::len).sum();
    eprintln!(
        "loadgen: {} requests, {samples} samples, {bytes} body bytes built in {:.1}s; sending with {} in flight",
        bodies.len(),
        built.elapsed().as_secs_f64(),
        a.concurrency
    );
    let base = a.url.trim_end_matches('/');
    let url = match (a.protocol, a.target) {
        (Protocol::Lp, Target::Crest) => format!("{base}/api/v2/write?bucket=bench&precision=ns"),
        (Protocol::Lp, Target::Victoriametrics) => format!("{base}/write?precision=ns"),
        (Protocol::Rw, _) => format!("{base}/api/v1/write"),
        (Protocol::OtlpMetrics, _) => format!("{base}/v1/metrics"),
        (Protocol::OtlpTraces, _) => format!("{base}/v1/traces"),
    };
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(a.concurrency)
        .build()?;
    let queue = Arc::new(parking_lot::Mutex::new(bodies.into_iter()));
    let errors = Arc::new(AtomicU64::new(0));
    let retries = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..a.concurrency.max(1) {
        let (client, queue, errors, retries, url, token, protocol) = (
            client.clone(),
            Arc::clone(&queue),
            Arc::clone(&errors),
            Arc::clone(&retries),
            url.clone(),
            a.token.clone(),
            a.protocol,
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let Some(body) = queue.lock().next() else {
                    break;
                };
                let body = bytes::Bytes::from(body);
                // A 503 or 429 (a full write buffer, say) is retried after its Retry-After, as
                // Prometheus and the OTLP exporters do; other failures count as errors.
                let mut attempt = 0u32;
                loop {
                    let mut req = client.post(&url).body(body.clone());
                    match protocol {
                        Protocol::Rw => {
                            req = req
                                .header("Content-Encoding", "snappy")
                                .header("Content-Type", "application/x-protobuf")
                                .header("X-Prometheus-Remote-Write-Version", "0.1.0");
                        }
                        Protocol::OtlpMetrics | Protocol::OtlpTraces => {
                            req = req.header("Content-Type", "application/x-protobuf");
                        }
                        Protocol::Lp => {}
                    }
                    if let Some(t) = &token {
                        req = req.bearer_auth(t);
                    }
                    match req.send().await {
                        Ok(r) if r.status().is_success() => break,
                        Ok(r)
                            if matches!(r.status().as_u16(), 429 | 503)
                                && attempt < MAX_RETRIES =>
                        {
                            attempt += 1;
                            retries.fetch_add(1, Ordering::Relaxed);
                            let wait = r
                                .headers()
                                .get("retry-after")
                                .and_then(|v| v.to_str().ok())
                                .and_then(|v| v.trim().parse::<u64>().ok())
                                .unwrap_or(1)
                                .clamp(1, 30);
                            tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
                        }
                        Ok(r) => {
                            let status = r.status();
                            let text = r.text().await.unwrap_or_default();
                            if errors.fetch_add(1, Ordering::Relaxed) < 3 {
                                eprintln!(
                                    "loadgen: {status}: {}",
                                    text.chars().take(300).collect::<String>()
                                );
                            }
                            break;
                        }
                        Err(e) => {
                            if errors.fetch_add(1, Ordering::Relaxed) < 3 {
                                eprintln!("loadgen: request failed: {e}");
                            }
                            break;
                        }
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    let secs = started.elapsed().as_secs_f64();
    let errors = errors.load(Ordering::Relaxed);
    println!(
        "{}",
        serde_json::json!({
            "protocol": format!("{:?}", a.protocol).to_lowercase(),
            "target": format!("{:?}", a.target).to_lowercase(),
            "samples": samples,
            "seconds": secs,
            "samples_per_sec": samples as f64 / secs,
            "body_bytes": bytes,
            "errors": errors,
            "retries": retries.load(Ordering::Relaxed),
        })
    );
    if errors > 0 {
        anyhow::bail!("{errors} requests failed");
    }
    Ok(())
}
