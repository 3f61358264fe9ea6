use super::*;
use crate::QueryErrorKind;
use ingest::buffer::HOUR_NS;
use ingest::clock::{Clock, MockClock};
use ingest::point::{FieldValue, Point};
use ingest::{DbArgs, DbConfig};

const T0: i64 = 1_700_000_000_000_000_000 / HOUR_NS * HOUR_NS; // an hour boundary

fn db(dir: &std::path::Path) -> Arc<Db> {
    let clock: Arc<dyn Clock> = Arc::new(MockClock::new(T0 + 10 * HOUR_NS));
    Arc::new(
        Db::open(DbArgs {
            config: DbConfig::new(dir),
            clock,
        })
        .expect("open"),
    )
}

fn pt(host: &str, v: f64, t: i64) -> Point {
    Point {
        table: "cpu".into(),
        tags: vec![("host".into(), host.into())],
        fields: vec![("usage".into(), FieldValue::F64(v))],
        time_ns: t,
    }
}

async fn write(db: &Db, points: Vec<Point>) {
    let out = db
        .write(points.into_iter().enumerate().collect())
        .await
        .expect("write");
    assert!(out.rejected.is_empty());
}

fn engine(db: &Arc<Db>) -> QueryEngine {
    QueryEngine::new(
        Arc::clone(db),
        QueryConfig {
            threads: 2,
            ..QueryConfig::default()
        },
    )
    .expect("engine")
}

