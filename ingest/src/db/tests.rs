use super::*;
use crate::clock::MockClock;
use crate::point::{FieldValue, Precision};

const T0: i64 = 1_700_000_000_000_000_000; // 2023-11-14T22:13:20Z

fn cfg(dir: &Path) -> DbConfig {
    DbConfig {
        wal: WalConfig::for_tests(),
        file_grace_ns: 0,
        ..DbConfig::new(dir)
    }
}

fn open(dir: &Path, clock: &Arc<MockClock>) -> Db {
    open_with(cfg(dir), clock)
}

fn open_with(config: DbConfig, clock: &Arc<MockClock>) -> Db {
    let clock: Arc<dyn Clock> = Arc::clone(clock) as Arc<dyn Clock>;
    Db::open(DbArgs { config, clock }).expect("open")
}

fn pt(host: &str, v: f64, t: i64) -> Point {
    Point {
        table: "cpu".into(),
        tags: vec![("host".into(), host.into())],
        fields: vec![("usage".into(), FieldValue::F64(v))],
        time_ns: t,
    }
}

fn write(db: &Db, points: Vec<Point>) -> WriteOutcome {
    futures::executor::block_on(db.write(points.into_iter().enumerate().collect())).expect("write")
}

/// Every row of `table`, from buffer and files, as sorted points.
fn rows(db: &Db, table: &str) -> Vec<Point> {
    let Some(view) = db.table_view(table).expect("view") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (_, b) in &view.buffered {
        out.extend(batch_to_points(table, b).expect("points"));
    }
    for (path, meta) in &view.files {
        for b in persist::read_parquet(path).expect("read") {
            let b = if meta.shared {
                compact::rows_of(&b, table).expect("rows of table")
            } else {
                b
            };
            out.extend(batch_to_points(table, &b).expect("points"));
        }
    }
    out.sort_by(|a, b| (&a.tags, a.time_ns).cmp(&(&b.tags, b.time_ns)));
    out
}

#[test]
fn written_points_are_visible_at_once_and_survive_reopen_exactly_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(MockClock::new(T0));
    let db = open(dir.path(), &clock);
    let out = write(
        &db,
        vec![pt("a", 1.0, T0), pt("b", 2.0, T0), pt("a", 3.0, T0 + 1)],
    );
    assert_eq!(out.accepted, 3);
    assert_eq!(rows(&db, "cpu").len(), 3);
    drop(db); // no snapshot: everything comes back from the WAL
    let db = open(dir.path(), &clock);
    assert_eq!(db.recovery().replayed_records, 1);
    assert_eq!(rows(&db, "cpu").len(), 3);
    db.snapshot().expect("snapshot");
    drop(db);
    let db = open(dir.path(), &clock);
    assert_eq!(
        db.recovery().replayed_records,
        0,
        "the WAL was truncated after the commit"
    );
    assert_eq!(
        rows(&db, "cpu"),
        vec![pt("a", 1.0, T0), pt("a", 3.0, T0 + 1), pt("b", 2.0, T0)]
    );
}

#[test]
fn a_retry_after_a_snapshot_and_eviction_still_reads_back_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(MockClock::new(T0));
    let db = open(dir.path(), &clock);
    let batch = vec![pt("a", 1.0, T0), pt("b", 2.0, T0)];
    write(&db, batch.clone());
    db.snapshot().expect("snapshot");
    clock.set(T0 + 3 * HOUR_NS);
    let report = db.snapshot().expect("snapshot");
    assert_eq!(report.evicted, 1, "the cold hour left memory");
    assert!(
        db.table_view("cpu")
            .expect("view")
            .expect("table")
            .buffered
            .is_empty()
    );
    write(&db, batch.clone()); // the client's retry of the same request
    write(&db, vec![pt("c", 5.0, T0)]); // a late point in the same hour
    assert_eq!(rows(&db, "cpu").len(), 3);
    db.snapshot().expect("snapshot");
    drop(db);
    let db = open(dir.path(), &clock);
    assert_eq!(
        rows(&db, "cpu"),
        vec![pt("a", 1.0, T0), pt("b", 2.0, T0), pt("c", 5.0, T0)]
    );
    let view = db.table_view("cpu").expect("view").expect("table");
    assert_eq!(view.files.len(), 1, "one file per table and hour");
}

