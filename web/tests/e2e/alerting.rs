//! Alerting end to end: the real binary evaluates SQL rules and delivers Alertmanager v4
//! webhooks to a sink in this test (a tiny HTTP server on 127.0.0.1:0). Covers the payload
//! schema, group_wait/group_interval/repeat_interval, the HMAC signature, A1 (receiver answering
//! 503, then down, then back), A3 (kill -9 during `for` and during delivery), the SSRF refusal,
//! silences, load errors and `crest alerts test`.

use super::harness::{Server, bin, client, start, try_start, write_lp};
use hmac::{KeyInit, Mac};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const SECRET: &str = "sink-secret";

/// What the sink answers.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Status(u16),
    /// Answer 503 to the next n requests, then stop listening (the receiver goes down).
    FailThenDown(usize),
    /// Hold the request without answering until the mode changes.
    Hang,
}

#[derive(Debug, Clone)]
struct Received {
    at_ms: i64,
    body: Value,
    raw: Vec<u8>,
    signature: Option<String>,
    answered: u16,
}

struct Sink {
    port: u16,
    mode: Arc<Mutex<Mode>>,
    got: Arc<Mutex<Vec<Received>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    hits: Arc<AtomicUsize>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Sink {
    fn start(port: u16, mode: Mode) -> Sink {
        let mut s = Sink {
            port,
            mode: Arc::new(Mutex::new(mode)),
            got: Arc::default(),
            stop: Arc::new(AtomicBool::new(false)),
            thread: None,
            hits: Arc::default(),
        };
        s.listen();
        s
    }

    fn listen(&mut self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).expect("bind sink");
        self.port = listener.local_addr().expect("addr").port();
        self.stop.store(false, Ordering::SeqCst);
        let (mode, got, stop, hits) = (
            Arc::clone(&self.mode),
            Arc::clone(&self.got),
            Arc::clone(&self.stop),
            Arc::clone(&self.hits),
        );
        self.thread = Some(std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut conn) = conn else { continue };
                let Some((raw, signature)) = read_request(&mut conn) else {
                    continue;
                };
                let n = hits.fetch_add(1, Ordering::SeqCst);
                let m = *mode.lock().expect("mode");
                let body: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
                let mut rec = Received {
                    at_ms: now_ms(),
                    body,
                    raw,
                    signature,
                    answered: 0,
                };
                let status = match m {
                    Mode::Status(s) => s,
                    Mode::FailThenDown(k) => {
                        if n + 1 >= k {
                            stop.store(true, Ordering::SeqCst);
                        }
                        503
                    }
                    Mode::Hang => {
                        // Recorded as unanswered; keep the connection open until the test
                        // changes the mode, then drop it without an answer.
                        got.lock().expect("got").push(rec.clone());
                        let deadline = Instant::now() + Duration::from_secs(60);
                        while *mode.lock().expect("mode") == Mode::Hang && Instant::now() < deadline
                        {
                            std::thread::sleep(Duration::from_millis(20));
                        }
                        continue;
                    }
                };
                rec.answered = status;
                got.lock().expect("got").push(rec);
                {
                    let _ = write!(
                        conn,
                        "HTTP/1.1 {status} X\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
                    );
                }
                if stop.load(Ordering::SeqCst) {
                    break;
                }
            }
        }));
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    /// Stops listening (the port is then refused) and waits for the thread.
    fn down(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    fn set(&self, m: Mode) {
        *self.mode.lock().expect("mode") = m;
    }

    fn received(&self) -> Vec<Received> {
        self.got.lock().expect("got").clone()
    }

    /// Waits until `pred` holds on what was received (bounded).
    fn wait_for(&self, what: &str, pred: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let r = self.received();
            if pred(&r) {
                return r;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {r:#?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.set(Mode::Status(200));
        self.down();
    }
}

fn read_request(conn: &mut TcpStream) -> Option<(Vec<u8>, Option<String>)> {
    conn.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut r = BufReader::new(conn.try_clone().ok()?);
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    if !line.starts_with("POST") {
        return None;
    }
    let mut len = 0usize;
    let mut sig = None;
    loop {
        let mut h = String::new();
        r.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        let k = k.trim().to_ascii_lowercase();
        if k == "content-length" {
            len = v.trim().parse().ok()?;
        } else if k == "x-crest-signature" {
            sig = Some(v.trim().to_string());
        }
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    Some((body, sig))
}

/// A rule firing for every `probe` series whose latest `v` is above 10.
fn rules_file(dir: &Path, for_: &str) -> PathBuf {
    let p = dir.join("rules.yml");
    std::fs::write(
        &p,
        format!(
            r#"groups:
  - name: e2e
    interval: 500ms
    rules:
      - alert: ProbeHigh
        expr: |
          SELECT service, value FROM (
            SELECT service, v AS value,
                   row_number() OVER (PARTITION BY service ORDER BY time DESC) AS rn
            FROM probe WHERE time <= $__now
          ) WHERE rn = 1 AND value > 10
        for: {for_}
        labels:
          severity: critical
        annotations:
          summary: "{{{{ $labels.service }}}} probe at {{{{ $value }}}}"
          runbook_url: https://runbooks.example/probe
"#
        ),
    )
    .expect("write rules");
    p
}

fn am_file(dir: &Path, url: &str, timers: (&str, &str, &str)) -> PathBuf {
    let p = dir.join("am.yml");
    std::fs::write(
        &p,
        format!(
            r#"route:
  receiver: sink
  group_by: [alertname]
  group_wait: {}
  group_interval: {}
  repeat_interval: {}
receivers:
  - name: sink
    webhook_configs:
      - url: {url}
        send_resolved: true
        hmac_secret: {SECRET}
"#,
            timers.0, timers.1, timers.2
        ),
    )
    .expect("write am config");
    p
}

fn serve(data: &Path, rules: &Path, am: &Path) -> Server {
    start(
        data,
        &[
            "--rules",
            rules.to_str().expect("utf8"),
            "--alertmanager-config",
            am.to_str().expect("utf8"),
            "--webhook-allow",
            "127.0.0.1/32",
        ],
        &[],
    )
}

fn set_probe(s: &Server, service: &str, v: f64) {
    let ns = now_ms() as i128 * 1_000_000;
    let (st, body) = write_lp(s, None, &format!("probe,service={service} v={v} {ns}\n"));
    assert_eq!(st, 204, "{body}");
}

fn get(s: &Server, path: &str) -> Value {
    let r = client().get(s.url(path)).send().expect("get");
    assert!(r.status().is_success(), "{path}: {}", r.status());
    r.json().expect("json")
}

fn alerts(s: &Server) -> Vec<Value> {
    get(s, "/api/v1/alerts")["data"]["alerts"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn evaluations(s: &Server) -> u64 {
    get(s, "/api/v1/alerts")["data"]["evaluations"]
        .as_u64()
        .unwrap_or(0)
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn firing_count(r: &[Received]) -> usize {
    r.iter().filter(|x| x.body["status"] == "firing").count()
}

fn ms(t: &Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(t.as_str().expect("time string"))
        .expect("rfc3339")
        .timestamp_millis()
}

#[test]
fn webhooks_follow_alertmanager_schema_timers_and_signature() {
    let dir = tempfile::tempdir().expect("tmp");
    let sink = Sink::start(0, Mode::Status(200));
    let rules = rules_file(dir.path(), "0s");
    let am = am_file(dir.path(), &sink.url(), ("1s", "2s", "4s"));
    let s = serve(&dir.path().join("data"), &rules, &am);
    set_probe(&s, "checkout", 50.0);

    // 1: group_wait after the alert fired, one firing alert.
    let r = sink.wait_for("first notification", |r| !r.is_empty());
    let first = &r[0];
    let b = &first.body;
    for k in [
        "version",
        "groupKey",
        "truncatedAlerts",
        "status",
        "receiver",
        "groupLabels",
        "commonLabels",
        "commonAnnotations",
        "externalURL",
        "alerts",
    ] {
        assert!(b.get(k).is_some(), "payload lacks {k}: {b}");
    }
    assert_eq!(b["version"], "4");
    assert_eq!(b["status"], "firing");
    assert_eq!(b["receiver"], "sink");
    assert_eq!(
        b["groupLabels"],
        serde_json::json!({"alertname": "ProbeHigh"})
    );
    assert_eq!(b["truncatedAlerts"], 0);
    assert!(
        b["externalURL"]
            .as_str()
            .expect("url")
            .starts_with("http://127.0.0.1:")
    );
    let a = &b["alerts"][0];
    for k in [
        "status",
        "labels",
        "annotations",
        "startsAt",
        "endsAt",
        "generatorURL",
        "fingerprint",
    ] {
        assert!(a.get(k).is_some(), "alert lacks {k}: {a}");
    }
    assert_eq!(a["labels"]["service"], "checkout");
    assert_eq!(a["labels"]["severity"], "critical");
    assert_eq!(a["annotations"]["summary"], "checkout probe at 50");
    assert_eq!(a["endsAt"], "0001-01-01T00:00:00Z");
    assert_eq!(a["fingerprint"].as_str().expect("fp").len(), 16);
    assert!(
        first.at_ms - ms(&a["startsAt"]) >= 900,
        "sent before group_wait: startsAt {} received {}",
        a["startsAt"],
        first.at_ms
    );

    // The signature verifies with the secret, and not with another one.
    let sig = first.signature.clone().expect("signature header");
    let mut mac =
        <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(SECRET.as_bytes()).expect("key");
    mac.update(&first.raw);
    assert_eq!(
        sig,
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    );
    let mut wrong = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(b"other").expect("key");
    wrong.update(&first.raw);
    assert_ne!(
        sig,
        format!("sha256={}", hex::encode(wrong.finalize().into_bytes()))
    );

    // 2: a second alert joins the group; it goes out at a group_interval tick, not at once.
    set_probe(&s, "search", 70.0);
    let r = sink.wait_for("second notification", |r| r.len() >= 2);
    assert_eq!(
        r[1].body["alerts"].as_array().map(Vec::len),
        Some(2),
        "{}",
        r[1].body
    );
    assert!(
        r[1].at_ms - r[0].at_ms >= 1_900,
        "group_interval (2s) not held: {} ms",
        r[1].at_ms - r[0].at_ms
    );
    assert_eq!(r[1].body["groupKey"], r[0].body["groupKey"]);

    // 3: nothing changes: the same two alerts again only after repeat_interval.
    let r = sink.wait_for("repeat", |r| r.len() >= 3);
    assert_eq!(r[2].body["alerts"].as_array().map(Vec::len), Some(2));
    assert!(
        r[2].at_ms - r[1].at_ms >= 3_900,
        "repeat_interval (4s) not held: {} ms",
        r[2].at_ms - r[1].at_ms
    );

    // 4: both resolve: one resolved notification with endsAt set.
    set_probe(&s, "checkout", 1.0);
    set_probe(&s, "search", 1.0);
    let r = sink.wait_for("resolved", |r| {
        r.iter().any(|x| x.body["status"] == "resolved")
    });
    let res = r
        .iter()
        .find(|x| x.body["status"] == "resolved")
        .expect("resolved");
    for a in res.body["alerts"].as_array().expect("alerts") {
        assert_eq!(a["status"], "resolved");
        assert_ne!(a["endsAt"], "0001-01-01T00:00:00Z");
    }
    // History lists what was delivered.
    let h = get(&s, "/api/v1/alerts/notifications");
    assert!(
        h["data"]["history"]
            .as_array()
            .is_some_and(|v| v.iter().all(|d| d["outcome"] == "delivered")),
        "{h}"
    );
}

#[test]
fn a1_receiver_503_then_down_then_back_gets_it_once_more_at_most() {
    let dir = tempfile::tempdir().expect("tmp");
    // Two 503s, then the port closes.
    let mut sink = Sink::start(0, Mode::FailThenDown(2));
    let rules = rules_file(dir.path(), "0s");
    let am = am_file(dir.path(), &sink.url(), ("500ms", "1s", "1h"));
    let s = serve(&dir.path().join("data"), &rules, &am);
    set_probe(&s, "checkout", 50.0);
    sink.wait_for("two 503s", |r| r.len() >= 2);
    sink.down();
    // Down for a few retries: connection refused.
    let hits = sink.hits.load(Ordering::SeqCst);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(sink.hits.load(Ordering::SeqCst), hits);
    sink.set(Mode::Status(200));
    sink.listen();
    let r = sink.wait_for("delivery after recovery", |r| {
        r.iter().any(|x| x.answered == 200)
    });
    assert!(r[..2].iter().all(|x| x.answered == 503));
    // Let several group intervals pass, then count what the receiver accepted.
    let e = evaluations(&s);
    wait_until("more evaluations", || evaluations(&s) >= e + 8);
    let r = sink.received();
    let accepted = r
        .iter()
        .filter(|x| x.answered == 200 && x.body["status"] == "firing")
        .count();
    assert!(
        (1..=2).contains(&accepted),
        "A1: {accepted} firing notifications accepted after the outage (at most one duplicate allowed)"
    );
    let h = get(&s, "/api/v1/alerts/notifications");
    let first = &h["data"]["history"].as_array().expect("history")[0];
    assert_eq!(first["outcome"], "delivered", "{h}");
    assert!(first["attempts"].as_u64().unwrap_or(0) >= 3, "{h}");
}

#[test]
fn a3_kill9_during_for_and_during_delivery_neither_drops_nor_repeats() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    let sink = Sink::start(0, Mode::Hang);
    let rules = rules_file(dir.path(), "4s");
    let am = am_file(dir.path(), &sink.url(), ("500ms", "1s", "1h"));

    // Kill -9 while the alert is pending.
    let s = serve(&data, &rules, &am);
    set_probe(&s, "checkout", 50.0);
    let mut active_at = Value::Null;
    wait_until("pending", || {
        let a = alerts(&s);
        match a.first() {
            Some(x) if x["state"] == "pending" => {
                active_at = x["activeAt"].clone();
                true
            }
            _ => false,
        }
    });
    s.kill9();
    let s = serve(&data, &rules, &am);
    // The `for` clock kept running across the restart: same activeAt, then firing.
    let mut fired = Value::Null;
    wait_until("firing after restart", || {
        let a = alerts(&s);
        match a.first() {
            Some(x) if x["state"] == "firing" => {
                fired = x.clone();
                true
            }
            Some(x) => {
                assert_eq!(x["activeAt"], active_at, "pending progress lost: {x}");
                false
            }
            None => false,
        }
    });
    assert_eq!(fired["activeAt"], active_at, "{fired}");
    assert!(ms(&fired["firedAt"]) - ms(&active_at) >= 4_000, "{fired}");

    // Kill -9 while the receiver holds the notification without answering.
    sink.wait_for("notification in flight", |r| !r.is_empty());
    s.kill9();
    sink.set(Mode::Status(200));
    let s = serve(&data, &rules, &am);
    let r = sink.wait_for("redelivery", |r| r.iter().any(|x| x.answered == 200));
    assert_eq!(r.iter().filter(|x| x.answered == 200).count(), 1, "{r:#?}");
    wait_until("delivery recorded", || {
        get(&s, "/api/v1/alerts/notifications")["data"]["log"]
            .as_object()
            .is_some_and(|m| !m.is_empty())
    });

    // Kill -9 after delivery: the restart must not send the firing again.
    s.kill9();
    let s = serve(&data, &rules, &am);
    let e = evaluations(&s);
    wait_until("evaluations after restart", || evaluations(&s) >= e + 8);
    let r = sink.received();
    assert_eq!(
        firing_count(&r),
        2,
        "exactly the unanswered one and its redelivery: {r:#?}"
    );
    let a = alerts(&s);
    assert_eq!(a.len(), 1);
    assert_eq!(a[0]["state"], "firing");
    assert_eq!(
        a[0]["firedAt"], fired["firedAt"],
        "firing restarted: {}",
        a[0]
    );
}

#[test]
fn private_targets_refused_bad_rules_reported_silences_and_replay() {
    let dir = tempfile::tempdir().expect("tmp");
    let rules = rules_file(dir.path(), "0s");
    // SSRF: a private and a loopback target, not allow-listed: start-up refuses with the reason.
    for url in [
        "http://10.1.2.3/hook",
        "http://127.0.0.1:9/hook",
        "http://169.254.169.254/x",
    ] {
        let am = am_file(dir.path(), url, ("1s", "1s", "1h"));
        let err = try_start(
            &dir.path().join("data"),
            &[
                "--rules",
                rules.to_str().expect("utf8"),
                "--alertmanager-config",
                am.to_str().expect("utf8"),
            ],
            &[],
        )
        .err()
        .unwrap_or_else(|| panic!("{url} accepted"));
        let host = url
            .trim_start_matches("http://")
            .split(['/', ':'])
            .next()
            .expect("host");
        assert!(
            err.contains(host) && err.contains("--webhook-allow"),
            "{url}: {err}"
        );
    }

    // A broken rule file next to a good one: the good one loads, the broken one is reported
    // with the line of the rule at fault.
    let rdir = dir.path().join("rules");
    std::fs::create_dir_all(&rdir).expect("mkdir");
    std::fs::copy(&rules, rdir.join("good.yml")).expect("copy");
    let broken = rdir.join("broken.yml");
    std::fs::write(&broken, "groups:\n  - name: b\n    rules:\n      - alert: X\n        expr: SELECT 1\n        for: soon\n").expect("w");
    let glob = format!("{}/*.yml", rdir.display());
    let s = start(&dir.path().join("data"), &["--rules", &glob], &[]);
    let r = get(&s, "/api/v1/rules");
    let errs = r["data"]["loadErrors"].as_array().expect("loadErrors");
    assert_eq!(errs.len(), 1, "{r}");
    assert!(
        errs[0]["file"]
            .as_str()
            .expect("file")
            .ends_with("broken.yml")
    );
    assert_eq!(errs[0]["line"], 4, "{r}");
    assert!(
        errs[0]["error"]
            .as_str()
            .expect("error")
            .contains("broken.yml:4:"),
        "{r}"
    );
    assert_eq!(r["data"]["groups"].as_array().map(Vec::len), Some(1));

    // Silences: create, see it mute the alert, expire it.
    set_probe(&s, "checkout", 50.0);
    wait_until("firing", || {
        alerts(&s).first().is_some_and(|a| a["state"] == "firing")
    });
    let resp = client()
        .post(s.url("/api/v1/silences"))
        .json(&serde_json::json!({
            "matchers": [{"name": "service", "value": "checkout", "isRegex": false, "isEqual": true}],
            "duration": "1h",
            "createdBy": "e2e",
            "comment": "maintenance"
        }))
        .send()
        .expect("post");
    assert_eq!(resp.status().as_u16(), 200);
    let id = resp.json::<Value>().expect("json")["silenceID"]
        .as_str()
        .expect("id")
        .to_string();
    assert_eq!(alerts(&s)[0]["silencedBy"], serde_json::json!([id]));
    let list = get(&s, "/api/v1/silences");
    assert_eq!(list[0]["status"]["state"], "active");
    let del = client()
        .delete(s.url(&format!("/api/v1/silences/{id}")))
        .send()
        .expect("delete");
    assert_eq!(del.status().as_u16(), 200);
    assert_eq!(alerts(&s)[0]["silencedBy"], serde_json::json!([]));
    assert_eq!(get(&s, "/api/v1/silences")[0]["status"]["state"], "expired");
    let bad = client()
        .post(s.url("/api/v1/silences"))
        .json(&serde_json::json!({"matchers": [], "duration": "1h"}))
        .send()
        .expect("post");
    assert_eq!(bad.status().as_u16(), 400);

    // `crest alerts test`: replay over written history. probe for "replay" is 50 from t0+60s to
    // t0+180s, else 1; with `for: 0s` and a 30 s step it fires at t0+60s and resolves at t0+180s.
    let t0 = (now_ms() / 1000 - 3_600) * 1000;
    let mut lp = String::new();
    for i in 0..10 {
        let t = t0 + i * 30_000;
        let v = if (60_000..180_000).contains(&(i * 30_000)) {
            50
        } else {
            1
        };
        lp.push_str(&format!(
            "probe,service=replay v={v} {}\n",
            t as i128 * 1_000_000
        ));
    }
    let (st, body) = write_lp(&s, None, &lp);
    assert_eq!(st, 204, "{body}");
    // The replay only sees the "replay" series up to each step, so "checkout" (written now) is
    // absent from the past.
    let out = std::process::Command::new(bin())
        .args([
            "alerts",
            "test",
            "ProbeHigh",
            "--rules",
            rules.to_str().expect("utf8"),
            "--from",
            &t0.to_string(),
            "--to",
            &(t0 + 270_000).to_string(),
            "--step",
            "30s",
            "--url",
            &s.base,
        ])
        .output()
        .expect("run crest alerts test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("service=\"replay\""))
        .collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    let at = |l: &str| {
        chrono::DateTime::parse_from_rfc3339(l.split('\t').next().expect("time"))
            .expect("time")
            .timestamp_millis()
    };
    assert!(
        lines[0].contains("\tfiring\t") && at(lines[0]) == t0 + 60_000,
        "{stdout}"
    );
    assert!(
        lines[1].contains("\tresolved\t") && at(lines[1]) == t0 + 180_000,
        "{stdout}"
    );
}

/// The shipped festival rules run against tables in `crest simulate`'s shape: every rule is
/// healthy, the burning service goes pending on all three, the healthy one stays quiet.
#[test]
fn shipped_festival_rules_run_and_catch_a_burn() {
    let dir = tempfile::tempdir().expect("tmp");
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules/festival.yml");
    let s = start(
        &dir.path().join("data"),
        &[
            "--rules",
            rules.to_str().expect("utf8"),
            "--alert-eval-interval",
            "500ms",
        ],
        &[],
    );
    // An hour of one-minute counters: "payment" fails 5 % and answers half its requests over
    // 200 ms; "feed" fails nothing and is fast.
    let now_s = now_ms() / 1000;
    let mut lp = String::new();
    for i in 0..=60i64 {
        let t = (now_s - 3_600 + i * 60) as i128 * 1_000_000_000;
        for (svc, bad_frac, slow_frac) in [("payment", 0.05, 0.5), ("feed", 0.0, 0.0)] {
            let total = 100.0 * (i * 60) as f64;
            let tags = format!(
                "service={svc},interface=x,instance={svc}-1,cluster=c1,app_id=a,synthetic=false"
            );
            lp.push_str(&format!(
                "http_requests_total,{tags},code=200 value={} {t}\n",
                total * (1.0 - bad_frac)
            ));
            lp.push_str(&format!(
                "http_requests_total,{tags},code=503 value={} {t}\n",
                total * bad_frac
            ));
            let btags = format!("service={svc},interface=x,cluster=c1");
            lp.push_str(&format!(
                "http_request_duration_seconds_bucket,{btags},le=0.2 value={} {t}\n",
                total * (1.0 - slow_frac)
            ));
            lp.push_str(&format!(
                "http_request_duration_seconds_bucket,{btags},le=+Inf value={total} {t}\n"
            ));
        }
    }
    let (st, body) = write_lp(&s, None, &lp);
    assert_eq!(st, 204, "{body}");
    let mut last = Value::Null;
    wait_until("every festival rule evaluated with payment active", || {
        let r = get(&s, "/api/v1/rules");
        last = r.clone();
        let rules: Vec<Value> = r["data"]["groups"][0]["rules"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        rules.len() == 3
            && rules.iter().all(|x| {
                x["health"] == "ok"
                    && x["alerts"]
                        .as_array()
                        .is_some_and(|a| a.len() == 1 && a[0]["labels"]["service"] == "payment")
            })
    });
    for x in last["data"]["groups"][0]["rules"]
        .as_array()
        .expect("rules")
    {
        assert!(
            x["alerts"][0]["value"].as_f64().expect("value") > 14.4,
            "{x}"
        );
    }
}

/// Crest forwards to Debian's real Alertmanager (`POST /api/v2/alerts`, as Prometheus does), and
/// Alertmanager delivers its own v4 webhook to the sink: firing, then resolved.
#[test]
fn forwards_to_a_real_alertmanager_which_delivers_its_own_webhook() {
    if !super::interop::required("prometheus-alertmanager") {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let sink = Sink::start(0, Mode::Status(200));
    let am_port = super::interop::free_port();
    let am_cfg = dir.path().join("alertmanager-real.yml");
    std::fs::write(
        &am_cfg,
        format!(
            "route:\n  receiver: sink\n  group_by: [alertname]\n  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\n\
             receivers:\n  - name: sink\n    webhook_configs:\n      - url: http://127.0.0.1:{}/from-alertmanager\n        send_resolved: true\n",
            sink.port
        ),
    )
    .expect("am config");
    let mut am = std::process::Command::new("prometheus-alertmanager")
        .arg(format!("--config.file={}", am_cfg.display()))
        .arg(format!(
            "--storage.path={}",
            dir.path().join("am-data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{am_port}"))
        .arg("--cluster.listen-address=")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start alertmanager");
    let ready = format!("http://127.0.0.1:{am_port}/-/ready");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !client()
        .get(&ready)
        .send()
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(Instant::now() < deadline, "alertmanager did not get ready");
        std::thread::sleep(Duration::from_millis(200));
    }
    // Crest's own routing sends everything to the forwarding receiver.
    let crest_am = dir.path().join("crest-am.yml");
    std::fs::write(
        &crest_am,
        format!(
            "route:\n  receiver: am\n  group_by: [alertname]\n  group_wait: 500ms\n  group_interval: 1s\n  repeat_interval: 1h\n\
             receivers:\n  - name: am\n    alertmanager_configs:\n      - url: http://127.0.0.1:{am_port}\n"
        ),
    )
    .expect("crest am config");
    let rules = rules_file(dir.path(), "0s");
    let s = serve(&dir.path().join("data"), &rules, &crest_am);
    set_probe(&s, "checkout", 50.0);
    let from_am = |status: &str| -> Option<Value> {
        sink.got
            .lock()
            .expect("got")
            .iter()
            .map(|r| r.body.clone())
            .find(|b| b["status"] == status)
    };
    let wait = |status: &str| -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(b) = from_am(status) {
                return b;
            }
            assert!(
                Instant::now() < deadline,
                "alertmanager never delivered a {status} webhook; crest deliveries: {}",
                get(&s, "/api/v1/alerts/notifications")
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    let firing = wait("firing");
    assert_eq!(firing["version"], "4");
    assert_eq!(
        firing["receiver"], "sink",
        "Alertmanager's own receiver: {firing}"
    );
    let alert = &firing["alerts"][0];
    assert_eq!(alert["labels"]["alertname"], "ProbeHigh");
    assert_eq!(alert["labels"]["service"], "checkout");
    assert_eq!(alert["labels"]["severity"], "critical");
    assert_eq!(alert["annotations"]["summary"], "checkout probe at 50");
    assert!(
        alert["generatorURL"]
            .as_str()
            .is_some_and(|u| u.starts_with("http://127.0.0.1")),
        "{alert}"
    );
    // The probe drops: Crest sends the resolution, Alertmanager passes it on.
    set_probe(&s, "checkout", 1.0);
    let resolved = wait("resolved");
    assert_eq!(resolved["alerts"][0]["labels"]["service"], "checkout");
    let _ = am.kill();
    let _ = am.wait();
}
