//! The manifest: the single source of truth for which Parquet files hold which data, the table
//! schemas, and the WAL sequence up to which everything is persisted.
//!
//! Each commit writes a new numbered version (temp file, fsync, rename, fsync dir); the newest
//! version is the state. A file not named by the newest version is garbage from a crash.

use crate::error::{Error, Result};
use crate::paths;
use crate::schema::TableSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

/// One persisted Parquet file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileMeta {
    /// Path relative to the data directory.
    pub path: String,
    /// Start of the hour partition it holds.
    pub hour_ns: i64,
    /// Smallest timestamp in the file.
    pub min_time_ns: i64,
    /// Largest timestamp in the file.
    pub max_time_ns: i64,
    /// Row count.
    pub rows: u64,
    /// File size (of the whole file, when it is shared).
    pub bytes: u64,
    /// The file is shared: it holds several tables' rows, told apart by
    /// [`crate::schema::TABLE_COLUMN`]; `rows` and the time range are this table's.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shared: bool,
}

/// One table's entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TableEntry {
    /// Columns.
    pub schema: TableSchema,
    /// Files by hour partition (one file per hour); stored as a list.
    #[serde(with = "files_as_list")]
    pub files: BTreeMap<i64, FileMeta>,
}

/// The file map is keyed by `hour_ns`, which each entry carries: store it as a plain list.
mod files_as_list {
    use super::FileMeta;
    use serde::{Deserialize, Deserializer, Serializer};
    use std::collections::BTreeMap;

    pub fn serialize<S: Serializer>(m: &BTreeMap<i64, FileMeta>, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(m.values())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<i64, FileMeta>, D::Error> {
        let v: Vec<FileMeta> = Vec::deserialize(d)?;
        Ok(v.into_iter().map(|f| (f.hour_ns, f)).collect())
    }
}

/// The state a manifest version records.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Version number of this state (0 = nothing committed yet).
    #[serde(skip)]
    pub version: u64,
    /// Every WAL record with a sequence up to this is in the files below.
    pub wal_seq: u64,
    /// Next file id to hand out.
    pub next_file_id: u64,
    /// Tables by name.
    #[serde(default)]
    pub tables: BTreeMap<String, TableEntry>,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "format")]
enum Versioned {
    #[serde(rename = "1")]
    V1(Manifest),
}

impl Manifest {
    /// Loads the newest manifest version, or an empty manifest for a new data directory.
    pub fn load(data_dir: &Path) -> Result<Self> {
        let dir = paths::manifest_dir(data_dir);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let newest = list_versions(data_dir)?.into_iter().max();
        let Some(version) = newest else {
            return Ok(Self::default());
        };
        let path = paths::manifest_file(data_dir, version);
        let text = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        let Versioned::V1(mut m) = serde_json::from_slice(&text).map_err(|e| Error::Manifest {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        m.version = version;
        Ok(m)
    }

    /// Atomically commits `self` as the next version and removes versions older than the
    /// previous one.
    pub fn commit(&mut self, data_dir: &Path) -> Result<()> {
        let version = self.version + 1;
        let path = paths::manifest_file(data_dir, version);
        let tmp = path.with_extension("json.tmp");
        let body =
            serde_json::to_vec(&Versioned::V1(self.clone())).map_err(|e| Error::Manifest {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        crate::failpoint::hit("manifest:before-write");
        {
            let mut f = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
            f.write_all(&body).map_err(|e| Error::io(&tmp, e))?;
            f.sync_all().map_err(|e| Error::io(&tmp, e))?;
        }
        crate::failpoint::hit("manifest:before-rename");
        std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
        let dir = paths::manifest_dir(data_dir);
        paths::sync_dir(&dir).map_err(|e| Error::io(&dir, e))?;
        self.version = version;
        crate::failpoint::hit("manifest:after-commit");
        for old in list_versions(data_dir)? {
            if old + 1 < version {
                let p = paths::manifest_file(data_dir, old);
                std::fs::remove_file(&p).map_err(|e| Error::io(&p, e))?;
            }
        }
        Ok(())
    }

    /// Every file entry the manifest holds (a shared file appears once per table in it).
    pub fn all_files(&self) -> impl Iterator<Item = &FileMeta> {
        self.tables.values().flat_map(|t| t.files.values())
    }

    /// Every distinct file path the manifest names.
    pub fn referenced_paths(&self) -> std::collections::HashSet<&str> {
        self.all_files().map(|f| f.path.as_str()).collect()
    }
}

fn list_versions(data_dir: &Path) -> Result<Vec<u64>> {
    let dir = paths::manifest_dir(data_dir);
    let mut out = Vec::new();
    for e in std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))? {
        let e = e.map_err(|e| Error::io(&dir, e))?;
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(v) = paths::parse_manifest_file(name) {
            out.push(v);
        } else if name.ends_with(".tmp") {
            // A commit that crashed before its rename: never part of the state.
            let _ = std::fs::remove_file(e.path());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_then_load_is_identity_and_old_versions_go() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut m = Manifest::load(dir.path()).expect("load");
        assert_eq!(m.version, 0);
        for i in 0..4 {
            m.wal_seq = i;
            m.commit(dir.path()).expect("commit");
        }
        let back = Manifest::load(dir.path()).expect("load");
        assert_eq!(back, m);
        assert_eq!(back.version, 4);
        assert_eq!(list_versions(dir.path()).expect("list").len(), 2);
    }

    /// The version-1 format must keep decoding.
    #[test]
    fn golden_v1_decodes() {
        let golden = r#"{"format":"1","wal_seq":7,"next_file_id":3,"tables":{"cpu":{"schema":{"tags":["host"],"fields":{"usage":"F64"}},"files":[{"path":"tables/cpu/1970-01-01/00/00000000000000000002.parquet","hour_ns":0,"min_time_ns":1,"max_time_ns":2,"rows":2,"bytes":900}]}}}"#;
        let Versioned::V1(m) = serde_json::from_str(golden).expect("golden decodes");
        assert_eq!(m.wal_seq, 7);
        assert_eq!(m.tables["cpu"].files[&0].rows, 2);
        assert!(!m.tables["cpu"].files[&0].shared);
    }

    /// Shared-file entries add one flag to the same version-1 format; unshared entries are
    /// written exactly as before.
    #[test]
    fn shared_flag_is_written_only_when_set() {
        let mut m = Manifest::default();
        let mut f = FileMeta {
            path: "shared/1970-01-01/00/00000000000000000004.parquet".into(),
            hour_ns: 0,
            min_time_ns: 1,
            max_time_ns: 2,
            rows: 2,
            bytes: 900,
            shared: true,
        };
        m.tables
            .entry("a".into())
            .or_default()
            .files
            .insert(0, f.clone());
        f.shared = false;
        m.tables.entry("b".into()).or_default().files.insert(0, f);
        let text = serde_json::to_string(&Versioned::V1(m.clone())).expect("encode");
        assert_eq!(text.matches("\"shared\":true").count(), 1, "{text}");
        assert!(!text.contains("\"shared\":false"), "{text}");
        let Versioned::V1(back) = serde_json::from_str(&text).expect("decode");
        assert_eq!(back, m);
        let live = back.referenced_paths();
        assert_eq!(live.len(), 1);
        assert!(live.contains("shared/1970-01-01/00/00000000000000000004.parquet"));
    }
}
