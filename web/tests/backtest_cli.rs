//! `crest backtest` end to end: the real binary on small CSV files.

use std::io::Write;
use std::process::{Command, Output};

const HEADER: &str =
    "series,model,windows,mase,rel_mase,cov80,cov95,msis95,peak_ape,peak_over_band,fit_seconds";

/// An hourly CSV with a daily and weekly pattern, `n` rows from 2024-01-01.
fn write_series(dir: &tempfile::TempDir, n: usize, bad_row: Option<usize>) -> std::path::PathBuf {
    let path = dir.path().join("synthetic_load.csv");
    let mut f = std::fs::File::create(&path).expect("create csv");
    writeln!(f, "ts,y,note").expect("write");
    let t0 = 1_704_067_200i64; // 2024-01-01 00:00:00 UTC
    for i in 0..n {
        let t = t0 + i as i64 * 3600;
        let ts = chrono::DateTime::from_timestamp(t, 0)
            .expect("time")
            .format("%Y-%m-%d %H:%M:%S");
        let day = (i as f64 * std::f64::consts::TAU / 24.0).sin();
        let weekend = if (i / 24) % 7 >= 5 { -30.0 } else { 0.0 };
        let noise = ((i * 7919) % 23) as f64 - 11.0;
        let y = 200.0 + 60.0 * day + weekend + noise;
        if bad_row == Some(i) {
            writeln!(f, "{ts},lots,x").expect("write");
        } else {
            writeln!(f, "{ts},{y:.2},x").expect("write");
        }
    }
    path
}

fn crest(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_crest"))
        .arg("backtest")
        .args(args)
        .output()
        .expect("run crest")
}

fn base_args(path: &std::path::Path) -> Vec<String> {
    [
        "--csv",
        path.to_str().expect("utf-8 path"),
        "--time-column",
        "ts",
        "--value-column",
        "y",
        "--seasons",
        "24,168",
        "--horizon",
        "168",
        "--windows",
        "2",
        "--inner-windows",
        "2",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn run(args: &[String]) -> Output {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    crest(&a)
}

#[test]
fn csv_output_has_the_exact_columns_and_one_row_per_model() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_series(&dir, 2400, None);
    let mut args = base_args(&path);
    args.extend(["--model", "auto,snaive", "--format", "csv"].map(String::from));
    let out = run(&args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stderr: {stderr}");
    assert!(
        stderr.contains("window 2/2"),
        "no progress on stderr: {stderr}"
    );
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    let mut lines = stdout.lines();
    assert_eq!(lines.next(), Some(HEADER));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 2, "{stdout}");
    assert_eq!(rows[0][0], "synthetic_load");
    assert!(rows[0][1].starts_with("auto:"), "{stdout}");
    assert_eq!(rows[1][1], "snaive168");
    for r in &rows {
        assert_eq!(r.len(), 11);
        assert_eq!(r[2], "2");
        for v in &r[3..] {
            let x: f64 = v.parse().expect("number");
            assert!(x.is_finite() && x >= 0.0, "{stdout}");
        }
    }
    // The weekly naive against itself.
    assert_eq!(rows[1][4], "1.0000");
}

#[test]
fn json_output_has_the_same_fields() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_series(&dir, 2400, None);
    let mut args = base_args(&path);
    args.extend(
        [
            "--model", "snaive24", "--format", "json", "--series", "s1", "--quiet",
        ]
        .map(String::from),
    );
    let out = run(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stderr.is_empty(), "--quiet printed progress");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let rows = v.as_array().expect("array");
    assert_eq!(rows.len(), 1);
    let keys: Vec<&str> = rows[0]
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    let mut want: Vec<&str> = HEADER.split(',').collect();
    let mut got = keys.clone();
    want.sort_unstable();
    got.sort_unstable();
    assert_eq!(got, want);
    assert_eq!(rows[0]["series"], "s1");
    assert_eq!(rows[0]["model"], "snaive24");
}

#[test]
fn bad_column_name_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_series(&dir, 100, None);
    let mut args = base_args(&path);
    args[5] = "nope".into(); // --value-column
    let out = run(&args);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--value-column \"nope\" is not a column")
            && stderr.contains("ts, y, note"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn unparsable_value_and_short_series_are_clear_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_series(&dir, 300, Some(41));
    let out = run(&base_args(&path));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("line 43") && stderr.contains("\"lots\""),
        "{stderr}"
    );

    let path = write_series(&dir, 300, None);
    let out = run(&base_args(&path));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("too short") && stderr.contains("300 points"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn unknown_model_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_series(&dir, 100, None);
    let mut args = base_args(&path);
    args.extend(["--model", "prophet"].map(String::from));
    let out = run(&args);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unknown model \"prophet\""), "{stderr}");
}
