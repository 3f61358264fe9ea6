//! Small tables share physical files.
//!
//! Hundreds of metrics with a few hundred rows an hour would otherwise mean hundreds of tiny
//! Parquet files an hour, each paying its own footer, page indexes and dictionaries (and each
//! one more file for a query to open). Instead, an hour's small tables go together into one
//! *shared* file, sorted by table, then series, then time, with a [`TABLE_COLUMN`] naming each
//! row's table. Every table still has its own logical schema and its own manifest entry; an
//! entry just points at the shared file and says so.
//!
//! The snapshot groups the hours it writes this way; [`crate::Db::compact`] later merges the
//! files an hour's small tables ended up in (after late writes or several snapshots) back into as
//! few as [`plan_groups`] allows. This module holds the pure parts: which tables may share a file,
//! how to build the shared batch, and how to take one table's rows back out.

use crate::schema::{TABLE_COLUMN, TIME_COLUMN};
use arrow::array::{Array, ArrayRef, RecordBatch, StringArray, new_null_array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::error::{ArrowError, Result};
use std::collections::BTreeMap;
use std::sync::Arc;

/// A table-hour with fewer rows than this is "small" and shares a file with others.
pub const SHARED_MAX_ROWS: usize = 100_000;

/// A shared file holds at most about this many rows (bounds the memory a merge needs).
pub const SHARED_FILE_MAX_ROWS: usize = 2_000_000;

/// One table-hour that could go into a shared file.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// Table name.
    pub table: String,
    /// Rows it holds.
    pub rows: usize,
    /// Its columns.
    pub schema: SchemaRef,
}

/// Splits candidates (in table order) into files: a big table-hour alone, small ones packed
/// first-fit into groups whose columns agree on type and whose rows stay under
/// [`SHARED_FILE_MAX_ROWS`]. Each group keeps the candidates' order. Deterministic, so a merge
/// of what it already produced finds nothing to do.
pub fn plan_groups(candidates: &[Candidate]) -> Vec<Vec<usize>> {
    struct Group {
        members: Vec<usize>,
        rows: usize,
        columns: BTreeMap<String, DataType>,
    }
    let mut groups: Vec<Group> = Vec::new();
    for (i, c) in candidates.iter().enumerate() {
        if c.rows >= SHARED_MAX_ROWS {
            // Counted as full, so no small table joins it.
            groups.push(Group {
                members: vec![i],
                rows: usize::MAX,
                columns: BTreeMap::new(),
            });
            continue;
        }
        let fits = |g: &Group| {
            g.rows.saturating_add(c.rows) <= SHARED_FILE_MAX_ROWS
                && c.schema
                    .fields()
                    .iter()
                    .all(|f| g.columns.get(f.name()).is_none_or(|dt| dt == f.data_type()))
        };
        let slot = match groups.iter().position(fits) {
            Some(slot) => slot,
            None => {
                groups.push(Group {
                    members: Vec::new(),
                    rows: 0,
                    columns: BTreeMap::new(),
                });
                groups.len() - 1
            }
        };
        let g = &mut groups[slot];
        g.members.push(i);
        g.rows += c.rows;
        for f in c.schema.fields() {
            g.columns
                .entry(f.name().clone())
                .or_insert_with(|| f.data_type().clone());
        }
    }
    groups.into_iter().map(|g| g.members).collect()
}

