//! The write buffer: recent data in memory, deduplicated, queryable at once.
//!
//! Per table, data is held by UTC hour partition, as an append-only log of rows per partition
//! (see [`Partition`]). A partition present here is the authority for its hour: if the hour was
//! persisted before, its file was loaded in first, so queries take the hour from here and skip
//! the file. Writing the same series and timestamp again replaces the fields it names (a retried
//! request changes nothing): the rows merge when the partition is read.

use crate::batch::{Batch, PointRef, ValueRef};
use crate::point::{FieldType, FieldValue, Point};
use crate::schema::TableSchema;
use arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, Int64Builder, RecordBatch, StringBuilder,
    StringDictionaryBuilder, TimestampNanosecondBuilder, UInt64Builder,
};
use arrow::datatypes::{Int32Type, SchemaRef};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Hash maps of the write path (series, names, tables of a request): foldhash, seeded per
/// process, instead of SipHash, which was a visible share of ingest CPU.
pub(crate) type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
pub(crate) type HashSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;

/// Nanoseconds in one hour, the partition width.
pub const HOUR_NS: i64 = 3_600_000_000_000;

/// Start of the hour partition holding `time_ns`.
pub fn hour_of(time_ns: i64) -> i64 {
    time_ns.div_euclid(HOUR_NS) * HOUR_NS
}

/// A series: its tags, sorted by key.
pub type SeriesKey = Box<[(Arc<str>, Arc<str>)]>;
/// A point's fields as the apply thread gathers them (most points have one; no allocation).
type Cells = smallvec::SmallVec<[Cell; 4]>;

/// One field of a row in 16 bytes (a name and a [`FieldValue`] would take 48): the field's
/// index among its partition's field names, its type, and its value's bits (a float's bits, an
/// integer, 0 or 1, or a string's index among the partition's strings). Rows are what the
/// apply thread writes for every sample, so their size is memory the kernel has to zero and
/// caches have to hold.
#[derive(Debug, Clone, Copy)]
struct Cell {
    bits: u64,
    field: u32,
    kind: FieldType,
}

/// A series' number within its table (see [`TableBuffer`]); reused after the series leaves
/// the buffer.
type SeriesId = u32;

/// A series' latest-row position before it has a row.
const NO_ROW: usize = usize::MAX;

/// Rows per chunk of a partition's log.
const LOG_CHUNK: usize = 4096;

/// Where a series was last written: the hour and its index in that partition.
type LastWrite = (i64, u32);

/// Says a row has no fields beyond its first.
const NO_MORE: u32 = u32::MAX;

/// One row as written, in 32 bytes: the time, the first field, the series' index within the
/// partition, and where the row's further fields are (most rows have one field).
#[derive(Debug)]
struct LogRow {
    time: i64,
    first: Cell,
    series: u32,
    /// Index in the partition's `more`, or [`NO_MORE`].
    more: u32,
}

/// One hour of one table: an append-only log of rows, sorted and merged when read.
///
/// Appending costs no search and no allocation per row, which is what the apply thread does
/// for every sample. A series' latest time written again (a retried request, a value re-sent)
/// is merged into its row in place; an earlier time written again (a correction, a late
/// retry) is appended, and reading merges the rows of one series and time in arrival order,
/// later fields replacing earlier ones. Either way the hour reads as if it had been updated in
/// place.
#[derive(Debug, Default)]
pub struct Partition {
    /// Each series' index in `series`, by its table-wide id.
    local: HashMap<SeriesId, u32>,
    /// Per index: the series' key, the latest time written to it, and where in the log the
    /// row of that time is.
    series: Vec<(SeriesKey, i64, usize)>,
    /// Rows in arrival order, in chunks of at most [`LOG_CHUNK`] (a big hour grows without
    /// copying what it holds; a small one stays small).
    log: Vec<Vec<LogRow>>,
    /// Some row arrived before its series' latest time (a correction, or out of order).
    unordered: bool,
    /// Field names, by the index a [`Cell`] holds (a table has few: found by a short scan).
    field_names: Vec<Arc<str>>,
    /// String values, by the index a [`Cell`] of type string holds. A string a rewrite
    /// replaced stays until the partition goes (rewrites of strings are rare).
    strings: Vec<Box<str>>,
    /// The fields after the first of rows with several, by the index a row holds.
    more: Vec<Vec<Cell>>,
    /// Rows in the log (a series and earlier time written again counts again; its latest time
    /// written again merges in place).
    pub rows: usize,
    /// Approximate bytes held.
    pub bytes: usize,
    /// Written to since the last snapshot.
    pub dirty: bool,
    cache: parking_lot::Mutex<Option<(u64, RecordBatch)>>,
}

impl Partition {
    /// Number of distinct series.
    pub fn series_count(&self) -> usize {
        self.series.len()
    }

    /// The index of series `id` here, adding it; and whether it is new to this partition.
    fn local_of(&mut self, id: SeriesId, key: &SeriesKey) -> (u32, bool) {
        if let Some(&l) = self.local.get(&id) {
            return (l, false);
        }
        let l = u32::try_from(self.series.len()).unwrap_or(u32::MAX);
        self.series.push((key.clone(), i64::MIN, NO_ROW));
        self.local.insert(id, l);
        (l, true)
    }

    /// Appends a row of the series with index `local` (a point without fields adds none).
    fn push(&mut self, local: u32, time: i64, fields: &[Cell]) {
        let Some((&first, further)) = fields.split_first() else {
            return;
        };
        self.dirty = true;
        *self.cache.get_mut() = None;
        let at = self.rows;
        if let Some((_, latest, latest_at)) = self.series.get_mut(local as usize) {
            if time == *latest && *latest_at != NO_ROW {
                // The series' latest row again (a retried request, a value re-sent): merged in
                // place, so rewrites do not pile up in an hour that stays in memory.
                let latest_at = *latest_at;
                self.merge_into(latest_at, fields);
                return;
            }
            if time < *latest {
                self.unordered = true;
            } else {
                *latest = time;
                *latest_at = at;
            }
        }
        let added: usize = fields.iter().map(|c| self.cell_bytes(*c)).sum();
        let more = if further.is_empty() {
            NO_MORE
        } else {
            self.more.push(further.to_vec());
            u32::try_from(self.more.len() - 1).unwrap_or(NO_MORE)
        };
        let row = LogRow {
            time,
            first,
            series: local,
            more,
        };
        match self.log.last_mut() {
            Some(chunk) if chunk.len() < LOG_CHUNK => chunk.push(row),
            _ => {
                let mut chunk = Vec::with_capacity(if self.log.is_empty() { 4 } else { LOG_CHUNK });
                chunk.push(row);
                self.log.push(chunk);
            }
        }
        self.rows += 1;
        self.bytes += added + 16;
    }