#[test]
fn type_conflicts_and_bad_names_are_rejected_per_point_and_the_rest_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(MockClock::new(T0));
    let db = open(dir.path(), &clock);
    let mut bad_type = pt("a", 0.0, T0);
    bad_type.fields = vec![("usage".into(), FieldValue::Str("high".into()))];
    let mut time_tag = pt("a", 0.0, T0);
    time_tag.tags.push(("time".into(), "x".into()));
    let out = write(
        &db,
        vec![pt("a", 1.0, T0), bad_type, time_tag, pt("b", 1.0, T0)],
    );
    assert_eq!(out.accepted, 2);
    let tags: Vec<usize> = out.rejected.iter().map(|(t, _)| *t).collect();
    assert_eq!(tags, vec![1, 2]);
    let msg = out.rejected[0].1.to_string();
    assert!(
        msg.contains("usage") && msg.contains("float") && msg.contains("string"),
        "{msg}"
    );
    assert_eq!(
        out.rejected[0].1.kind(),
        crate::error::ErrorKind::InvalidInput
    );
}

/// A request the WAL keeps as its body (line protocol, remote write) replays to exactly the
/// points that were accepted: refused lines stay out, lines without a timestamp keep the
/// request's time.
#[test]
fn requests_kept_as_their_body_replay_to_exactly_the_accepted_points() {
    use crate::decode::{line_protocol, remote_write};
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(MockClock::new(T0));
    let db = open(dir.path(), &clock);
    write(&db, vec![pt("a", 1.0, T0)]);
    let now = T0 + 5;
    let body = format!(
        "cpu,host=b usage=2 {}\ncpu,host=c usage=\"high\" {}\ncpu,host=d usage=4\nnot a line\ncpu,host={} usage=9 {}\n",
        T0 + 1,
        T0 + 2,
        "g".repeat(5000),
        T0 + 3
    );
    let body_len = body.len() as u64;
    let parsed = line_protocol::parse_body(body.into_bytes(), Precision::Nanosecond, now);
    assert_eq!(parsed.errors.len(), 1);
    let wal_before = db.stats().wal_bytes.load(Ordering::Relaxed);
    let source = Source::LineProtocol {
        precision: Precision::Nanosecond,
        default_time_ns: now,
    };
    let out =
        futures::executor::block_on(db.write_decoded(parsed.batch, Some(source))).expect("write");
    assert_eq!(
        (out.accepted, out.rejected.len()),
        (2, 2),
        "{:?}",
        out.rejected
    );
    assert!(
        db.stats().wal_bytes.load(Ordering::Relaxed) - wal_before > body_len,
        "the WAL byte count includes the body"
    );
    let series: Vec<remote_write::Series> = vec![
        (
            vec![
                ("__name__".into(), "cpu".into()),
                ("host".into(), "e".into()),
            ],
            vec![(T0 / 1_000_000, 5.0), (i64::MAX / 1_000_000, 6.0)],
        ),
        (
            vec![
                ("__name__".into(), "cpu".into()),
                ("host".into(), "f".into()),
            ],
            vec![(T0 / 1_000_000, 7.0)],
        ),
    ];
    let rw = remote_write::encode(&series);
    let decoded = remote_write::decode_batch(&rw, usize::MAX).expect("decodes");
    let out =
        futures::executor::block_on(db.write_decoded(decoded.batch, Some(Source::RemoteWrite(rw))))
            .expect("write");
    assert_eq!(
        (out.accepted, out.rejected.len()),
        (2, 1),
        "{:?}",
        out.rejected
    );
    let before = rows(&db, "cpu");
    let hosts = |rows: &[Point]| -> Vec<(String, i64)> {
        rows.iter()
            .map(|p| (p.tags[0].1.clone(), p.time_ns))
            .collect()
    };
    assert_eq!(
        hosts(&before),
        vec![
            ("a".into(), T0),
            ("b".into(), T0 + 1),
            ("d".into(), now),
            ("e".into(), T0 / 1_000_000 * 1_000_000),
            ("f".into(), T0 / 1_000_000 * 1_000_000),
        ]
    );
    drop(db);
    clock.set(T0 + 1_000_000_000);
    let db = open(dir.path(), &clock);
    assert_eq!(db.recovery().replayed_records, 3);
    assert_eq!(rows(&db, "cpu"), before);
}

