//! Prometheus scrape: the real binary scrapes a tiny exposition server given in its config.

use super::harness::{client, start};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const EXPOSITION: &str = "\
# HELP festival_requests_total Requests served.
# TYPE festival_requests_total counter
festival_requests_total{service=\"envelope-grab\",code=\"200\"} 1027
festival_requests_total{service=\"envelope-grab\",code=\"500\"} 3
# TYPE go_goroutines gauge
go_goroutines 42
# TYPE festival_temperature gauge
festival_temperature{job=\"exporter\",room=\"C:\\\\hall \\\"A\\\"\"} 21.5
# TYPE festival_latency_seconds histogram
festival_latency_seconds_bucket{le=\"0.1\"} 5
festival_latency_seconds_bucket{le=\"+Inf\"} 7
festival_latency_seconds_sum 0.9
festival_latency_seconds_count 7
";

/// An exposition with one good sample and one line that does not parse.
const PARTLY_BAD: &str = "broken_good_metric 1\nbroken_bad_metric{code=\"200\" 2\n";

/// Serves `body` on every connection until `stop` is set, then closes the listener.
fn serve_exposition(
    stop: Arc<AtomicBool>,
    body: &'static str,
) -> (String, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    listener.set_nonblocking(true).expect("nonblocking");
    let handle = std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            match listener.accept() {
                Ok((mut conn, _)) => {
                    let _ = conn.set_nonblocking(false);
                    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
                    let mut req = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                        match conn.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => req.extend_from_slice(&buf[..n]),
                        }
                    }
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = conn.write_all(head.as_bytes());
                    let _ = conn.write_all(body.as_bytes());
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    });
    (addr, handle)
}

/// Runs SQL; `None` while it fails (e.g. the table does not exist yet).
fn try_sql(base: &str, q: &str) -> Option<Vec<serde_json::Value>> {
    let r = client()
        .post(format!("{base}/api/v1/sql"))
        .body(q.to_string())
        .send()
        .ok()?;
    if !r.status().is_success() {
        return None;
    }
    serde_json::from_str(&r.text().ok()?).ok()
}

/// Polls `q` for up to 30 s until `ok` holds for its rows; returns them.
fn wait_for(
    base: &str,
    q: &str,
    ok: impl Fn(&[serde_json::Value]) -> bool,
) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let rows = try_sql(base, q);
        if let Some(rows) = &rows
            && ok(rows)
        {
            return rows.clone();
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting on {q}: last rows {rows:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn scrape_writes_samples_and_up() {
    let stop = Arc::new(AtomicBool::new(false));
    let (target, target_thread) = serve_exposition(Arc::clone(&stop), EXPOSITION);
    let (broken, broken_thread) = serve_exposition(Arc::clone(&stop), PARTLY_BAD);
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("crest.toml");
    std::fs::write(
        &cfg,
        format!(
            "[[scrape]]\njob_name = \"festival\"\ntargets = [\"{target}\"]\ninterval = \"1s\"\n\
             [[scrape.metric_relabel]]\nsource_labels = [\"__name__\"]\nregex = \"go_.*\"\naction = \"drop\"\n\
             [[scrape]]\njob_name = \"broken\"\ntargets = [\"{broken}\"]\ninterval = \"1s\"\n"
        ),
    )
    .expect("config");
    let data = dir.path().join("data");
    let s = start(&data, &["--config", cfg.to_str().expect("utf-8")], &[]);
    let base = s.base.clone();

    let rows = wait_for(
        &base,
        "SELECT job, instance, value FROM up WHERE job = 'festival' ORDER BY time DESC LIMIT 1",
        |rows| {
            rows.first()
                .is_some_and(|r| r["value"].as_f64() == Some(1.0))
        },
    );
    assert_eq!(rows[0]["instance"], target.as_str());

    let rows = wait_for(
        &base,
        "SELECT service, code, job, instance, value FROM festival_requests_total ORDER BY time DESC, code LIMIT 2",
        |rows| rows.len() == 2,
    );
    let mut by_code: Vec<(String, f64)> = rows
        .iter()
        .map(|r| {
            assert_eq!(r["service"], "envelope-grab", "{r}");
            assert_eq!(r["job"], "festival", "{r}");
            assert_eq!(r["instance"], target.as_str(), "{r}");
            (
                r["code"].as_str().expect("code").to_string(),
                r["value"].as_f64().expect("value"),
            )
        })
        .collect();
    by_code.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        by_code,
        [("200".to_string(), 1027.0), ("500".to_string(), 3.0)]
    );

    // The scraped `job` label is kept as `exported_job`; escapes in values are undone.
    let rows = wait_for(
        &base,
        "SELECT job, exported_job, room, value FROM festival_temperature LIMIT 1",
        |rows| !rows.is_empty(),
    );
    assert_eq!(rows[0]["job"], "festival");
    assert_eq!(rows[0]["exported_job"], "exporter");
    assert_eq!(rows[0]["room"], "C:\\hall \"A\"");
    assert_eq!(rows[0]["value"].as_f64(), Some(21.5));

    let rows = wait_for(
        &base,
        "SELECT le, value FROM festival_latency_seconds_bucket WHERE le = '+Inf' LIMIT 1",
        |rows| !rows.is_empty(),
    );
    assert_eq!(rows[0]["value"].as_f64(), Some(7.0));

    let rows = wait_for(
        &base,
        "SELECT value FROM scrape_samples_scraped WHERE job = 'festival' ORDER BY time DESC LIMIT 1",
        |rows| !rows.is_empty(),
    );
    // 2 requests + go_goroutines + temperature + 4 histogram series, counted before relabelling.
    assert_eq!(rows[0]["value"].as_f64(), Some(8.0));
    wait_for(
        &base,
        "SELECT value FROM scrape_duration_seconds WHERE job = 'festival' LIMIT 1",
        |rows| !rows.is_empty(),
    );
    // After relabelling: go_goroutines is dropped. The first scrape adds all 7 series, a later
    // one none.
    let rows = wait_for(
        &base,
        "SELECT value FROM scrape_samples_post_metric_relabeling WHERE job = 'festival' ORDER BY time DESC LIMIT 1",
        |rows| !rows.is_empty(),
    );
    assert_eq!(rows[0]["value"].as_f64(), Some(7.0));
    wait_for(
        &base,
        "SELECT value FROM scrape_series_added WHERE job = 'festival' ORDER BY time DESC LIMIT 1",
        |rows| {
            rows.first()
                .is_some_and(|r| r["value"].as_f64() == Some(0.0))
        },
    );
    let rows = wait_for(
        &base,
        "SELECT value FROM scrape_series_added WHERE job = 'festival' ORDER BY time LIMIT 1",
        |rows| !rows.is_empty(),
    );
    assert_eq!(rows[0]["value"].as_f64(), Some(7.0));

    // A partly unparseable exposition fails the whole scrape, as in Prometheus: `up` = 0 although
    // the target answers, and its good line is not kept either.
    let rows = wait_for(
        &base,
        "SELECT instance, value FROM up WHERE job = 'broken' ORDER BY time DESC LIMIT 1",
        |rows| !rows.is_empty(),
    );
    assert_eq!(rows[0]["instance"], broken.as_str());
    assert_eq!(rows[0]["value"].as_f64(), Some(0.0));
    let rows = wait_for(
        &base,
        "SELECT max(value) AS up, count(*) AS n FROM up WHERE job = 'broken'",
        |rows| !rows.is_empty(),
    );
    assert_eq!(rows[0]["up"].as_f64(), Some(0.0), "{rows:?}");
    assert!(
        try_sql(&base, "SELECT * FROM broken_good_metric").is_none_or(|rows| rows.is_empty()),
        "a failed scrape must not keep its good lines"
    );

    // The drop rule removed go_goroutines: no such table was ever written.
    assert!(
        try_sql(&base, "SELECT * FROM go_goroutines").is_none_or(|rows| rows.is_empty()),
        "go_goroutines should have been dropped"
    );

    stop.store(true, Ordering::Relaxed);
    target_thread.join().expect("target thread");
    broken_thread.join().expect("broken target thread");
    wait_for(
        &base,
        "SELECT value FROM up WHERE job = 'festival' ORDER BY time DESC LIMIT 1",
        |rows| {
            rows.first()
                .is_some_and(|r| r["value"].as_f64() == Some(0.0))
        },
    );
    let status = s.terminate();
    assert!(status.success(), "{status:?}");
}
