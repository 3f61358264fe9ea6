//! Interop with real peers installed from Debian. `.ci/run` installs them and sets
//! `CREST_INTEROP=1`; then a missing peer fails the test instead of skipping it.

use super::harness::{client, server_metric, sql, start};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Whether interop tests must run (CI), may be skipped (a developer machine without the peers).
pub fn required(peer: &str) -> bool {
    let found = Command::new(peer)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if std::env::var("CREST_INTEROP").is_ok_and(|v| v == "1") {
        assert!(found, "CREST_INTEROP=1 but {peer} is not installed");
        return true;
    }
    if !found {
        eprintln!("skipping: {peer} not installed (set CREST_INTEROP=1 to require it)");
    }
    found
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Child processes this test started, stopped by PID when it ends.
struct Peers(Vec<Child>);

impl Drop for Peers {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn spawn(cmd: &mut Command, log: &std::path::Path) -> Child {
    let f = std::fs::File::create(log).expect("log file");
    let e = f.try_clone().expect("log file");
    cmd.stdout(f).stderr(e).spawn().expect("spawn peer")
}

fn metric(body: &str, name: &str) -> f64 {
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(f64::NAN)
}

/// Debian's Prometheus scrapes Debian's node-exporter and itself every second and
/// remote-writes (protocol 1.0) to Crest: every sample it sends is accepted and queryable.
#[test]
fn prometheus_remote_write_lands_whole() {
    if !required("prometheus") || !required("prometheus-node-exporter") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let s = start(&dir.path().join("crest"), &[], &[]);
    let (prom, node) = (free_port(), free_port());
    let work = dir.path().join("prom");
    std::fs::create_dir_all(&work).expect("mkdir");
    let config = format!(
        "global:\n  scrape_interval: 1s\n  external_labels: {{replica: r1}}\nscrape_configs:\n  - job_name: node\n    static_configs: [{{targets: ['127.0.0.1:{node}']}}]\n  - job_name: prometheus\n    static_configs: [{{targets: ['127.0.0.1:{prom}']}}]\nremote_write:\n  - url: {}\n    queue_config: {{batch_send_deadline: 1s, max_samples_per_send: 500}}\n",
        s.url("/api/v1/write")
    );
    std::fs::write(work.join("prometheus.yml"), config).expect("config");
    let mut peers = Peers(Vec::new());
    peers.0.push(spawn(
        Command::new("prometheus-node-exporter")
            .arg(format!("--web.listen-address=127.0.0.1:{node}")),
        &work.join("node.log"),
    ));
    peers.0.push(spawn(
        Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                work.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                work.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prom}")),
        &work.join("prometheus.log"),
    ));
    // Bounded wait: Prometheus needs a few scrapes and a send deadline.
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut sent: f64;
    loop {
        std::thread::sleep(Duration::from_secs(2));
        let prom_metrics = client()
            .get(format!("http://127.0.0.1:{prom}/metrics"))
            .send()
            .and_then(|r| r.text())
            .unwrap_or_default();
        sent = metric_any(&prom_metrics, "prometheus_remote_storage_samples_total");
        let have_tables = sql(&s, None, "SHOW TABLES")
            .iter()
            .any(|r| r["table_name"] == "node_cpu_seconds_total");
        if (have_tables && sent >= 1000.0) || Instant::now() > deadline {
            break;
        }
    }
    let log = std::fs::read_to_string(work.join("prometheus.log")).unwrap_or_default();
    assert!(
        sent >= 1000.0,
        "Prometheus sent {sent} samples; its log:\n{log}"
    );
    assert!(
        !log.contains("non-recoverable error"),
        "Prometheus saw a non-recoverable error:\n{log}"
    );
    assert_eq!(server_metric(&s, "crest_points_rejected_total"), 0.0);
    // Labels arrive as tags, external labels included; the up series of both jobs is there.
    let rows = sql(
        &s,
        None,
        "SELECT job, count(*) AS n, min(value) AS lo FROM up WHERE replica = 'r1' GROUP BY job ORDER BY job",
    );
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0]["job"], "node");
    assert_eq!(rows[1]["job"], "prometheus");
    assert!(rows.iter().all(|r| r["lo"] == 1.0), "{rows:?}");
    let cpu = sql(
        &s,
        None,
        "SELECT count(DISTINCT mode) AS modes FROM node_cpu_seconds_total",
    );
    assert!(cpu[0]["modes"].as_i64() >= Some(4), "{cpu:?}");
}

