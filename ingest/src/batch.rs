//! A request's points held in a few flat vectors: the write path's unit.
//!
//! A [`Point`] owns a `String` per name and value and two `Vec`s, about a dozen heap allocations
//! for a node-exporter sample, each freed again on the WAL thread after the buffer copied what
//! it keeps. A [`Batch`] keeps every string of a request back to back in one `String` and the
//! points, tags and fields in three vectors of offsets, so decoding a request of ten thousand
//! lines allocates a handful of times instead of a hundred thousand. Decoders on the hot paths
//! (line protocol, remote write) fill a batch directly; the others build [`Point`]s and convert.

use crate::point::{FieldType, FieldValue, Point};
use crate::spare::{self, Shelf};
use std::sync::Arc;

/// A string inside the batch's text: in its base (a request body) when it starts below the
/// base's length, else in the strings added after it, counted on from the base's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    start: usize,
    end: usize,
}

impl Span {
    /// Length in bytes.
    pub(crate) fn len(self) -> usize {
        self.end - self.start
    }
}

/// The string `s` names in a batch's base or added text (see [`Span`]).
#[inline]
fn slice<'a>(base: &'a str, text: &'a str, s: Span) -> &'a str {
    let b = base.len();
    if s.start < b {
        base.get(s.start..s.end)
    } else {
        text.get(s.start - b..s.end - b)
    }
    .unwrap_or_default()
}

/// A field value whose string, if any, is inside the batch's text.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Val {
    F64(f64),
    I64(i64),
    U64(u64),
    Bool(bool),
    Str(Span),
}

/// One point: its caller tag (line number, sample index), table, tag and field ranges, time.
#[derive(Debug, Clone, Copy)]
struct Row {
    tag: usize,
    table: Span,
    tags: (usize, usize),
    fields: (usize, usize),
    time_ns: i64,
    /// What the decoder knows of the tags' flat key (see [`crate::buffer::flat_key`]).
    flat: FlatHint,
    /// Set by [`Batch::index_series`].
    series: Option<SeriesKeyAt>,
}

/// A point's flat series key's hash, where the key is in the text, and whether the tags are
/// plain.
type SeriesKeyAt = (u64, Span, bool);

/// What a decoder knows of a point's flat series key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum FlatHint {
    /// Nothing: build it and check whether the tags are plain.
    #[default]
    Unknown,
    /// The tags are plain (no `,` or `=` in a key or value).
    Plain,
    /// The tags are plain and the flat key stands in the text here (a sorted line-protocol
    /// tag set without escapes).
    InText(Span),
}

/// Points of one request (see the module docs).
#[derive(Debug, Clone, Default)]
pub struct Batch {
    /// A request body the points refer into (see [`Batch::over_text`]); empty otherwise.
    base: Arc<String>,
    /// Strings added by the decoder, after the base.
    text: String,
    rows: Vec<Row>,
    tags: Vec<(Span, Span)>,
    fields: Vec<(Span, Val)>,
    /// Every string in the text is free of control characters (the decoder checked them
    /// already, line protocol for the whole body at once), so validation skips that check.
    printable: bool,
    /// The points' ranges by table, set by [`Batch::set_groups`] and dropped by anything that
    /// moves points.
    groups: Vec<TableGroup>,
}

/// Spare vectors of finished batches (see [`crate::spare`]): a request's batch is a few
/// megabytes of them.
static ROWS: Shelf<Row> = Shelf::new();
static TAGS: Shelf<(Span, Span)> = Shelf::new();
static FIELDS: Shelf<(Span, Val)> = Shelf::new();

impl Drop for Batch {
    /// Hands the vectors, and the request body if this batch was its last holder, to the
    /// shelves for the next request.
    fn drop(&mut self) {
        ROWS.put(std::mem::take(&mut self.rows));
        TAGS.put(std::mem::take(&mut self.tags));
        FIELDS.put(std::mem::take(&mut self.fields));
        spare::BYTES.put(std::mem::take(&mut self.text).into_bytes());
        if let Ok(body) = Arc::try_unwrap(std::mem::take(&mut self.base)) {
            spare::BYTES.put(body.into_bytes());
        }
    }
}

