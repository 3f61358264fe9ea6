//! Parquet files: written whole to a temporary name, fsynced, renamed, directory fsynced; read
//! back whole when a late write reopens a persisted hour.

use crate::error::{Error, Result};
use crate::paths;
use arrow::array::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use std::path::Path;

/// Rows per row group: small enough that statistics prune by tag within an hour file.
pub const ROW_GROUP_ROWS: usize = 64 * 1024;

/// Rows per data page: with the page index, a query for one table of a shared file (sorted by
/// table) decodes only the pages holding that table's rows.
pub const PAGE_ROWS: usize = 4 * 1024;

/// zstd level of float columns: samples are most of a file, and level 15 stores them about 12 %
/// smaller than level 3 (node-exporter-like data) for about 4 times the compression time, which
/// snapshots pay in the background (about 1.2 M rows/s, well above any ingest rate here);
/// decompression is as fast.
const FLOAT_ZSTD_LEVEL: i32 = 15;

fn float_compression() -> Compression {
    Compression::ZSTD(ZstdLevel::try_new(FLOAT_ZSTD_LEVEL).unwrap_or_default())
}

/// Properties for a file of `schema`. Float columns are written without a dictionary (samples
/// are nearly all distinct, so the dictionary only costs) and with `BYTE_STREAM_SPLIT`, which
/// puts the bytes of equal significance together so that zstd finds the slowly changing sign,
/// exponent and high mantissa bytes: on the node-exporter-like benchmark this halves the bytes
/// per sample (5.2 to 2.8). They also get a higher zstd level (see [`FLOAT_ZSTD_LEVEL`]).
fn writer_properties(schema: &arrow::datatypes::Schema) -> WriterProperties {
    let mut b = WriterProperties::builder();
    for f in schema.fields() {
        if matches!(
            f.data_type(),
            arrow::datatypes::DataType::Float64 | arrow::datatypes::DataType::Float32
        ) {
            let path = ColumnPath::from(f.name().as_str());
            b = b
                .set_column_dictionary_enabled(path.clone(), false)
                .set_column_encoding(path.clone(), Encoding::BYTE_STREAM_SPLIT)
                .set_column_compression(path, float_compression());
        }
    }
    b.set_compression(Compression::ZSTD(ZstdLevel::try_new(3).unwrap_or_default()))
        .set_dictionary_enabled(true)
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_data_page_row_count_limit(PAGE_ROWS)
        .set_created_by("crest".to_string())
        // A trace is looked up by id alone: a bloom filter lets readers skip row groups without it.
        .set_column_bloom_filter_enabled(ColumnPath::from(TRACE_ID_COLUMN), true)
        .set_column_bloom_filter_fpp(ColumnPath::from(TRACE_ID_COLUMN), 0.01)
        .set_column_bloom_filter_max_ndv(ColumnPath::from(TRACE_ID_COLUMN), ROW_GROUP_ROWS as u64)
        .build()
}

/// The column that gets a Parquet bloom filter wherever it appears (the spans table's).
pub const TRACE_ID_COLUMN: &str = "trace_id";

/// Writes `batch` durably at `path` (temp, fsync, rename, fsync dir); returns its size.
pub fn write_parquet(path: &Path, batch: &RecordBatch) -> Result<u64> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let tmp = path.with_extension("parquet.tmp");
    let size = match write_synced(&tmp, batch) {
        Ok(size) => size,
        Err(e) => {
            // A full disk must not also keep the half-written file until the next start.
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    crate::failpoint::hit("persist:before-rename");
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
    paths::sync_dir(dir).map_err(|e| Error::io(dir, e))?;
    crate::failpoint::hit("persist:after-rename");
    Ok(size)
}

/// Writes `batch` to `tmp` and fsyncs it; returns the size.
fn write_synced(tmp: &Path, batch: &RecordBatch) -> Result<u64> {
    let file = std::fs::File::create(tmp).map_err(|e| Error::io(tmp, e))?;
    let pq = |source| Error::Parquet {
        path: tmp.to_path_buf(),
        source,
    };
    let mut w = ArrowWriter::try_new(
        file,
        batch.schema(),
        Some(writer_properties(&batch.schema())),
    )
    .map_err(pq)?;
    w.write(batch).map_err(pq)?;
    let file = w.into_inner().map_err(pq)?;
    file.sync_all().map_err(|e| Error::io(tmp, e))?;
    Ok(file.metadata().map_err(|e| Error::io(tmp, e))?.len())
}

/// Reads a whole Parquet file.
pub fn read_parquet(path: &Path) -> Result<Vec<RecordBatch>> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let pq = |source| Error::Parquet {
        path: path.to_path_buf(),
        source,
    };
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(pq)?
        .build()
        .map_err(pq)?;
    let mut out = Vec::new();
    for b in reader {
        out.push(b?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, Float64Array, Int64Array};
    use arrow::datatypes::{DataType, Field, Schema};
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use std::sync::Arc;

    #[test]
    fn floats_are_byte_stream_split_without_a_dictionary_and_read_back_exactly() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.parquet");
        let schema = Arc::new(Schema::new(vec![
            Field::new("value", DataType::Float64, true),
            Field::new("n", DataType::Int64, true),
        ]));
        let values: Vec<Option<f64>> = (0..10_000)
            .map(|i| (i % 97 != 0).then_some(1e9 + f64::from(i) * 15.5))
            .chain([Some(f64::NAN), Some(-0.0), Some(f64::INFINITY)])
            .collect();
        let n: Vec<i64> = (0..values.len() as i64).collect();
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Float64Array::from(values.clone())),
                Arc::new(Int64Array::from(n)),
            ],
        )
        .expect("batch");
        write_parquet(&path, &batch).expect("write");

        let reader =
            SerializedFileReader::new(std::fs::File::open(&path).expect("open")).expect("reader");
        let rg = reader.metadata().row_group(0);
        let value = rg.column(0);
        assert!(
            value.encodings().any(|e| e == Encoding::BYTE_STREAM_SPLIT),
            "{:?}",
            value.encodings().collect::<Vec<_>>()
        );
        assert!(
            value.dictionary_page_offset().is_none(),
            "no dictionary for floats"
        );
        assert!(
            rg.column(1).dictionary_page_offset().is_some(),
            "ints keep theirs"
        );

        let back = read_parquet(&path).expect("read");
        let back = arrow::compute::concat_batches(&back[0].schema(), &back).expect("concat");
        let got = back
            .column(0)
            .as_any()
            .downcast_ref::<Float64Array>()
            .expect("f64");
        assert_eq!(got.len(), values.len());
        for (i, want) in values.iter().enumerate() {
            let have = (!got.is_null(i)).then(|| got.value(i));
            assert_eq!(have.map(f64::to_bits), want.map(f64::to_bits), "row {i}");
        }
    }
}