#[test]
fn series_cardinality_limit_refuses_new_series_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(MockClock::new(T0));
    let mut c = cfg(dir.path());
    c.limits.max_series_per_table = 2;
    let db = open_with(c, &clock);
    assert_eq!(
        write(&db, vec![pt("a", 1.0, T0), pt("b", 1.0, T0)]).accepted,
        2
    );
    let out = write(&db, vec![pt("c", 1.0, T0), pt("a", 2.0, T0 + 1)]);
    assert_eq!(out.accepted, 1, "the existing series is still accepted");
    assert_eq!(
        out.rejected[0].1.kind(),
        crate::error::ErrorKind::LimitExceeded
    );
}

#[test]
fn a_point_shaped_like_the_one_before_still_has_its_values_and_types_checked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(MockClock::new(T0));
    let mut c = cfg(dir.path());
    c.limits.max_tag_value_len = 8;
    c.limits.max_series_per_table = 3;
    let db = open_with(c, &clock);
    let variants = |out: &WriteOutcome| -> Vec<(usize, String)> {
        out.rejected
            .iter()
            .map(|(i, e)| {
                let name = format!("{e:?}");
                (
                    *i,
                    name.chars()
                        .take_while(char::is_ascii_alphanumeric)
                        .collect(),
                )
            })
            .collect()
    };
    let mut as_string = pt("b", 0.0, T0);
    as_string.fields[0].1 = FieldValue::Str("x".into());
    let mut bad_table = pt("a", 0.0, T0);
    bad_table.table = "\u{7}".into();
    let out = write(
        &db,
        vec![
            pt("a", 1.0, T0),
            pt("far-too-long", 1.0, T0),
            as_string,
            bad_table,
            pt("c", 2.0, T0),
            pt("d", 2.0, T0),
        ],
    );
    assert_eq!(
        variants(&out),
        [
            (1, "Limit".into()),
            (2, "TypeConflict".into()),
            (3, "InvalidName".into())
        ]
    );
    assert_eq!(out.accepted, 3);
    // A point refused by the series limit is followed by one of the same shape: that one is
    // checked in full, and accepted.
    let out = write(&db, vec![pt("e", 2.0, T0), pt("a", 3.0, T0 + 1)]);
    assert_eq!(variants(&out), [(0, "Limit".into())]);
    let hosts: Vec<String> = rows(&db, "cpu")
        .into_iter()
        .map(|p| p.tags[0].1.clone())
        .collect();
    assert_eq!(hosts, ["a", "a", "c", "d"]);
    // Names that passed once are not checked again for a point of the same shape; its time is.
    let out = write(&db, vec![pt("a", 1.0, T0 + 2), pt("a", 1.0, i64::MAX)]);
    assert_eq!(variants(&out), [(1, "InvalidName".into())]);
}

#[test]
fn retention_drops_old_hours_from_memory_and_disk() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(MockClock::new(T0));
    let mut c = cfg(dir.path());
    c.retention.default_ns = Some(2 * HOUR_NS);
    let db = open_with(c, &clock);
    write(&db, vec![pt("a", 1.0, T0 - 5 * HOUR_NS), pt("a", 2.0, T0)]);
    db.snapshot().expect("snapshot");
    assert_eq!(db.enforce_retention().expect("retention"), 1);
    assert_eq!(rows(&db, "cpu"), vec![pt("a", 2.0, T0)]);
}

