//! Results cache for dashboard queries, in the manner of Grafana's query caching and the
//! Prometheus query frontends: a panel or variable query whose expanded SQL was answered less
//! than a TTL ago is answered from memory. Ranges relative to `now` are aligned to the panel's
//! bucket width before expansion (see `api::dashboards`), so reloads and auto-refreshes inside
//! one bucket expand to the same SQL.
//!
//! Concurrent requests for the same SQL share one execution: twelve panels that all need the
//! same variable's choices on a cold load run its query once. Failures are not cached.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::OnceCell;

/// Rows as the dashboards API returns them.
pub type Rows = Arc<Vec<serde_json::Map<String, serde_json::Value>>>;

struct Entry {
    /// When the result arrived (the TTL counts from there); while it is being computed, when
    /// the computation started.
    created: Instant,
    ttl: Duration,
    cell: Arc<OnceCell<Rows>>,
}

impl Entry {
    /// A result still fresh, or one still being computed (requests join it).
    fn usable(&self, now: Instant) -> bool {
        !self.cell.initialized() || now.duration_since(self.created) < self.ttl
    }
}

/// Bounded map from expanded SQL to its rows.
pub struct QueryCache {
    entries: Mutex<HashMap<String, Entry>>,
    capacity: usize,
    max_rows: usize,
    hits: std::sync::atomic::AtomicU64,
    misses: std::sync::atomic::AtomicU64,
}

