//! Dashboards provisioned from YAML: the shipped ones load, a broken file is reported with file
//! and line while the others load, and a panel's rows equal what the SQL API answers for the
//! SQL it expanded to, on data written by `crest simulate`.

use super::harness::{Server, call, simulate, start};
use serde_json::Value;

const TOKEN: &str = "dash-secret-token";

fn get(s: &Server, path: &str) -> (u16, Value) {
    call(s, Some(TOKEN), "GET", path, None)
}

#[test]
fn dashboards_load_expand_and_match_the_sql_api() {
    let dir = tempfile::tempdir().expect("tmp");
    let dashboards = dir.path().join("dashboards");
    std::fs::create_dir(&dashboards).expect("mkdir");
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/../dashboards");
    for e in std::fs::read_dir(shipped).expect("shipped") {
        let p = e.expect("entry").path();
        if p.extension().is_some_and(|x| x == "yaml") {
            std::fs::copy(&p, dashboards.join(p.file_name().expect("name"))).expect("copy");
        }
    }
    std::fs::write(
        dashboards.join("zz-broken.yaml"),
        "title: Broken\npanels:\n  - title: p\n    type: donut\n    sql: SELECT 1\n",
    )
    .expect("broken");
    let s = start(
        &dir.path().join("data"),
        &["--dashboards", dashboards.to_str().expect("utf8")],
        &[
            ("CREST_ADMIN_TOKEN", TOKEN),
            ("CREST_SELF_MONITORING_INTERVAL", "1s"),
        ],
    );
    simulate(
        &s,
        Some(TOKEN),
        &[
            "--seed",
            "3",
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
            dir.path().join("cal.json").to_str().expect("utf8"),
        ],
    );

    let (st, list) = get(&s, "/api/v1/dashboards");
    assert_eq!(st, 200);
    let uids: Vec<&str> = list["dashboards"]
        .as_array()
        .expect("list")
        .iter()
        .map(|d| d["uid"].as_str().expect("uid"))
        .collect();
    assert_eq!(
        uids,
        [
            "capacity",
            "crest-health",
            "festival-overview",
            "service-red"
        ]
    );
    let errors = list["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 1, "{list}");
    assert!(
        errors[0]["file"]
            .as_str()
            .expect("file")
            .ends_with("zz-broken.yaml")
    );
    assert_eq!(errors[0]["line"], 4);
    assert!(errors[0]["message"].as_str().expect("m").contains("donut"));

    // Every panel of the festival overview answers over the simulated range.
    let range = "from=2026-01-20T10:00:00Z&to=2026-01-20T12:00:00Z&width=600";
    let (_, d) = get(&s, "/api/v1/dashboards/festival-overview");
    let panels = d["panels"].as_array().expect("panels").len();
    assert!(panels >= 12);
    for i in 0..panels {
        let (st, p) = get(
            &s,
            &format!("/api/v1/dashboards/festival-overview/panels/{i}?{range}"),
        );
        assert_eq!(st, 200, "panel {i}: {p}");
        assert!(
            !p["rows"].as_array().expect("rows").is_empty(),
            "panel {i} ({}) has no rows: {}",
            d["panels"][i]["title"],
            p["sql"]
        );
    }
    // Panel 0 with one service: the rows equal the SQL API's answer for the expanded SQL.
    let (st, p) = get(
        &s,
        &format!("/api/v1/dashboards/festival-overview/panels/0?{range}&var-service=feed"),
    );
    assert_eq!(st, 200, "{p}");
    assert_eq!(
        p["interval_s"], 15,
        "2 h over 600 px: 12 s, rounded up to 15"
    );
    let sql = p["sql"].as_str().expect("sql");
    assert!(sql.contains("service IN ('feed')"), "{sql}");
    assert!(sql.contains("\"cluster\" IN ('c1', 'c2', 'c3')"), "{sql}");
    let direct = super::harness::sql(&s, Some(TOKEN), sql);
    assert_eq!(p["rows"].as_array().expect("rows"), &direct);
    assert!(direct.iter().all(|r| r["service"] == "feed"));
    // A value that tries to break out of its string stays a string.
    let (st, p) = get(
        &s,
        &format!(
            "/api/v1/dashboards/festival-overview/panels/0?{range}&var-service=feed')%20OR%20(1=1"
        ),
    );
    assert_eq!(st, 200, "{p}");
    assert!(p["rows"].as_array().expect("rows").is_empty(), "{p}");
    // Variable choices, and bad input.
    let (st, v) = get(
        &s,
        &format!("/api/v1/dashboards/festival-overview/variables/service?{range}"),
    );
    assert_eq!(st, 200);
    assert_eq!(v.as_array().map(Vec::len), Some(7), "{v}");
    assert_eq!(get(&s, "/api/v1/dashboards/nope").0, 404);
    assert_eq!(
        get(&s, "/api/v1/dashboards/festival-overview/panels/99").0,
        404
    );
    let (st, e) = get(
        &s,
        "/api/v1/dashboards/festival-overview/panels/0?from=yesterday",
    );
    assert_eq!(st, 400);
    assert!(
        e["message"].as_str().expect("m").contains("yesterday"),
        "{e}"
    );
    let (st, _) = get(
        &s,
        "/api/v1/dashboards/festival-overview/panels/0?from=now&to=now-1h",
    );
    assert_eq!(st, 400);

    // A range ending at now is aligned to the bucket width, so two loads inside one bucket
    // expand to the same SQL; the second (and every panel's variable lookups after the
    // first) come from the results cache.
    let now_range = "/api/v1/dashboards/festival-overview/panels/4?from=now-24h&to=now";
    let (a, b) = (get(&s, now_range).1, get(&s, now_range).1);
    let bucket_ms = a["interval_s"].as_i64().expect("interval") * 1000;
    assert_eq!(bucket_ms, 120_000, "{a}");
    assert_eq!(a["to"].as_i64().expect("to") % bucket_ms, 0, "{a}");
    assert_eq!(
        a["to"].as_i64().expect("to") - a["from"].as_i64().expect("from"),
        86_400_000
    );
    assert!(a["sql"] == b["sql"] || a["to"] != b["to"], "{a} {b}");
    let (_, metrics) = get(&s, "/metrics");
    let hits: f64 = metrics
        .as_str()
        .expect("metrics text")
        .lines()
        .find_map(|l| l.strip_prefix("crest_dashboard_cache_hits_total "))
        .and_then(|v| v.parse().ok())
        .expect("cache hits metric");
    assert!(hits >= 1.0, "{hits}");

    // Crest's own metrics land in its tables every second here, and the health dashboard's
    // write-rate panel draws them.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (st, p) = get(
            &s,
            "/api/v1/dashboards/crest-health/panels/0?from=now-5m&to=now",
        );
        if st == 200 && p["rows"].as_array().is_some_and(|r| !r.is_empty()) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no self-monitoring rows: {st} {p}"
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}