#[test]
fn orphan_files_from_a_crash_are_removed_at_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(MockClock::new(T0));
    let db = open(dir.path(), &clock);
    write(&db, vec![pt("a", 1.0, T0)]);
    db.snapshot().expect("snapshot");
    drop(db);
    let orphan = dir.path().join("tables/cpu/orphan.parquet");
    std::fs::write(&orphan, b"half").expect("write");
    let db = open(dir.path(), &clock);
    assert_eq!(db.recovery().orphans_removed, 1);
    assert!(!orphan.exists());
    assert_eq!(rows(&db, "cpu").len(), 1);
}

#[test]
fn timestamps_outside_the_storable_range_are_rejected_not_panicking() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(MockClock::new(T0));
    let db = open(dir.path(), &clock);
    let out = write(
        &db,
        vec![
            pt("a", 1.0, i64::MIN + 2),
            pt("a", 1.0, i64::MAX - 1),
            pt("a", 1.0, T0),
        ],
    );
    assert_eq!(out.accepted, 1);
    assert_eq!(out.rejected.len(), 2);
    assert!(out.rejected[0].1.to_string().contains("storable range"));
}

#[test]
fn a_persisted_hour_that_cannot_be_loaded_fails_the_late_write_and_loses_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(MockClock::new(T0));
    let db = open(dir.path(), &clock);
    write(&db, vec![pt("a", 1.0, T0)]);
    db.snapshot().expect("snapshot");
    clock.set(T0 + 3 * HOUR_NS);
    db.snapshot().expect("evict");
    let view = db.table_view("cpu").expect("view").expect("table");
    let (file, _) = view.files.first().expect("file").clone();
    let saved = std::fs::read(&file).expect("read");
    std::fs::write(&file, b"not parquet").expect("damage");
    let err = futures::executor::block_on(db.write(vec![(0, pt("b", 2.0, T0))]));
    assert!(
        err.is_err(),
        "the late write must fail while its hour cannot be loaded"
    );
    std::fs::write(&file, saved).expect("restore");
    write(&db, vec![pt("b", 2.0, T0)]);
    db.snapshot().expect("snapshot");
    assert_eq!(rows(&db, "cpu"), vec![pt("a", 1.0, T0), pt("b", 2.0, T0)]);
}

fn in_table(table: &str, mut p: Point) -> Point {
    p.table = table.into();
    p
}

fn parquet_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.join("tables"), dir.join("shared")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn small_tables_share_one_file_per_hour_and_each_reads_back_only_its_rows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(MockClock::new(T0));
    let db = open(dir.path(), &clock);
    let tables = ["cpu", "disk", "mem", "net"];
    let mut all = Vec::new();
    for (i, t) in tables.iter().enumerate() {
        all.push(in_table(t, pt("a", i as f64, T0)));
        all.push(in_table(t, pt("b", i as f64 + 0.5, T0 + 1)));
    }
    // A table with other columns and a conflicting type for `usage` gets a file of its own.
    all.push(Point {
        table: "odd".into(),
        tags: vec![("job".into(), "x".into())],
        fields: vec![("usage".into(), FieldValue::I64(7))],
        time_ns: T0,
    });
    write(&db, all);
    let report = db.snapshot().expect("snapshot");
    assert_eq!(report.files, 2, "four compatible tables share one file");
    assert_eq!(report.rows, 9);
    assert_eq!(parquet_files(dir.path()).len(), 2);
    drop(db);
    let db = open(dir.path(), &clock);
    clock.set(T0 + 3 * HOUR_NS);
    db.snapshot().expect("evict");
    let mut paths = BTreeSet::new();
    for (i, t) in tables.iter().enumerate() {
        let view = db.table_view(t).expect("view").expect("table");
        assert!(view.buffered.is_empty());
        assert_eq!(view.files.len(), 1);
        assert!(view.files[0].1.shared);
        assert_eq!(view.files[0].1.rows, 2);
        paths.insert(view.files[0].0.clone());
        assert_eq!(
            rows(&db, t),
            vec![
                in_table(t, pt("a", i as f64, T0)),
                in_table(t, pt("b", i as f64 + 0.5, T0 + 1))
            ]
        );
    }
    assert_eq!(paths.len(), 1);
    let odd = db.table_view("odd").expect("view").expect("table");
    assert!(!odd.files[0].1.shared);
}