impl QueryCache {
    /// A cache of at most `capacity` results of at most `max_rows` rows each (larger results
    /// are answered but not kept).
    pub fn new(capacity: usize, max_rows: usize) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
            max_rows,
            hits: 0.into(),
            misses: 0.into(),
        }
    }

    /// `(hits, misses)` so far.
    pub fn stats(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (self.hits.load(Relaxed), self.misses.load(Relaxed))
    }

    /// The rows for `sql`: from the cache if a result younger than its TTL is there (or being
    /// computed), else from `run`, kept for `ttl`. A zero `ttl` bypasses the cache.
    pub async fn get_or_run<F, Fut, E>(&self, sql: &str, ttl: Duration, run: F) -> Result<Rows, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Rows, E>>,
    {
        use std::sync::atomic::Ordering::Relaxed;
        if ttl.is_zero() {
            return run().await;
        }
        let cell = {
            let mut map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            match map.get(sql) {
                Some(e) if e.usable(now) => Arc::clone(&e.cell),
                _ => {
                    if map.len() >= self.capacity {
                        map.retain(|_, e| e.usable(now));
                    }
                    if map.len() >= self.capacity
                        && let Some(oldest) = map
                            .iter()
                            .min_by_key(|(_, e)| e.created)
                            .map(|(k, _)| k.clone())
                    {
                        map.remove(&oldest);
                    }
                    let cell = Arc::new(OnceCell::new());
                    map.insert(
                        sql.to_string(),
                        Entry {
                            created: now,
                            ttl,
                            cell: Arc::clone(&cell),
                        },
                    );
                    cell
                }
            }
        };
        if let Some(rows) = cell.get() {
            self.hits.fetch_add(1, Relaxed);
            return Ok(Arc::clone(rows));
        }
        let mut ran = false;
        let result = cell
            .get_or_try_init(|| {
                ran = true;
                run()
            })
            .await
            .map(Arc::clone);
        if ran {
            self.misses.fetch_add(1, Relaxed);
        } else {
            self.hits.fetch_add(1, Relaxed);
        }
        match &result {
            Ok(rows) if rows.len() > self.max_rows => self.forget(sql, &cell),
            Err(_) => self.forget(sql, &cell),
            Ok(_) if ran => self.arrived(sql, &cell),
            Ok(_) => {}
        }
        result
    }

    /// Starts the TTL of the entry for `sql` now, if it still holds `cell`.
    fn arrived(&self, sql: &str, cell: &Arc<OnceCell<Rows>>) {
        let mut map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = map.get_mut(sql)
            && Arc::ptr_eq(&e.cell, cell)
        {
            e.created = Instant::now();
        }
    }

    /// Drops the entry for `sql` if it still holds `cell`.
    fn forget(&self, sql: &str, cell: &Arc<OnceCell<Rows>>) {
        let mut map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if map.get(sql).is_some_and(|e| Arc::ptr_eq(&e.cell, cell)) {
            map.remove(sql);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn rows(n: usize) -> Rows {
        Arc::new(vec![serde_json::Map::new(); n])
    }

    #[tokio::test]
    async fn a_fresh_result_is_reused_and_an_expired_one_recomputed() {
        let c = QueryCache::new(8, 100);
        let runs = AtomicUsize::new(0);
        let run = || async {
            runs.fetch_add(1, Ordering::SeqCst);
            Ok::<_, ()>(rows(2))
        };
        let ttl = Duration::from_millis(200);
        assert_eq!(c.get_or_run("q", ttl, run).await.unwrap().len(), 2);
        c.get_or_run("q", ttl, run).await.unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        tokio::time::sleep(Duration::from_millis(250)).await;
        c.get_or_run("q", ttl, run).await.unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        c.get_or_run("other", ttl, run).await.unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 3);
        assert_eq!(c.stats(), (1, 3));
    }

    #[tokio::test]
    async fn the_ttl_counts_from_when_the_result_arrived() {
        let c = QueryCache::new(8, 100);
        let runs = AtomicUsize::new(0);
        let slow = || async {
            runs.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(300)).await;
            Ok::<_, ()>(rows(1))
        };
        let ttl = Duration::from_millis(200);
        c.get_or_run("q", ttl, slow).await.unwrap();
        // Longer than the TTL after the start, well inside it after the arrival.
        c.get_or_run("q", ttl, slow).await.unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn concurrent_requests_share_one_run() {
        let c = Arc::new(QueryCache::new(8, 100));
        let runs = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..10 {
            let (c, runs) = (Arc::clone(&c), Arc::clone(&runs));
            tasks.push(tokio::spawn(async move {
                c.get_or_run("q", Duration::from_secs(60), || async {
                    runs.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Ok::<_, ()>(rows(1))
                })
                .await
                .unwrap()
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn failures_large_results_and_zero_ttl_are_not_kept() {
        let c = QueryCache::new(8, 3);
        let runs = AtomicUsize::new(0);
        let ttl = Duration::from_secs(60);
        let fail = || async {
            runs.fetch_add(1, Ordering::SeqCst);
            Err::<Rows, _>("boom")
        };
        assert!(c.get_or_run("q", ttl, fail).await.is_err());
        assert!(c.get_or_run("q", ttl, fail).await.is_err());
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        let big = || async {
            runs.fetch_add(1, Ordering::SeqCst);
            Ok::<_, ()>(rows(4))
        };
        c.get_or_run("big", ttl, big).await.unwrap();
        c.get_or_run("big", ttl, big).await.unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 4);
        let small = || async {
            runs.fetch_add(1, Ordering::SeqCst);
            Ok::<_, ()>(rows(1))
        };
        c.get_or_run("s", Duration::ZERO, small).await.unwrap();
        c.get_or_run("s", Duration::ZERO, small).await.unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 6);
    }

    #[tokio::test]
    async fn capacity_evicts_the_oldest() {
        let c = QueryCache::new(2, 100);
        let runs = AtomicUsize::new(0);
        let run = || async {
            runs.fetch_add(1, Ordering::SeqCst);
            Ok::<_, ()>(rows(1))
        };
        let ttl = Duration::from_secs(60);
        for q in ["a", "b", "c"] {
            c.get_or_run(q, ttl, run).await.unwrap();
        }
        // "a" was evicted for "c"; "c" is still there.
        c.get_or_run("c", ttl, run).await.unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 3);
        c.get_or_run("a", ttl, run).await.unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 4);
    }
}
