//! The web UI in headless Chromium (Debian's chromium + chromedriver over WebDriver), against
//! a server filled by `crest simulate`: every page renders without console errors, a panel shows
//! what the panel API answers, changing the range refetches, the trace waterfall lists every
//! span in start order with correct nesting, the plan export downloads a file that parses, and
//! script payloads in labels, span attributes and milestone names never run (X3). A screenshot
//! of each page goes to `$CREST_ARTIFACTS` (default `target/ui-screenshots`).
//!
//! Skipped when chromium or chromedriver is missing, unless `CREST_INTEROP=1`.

use super::harness::{Server, client, simulate, start, write_lp};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Driver {
    child: Child,
    base: String,
    session: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = client()
            .delete(format!("{}/session/{}", self.base, self.session))
            .send();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    fn start(downloads: &Path) -> Driver {
        let port = super::interop::free_port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while client()
            .get(format!("{base}/status"))
            .send()
            .map_or(true, |r| !r.status().is_success())
        {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--disable-background-networking", "--disable-component-update", "--disable-sync",
                         "--no-first-run", "--window-size=1400,1000"],
                "prefs": {"download.default_directory": downloads.to_str().expect("utf8"),
                          "download.prompt_for_download": false}
            },
            "goog:loggingPrefs": {"browser": "ALL"}
        }}});
        let r: Value = client()
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .expect("new session")
            .json()
            .expect("json");
        let session = r["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {r}"))
            .to_string();
        Driver {
            child,
            base,
            session,
        }
    }

    fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut req = client().request(method, url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r: Value = req.send().expect("webdriver").json().expect("json");
        r["value"].clone()
    }

    fn go(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({ "url": url })));
    }

    fn script(&self, js: &str) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({ "script": js, "args": [] })),
        )
    }

    /// Waits until `js` (an expression) is truthy; returns its value.
    fn wait(&self, what: &str, js: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let v = self.script(&format!("return ({js});"));
            if !(v.is_null() || v == json!(false) || v == json!(0) || v == json!("")) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; page text: {}",
                self.script("return document.body.innerText;")
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits for hydration and for every "Loading…" to go.
    fn settle(&self) {
        self.wait("the page", "document.querySelector('nav.top') !== null");
        std::thread::sleep(Duration::from_millis(500));
        self.wait(
            "loading to finish",
            "document.querySelectorAll('.loading').length === 0",
        );
    }

    fn console_errors(&self) -> Vec<String> {
        let logs = self.call(
            reqwest::Method::POST,
            "/se/log",
            Some(json!({ "type": "browser" })),
        );
        logs.as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|l| l["level"] == "SEVERE")
            .map(|l| l["message"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    fn no_alert_open(&self) {
        let v = self.call(reqwest::Method::GET, "/alert/text", None);
        assert!(
            v.get("error").is_some_and(|e| e == "no such alert"),
            "a script payload ran and opened a dialog: {v}"
        );
    }

    fn screenshot(&self, dir: &Path, name: &str) {
        let v = self.call(reqwest::Method::GET, "/screenshot", None);
        if let Some(s) = v.as_str() {
            let _ = std::fs::create_dir_all(dir);
            let _ = std::fs::write(dir.join(format!("{name}.png")), base64_decode(s));
        }
    }
}

/// Minimal base64 decoding for screenshots (no extra dependency).
fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        })
    };
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes().filter_map(val) {
        acc = (acc << 6) | c;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

fn available() -> bool {
    let found = ["chromium", "chromedriver"].iter().all(|b| {
        Command::new(b)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
    });
    if std::env::var("CREST_INTEROP").is_ok_and(|v| v == "1") {
        assert!(
            found,
            "CREST_INTEROP=1 but chromium/chromedriver are missing"
        );
    }
    found
}

const XSS_LABEL: &str = "<script>window.__pwned=1;alert(1)</script>";
const XSS_NAME: &str = "<img src=x onerror=\"window.__pwned=2;alert(2)\">";

fn fill(s: &Server, dir: &Path) {
    // Three days of hourly history (enough for a plan), then two hours at one-minute steps.
    simulate(
        s,
        None,
        &[
            "--seed",
            "5",
            "--kickoff",
            "2026-01-01",
            "--start",
            "2026-01-17T00:00:00Z",
            "--until",
            "2026-01-20T09:59:00Z",
            "--backfill",
            "4d",
            "--step",
            "1h",
            "--no-traces",
            "--calendar-out",
            dir.join("cal0.json").to_str().expect("utf8"),
        ],
    );
    simulate(
        s,
        None,
        &[
            "--seed",
            "5",
            "--kickoff",
            "2026-01-01",
            "--start",
            "2026-01-20T10:00:00Z",
            "--backfill",
            "2h",
            "--step",
            "1m",
            "--traces-per-minute",
            "2",
            "--calendar-out",
            dir.join("cal.json").to_str().expect("utf8"),
        ],
    );
    // Payloads in a label, a span attribute and a milestone name.
    let (st, body) = write_lp(
        s,
        None,
        &format!(
            "http_requests_total,service=evil,interface=x,instance=i,cluster=c1,app_id={l},code=200 value=1 1768903200000000000\n\
             http_requests_total,service=evil,interface=x,instance=i,cluster=c1,app_id={l},code=200 value=5 1768903260000000000\n",
            l = XSS_LABEL
                .replace(' ', "\\ ")
                .replace(',', "\\,")
                .replace('=', "\\=")
        ),
    );
    assert_eq!(st, 204, "{body}");
    let span = json!({"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "evil"}}]},
        "scopeSpans": [{"spans": [{"traceId": "0102030405060708090a0b0c0d0e0f10", "spanId": "0102030405060708",
            "name": XSS_NAME, "kind": 2, "startTimeUnixNano": "1768903200000000000", "endTimeUnixNano": "1768903200500000000",
            "attributes": [{"key": "payload", "value": {"stringValue": XSS_LABEL}}]}]}]}]});
    let r = client()
        .post(s.url("/v1/traces"))
        .header("content-type", "application/json")
        .body(span.to_string())
        .send()
        .expect("otlp");
    assert!(r.status().is_success());
    let r = client()
        .post(s.url("/api/v1/milestones"))
        .json(
            &json!({"name": XSS_NAME, "kind": "rehearsal", "start": "2026-01-20T10:30:00Z",
                      "end": "2026-01-20T11:30:00Z", "drivers": {"multiplier": 1}}),
        )
        .send()
        .expect("milestone");
    assert_eq!(r.status().as_u16(), 201);
}