/// A table's points in a batch sorted by table ([`Batch::sort_by_table`]): the indices of a
/// run of points, the first of which names the table.
pub(crate) type TableGroup = std::ops::Range<usize>;

/// Where a point under construction started, to finish it or take it back.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mark {
    text: usize,
    tags: usize,
    fields: usize,
}

/// A borrowed field value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ValueRef<'a> {
    /// 64-bit float.
    F64(f64),
    /// Signed integer.
    I64(i64),
    /// Unsigned integer.
    U64(u64),
    /// Boolean.
    Bool(bool),
    /// String.
    Str(&'a str),
}

impl ValueRef<'_> {
    /// The column type this value needs.
    pub fn field_type(&self) -> FieldType {
        match self {
            ValueRef::F64(_) => FieldType::F64,
            ValueRef::I64(_) => FieldType::I64,
            ValueRef::U64(_) => FieldType::U64,
            ValueRef::Bool(_) => FieldType::Bool,
            ValueRef::Str(_) => FieldType::Str,
        }
    }

    /// The owned value.
    pub fn to_owned_value(&self) -> FieldValue {
        match *self {
            ValueRef::F64(x) => FieldValue::F64(x),
            ValueRef::I64(x) => FieldValue::I64(x),
            ValueRef::U64(x) => FieldValue::U64(x),
            ValueRef::Bool(x) => FieldValue::Bool(x),
            ValueRef::Str(s) => FieldValue::Str(s.to_owned()),
        }
    }
}

impl<'a> From<&'a FieldValue> for ValueRef<'a> {
    fn from(v: &'a FieldValue) -> Self {
        match v {
            FieldValue::F64(x) => ValueRef::F64(*x),
            FieldValue::I64(x) => ValueRef::I64(*x),
            FieldValue::U64(x) => ValueRef::U64(*x),
            FieldValue::Bool(x) => ValueRef::Bool(*x),
            FieldValue::Str(s) => ValueRef::Str(s),
        }
    }
}

/// One point of a batch, borrowed.
#[derive(Debug, Clone, Copy)]
pub struct PointRef<'a> {
    batch: &'a Batch,
    row: &'a Row,
}

impl<'a> PointRef<'a> {
    /// The caller's tag: line number, sample index.
    pub fn tag(&self) -> usize {
        self.row.tag
    }

    /// Table name.
    pub fn table(&self) -> &'a str {
        self.batch.str(self.row.table)
    }

    /// Nanoseconds since the Unix epoch.
    pub fn time_ns(&self) -> i64 {
        self.row.time_ns
    }

    /// Tag key/value pairs, sorted by key.
    pub fn tags(&self) -> impl ExactSizeIterator<Item = (&'a str, &'a str)> + Clone + use<'a> {
        let b = self.batch;
        b.tags
            .get(self.row.tags.0..self.row.tags.1)
            .unwrap_or_default()
            .iter()
            .map(move |(k, v)| (b.str(*k), b.str(*v)))
    }

    /// Field name/value pairs.
    pub fn fields(
        &self,
    ) -> impl ExactSizeIterator<Item = (&'a str, ValueRef<'a>)> + Clone + use<'a> {
        let b = self.batch;
        b.fields
            .get(self.row.fields.0..self.row.fields.1)
            .unwrap_or_default()
            .iter()
            .map(move |(k, v)| (b.str(*k), b.value(*v)))
    }

    /// Whether the decoder found the whole request free of control characters.
    pub(crate) fn printable(&self) -> bool {
        self.batch.printable
    }

    /// How the point names its series, if the batch was indexed.
    pub(crate) fn series_key(&self) -> Option<crate::buffer::SeriesRef<'a>> {
        let (hash, flat, plain) = self.row.series?;
        Some((hash, self.batch.str(flat), plain))
    }

    /// The owned point.
    pub fn to_point(&self) -> Point {
        Point {
            table: self.table().to_owned(),
            tags: self
                .tags()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            fields: self
                .fields()
                .map(|(k, v)| (k.to_owned(), v.to_owned_value()))
                .collect(),
            time_ns: self.time_ns(),
        }
    }
}

