//! Write-ahead log: length-prefixed, checksummed records in numbered segment files.
//!
//! One writer thread owns the active segment. Appenders queue `(bytes, item)`, the record's
//! payload being the bytes then the item's [`Tail`] (a request body the item holds); the thread
//! takes everything queued, writes it with one `writev` from those buffers and fsyncs once
//! (group commit), then passes the group to the apply thread, which hands each item to the
//! apply callback in sequence order and only then acknowledges. So an acknowledged write is
//! durable and already visible, and the buffer sees records in exactly the order replay will.
//! The two threads make a pipeline: one group's apply runs while the next group is written and
//! fsynced.
//!
//! Record: `len: u32 LE | crc32(seq ‖ payload): u32 LE | seq: u64 LE | payload`. Segment:
//! `MAGIC` then records. At open, a bad record with nothing valid after it in the last segment
//! is a torn tail (truncated and logged); anything else refuses start-up unless repair is asked.

use crate::error::{Error, Result};
use crate::paths;
use futures::channel::oneshot;
use std::fs::{File, OpenOptions};
use std::io::{IoSlice, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

const MAGIC: &[u8; 8] = b"CRWAL001";
const HEADER: usize = 16;
/// Largest record accepted; anything claiming more is corrupt.
pub const MAX_RECORD: usize = 256 * 1024 * 1024;

/// WAL settings.
#[derive(Debug, Clone)]
pub struct WalConfig {
    /// Roll to a new segment once the active one is this large.
    pub segment_bytes: u64,
    /// fsync before acknowledging (never turn off in production).
    pub sync: bool,
    /// At most this many queued bytes; beyond it appends are refused as unavailable.
    pub max_queued_bytes: usize,
    /// Drop a corrupt record and everything after it instead of refusing to open.
    pub repair: bool,
}

impl Default for WalConfig {
    fn default() -> Self {
        Self {
            segment_bytes: 32 * 1024 * 1024,
            sync: true,
            max_queued_bytes: 256 * 1024 * 1024,
            repair: false,
        }
    }
}

impl WalConfig {
    /// Small segments for tests so rotation and truncation happen often.
    pub fn for_tests() -> Self {
        Self {
            segment_bytes: 4 * 1024,
            ..Self::default()
        }
    }
}

/// What reopening found.
#[derive(Debug, Default)]
pub struct Recovery {
    /// Records with `seq > after_seq`, in order.
    pub records: Vec<(u64, Vec<u8>)>,
    /// Where a torn tail was cut, if one was.
    pub truncated_tail: Option<(PathBuf, u64)>,
    /// Where repair dropped a corrupt record and everything after, if it did.
    pub repaired_at: Option<(PathBuf, u64)>,
    /// Sequence number the next append gets.
    pub next_seq: u64,
}

struct Segment {
    first_seq: u64,
    path: PathBuf,
}

/// Reads every segment, cuts a torn tail, and returns the records after `after_seq`.
fn recover(data_dir: &Path, cfg: &WalConfig, after_seq: u64) -> Result<(Vec<Segment>, Recovery)> {
    let dir = paths::wal_dir(data_dir);
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let mut segments = Vec::new();
    for entry in std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))? {
        let entry = entry.map_err(|e| Error::io(&dir, e))?;
        if let Some(first_seq) = entry
            .file_name()
            .to_str()
            .and_then(paths::parse_wal_segment)
        {
            segments.push(Segment {
                first_seq,
                path: entry.path(),
            });
        }
    }
    segments.sort_by_key(|s| s.first_seq);
    let mut rec = Recovery {
        next_seq: after_seq + 1,
        ..Recovery::default()
    };
    let mut last_seq: Option<u64> = None;
    let mut i = 0;
    while i < segments.len() {
        let is_last = i + 1 == segments.len();
        let path = segments[i].path.clone();
        let mut bytes = Vec::new();
        File::open(&path)
            .and_then(|mut f| f.read_to_end(&mut bytes))
            .map_err(|e| Error::io(&path, e))?;
        if !is_last && bytes.len() <= MAGIC.len() {
            // A segment whose creation failed part-way (disk full during a roll): no records.
            tracing::warn!(segment = %path.display(), "Removing an empty WAL segment left by a failed roll.");
            std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
            segments.remove(i);
            continue;
        }
        let bad = scan_segment(
            &bytes,
            segments[i].first_seq,
            &mut last_seq,
            after_seq,
            &mut rec,
        );
        if let Some((offset, reason)) = bad {
            let torn = is_last && !valid_record_after(&bytes, offset, last_seq);
            if torn || cfg.repair {
                truncate_file(&path, offset.max(MAGIC.len() as u64), &bytes)?;
                if torn {
                    tracing::warn!(segment = %path.display(), offset, reason, "Truncated torn WAL tail.");
                    rec.truncated_tail = Some((path.clone(), offset));
                } else {
                    tracing::error!(segment = %path.display(), offset, reason, "WAL repair dropped a corrupt record and everything after it.");
                    rec.repaired_at = Some((path.clone(), offset));
                    for later in segments.drain(i + 1..) {
                        std::fs::remove_file(&later.path).map_err(|e| Error::io(&later.path, e))?;
                    }
                }
            } else {
                return Err(Error::WalCorrupt {
                    path,
                    offset,
                    reason,
                });
            }
        }
        i += 1;
    }
    if let Some(last) = last_seq {
        rec.next_seq = rec.next_seq.max(last + 1);
    }
    if let Some(seg) = segments.last() {
        rec.next_seq = rec.next_seq.max(seg.first_seq);
    }
    Ok((segments, rec))
}