async fn text(e: &QueryEngine, sql: &str) -> String {
    let r = e
        .sql(sql)
        .await
        .unwrap_or_else(|err| panic!("{sql}: {err}"));
    arrow::util::pretty::pretty_format_batches(&r.batches)
        .expect("fmt")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_reads_buffer_and_files_together_and_prunes_by_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = db(dir.path());
    write(
        &db,
        vec![
            pt("a", 1.0, T0),
            pt("b", 2.0, T0 + 1),
            pt("a", 3.0, T0 + 2 * HOUR_NS),
        ],
    )
    .await;
    let d = Arc::clone(&db);
    tokio::task::spawn_blocking(move || d.snapshot())
        .await
        .expect("join")
        .expect("snapshot");
    write(&db, vec![pt("c", 4.0, T0 + 5 * HOUR_NS)]).await;
    let e = engine(&db);
    let out = text(
        &e,
        "SELECT host, sum(usage) AS s FROM cpu GROUP BY host ORDER BY host",
    )
    .await;
    assert!(
        out.contains("| a    | 4.0 |") && out.contains("| c    | 4.0 |"),
        "{out}"
    );
    let explain = text(
        &e,
        &format!(
            "EXPLAIN SELECT * FROM cpu WHERE time >= to_timestamp_nanos({}) ",
            T0 + 2 * HOUR_NS
        ),
    )
    .await;
    assert!(explain.contains("files_pruned=1"), "{explain}");
    // A filter reaches the Parquet scan (for row-group pruning by statistics and bloom filters),
    // not only the FilterExec above our scan node.
    let explain = text(&e, "EXPLAIN SELECT * FROM cpu WHERE host = 'a'").await;
    let scan = explain
        .lines()
        .find(|l| l.contains("DataSourceExec") && l.contains("parquet"))
        .unwrap_or_else(|| panic!("no Parquet scan: {explain}"));
    assert!(
        scan.contains("predicate=") && scan.contains("host@"),
        "{explain}"
    );
    let n = e
        .sql(&format!(
            "SELECT * FROM cpu WHERE time >= to_timestamp_nanos({})",
            T0 + 2 * HOUR_NS
        ))
        .await
        .expect("query")
        .num_rows();
    assert_eq!(n, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_sql_works_date_bin_windows_joins_information_schema() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = db(dir.path());
    write(
        &db,
        (0..10)
            .map(|i| {
                pt(
                    if i % 2 == 0 { "a" } else { "b" },
                    f64::from(i),
                    T0 + i64::from(i) * 60_000_000_000,
                )
            })
            .collect(),
    )
    .await;
    let e = engine(&db);
    let out = text(&e, "SELECT date_bin(INTERVAL '5 minutes', time) AS t, count(*) AS n FROM cpu GROUP BY 1 ORDER BY 1").await;
    assert!(out.contains("| 5 "), "{out}");
    let out = text(&e, "SELECT host, usage, rank() OVER (PARTITION BY host ORDER BY usage DESC) AS r FROM cpu ORDER BY host, r LIMIT 1").await;
    assert!(out.contains("| a    | 8.0   | 1 |"), "{out}");
    let out = text(
        &e,
        "SELECT count(*) AS n FROM cpu x JOIN cpu y ON x.host = y.host AND x.time = y.time",
    )
    .await;
    assert!(out.contains("| 10 |"), "{out}");
    let out = text(&e, "SHOW TABLES").await;
    assert!(out.contains("cpu"), "{out}");
    let out = text(&e, "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'cpu' ORDER BY column_name").await;
    assert!(
        out.contains("Dictionary(Int32, Utf8)") && out.contains("Timestamp(ns, \"UTC\")")
            || out.contains("Timestamp(Nanosecond"),
        "{out}"
    );
}

/// Q1: the sandbox refuses every write, DDL, setting and file or URL read, and nothing changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_refuses_ddl_dml_copy_set_and_file_reads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = db(dir.path());
    write(&db, vec![pt("a", 1.0, T0)]).await;
    let e = engine(&db);
    for sql in [
        "CREATE EXTERNAL TABLE p STORED AS CSV LOCATION '/etc/passwd'",
        "CREATE TABLE t AS SELECT 1",
        "CREATE VIEW v AS SELECT * FROM cpu",
        "DROP TABLE cpu",
        "INSERT INTO cpu (host, usage, time) VALUES ('x', 1.0, now())",
        "DELETE FROM cpu",
        "COPY cpu TO '/tmp/crest-copy-test.csv'",
        "COPY (SELECT 1) TO '/tmp/crest-copy-test.parquet'",
        "SET datafusion.execution.batch_size = 1",
        "SELECT * FROM '/etc/passwd'",
        "SELECT * FROM 'file:///etc/passwd'",
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM 'http://127.0.0.1:1/x.parquet'",
    ] {
        let err = e
            .sql(sql)
            .await
            .err()
            .unwrap_or_else(|| panic!("allowed: {sql}"));
        assert_eq!(err.kind(), QueryErrorKind::InvalidQuery, "{sql}: {err}");
    }
    assert!(!std::path::Path::new("/tmp/crest-copy-test.csv").exists());
    assert_eq!(db.table_names(), vec!["cpu".to_string()]);
    assert_eq!(
        e.sql("SELECT * FROM cpu")
            .await
            .expect("still there")
            .num_rows(),
        1
    );
}

/// Q2: a cross-join bomb ends within the timeout with a clear error; a huge GROUP BY hits the
/// memory pool; the engine keeps answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expensive_queries_end_with_clear_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = db(dir.path());
    write(&db, vec![pt("a", 1.0, T0)]).await;
    let e = QueryEngine::new(
        Arc::clone(&db),
        QueryConfig {
            timeout: Duration::from_millis(500),
            memory_limit: 16 * 1024 * 1024,
            threads: 2,
            max_concurrent: 2,
        },
    )
    .expect("engine");
    let err = e
        .sql("SELECT count(*) FROM generate_series(1, 100000) a, generate_series(1, 100000) b, generate_series(1, 1000) c")
        .await
        .expect_err("bomb must fail");
    assert_eq!(err.kind(), QueryErrorKind::TooExpensive, "{err}");
    let err = e
        .sql("SELECT value % 50000000 AS k, array_agg(value) FROM generate_series(1, 50000000) GROUP BY k")
        .await
        .expect_err("huge group by must fail");
    assert_eq!(err.kind(), QueryErrorKind::TooExpensive, "{err}");
    assert_eq!(e.sql("SELECT 1").await.expect("still up").num_rows(), 1);
}