#[test]
fn every_page_renders_hydrates_and_shows_the_api_figures() {
    if !available() {
        eprintln!("skipping: chromium/chromedriver not installed");
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let downloads = dir.path().join("downloads");
    std::fs::create_dir_all(&downloads).expect("downloads");
    let shots = std::env::var("CREST_ARTIFACTS").map_or_else(
        |_| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../target/ui-screenshots"
            ))
        },
        PathBuf::from,
    );
    let dashboards = concat!(env!("CARGO_MANIFEST_DIR"), "/../dashboards");
    let s = start(&dir.path().join("data"), &["--dashboards", dashboards], &[]);
    fill(&s, dir.path());
    // The page itself is rendered on the server with a strict CSP.
    let r = client().get(s.url("/")).send().expect("page");
    let csp = r
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(csp.contains("script-src 'self' 'nonce-"), "{csp}");
    assert!(
        !csp.contains("'unsafe-eval'") && !csp.contains("script-src 'unsafe-inline'"),
        "{csp}"
    );
    let html = r.text().expect("html");
    assert!(
        html.contains("<nav class=\"top\""),
        "server-rendered: {html}"
    );

    let d = Driver::start(&downloads);
    let range = "from=2026-01-20T10:00:00Z&to=2026-01-20T12:00:00Z";
    for (name, path) in [
        ("overview", "/".to_string()),
        ("dashboards", "/dashboards".to_string()),
        ("festival-overview", format!("/d/festival-overview?{range}")),
        ("explore", "/explore".to_string()),
        ("traces", "/traces".to_string()),
        ("milestones", "/milestones".to_string()),
        ("alerts", "/alerts".to_string()),
    ] {
        d.go(&s.url(&path));
        d.settle();
        if name == "festival-overview" {
            d.wait(
                "every panel drawn",
                "document.querySelectorAll('.panel-body').length === document.querySelectorAll('section[data-panel]').length",
            );
        }
        d.screenshot(&shots, name);
        let errors = d.console_errors();
        assert!(errors.is_empty(), "{name}: console errors {errors:?}");
        d.no_alert_open();
    }

    // The overview lists the milestone whose name is a payload, as text.
    d.go(&s.url("/"));
    d.settle();
    let t = d.script("return document.getElementById('timeline').innerText;");
    assert!(t.as_str().unwrap_or_default().contains(XSS_NAME), "{t}");
    assert_eq!(
        d.script("return window.__pwned === undefined;"),
        json!(true)
    );

    // A panel shows the rows the panel API answers, and a new range refetches.
    let panel_rows = |from: &str| -> usize {
        let r: Value = client()
            .get(s.url(&format!(
                "/api/v1/dashboards/festival-overview/panels/11?from={from}&to=2026-01-20T12:00:00Z&width=600"
            )))
            .send()
            .expect("panel")
            .json()
            .expect("json");
        r["rows"].as_array().map_or(0, Vec::len)
    };
    for from in ["2026-01-20T10:00:00Z", "2026-01-20T11:30:00Z"] {
        d.go(&s.url(&format!(
            "/d/festival-overview?from={from}&to=2026-01-20T12:00:00Z"
        )));
        d.settle();
        let shown = d.wait(
            "the p99 table",
            "document.querySelector('section[data-panel=\"11\"] .panel-body') && document.querySelector('section[data-panel=\"11\"] .panel-body').getAttribute('data-rows')",
        );
        let want = panel_rows(from);
        assert_eq!(shown, json!(want.to_string()), "panel 11 from {from}");
        let cells = d.script(
            "return Array.from(document.querySelectorAll('section[data-panel=\"11\"] tbody tr td:first-child')).map(e => e.innerText);",
        );
        assert_eq!(cells.as_array().map(Vec::len), Some(want));
    }
    // The label payload (written at 10:00) is text in the app-id bars.
    d.go(&s.url(&format!("/d/festival-overview?{range}")));
    d.settle();
    let bars = d.wait(
        "the app bars",
        "document.querySelector('section[data-panel=\"9\"] .panel-body') && document.querySelector('section[data-panel=\"9\"]').innerText",
    );
    assert!(
        bars.as_str().unwrap_or_default().contains("<script>"),
        "{bars}"
    );
    d.no_alert_open();

    // Traces: search everything, open the payload trace and a simulated one.
    d.go(&s.url("/traces"));
    d.settle();
    d.script("const s = document.getElementById('t-range'); s.value = '1576800000'; s.dispatchEvent(new Event('change'));");
    d.script("document.getElementById('t-search').click();");
    d.wait(
        "results",
        "document.querySelectorAll('.trace-link').length > 1",
    );
    let ids = d.script(
        "return Array.from(document.querySelectorAll('.trace-link')).map(a => a.getAttribute('data-trace'));",
    );
    let ids: Vec<String> = ids
        .as_array()
        .expect("ids")
        .iter()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    let simulated = ids
        .iter()
        .find(|i| *i != "0102030405060708090a0b0c0d0e0f10")
        .expect("a simulated trace")
        .clone();
    d.script(&format!(
        "document.querySelector('.trace-link[data-trace=\"{simulated}\"]').click();"
    ));
    d.wait(
        "the waterfall",
        "document.querySelectorAll('#waterfall tr.span').length > 0",
    );
    let api: Value = client()
        .get(s.url(&format!("/api/v1/traces/{simulated}")))
        .send()
        .expect("trace")
        .json()
        .expect("json");
    let spans = api["spans"].as_array().expect("spans").clone();
    let shown = d.script(
        "return Array.from(document.querySelectorAll('#waterfall tr.span')).map(r => [r.getAttribute('data-span'), Number(r.getAttribute('data-depth'))]);",
    );
    let shown = shown.as_array().expect("rows").clone();
    assert_eq!(shown.len(), spans.len(), "every span listed");
    let start_of = |id: &str| {
        spans
            .iter()
            .find(|s| s["span_id"] == id)
            .and_then(|s| s["start_time_unix_nano"].as_i64())
            .expect("span")
    };
    let parent_of = |id: &str| {
        spans
            .iter()
            .find(|s| s["span_id"] == id)
            .and_then(|s| s["parent_span_id"].as_str().map(str::to_string))
    };
    let depth_of = |id: &str| -> i64 {
        shown
            .iter()
            .find(|r| r[0] == id)
            .and_then(|r| r[1].as_i64())
            .expect("row")
    };
    let mut last = i64::MIN;
    for r in &shown {
        let id = r[0].as_str().expect("id");
        assert!(start_of(id) >= last, "spans in start order");
        last = start_of(id);
        match parent_of(id) {
            Some(p) if spans.iter().any(|s| s["span_id"] == p.as_str()) => {
                assert_eq!(depth_of(id), depth_of(&p) + 1, "{id} nests under {p}");
            }
            _ => assert_eq!(depth_of(id), 0, "{id} is a root"),
        }
    }
    // The service map draws one arrow per caller → callee edge the API reports, with its
    // counts, and one box per service.
    let deps: Value = client()
        .get(s.url("/api/v1/traces/dependencies?start=0"))
        .send()
        .expect("dependencies")
        .json()
        .expect("json");
    let mut want: Vec<(String, String, u64)> = deps["dependencies"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| {
            (
                e["caller"].as_str().expect("caller").to_string(),
                e["callee"].as_str().expect("callee").to_string(),
                e["calls"].as_u64().expect("calls"),
            )
        })
        .collect();
    want.sort();
    assert!(
        want.len() >= 3,
        "the simulated fleet calls across services: {deps}"
    );
    // The map first shows the last hour; poll until the "everything" search has redrawn it.
    let deadline = Instant::now() + Duration::from_secs(60);
    let drawn = loop {
        let v = d.script(
            "return Array.from(document.querySelectorAll('#service-map .edge')).map(g => [g.getAttribute('data-caller'), g.getAttribute('data-callee'), Number(g.getAttribute('data-calls'))]);",
        );
        let mut drawn: Vec<(String, String, u64)> = v
            .as_array()
            .expect("edges drawn")
            .iter()
            .map(|e| {
                (
                    e[0].as_str().unwrap_or_default().to_string(),
                    e[1].as_str().unwrap_or_default().to_string(),
                    e[2].as_u64().unwrap_or_default(),
                )
            })
            .collect();
        drawn.sort();
        if drawn == want || Instant::now() > deadline {
            break drawn;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(drawn, want, "one arrow per edge, with its calls");
    d.script("document.getElementById('service-map').scrollIntoView();");
    d.screenshot(&shots, "traces-service-map");
    let mut services: Vec<&str> = want
        .iter()
        .flat_map(|(a, b, _)| [a.as_str(), b.as_str()])
        .collect();
    services.sort();
    services.dedup();
    let boxes = d.script(
        "return Array.from(document.querySelectorAll('#service-map .node')).map(g => g.getAttribute('data-service')).sort();",
    );
    assert_eq!(boxes, json!(services), "one box per service");
    d.script("const s = document.getElementById('t-service'); s.value = 'evil'; s.dispatchEvent(new Event('change'));");
    d.script("document.getElementById('t-search').click();");
    d.wait(
        "the payload trace in the results",
        "document.querySelector('.trace-link[data-trace=\"0102030405060708090a0b0c0d0e0f10\"]')",
    );
    d.script("document.querySelector('.trace-link[data-trace=\"0102030405060708090a0b0c0d0e0f10\"]').click();");
    d.wait(
        "the payload span",
        "document.querySelectorAll('#waterfall tr.span').length === 1",
    );
    d.script("document.querySelector('#waterfall tr.span').click();");
    let details = d.wait("span details", "document.querySelector('.span-details') && document.querySelector('.span-details').innerText");
    assert!(
        details.as_str().unwrap_or_default().contains("<script>"),
        "{details}"
    );
    d.no_alert_open();
    assert_eq!(
        d.script("return window.__pwned === undefined;"),
        json!(true)
    );

    // Milestones: create one through the form, plan it, export CSV.
    d.go(&s.url("/milestones"));
    d.settle();
    for (id, v) in [
        ("m-name", "ui check"),
        ("m-start", "2026-01-20T11:00:00Z"),
        ("m-end", "2026-01-20T12:00:00Z"),
        ("m-mult", "2"),
    ] {
        d.script(&format!(
            "const e = document.getElementById('{id}'); e.value = {}; e.dispatchEvent(new Event('input'));",
            json!(v)
        ));
    }
    d.script("document.getElementById('m-save').click();");
    d.wait("the new milestone", "document.getElementById('milestones') && document.getElementById('milestones').innerText.includes('ui check')");
    d.script("Array.from(document.querySelectorAll('.milestone-link')).find(a => a.innerText === 'ui check').click();");
    d.wait("the plan", "document.querySelector('#plan tbody tr')");
    d.script("document.getElementById('export-csv').click();");
    let deadline = Instant::now() + Duration::from_secs(30);
    let file = loop {
        let found = std::fs::read_dir(&downloads)
            .expect("downloads")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|e| e == "csv"));
        if let Some(f) = found {
            break f;
        }
        assert!(Instant::now() < deadline, "no CSV downloaded");
        std::thread::sleep(Duration::from_millis(200));
    };
    let text = std::fs::read_to_string(&file).expect("csv");
    let mut rdr = csv::Reader::from_reader(text.as_bytes());
    assert!(
        rdr.headers()
            .expect("header")
            .iter()
            .any(|h| h == "instances_needed")
    );
    assert!(rdr.records().count() >= 7, "{text}");
    let errors = d.console_errors();
    assert!(errors.is_empty(), "console errors: {errors:?}");
    d.no_alert_open();
}

