//! Milestones, capacity, plans and scores against the real server filled by `crest simulate`:
//! four days of hourly history before stress test 3, then stress test 3 itself at one-minute
//! resolution. The capacity measured in stress test 3 must land within 10 % of the scenario's
//! ground truth; a plan for an evening window must forecast its peak within 10 %; the plan
//! exports must read back as CSV, JSON and Parquet; milestones must survive a restart.

use super::harness::{Server, bin, call, sql, start};
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;

const TOKEN: &str = "plan-secret-token";

fn simulate(s: &Server, calendar: &Path, from: &str, until: &str, step: &str) {
    simulate_from(s, calendar, "2026-01-01", from, until, step);
}

fn simulate_from(s: &Server, calendar: &Path, kickoff: &str, from: &str, until: &str, step: &str) {
    let calendar = calendar.to_str().expect("utf8");
    super::harness::simulate(
        s,
        Some(TOKEN),
        &[
            "--seed",
            "11",
            "--kickoff",
            kickoff,
            "--start",
            from,
            "--until",
            until,
            "--backfill",
            "10d",
            "--step",
            step,
            "--no-traces",
            "--calendar-out",
            calendar,
        ],
    );
}

fn get(s: &Server, path: &str) -> (u16, Value) {
    call(s, Some(TOKEN), "GET", path, None)
}

fn send(s: &Server, method: &str, path: &str, body: &str) -> (u16, Value) {
    call(s, Some(TOKEN), method, path, Some(body))
}

