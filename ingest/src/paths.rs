//! Every path of a persisted object is built here and nowhere else.
//!
//! Layout under the data directory:
//! ```text
//! wal/<first-seq, 20 digits>.wal              WAL segments
//! manifest/<version, 20 digits>.json          manifest versions (newest valid one wins)
//! tables/<table, escaped>/<YYYY-MM-DD>/<HH>/<file-id>.parquet   one table's hour
//! shared/<YYYY-MM-DD>/<HH>/<file-id>.parquet                   small tables' hour, together
//! ```
//! Table names are escaped so that no name (`..`, `/`, NUL, ...) can leave the data directory.

use std::path::{Path, PathBuf};

/// Directory of WAL segments.
pub fn wal_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("wal")
}

/// One WAL segment file by the sequence number of its first record.
pub fn wal_segment(data_dir: &Path, first_seq: u64) -> PathBuf {
    wal_dir(data_dir).join(format!("{first_seq:020}.wal"))
}

/// Parses a WAL segment file name back into its first sequence number.
pub fn parse_wal_segment(name: &str) -> Option<u64> {
    name.strip_suffix(".wal")?.parse().ok()
}

/// Directory of manifest versions.
pub fn manifest_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("manifest")
}

/// One manifest version.
pub fn manifest_file(data_dir: &Path, version: u64) -> PathBuf {
    manifest_dir(data_dir).join(format!("{version:020}.json"))
}

/// Parses a manifest file name back into its version.
pub fn parse_manifest_file(name: &str) -> Option<u64> {
    name.strip_suffix(".json")?.parse().ok()
}

/// Directory holding all tables' Parquet files.
pub fn tables_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("tables")
}

/// Directory holding shared Parquet files (several small tables' rows for one hour).
pub fn shared_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("shared")
}

/// Relative path (as stored in the manifest) of a shared Parquet file for the hour partition
/// starting at `hour_start_ns`.
pub fn shared_file_relative(hour_start_ns: i64, file_id: u64) -> String {
    let (y, m, d, h) = civil_from_secs(hour_start_ns.div_euclid(1_000_000_000));
    format!("shared/{y:04}-{m:02}-{d:02}/{h:02}/{file_id:020}.parquet")
}

/// Relative path (as stored in the manifest) of a Parquet file of `table` for the hour
/// partition starting at `hour_start_ns`.
pub fn parquet_file_relative(table: &str, hour_start_ns: i64, file_id: u64) -> String {
    let secs = hour_start_ns.div_euclid(1_000_000_000);
    let (y, m, d, h) = civil_from_secs(secs);
    format!(
        "tables/{}/{y:04}-{m:02}-{d:02}/{h:02}/{file_id:020}.parquet",
        escape_table(table)
    )
}

/// Resolves a manifest-relative path inside the data directory.
pub fn resolve(data_dir: &Path, relative: &str) -> PathBuf {
    data_dir.join(relative)
}

/// Escapes a table name into one safe path component: ASCII alphanumerics, `_` and `-` stay,
/// everything else becomes `%XX` per UTF-8 byte (so `.`, `/` and NUL can never form `..` or a
/// separator).
pub fn escape_table(table: &str) -> String {
    let mut out = String::with_capacity(table.len());
    for b in table.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Days-from-civil inverse (Howard Hinnant's algorithm): seconds since epoch to UTC
/// (year, month, day, hour).
fn civil_from_secs(secs: i64) -> (i64, u32, u32, u32) {
    let days = secs.div_euclid(86_400);
    let hour = u32::try_from(secs.rem_euclid(86_400) / 3_600).unwrap_or(0);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    (if m <= 2 { y + 1 } else { y }, m, d, hour)
}

/// fsyncs a directory so that a rename or create inside it is durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_table_names_stay_inside_one_component() {
        for name in ["..", "../etc/passwd", "a/b", "nul\0byte", ".", "ok_name-1"] {
            let rel = parquet_file_relative(name, 0, 1);
            let comp = rel.split('/').nth(1).unwrap_or_default();
            assert!(
                !comp.contains('/') && !comp.contains('\0') && !comp.contains('.'),
                "{rel}"
            );
            assert!(!comp.is_empty());
        }
        assert_eq!(escape_table("cpu_load-1"), "cpu_load-1");
        assert_eq!(escape_table(".."), "%2E%2E");
    }

    #[test]
    fn partition_path_names_the_utc_hour() {
        // 2024-02-29T13:00:00Z
        let ns = 1_709_211_600i64 * 1_000_000_000;
        assert_eq!(
            parquet_file_relative("cpu", ns, 7),
            "tables/cpu/2024-02-29/13/00000000000000000007.parquet"
        );
        assert_eq!(
            parquet_file_relative("m", -1, 0).split('/').nth(2),
            Some("1969-12-31")
        );
        assert_eq!(
            shared_file_relative(ns, 9),
            "shared/2024-02-29/13/00000000000000000009.parquet"
        );
    }
}