impl Batch {
    /// An empty batch with room for `points` points of about `text` bytes of strings.
    pub fn with_capacity(points: usize, text: usize) -> Self {
        Self::with_base(points, text, Arc::default())
    }

    /// An empty batch over `text` (a request body, shared, not copied), so a decoder can refer
    /// to the names and values in it by [`Batch::span`] instead of copying each.
    pub(crate) fn over_text(points: usize, text: Arc<String>) -> Self {
        Self::with_base(points, 0, text)
    }

    /// An empty batch over `base` with room for `points` points and `text` bytes of added
    /// strings, its vectors taken from the shelves of finished batches (see [`crate::spare`]).
    fn with_base(points: usize, text: usize, base: Arc<String>) -> Self {
        Self {
            base,
            text: String::from_utf8(spare::BYTES.take(text)).unwrap_or_default(),
            rows: ROWS.take(points),
            tags: TAGS.take(points * 4),
            fields: FIELDS.take(points),
            printable: false,
            groups: Vec::new(),
        }
    }

    /// The text between `start` and `end` (offsets in the text as it was given to
    /// [`Batch::over_text`]).
    pub(crate) fn span(&self, start: usize, end: usize) -> Span {
        Span { start, end }
    }

    /// Owned points with their caller tags, in order.
    pub fn from_points(points: Vec<(usize, Point)>) -> Self {
        let text = points
            .iter()
            .map(|(_, p)| {
                p.table.len()
                    + p.tags.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>()
                    + p.fields.iter().map(|(k, _)| k.len()).sum::<usize>()
            })
            .sum();
        let mut b = Self::with_capacity(points.len(), text);
        for (tag, p) in &points {
            b.push_point(*tag, p);
        }
        b
    }

    /// Appends an owned point.
    pub fn push_point(&mut self, tag: usize, p: &Point) {
        let m = self.mark();
        for (k, v) in &p.tags {
            self.add_tag(k, v);
        }
        for (k, v) in &p.fields {
            self.add_field(k, ValueRef::from(v));
        }
        let table = self.push_str(&p.table);
        self.finish(m, tag, table, p.time_ns);
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether there is no point.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The points in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = PointRef<'_>> + '_ {
        self.rows.iter().map(|row| PointRef { batch: self, row })
    }

    /// The `i`-th point.
    pub fn get(&self, i: usize) -> Option<PointRef<'_>> {
        self.rows.get(i).map(|row| PointRef { batch: self, row })
    }

