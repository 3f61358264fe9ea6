//! Crest's own metrics. Labels come only from the route table and status classes, never from
//! request content.

use axum::http::StatusCode;
use ingest::Db;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

const QUERY_BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0];

/// Counters kept by the HTTP layer.
#[derive(Debug)]
pub struct ServerMetrics {
    routes: Vec<String>,
    /// Per route: 2xx, 4xx, 5xx, other.
    requests: Vec<[AtomicU64; 4]>,
    query_buckets: [AtomicU64; QUERY_BUCKETS.len()],
    query_count: AtomicU64,
    query_errors: AtomicU64,
    query_sum_micros: AtomicU64,
}

impl ServerMetrics {
    /// Metrics for the given route labels (`METHOD path`).
    pub fn new(routes: Vec<String>) -> Self {
        let requests = routes.iter().map(|_| Default::default()).collect();
        Self {
            routes,
            requests,
            query_buckets: Default::default(),
            query_count: AtomicU64::new(0),
            query_errors: AtomicU64::new(0),
            query_sum_micros: AtomicU64::new(0),
        }
    }

    /// Counts one answered request.
    pub fn record(&self, route: usize, status: StatusCode) {
        let class = match status.as_u16() {
            200..=299 => 0,
            400..=499 => 1,
            500..=599 => 2,
            _ => 3,
        };
        if let Some(r) = self.requests.get(route) {
            r[class].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Records one SQL query's duration.
    pub fn observe_query(&self, d: Duration, ok: bool) {
        let secs = d.as_secs_f64();
        for (b, le) in self.query_buckets.iter().zip(QUERY_BUCKETS) {
            if secs <= le {
                b.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.query_count.fetch_add(1, Ordering::Relaxed);
        self.query_sum_micros.fetch_add(
            u64::try_from(d.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        if !ok {
            self.query_errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Renders everything in the Prometheus text format.
    pub fn render(&self, db: &Db) -> String {
        let mut s = String::with_capacity(4096);
        let st = db.stats();
        let counters = [
            (
                "crest_points_written_total",
                "Points acknowledged (durable in the WAL).",
                &st.points_written,
            ),
            (
                "crest_points_rejected_total",
                "Points refused as invalid or over a limit.",
                &st.points_rejected,
            ),
            (
                "crest_wal_bytes_total",
                "Bytes appended to the WAL.",
                &st.wal_bytes,
            ),
            (
                "crest_snapshots_total",
                "Snapshots of the write buffer to Parquet.",
                &st.snapshots,
            ),
            (
                "crest_parquet_bytes_written_total",
                "Bytes of Parquet written by snapshots.",
                &st.parquet_bytes_written,
            ),
            (
                "crest_compactions_total",
                "Compaction runs that merged at least one hour.",
                &st.compactions,
            ),
            (
                "crest_files_compacted_total",
                "Parquet files replaced by compaction.",
                &st.files_compacted,
            ),
        ];
        for (name, help, v) in counters {
            let _ = writeln!(
                s,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                v.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            s,
            "# HELP crest_buffer_bytes Approximate bytes held by the write buffer.\n# TYPE crest_buffer_bytes gauge\ncrest_buffer_bytes {}",
            db.buffer_bytes()
        );
        let _ = writeln!(
            s,
            "# HELP crest_tables Tables known.\n# TYPE crest_tables gauge\ncrest_tables {}",
            db.table_names().len()
        );
        let _ = writeln!(
            s,
            "# HELP crest_http_requests_total HTTP requests answered, by route and status class.\n# TYPE crest_http_requests_total counter"
        );
        for (route, counts) in self.routes.iter().zip(&self.requests) {
            for (class, c) in ["2xx", "4xx", "5xx", "other"].iter().zip(counts) {
                let _ = writeln!(
                    s,
                    "crest_http_requests_total{{route=\"{route}\",status=\"{class}\"}} {}",
                    c.load(Ordering::Relaxed)
                );
            }
        }
        let _ = writeln!(
            s,
            "# HELP crest_query_duration_seconds SQL query wall time.\n# TYPE crest_query_duration_seconds histogram"
        );
        for (b, le) in self.query_buckets.iter().zip(QUERY_BUCKETS) {
            let _ = writeln!(
                s,
                "crest_query_duration_seconds_bucket{{le=\"{le}\"}} {}",
                b.load(Ordering::Relaxed)
            );
        }
        let count = self.query_count.load(Ordering::Relaxed);
        let _ = writeln!(
            s,
            "crest_query_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            s,
            "crest_query_duration_seconds_sum {}",
            self.query_sum_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(s, "crest_query_duration_seconds_count {count}");
        let _ = writeln!(
            s,
            "# HELP crest_query_errors_total SQL queries that failed.\n# TYPE crest_query_errors_total counter\ncrest_query_errors_total {}",
            self.query_errors.load(Ordering::Relaxed)
        );
        s
    }
}
