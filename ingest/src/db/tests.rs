use super::*;
use crate::clock::MockClock;
use crate::point::FieldValue;

const T0: i64 = 1_700_000_000_000_000_000; // 2023-11-14T22:13:20Z

fn cfg(dir: &Path) -> DbConfig {
    DbConfig {
        wal: WalConfig::for_tests(),
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
    for (path, _) in &view.files {
        for b in persist::read_parquet(path).expect("read") {
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