    /// Keeps the points `keep` says yes to, in order (their strings stay in the text).
    pub fn retain(&mut self, mut keep: impl FnMut(PointRef<'_>) -> bool) {
        self.groups.clear();
        let mut rows = std::mem::take(&mut self.rows);
        rows.retain(|row| keep(PointRef { batch: self, row }));
        self.rows = rows;
    }

    /// The owned points with their caller tags.
    pub fn to_points(&self) -> Vec<(usize, Point)> {
        self.iter().map(|p| (p.tag(), p.to_point())).collect()
    }

    /// Says that the last point's tags are plain, and where their flat key stands in the
    /// text, if it does.
    pub(crate) fn set_last_plain(&mut self, flat: Option<Span>) {
        if let Some(row) = self.rows.last_mut() {
            row.flat = flat.map_or(FlatHint::Plain, FlatHint::InText);
        }
    }

    /// Hashes every point's flat series key (see [`crate::buffer::flat_key`]), building the
    /// key in the text where it is not there already, so that the buffer's series lookup,
    /// which runs on the apply thread, only compares. Meant for the request's own thread.
    /// Points that share their tags (remote write's samples of one series) share the key.
    pub fn index_series(&mut self) {
        let mut scratch = String::new();
        let mut prev: Option<((usize, usize), SeriesKeyAt)> = None;
        for i in 0..self.rows.len() {
            let Some(row) = self.rows.get(i).copied() else {
                break;
            };
            let series = match (prev, row.flat) {
                (Some((tags, series)), _) if tags == row.tags => series,
                (_, FlatHint::InText(flat)) => {
                    (crate::buffer::flat_hash(self.str(flat)), flat, true)
                }
                (_, hint) => {
                    scratch.clear();
                    let p = PointRef {
                        batch: self,
                        row: &row,
                    };
                    let plain = if hint == FlatHint::Plain {
                        crate::buffer::flat_key_of_plain(p.tags(), &mut scratch);
                        true
                    } else {
                        crate::buffer::flat_key(p.tags(), &mut scratch)
                    };
                    let flat = self.push_str(&scratch);
                    (crate::buffer::flat_hash(&scratch), flat, plain)
                }
            };
            prev = Some((row.tags, series));
            if let Some(r) = self.rows.get_mut(i) {
                r.series = Some(series);
            }
        }
    }

    /// Says that no string in the text has a control character: the decoder checked the text
    /// it came from (unescaping or joining such strings cannot make one), or every string it
    /// added.
    pub(crate) fn set_printable(&mut self) {
        self.printable = true;
    }

    /// The points' runs by table: as [`Batch::set_groups`] left them, or worked out now from
    /// consecutive points of one table (one run per table once [`Batch::sort_by_table`] ran;
    /// otherwise a table may have several runs, which is still right, only slower).
    pub(crate) fn groups(&self) -> std::borrow::Cow<'_, [TableGroup]> {
        if !self.groups.is_empty() || self.rows.is_empty() {
            return std::borrow::Cow::Borrowed(&self.groups);
        }
        let mut runs: Vec<TableGroup> = Vec::new();
        let mut last: Option<Span> = None;
        for (i, row) in self.rows.iter().enumerate() {
            let same = last.is_some_and(|t| t == row.table || self.str(t) == self.str(row.table));
            match runs.last_mut() {
                Some(run) if same => run.end = i + 1,
                _ => runs.push(i..i + 1),
            }
            last = Some(row.table);
        }
        std::borrow::Cow::Owned(runs)
    }

    /// Keeps `groups` (worked out by [`Batch::sort_by_table`] for these very points) for
    /// [`Batch::groups`].
    pub(crate) fn set_groups(&mut self, groups: Vec<TableGroup>) {
        self.groups = groups;
    }

    /// Moves the points so that each table's are together, tables in order of first
    /// appearance and points in order within a table, and returns each table's run. Later
    /// passes (validation, the apply thread) then read the points front to back, one table at
    /// a time, instead of jumping through the batch. Consecutive points of one table (the
    /// usual case) compare one string instead of hashing it.
    pub(crate) fn sort_by_table(&mut self) -> Vec<TableGroup> {
        self.groups.clear();
        let mut index: crate::buffer::HashMap<&str, u32> = Default::default();
        let mut counts: Vec<usize> = Vec::new();
        let mut of_row: Vec<u32> = Vec::with_capacity(self.rows.len());
        let mut last: Option<(Span, &str, u32)> = None;
        for row in &self.rows {
            let at = match last {
                // Remote write's samples of one series share the table's span.
                Some((span, _, at)) if span == row.table => at,
                Some((_, t, at)) if t == self.str(row.table) => at,
                _ => {
                    let table = self.str(row.table);
                    *index.entry(table).or_insert_with(|| {
                        counts.push(0);
                        u32::try_from(counts.len() - 1).unwrap_or(u32::MAX)
                    })
                }
            };
            last = Some((row.table, self.str(row.table), at));
            if let Some(c) = counts.get_mut(at as usize) {
                *c += 1;
            }
            of_row.push(at);
        }
        drop(index);
        let mut groups = Vec::with_capacity(counts.len());
        let mut start = 0;
        for &n in &counts {
            groups.push(start..start + n);
            start += n;
        }
        // Already one run per table (a request of one table, or sorted by its sender).
        if of_row.windows(2).all(|w| w[0] <= w[1]) {
            return groups;
        }
        // Where each position of the sorted order comes from, then one gather.
        let mut next: Vec<usize> = groups.iter().map(|g| g.start).collect();
        let mut source = vec![0usize; self.rows.len()];
        for (i, at) in of_row.into_iter().enumerate() {
            if let Some(slot) = next.get_mut(at as usize) {
                if let Some(s) = source.get_mut(*slot) {
                    *s = i;
                }
                *slot += 1;
            }
        }
        // Sized up front: a collect through `filter_map` grew the vector by doubling, and each
        // growth was a fresh block of pages for the kernel to zero (6 % of a fresh server's
        // CPU over the bench load).
        let rows = std::mem::take(&mut self.rows);
        self.rows = ROWS.take(rows.len());
        self.rows
            .extend(source.iter().filter_map(|&i| rows.get(i).copied()));
        ROWS.put(rows);
        groups
    }

