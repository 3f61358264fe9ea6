//! The database: validation, WAL, buffer, snapshots, retention, and consistent views for queries.

use crate::batch::{Batch, PointRef, ValueRef};
use crate::buffer::{HOUR_NS, HashMap, TableBuffer, batch_to_points, hour_of};
use crate::clock::Clock;
use crate::compact::{self, Candidate, SHARED_MAX_ROWS};
use crate::error::{Error, Result};
use crate::manifest::{FileMeta, Manifest};
use crate::point::Point;
use crate::schema::{TABLE_COLUMN, TIME_COLUMN, TableSchema};
use crate::wal::{Recovery, Tail, Wal, WalConfig};
use crate::{paths, persist};
use arrow::array::RecordBatch;
use parking_lot::{Mutex, RwLock};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Per-point and per-table limits, checked before anything is written.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Most tags one point may carry.
    pub max_tags: usize,
    /// Longest table, tag or field name, in bytes.
    pub max_name_len: usize,
    /// Longest tag value, in bytes.
    pub max_tag_value_len: usize,
    /// Longest string field value, in bytes.
    pub max_string_len: usize,
    /// Most active (buffered) series per table; new series beyond it are refused.
    pub max_series_per_table: usize,
    /// Most columns (tags + fields) per table.
    pub max_columns: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_tags: 64,
            max_name_len: 256,
            max_tag_value_len: 4096,
            max_string_len: 1024 * 1024,
            max_series_per_table: 1_000_000,
            max_columns: 1024,
        }
    }
}

/// How long data is kept.
#[derive(Debug, Clone, Default)]
pub struct Retention {
    /// Keep every table this long (ns); `None` keeps forever.
    pub default_ns: Option<i64>,
    /// Per-table overrides (ns).
    pub per_table: BTreeMap<String, i64>,
}

impl Retention {
    /// Retention of `table`, if any.
    pub fn for_table(&self, table: &str) -> Option<i64> {
        self.per_table.get(table).copied().or(self.default_ns)
    }
}

/// Settings of a [`Db`].
#[derive(Debug, Clone)]
pub struct DbConfig {
    /// The data directory.
    pub data_dir: PathBuf,
    /// WAL settings.
    pub wal: WalConfig,
    /// Input limits.
    pub limits: Limits,
    /// Data retention.
    pub retention: Retention,
    /// Refuse writes (503) while the buffer holds more than this many bytes.
    pub max_buffer_bytes: usize,
    /// Persisted partitions whose hour ended within this window stay in memory; older hours
    /// are also the ones compaction merges.
    pub hot_window_ns: i64,
    /// A file the manifest stopped naming is deleted this long after (ns), so that queries
    /// that planned with it can still read it.
    pub file_grace_ns: i64,
}

impl DbConfig {
    /// Production defaults for `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            wal: WalConfig::default(),
            limits: Limits::default(),
            retention: Retention::default(),
            max_buffer_bytes: 2 * 1024 * 1024 * 1024,
            hot_window_ns: HOUR_NS,
            file_grace_ns: 300 * 1_000_000_000,
        }
    }
}

/// Constructor arguments of a [`Db`].
#[derive(Debug)]
pub struct DbArgs {
    /// Settings.
    pub config: DbConfig,
    /// Source of "now".
    pub clock: Arc<dyn Clock>,
}

/// What one write did.
#[derive(Debug, Default)]
pub struct WriteOutcome {
    /// Points made durable.
    pub accepted: usize,
    /// Points refused, by the caller's tag (line number or series index), with the reason.
    pub rejected: Vec<(usize, Error)>,
}

/// What one snapshot did.
#[derive(Debug, Default, Clone, Copy)]
pub struct SnapshotReport {
    /// Files written.
    pub files: usize,
    /// Rows written.
    pub rows: u64,
    /// Bytes written.
    pub bytes: u64,
    /// WAL segments removed.
    pub wal_segments_removed: usize,
    /// Partitions evicted from memory.
    pub evicted: usize,
}

/// A consistent view of one table for a query: buffered hours plus files for the other hours.
#[derive(Debug, Clone)]
pub struct TableView {
    /// Columns.
    pub schema: TableSchema,
    /// Buffered hours (authoritative for their hour), as sorted batches.
    pub buffered: Vec<(i64, RecordBatch)>,
    /// Files of hours not in the buffer, with absolute paths.
    pub files: Vec<(PathBuf, FileMeta)>,
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct Stats {
    /// Points acknowledged.
    pub points_written: AtomicU64,
    /// Points refused.
    pub points_rejected: AtomicU64,
    /// WAL bytes appended.
    pub wal_bytes: AtomicU64,
    /// Snapshots completed.
    pub snapshots: AtomicU64,
    /// Parquet bytes written.
    pub parquet_bytes_written: AtomicU64,
    /// Compaction runs that merged at least one hour.
    pub compactions: AtomicU64,
    /// Files compaction replaced.
    pub files_compacted: AtomicU64,
}

/// What one compaction did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CompactReport {
    /// Hours whose small tables were merged.
    pub hours: usize,
    /// Distinct files those hours' small tables were in before.
    pub files_before: usize,
    /// Files they are in now.
    pub files_after: usize,
    /// Rows rewritten.
    pub rows: u64,
}

/// Tables by name in hash maps: a request of a few hundred tables looks each up a few times
/// under the lock, where an ordered map compared names sharing long prefixes (`node_...`) at
/// every level. What shows tables in order (names, snapshots) sorts them.
struct State {
    schemas: HashMap<String, TableSchema>,
    schema_version: u64,
    tables: HashMap<String, TableBuffer>,
    applied_seq: u64,
    buffer_bytes: usize,
}

