//! Result encoders: JSON (array of objects), JSON lines, CSV, Arrow IPC stream, Parquet.

use arrow::array::{ArrayRef, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use std::sync::Arc;

/// A result format a client can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `application/json`: an array of row objects.
    Json,
    /// `application/x-ndjson`: one row object per line.
    JsonLines,
    /// `text/csv` with a header line.
    Csv,
    /// `application/vnd.apache.arrow.stream`.
    Arrow,
    /// `application/vnd.apache.parquet`.
    Parquet,
}

impl Format {
    /// Parses `?format=`.
    pub fn from_param(s: &str) -> Option<Self> {
        Some(match s {
            "json" => Self::Json,
            "jsonl" | "ndjson" => Self::JsonLines,
            "csv" => Self::Csv,
            "arrow" => Self::Arrow,
            "parquet" => Self::Parquet,
            _ => return None,
        })
    }

    /// Picks a format from an Accept header (first supported media type wins).
    pub fn from_accept(accept: &str) -> Option<Self> {
        accept.split(',').find_map(|part| {
            let mime = part.split(';').next().unwrap_or("").trim();
            Some(match mime {
                "application/json" => Self::Json,
                "application/x-ndjson" | "application/jsonl" => Self::JsonLines,
                "text/csv" => Self::Csv,
                "application/vnd.apache.arrow.stream" => Self::Arrow,
                "application/vnd.apache.parquet" | "application/x-parquet" => Self::Parquet,
                _ => return None,
            })
        })
    }

    /// The Content-Type of an answer in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Json => "application/json",
            Self::JsonLines => "application/x-ndjson",
            Self::Csv => "text/csv; charset=utf-8",
            Self::Arrow => "application/vnd.apache.arrow.stream",
            Self::Parquet => "application/vnd.apache.parquet",
        }
    }
}

/// Dictionary columns become their value type (CSV and JSON writers want plain strings).
fn plain(
    schema: &SchemaRef,
    batches: &[RecordBatch],
) -> arrow::error::Result<(SchemaRef, Vec<RecordBatch>)> {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Dictionary(_, v) => Field::new(f.name(), (**v).clone(), f.is_nullable()),
            _ => f.as_ref().clone(),
        })
        .collect();
    let out_schema = Arc::new(Schema::new(fields));
    let mut out = Vec::with_capacity(batches.len());
    for b in batches {
        let cols: Vec<ArrayRef> = b
            .columns()
            .iter()
            .zip(out_schema.fields())
            .map(|(c, f)| arrow::compute::cast(c, f.data_type()))
            .collect::<arrow::error::Result<_>>()?;
        out.push(RecordBatch::try_new(Arc::clone(&out_schema), cols)?);
    }
    Ok((out_schema, out))
}

/// Encodes a result in `format`.
pub fn encode(
    format: Format,
    schema: &SchemaRef,
    batches: &[RecordBatch],
) -> Result<Vec<u8>, String> {
    let err = |e: &dyn std::fmt::Display| format!("encoding the result failed: {e}");
    let mut out = Vec::new();
    match format {
        Format::Json | Format::JsonLines => {
            let (_, batches) = plain(schema, batches).map_err(|e| err(&e))?;
            let refs: Vec<&RecordBatch> = batches.iter().collect();
            // Every row carries every column, NULL as `null`: tools that read records (pandas,
            // DuckDB) take the columns from the rows they see.
            let builder = || arrow::json::WriterBuilder::new().with_explicit_nulls(true);
            if format == Format::Json {
                let mut w = builder().build::<_, arrow::json::writer::JsonArray>(&mut out);
                w.write_batches(&refs).map_err(|e| err(&e))?;
                w.finish().map_err(|e| err(&e))?;
                if out.is_empty() {
                    out.extend_from_slice(b"[]");
                }
            } else {
                let mut w = builder().build::<_, arrow::json::writer::LineDelimited>(&mut out);
                w.write_batches(&refs).map_err(|e| err(&e))?;
                w.finish().map_err(|e| err(&e))?;
            }
        }
        Format::Csv => {
            let (schema, batches) = plain(schema, batches).map_err(|e| err(&e))?;
            let mut w = arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(&mut out);
            if batches.is_empty() {
                // Still write the header line.
                w.write(&RecordBatch::new_empty(schema))
                    .map_err(|e| err(&e))?;
            }
            for b in &batches {
                w.write(b).map_err(|e| err(&e))?;
            }
        }
        Format::Arrow => {
            let mut w =
                arrow::ipc::writer::StreamWriter::try_new(&mut out, schema).map_err(|e| err(&e))?;
            for b in batches {
                w.write(b).map_err(|e| err(&e))?;
            }
            w.finish().map_err(|e| err(&e))?;
        }
        Format::Parquet => {
            let mut w = parquet::arrow::ArrowWriter::try_new(&mut out, Arc::clone(schema), None)
                .map_err(|e| err(&e))?;
            for b in batches {
                w.write(b).map_err(|e| err(&e))?;
            }
            w.close().map_err(|e| err(&e))?;
        }
    }
    Ok(out)
}