    /// A row's fields.
    fn cells<'a>(&'a self, row: &'a LogRow) -> impl Iterator<Item = &'a Cell> {
        let more = match row.more {
            NO_MORE => None,
            i => self.more.get(i as usize),
        };
        std::iter::once(&row.first).chain(more.into_iter().flatten())
    }

    /// The cell of one field of a point, adding the field's name (with `intern`) or the
    /// string value to the partition as needed.
    fn cell(
        &mut self,
        name: &str,
        value: ValueRef<'_>,
        intern: impl FnOnce(&str) -> Arc<str>,
    ) -> Cell {
        let field = match self.field_names.iter().position(|n| **n == *name) {
            Some(i) => i,
            None => {
                self.field_names.push(intern(name));
                self.field_names.len() - 1
            }
        };
        let (kind, bits) = match value {
            ValueRef::F64(x) => (FieldType::F64, x.to_bits()),
            ValueRef::I64(x) => (FieldType::I64, x as u64),
            ValueRef::U64(x) => (FieldType::U64, x),
            ValueRef::Bool(x) => (FieldType::Bool, u64::from(x)),
            ValueRef::Str(x) => {
                self.strings.push(x.into());
                (FieldType::Str, self.strings.len() as u64 - 1)
            }
        };
        Cell {
            bits,
            field: u32::try_from(field).unwrap_or(u32::MAX),
            kind,
        }
    }

    /// Bytes a cell stands for (its string included).
    fn cell_bytes(&self, c: Cell) -> usize {
        cell_bytes(&self.strings, c)
    }

    fn string(&self, c: Cell) -> Option<&str> {
        string_of(&self.strings, c)
    }

    /// Writes `fields` over those of the log's row `at` (the fields it names; others stay).
    fn merge_into(&mut self, at: usize, fields: &[Cell]) {
        let Partition {
            log,
            strings,
            bytes,
            more,
            ..
        } = self;
        let Some(row) = log
            .get_mut(at / LOG_CHUNK)
            .and_then(|chunk| chunk.get_mut(at % LOG_CHUNK))
        else {
            return;
        };
        let size = |c: &Cell| cell_bytes(strings, *c);
        for &c in fields {
            if row.first.field == c.field {
                *bytes = (*bytes + size(&c)).saturating_sub(size(&row.first));
                row.first = c;
                continue;
            }
            if row.more == NO_MORE {
                more.push(Vec::new());
                row.more = u32::try_from(more.len() - 1).unwrap_or(NO_MORE);
            }
            let Some(further) = more.get_mut(row.more as usize) else {
                continue;
            };
            match further.iter_mut().find(|f| f.field == c.field) {
                Some(slot) => {
                    *bytes = (*bytes + size(&c)).saturating_sub(size(slot));
                    *slot = c;
                }
                None => {
                    *bytes += size(&c);
                    further.push(c);
                }
            }
        }
    }

    /// Rows held of series `id`.
    #[cfg(test)]
    fn rows_of(&self, id: SeriesId) -> usize {
        let local = self.local.get(&id).copied();
        self.log
            .iter()
            .flatten()
            .filter(|r| Some(r.series) == local)
            .count()
    }

    /// The ids of the series held.
    fn series_ids(&self) -> impl Iterator<Item = SeriesId> + '_ {
        self.local.keys().copied()
    }

    /// The partition as one Arrow batch in `schema`'s shape, sorted by tags then time. Cached
    /// until the next write or schema change.
    pub fn to_batch(
        &self,
        schema: &TableSchema,
        schema_version: u64,
    ) -> arrow::error::Result<RecordBatch> {
        let mut cache = self.cache.lock();
        if let Some((v, b)) = cache.as_ref()
            && *v == schema_version
        {
            return Ok(b.clone());
        }
        let batch = build_batch(schema, self)?;
        *cache = Some((schema_version, batch.clone()));
        Ok(batch)
    }
}

/// The string a cell of type string indexes among a partition's `strings`.
fn string_of(strings: &[Box<str>], c: Cell) -> Option<&str> {
    strings.get(usize::try_from(c.bits).ok()?).map(|s| &**s)
}

/// Bytes a cell stands for (its string included), for the buffer's size.
fn cell_bytes(strings: &[Box<str>], c: Cell) -> usize {
    16 + match c.kind {
        FieldType::Str => string_of(strings, c).map_or(0, |s| s.len() + 16),
        _ => 0,
    }
}