/// Builds one shared batch from several tables' sorted batches (given in table order): the
/// table column first, then the union of tag columns, of field columns, then `time`; a column a
/// table lacks is null in its rows.
pub fn shared_batch(parts: &[(&str, &RecordBatch)]) -> Result<RecordBatch> {
    let mut types: BTreeMap<&str, &DataType> = BTreeMap::new();
    // Order: tags (dictionary columns), then fields, then time; by name within each.
    let mut order: BTreeMap<(u8, &str), Field> = BTreeMap::new();
    for (table, b) in parts {
        let schema = b.schema_ref();
        for f in schema.fields() {
            let name = f.name().as_str();
            match types.get(name) {
                Some(dt) if *dt != f.data_type() => {
                    return Err(ArrowError::SchemaError(format!(
                        "column {name:?} of table {table:?} is {}, but {} in another table of the same shared file",
                        f.data_type(),
                        dt
                    )));
                }
                Some(_) => continue,
                None => {}
            }
            types.insert(name, f.data_type());
            let rank = if name == TIME_COLUMN {
                2
            } else if matches!(f.data_type(), DataType::Dictionary(_, _)) {
                0
            } else {
                1
            };
            order.insert(
                (rank, name),
                Field::new(name, f.data_type().clone(), rank != 2),
            );
        }
    }
    let mut fields = vec![Field::new(TABLE_COLUMN, DataType::Utf8, false)];
    fields.extend(order.into_values());
    let schema = Arc::new(Schema::new(fields));
    let mut batches = Vec::with_capacity(parts.len());
    for (table, b) in parts {
        let n = b.num_rows();
        let mut cols: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
        cols.push(Arc::new(StringArray::from_iter_values(
            std::iter::repeat_n(*table, n),
        )));
        for f in schema.fields().iter().skip(1) {
            cols.push(match b.column_by_name(f.name()) {
                Some(c) => Arc::clone(c),
                None => new_null_array(f.data_type(), n),
            });
        }
        batches.push(RecordBatch::try_new(Arc::clone(&schema), cols)?);
    }
    arrow::compute::concat_batches(&schema, &batches)
}

/// The rows of `table` in a batch read from a shared file, without the table column (columns of
/// other tables stay, null in these rows).
pub fn rows_of(batch: &RecordBatch, table: &str) -> Result<RecordBatch> {
    let Some(idx) = batch.schema_ref().index_of(TABLE_COLUMN).ok() else {
        return Err(ArrowError::SchemaError(format!(
            "shared file has no {TABLE_COLUMN} column"
        )));
    };
    let names = arrow::compute::cast(batch.column(idx), &DataType::Utf8)?;
    let mask = arrow::compute::kernels::cmp::eq(&names, &StringArray::new_scalar(table))?;
    let mut kept = arrow::compute::filter_record_batch(batch, &mask)?;
    kept.remove_column(idx);
    Ok(kept)
}

/// Shapes a batch to `schema` by column name: missing columns become nulls, other types are
/// cast, extra columns are dropped.
pub fn conform(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    let n = batch.num_rows();
    let cols = schema
        .fields()
        .iter()
        .map(|f| match batch.column_by_name(f.name()) {
            Some(c) if c.data_type() == f.data_type() => Ok(Arc::clone(c)),
            Some(c) => arrow::compute::cast(c, f.data_type()),
            None => Ok(new_null_array(f.data_type(), n)),
        })
        .collect::<Result<Vec<_>>>()?;
    RecordBatch::try_new_with_options(
        Arc::clone(schema),
        cols,
        &arrow::array::RecordBatchOptions::new().with_row_count(Some(n)),
    )
}