struct Shared {
    cfg: DbConfig,
    state: RwLock<State>,
    manifest: Mutex<Manifest>,
    clock: Arc<dyn Clock>,
    snapshot_lock: Mutex<()>,
    stats: Stats,
    /// Hours a late write reached but whose file could not be loaded; while any is listed,
    /// snapshots refuse, so the file is never replaced without its rows.
    load_failures: Mutex<BTreeSet<(String, i64)>>,
    /// Files the manifest no longer names, with when they stopped being named; deleted after
    /// the grace period (or at the next start, as orphans).
    retired: Mutex<Vec<(String, i64)>>,
}

/// The embedded time-series store.
pub struct Db {
    shared: Arc<Shared>,
    wal: Wal<Logged>,
    recovery: RecoveryReport,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("data_dir", &self.shared.cfg.data_dir)
            .finish_non_exhaustive()
    }
}

/// What opening found, for logs and tests.
#[derive(Debug, Clone, Default)]
pub struct RecoveryReport {
    /// WAL records replayed.
    pub replayed_records: usize,
    /// Torn WAL tail cut at (file, offset).
    pub truncated_tail: Option<(PathBuf, u64)>,
    /// Orphan files removed.
    pub orphans_removed: usize,
}

impl Db {
    /// Opens (or creates) the database: loads the manifest, removes orphan files, replays the
    /// WAL after the manifest's sequence.
    pub fn open(args: DbArgs) -> Result<Self> {
        let DbArgs { config, clock } = args;
        let data_dir = config.data_dir.clone();
        std::fs::create_dir_all(&data_dir).map_err(|e| Error::io(&data_dir, e))?;
        let manifest = Manifest::load(&data_dir)?;
        let orphans_removed = remove_orphans(&data_dir, &manifest)?;
        let schemas = manifest
            .tables
            .iter()
            .map(|(k, t)| (k.clone(), t.schema.clone()))
            .collect();
        let after = manifest.wal_seq;
        let shared = Arc::new(Shared {
            state: RwLock::new(State {
                schemas,
                schema_version: 0,
                tables: HashMap::default(),
                applied_seq: after,
                buffer_bytes: 0,
            }),
            manifest: Mutex::new(manifest),
            clock,
            snapshot_lock: Mutex::new(()),
            stats: Stats::default(),
            load_failures: Mutex::new(BTreeSet::new()),
            retired: Mutex::new(Vec::new()),
            cfg: config.clone(),
        });
        let sink = Arc::clone(&shared);
        let (
            wal,
            Recovery {
                records,
                truncated_tail,
                ..
            },
        ) = Wal::open(
            &data_dir,
            config.wal.clone(),
            after,
            Box::new(move |seq, logged: &Logged| sink.apply(seq, &logged.batch)),
        )?;
        let replayed_records = records.len();
        for (seq, payload) in records {
            let points = record::decode(&payload).ok_or_else(|| Error::WalCorrupt {
                path: paths::wal_dir(&data_dir),
                offset: 0,
                reason: format!("record {seq} passed its checksum but does not decode"),
            })?;
            shared.replay(seq, points);
        }
        if replayed_records > 0 {
            tracing::info!(records = replayed_records, "Replayed WAL.");
        }
        if let Some((table, hour)) = shared.load_failures.lock().first().cloned() {
            return Err(Error::Manifest {
                path: paths::manifest_dir(&data_dir),
                reason: format!(
                    "the persisted file of table {table:?} hour {hour} could not be loaded during WAL replay; see the log"
                ),
            });
        }
        Ok(Self {
            shared,
            wal,
            recovery: RecoveryReport {
                replayed_records,
                truncated_tail,
                orphans_removed,
            },
        })
    }

    /// What opening found.
    pub fn recovery(&self) -> &RecoveryReport {
        &self.recovery
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.shared.stats
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.shared.cfg.data_dir
    }

    /// Validates points, makes the valid ones durable (WAL fsync) and visible, and reports the
    /// rest. Each point carries a caller tag (line number, series index) used in rejections.
    pub async fn write(&self, points: Vec<(usize, Point)>) -> Result<WriteOutcome> {
        self.write_batch(Batch::from_points(points)).await
    }

    /// [`Db::write`] for points already in a [`Batch`], tagged by the caller.
    pub async fn write_batch(&self, batch: Batch) -> Result<WriteOutcome> {
        self.write_decoded(batch, None).await
    }

    /// [`Db::write_batch`] for a batch a decoder made from a request (each point tagged
    /// uniquely, as line protocol's line numbers and remote write's sample indices are): the
    /// WAL keeps the request instead of the points where it can (see [`record`]).
    pub async fn write_decoded(
        &self,
        batch: Batch,
        source: Option<Source>,
    ) -> Result<WriteOutcome> {
        let (valid, rejected) = self.shared.validate(batch)?;
        self.shared
            .stats
            .points_rejected
            .fetch_add(rejected.len() as u64, Ordering::Relaxed);
        if valid.is_empty() {
            return Ok(WriteOutcome {
                accepted: 0,
                rejected,
            });
        }
        let refused: Vec<usize> = rejected.iter().map(|(tag, _)| *tag).collect();
        let n = valid.len();
        let (bytes, logged) = record::encode(valid, &refused, source);
        self.shared.stats.wal_bytes.fetch_add(
            (bytes.len() + logged.tail().len()) as u64,
            Ordering::Relaxed,
        );
        // The batch and its bytes come back with the ack and are freed here, on the thread
        // that made them (see `wal::Acked`).
        let acked = self.wal.append(bytes, logged).await?;
        drop(acked);
        self.shared
            .stats
            .points_written
            .fetch_add(n as u64, Ordering::Relaxed);
        Ok(WriteOutcome {
            accepted: n,
            rejected,
        })
    }

