//! Table schemas: which tags and fields a table has, and their Arrow shape.
//!
//! Arrow layout of every table: tag columns (`Dictionary(Int32, Utf8)`, sorted by name), then
//! field columns (typed, sorted by name), then `time: Timestamp(Nanosecond, "UTC")`. Every tag
//! and field column is nullable: a new tag or field simply adds a column.

use crate::point::FieldType;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Name of the time column of every table.
pub const TIME_COLUMN: &str = "time";

/// Column of a shared Parquet file (one that holds the rows of several small tables) naming the
/// table each row belongs to. Reserved: no tag or field may take this name.
pub const TABLE_COLUMN: &str = "__crest_table";

/// The columns of one table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TableSchema {
    /// Tag column names.
    pub tags: BTreeSet<String>,
    /// Field column names and types.
    pub fields: BTreeMap<String, FieldType>,
}

impl TableSchema {
    /// The Arrow schema of this table.
    pub fn arrow_schema(&self) -> SchemaRef {
        let mut cols = Vec::with_capacity(self.tags.len() + self.fields.len() + 1);
        for t in &self.tags {
            cols.push(Field::new(t, tag_type(), true));
        }
        for (f, ty) in &self.fields {
            cols.push(Field::new(f, arrow_type(*ty), true));
        }
        cols.push(Field::new(TIME_COLUMN, time_type(), false));
        Arc::new(Schema::new(cols))
    }

    /// Adds every column of `other` missing here (types of existing fields are kept).
    pub fn merge(&mut self, other: &TableSchema) {
        self.tags.extend(other.tags.iter().cloned());
        for (f, ty) in &other.fields {
            self.fields.entry(f.clone()).or_insert(*ty);
        }
    }
}

/// Arrow type of a tag column.
pub fn tag_type() -> DataType {
    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
}

/// Arrow type of the time column.
pub fn time_type() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
}

/// Arrow type of a field column.
pub fn arrow_type(ty: FieldType) -> DataType {
    match ty {
        FieldType::F64 => DataType::Float64,
        FieldType::I64 => DataType::Int64,
        FieldType::U64 => DataType::UInt64,
        FieldType::Bool => DataType::Boolean,
        FieldType::Str => DataType::Utf8,
    }
}

/// The field type stored in an Arrow column, if it is one Crest writes.
pub fn field_type_of(dt: &DataType) -> Option<FieldType> {
    Some(match dt {
        DataType::Float64 => FieldType::F64,
        DataType::Int64 => FieldType::I64,
        DataType::UInt64 => FieldType::U64,
        DataType::Boolean => FieldType::Bool,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => FieldType::Str,
        _ => return None,
    })
}
