//! Starts and stops the real binary.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub struct Server {
    pub child: Child,
    pub base: String,
    pub stderr: std::sync::Arc<std::sync::Mutex<String>>,
    /// The OTLP/gRPC listener's address (an ephemeral port unless a test chose one).
    pub grpc: Option<String>,
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_crest")
}

/// Starts `crest serve` on an ephemeral loopback port and waits for it to listen.
pub fn start(data_dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Server {
    try_start(data_dir, extra, env).unwrap_or_else(|e| panic!("server did not start: {e}"))
}

/// Like [`start`], but returns the server's stderr if it exits instead of listening.
pub fn try_start(data_dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Result<Server, String> {
    let mut cmd = Command::new(bin());
    cmd.args(["serve", "--data-dir"])
        .arg(data_dir)
        .args(["--listen", "127.0.0.1:0"])
        .args(extra);
    // Crest's own metrics would add tables and WAL records the tests do not expect (a test
    // may turn them on through `env`).
    cmd.env_remove("CREST_ADMIN_TOKEN")
        .env("CREST_LOG", "info")
        .env("CREST_SELF_MONITORING_INTERVAL", "0s")
        .env("CREST_OTLP_GRPC_LISTEN", "127.0.0.1:0");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn crest");
    let stdout = child.stdout.take().expect("stdout");
    let stderr = child.stderr.take().expect("stderr");
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let sink = std::sync::Arc::clone(&log);
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let mut l = sink.lock().expect("log");
            l.push_str(&line);
            l.push('\n');
        }
    });
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut grpc = None;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(addr) = line.strip_prefix("crest OTLP/gRPC listening on ") {
                grpc = Some(addr.to_string());
            }
            if let Some(addr) = line.strip_prefix("crest listening on ") {
                let _ = tx.send((addr.to_string(), grpc.take()));
            }
        }
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok((base, grpc)) => Ok(Server {
            child,
            base,
            stderr: log,
            grpc,
        }),
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            std::thread::sleep(Duration::from_millis(200));
            Err(log.lock().expect("log").clone())
        }
    }
}

impl Server {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// SIGTERM, and the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let status = wait_timeout(&mut self.child, Duration::from_secs(60));
        std::mem::forget(self);
        status
    }

    /// kill -9.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::mem::forget(self);
    }

    /// Waits for the process to exit by itself (e.g. at a failpoint).
    pub fn wait_exit(mut self) -> (std::process::ExitStatus, String) {
        let status = wait_timeout(&mut self.child, Duration::from_secs(60));
        std::thread::sleep(Duration::from_millis(100));
        let log = self.stderr.lock().expect("log").clone();
        std::mem::forget(self);
        (status, log)
    }
}

fn wait_timeout(child: &mut Child, d: Duration) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + d;
    loop {
        if let Ok(Some(s)) = child.try_wait() {
            return s;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            return child.wait().expect("wait");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the binary with `toml` as its config file (`dir/crest.toml`) on the data directory
/// `dir/data`, plus `extra` flags.
pub fn start_with_config(dir: &Path, toml: &str, extra: &[&str]) -> Server {
    let cfg = dir.join("crest.toml");
    std::fs::write(&cfg, toml).expect("config");
    let cfg = cfg.to_str().expect("utf-8 path");
    let mut args = vec!["--config", cfg];
    args.extend_from_slice(extra);
    start(&dir.join("data"), &args, &[])
}

/// Runs `crest loadgen --url <server> <args>`; it must succeed. Returns its JSON summary.
pub fn loadgen(s: &Server, args: &[&str]) -> serde_json::Value {
    let out = Command::new(bin())
        .args(["loadgen", "--url", &s.base])
        .args(args)
        .output()
        .expect("loadgen");
    assert!(
        out.status.success(),
        "loadgen {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("loadgen summary")
}

pub fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client")
}

/// The value of the unlabelled metric `name` in the server's own `/metrics`; fails the test,
/// showing the page, if it is not there.
pub fn server_metric(s: &Server, name: &str) -> f64 {
    let text = client()
        .get(s.url("/metrics"))
        .send()
        .and_then(|r| r.text())
        .expect("metrics");
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} is not in /metrics:\n{text}"))
}

/// Writes line protocol; returns the status and body.
pub fn write_lp(s: &Server, token: Option<&str>, body: &str) -> (u16, String) {
    let mut req = client()
        .post(s.url("/api/v2/write?bucket=b&precision=ns"))
        .body(body.to_string());
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().expect("send");
    (r.status().as_u16(), r.text().unwrap_or_default())
}

/// A snappy block whose header claims `len` decoded bytes, followed by a few literal bytes: a
/// decompression bomb that must be refused before anything is allocated.
pub fn snappy_length_claim(len: u64) -> Vec<u8> {
    let mut out = Vec::new();
    let mut n = len;
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
    out.extend_from_slice(&[0; 16]);
    out
}

/// Runs SQL and returns the JSON rows.
pub fn sql(s: &Server, token: Option<&str>, q: &str) -> Vec<serde_json::Value> {
    let mut req = client().post(s.url("/api/v1/sql")).body(q.to_string());
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().expect("send");
    let status = r.status();
    let text = r.text().expect("text");
    assert!(status.is_success(), "{q}: {status} {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{q}: {e}: {text}"))
}

/// Sends `method path` with an optional bearer token and JSON body; returns the status and the
/// body as JSON (or as a JSON string when it is not JSON).
pub fn call(
    s: &Server,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> (u16, serde_json::Value) {
    let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut req = client().request(m, s.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    let r = req.send().expect("send");
    let status = r.status().as_u16();
    let text = r.text().expect("text");
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    )
}

/// Runs `crest simulate` against `s` with `args` (plus `--speed 0`) and fails the test if it
/// fails.
pub fn simulate(s: &Server, token: Option<&str>, args: &[&str]) {
    let mut cmd = Command::new(bin());
    cmd.args(["simulate", "--url", &s.base, "--speed", "0"])
        .args(args)
        .env_remove("CREST_TOKEN");
    if let Some(t) = token {
        cmd.args(["--token", t]);
    }
    let out = cmd.output().expect("run crest simulate");
    assert!(
        out.status.success(),
        "crest simulate {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