    /// Buffered bytes now.
    pub fn buffer_bytes(&self) -> usize {
        self.shared.state.read().buffer_bytes
    }

    /// The buffer size over which writes are refused until a snapshot frees memory.
    pub fn max_buffer_bytes(&self) -> usize {
        self.shared.cfg.max_buffer_bytes
    }

    /// Table names, sorted.
    pub fn table_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.shared.state.read().schemas.keys().cloned().collect();
        names.sort_unstable();
        names
    }

    /// A table's current columns.
    pub fn table_schema(&self, table: &str) -> Option<TableSchema> {
        self.shared.state.read().schemas.get(table).cloned()
    }

    /// A consistent view of `table` for a query (buffer read first, then the manifest, so an
    /// hour evicted in between is found in the manifest).
    pub fn table_view(&self, table: &str) -> Result<Option<TableView>> {
        let (schema, buffered) = {
            let st = self.shared.state.read();
            let Some(schema) = st.schemas.get(table).cloned() else {
                return Ok(None);
            };
            let mut buffered = Vec::new();
            if let Some(tb) = st.tables.get(table) {
                for (hour, part) in &tb.partitions {
                    buffered.push((*hour, part.to_batch(&schema, st.schema_version)?));
                }
            }
            (schema, buffered)
        };
        let hours: BTreeSet<i64> = buffered.iter().map(|(h, _)| *h).collect();
        let m = self.shared.manifest.lock();
        let files = m
            .tables
            .get(table)
            .map(|t| {
                t.files
                    .values()
                    .filter(|f| !hours.contains(&f.hour_ns))
                    .map(|f| {
                        (
                            paths::resolve(&self.shared.cfg.data_dir, &f.path),
                            f.clone(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(Some(TableView {
            schema,
            buffered,
            files,
        }))
    }

    /// Persists every changed hour to Parquet, commits the manifest, truncates the WAL and evicts
    /// cold hours. Blocking: run it on a blocking thread.
    pub fn snapshot(&self) -> Result<SnapshotReport> {
        let shared = &self.shared;
        let _one_at_a_time = shared.snapshot_lock.lock();
        let data_dir = &shared.cfg.data_dir;
        if let Some((table, hour)) = shared.load_failures.lock().first().cloned() {
            return Err(Error::Manifest {
                path: paths::manifest_dir(data_dir),
                reason: format!(
                    "snapshot refused: the persisted file of table {table:?} hour {hour} could not be loaded before a late write; restart to replay the WAL"
                ),
            });
        }
        // 1. Capture changed hours and the WAL position they reflect; mark them clean only
        //    once every batch is built.
        let (seq, schemas, captured) = {
            let mut st = shared.state.write();
            let version = st.schema_version;
            let schemas = st.schemas.clone();
            let mut captured = Vec::new();
            for (table, tb) in st.tables.iter() {
                let Some(schema) = schemas.get(table) else {
                    continue;
                };
                for (hour, part) in tb.partitions.iter() {
                    if part.dirty {
                        captured.push((table.clone(), *hour, part.to_batch(schema, version)?));
                    }
                }
            }
            for (table, hour, _) in &captured {
                if let Some(p) = st
                    .tables
                    .get_mut(table)
                    .and_then(|tb| tb.partitions.get_mut(hour))
                {
                    p.dirty = false;
                }
            }
            // In table and hour order, as files are planned from it.
            captured.sort_unstable_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
            (st.applied_seq, schemas, captured)
        };
        let mut report = SnapshotReport::default();
        let restore_dirty = |captured: &[(String, i64, RecordBatch)]| {
            let mut st = shared.state.write();
            for (t, h, _) in captured {
                if let Some(p) = st.tables.get_mut(t).and_then(|tb| tb.partitions.get_mut(h)) {
                    p.dirty = true;
                }
            }
        };
        // 2. Write the files: each hour's small tables together, big ones alone.
        let mut by_hour: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
        for (i, (_, hour, batch)) in captured.iter().enumerate() {
            if batch.num_rows() > 0 {
                by_hour.entry(*hour).or_default().push(i);
            }
        }
        let mut written = Vec::with_capacity(captured.len());
        for (hour, idxs) in &by_hour {
            let candidates: Vec<Candidate> = idxs
                .iter()
                .map(|&i| Candidate {
                    table: captured[i].0.clone(),
                    rows: captured[i].2.num_rows(),
                    schema: captured[i].2.schema(),
                })
                .collect();
            for group in compact::plan_groups(&candidates) {
                let parts: Vec<(&str, &RecordBatch)> = group
                    .iter()
                    .map(|&g| (captured[idxs[g]].0.as_str(), &captured[idxs[g]].2))
                    .collect();
                match shared.write_group(*hour, &parts) {
                    Ok((metas, size)) => {
                        report.files += 1;
                        report.bytes += size;
                        report.rows += metas.iter().map(|(_, m)| m.rows).sum::<u64>();
                        written.extend(metas);
                    }
                    Err(e) => {
                        shared.discard(&written);
                        restore_dirty(&captured);
                        return Err(e);
                    }
                }
            }
        }
        // 3. Commit the manifest: the point after which the WAL up to `seq` may go.
        {
            let mut m = shared.manifest.lock();
            let mut next = m.clone();
            let mut replaced = Vec::new();
            for (table, meta) in &written {
                let entry = next.tables.entry(table.clone()).or_default();
                if let Some(old) = entry.files.insert(meta.hour_ns, meta.clone()) {
                    replaced.push(old.path);
                }
            }
            for (table, schema) in &schemas {
                if let Some(entry) = next.tables.get_mut(table) {
                    entry.schema.merge(schema);
                }
            }
            next.wal_seq = next.wal_seq.max(seq);
            if let Err(e) = next.commit(data_dir) {
                drop(m);
                restore_dirty(&captured);
                return Err(e);
            }
            *m = next;
            shared.retire(&m, replaced);
        };
        shared.collect_garbage();
        // 4. WAL up to `seq` is persisted.
        report.wal_segments_removed = futures::executor::block_on(self.wal.truncate(seq))?;
        // 5. Evict clean cold hours.
        let cutoff = shared
            .clock
            .now_ns()
            .saturating_sub(shared.cfg.hot_window_ns);
        {
            let mut st = shared.state.write();
            let mut freed = 0usize;
            for tb in st.tables.values_mut() {
                let cold: Vec<i64> = tb
                    .partitions
                    .iter()
                    .filter(|(h, p)| !p.dirty && **h + HOUR_NS <= cutoff)
                    .map(|(h, _)| *h)
                    .collect();
                for h in cold {
                    if let Some(p) = tb.remove_partition(h) {
                        freed += p.bytes;
                        report.evicted += 1;
                    }
                }
            }
            st.buffer_bytes = st.buffer_bytes.saturating_sub(freed);
        }
        shared.stats.snapshots.fetch_add(1, Ordering::Relaxed);
        shared
            .stats
            .parquet_bytes_written
            .fetch_add(report.bytes, Ordering::Relaxed);
        Ok(report)
    }

    /// Drops hours older than the retention of their table, from the buffer and from disk.
    /// Returns how many files were removed.
    pub fn enforce_retention(&self) -> Result<usize> {
        let shared = &self.shared;
        let _one_at_a_time = shared.snapshot_lock.lock();
        let now = shared.clock.now_ns();
        let expired = |table: &str, hour: i64| {
            shared
                .cfg
                .retention
                .for_table(table)
                .is_some_and(|keep| hour + HOUR_NS <= now.saturating_sub(keep))
        };
        {
            let mut st = shared.state.write();
            let mut freed = 0;
            for (table, tb) in st.tables.iter_mut() {
                let old: Vec<i64> = tb
                    .partitions
                    .keys()
                    .copied()
                    .filter(|h| expired(table, *h))
                    .collect();
                for h in old {
                    freed += tb.remove_partition(h).map_or(0, |p| p.bytes);
                }
            }
            st.buffer_bytes = st.buffer_bytes.saturating_sub(freed);
        }
        let mut m = shared.manifest.lock();
        let mut next = m.clone();
        let mut removed = Vec::new();
        for (table, entry) in next.tables.iter_mut() {
            let old: Vec<i64> = entry
                .files
                .keys()
                .copied()
                .filter(|h| expired(table, *h))
                .collect();
            for h in old {
                if let Some(f) = entry.files.remove(&h) {
                    removed.push(f.path);
                }
            }
        }
        if removed.is_empty() {
            return Ok(0);
        }
        next.commit(&shared.cfg.data_dir)?;
        *m = next;
        let n = removed.len();
        shared.retire(&m, removed);
        drop(m);
        shared.collect_garbage();
        Ok(n)
    }

    /// Merges the files that each cold hour's small tables are spread over (after late writes,
    /// or tables that stopped mid-hour) into as few shared files as [`compact::plan_groups`]
    /// allows. Hours still buffered are left alone: the buffer is their authority. Each hour is
    /// its own manifest commit; a crash leaves either the old files or the new ones named.
    /// Blocking: run it on a blocking thread.
    pub fn compact(&self) -> Result<CompactReport> {
        let shared = &self.shared;
        let _one_at_a_time = shared.snapshot_lock.lock();
        let data_dir = &shared.cfg.data_dir;
        let cutoff = shared
            .clock
            .now_ns()
            .saturating_sub(shared.cfg.hot_window_ns);
        let buffered: BTreeSet<(String, i64)> = {
            let st = shared.state.read();
            st.tables
                .iter()
                .flat_map(|(t, tb)| tb.partitions.keys().map(move |h| (t.clone(), *h)))
                .collect()
        };
        let snapshot = shared.manifest.lock().clone();
        let mut hours: BTreeMap<i64, Vec<(&str, &FileMeta)>> = BTreeMap::new();
        for (table, entry) in &snapshot.tables {
            for (hour, f) in &entry.files {
                let small = usize::try_from(f.rows).is_ok_and(|r| r < SHARED_MAX_ROWS);
                if hour.saturating_add(HOUR_NS) <= cutoff
                    && small
                    && !buffered.contains(&(table.clone(), *hour))
                {
                    hours.entry(*hour).or_default().push((table, f));
                }
            }
        }
        let mut report = CompactReport::default();
        for (hour, entries) in hours {
            let candidates: Vec<Candidate> = entries
                .iter()
                .map(|(t, f)| Candidate {
                    table: t.to_string(),
                    rows: usize::try_from(f.rows).unwrap_or(usize::MAX),
                    schema: snapshot.tables[*t].schema.arrow_schema(),
                })
                .collect();
            let groups = compact::plan_groups(&candidates);
            let before: BTreeSet<&str> = entries.iter().map(|(_, f)| f.path.as_str()).collect();
            if before.len() <= groups.len() {
                continue;
            }
            crate::failpoint::hit("compact:before-write");
            let mut written = Vec::new();
            let built = (|| -> Result<()> {
                for group in &groups {
                    let mut files: BTreeMap<&str, Vec<RecordBatch>> = BTreeMap::new();
                    let mut parts = Vec::with_capacity(group.len());
                    for &g in group {
                        let (table, f) = entries[g];
                        if !files.contains_key(f.path.as_str()) {
                            let batches =
                                persist::read_parquet(&paths::resolve(data_dir, &f.path))?;
                            files.insert(f.path.as_str(), batches);
                        }
                        let rows = compact::extract(
                            &files[f.path.as_str()],
                            table,
                            f.shared,
                            &candidates[g].schema,
                        )?;
                        if rows.num_rows() > 0 {
                            parts.push((table, rows));
                        }
                    }
                    drop(files);
                    if parts.is_empty() {
                        continue;
                    }
                    let refs: Vec<(&str, &RecordBatch)> =
                        parts.iter().map(|(t, b)| (*t, b)).collect();
                    let (metas, _) = shared.write_group(hour, &refs)?;
                    report.rows += metas.iter().map(|(_, m)| m.rows).sum::<u64>();
                    written.extend(metas);
                }
                Ok(())
            })();
            if let Err(e) = built {
                shared.discard(&written);
                return Err(e);
            }
            let mut m = shared.manifest.lock();
            let mut next = m.clone();
            let mut replaced = Vec::new();
            for (table, meta) in &written {
                let entry = next.tables.entry(table.clone()).or_default();
                if let Some(old) = entry.files.insert(hour, meta.clone()) {
                    replaced.push(old.path);
                }
            }
            crate::failpoint::hit("compact:before-commit");
            next.commit(data_dir)?;
            crate::failpoint::hit("compact:after-commit");
            *m = next;
            shared.retire(&m, replaced);
            drop(m);
            report.hours += 1;
            report.files_before += before.len();
            report.files_after += groups.len();
        }
        shared.collect_garbage();
        if report.hours > 0 {
            shared.stats.compactions.fetch_add(1, Ordering::Relaxed);
            shared
                .stats
                .files_compacted
                .fetch_add(report.files_before as u64, Ordering::Relaxed);
            tracing::info!(
                hours = report.hours,
                files_before = report.files_before,
                files_after = report.files_after,
                rows = report.rows,
                "Compacted small tables' files."
            );
        }
        Ok(report)
    }

    /// Final snapshot before the process exits, so the next start replays nothing. (Every
    /// acknowledged write is already fsynced in the WAL; this only shortens the next start.)
    pub fn shutdown(&self) -> Result<SnapshotReport> {
        self.snapshot()
    }
}

fn time_range(batch: &RecordBatch) -> (i64, i64) {
    use arrow::array::AsArray;
    use arrow::datatypes::TimestampNanosecondType;
    batch
        .column_by_name(TIME_COLUMN)
        .map(|c| {
            let t = c.as_primitive::<TimestampNanosecondType>();
            let min = arrow::compute::min(t).unwrap_or(0);
            let max = arrow::compute::max(t).unwrap_or(0);
            (min, max)
        })
        .unwrap_or((0, 0))
}

impl Shared {
    /// Checks names, limits, types and cardinality; registers new columns. Returns the batch
    /// of the points that passed, and the others' caller tags with why they did not.
    #[allow(clippy::type_complexity)]
    fn validate(&self, mut batch: Batch) -> Result<(Batch, Vec<(usize, Error)>)> {
        let lim = &self.cfg.limits;
        // Work that needs no state runs before the lock, which the apply thread holds while it
        // applies: the points sorted by table, whether each has the same columns as the
        // point before it in its table, and the checks of names, limits and values.
        batch.index_series();
        let groups = batch.sort_by_table();
        let mut same_as_prev = vec![false; batch.len()];
        let mut passed = vec![false; batch.len()];
        let mut rejected = Vec::new();
        for g in &groups {
            let mut prev_passed = false;
            for i in g.clone() {
                let Some(p) = batch.get(i) else { continue };
                let same =
                    i > g.start && batch.get(i - 1).is_some_and(|prev| same_columns(prev, p));
                if let Some(s) = same_as_prev.get_mut(i) {
                    *s = same;
                }
                // The same names as a point that passed passed too: only values are left.
                let checked = if same && prev_passed {
                    check_values(p, lim)
                } else {
                    check_point(p, lim)
                };
                prev_passed = checked.is_ok();
                match checked {
                    Ok(()) => {
                        if let Some(k) = passed.get_mut(i) {
                            *k = true;
                        }
                    }
                    Err(e) => rejected.push((p.tag(), e)),
                }
            }
        }
        let mut keep = vec![false; batch.len()];
        let mut guard = self.state.write();
        if guard.buffer_bytes > self.cfg.max_buffer_bytes {
            return Err(Error::BufferFull {
                used: guard.buffer_bytes,
                limit: self.cfg.max_buffer_bytes,
            });
        }
        let mut changed = false;
        let st = &mut *guard;
        // One map lookup per table of the request instead of several per point.
        for g in &groups {
            let Some(table) = batch.get(g.start).map(|p| p.table()) else {
                continue;
            };
            let schema = entry_of(&mut st.schemas, table);
            let tb = entry_of(&mut st.tables, table);
            // Every span is its own series (span_id is a tag); memory bounds spans instead.
            let spans = table == crate::decode::otlp::SPANS_TABLE;
            // Points of one request mostly share their columns: a point with the same tag keys
            // and field names and types as the point before it, whose columns passed, needs no
            // schema check (the schema only grows, so what passed still passes).
            let mut prev_ok = false;
            let mut hour_present = None;
            for i in g.clone() {
                let Some(p) = batch.get(i) else { continue };
                if !passed.get(i).copied().unwrap_or(false) {
                    // Its columns were never checked against the schema.
                    prev_ok = false;
                    continue;
                }
                let hour = hour_of(p.time_ns());
                if hour_present != Some(hour) {
                    if !tb.partitions.contains_key(&hour) {
                        // A late write to a persisted hour: load the hour now, so that a
                        // failure fails this request (nothing written) instead of leaving a
                        // hole after a snapshot.
                        st.buffer_bytes += self.load_persisted_hour(tb, table, hour)?;
                    }
                    hour_present = Some(hour);
                }
                let checked = if prev_ok && same_as_prev.get(i).copied().unwrap_or(false) {
                    Ok(false)
                } else {
                    check_schema(p, schema, lim)
                };
                prev_ok = checked.is_ok();
                let checked = checked.and_then(|added| {
                    if !spans
                        && tb.active_series() >= lim.max_series_per_table
                        && !tb.has_series(p)
                    {
                        return Err(Error::Limit(format!(
                            "table {:?} has reached its limit of {} active series; new series are refused, existing ones still accepted",
                            p.table(),
                            lim.max_series_per_table
                        )));
                    }
                    Ok(added)
                });
                match checked {
                    Ok(added) => {
                        changed |= added;
                        if let Some(k) = keep.get_mut(i) {
                            *k = true;
                        }
                    }
                    Err(e) => rejected.push((p.tag(), e)),
                }
            }
        }
        rejected.sort_by_key(|(tag, _)| *tag);
        if changed {
            st.schema_version += 1;
        }
        // A table that only ever got rejected points does not exist.
        if !rejected.is_empty() {
            st.schemas.retain(|_, s| !s.fields.is_empty());
            let schemas = &st.schemas;
            st.tables
                .retain(|t, tb| schemas.contains_key(t) || !tb.partitions.is_empty());
        }
        drop(guard);
        if rejected.is_empty() {
            batch.set_groups(groups);
        } else {
            let mut i = 0;
            batch.retain(|_| {
                i += 1;
                keep.get(i - 1).copied().unwrap_or(false)
            });
        }
        Ok((batch, rejected))
    }

    /// Applies a WAL record read back at open: registers the columns its points name (a
    /// field whose type conflicts with the schema is dropped, as the live write would have
    /// refused it), then applies it.
    fn replay(&self, seq: u64, mut points: Vec<Point>) {
        {
            let mut st = self.state.write();
            let st = &mut *st;
            let mut changed = false;
            for p in &mut points {
                let schema = entry_of(&mut st.schemas, &p.table);
                for (t, _) in &p.tags {
                    if !schema.tags.contains(t) {
                        schema.tags.insert(t.clone());
                        changed = true;
                    }
                }
                p.fields.retain(|(f, v)| match schema.fields.get(f) {
                    Some(ty) => *ty == v.field_type(),
                    None => {
                        schema.fields.insert(f.clone(), v.field_type());
                        changed = true;
                        true
                    }
                });
            }
            if changed {
                st.schema_version += 1;
            }
        }
        points.retain(|p| !p.fields.is_empty());
        let mut batch = Batch::from_points(points.into_iter().enumerate().collect());
        let groups = batch.sort_by_table();
        batch.set_groups(groups);
        self.apply(seq, &batch);
    }

    /// Applies a durable record to the buffer (WAL writer thread, or replay at open). Its
    /// points passed [`Shared::validate`] (or [`Shared::replay`]), which registered their
    /// columns, and a schema never loses a column, so there is no per-point schema work here.
    fn apply(&self, seq: u64, batch: &Batch) {
        let mut st = self.state.write();
        let st = &mut *st;
        let mut added = 0usize;
        // Grouped by table (order within a table kept, so a later write of a series and
        // timestamp still wins): one map lookup per table instead of two per point. The
        // request's thread sorted the points by table already, outside this lock, so they are
        // read front to back.
        for g in batch.groups().iter() {
            let Some(table) = batch.get(g.start).map(|p| p.table()) else {
                continue;
            };
            let tb = entry_of(&mut st.tables, table);
            let mut hour_present = None;
            for i in g.clone() {
                let Some(p) = batch.get(i) else { continue };
                let hour = hour_of(p.time_ns());
                if hour_present != Some(hour) && !tb.partitions.contains_key(&hour) {
                    match self.load_persisted_hour(tb, table, hour) {
                        Ok(n) => added += n,
                        Err(e) => {
                            // Persisting this hour now would replace its file without the old
                            // rows: block snapshots (the WAL keeps everything) until an operator
                            // looks.
                            tracing::error!(table = %table, hour, error = %e, "Could not load a persisted hour before a late write; snapshots are blocked until restart.");
                            self.load_failures.lock().insert((table.to_string(), hour));
                        }
                    }
                }
                hour_present = Some(hour);
                added += tb.insert_ref(p);
            }
        }
        st.buffer_bytes += added;
        st.applied_seq = seq;
    }

    /// Writes one planned file: a table's hour alone, or several small tables' hour shared.
    /// Returns each table's manifest entry and the file's size.
    fn write_group(
        &self,
        hour: i64,
        parts: &[(&str, &RecordBatch)],
    ) -> Result<(Vec<(String, FileMeta)>, u64)> {
        let id = {
            let mut m = self.manifest.lock();
            m.next_file_id += 1;
            m.next_file_id
        };
        let shared = parts.len() > 1;
        let (rel, size) = if let [(table, batch)] = parts {
            let rel = paths::parquet_file_relative(table, hour, id);
            let size = persist::write_parquet(&paths::resolve(&self.cfg.data_dir, &rel), batch)?;
            (rel, size)
        } else {
            let batch = compact::shared_batch(parts)?;
            let rel = paths::shared_file_relative(hour, id);
            let size = persist::write_parquet(&paths::resolve(&self.cfg.data_dir, &rel), &batch)?;
            (rel, size)
        };
        let metas = parts
            .iter()
            .map(|(table, batch)| {
                let (min_time_ns, max_time_ns) = time_range(batch);
                (
                    table.to_string(),
                    FileMeta {
                        path: rel.clone(),
                        hour_ns: hour,
                        min_time_ns,
                        max_time_ns,
                        rows: batch.num_rows() as u64,
                        bytes: size,
                        shared,
                    },
                )
            })
            .collect();
        Ok((metas, size))
    }

    /// Removes files this process wrote but never committed (a snapshot or compaction that
    /// failed half-way, e.g. on a full disk), so they do not hold space until the next start.
    fn discard(&self, written: &[(String, FileMeta)]) {
        let unique: BTreeSet<&str> = written.iter().map(|(_, f)| f.path.as_str()).collect();
        for rel in unique {
            let _ = std::fs::remove_file(paths::resolve(&self.cfg.data_dir, rel));
        }
    }

    /// Schedules the deletion of those of `paths` that `m` (the manifest just committed) no
    /// longer names.
    fn retire(&self, m: &Manifest, paths: Vec<String>) {
        let live = m.referenced_paths();
        let now = self.clock.now_ns();
        let mut retired = self.retired.lock();
        let mut seen = BTreeSet::new();
        for p in paths {
            if !live.contains(p.as_str()) && seen.insert(p.clone()) {
                retired.push((p, now));
            }
        }
    }

    /// Deletes retired files whose grace period is over.
    fn collect_garbage(&self) {
        let now = self.clock.now_ns();
        let due: Vec<String> = {
            let mut retired = self.retired.lock();
            let (due, keep): (Vec<_>, Vec<_>) = retired
                .drain(..)
                .partition(|(_, at)| now.saturating_sub(*at) >= self.cfg.file_grace_ns);
            *retired = keep;
            due.into_iter().map(|(p, _)| p).collect()
        };
        for rel in due {
            let p = paths::resolve(&self.cfg.data_dir, &rel);
            if let Err(e) = std::fs::remove_file(&p)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(file = %p.display(), error = %e, "Could not remove a file the manifest no longer names; it goes at the next start.");
            }
        }
    }

    /// Loads a persisted hour into the buffer before it is written to again, so the buffer
    /// stays the one authority for the hour. Returns bytes added.
    fn load_persisted_hour(&self, tb: &mut TableBuffer, table: &str, hour: i64) -> Result<usize> {
        let file = {
            let m = self.manifest.lock();
            m.tables
                .get(table)
                .and_then(|t| t.files.get(&hour))
                .cloned()
        };
        let Some(file) = file else { return Ok(0) };
        let path = paths::resolve(&self.cfg.data_dir, &file.path);
        let mut points = Vec::new();
        for b in &persist::read_parquet(&path)? {
            if file.shared {
                points.extend(batch_to_points(table, &compact::rows_of(b, table)?)?);
            } else {
                points.extend(batch_to_points(table, b)?);
            }
        }
        let mut added = 0;
        let batch = Batch::from_points(points.into_iter().enumerate().collect());
        for p in batch.iter() {
            added += tb.insert_ref(p);
        }
        if let Some(part) = tb.partitions.get_mut(&hour) {
            part.dirty = false;
        }
        Ok(added)
    }
}

/// `printable`: the decoder found the whole request free of control characters.
fn check_name(name: &str, what: &str, lim: &Limits, printable: bool) -> Result<()> {
    let reason = if name.is_empty() {
        "empty"
    } else if name.len() > lim.max_name_len {
        "longer than the name limit"
    } else if !printable && crate::decode::line_protocol::has_control(name) {
        "contains a control character"
    } else {
        return Ok(());
    };
    Err(Error::InvalidName {
        name: format!("{what} {name}"),
        reason,
    })
}

/// `map[name]`, inserted empty if absent, without allocating the name when it is present (a
/// few times per table of every request on the write path).
fn entry_of<'a, V: Default>(map: &'a mut HashMap<String, V>, name: &str) -> &'a mut V {
    if !map.contains_key(name) {
        map.insert(name.to_string(), V::default());
    }
    map.get_mut(name).expect("inserted above")
}

fn check_reserved(column: &str) -> Result<()> {
    let reason = if column == TIME_COLUMN {
        "reserved for the time column"
    } else if column == TABLE_COLUMN {
        "reserved for the table column of shared files"
    } else {
        return Ok(());
    };
    Err(Error::InvalidName {
        name: column.to_string(),
        reason,
    })
}

/// Checks a point's names (table, tags, fields), their number, and its values.
fn check_point(p: PointRef<'_>, lim: &Limits) -> Result<()> {
    let printable = p.printable();
    check_name(p.table(), "table", lim, printable)?;
    let tags = p.tags();
    if tags.len() > lim.max_tags {
        return Err(Error::Limit(format!(
            "point has {} tags, more than the limit of {}",
            tags.len(),
            lim.max_tags
        )));
    }
    for (k, _) in tags {
        check_name(k, "tag", lim, printable)?;
        check_reserved(k)?;
    }
    if p.fields().len() == 0 {
        return Err(Error::InvalidName {
            name: p.table().to_string(),
            reason: "point has no fields",
        });
    }
    for (k, _) in p.fields() {
        check_name(k, "field", lim, printable)?;
        check_reserved(k)?;
    }
    check_values(p, lim)
}

/// The checks of [`check_point`] that depend on more than the point's names: its time, and
/// the lengths of its tag values and string fields.
fn check_values(p: PointRef<'_>, lim: &Limits) -> Result<()> {
    let time_ns = p.time_ns();
    if !(i64::MIN + HOUR_NS..=i64::MAX - HOUR_NS).contains(&time_ns) {
        return Err(Error::InvalidName {
            name: time_ns.to_string(),
            reason: "timestamp is outside the storable range (about 1677-09-21 to 2262-04-11)",
        });
    }
    for (k, v) in p.tags() {
        if v.len() > lim.max_tag_value_len {
            return Err(Error::Limit(format!(
                "value of tag {k:?} is {} bytes, more than the limit of {}",
                v.len(),
                lim.max_tag_value_len
            )));
        }
    }
    for (k, v) in p.fields() {
        if let ValueRef::Str(s) = v
            && s.len() > lim.max_string_len
        {
            return Err(Error::Limit(format!(
                "string field {k:?} is {} bytes, more than the limit of {}",
                s.len(),
                lim.max_string_len
            )));
        }
    }
    Ok(())
}

/// Whether two points have the same tag keys and the same field names and types, in order.
fn same_columns(a: PointRef<'_>, b: PointRef<'_>) -> bool {
    let (at, bt, af, bf) = (a.tags(), b.tags(), a.fields(), b.fields());
    at.len() == bt.len()
        && af.len() == bf.len()
        && at.zip(bt).all(|((x, _), (y, _))| x == y)
        && af
            .zip(bf)
            .all(|((x, u), (y, v))| x == y && u.field_type() == v.field_type())
}

/// Checks a point against the table's columns and adds the new ones. Returns whether any was.
fn check_schema(p: PointRef<'_>, schema: &mut TableSchema, lim: &Limits) -> Result<bool> {
    for (k, v) in p.fields() {
        if let Some(ty) = schema.fields.get(k)
            && *ty != v.field_type()
        {
            return Err(Error::TypeConflict {
                table: p.table().to_string(),
                field: k.to_string(),
                expected: ty.name(),
                found: v.field_type().name(),
            });
        }
        if schema.tags.contains(k) {
            return Err(Error::InvalidName {
                name: k.to_string(),
                reason: "is a tag of this table, not a field",
            });
        }
    }
    for (k, _) in p.tags() {
        if schema.fields.contains_key(k) {
            return Err(Error::InvalidName {
                name: k.to_string(),
                reason: "is a field of this table, not a tag",
            });
        }
    }
    let new_cols = p.tags().filter(|(k, _)| !schema.tags.contains(*k)).count()
        + p.fields()
            .filter(|(k, _)| !schema.fields.contains_key(*k))
            .count();
    if new_cols == 0 {
        return Ok(false);
    }
    if schema.tags.len() + schema.fields.len() + new_cols > lim.max_columns {
        return Err(Error::Limit(format!(
            "table {:?} would have more than {} columns",
            p.table(),
            lim.max_columns
        )));
    }
    for (k, _) in p.tags() {
        if !schema.tags.contains(k) {
            schema.tags.insert(k.to_string());
        }
    }
    for (k, v) in p.fields() {
        if !schema.fields.contains_key(k) {
            schema.fields.insert(k.to_string(), v.field_type());
        }
    }
    Ok(true)
}

/// Removes Parquet and temporary files the manifest does not name (left by a crash between a
/// file's rename and the manifest commit).
fn remove_orphans(data_dir: &Path, m: &Manifest) -> Result<usize> {
    let known: BTreeSet<PathBuf> = m
        .all_files()
        .map(|f| paths::resolve(data_dir, &f.path))
        .collect();
    let mut removed = 0;
    let mut stack = vec![paths::tables_dir(data_dir), paths::shared_dir(data_dir)];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd {
            let e = e.map_err(|e| Error::io(&dir, e))?;
            let p = e.path();
            if e.file_type().map_err(|e| Error::io(&p, e))?.is_dir() {
                stack.push(p);
            } else if !known.contains(&p) {
                tracing::info!(file = %p.display(), "Removing a file no manifest names (left by a crash).");
                std::fs::remove_file(&p).map_err(|e| Error::io(&p, e))?;
                removed += 1;
            }
        }
    }
    Ok(removed)
}

mod record;
#[cfg(test)]
mod tests;

use record::Logged;
pub use record::Source;