/// The first sample value of a metric family regardless of labels.
fn metric_any(body: &str, name: &str) -> f64 {
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let rest = l.strip_prefix(name)?;
            let value = rest.rsplit(' ').next()?;
            value.trim().parse().ok()
        })
        .unwrap_or(f64::NAN)
}

/// Crest scrapes Debian's node-exporter itself (a `[[scrape]]` job every second): `up`, the
/// scrape series, counters with their labels, and node-exporter's own value for a gauge.
#[test]
fn crest_scrapes_node_exporter() {
    if !required("prometheus-node-exporter") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let node = free_port();
    let mut peers = Peers(Vec::new());
    peers.0.push(spawn(
        Command::new("prometheus-node-exporter")
            .arg(format!("--web.listen-address=127.0.0.1:{node}")),
        &dir.path().join("node.log"),
    ));
    // Crest's first scrape must find node-exporter listening, or that scrape is an `up` = 0.
    let node_metrics = format!("http://127.0.0.1:{node}/metrics");
    let deadline = Instant::now() + Duration::from_secs(30);
    while client().get(&node_metrics).send().is_err() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let cfg = dir.path().join("crest.toml");
    std::fs::write(
        &cfg,
        format!(
            "[[scrape]]\njob_name = \"node\"\ntargets = [\"127.0.0.1:{node}\"]\ninterval = \"1s\"\n"
        ),
    )
    .expect("config");
    let s = start(
        &dir.path().join("crest"),
        &["--config", cfg.to_str().expect("utf-8")],
        &[],
    );
    let target = format!("127.0.0.1:{node}");
    let deadline = Instant::now() + Duration::from_secs(60);
    let up = loop {
        let have = sql(&s, None, "SHOW TABLES")
            .iter()
            .any(|r| r["table_name"] == "node_cpu_seconds_total");
        let up = if have {
            sql(
                &s,
                None,
                "SELECT job, instance, count(*) AS n, min(value) AS lo FROM up GROUP BY job, instance",
            )
        } else {
            Vec::new()
        };
        if up.first().is_some_and(|r| r["n"].as_i64() >= Some(3)) || Instant::now() > deadline {
            break up;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let log = std::fs::read_to_string(dir.path().join("node.log")).unwrap_or_default();
    assert_eq!(up.len(), 1, "{up:?}; node-exporter log:\n{log}");
    assert_eq!(up[0]["job"], "node");
    assert_eq!(up[0]["instance"], target.as_str());
    assert_eq!(up[0]["lo"], 1.0, "{up:?}");
    // Hundreds of samples a scrape, and as many rows per scrape as Crest says it scraped.
    let scraped = sql(
        &s,
        None,
        "SELECT min(value) AS lo FROM scrape_samples_scraped WHERE job = 'node'",
    );
    assert!(scraped[0]["lo"].as_f64() > Some(100.0), "{scraped:?}");
    let dur = sql(
        &s,
        None,
        "SELECT max(value) AS hi FROM scrape_duration_seconds WHERE job = 'node'",
    );
    assert!(
        dur[0]["hi"].as_f64().is_some_and(|d| d > 0.0 && d < 1.0),
        "{dur:?}"
    );
    // Counters keep their labels; every CPU reports several modes, never decreasing.
    let cpu = sql(
        &s,
        None,
        "SELECT cpu, mode, min(value) AS lo, max(value) AS hi, count(*) AS n FROM node_cpu_seconds_total \
         WHERE job = 'node' GROUP BY cpu, mode ORDER BY cpu, mode",
    );
    let modes: std::collections::BTreeSet<&str> =
        cpu.iter().filter_map(|r| r["mode"].as_str()).collect();
    assert!(modes.contains("idle") && modes.contains("user"), "{cpu:?}");
    assert!(
        cpu.iter().all(|r| r["lo"].as_f64() <= r["hi"].as_f64()),
        "{cpu:?}"
    );
    // A gauge equals what node-exporter serves right now, within what changes in a second.
    let body = client()
        .get(format!("http://{target}/metrics"))
        .send()
        .and_then(|r| r.text())
        .expect("node-exporter metrics");
    let total = metric(&body, "node_memory_MemTotal_bytes");
    assert!(total > 0.0, "no MemTotal in node-exporter output");
    let stored = sql(
        &s,
        None,
        "SELECT max(value) AS v FROM \"node_memory_MemTotal_bytes\" WHERE job = 'node'",
    );
    assert_eq!(stored[0]["v"].as_f64(), Some(total), "{stored:?}");
}