/// Builds a partition's batch: series in tag-value order (absent tags first), each series'
/// rows by time, the rows of one series and time merged (the latest value of each field).
fn build_batch(schema: &TableSchema, part: &Partition) -> arrow::error::Result<RecordBatch> {
    let arrow_schema: SchemaRef = schema.arrow_schema();
    let tag_names: Vec<&str> = schema.tags.iter().map(String::as_str).collect();
    let mut keyed: Vec<(Vec<Option<&str>>, usize)> = part
        .series
        .iter()
        .enumerate()
        .map(|(i, (k, _, _))| {
            let vals = tag_names
                .iter()
                .map(|t| k.iter().find(|(n, _)| &**n == *t).map(|(_, v)| &**v))
                .collect();
            (vals, i)
        })
        .collect();
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    let mut rank = vec![0u32; part.series.len()];
    for (r, (_, i)) in keyed.iter().enumerate() {
        if let Some(slot) = rank.get_mut(*i) {
            *slot = u32::try_from(r).unwrap_or(u32::MAX);
        }
    }
    let rank_of = |row: &LogRow| rank.get(row.series as usize).copied().unwrap_or(u32::MAX);
    // Arrival order breaks ties, so the last write of a series and time comes last.
    let mut order: Vec<&LogRow> = part.log.iter().flatten().collect();
    if part.unordered {
        order.sort_by_key(|row| (rank_of(row), row.time));
    } else {
        // Each series' rows are already in time order: a stable sort by series is enough.
        order.sort_by_key(|row| rank_of(row));
    }
    let same = |a: &LogRow, b: &LogRow| a.series == b.series && a.time == b.time;
    let n = order.len() - order.windows(2).filter(|w| same(w[0], w[1])).count();
    let mut tag_builders: Vec<StringDictionaryBuilder<Int32Type>> = tag_names
        .iter()
        .map(|_| StringDictionaryBuilder::with_capacity(n, 64, 1024))
        .collect();
    let mut field_builders: Vec<FieldBuilder> = schema
        .fields
        .values()
        .map(|ty| FieldBuilder::new(*ty, n))
        .collect();
    // Each column's field index in this partition (none: no row has it).
    let field_index: Vec<Option<u32>> = schema
        .fields
        .keys()
        .map(|name| {
            part.field_names
                .iter()
                .position(|n| **n == **name)
                .and_then(|i| u32::try_from(i).ok())
        })
        .collect();
    let mut time = TimestampNanosecondBuilder::with_capacity(n).with_timezone("UTC");
    let no_tags: Vec<Option<&str>> = vec![None; tag_names.len()];
    let mut rest = order.as_slice();
    while let Some(first) = rest.first() {
        let len = rest.iter().take_while(|r| same(first, r)).count().max(1);
        let (group, tail) = rest.split_at(len.min(rest.len()));
        rest = tail;
        let vals = keyed
            .get(rank_of(first) as usize)
            .map_or(&no_tags, |(v, _)| v);
        for (b, v) in tag_builders.iter_mut().zip(vals) {
            match v {
                Some(s) => {
                    b.append_value(s);
                }
                None => b.append_null(),
            }
        }
        for (b, index) in field_builders.iter_mut().zip(&field_index) {
            let latest = index.and_then(|index| {
                group
                    .iter()
                    .rev()
                    .find_map(|r| part.cells(r).find(|c| c.field == index))
            });
            b.append(latest.copied(), part);
        }
        time.append_value(first.time);
    }
    let mut cols: Vec<ArrayRef> = Vec::with_capacity(arrow_schema.fields().len());
    cols.extend(
        tag_builders
            .iter_mut()
            .map(|b| Arc::new(b.finish()) as ArrayRef),
    );
    cols.extend(field_builders.iter_mut().map(FieldBuilder::finish));
    cols.push(Arc::new(time.finish()));
    RecordBatch::try_new(arrow_schema, cols)
}

enum FieldBuilder {
    F64(Float64Builder),
    I64(Int64Builder),
    U64(UInt64Builder),
    Bool(BooleanBuilder),
    Str(StringBuilder),
}

impl FieldBuilder {
    fn new(ty: FieldType, n: usize) -> Self {
        match ty {
            FieldType::F64 => Self::F64(Float64Builder::with_capacity(n)),
            FieldType::I64 => Self::I64(Int64Builder::with_capacity(n)),
            FieldType::U64 => Self::U64(UInt64Builder::with_capacity(n)),
            FieldType::Bool => Self::Bool(BooleanBuilder::with_capacity(n)),
            FieldType::Str => Self::Str(StringBuilder::with_capacity(n, n * 8)),
        }
    }
    /// Appends a cell's value, or null when absent or (defensively) of another type.
    fn append(&mut self, c: Option<Cell>, part: &Partition) {
        let kind = c.map(|c| c.kind);
        let bits = c.map_or(0, |c| c.bits);
        match (self, kind) {
            (Self::F64(b), Some(FieldType::F64)) => b.append_value(f64::from_bits(bits)),
            (Self::I64(b), Some(FieldType::I64)) => b.append_value(bits as i64),
            (Self::U64(b), Some(FieldType::U64)) => b.append_value(bits),
            (Self::Bool(b), Some(FieldType::Bool)) => b.append_value(bits != 0),
            (Self::Str(b), Some(FieldType::Str)) => match c.and_then(|c| part.string(c)) {
                Some(x) => b.append_value(x),
                None => b.append_null(),
            },
            (Self::F64(b), _) => b.append_null(),
            (Self::I64(b), _) => b.append_null(),
            (Self::U64(b), _) => b.append_null(),
            (Self::Bool(b), _) => b.append_null(),
            (Self::Str(b), _) => b.append_null(),
        }
    }
    fn finish(&mut self) -> ArrayRef {
        match self {
            Self::F64(b) => Arc::new(b.finish()),
            Self::I64(b) => Arc::new(b.finish()),
            Self::U64(b) => Arc::new(b.finish()),
            Self::Bool(b) => Arc::new(b.finish()),
            Self::Str(b) => Arc::new(b.finish()),
        }
    }
}

/// One table's buffered partitions, the series they hold, and a string interner for tag keys,
/// tag values and field names.
///
/// A point finds its series by the hash of its flat key (see [`flat_key`]), usually computed by
/// the request's own thread ([`Batch::index_series`]), often straight from the line-protocol
/// text: `by_hash` maps that hash to an id (`collided` holds the rare further ids with the same
/// hash), and one comparison of flat keys (or, for tags holding `,` or `=`, of the strings)
/// confirms the match. Only a series new to the buffer interns its strings and takes an id.
#[derive(Debug, Default)]
pub struct TableBuffer {
    /// Partitions by hour start.
    pub partitions: BTreeMap<i64, Partition>,
    interner: HashSet<Arc<str>>,
    /// Series ids by the hash of their tags (several ids only on a hash collision).
    by_hash: HashMap<u64, SeriesId>,
    /// Further ids whose tags hash like the one in `by_hash` (a hash collision).
    collided: HashMap<u64, Vec<SeriesId>>,
    /// Per id (an empty slot is a free id).
    series: Vec<Slot>,
    /// Ids no partition holds any more, for reuse.
    free: Vec<SeriesId>,
    /// Series held in any partition (the active-series count).
    active: usize,
    /// Room to build the flat key of a point that came without one.
    scratch: String,
}