/// On a server with a token, the UI asks for it, works once it is given, and a drag across a
/// time-series chart zooms the dashboard to the dragged range (in the URL, and refetched).
#[test]
fn token_sign_in_then_drag_to_zoom() {
    if !available() {
        eprintln!("skipping: chromium/chromedriver not installed");
        return;
    }
    const TOKEN: &str = "zoom-s3cret";
    const FROM_MS: i64 = 1_768_903_200_000; // 2026-01-20T10:00:00Z
    const TO_MS: i64 = FROM_MS + 2 * 3_600_000;
    let dir = tempfile::tempdir().expect("tmp");
    let boards = dir.path().join("dashboards");
    std::fs::create_dir_all(&boards).expect("dashboards dir");
    std::fs::write(
        boards.join("zoom.yaml"),
        "title: Zoom\nuid: zoom\nfrom: now-1h\nto: now\npanels:\n  - title: Temperature\n    type: timeseries\n    sql: |\n      \
         SELECT date_bin(INTERVAL $__interval, time, TIMESTAMP '1970-01-01T00:00:00Z') AS time, avg(value) AS temp\n      \
         FROM temperature WHERE $__timeFilter GROUP BY 1 ORDER BY 1\n",
    )
    .expect("dashboard");
    let s = start(
        &dir.path().join("data"),
        &["--dashboards", boards.to_str().expect("utf8")],
        &[("CREST_ADMIN_TOKEN", TOKEN)],
    );
    let lines: String = (0..120)
        .map(|m| {
            format!(
                "temperature,room=a value={} {}\n",
                20 + m % 7,
                (FROM_MS + m * 60_000) * 1_000_000
            )
        })
        .collect();
    assert_eq!(
        write_lp(&s, None, &lines).0,
        401,
        "the server wants a token"
    );
    assert_eq!(write_lp(&s, Some(TOKEN), &lines).0, 204);

    let d = Driver::start(dir.path());
    d.go(&s.url(&format!("/d/zoom?from={FROM_MS}&to={TO_MS}")));
    d.wait(
        "the sign-in form",
        "document.querySelector('form.signin input#token') !== null",
    );
    assert_eq!(
        d.script("return document.querySelectorAll('section[data-panel] svg path').length;"),
        json!(0),
        "nothing is drawn without the token"
    );
    let find = |css: &str| -> String {
        let v = d.call(
            reqwest::Method::POST,
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        );
        v.as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no element {css}: {v}"))
            .to_string()
    };
    let input = find("form.signin input#token");
    d.call(
        reqwest::Method::POST,
        &format!("/element/{input}/value"),
        Some(json!({ "text": TOKEN })),
    );
    let button = find("form.signin button[type=submit]");
    d.call(
        reqwest::Method::POST,
        &format!("/element/{button}/click"),
        Some(json!({})),
    );
    d.wait(
        "the panel drawn with the token",
        "document.querySelectorAll('section[data-panel] svg path').length > 0 && document.querySelector('form.signin') === null",
    );
    assert_eq!(
        d.script("return sessionStorage.getItem('crest-token');"),
        json!(TOKEN)
    );
    // Before the sign-in the browser logged the API's 401s, and nothing else.
    let before = d.console_errors();
    assert!(
        before.iter().all(|e| e.contains("401")),
        "console errors before the sign-in: {before:?}"
    );

    // Drag from a quarter to three quarters of the plot area.
    let rect = d.script(
        "const r = document.querySelector('section[data-panel] rect.overlay').getBoundingClientRect(); \
         return [r.left, r.top, r.width, r.height];",
    );
    let r: Vec<f64> = serde_json::from_value(rect).expect("rect");
    let (y, x1, x2) = (
        (r[1] + r[3] / 2.0).round(),
        (r[0] + 0.25 * r[2]).round(),
        (r[0] + 0.75 * r[2]).round(),
    );
    d.call(
        reqwest::Method::POST,
        "/actions",
        Some(json!({"actions": [{"type": "pointer", "id": "mouse", "parameters": {"pointerType": "mouse"},
            "actions": [
                {"type": "pointerMove", "duration": 0, "x": x1 as i64, "y": y as i64, "origin": "viewport"},
                {"type": "pointerDown", "button": 0},
                {"type": "pointerMove", "duration": 150, "x": x2 as i64, "y": y as i64, "origin": "viewport"},
                {"type": "pointerUp", "button": 0}
            ]}]})),
    );
    let search = d.wait(
        "the zoomed range in the URL",
        &format!("!location.search.includes('from={FROM_MS}') && location.search"),
    );
    let search = search.as_str().expect("search").to_string();
    let param = |name: &str| -> i64 {
        search
            .trim_start_matches('?')
            .split('&')
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no numeric {name} in {search}"))
    };
    let (from, to) = (param("from"), param("to"));
    let span = TO_MS - FROM_MS;
    let near = |got: i64, want: i64| (got - want).abs() < span / 50;
    assert!(
        near(from, FROM_MS + span / 4) && near(to, FROM_MS + 3 * span / 4),
        "zoomed to {from}..{to}, expected about {}..{}",
        FROM_MS + span / 4,
        FROM_MS + 3 * span / 4
    );
    // The panel is fetched again for the new range and drawn.
    d.wait(
        "the panel redrawn for the zoomed range",
        "document.querySelectorAll('section[data-panel] svg path').length > 0",
    );
    let errors = d.console_errors();
    assert!(errors.is_empty(), "console errors: {errors:?}");
}
