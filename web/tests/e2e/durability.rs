//! D4 (mid-WAL corruption), D5 (crash at each persistence step), graceful shutdown.

use super::harness::{client, server_metric, sql, start, start_with_config, try_start, write_lp};

/// Points of two small tables, `d` and `e`, in one (long past) hour: they share files.
fn lines(from: usize, to: usize) -> String {
    (from..to)
        .map(|i| {
            let t = 1_700_000_000_000_000_000i64 + i as i64;
            format!(
                "d,series=s{} v={i}i {t}\ne,disk=x{} used={i}i {t}\n",
                i % 7,
                i % 3
            )
        })
        .collect()
}

/// Points of `d` only: after a snapshot, `d`'s hour is in a new file and `e`'s still in the
/// older shared one, so compaction has two files to merge.
fn only_d(from: usize, to: usize) -> String {
    lines(from, to)
        .lines()
        .filter(|l| l.starts_with("d,"))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// D5: abort at every step of a snapshot and of a compaction; on restart every acknowledged
/// point is there once.
#[test]
fn crash_at_each_persistence_step_loses_and_duplicates_nothing() {
    for fp in [
        "persist:before-rename",
        "persist:after-rename",
        "manifest:before-write",
        "manifest:before-rename",
        "manifest:after-commit",
        "compact:before-write",
        "compact:before-commit",
        "compact:after-commit",
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = start(dir.path(), &[], &[]);
        assert_eq!(write_lp(&s, None, &lines(0, 50)).0, 204);
        client()
            .post(s.url("/api/v1/admin/snapshot"))
            .send()
            .expect("snapshot");
        assert_eq!(write_lp(&s, None, &lines(50, 100)).0, 204);
        s.terminate();
        let s = start(dir.path(), &[], &[("CREST_FAILPOINT", fp)]);
        assert_eq!(write_lp(&s, None, &only_d(100, 120)).0, 204);
        assert_eq!(
            write_lp(&s, None, &only_d(0, 10)).0,
            204,
            "a retry of old points"
        );
        let _ = client().post(s.url("/api/v1/admin/snapshot")).send();
        let _ = client().post(s.url("/api/v1/admin/compact")).send();
        let (status, log) = s.wait_exit();
        assert!(!status.success(), "{fp}: the failpoint aborts");
        assert!(log.contains(&format!("failpoint {fp} hit")), "{fp}: {log}");
        let s = start(dir.path(), &[], &[]);
        let rows = sql(
            &s,
            None,
            "SELECT count(*) AS n, count(DISTINCT v) AS d, sum(v) AS total FROM d",
        );
        assert_eq!(rows[0]["n"], 120, "{fp}: {rows:?}");
        assert_eq!(rows[0]["d"], 120, "{fp}");
        assert_eq!(rows[0]["total"], (0..120).sum::<i64>(), "{fp}");
        let rows = sql(&s, None, "SELECT count(*) AS n, sum(used) AS total FROM e");
        assert_eq!(rows[0]["n"], 100, "{fp}: {rows:?}");
        assert_eq!(rows[0]["total"], (0..100).sum::<i64>(), "{fp}");
        // And once more after a clean snapshot and restart.
        client()
            .post(s.url("/api/v1/admin/snapshot"))
            .send()
            .expect("snapshot");
        s.kill9();
        let s = start(dir.path(), &[], &[]);
        assert_eq!(
            sql(&s, None, "SELECT count(*) AS n FROM d")[0]["n"],
            120,
            "{fp}"
        );
        // Compaction after the crash finishes the merge and changes no answer.
        let merged: serde_json::Value = client()
            .post(s.url("/api/v1/admin/compact"))
            .send()
            .expect("compact")
            .json()
            .expect("json");
        assert!(merged["files_after"].as_u64() <= Some(1), "{fp}: {merged}");
        assert_eq!(
            sql(&s, None, "SELECT count(*) AS n FROM d")[0]["n"],
            120,
            "{fp}"
        );
        assert_eq!(
            sql(&s, None, "SELECT count(*) AS n FROM e")[0]["n"],
            100,
            "{fp}"
        );
        let orphans: Vec<_> = walk(dir.path())
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "tmp"))
            .collect();
        assert!(orphans.is_empty(), "{fp}: {orphans:?}");
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// D4 through the binary: refuses to start naming file and offset; --wal-repair starts.
#[test]
fn mid_wal_corruption_refuses_start_until_repair() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = start(dir.path(), &[], &[]);
    for i in 0..10 {
        assert_eq!(write_lp(&s, None, &lines(i * 10, i * 10 + 10)).0, 204);
    }
    s.kill9();
    let seg = walk(&dir.path().join("wal"))
        .into_iter()
        .filter(|p| std::fs::metadata(p).is_ok_and(|m| m.len() > 8))
        .max()
        .expect("segment");
    let mut bytes = std::fs::read(&seg).expect("read");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xFF;
    std::fs::write(&seg, &bytes).expect("write");
    let err = try_start(dir.path(), &[], &[]).err().expect("must refuse");
    assert!(
        err.contains(&seg.display().to_string()) && err.contains("offset"),
        "{err}"
    );
    assert!(err.contains("--wal-repair"), "{err}");
    let s = start(dir.path(), &["--wal-repair"], &[]);
    let n = sql(&s, None, "SELECT count(*) AS n FROM d")[0]["n"]
        .as_i64()
        .expect("n");
    assert!(n > 0 && n < 100, "records before the damage are kept: {n}");
}