/// One series id's state.
#[derive(Debug, Default)]
struct Slot {
    /// Interned tags, shared with the partitions.
    key: SeriesKey,
    /// How many partitions hold the series (0: the id is free).
    parts: usize,
    /// The hour and index it was last written at (most writes go to the same partition
    /// again, which then needs no lookup).
    last: Option<LastWrite>,
    /// Flat key (see [`flat_key`]).
    flat: Box<str>,
    /// No tag key or value holds `,` or `=`, so the flat key alone identifies the tags.
    plain: bool,
}

/// How a point names its series: the hash of its flat key, the flat key, and whether the
/// tags are plain (see [`flat_key`]).
pub(crate) type SeriesRef<'a> = (u64, &'a str, bool);

/// Appends a series' flat key to `out`: its tags as `key=value` joined by `,`, which is how a
/// line-protocol tag set without escapes reads. Returns whether the tags are plain: no key or
/// value holds `,` or `=`. Plain tags have exactly one flat key and it has exactly one reading,
/// so two plain tag lists are equal when their flat keys are; other tags are hashed by the
/// flat key too but compared string by string.
pub(crate) fn flat_key<'a>(
    tags: impl Iterator<Item = (&'a str, &'a str)> + Clone,
    out: &mut String,
) -> bool {
    let separator = |s: &str| s.bytes().any(|b| b == b',' || b == b'=');
    let plain = tags.clone().all(|(k, v)| !separator(k) && !separator(v));
    flat_key_of_plain(tags, out);
    plain
}

/// [`flat_key`] for tags known to be plain (line protocol without escapes cannot hold `,` or
/// `=` in a key or value): no scan for separators.
pub(crate) fn flat_key_of_plain<'a>(
    tags: impl Iterator<Item = (&'a str, &'a str)>,
    out: &mut String,
) {
    for (i, (k, v)) in tags.enumerate() {
        push_flat_tag(out, i == 0, k, v);
    }
}

/// Appends one tag of a flat key (after a `,` unless it is the first) and returns where its key
/// and value stand in `out`: the one place the flat key's spelling is written down.
#[inline]
pub(crate) fn push_flat_tag(
    out: &mut String,
    first: bool,
    key: &str,
    value: &str,
) -> (std::ops::Range<usize>, std::ops::Range<usize>) {
    if !first {
        out.push(',');
    }
    let k = out.len();
    out.push_str(key);
    let v = out.len() + 1;
    out.push('=');
    out.push_str(value);
    (k..v - 1, v..out.len())
}

/// The hash series are found by, of a flat key; stable within the process.
pub(crate) fn flat_hash(flat: &str) -> u64 {
    use std::hash::BuildHasher;
    TAGS_HASH.hash_one(flat.as_bytes())
}

/// Seeded once per process, like the write path's other maps.
static TAGS_HASH: std::sync::LazyLock<foldhash::fast::RandomState> =
    std::sync::LazyLock::new(foldhash::fast::RandomState::default);

fn same_tags<'a>(
    key: &[(Arc<str>, Arc<str>)],
    tags: impl ExactSizeIterator<Item = (&'a str, &'a str)>,
) -> bool {
    key.len() == tags.len()
        && key
            .iter()
            .zip(tags)
            .all(|((k, v), (tk, tv))| **k == *tk && **v == *tv)
}

/// How `p` names its series: the batch's precomputed key, or one built in `scratch`.
fn series_ref<'a>(p: PointRef<'a>, scratch: &'a mut String) -> SeriesRef<'a> {
    match p.series_key() {
        Some(k) => k,
        None => {
            scratch.clear();
            let plain = flat_key(p.tags(), scratch);
            (flat_hash(scratch), scratch.as_str(), plain)
        }
    }
}

/// The interned copy of `s`, added if new.
fn intern(interner: &mut HashSet<Arc<str>>, s: &str) -> Arc<str> {
    if let Some(a) = interner.get(s) {
        return Arc::clone(a);
    }
    let a: Arc<str> = Arc::from(s);
    interner.insert(Arc::clone(&a));
    a
}

impl TableBuffer {
    fn intern(&mut self, s: &str) -> Arc<str> {
        intern(&mut self.interner, s)
    }