fn plan_cli(s: &Server, milestone: &str, format: &str, out: Option<&Path>) -> Vec<u8> {
    let mut cmd = Command::new(bin());
    cmd.args(["plan", "--milestone", milestone, "--format", format])
        .args(["--url", &s.base, "--token", TOKEN]);
    if let Some(p) = out {
        cmd.arg("--out").arg(p);
    }
    let o = cmd.output().expect("run crest plan");
    assert!(
        o.status.success(),
        "crest plan --format {format}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o.stdout
}

fn f(v: &Value, k: &str) -> f64 {
    v[k].as_f64().unwrap_or_else(|| panic!("{k} in {v}"))
}

/// Every column a planner audits, in export order.
const PLAN_COLUMNS: [&str; 24] = [
    "milestone",
    "milestone_kind",
    "service",
    "made_at",
    "model",
    "baseline_peak_p50",
    "baseline_peak_p90",
    "baseline_peak_p99",
    "event_multiplier",
    "multiplier_source",
    "target_qps",
    "forecast_peak_p50",
    "forecast_peak_p90",
    "forecast_peak_p99",
    "capacity_per_instance_qps",
    "capacity_source",
    "utilisation_target",
    "usable_qps_per_instance",
    "zones",
    "zone_loss_tolerance",
    "instances_needed_all_zones",
    "instances_needed",
    "instances_now",
    "gap",
];

#[test]
fn milestones_capacity_plans_and_scores_from_a_simulated_campaign() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    let config = dir.path().join("crest.toml");
    // The scenario's SLOs: 200 ms for grab, open and payment, 100 ms for the rest; feed's
    // capacity is given, since no stress test loads it.
    std::fs::write(
        &config,
        "[planning]\nslo_p99_ms = 100\nutilisation_target = 0.75\nzone_loss_tolerance = 1\n\
         [planning.services.envelope-grab]\nslo_p99_ms = 200\n\
         [planning.services.envelope-open]\nslo_p99_ms = 200\n\
         [planning.services.payment]\nslo_p99_ms = 200\n\
         [planning.services.feed]\nper_instance_qps = 800\n",
    )
    .expect("config");
    let cfg = ["--config", config.to_str().expect("utf8")];
    let env = [("CREST_ADMIN_TOKEN", TOKEN)];
    let calendar = dir.path().join("calendar.json");
    let s = start(&data, &cfg, &env);
    // Hourly history from day 8 to day 12 00:00, then stress test 3 (day 12, 02:00–03:30) at
    // one-minute resolution.
    simulate(
        &s,
        &calendar,
        "2026-01-09T00:00:00Z",
        "2026-01-13T00:00:00Z",
        "1h",
    );
    simulate(
        &s,
        &calendar,
        "2026-01-13T01:30:00Z",
        "2026-01-13T03:40:00Z",
        "1m",
    );
    s.terminate();

    // The calendar the simulator wrote is loaded at start.
    let cal: Value =
        serde_json::from_slice(&std::fs::read(&calendar).expect("calendar")).expect("json");
    let mut args = cfg.to_vec();
    args.extend(["--milestones", calendar.to_str().expect("utf8")]);
    let s = start(&data, &args, &env);
    let (st, list) = get(&s, "/api/v1/milestones");
    assert_eq!(st, 200, "{list}");
    let list = list.as_array().expect("array").clone();
    assert_eq!(list.len(), 9, "{list:?}");
    assert!(list.iter().all(|m| m["status"] == "done"));
    let kinds: Vec<&str> = list
        .iter()
        .map(|m| m["kind"].as_str().expect("kind"))
        .collect();
    assert_eq!(kinds.iter().filter(|k| **k == "stress_test").count(), 3);
    assert_eq!(kinds.last(), Some(&"live"));

    // Capacity: the knee of stress test 3 within 10 % of the scenario's truth.
    let truth = |service: &str| {
        cal["services"]
            .as_array()
            .expect("services")
            .iter()
            .find(|x| x["name"] == service)
            .cloned()
            .unwrap_or_else(|| panic!("{service} in calendar"))
    };
    let (st, caps) = get(&s, "/api/v1/capacity");
    assert_eq!(st, 200, "{caps}");
    let cap = |service: &str| {
        caps.as_array()
            .expect("array")
            .iter()
            .find(|c| c["service"] == service)
            .cloned()
            .unwrap_or_else(|| panic!("{service} in {caps}"))
    };
    for service in ["envelope-grab", "envelope-open", "gateway"] {
        let c = cap(service);
        let want = f(&truth(service), "capacity_at_slo_qps");
        let got = f(&c, "per_instance_qps");
        assert!(
            (got - want).abs() / want < 0.10,
            "{service}: measured {got}, truth {want}: {c}"
        );
        assert!(
            c["source"].as_str().expect("source").contains("knee"),
            "{c}"
        );
    }
    assert!(
        cap("feed")["source"]
            .as_str()
            .expect("s")
            .starts_with("config")
    );
    let account = cap("account");
    assert!(account["per_instance_qps"].is_null(), "{account}");
    assert!(
        account["source"]
            .as_str()
            .expect("s")
            .contains("never took it past its SLO"),
        "{account}"
    );

    // Bad input is refused with the field named, and nothing is stored.
    let (st, e) = send(
        &s,
        "POST",
        "/api/v1/milestones",
        r#"{"name":"x","kind":"rehearsal","start":"2026-02-01T00:00:00Z","end":"2026-01-01T00:00:00Z"}"#,
    );
    assert_eq!(st, 400, "{e}");
    assert!(e["message"].as_str().expect("m").contains("end"), "{e}");
    let (st, e) = send(
        &s,
        "POST",
        "/api/v1/milestones",
        r#"{"name":"stress test 1","kind":"rehearsal","start":0,"end":60}"#,
    );
    assert_eq!(st, 409, "{e}");
    let (st, e) = send(
        &s,
        "POST",
        "/api/v1/milestones",
        r#"{"name":"y","kind":"gala","start":0,"end":60}"#,
    );
    assert_eq!(st, 400, "{e}");
    assert!(e["message"].as_str().expect("m").contains("gala"), "{e}");
    let (st, e) = send(&s, "POST", "/api/v1/milestones/import", "- name: [\n");
    assert_eq!(st, 400, "{e}");
    assert!(e["message"].as_str().expect("m").contains("line"), "{e}");
    assert_eq!(get(&s, "/api/v1/milestones/nope").0, 404);
    assert_eq!(get(&s, "/api/v1/plans/nope").0, 404);
    assert_eq!(
        get(&s, "/api/v1/milestones").1.as_array().map(Vec::len),
        Some(9)
    );

    // A window of our own, inside the history, with the organic multiplier.
    let (st, m) = send(
        &s,
        "POST",
        "/api/v1/milestones",
        &json!({"name": "evening check", "kind": "rehearsal",
                "start": "2026-01-12T18:00:00Z", "end": "2026-01-12T22:00:00Z",
                "drivers": {"multiplier": 1}, "notes": "<script>alert(1)</script>"})
        .to_string(),
    );
    assert_eq!(st, 201, "{m}");
    let id = m["id"].as_u64().expect("id");
    // Edit it (and read it back by id).
    let (st, m) = send(
        &s,
        "PUT",
        &format!("/api/v1/milestones/{id}"),
        &json!({"name": "evening check", "kind": "rehearsal",
                "start": "2026-01-12T18:00:00Z", "end": "2026-01-12T22:00:00Z",
                "drivers": {"multiplier": 1}, "notes": "edited"})
        .to_string(),
    );
    assert_eq!(st, 200, "{m}");
    assert_eq!(
        get(&s, &format!("/api/v1/milestones/{id}")).1["notes"],
        "edited"
    );

    let (st, plan) = get(&s, "/api/v1/plans/evening%20check");
    assert_eq!(st, 200, "{plan}");
    let rows = plan["rows"].as_array().expect("rows").clone();
    assert_eq!(rows.len(), 7, "{plan}");
    let feed = rows
        .iter()
        .find(|r| r["service"] == "feed")
        .expect("feed row");
    // The arithmetic, from the row's own terms.
    let usable = f(feed, "capacity_per_instance_qps") * f(feed, "utilisation_target");
    assert_eq!(f(feed, "usable_qps_per_instance"), usable);
    let all = (f(feed, "forecast_peak_p99") / usable).ceil();
    assert_eq!(f(feed, "instances_needed_all_zones"), all);
    let zones = f(feed, "zones");
    assert_eq!(zones, 3.0, "three clusters serve: {feed}");
    let needed = (all / (zones - f(feed, "zone_loss_tolerance"))).ceil() * zones;
    assert_eq!(f(feed, "instances_needed"), needed, "{feed}");
    let now = f(feed, "instances_now");
    assert_eq!(
        now,
        f(&truth("feed"), "instances_per_cluster_campaign") * 3.0,
        "{feed}"
    );
    assert_eq!(f(feed, "gap"), needed - now);
    assert_eq!(feed["multiplier_source"], "drivers.multiplier");
    // Before stress test 3 ended nothing broke the SLO: grab's capacity is unknown, and says so.
    let grab = rows
        .iter()
        .find(|r| r["service"] == "envelope-grab")
        .expect("grab row");
    assert!(grab["instances_needed"].is_null(), "{grab}");
    assert!(
        grab["capacity_source"]
            .as_str()
            .expect("s")
            .starts_with("unknown")
    );

    // Scored against what happened: the organic evening peak within 10 %.
    let (st, score) = get(&s, "/api/v1/milestones/evening%20check/score");
    assert_eq!(st, 200, "{score}");
    assert_eq!(score["plan"], "recomputed");
    let services = score["services"].as_array().expect("services");
    assert_eq!(services.len(), 7, "{score}");
    for sc in services {
        assert!(f(sc, "actual_peak") > 0.0, "{sc}");
        assert!(f(sc, "ape") < 0.10, "forecast off by more than 10 %: {sc}");
    }
    // A milestone that has not ended cannot be scored.
    let (st, m) = send(
        &s,
        "POST",
        "/api/v1/milestones",
        r#"{"name":"next year","kind":"live","start":"2099-01-01T00:00:00Z","end":"2099-01-02T00:00:00Z"}"#,
    );
    assert_eq!(st, 201, "{m}");
    assert_eq!(get(&s, "/api/v1/milestones/next%20year/score").0, 409);
    assert_eq!(
        send(&s, "DELETE", "/api/v1/milestones/next%20year", "").0,
        204
    );

    // Exports: CSV, JSON rows and Parquet carry every term.
    let csv_bytes = plan_cli(&s, "evening check", "csv", None);
    let mut rdr = csv::Reader::from_reader(csv_bytes.as_slice());
    let header: Vec<String> = rdr
        .headers()
        .expect("header")
        .iter()
        .map(str::to_string)
        .collect();
    assert_eq!(header, PLAN_COLUMNS);
    assert_eq!(rdr.records().count(), 7);
    let json_rows: Value =
        serde_json::from_slice(&plan_cli(&s, "evening check", "json", None)).expect("json");
    assert_eq!(json_rows.as_array().map(Vec::len), Some(7));
    assert_eq!(
        json_rows[0]
            .as_object()
            .expect("row")
            .keys()
            .filter(|k| PLAN_COLUMNS.contains(&k.as_str()))
            .count(),
        json_rows[0].as_object().expect("row").len()
    );
    let pq = dir.path().join("plan.parquet");
    plan_cli(&s, "evening check", "parquet", Some(&pq));
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        std::fs::File::open(&pq).expect("open parquet"),
    )
    .expect("parquet")
    .build()
    .expect("reader");
    let mut n = 0;
    for b in reader {
        let b = b.expect("batch");
        let names: Vec<&str> = b
            .schema_ref()
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        assert_eq!(names, PLAN_COLUMNS);
        n += b.num_rows();
    }
    assert_eq!(n, 7);
    // pandas and DuckDB read the three exports (the venv `.ci/run` makes; required there).
    let venv =
        std::env::var("CREST_OTEL_VENV").unwrap_or_else(|_| "/var/tmp/crest-otel-venv".into());
    let python = Path::new(&venv).join("bin/python");
    let usable = Command::new(&python)
        .args(["-c", "import duckdb, pandas, pyarrow"])
        .output()
        .is_ok_and(|o| o.status.success());
    if usable {
        let csv_path = dir.path().join("plan.csv");
        let json_path = dir.path().join("plan.json");
        std::fs::write(&csv_path, &csv_bytes).expect("csv");
        plan_cli(&s, "evening check", "json", Some(&json_path));
        let o = Command::new(&python)
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/e2e/plan_interop.py"
            ))
            .args([&csv_path, &json_path, &pq])
            .arg("7")
            .output()
            .expect("run python");
        assert!(
            o.status.success(),
            "pandas/DuckDB could not read the exports: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    } else {
        assert!(
            std::env::var("CREST_INTEROP").is_err(),
            "CREST_INTEROP=1 but no duckdb/pandas/pyarrow in {venv}"
        );
        eprintln!("skipping pandas/DuckDB: not in {venv}");
    }
    let o = Command::new(bin())
        .args(["plan", "--milestone", "evening check", "--format", "xlsx"])
        .args(["--url", &s.base, "--token", TOKEN])
        .output()
        .expect("run");
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("xlsx"));

    // Milestones join with metrics in SQL; scores are a table too.
    let rows = sql(
        &s,
        Some(TOKEN),
        "SELECT m.name, count(*) AS samples FROM http_requests_total r \
         JOIN milestones m ON r.time >= m.start AND r.time < m.\"end\" \
         WHERE m.kind = 'stress_test' GROUP BY m.name ORDER BY m.name",
    );
    let samples = |name: &str| {
        rows.iter()
            .find(|r| r["name"] == name)
            .map_or(0.0, |r| f(r, "samples"))
    };
    assert!(
        samples("stress test 3") > 10.0 * samples("stress test 2").max(1.0),
        "stress test 3 has minute data, 2 hourly, 1 none: {rows:?}"
    );
    assert_eq!(samples("stress test 1"), 0.0);
    let rows = sql(
        &s,
        Some(TOKEN),
        "SELECT service, actual_peak FROM milestone_scores WHERE milestone = 'evening check'",
    );
    assert_eq!(rows.len(), 7);

    // Everything survives a restart.
    let scored_at = score["scored_at"].clone();
    s.terminate();
    let s = start(&data, &cfg, &env);
    assert_eq!(
        get(&s, "/api/v1/milestones").1.as_array().map(Vec::len),
        Some(10)
    );
    let (st, again) = get(&s, "/api/v1/milestones/evening%20check/score");
    assert_eq!(st, 200);
    assert_eq!(again["scored_at"], scored_at, "the stored score is served");
}