/// A write buffer over half full is persisted within seconds, not at the next interval: with
/// an hour-long snapshot interval, writes of a past hour past half of a 256 KiB buffer are
/// in Parquet files and out of memory soon after, and writes keep being accepted.
#[test]
fn a_buffer_over_half_full_is_snapshotted_without_waiting_for_the_interval() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = start_with_config(
        dir.path(),
        "[storage]\nmax_buffer = \"256KiB\"\n",
        &["--snapshot-interval", "3600s"],
    );
    let data = dir.path().join("data");
    let buffer_bytes = || server_metric(&s, "crest_buffer_bytes");
    let mut written = 0;
    while buffer_bytes() <= 128.0 * 1024.0 {
        let (status, body) = write_lp(&s, None, &lines(written, written + 500));
        assert_eq!(status, 204, "{body}");
        written += 500;
        assert!(written < 100_000, "the buffer never filled");
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while walk(&data)
        .iter()
        .all(|p| p.extension().is_none_or(|e| e != "parquet"))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no snapshot within 20 s of the buffer passing half full"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    while buffer_bytes() > 128.0 * 1024.0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the persisted past hour never left memory"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let (status, body) = write_lp(&s, None, &lines(written, written + 500));
    assert_eq!(status, 204, "{body}");
    let n = sql(&s, None, "SELECT count(*) AS n FROM d");
    assert_eq!(
        n[0]["n"],
        serde_json::json!(written + 500),
        "every point, persisted or not"
    );
}

/// A full buffer of the current hour cannot be freed by a snapshot (the hot hour stays in
/// memory), so the early snapshot runs once and then waits for the interval instead of
/// rewriting the same hour every second.
#[test]
fn a_full_buffer_of_hot_data_is_not_snapshotted_every_second() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = start_with_config(
        dir.path(),
        "[storage]\nmax_buffer = \"1B\"\n",
        &["--snapshot-interval", "3600s"],
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    let (status, body) = write_lp(&s, None, &format!("hot,host=a v=1 {now}\n"));
    assert_eq!(status, 204, "{body}");
    let snapshots = || server_metric(&s, "crest_snapshots_total");
    // The first early snapshot comes within a second or two; then none for the hour.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while snapshots() == 0.0 {
        assert!(std::time::Instant::now() < deadline, "no early snapshot");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    std::thread::sleep(std::time::Duration::from_secs(5));
    assert_eq!(snapshots(), 1.0, "one early snapshot, not one a second");
    let (status, _) = write_lp(&s, None, &format!("hot,host=a v=2 {now}\n"));
    assert_eq!(status, 503, "the hot hour still fills the buffer");
}

/// A zero snapshot interval is refused at start, naming the flag (it would otherwise stop the
/// snapshot loop, so nothing is persisted until shutdown), from the flag or the config file.
#[test]
fn a_zero_snapshot_interval_is_refused_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = try_start(&dir.path().join("a"), &["--snapshot-interval", "0s"], &[])
        .err()
        .expect("must refuse");
    assert!(
        err.contains("--snapshot-interval must be above zero"),
        "{err}"
    );
    let cfg = dir.path().join("crest.toml");
    std::fs::write(&cfg, "[storage]\nsnapshot_interval = \"0s\"\n").expect("config");
    let err = try_start(
        &dir.path().join("b"),
        &["--config", cfg.to_str().expect("utf8")],
        &[],
    )
    .err()
    .expect("must refuse");
    assert!(
        err.contains("snapshot_interval must be above zero"),
        "{err}"
    );
}