    /// The id of the series of a point (its tags and how it names them), if any partition
    /// holds it.
    fn find<'a>(
        &self,
        (hash, flat, plain): SeriesRef<'_>,
        tags: impl ExactSizeIterator<Item = (&'a str, &'a str)> + Clone,
    ) -> Option<SeriesId> {
        let is = |id: &SeriesId| {
            self.series.get(*id as usize).is_some_and(|s| {
                s.parts > 0
                    && s.plain == plain
                    && if plain {
                        *s.flat == *flat
                    } else {
                        same_tags(&s.key, tags.clone())
                    }
            })
        };
        let first = *self.by_hash.get(&hash)?;
        if is(&first) {
            return Some(first);
        }
        self.collided.get(&hash)?.iter().copied().find(is)
    }

    /// Takes a freed series' id out of the hash index.
    fn unindex(&mut self, hash: u64, id: SeriesId) {
        if self.by_hash.get(&hash) == Some(&id) {
            match self.collided.get_mut(&hash).and_then(Vec::pop) {
                Some(other) => {
                    self.by_hash.insert(hash, other);
                }
                None => {
                    self.by_hash.remove(&hash);
                }
            }
        } else if let Some(ids) = self.collided.get_mut(&hash) {
            ids.retain(|x| *x != id);
        }
        if self.collided.get(&hash).is_some_and(Vec::is_empty) {
            self.collided.remove(&hash);
        }
    }

    /// The id of the series with these tags, taking a new one (and interning its strings) for
    /// a series new to the buffer.
    fn id_of(&mut self, p: PointRef<'_>) -> SeriesId {
        let mut scratch = std::mem::take(&mut self.scratch);
        let series = series_ref(p, &mut scratch);
        let id = match self.find(series, p.tags()) {
            Some(id) => id,
            None => self.add_series(series, p),
        };
        self.scratch = scratch;
        id
    }

    fn add_series(&mut self, (hash, flat, plain): SeriesRef<'_>, p: PointRef<'_>) -> SeriesId {
        let key: SeriesKey = p
            .tags()
            .map(|(k, v)| (self.intern(k), self.intern(v)))
            .collect();
        let slot = Slot {
            key,
            flat: flat.into(),
            plain,
            ..Slot::default()
        };
        let id = match self.free.pop() {
            Some(id) => {
                if let Some(s) = self.series.get_mut(id as usize) {
                    *s = slot;
                }
                id
            }
            None => {
                self.series.push(slot);
                SeriesId::try_from(self.series.len() - 1).unwrap_or(SeriesId::MAX)
            }
        };
        match self.by_hash.entry(hash) {
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(id);
            }
            std::collections::hash_map::Entry::Occupied(_) => {
                self.collided.entry(hash).or_default().push(id);
            }
        }
        id
    }

    /// Inserts an owned point (already validated against the schema).
    pub fn insert(&mut self, p: Point) -> usize {
        let batch = Batch::from_points(vec![(0, p)]);
        batch.get(0).map_or(0, |p| self.insert_ref(p))
    }

    /// Inserts a point of a batch (already validated against the schema); returns the bytes
    /// the buffer grew by.
    pub fn insert_ref(&mut self, p: PointRef<'_>) -> usize {
        let id = self.id_of(p);
        let time_ns = p.time_ns();
        let hour = hour_of(time_ns);
        let part = self.partitions.entry(hour).or_default();
        let before = part.bytes;
        let interner = &mut self.interner;
        let fields: Cells = p
            .fields()
            .map(|(k, v)| part.cell(k, v, |name| intern(interner, name)))
            .collect();
        let Some(slot) = self.series.get_mut(id as usize) else {
            return 0;
        };
        let local = match slot.last {
            Some((h, local)) if h == hour => local,
            _ => {
                let (local, new) = part.local_of(id, &slot.key);
                if new {
                    if slot.parts == 0 {
                        self.active += 1;
                    }
                    slot.parts += 1;
                }
                slot.last = Some((hour, local));
                local
            }
        };
        part.push(local, time_ns, &fields);
        // A rewrite with a shorter string shrinks the partition: counted as no growth.
        part.bytes.saturating_sub(before)
    }

    /// Removes a partition, keeping the active-series counts right.
    pub fn remove_partition(&mut self, hour: i64) -> Option<Partition> {
        let mut part = self.partitions.remove(&hour)?;
        for id in part.series_ids() {
            let Some(slot) = self.series.get_mut(id as usize) else {
                continue;
            };
            if slot.last.is_some_and(|(h, _)| h == hour) {
                slot.last = None;
            }
            slot.parts = slot.parts.saturating_sub(1);
            if slot.parts == 0 {
                // The series left the buffer: free its id and its strings.
                let Slot { flat, .. } = std::mem::take(slot);
                self.active -= 1;
                self.unindex(flat_hash(&flat), id);
                self.free.push(id);
            }
        }
        let Partition {
            series,
            local,
            log,
            field_names,
            strings,
            more,
            ..
        } = &mut part;
        drop((
            std::mem::take(series),
            std::mem::take(local),
            std::mem::take(log),
            std::mem::take(field_names),
            std::mem::take(strings),
            std::mem::take(more),
        ));
        // Strings only the interner still holds (span ids, ...) go with their last partition.
        self.interner.retain(|s| Arc::strong_count(s) > 1);
        Some(part)
    }

    /// Number of distinct series over all buffered partitions (the active-series count).
    pub fn active_series(&self) -> usize {
        self.active
    }

    /// Whether any buffered partition has the series of this point.
    pub fn has_series(&self, p: PointRef<'_>) -> bool {
        let mut scratch = String::new();
        self.find(series_ref(p, &mut scratch), p.tags()).is_some()
    }

    /// Bytes held by all partitions.
    pub fn bytes(&self) -> usize {
        self.partitions.values().map(|p| p.bytes).sum()
    }
}