fn in_table(table: &str, tags: &[(&str, &str)], field: &str, v: f64, t: i64) -> Point {
    Point {
        table: table.into(),
        tags: tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        fields: vec![(field.into(), FieldValue::F64(v))],
        time_ns: t,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_sharing_a_file_each_see_only_their_rows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = db(dir.path());
    write(
        &db,
        vec![
            pt("a", 1.0, T0),
            pt("b", 2.0, T0 + 1),
            in_table("mem", &[("host", "a"), ("region", "eu")], "used", 10.0, T0),
            in_table(
                "mem",
                &[("host", "b"), ("region", "us")],
                "used",
                20.0,
                T0 + 1,
            ),
            in_table("disk", &[("dev", "sda")], "usage", 0.5, T0 + 2),
        ],
    )
    .await;
    let d = Arc::clone(&db);
    tokio::task::spawn_blocking(move || d.snapshot())
        .await
        .expect("join")
        .expect("snapshot");
    let views: Vec<_> = ["cpu", "mem", "disk"]
        .iter()
        .map(|t| db.table_view(t).expect("view").expect("table"))
        .collect();
    assert!(
        views
            .iter()
            .all(|v| v.buffered.is_empty() && v.files.len() == 1)
    );
    assert!(views.iter().all(|v| v.files[0].1.shared));
    assert!(views.iter().all(|v| v.files[0].0 == views[0].files[0].0));
    // A later hour adds a tag to mem; the shared file's rows read it as null.
    write(
        &db,
        vec![in_table(
            "mem",
            &[("host", "c"), ("zone", "z1")],
            "used",
            30.0,
            T0 + 9 * HOUR_NS,
        )],
    )
    .await;
    let e = engine(&db);
    let out = text(&e, "SELECT host, usage FROM cpu ORDER BY host").await;
    assert!(
        out.contains("| a    | 1.0   |") && out.contains("| b    | 2.0   |"),
        "{out}"
    );
    assert_eq!(
        out.matches("| ").count(),
        6,
        "header + 2 rows, 2 columns: {out}"
    );
    let out = text(&e, "SELECT count(*) AS n, sum(used) AS s FROM mem").await;
    assert!(out.contains("| 3 | 60.0 |"), "{out}");
    let out = text(&e, "SELECT host, region, zone FROM mem ORDER BY host").await;
    assert!(out.contains("| a    | eu     |      |"), "{out}");
    assert!(out.contains("| c    |        | z1   |"), "{out}");
    let out = text(&e, "SELECT * FROM disk").await;
    assert!(out.contains("sda") && !out.contains("eu"), "{out}");
    let out = text(
        &e,
        "SELECT c.host, c.usage, m.used FROM cpu c JOIN mem m ON c.host = m.host AND c.time = m.time ORDER BY 1",
    )
    .await;
    assert!(out.contains("| a    | 1.0   | 10.0 |"), "{out}");
    let out = text(
        &e,
        "EXPLAIN ANALYZE SELECT count(*) FROM mem WHERE region = 'us'",
    )
    .await;
    assert!(out.contains("files_scanned=1"), "{out}");
    let out = text(&e, "SELECT count(*) AS n FROM mem WHERE region = 'us'").await;
    assert!(out.contains("| 1 |"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_beyond_the_concurrency_cap_are_refused_as_busy_not_queued_forever() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = db(dir.path());
    let e = Arc::new(
        QueryEngine::new(
            Arc::clone(&db),
            QueryConfig {
                timeout: Duration::from_secs(5),
                memory_limit: 64 * 1024 * 1024,
                threads: 2,
                max_concurrent: 1,
            },
        )
        .expect("engine"),
    );
    // Holds the only slot until its timeout: far more rows than it can count in 5 s.
    let hog = Arc::clone(&e);
    let running = tokio::spawn(async move {
        hog.sql("SELECT count(*) FROM generate_series(1, 1000000) a, generate_series(1, 1000000) b")
            .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let err = e.sql("SELECT 1").await.expect_err("the slot is taken");
    assert_eq!(err.kind(), QueryErrorKind::Busy, "{err}");
    let hog = running
        .await
        .expect("join")
        .expect_err("ends at its timeout");
    assert_eq!(hog.kind(), QueryErrorKind::TooExpensive, "{hog}");
    assert_eq!(
        e.sql("SELECT 1").await.expect("slot free again").num_rows(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn histogram_quantile_gives_p99_per_service_in_one_query() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = db(dir.path());
    let bucket = |service: &str, instance: &str, le: &str, v: f64, t: i64| Point {
        table: "latency_bucket".into(),
        tags: vec![
            ("instance".into(), instance.into()),
            ("le".into(), le.into()),
            ("service".into(), service.into()),
        ],
        fields: vec![("value".into(), FieldValue::F64(v))],
        time_ns: t,
    };
    let mut points = Vec::new();
    // Two instances of "grab" whose buckets sum to 10 / 60 / 90 / 100; "open" all under 0.1.
    for (inst, counts) in [
        ("i1", [4.0, 30.0, 45.0, 50.0]),
        ("i2", [6.0, 30.0, 45.0, 50.0]),
    ] {
        for (le, c) in ["0.1", "0.5", "1", "+Inf"].iter().zip(counts) {
            points.push(bucket("grab", inst, le, c, T0));
        }
    }
    for (le, c) in ["0.1", "0.5", "1", "+Inf"]
        .iter()
        .zip([20.0, 20.0, 20.0, 20.0])
    {
        points.push(bucket("open", "i1", le, c, T0));
    }
    write(&db, points).await;
    let e = engine(&db);
    let out = text(
        &e,
        "SELECT service, histogram_quantile(0.5, le, value) AS p50, histogram_quantile(0.99, le, value) AS p99 \
         FROM latency_bucket GROUP BY service ORDER BY service",
    )
    .await;
    // grab: rank 50 in (0.1, 0.5] → 0.42; rank 99 in +Inf → 1. open: rank 10 in (0, 0.1] → 0.05.
    assert!(out.contains("| grab    | 0.42"), "{out}");
    assert!(out.contains("| open    | 0.05"), "{out}");
    assert!(out.contains("| 1.0 "), "{out}");
    let err = e
        .sql("SELECT histogram_quantile(0.5, 'fast', 1.0)")
        .await
        .expect_err("bad bound");
    assert!(err.to_string().contains("\"fast\""), "{err}");
}

/// A window partitioned by `series_id` of the tags gives what partitioning by the tags gives,
/// across buffer and Parquet, with a tag missing from some series.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn series_id_partitions_a_window_like_the_tags_themselves() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = db(dir.path());
    let mut points = Vec::new();
    for (i, host) in ["a", "b", "c"].iter().enumerate() {
        for k in 0..20i64 {
            let mut p = pt(host, (k * (i as i64 + 1)) as f64, T0 + k * 600_000_000_000);
            if *host != "c" {
                p.tags.push(("dc".into(), "x".into()));
            }
            points.push(p);
        }
    }
    write(&db, points).await;
    db.snapshot().expect("snapshot");
    let e = engine(&db);
    let by_tags = text(
        &e,
        "SELECT host, time, usage - lag(usage) OVER (PARTITION BY host, dc ORDER BY time) AS inc \
         FROM cpu ORDER BY host, time",
    )
    .await;
    let by_id = text(
        &e,
        "SELECT host, time, usage - lag(usage) OVER (PARTITION BY sid ORDER BY time) AS inc \
         FROM (SELECT series_id(host, dc) AS sid, * FROM cpu) s ORDER BY host, time",
    )
    .await;
    assert_eq!(by_id, by_tags);
    assert!(by_id.contains("| c    |"), "{by_id}");
    let distinct = text(
        &e,
        "SELECT count(DISTINCT series_id(host, dc)) AS n FROM cpu",
    )
    .await;
    assert!(distinct.contains("| 3 |"), "{distinct}");
}