#[test]
fn compaction_merges_the_files_an_hour_was_scattered_over_and_loses_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(MockClock::new(T0));
    let db = open(dir.path(), &clock);
    let tables = ["a", "b", "c"];
    write(
        &db,
        tables
            .iter()
            .map(|t| in_table(t, pt("h", 1.0, T0)))
            .collect(),
    );
    db.snapshot().expect("snapshot");
    clock.set(T0 + 3 * HOUR_NS);
    db.snapshot().expect("evict");
    // Nothing to merge yet: the hour is in one file.
    assert_eq!(db.compact().expect("compact"), CompactReport::default());
    // A late write to one table: its hour is loaded from the shared file and, being the only
    // dirty one, written alone; the shared file keeps b and c (and a's stale rows).
    write(&db, vec![in_table("a", pt("h2", 2.0, T0 + 5))]);
    db.snapshot().expect("snapshot");
    clock.set(T0 + 6 * HOUR_NS);
    db.snapshot().expect("evict");
    assert_eq!(parquet_files(dir.path()).len(), 2);
    let report = db.compact().expect("compact");
    assert_eq!(
        report,
        CompactReport {
            hours: 1,
            files_before: 2,
            files_after: 1,
            rows: 4
        }
    );
    assert_eq!(
        parquet_files(dir.path()).len(),
        1,
        "replaced files are gone"
    );
    assert_eq!(db.compact().expect("again"), CompactReport::default());
    let expect_a = vec![
        in_table("a", pt("h", 1.0, T0)),
        in_table("a", pt("h2", 2.0, T0 + 5)),
    ];
    assert_eq!(rows(&db, "a"), expect_a);
    drop(db);
    let db = open(dir.path(), &clock);
    assert_eq!(db.recovery().orphans_removed, 0);
    assert_eq!(rows(&db, "a"), expect_a);
    assert_eq!(rows(&db, "b"), vec![in_table("b", pt("h", 1.0, T0))]);
    assert_eq!(rows(&db, "c"), vec![in_table("c", pt("h", 1.0, T0))]);
    // A late write after compaction loads the hour back out of the merged file.
    write(&db, vec![in_table("b", pt("h3", 3.0, T0 + 9))]);
    db.snapshot().expect("snapshot");
    assert_eq!(rows(&db, "b").len(), 2);
    assert_eq!(rows(&db, "a"), expect_a);
}

#[test]
fn hot_hours_are_not_compacted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(MockClock::new(T0));
    let db = open(dir.path(), &clock);
    write(
        &db,
        vec![
            in_table("a", pt("h", 1.0, T0)),
            in_table("b", pt("h", 1.0, T0)),
        ],
    );
    db.snapshot().expect("snapshot");
    write(&db, vec![in_table("a", pt("h", 2.0, T0 + 1))]);
    db.snapshot().expect("snapshot");
    assert_eq!(db.compact().expect("compact").hours, 0);
}

#[test]
fn a_file_the_manifest_stopped_naming_waits_out_the_grace_period() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(MockClock::new(T0));
    let mut c = cfg(dir.path());
    c.file_grace_ns = 60 * 1_000_000_000;
    let db = open_with(c, &clock);
    write(&db, vec![pt("a", 1.0, T0)]);
    db.snapshot().expect("snapshot");
    let old = parquet_files(dir.path()).pop().expect("one file");
    write(&db, vec![pt("a", 2.0, T0 + 1)]);
    db.snapshot().expect("snapshot");
    assert!(
        old.exists(),
        "a query planned before the swap may still read it"
    );
    clock.set(T0 + 61 * 1_000_000_000);
    db.snapshot().expect("snapshot");
    assert!(!old.exists());
}