/// Parses one segment; returns the first bad offset and why, if any.
fn scan_segment(
    bytes: &[u8],
    first_seq: u64,
    last_seq: &mut Option<u64>,
    after_seq: u64,
    rec: &mut Recovery,
) -> Option<(u64, String)> {
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        return Some((0, "bad segment header".to_string()));
    }
    let mut off = MAGIC.len();
    let mut expected = last_seq.map_or(first_seq, |s| s + 1);
    if expected < first_seq {
        // Earlier segments were truncated away by a snapshot; this one starts later.
        expected = first_seq;
    }
    while off < bytes.len() {
        match parse_record(bytes, off) {
            Ok((seq, payload, next)) => {
                if seq != expected {
                    return Some((
                        off as u64,
                        format!("sequence {seq} where {expected} was expected"),
                    ));
                }
                if seq > after_seq {
                    rec.records.push((seq, payload.to_vec()));
                }
                *last_seq = Some(seq);
                expected = seq + 1;
                off = next;
            }
            Err(reason) => return Some((off as u64, reason)),
        }
    }
    None
}

fn parse_record(bytes: &[u8], off: usize) -> Result<(u64, &[u8], usize), String> {
    let header = bytes
        .get(off..off + HEADER)
        .ok_or_else(|| "incomplete record header".to_string())?;
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    let mut seq_bytes = [0u8; 8];
    seq_bytes.copy_from_slice(&header[8..16]);
    if len > MAX_RECORD {
        return Err(format!("record length {len} exceeds {MAX_RECORD}"));
    }
    let end = off + HEADER + len;
    let payload = bytes.get(off + HEADER..end).ok_or_else(|| {
        format!(
            "record claims {len} bytes but only {} remain",
            bytes.len() - off - HEADER
        )
    })?;
    let mut h = crc32fast::Hasher::new();
    h.update(&seq_bytes);
    h.update(payload);
    if h.finalize() != crc {
        return Err("checksum mismatch".to_string());
    }
    Ok((u64::from_le_bytes(seq_bytes), payload, end))
}

/// True when some well-formed record with a later sequence starts after `bad` (so the damage is
/// in the middle, not a torn tail).
fn valid_record_after(bytes: &[u8], bad: u64, last_seq: Option<u64>) -> bool {
    let start = usize::try_from(bad).unwrap_or(usize::MAX).saturating_add(1);
    (start..bytes.len().saturating_sub(HEADER - 1)).any(|off| {
        matches!(parse_record(bytes, off), Ok((seq, _, _)) if last_seq.is_none_or(|l| seq > l))
    })
}

fn truncate_file(path: &Path, len: u64, bytes: &[u8]) -> Result<()> {
    let f = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        // Even the header was torn: rewrite it.
        f.set_len(0).map_err(|e| Error::io(path, e))?;
        (&f).write_all(MAGIC).map_err(|e| Error::io(path, e))?;
    } else {
        f.set_len(len).map_err(|e| Error::io(path, e))?;
    }
    f.sync_all().map_err(|e| Error::io(path, e))
}

/// A record's header for the payload `head ‖ tail`.
fn record_header(seq: u64, head: &[u8], tail: &[u8]) -> [u8; HEADER] {
    let mut h = crc32fast::Hasher::new();
    h.update(&seq.to_le_bytes());
    h.update(head);
    h.update(tail);
    let len = u32::try_from(head.len() + tail.len()).unwrap_or(u32::MAX);
    let mut out = [0u8; HEADER];
    out[..4].copy_from_slice(&len.to_le_bytes());
    out[4..8].copy_from_slice(&h.finalize().to_le_bytes());
    out[8..].copy_from_slice(&seq.to_le_bytes());
    out
}