/// The festival capacity rules on live data: a rehearsal running now whose plan forecast half of
/// the organic traffic fires `QpsAboveForecastBand`; raising its multiplier resolves it; a
/// capacity of 1 QPS per instance fires `HeadroomLow`.
#[test]
fn forecast_band_and_headroom_rules_fire_on_live_data() {
    use chrono::{DateTime, Duration, DurationRound, SecondsFormat, Utc};
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    let config = dir.path().join("crest.toml");
    std::fs::write(
        &config,
        "[planning]\n[planning.services.feed]\nper_instance_qps = 1\n",
    )
    .expect("config");
    let rules = dir.path().join("capacity.yml");
    std::fs::write(
        &rules,
        "groups:\n  - name: capacity\n    interval: 1s\n    rules:\n\
         \x20     - alert: QpsAboveForecastBand\n        forecast_band: {quantile: p99, window: 5m}\n\
         \x20     - alert: HeadroomLow\n        headroom: {above: 0.85, window: 5m}\n",
    )
    .expect("rules");
    let env = [("CREST_ADMIN_TOKEN", TOKEN)];
    let s = start(
        &data,
        &[
            "--config",
            config.to_str().expect("utf8"),
            "--rules",
            rules.to_str().expect("utf8"),
        ],
        &env,
    );
    let now = Utc::now();
    let hour = now.duration_trunc(Duration::hours(1)).expect("trunc");
    let t = |d: DateTime<Utc>| d.to_rfc3339_opts(SecondsFormat::Secs, true);
    let kickoff = (now - Duration::days(20)).format("%Y-%m-%d").to_string();
    let calendar = dir.path().join("calendar.json");
    // Three days of hourly history, then minute samples from the last hour to 20 minutes ahead,
    // so the last complete 5-minute window has data whenever the rules run.
    simulate_from(
        &s,
        &calendar,
        &kickoff,
        &t(hour - Duration::days(3)),
        &t(hour - Duration::hours(1)),
        "1h",
    );
    simulate_from(
        &s,
        &calendar,
        &kickoff,
        &t(hour - Duration::hours(1)),
        &t(now + Duration::minutes(20)),
        "1m",
    );
    let window = |m: f64| {
        json!({"name": "rehearsal now", "kind": "rehearsal",
               "start": t(now - Duration::minutes(30)), "end": t(now + Duration::hours(2)),
               "drivers": {"multiplier": m}})
        .to_string()
    };
    let (st, m) = send(&s, "POST", "/api/v1/milestones", &window(0.5));
    assert_eq!(st, 201, "{m}");

    let firing = |name: &str| -> Vec<Value> {
        get(&s, "/api/v1/alerts").1["data"]["alerts"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|a| a["labels"]["alertname"] == name && a["state"] == "firing")
            .collect()
    };
    let wait_for = |what: &str, ok: &dyn Fn() -> bool| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while !ok() {
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for {what}: {}",
                get(&s, "/api/v1/rules").1
            );
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
    };
    wait_for("the band alert for every service", &|| {
        firing("QpsAboveForecastBand").len() == 7
    });
    let band = firing("QpsAboveForecastBand");
    let feed = band
        .iter()
        .find(|a| a["labels"]["service"] == "feed")
        .expect("feed");
    assert_eq!(feed["labels"]["milestone"], "rehearsal now");
    assert_eq!(feed["labels"]["milestone_kind"], "rehearsal");
    // Its value is the live QPS: above half the organic forecast, below twice the forecast.
    let (_, plan) = get(&s, "/api/v1/plans/rehearsal%20now");
    let row = plan["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .find(|r| r["service"] == "feed")
        .cloned()
        .expect("feed row");
    let qps: f64 = feed["value"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .or_else(|| feed["value"].as_f64())
        .expect("value");
    assert!(qps > f(&row, "forecast_peak_p99"), "{qps} vs {row}");
    assert!(qps < 4.0 * f(&row, "forecast_peak_p99"), "{qps} vs {row}");
    // Only feed has a capacity (1 QPS per instance): only it is out of headroom.
    wait_for("the headroom alert", &|| firing("HeadroomLow").len() == 1);
    assert_eq!(firing("HeadroomLow")[0]["labels"]["service"], "feed");

    // A multiplier of 20 puts the band far above the traffic: the alerts resolve.
    let (st, m) = send(
        &s,
        "PUT",
        "/api/v1/milestones/rehearsal%20now",
        &window(20.0),
    );
    assert_eq!(st, 200, "{m}");
    wait_for("the band alerts to resolve", &|| {
        firing("QpsAboveForecastBand").is_empty()
    });
}
