//! `crest simulate` against the real server: a few hours around the DR drill are backfilled,
//! then SQL checks the request counters per service and cluster, the drill's dark cluster,
//! cumulative histogram buckets, cross-service parent/child spans and the calendar file.

use super::harness::{Server, bin, sql, start};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Output};

const TOKEN: &str = "sim-secret";

fn simulate(s: &Server, token: &str, extra: &[&str]) -> Output {
    Command::new(bin())
        .args(["simulate", "--url", &s.base, "--token", token])
        .args(extra)
        .env_remove("CREST_TOKEN")
        .output()
        .expect("run crest simulate")
}

fn str_of<'a>(row: &'a Value, k: &str) -> &'a str {
    row[k].as_str().unwrap_or_else(|| panic!("{k} in {row}"))
}

fn num(row: &Value, k: &str) -> f64 {
    row[k].as_f64().unwrap_or_else(|| panic!("{k} in {row}"))
}

#[test]
fn simulate_backfills_metrics_traces_and_calendar() {
    let dir = tempfile::tempdir().expect("tmp");
    let s = start(
        &dir.path().join("data"),
        &[],
        &[("CREST_ADMIN_TOKEN", TOKEN)],
    );
    let calendar = dir.path().join("calendar.json");
    // Day 15 of a campaign starting 2026-01-01: the DR drill is 14:00–14:30.
    let out = simulate(
        &s,
        TOKEN,
        &[
            "--seed",
            "7",
            "--kickoff",
            "2026-01-01",
            "--start",
            "2026-01-16T13:00:00Z",
            "--backfill",
            "4h",
            "--step",
            "5m",
            "--speed",
            "0",
            "--traces-per-minute",
            "3",
            "--calendar-out",
            calendar.to_str().expect("utf8 path"),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "simulate failed: {stderr}");
    assert!(stderr.contains("samples"), "no progress shown: {stderr}");
    let summary: Value = serde_json::from_slice(&out.stdout).expect("summary JSON on stdout");
    assert!(summary["samples"].as_u64().expect("samples") > 10_000);

    // Request counters exist for every service in every cluster.
    let rows = sql(
        &s,
        Some(TOKEN),
        "SELECT service, \"cluster\" AS c, count(DISTINCT instance) AS instances, \
         count(DISTINCT app_id) AS apps, max(value) AS v \
         FROM http_requests_total GROUP BY service, \"cluster\"",
    );
    let services: BTreeSet<&str> = rows.iter().map(|r| str_of(r, "service")).collect();
    assert_eq!(
        services.into_iter().collect::<Vec<_>>(),
        [
            "account",
            "envelope-grab",
            "envelope-open",
            "feed",
            "gateway",
            "payment",
            "share"
        ]
    );
    assert_eq!(rows.len(), 7 * 3, "{rows:?}");
    for r in &rows {
        assert!(num(r, "v") > 0.0, "{r}");
        assert_eq!(r["apps"], 3, "{r}");
    }

    // The drill: c2 serves nothing and reports no requests; c1 and c3 carry its traffic as
    // synthetic series.
    let drill = "time >= '2026-01-16T14:00:00Z' AND time < '2026-01-16T14:30:00Z'";
    let dark = sql(
        &s,
        Some(TOKEN),
        &format!(
            "SELECT count(*) AS n FROM http_requests_total WHERE \"cluster\" = 'c2' AND {drill}"
        ),
    );
    assert_eq!(dark[0]["n"], 0, "{dark:?}");
    let instances = sql(
        &s,
        Some(TOKEN),
        &format!(
            "SELECT \"cluster\" AS c, max(value) AS v FROM instances \
             WHERE service = 'envelope-grab' AND {drill} GROUP BY \"cluster\" ORDER BY c"
        ),
    );
    let by_cluster: BTreeMap<&str, f64> = instances
        .iter()
        .map(|r| (str_of(r, "c"), num(r, "v")))
        .collect();
    assert_eq!(by_cluster["c2"], 0.0);
    assert!(by_cluster["c1"] > 0.0 && by_cluster["c3"] > 0.0);
    let moved = sql(
        &s,
        Some(TOKEN),
        &format!(
            "SELECT DISTINCT \"cluster\" AS c FROM http_requests_total \
             WHERE synthetic = 'true' AND {drill} ORDER BY c"
        ),
    );
    let moved: Vec<&str> = moved.iter().map(|r| str_of(r, "c")).collect();
    assert_eq!(moved, ["c1", "c3"]);

    // Histogram buckets are cumulative and +Inf equals _count.
    let buckets = sql(
        &s,
        Some(TOKEN),
        "SELECT service, interface, \"cluster\" AS c, le, value FROM \
         http_request_duration_seconds_bucket WHERE time = '2026-01-16T16:00:00Z'",
    );
    let mut hist: BTreeMap<(String, String, String), Vec<(f64, f64)>> = BTreeMap::new();
    for r in &buckets {
        let le = match str_of(r, "le") {
            "+Inf" => f64::INFINITY,
            x => x.parse().expect("le"),
        };
        hist.entry((
            str_of(r, "service").into(),
            str_of(r, "interface").into(),
            str_of(r, "c").into(),
        ))
        .or_default()
        .push((le, num(r, "value")));
    }
    assert!(hist.len() >= 7 * 3, "{}", hist.len());
    let counts = sql(
        &s,
        Some(TOKEN),
        "SELECT service, interface, \"cluster\" AS c, value FROM \
         http_request_duration_seconds_count WHERE time = '2026-01-16T16:00:00Z'",
    );
    for r in &counts {
        let key = (
            str_of(r, "service").to_string(),
            str_of(r, "interface").to_string(),
            str_of(r, "c").to_string(),
        );
        let mut b = hist
            .remove(&key)
            .unwrap_or_else(|| panic!("no buckets for {key:?}"));
        assert_eq!(b.len(), 15, "{key:?}");
        b.sort_by(|x, y| x.0.total_cmp(&y.0));
        for w in b.windows(2) {
            assert!(w[1].1 >= w[0].1, "{key:?} not cumulative: {b:?}");
        }
        assert_eq!(b[14].1, num(r, "value"), "{key:?}");
        assert!(b[14].1 > 0.0);
    }
    assert!(hist.is_empty(), "buckets without _count: {hist:?}");

    // Spans link parent and child across services.
    let edges = sql(
        &s,
        Some(TOKEN),
        "SELECT p.service_name AS caller, c.service_name AS callee, count(*) AS n \
         FROM spans c JOIN spans p ON c.parent_span_id = p.span_id AND c.trace_id = p.trace_id \
         WHERE p.service_name <> c.service_name GROUP BY p.service_name, c.service_name",
    );
    let edges: BTreeSet<(String, String)> = edges
        .iter()
        .map(|r| (str_of(r, "caller").into(), str_of(r, "callee").into()))
        .collect();
    for (a, b) in [
        ("gateway", "envelope-grab"),
        ("envelope-grab", "account"),
        ("envelope-grab", "payment"),
        ("gateway", "envelope-open"),
        ("envelope-open", "share"),
        ("gateway", "feed"),
    ] {
        assert!(
            edges.contains(&(a.to_string(), b.to_string())),
            "{a} → {b} missing from {edges:?}"
        );
    }
    let roots = sql(
        &s,
        Some(TOKEN),
        "SELECT count(*) AS n, count(DISTINCT service_name) AS services FROM spans \
         WHERE parent_span_id IS NULL",
    );
    assert_eq!(roots[0]["services"], 1, "only the gateway starts traces");
    // 3 traces a minute for 4 hours.
    assert_eq!(roots[0]["n"], 3 * 60 * 4);

    // The calendar: every milestone kind, in time order, with the live multipliers.
    let cal: Value =
        serde_json::from_slice(&std::fs::read(&calendar).expect("calendar written")).expect("json");
    assert_eq!(cal["kickoff"], "2026-01-01T00:00:00Z");
    let milestones = cal["milestones"].as_array().expect("milestones");
    let kinds: BTreeSet<&str> = milestones.iter().map(|m| str_of(m, "kind")).collect();
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>(),
        ["dr_drill", "live", "rehearsal", "stress_test"]
    );
    assert_eq!(milestones.len(), 9);
    let live = milestones.last().expect("live");
    assert_eq!(live["start"], "2026-01-28T20:00:00Z");
    assert_eq!(
        live["drivers"]["expected_multiplier"]["envelope-grab"],
        60.0
    );
    assert_eq!(live["drivers"]["rounds"].as_array().map(Vec::len), Some(4));
    let dr = &milestones[3];
    assert_eq!(dr["drivers"]["dark_cluster"], "c2");
}

#[test]
fn simulate_refuses_bad_arguments_and_a_bad_token() {
    let dir = tempfile::tempdir().expect("tmp");
    let s = start(
        &dir.path().join("data"),
        &[],
        &[("CREST_ADMIN_TOKEN", TOKEN)],
    );
    for (flags, want) in [
        (&["--speed=-1"][..], "--speed"),
        (&["--step", "0s"][..], "--step"),
        (&["--kickoff", "tomorrow"][..], "invalid time"),
        (&["--backfill", "ten days"][..], "backfill"),
    ] {
        let out = simulate(&s, TOKEN, flags);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{flags:?} accepted");
        assert!(stderr.contains(want), "{flags:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{flags:?}: {stderr}");
    }
    let cal = dir.path().join("cal.json");
    let out = simulate(
        &s,
        "wrong-token",
        &[
            "--backfill",
            "15m",
            "--step",
            "5m",
            "--speed",
            "0",
            "--calendar-out",
            cal.to_str().expect("utf8"),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "a wrong token went through: {stderr}"
    );
    assert!(stderr.contains("401"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