/// An item whose record ends with bytes the item holds (a request body): the writer writes
/// them straight from the item, after the record's own bytes, instead of having them copied
/// into the record first.
pub trait Tail {
    /// The bytes the record's payload ends with.
    fn tail(&self) -> &[u8] {
        &[]
    }
}

impl Tail for Vec<u8> {}

/// `write_all` over several buffers: one `writev` for a whole group, however many records.
fn write_all_vectored(f: &mut File, mut bufs: &mut [IoSlice<'_>]) -> std::io::Result<()> {
    while !bufs.is_empty() {
        match f.write_vectored(bufs) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut bufs, n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

enum Msg<T> {
    Append {
        bytes: Vec<u8>,
        item: T,
        reply: oneshot::Sender<Result<Acked<T>>>,
    },
    Truncate {
        up_to: u64,
        reply: oneshot::Sender<Result<usize>>,
    },
}

/// Called on the apply thread, in sequence order, for each durable record before its ack.
pub type ApplyFn<T> = Box<dyn FnMut(u64, &T) + Send>;

/// An acknowledged record: its sequence number, and its bytes and item handed back, so that
/// they are freed by the writer that made them rather than by the WAL's threads. (The
/// allocator reuses a thread's own freed memory at once; memory another thread frees comes
/// back later, and until then the writer's requests took fresh pages, which the kernel
/// zeroes: a visible share of a fresh server's CPU.)
#[derive(Debug)]
pub struct Acked<T> {
    /// Sequence number.
    pub seq: u64,
    /// The record's bytes.
    pub bytes: Vec<u8>,
    /// The item that was applied.
    pub item: T,
}

/// One record on its way through the WAL: its bytes, its item and where its ack goes.
type Pending<T> = (Vec<u8>, T, oneshot::Sender<Result<Acked<T>>>);

/// Handle to the WAL writer thread. Cloning is cheap; the thread stops when every handle and
/// [`Wal::shutdown`] has been dropped/called.
pub struct Wal<T> {
    tx: mpsc::Sender<Msg<T>>,
    queued: Arc<AtomicUsize>,
    max_queued: usize,
    /// The writer thread, then the apply thread.
    threads: parking_lot::Mutex<Vec<std::thread::JoinHandle<()>>>,
}

/// A durable group on its way to the apply thread: each record with its sequence number, and
/// the group's byte count (still counted as queued until applied).
struct Durable<T> {
    records: Vec<(u64, Pending<T>)>,
    bytes: usize,
}

impl<T: Tail + Send + 'static> Wal<T> {
    /// Opens the WAL under `data_dir`: recovers it (records after `after_seq` are returned for
    /// replay, which the caller applies before writing) and starts the writer thread.
    pub fn open(
        data_dir: &Path,
        cfg: WalConfig,
        after_seq: u64,
        apply: ApplyFn<T>,
    ) -> Result<(Self, Recovery)> {
        let (mut segments, recovery) = recover(data_dir, &cfg, after_seq)?;
        let next_seq = recovery.next_seq;
        // Always start a fresh segment: the recovered ones are never appended to again.
        let active = create_segment(data_dir, next_seq)?;
        if segments.last().is_some_and(|s| s.first_seq == next_seq) {
            segments.pop();
        }
        let (tx, rx) = mpsc::channel();
        let (durable_tx, durable_rx) = mpsc::channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let writer = Writer {
            data_dir: data_dir.to_path_buf(),
            cfg: cfg.clone(),
            closed: segments,
            active,
            active_first: next_seq,
            next_seq,
            durable: durable_tx,
            queued: Arc::clone(&queued),
        };
        let spawn_err = |e| Error::io(paths::wal_dir(data_dir), e);
        let applier = {
            let queued = Arc::clone(&queued);
            std::thread::Builder::new()
                .name("crest-apply".into())
                .spawn(move || apply_loop(durable_rx, apply, &queued))
                .map_err(spawn_err)?
        };
        let thread = std::thread::Builder::new()
            .name("crest-wal".into())
            .spawn(move || writer.run(rx))
            .map_err(spawn_err)?;
        Ok((
            Self {
                tx,
                queued,
                max_queued: cfg.max_queued_bytes,
                threads: parking_lot::Mutex::new(vec![thread, applier]),
            },
            recovery,
        ))
    }

    /// Appends one record, `bytes` then the item's [`Tail`]; resolves once it is fsynced and
    /// applied, to its sequence number with its bytes and item handed back (see [`Acked`]).
    pub fn append(
        &self,
        bytes: Vec<u8>,
        item: T,
    ) -> impl Future<Output = Result<Acked<T>>> + use<T> {
        let (reply, rx) = oneshot::channel();
        let len = bytes.len() + item.tail().len();
        let queued = self.queued.load(Ordering::Relaxed);
        let sent = if len > MAX_RECORD {
            Err(Error::Limit(format!(
                "write of {len} bytes exceeds the largest WAL record of {MAX_RECORD} bytes; split the request"
            )))
        } else if queued + len > self.max_queued {
            Err(Error::WalBacklog {
                queued,
                limit: self.max_queued,
            })
        } else {
            self.queued.fetch_add(len, Ordering::Relaxed);
            self.tx
                .send(Msg::Append { bytes, item, reply })
                .map_err(|_| Error::WalClosed("shut down".into()))
        };
        async move {
            match sent {
                Err(e) => Err(e),
                Ok(()) => rx
                    .await
                    .map_err(|_| Error::WalClosed("writer stopped".into()))?,
            }
        }
    }

    /// Deletes every segment whose records all have `seq <= up_to`; returns how many.
    pub fn truncate(&self, up_to: u64) -> impl Future<Output = Result<usize>> + use<T> {
        let (reply, rx) = oneshot::channel();
        let sent = self.tx.send(Msg::Truncate { up_to, reply });
        async move {
            sent.map_err(|_| Error::WalClosed("shut down".into()))?;
            rx.await
                .map_err(|_| Error::WalClosed("writer stopped".into()))?
        }
    }

    /// Stops accepting appends after those already queued and waits for the writer thread and
    /// then the apply thread (which ends once the writer's last group is applied).
    pub fn shutdown(self) {
        let Self { tx, threads, .. } = self;
        drop(tx);
        for t in std::mem::take(&mut *threads.lock()) {
            let _ = t.join();
        }
    }
}

/// The apply thread: applies each durable group's records in order, then acknowledges them.
fn apply_loop<T>(rx: mpsc::Receiver<Durable<T>>, mut apply: ApplyFn<T>, queued: &AtomicUsize) {
    while let Ok(group) = rx.recv() {
        for (seq, (bytes, item, reply)) in group.records {
            apply(seq, &item);
            let _ = reply.send(Ok(Acked { seq, bytes, item }));
        }
        queued.fetch_sub(group.bytes, Ordering::Relaxed);
    }
}

fn create_segment(data_dir: &Path, first_seq: u64) -> Result<File> {
    let path = paths::wal_segment(data_dir, first_seq);
    let mut f = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(&path)
        .map_err(|e| Error::io(&path, e))?;
    if let Err(e) = f.write_all(MAGIC).and_then(|()| f.sync_all()) {
        drop(f);
        let _ = std::fs::remove_file(&path);
        return Err(Error::io(&path, e));
    }
    paths::sync_dir(&paths::wal_dir(data_dir)).map_err(|e| Error::io(&path, e))?;
    Ok(f)
}

struct Writer<T> {
    data_dir: PathBuf,
    cfg: WalConfig,
    closed: Vec<Segment>,
    active: File,
    active_first: u64,
    next_seq: u64,
    /// To the apply thread.
    durable: mpsc::Sender<Durable<T>>,
    queued: Arc<AtomicUsize>,
}

impl<T: Tail> Writer<T> {
    fn run(mut self, rx: mpsc::Receiver<Msg<T>>) {
        let mut headers = Vec::new();
        while let Ok(first) = rx.recv() {
            let mut batch = vec![first];
            let mut size = 0usize;
            while size < 8 * 1024 * 1024 {
                match rx.try_recv() {
                    Ok(m) => {
                        if let Msg::Append { bytes, item, .. } = &m {
                            size += bytes.len() + item.tail().len();
                        }
                        batch.push(m);
                    }
                    Err(_) => break,
                }
            }
            let mut appends = Vec::with_capacity(batch.len());
            let mut truncates = Vec::new();
            for m in batch {
                match m {
                    Msg::Append { bytes, item, reply } => appends.push((bytes, item, reply)),
                    Msg::Truncate { up_to, reply } => truncates.push((up_to, reply)),
                }
            }
            if !appends.is_empty() {
                self.write_group(&mut headers, appends);
            }
            for (up_to, reply) in truncates {
                let _ = reply.send(self.truncate(up_to));
            }
        }
        let _ = self.active.sync_all();
    }

    fn write_group(&mut self, headers: &mut Vec<[u8; HEADER]>, appends: Vec<Pending<T>>) {
        let total: usize = appends
            .iter()
            .map(|(b, item, _)| b.len() + item.tail().len())
            .sum();
        headers.clear();
        headers.extend(appends.iter().enumerate().map(|(i, (bytes, item, _))| {
            record_header(self.next_seq + i as u64, bytes, item.tail())
        }));
        // Header, bytes and tail of each record, written as they are (no copy).
        let mut slices: Vec<IoSlice<'_>> = Vec::with_capacity(appends.len() * 3);
        for (header, (bytes, item, _)) in headers.iter().zip(&appends) {
            slices.push(IoSlice::new(header));
            slices.push(IoSlice::new(bytes));
            slices.push(IoSlice::new(item.tail()));
        }
        let path = paths::wal_segment(&self.data_dir, self.active_first);
        let result = self.write_and_sync(&mut slices);
        drop(slices);
        match result {
            Ok(()) => {
                let mut records = Vec::with_capacity(appends.len());
                for pending in appends {
                    records.push((self.next_seq, pending));
                    self.next_seq += 1;
                }
                // The apply thread outlives this one (it stops when this sender is dropped),
                // so the send only fails if it panicked; the acks are then dropped, and the
                // writers see the WAL as closed.
                let _ = self.durable.send(Durable {
                    records,
                    bytes: total,
                });
                if self.active_len() >= self.cfg.segment_bytes
                    && let Err(e) = self.rotate()
                {
                    tracing::error!(error = %e, "Could not roll the WAL segment; continuing in the current one.");
                }
            }
            Err(e) => {
                self.queued.fetch_sub(total, Ordering::Relaxed);
                tracing::warn!(segment = %path.display(), error = %e, "WAL write failed; nothing from this group was acknowledged.");
                let msg = e.to_string();
                let disk_full = matches!(e, Error::DiskFull(_));
                for (_, _, reply) in appends {
                    let err = if disk_full {
                        Error::DiskFull(msg.clone())
                    } else {
                        Error::WalClosed(msg.clone())
                    };
                    let _ = reply.send(Err(err));
                }
            }
        }
    }

    fn active_len(&self) -> u64 {
        self.active.metadata().map(|m| m.len()).unwrap_or(0)
    }

    /// Writes a group; on failure cuts the segment back so no partial record stays behind.
    fn write_and_sync(&mut self, slices: &mut [IoSlice<'_>]) -> Result<()> {
        let path = paths::wal_segment(&self.data_dir, self.active_first);
        let before = self.active_len();
        let res = write_all_vectored(&mut self.active, slices).and_then(|()| {
            if self.cfg.sync {
                self.active.sync_data()
            } else {
                Ok(())
            }
        });
        if let Err(e) = res {
            let _ = self.active.set_len(before);
            let _ = self.active.seek(SeekFrom::Start(before));
            let _ = self.active.sync_data();
            return Err(Error::io(path, e));
        }
        Ok(())
    }

    fn rotate(&mut self) -> Result<()> {
        let first = self.next_seq;
        self.active
            .sync_all()
            .map_err(|e| Error::io(paths::wal_segment(&self.data_dir, self.active_first), e))?;
        self.active = create_segment(&self.data_dir, first)?;
        self.closed.push(Segment {
            first_seq: self.active_first,
            path: paths::wal_segment(&self.data_dir, self.active_first),
        });
        self.active_first = first;
        Ok(())
    }

    fn truncate(&mut self, up_to: u64) -> Result<usize> {
        // The active segment can go too once everything in it is persisted.
        if self.next_seq > self.active_first && self.next_seq - 1 <= up_to {
            self.rotate()?;
        }
        let mut removed = 0;
        let mut keep = Vec::new();
        let closed = std::mem::take(&mut self.closed);
        let mut ends: Vec<u64> = closed.iter().skip(1).map(|s| s.first_seq).collect();
        ends.push(self.active_first);
        for (seg, end) in closed.into_iter().zip(ends) {
            // `end` is the first seq of the following segment: this one holds [first, end).
            if end.saturating_sub(1) <= up_to {
                std::fs::remove_file(&seg.path).map_err(|e| Error::io(&seg.path, e))?;
                removed += 1;
            } else {
                keep.push(seg);
            }
        }
        self.closed = keep;
        if removed > 0 {
            let dir = paths::wal_dir(&self.data_dir);
            paths::sync_dir(&dir).map_err(|e| Error::io(&dir, e))?;
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests;