    /// Bytes of text held (for sizing the WAL record).
    pub fn text_len(&self) -> usize {
        self.base.len() + self.text.len()
    }

    /// The request body the batch was decoded over, if it was (see [`Batch::over_text`]).
    pub(crate) fn whole_text(&self) -> Option<&str> {
        (!self.base.is_empty()).then_some(self.base.as_str())
    }

    fn str(&self, s: Span) -> &str {
        slice(&self.base, &self.text, s)
    }

    fn value(&self, v: Val) -> ValueRef<'_> {
        match v {
            Val::F64(x) => ValueRef::F64(x),
            Val::I64(x) => ValueRef::I64(x),
            Val::U64(x) => ValueRef::U64(x),
            Val::Bool(x) => ValueRef::Bool(x),
            Val::Str(s) => ValueRef::Str(self.str(s)),
        }
    }

    /// Copies a string into the text.
    pub(crate) fn push_str(&mut self, s: &str) -> Span {
        self.push_with(|text| text.push_str(s))
    }

    /// Writes a string into the text with `write` (e.g. unescaping as it goes).
    pub(crate) fn push_with(&mut self, write: impl FnOnce(&mut String)) -> Span {
        let start = self.text.len();
        write(&mut self.text);
        Span {
            start: self.base.len() + start,
            end: self.base.len() + self.text.len(),
        }
    }

    /// The start of a new point.
    pub(crate) fn mark(&self) -> Mark {
        Mark {
            text: self.text.len(),
            tags: self.tags.len(),
            fields: self.fields.len(),
        }
    }

    /// Takes back everything written since `m` (a line that turned out bad).
    pub(crate) fn rollback(&mut self, m: Mark) {
        self.text.truncate(m.text);
        self.tags.truncate(m.tags);
        self.fields.truncate(m.fields);
    }

    /// Adds a tag to the point under construction.
    pub(crate) fn add_tag(&mut self, key: &str, value: &str) {
        let k = self.push_str(key);
        let v = self.push_str(value);
        self.tags.push((k, v));
    }

    /// Adds tags, sorted by key and plain (no `,` or `=`), by writing their flat key
    /// (`k=v,k=v`, see [`crate::buffer::flat_key`]) into the text once, with each tag's key and
    /// value pointing into it; returns where the key stands.
    pub(crate) fn add_tags_as_flat_key<'a>(
        &mut self,
        tags: impl Iterator<Item = (&'a str, &'a str)>,
    ) -> Span {
        let base = self.base.len();
        let at = |r: std::ops::Range<usize>| Span {
            start: base + r.start,
            end: base + r.end,
        };
        let start = self.text.len();
        for (i, (k, v)) in tags.enumerate() {
            let (k, v) = crate::buffer::push_flat_tag(&mut self.text, i == 0, k, v);
            self.tags.push((at(k), at(v)));
        }
        at(start..self.text.len())
    }

    /// Adds a tag whose strings are already in the text.
    pub(crate) fn add_tag_spans(&mut self, key: Span, value: Span) {
        self.tags.push((key, value));
    }

    /// Adds a field to the point under construction.
    pub(crate) fn add_field(&mut self, key: &str, value: ValueRef<'_>) {
        let k = self.push_str(key);
        self.add_field_span(k, value);
    }

    /// Adds a field whose name is already in the text.
    pub(crate) fn add_field_span(&mut self, key: Span, value: ValueRef<'_>) {
        let v = match value {
            ValueRef::F64(x) => Val::F64(x),
            ValueRef::I64(x) => Val::I64(x),
            ValueRef::U64(x) => Val::U64(x),
            ValueRef::Bool(x) => Val::Bool(x),
            ValueRef::Str(s) => Val::Str(self.push_str(s)),
        };
        self.fields.push((key, v));
    }

    /// Adds a string field whose value is already in the text.
    pub(crate) fn add_str_field_spans(&mut self, key: Span, value: Span) {
        self.fields.push((key, Val::Str(value)));
    }

    /// Tags of the point under construction.
    pub(crate) fn tags_since(
        &self,
        m: Mark,
    ) -> impl ExactSizeIterator<Item = (&str, &str)> + Clone {
        self.tags
            .get(m.tags..)
            .unwrap_or_default()
            .iter()
            .map(|(k, v)| (self.str(*k), self.str(*v)))
    }

    /// Field names of the point under construction.
    pub(crate) fn field_names_since(&self, m: Mark) -> impl ExactSizeIterator<Item = &str> + Clone {
        self.fields
            .get(m.fields..)
            .unwrap_or_default()
            .iter()
            .map(|(k, _)| self.str(*k))
    }

    /// Sorts the tags of the point under construction by key. Returns whether they were in
    /// order already (and distinct), and a key that occurs twice. Tags in strictly increasing
    /// order, the usual case, take one comparison per pair.
    pub(crate) fn sort_tags_since(&mut self, m: Mark) -> (bool, Option<&str>) {
        let (base, text) = (&self.base, &self.text);
        let s = |x: Span| slice(base, text, x);
        let tags = self.tags.get_mut(m.tags..).unwrap_or_default();
        if tags.is_sorted_by(|a, b| s(a.0) < s(b.0)) {
            return (true, None);
        }
        tags.sort_unstable_by(|a, b| s(a.0).cmp(s(b.0)));
        let dup = tags.windows(2).find(|w| s(w[0].0) == s(w[1].0));
        (false, dup.map(|w| s(w[0].0)))
    }

    /// Whether the point under construction, its tags sorted, has a tag named `key`.
    pub(crate) fn has_tag_since(&self, m: Mark, key: &str) -> bool {
        let s = |x: Span| self.str(x);
        let tags = self.tags.get(m.tags..).unwrap_or_default();
        if tags.len() <= 8 {
            // Equality compares lengths first: mostly no byte comparison at all.
            tags.iter()
                .any(|(k, _)| k.len() == key.len() && s(*k) == key)
        } else {
            tags.binary_search_by(|(k, _)| s(*k).cmp(key)).is_ok()
        }
    }

    /// Drops the tags of the point under construction whose value is empty.
    pub(crate) fn drop_empty_tags_since(&mut self, m: Mark) {
        if let Some(tags) = self.tags.get(m.tags..)
            && tags.iter().any(|(_, v)| v.start == v.end)
        {
            let mut i = m.tags;
            while i < self.tags.len() {
                if self.tags[i].1.start == self.tags[i].1.end {
                    self.tags.remove(i);
                } else {
                    i += 1;
                }
            }
        }
    }

    /// Completes the point started at `m` with the tags and fields added since.
    pub(crate) fn finish(&mut self, m: Mark, tag: usize, table: Span, time_ns: i64) {
        self.rows.push(Row {
            tag,
            table,
            tags: (m.tags, self.tags.len()),
            fields: (m.fields, self.fields.len()),
            time_ns,
            flat: FlatHint::Unknown,
            series: None,
        });
    }

    /// Another point with the last point's table and tags (shared, not copied) and one field
    /// named as its first, with its own value and time: remote write's further samples of a
    /// series.
    pub(crate) fn repeat_with(&mut self, tag: usize, time_ns: i64, value: ValueRef<'_>) {
        let Some(last) = self.rows.last().copied() else {
            return;
        };
        let (k, _) = match self.fields.get(last.fields.0) {
            Some(f) => *f,
            None => return,
        };
        let f0 = self.fields.len();
        self.add_field_span(k, value);
        self.rows.push(Row {
            tag,
            time_ns,
            fields: (f0, self.fields.len()),
            ..last
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(table: &str, tags: &[(&str, &str)], fields: Vec<(&str, FieldValue)>, t: i64) -> Point {
        Point {
            table: table.into(),
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            fields: fields
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            time_ns: t,
        }
    }

    #[test]
    fn points_round_trip_through_a_batch() {
        let points = vec![
            (
                3,
                point(
                    "cpu",
                    &[("host", "a"), ("region", "eu")],
                    vec![("v", FieldValue::F64(1.5))],
                    10,
                ),
            ),
            (
                7,
                point(
                    "mem",
                    &[],
                    vec![
                        ("s", FieldValue::Str("x y".into())),
                        ("n", FieldValue::I64(-2)),
                    ],
                    20,
                ),
            ),
            (
                9,
                point(
                    "cpu",
                    &[("host", "")],
                    vec![("b", FieldValue::Bool(true)), ("u", FieldValue::U64(3))],
                    30,
                ),
            ),
        ];
        let b = Batch::from_points(points.clone());
        assert_eq!(b.len(), 3);
        assert_eq!(b.to_points(), points);
        assert_eq!(b.get(1).map(|p| p.table()), Some("mem"));
        assert!(b.get(3).is_none());
    }

    #[test]
    fn retain_keeps_order_and_strings() {
        let points: Vec<(usize, Point)> = (0..5)
            .map(|i| {
                (
                    i,
                    point(
                        &format!("t{i}"),
                        &[("k", "v")],
                        vec![("f", FieldValue::I64(i as i64))],
                        i as i64,
                    ),
                )
            })
            .collect();
        let mut b = Batch::from_points(points.clone());
        b.retain(|p| p.tag() % 2 == 0);
        let kept: Vec<(usize, Point)> = points.into_iter().filter(|(i, _)| i % 2 == 0).collect();
        assert_eq!(b.to_points(), kept);
    }

    /// The tables of `groups`' runs, by the first point of each.
    fn run_tables(b: &Batch, groups: &[TableGroup]) -> Vec<String> {
        groups
            .iter()
            .filter_map(|g| b.get(g.start).map(|p| p.table().to_owned()))
            .collect()
    }

    #[test]
    fn a_dropped_batch_hands_its_vectors_and_body_to_the_next() {
        // Sizes no other test uses, so a parallel test does not take these spares first.
        let points = 23_001;
        let body = Arc::new("x".repeat(1_234_567));
        let at_body = body.as_ptr();
        let b = Batch::over_text(points, body);
        let vectors = |b: &Batch| {
            [
                (b.rows.as_ptr() as usize, b.rows.capacity()),
                (b.tags.as_ptr() as usize, b.tags.capacity()),
                (b.fields.as_ptr() as usize, b.fields.capacity()),
            ]
        };
        let before = vectors(&b);
        drop(b);
        // Fresh vectors would have the capacities asked for (fewer points); the spares have
        // the first batch's.
        let again = Batch::with_capacity(points - 1000, 0);
        assert_eq!(vectors(&again), before);
        assert!(again.is_empty());
        let buffer = spare::BYTES.take(1_234_000);
        assert_eq!(
            (buffer.as_ptr(), buffer.capacity()),
            (at_body, 1_234_567),
            "the body comes back as a buffer"
        );
        assert!(buffer.is_empty());
        // A body someone else still holds stays theirs.
        let shared = Arc::new("y".repeat(1_234_569));
        let held = Arc::clone(&shared);
        drop(Batch::over_text(10, shared));
        assert_eq!(held.len(), 1_234_569);
    }

    #[test]
    fn sorting_by_table_puts_each_table_in_one_run_keeping_order_within_it() {
        // Tables interleaved as a node-exporter request has them; tags number the points.
        let tables = ["cpu", "mem", "cpu", "disk", "mem", "cpu", "disk"];
        let points: Vec<(usize, Point)> = tables
            .iter()
            .enumerate()
            .map(|(i, t)| {
                (
                    i,
                    point(
                        t,
                        &[("host", "a")],
                        vec![("v", FieldValue::I64(i as i64))],
                        1,
                    ),
                )
            })
            .collect();
        let mut b = Batch::from_points(points.clone());
        // Unsorted, the runs are only the consecutive points of one table.
        assert_eq!(b.groups().len(), tables.len());
        let groups = b.sort_by_table();
        assert_eq!(groups, vec![0..3, 3..5, 5..7]);
        assert_eq!(run_tables(&b, &groups), ["cpu", "mem", "disk"]);
        let tags: Vec<usize> = b.iter().map(|p| p.tag()).collect();
        assert_eq!(tags, [0, 2, 5, 1, 4, 3, 6]);
        // Every point still reads back whole.
        for p in b.iter() {
            assert_eq!(p.to_point(), points[p.tag()].1);
        }
        // Dropping points keeps the order, so the runs found again are one per table.
        b.retain(|p| p.tag() != 4);
        assert_eq!(b.groups().to_vec(), vec![0..3, 3..4, 4..6]);
        // A batch of one table needs no move.
        let mut one = Batch::from_points(
            points
                .iter()
                .filter(|(_, p)| p.table == "mem")
                .cloned()
                .collect(),
        );
        assert_eq!(one.sort_by_table(), vec![0..2]);
    }

    #[test]
    fn a_rolled_back_point_leaves_nothing() {
        let mut b = Batch::default();
        let m = b.mark();
        b.add_tag("host", "a");
        b.add_field("v", ValueRef::F64(1.0));
        b.rollback(m);
        let m = b.mark();
        b.add_tag("z", "1");
        b.add_tag("a", "2");
        assert_eq!(b.sort_tags_since(m), (false, None));
        assert_eq!(
            b.sort_tags_since(m),
            (true, None),
            "sorted by the first call"
        );
        assert!(b.has_tag_since(m, "a") && b.has_tag_since(m, "z") && !b.has_tag_since(m, "b"));
        // A wide tag set is searched, not scanned: the same answers.
        let wide = b.mark();
        for k in [
            "k09", "k03", "k07", "k01", "k05", "k02", "k08", "k04", "k06", "k10",
        ] {
            b.add_tag(k, "v");
        }
        assert_eq!(b.sort_tags_since(wide), (false, None));
        assert!(
            ["k01", "k05", "k10"]
                .iter()
                .all(|k| b.has_tag_since(wide, k))
        );
        assert!(
            ["k00", "k11", "k5", "a"]
                .iter()
                .all(|k| !b.has_tag_since(wide, k))
        );
        b.rollback(wide);
        b.add_field("v", ValueRef::Str("s"));
        let t = b.push_str("cpu");
        b.finish(m, 1, t, 5);
        assert_eq!(
            b.to_points(),
            vec![(
                1,
                point(
                    "cpu",
                    &[("a", "2"), ("z", "1")],
                    vec![("v", FieldValue::Str("s".into()))],
                    5
                )
            )]
        );
    }

    #[test]
    fn duplicate_tag_keys_are_found_after_sorting() {
        let mut b = Batch::default();
        let m = b.mark();
        b.add_tag("b", "1");
        b.add_tag("a", "2");
        b.add_tag("b", "3");
        assert_eq!(b.sort_tags_since(m), (false, Some("b")));
        // In order but not distinct: still found.
        let m = b.mark();
        b.add_tag("a", "1");
        b.add_tag("a", "2");
        assert_eq!(b.sort_tags_since(m), (false, Some("a")));
    }

    #[test]
    fn empty_tag_values_are_dropped_and_repeats_share_tags() {
        let mut b = Batch::default();
        let m = b.mark();
        b.add_tag("a", "");
        b.add_tag("b", "x");
        b.add_tag("c", "");
        b.drop_empty_tags_since(m);
        b.add_field("value", ValueRef::F64(1.0));
        let t = b.push_str("up");
        b.finish(m, 0, t, 1);
        b.repeat_with(1, 2, ValueRef::F64(2.0));
        assert_eq!(
            b.to_points(),
            vec![
                (
                    0,
                    point(
                        "up",
                        &[("b", "x")],
                        vec![("value", FieldValue::F64(1.0))],
                        1
                    )
                ),
                (
                    1,
                    point(
                        "up",
                        &[("b", "x")],
                        vec![("value", FieldValue::F64(2.0))],
                        2
                    )
                ),
            ]
        );
    }
}