/// Turns an Arrow batch (as read back from Parquet) into points, for loading a persisted hour
/// into the buffer before a late write changes it.
pub fn batch_to_points(table: &str, batch: &RecordBatch) -> arrow::error::Result<Vec<Point>> {
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{DataType, Float64Type, Int64Type, TimestampNanosecondType, UInt64Type};
    let schema = batch.schema();
    let mut tags = Vec::new();
    let mut fields = Vec::new();
    let mut time = None;
    for (i, f) in schema.fields().iter().enumerate() {
        let col = batch.column(i);
        if f.name() == crate::schema::TIME_COLUMN {
            let c = arrow::compute::cast(col, &crate::schema::time_type())?;
            time = Some(c);
        } else if matches!(f.data_type(), DataType::Dictionary(_, _)) {
            tags.push((
                f.name().clone(),
                arrow::compute::cast(col, &DataType::Utf8)?,
            ));
        } else {
            fields.push((f.name().clone(), Arc::clone(col)));
        }
    }
    let time =
        time.ok_or_else(|| arrow::error::ArrowError::SchemaError("no time column".into()))?;
    let time = time.as_primitive::<TimestampNanosecondType>();
    let mut out = Vec::with_capacity(batch.num_rows());
    for row in 0..batch.num_rows() {
        let mut ptags = Vec::with_capacity(tags.len());
        for (name, col) in &tags {
            let s = col.as_string::<i32>();
            if s.is_valid(row) {
                ptags.push((name.clone(), s.value(row).to_string()));
            }
        }
        let mut pfields = Vec::with_capacity(fields.len());
        for (name, col) in &fields {
            if !col.is_valid(row) {
                continue;
            }
            let v = match col.data_type() {
                DataType::Float64 => FieldValue::F64(col.as_primitive::<Float64Type>().value(row)),
                DataType::Int64 => FieldValue::I64(col.as_primitive::<Int64Type>().value(row)),
                DataType::UInt64 => FieldValue::U64(col.as_primitive::<UInt64Type>().value(row)),
                DataType::Boolean => FieldValue::Bool(col.as_boolean().value(row)),
                DataType::Utf8 => FieldValue::Str(col.as_string::<i32>().value(row).to_string()),
                DataType::Utf8View => FieldValue::Str(col.as_string_view().value(row).to_string()),
                _ => continue,
            };
            pfields.push((name.clone(), v));
        }
        if pfields.is_empty() {
            continue;
        }
        out.push(Point {
            table: table.to_string(),
            tags: ptags,
            fields: pfields,
            time_ns: time.value(row),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(tags: &[(&str, &str)], f: f64, t: i64) -> Point {
        Point {
            table: "cpu".into(),
            tags: tags
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            fields: vec![("usage".into(), FieldValue::F64(f))],
            time_ns: t,
        }
    }

    /// A point of series `cpu,host=a` with these fields.
    fn host_a_row(t: i64, fields: Vec<(&str, FieldValue)>) -> Point {
        Point {
            table: "cpu".into(),
            tags: vec![("host".into(), "a".into())],
            fields: fields
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            time_ns: t,
        }
    }

    /// The `cpu` table's columns in these tests: tag `host`, float field `usage`.
    fn cpu_schema() -> TableSchema {
        TableSchema {
            tags: ["host".to_string()].into(),
            fields: [("usage".to_string(), FieldType::F64)].into(),
        }
    }

    /// A partition's rows as the batch built from it reads back.
    fn read_back(part: &Partition, schema: &TableSchema) -> Vec<Point> {
        batch_to_points("cpu", &part.to_batch(schema, 0).expect("batch")).expect("points")
    }

    fn has(tb: &TableBuffer, tags: &[(&str, &str)]) -> bool {
        let b = Batch::from_points(vec![(0, p(tags, 0.0, 0))]);
        b.get(0).is_some_and(|q| tb.has_series(q))
    }

    fn flat(tags: &[(&str, &str)]) -> (String, bool) {
        let mut out = String::new();
        let plain = flat_key(tags.iter().copied(), &mut out);
        (out, plain)
    }

    #[test]
    fn flat_keys_identify_plain_tags_and_only_hash_the_others() {
        assert_eq!(
            flat(&[("a", "x"), ("b", "y")]),
            ("a=x,b=y".to_string(), true)
        );
        assert_eq!(flat(&[]), (String::new(), true));
        // Tags holding a separator can share a flat key with other tags: not plain.
        assert_eq!(flat(&[("a", "x,b=y")]), ("a=x,b=y".to_string(), false));
        let mut tb = TableBuffer::default();
        tb.insert(p(&[("a", "x"), ("b", "y")], 1.0, 10));
        tb.insert(p(&[("a", "x,b=y")], 2.0, 10));
        tb.insert(p(&[("a", "x=")], 3.0, 10));
        tb.insert(p(&[("a=x", "")], 4.0, 10));
        assert_eq!(tb.active_series(), 4, "same flat key, different series");
        tb.insert(p(&[("a", "x,b=y")], 5.0, 20));
        assert_eq!(tb.active_series(), 4);
        assert!(has(&tb, &[("a", "x,b=y")]) && !has(&tb, &[("a", "x,b=z")]));
    }

    #[test]
    fn a_point_with_its_key_precomputed_finds_the_same_series() {
        let mut tb = TableBuffer::default();
        tb.insert(p(&[("host", "a")], 1.0, 10));
        let mut indexed = Batch::from_points(vec![(0, p(&[("host", "a")], 2.0, 20))]);
        indexed.index_series();
        let q = indexed.get(0).expect("point");
        assert_eq!(q.series_key(), Some((flat_hash("host=a"), "host=a", true)));
        tb.insert_ref(q);
        assert_eq!(tb.active_series(), 1);
        // Line protocol refers to a sorted, unescaped tag set where it stands in the body.
        let parsed = crate::decode::line_protocol::parse_batch(
            b"cpu,host=a usage=3 30\ncpu,z=1,host=a usage=4 40\n",
            crate::point::Precision::Nanosecond,
            0,
        );
        let mut lp = parsed.batch;
        lp.index_series();
        let keys: Vec<_> = lp.iter().map(|q| q.series_key()).collect();
        assert_eq!(
            keys,
            vec![
                Some((flat_hash("host=a"), "host=a", true)),
                Some((flat_hash("host=a,z=1"), "host=a,z=1", true)),
            ]
        );
        for q in lp.iter() {
            tb.insert_ref(q);
        }
        assert_eq!(tb.active_series(), 2);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]
        /// However a tag set is written (line protocol with or without escapes, in any tag
        /// order, or as a point), it finds the same series, and different sets never meet.
        #[test]
        fn every_way_of_writing_a_tag_set_finds_its_one_series(
            sets in proptest::collection::vec(
                proptest::collection::btree_map("[a,= ]{1,2}", "[x,= ]{1,2}", 0..3), 1..8),
            order in proptest::collection::vec(proptest::num::usize::ANY, 0..12),
        ) {
            let mut tb = TableBuffer::default();
            let point = |tags: &std::collections::BTreeMap<String, String>, t: i64| Point {
                table: "cpu".into(),
                tags: tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                fields: vec![("usage".into(), FieldValue::F64(1.0))],
                time_ns: t,
            };
            let mut body = String::new();
            for (t, i) in order.iter().enumerate() {
                let tags = &sets[i % sets.len()];
                let mut line = crate::decode::line_protocol::encode_point(&point(tags, t as i64));
                // Also in reverse tag order (not sorted, so copied into a flat key).
                if t % 2 == 1 && tags.len() > 1 {
                    let q = point(tags, t as i64);
                    let mut rev = q.clone();
                    rev.tags.reverse();
                    let text = crate::decode::line_protocol::encode_point(&rev);
                    // encode_point writes tags as given; keep it only if it parses back to q.
                    let back = crate::decode::line_protocol::parse(text.as_bytes(), crate::point::Precision::Nanosecond, 0);
                    if back.points.first().map(|(_, b)| b) == Some(&q) {
                        line = text;
                    }
                }
                body.push_str(&line);
                body.push('\n');
            }
            let parsed = crate::decode::line_protocol::parse_batch(body.as_bytes(), crate::point::Precision::Nanosecond, 0);
            proptest::prop_assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
            let mut batch = parsed.batch;
            batch.index_series();
            for q in batch.iter() {
                tb.insert_ref(q);
            }
            for (t, tags) in sets.iter().enumerate() {
                tb.insert(point(tags, 1_000 + t as i64));
            }
            let distinct: std::collections::BTreeSet<_> = sets.iter().collect();
            proptest::prop_assert_eq!(tb.active_series(), distinct.len());
        }
    }

    #[test]
    fn same_series_and_time_is_stored_once_and_batch_is_sorted() {
        let mut tb = TableBuffer::default();
        tb.insert(p(&[("host", "b")], 1.0, 20));
        tb.insert(p(&[("host", "a")], 2.0, 30));
        tb.insert(p(&[("host", "a")], 3.0, 10));
        tb.insert(p(&[("host", "a")], 3.0, 10));
        tb.insert(p(&[], 4.0, 5));
        let schema = cpu_schema();
        let part = tb.partitions.values().next().expect("partition");
        assert_eq!(part.rows, 5, "a rewrite is held until the hour is rebuilt");
        let batch = part.to_batch(&schema, 0).expect("batch");
        let text = arrow::util::pretty::pretty_format_batches(&[batch])
            .expect("fmt")
            .to_string();
        let rows: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("| "))
            .skip(1)
            .collect();
        assert_eq!(rows.len(), 4);
        assert!(rows[0].contains("| 4.0"), "{text}");
        assert!(
            rows[1].contains("| a ") && rows[1].contains("| 3.0"),
            "{text}"
        );
        assert!(
            rows[2].contains("| a ") && rows[2].contains("| 2.0"),
            "{text}"
        );
        assert!(rows[3].contains("| b "), "{text}");
        let back = read_back(part, &schema);
        assert_eq!(back.len(), 4);
        assert_eq!(back[1], p(&[("host", "a")], 3.0, 10));
    }

    #[test]
    fn a_rewrite_replaces_the_fields_it_names_and_late_rows_read_in_time_order() {
        let mut tb = TableBuffer::default();
        let row = host_a_row;
        tb.insert(row(
            30,
            vec![("x", FieldValue::I64(1)), ("y", FieldValue::I64(2))],
        ));
        tb.insert(row(10, vec![("x", FieldValue::I64(5))]));
        tb.insert(row(30, vec![("y", FieldValue::I64(3))]));
        tb.insert(row(20, vec![("y", FieldValue::I64(7))]));
        tb.insert(row(30, vec![("x", FieldValue::I64(4))]));
        let schema = TableSchema {
            tags: ["host".to_string()].into(),
            fields: [
                ("x".to_string(), FieldType::I64),
                ("y".to_string(), FieldType::I64),
            ]
            .into(),
        };
        let part = tb.partitions.values().next().expect("partition");
        let back = read_back(part, &schema);
        assert_eq!(
            back,
            vec![
                row(10, vec![("x", FieldValue::I64(5))]),
                row(20, vec![("y", FieldValue::I64(7))]),
                row(
                    30,
                    vec![("x", FieldValue::I64(4)), ("y", FieldValue::I64(3))]
                ),
            ]
        );
    }

    #[test]
    fn every_field_type_reads_back_as_written_and_rewritten() {
        let mut tb = TableBuffer::default();
        let row = host_a_row;
        let all = |t: i64, s: &str, f: f64| {
            row(
                t,
                vec![
                    ("b", FieldValue::Bool(true)),
                    ("f", FieldValue::F64(f)),
                    ("i", FieldValue::I64(-7)),
                    ("s", FieldValue::Str(s.into())),
                    ("u", FieldValue::U64(u64::MAX)),
                ],
            )
        };
        tb.insert(all(1, "first", -0.0));
        tb.insert(all(2, "ünïcode", f64::NAN));
        // The latest row rewritten in place, one string replacing another.
        tb.insert(row(2, vec![("s", FieldValue::Str("second".into()))]));
        // An earlier row rewritten: appended, merged when read.
        tb.insert(row(1, vec![("b", FieldValue::Bool(false))]));
        let schema = TableSchema {
            tags: ["host".to_string()].into(),
            fields: [
                ("b".to_string(), FieldType::Bool),
                ("f".to_string(), FieldType::F64),
                ("i".to_string(), FieldType::I64),
                ("s".to_string(), FieldType::Str),
                ("u".to_string(), FieldType::U64),
                ("absent".to_string(), FieldType::F64),
            ]
            .into(),
        };
        let part = tb.partitions.values().next().expect("partition");
        let back = read_back(part, &schema);
        let mut first = all(1, "first", -0.0);
        first.fields[0].1 = FieldValue::Bool(false);
        assert_eq!(back.len(), 2);
        assert_eq!(back[0], first);
        assert!(matches!(back[0].fields[1].1, FieldValue::F64(x) if x.is_sign_negative()));
        assert!(matches!(back[1].fields[1].1, FieldValue::F64(x) if x.is_nan()));
        assert_eq!(back[1].fields[3].1, FieldValue::Str("second".into()));
        assert_eq!(back[1].fields[4].1, FieldValue::U64(u64::MAX));
    }

    #[test]
    fn a_row_stays_small() {
        // Every sample is a row: a bigger one costs memory, page zeroing and cache misses.
        assert!(
            std::mem::size_of::<LogRow>() <= 32,
            "{}",
            std::mem::size_of::<LogRow>()
        );
        assert_eq!(std::mem::size_of::<Cell>(), 16);
    }

    #[test]
    fn a_retried_write_merges_into_the_latest_rows_instead_of_piling_up() {
        let mut tb = TableBuffer::default();
        let hosts = ["a", "b", "c"];
        for round in 0..10 {
            for (i, h) in hosts.iter().enumerate() {
                for t in [10, 20] {
                    tb.insert(p(&[("host", h)], f64::from(round * 10 + i as i32), t));
                }
            }
        }
        let part = tb.partitions.values().next().expect("partition");
        // Each series' latest time (20) is merged in place; the earlier time (10) arrives
        // behind it and is held until the hour is read.
        assert_eq!(part.rows, 3 * 2 + 3 * 9);
        let back = read_back(part, &cpu_schema());
        let want: Vec<Point> = hosts
            .iter()
            .enumerate()
            .flat_map(|(i, h)| [10, 20].map(|t| p(&[("host", h)], f64::from(90 + i as i32), t)))
            .collect();
        assert_eq!(back, want);
    }

    #[test]
    fn a_series_written_again_after_its_hour_left_lands_in_the_new_partition() {
        let mut tb = TableBuffer::default();
        tb.insert(p(&[("host", "a")], 1.0, 10));
        // b lives on in the next hour, and was last written in hour 0.
        tb.insert(p(&[("host", "b")], 1.0, HOUR_NS + 10));
        tb.insert(p(&[("host", "b")], 1.0, 20));
        tb.remove_partition(0).expect("hour 0");
        // Hour 0 again (a late write after its snapshot): b's old position there is not used.
        tb.insert(p(&[("host", "b")], 2.0, 30));
        tb.insert(p(&[("host", "b")], 3.0, 40));
        let part = tb.partitions.get(&0).expect("partition");
        assert_eq!((part.series_count(), part.rows), (1, 2));
        assert_eq!(tb.active_series(), 1);
        let back = read_back(part, &cpu_schema());
        assert_eq!(
            back,
            vec![p(&[("host", "b")], 2.0, 30), p(&[("host", "b")], 3.0, 40)]
        );
    }

    #[test]
    fn an_hour_bigger_than_one_log_chunk_reads_whole_and_in_order() {
        let mut tb = TableBuffer::default();
        let n = 3 * LOG_CHUNK as i64 + 7;
        for t in 0..n {
            let host = ["c", "a", "b"][(t % 3) as usize];
            tb.insert(p(&[("host", host)], t as f64, t));
        }
        let schema = cpu_schema();
        let part = tb.partitions.values().next().expect("partition");
        let back = read_back(part, &schema);
        assert_eq!(back.len() as i64, n);
        let mut want: Vec<Point> = (0..n)
            .map(|t| p(&[("host", ["c", "a", "b"][(t % 3) as usize])], t as f64, t))
            .collect();
        want.sort_by(|x, y| (&x.tags, x.time_ns).cmp(&(&y.tags, y.time_ns)));
        assert_eq!(back, want);
    }

    #[test]
    fn series_ids_follow_the_buffer_and_are_reused_after_their_last_hour() {
        let mut tb = TableBuffer::default();
        tb.insert(p(&[("host", "a")], 1.0, 10));
        tb.insert(p(&[("host", "a")], 1.0, HOUR_NS + 10));
        tb.insert(p(&[("host", "b")], 1.0, HOUR_NS + 20));
        assert_eq!(tb.active_series(), 2);
        let a = [("host", "a")];
        let b = [("host", "b")];
        let c = [("host", "c")];
        assert!(has(&tb, &a) && has(&tb, &b) && !has(&tb, &c));
        // a is still in the second hour after the first goes.
        tb.remove_partition(0).expect("hour 0");
        assert_eq!(tb.active_series(), 2);
        assert!(has(&tb, &a));
        tb.remove_partition(HOUR_NS).expect("hour 1");
        assert_eq!(tb.active_series(), 0);
        assert!(!has(&tb, &a) && !has(&tb, &b));
        assert!(tb.by_hash.is_empty(), "freed ids leave the hash index");
        let left: Vec<&str> = tb.interner.iter().map(|s| &**s).collect();
        assert!(
            left.is_empty(),
            "tag strings and field names leave the interner with their last partition: {left:?}"
        );
        // New series take the freed ids instead of growing the table.
        tb.insert(p(&[("host", "c")], 1.0, 10));
        tb.insert(p(&[("host", "d")], 1.0, 10));
        assert_eq!(tb.series.len(), 2);
        assert!(has(&tb, &c) && !has(&tb, &a));
        let part = tb.partitions.values().next().expect("partition");
        assert_eq!((part.rows, part.series_count()), (2, 2));
    }

    #[test]
    fn a_hash_collision_still_finds_the_right_series() {
        let mut tb = TableBuffer::default();
        tb.insert(p(&[("host", "a")], 1.0, 10));
        tb.insert(p(&[("host", "b")], 2.0, 10));
        let a = [("host", "a")];
        // Put both ids under a's hash, b's first, as if the hashes were equal.
        let (fa, fb) = ("host=a", "host=b");
        let (ha, hb) = (flat_hash(fa), flat_hash(fb));
        let id_b = tb.by_hash[&hb];
        let id_a = tb.by_hash[&ha];
        tb.by_hash.insert(ha, id_b);
        tb.collided.insert(ha, vec![id_a]);
        assert_eq!(tb.find((ha, fa, true), a.iter().copied()), Some(id_a));
        // A write of a lands on a, not on b.
        tb.insert(p(&[("host", "a")], 3.0, 20));
        let part = tb.partitions.values().next().expect("partition");
        assert_eq!(part.rows_of(id_a), 2);
        assert_eq!(part.rows_of(id_b), 1);
        // Freeing the id in `by_hash` promotes the collided one.
        tb.unindex(ha, id_b);
        assert_eq!(tb.by_hash.get(&ha), Some(&id_a));
        assert!(tb.collided.is_empty());
        assert_eq!(tb.find((ha, fa, true), a.iter().copied()), Some(id_a));
    }

    #[test]
    fn hours_are_partitions_even_before_the_epoch() {
        assert_eq!(hour_of(HOUR_NS + 5), HOUR_NS);
        assert_eq!(hour_of(-1), -HOUR_NS);
    }
}