#[test]
fn the_shared_file_table_column_name_is_reserved() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(MockClock::new(T0));
    let db = open(dir.path(), &clock);
    let mut p = pt("a", 1.0, T0);
    p.tags.push((TABLE_COLUMN.into(), "x".into()));
    let out = write(&db, vec![p]);
    assert_eq!(out.accepted, 0);
    assert!(
        out.rejected[0].1.to_string().contains("reserved"),
        "{:?}",
        out.rejected
    );
}

#[test]
fn per_table_retention_overrides_the_default() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(MockClock::new(T0));
    let mut c = cfg(dir.path());
    c.retention.default_ns = Some(48 * HOUR_NS);
    c.retention.per_table.insert("cpu".into(), 2 * HOUR_NS);
    let db = open_with(c, &clock);
    let old = T0 - 5 * HOUR_NS;
    write(
        &db,
        vec![
            pt("a", 1.0, old),
            pt("a", 2.0, T0),
            in_table("mem", pt("a", 3.0, old)),
            in_table("mem", pt("a", 4.0, T0 - 50 * HOUR_NS)),
        ],
    );
    db.snapshot().expect("snapshot");
    db.enforce_retention().expect("retention");
    assert_eq!(rows(&db, "cpu"), vec![pt("a", 2.0, T0)], "cpu keeps 2 h");
    assert_eq!(
        rows(&db, "mem"),
        vec![in_table("mem", pt("a", 3.0, old))],
        "mem keeps the default 48 h"
    );
    drop(db);
    let db = open(dir.path(), &clock);
    assert_eq!(rows(&db, "cpu"), vec![pt("a", 2.0, T0)]);
    assert_eq!(rows(&db, "mem").len(), 1);
}

/// A request over many tables, interleaved and with a refused point among them: every table
/// gets its own points (moved into one run per table before validation), the names list in
/// order although tables are kept in a hash map, and all of it survives a snapshot and reopen.
#[test]
fn a_request_over_many_interleaved_tables_lands_each_point_in_its_table() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(MockClock::new(T0));
    let db = open(dir.path(), &clock);
    let names: Vec<String> = (0..30).rev().map(|i| format!("m{i:02}")).collect();
    let mut points = Vec::new();
    for round in 0..3i64 {
        for name in &names {
            let mut p = pt("a", round as f64, T0 + round);
            p.table = name.clone();
            points.push(p);
        }
    }
    // One refused point in the middle (a reserved tag name).
    points[45].tags = vec![("time".into(), "x".into())];
    let out = write(&db, points);
    assert_eq!(
        (out.accepted, out.rejected.len()),
        (89, 1),
        "{:?}",
        out.rejected
    );
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(db.table_names(), sorted);
    let values = |db: &Db, table: &str| -> Vec<(i64, FieldValue)> {
        rows(db, table)
            .into_iter()
            .map(|p| (p.time_ns, p.fields[0].1.clone()))
            .collect()
    };
    let expected = |rounds: &[i64]| -> Vec<(i64, FieldValue)> {
        rounds
            .iter()
            .map(|&r| (T0 + r, FieldValue::F64(r as f64)))
            .collect()
    };
    // Point 45 is round 1 of the 16th name, `m14`.
    assert_eq!(values(&db, "m14"), expected(&[0, 2]));
    for name in names.iter().filter(|n| *n != "m14") {
        assert_eq!(values(&db, name), expected(&[0, 1, 2]), "{name}");
    }
    db.snapshot().expect("snapshot");
    drop(db);
    let db = open(dir.path(), &clock);
    assert_eq!(db.table_names(), sorted);
    assert_eq!(values(&db, "m14"), expected(&[0, 2]));
    assert_eq!(values(&db, "m00"), expected(&[0, 1, 2]));
}