/// One table's rows from the batches of a file, shaped to `schema`.
pub fn extract(
    batches: &[RecordBatch],
    table: &str,
    shared: bool,
    schema: &SchemaRef,
) -> Result<RecordBatch> {
    let mut parts = Vec::with_capacity(batches.len());
    for b in batches {
        let rows = if shared {
            rows_of(b, table)?
        } else {
            b.clone()
        };
        parts.push(conform(&rows, schema)?);
    }
    arrow::compute::concat_batches(schema, &parts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::point::FieldType;
    use crate::schema::TableSchema;

    fn nulls(batch: &RecordBatch, column: &str) -> Option<usize> {
        batch.column_by_name(column).map(|c| c.null_count())
    }

    fn schema(tags: &[&str], fields: &[(&str, FieldType)]) -> SchemaRef {
        TableSchema {
            tags: tags.iter().map(|t| t.to_string()).collect(),
            fields: fields.iter().map(|(f, t)| (f.to_string(), *t)).collect(),
        }
        .arrow_schema()
    }

    fn cand(table: &str, rows: usize, s: &SchemaRef) -> Candidate {
        Candidate {
            table: table.into(),
            rows,
            schema: Arc::clone(s),
        }
    }

    #[test]
    fn small_compatible_tables_share_big_ones_and_conflicts_do_not() {
        let f = schema(&["host"], &[("value", FieldType::F64)]);
        let i = schema(&["job"], &[("value", FieldType::I64)]);
        let c = vec![
            cand("a", 10, &f),
            cand("b", SHARED_MAX_ROWS, &f),
            cand("c", 10, &i),
            cand("d", 10, &f),
            cand("e", 10, &i),
        ];
        assert_eq!(plan_groups(&c), vec![vec![0, 3], vec![1], vec![2, 4]]);
        // Planning its own output again gives the same files.
        assert_eq!(plan_groups(&c), plan_groups(&c));
    }

    #[test]
    fn groups_stay_under_the_file_row_cap() {
        let f = schema(&[], &[("value", FieldType::F64)]);
        let per = SHARED_MAX_ROWS - 1;
        let n = SHARED_FILE_MAX_ROWS / per + 2;
        let c: Vec<_> = (0..n).map(|k| cand(&format!("t{k:03}"), per, &f)).collect();
        let groups = plan_groups(&c);
        assert_eq!(groups.len(), 2);
        for g in &groups {
            assert!(g.len() * per <= SHARED_FILE_MAX_ROWS);
        }
    }

    fn batch(s: &SchemaRef, rows: usize, base: f64) -> RecordBatch {
        use arrow::array::{DictionaryArray, Float64Array, Int32Array, TimestampNanosecondArray};
        let cols: Vec<ArrayRef> = s
            .fields()
            .iter()
            .map(|f| -> ArrayRef {
                match f.data_type() {
                    DataType::Dictionary(_, _) => Arc::new(DictionaryArray::new(
                        Int32Array::from(vec![0; rows]),
                        Arc::new(StringArray::from(vec![format!("{}-x", f.name())])),
                    )),
                    DataType::Float64 => Arc::new(Float64Array::from_iter_values(
                        (0..rows).map(|k| base + k as f64),
                    )),
                    _ => Arc::new(
                        TimestampNanosecondArray::from_iter_values((0..rows).map(|k| k as i64))
                            .with_timezone("UTC"),
                    ),
                }
            })
            .collect();
        RecordBatch::try_new(Arc::clone(s), cols).expect("batch")
    }

    #[test]
    fn a_shared_batch_gives_each_table_back_exactly() {
        let sa = schema(&["host"], &[("value", FieldType::F64)]);
        let sb = schema(&["job", "zone"], &[("used", FieldType::F64)]);
        let a = batch(&sa, 3, 1.0);
        let b = batch(&sb, 2, 100.0);
        let shared = shared_batch(&[("a", &a), ("b", &b)]).expect("shared");
        assert_eq!(shared.num_rows(), 5);
        let names: Vec<_> = shared
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        assert_eq!(
            names,
            [TABLE_COLUMN, "host", "job", "zone", "used", "value", "time"]
        );
        assert_eq!(nulls(&shared, "host"), Some(2));
        let back_a = extract(std::slice::from_ref(&shared), "a", true, &sa).expect("a");
        let back_b = extract(std::slice::from_ref(&shared), "b", true, &sb).expect("b");
        assert_eq!(back_a, a);
        assert_eq!(back_b, b);
        assert_eq!(
            extract(&[shared], "zzz", true, &sa)
                .expect("none")
                .num_rows(),
            0
        );
    }

    #[test]
    fn conflicting_column_types_are_refused_not_mixed() {
        let sa = schema(&[], &[("value", FieldType::F64)]);
        let sb = schema(&["value"], &[("x", FieldType::F64)]);
        let err = shared_batch(&[("a", &batch(&sa, 1, 0.0)), ("b", &batch(&sb, 1, 0.0))])
            .expect_err("conflict");
        assert!(err.to_string().contains("\"value\""), "{err}");
    }

    #[test]
    fn a_grown_schema_reads_old_rows_with_nulls() {
        let old = schema(&["host"], &[("value", FieldType::F64)]);
        let new = schema(&["host", "region"], &[("value", FieldType::F64)]);
        let b = batch(&old, 2, 0.0);
        let out = extract(&[b], "t", false, &new).expect("extract");
        assert_eq!(out.schema(), new);
        assert_eq!(nulls(&out, "region"), Some(2));
    }
}
