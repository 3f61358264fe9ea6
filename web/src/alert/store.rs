//! The alerting state file: rule instances, silences, the notification log and the recent
//! delivery history, in one versioned JSON document at `<data-dir>/alerting/state.json`.
//!
//! Written whole after every change: temporary file, fsync, rename, fsync of the directory, so a
//! crash leaves either the old or the new state, never a torn one. The document is small (active
//! alerts, silences, one log entry per group), so rewriting it is cheaper than a database.

use super::Millis;
use super::dispatch::NflogEntry;
use super::silence::Silence;
use super::state::Instances;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};

/// How many deliveries the history keeps.
pub const HISTORY_LEN: usize = 200;

/// The persisted document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "version")]
pub enum StateFile {
    /// Version 1.
    #[serde(rename = "1")]
    V1(StateV1),
}

/// Version 1 of the state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StateV1 {
    /// Instances per rule id (`group/alert`).
    #[serde(default)]
    pub rules: BTreeMap<String, Instances>,
    /// Silences.
    #[serde(default)]
    pub silences: Vec<Silence>,
    /// Notification log: `group key / receiver / integration index` → last sent.
    #[serde(default)]
    pub nflog: BTreeMap<String, NflogEntry>,
    /// Recent deliveries, newest last.
    #[serde(default)]
    pub history: VecDeque<Delivery>,
}

/// One delivery attempt's outcome, for the notification history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    /// When it finished.
    pub at: Millis,
    /// Group key.
    pub group_key: String,
    /// Receiver name.
    pub receiver: String,
    /// Target scheme://host:port (no path: paths often carry secrets).
    pub target: String,
    /// `firing` or `resolved` (the payload's status).
    pub status: String,
    /// Firing alerts in the payload.
    pub firing: usize,
    /// Resolved alerts in the payload.
    pub resolved: usize,
    /// Attempts made.
    pub attempts: u32,
    /// `delivered` or `failed`.
    pub outcome: String,
    /// Why it failed.
    #[serde(default)]
    pub error: Option<String>,
}

impl StateV1 {
    /// Appends to the history, keeping the newest [`HISTORY_LEN`].
    pub fn record(&mut self, d: Delivery) {
        self.history.push_back(d);
        while self.history.len() > HISTORY_LEN {
            self.history.pop_front();
        }
    }
}

/// Reads and writes the state file.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    /// The store under `data_dir`.
    pub fn new(data_dir: &Path) -> Self {
        Self {
            dir: data_dir.join("alerting"),
        }
    }

    /// The state file's path.
    pub fn path(&self) -> PathBuf {
        self.dir.join("state.json")
    }

    /// Loads the state (empty when there is none yet). A file that does not decode is an error:
    /// starting empty would re-send every firing alert.
    pub fn load(&self) -> Result<StateV1, String> {
        let p = self.path();
        match std::fs::read(&p) {
            Ok(b) => match serde_json::from_slice::<StateFile>(&b) {
                Ok(StateFile::V1(s)) => Ok(s),
                Err(e) => Err(format!(
                    "alerting state {} does not decode ({e}); move it away to start with empty alert state",
                    p.display()
                )),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(StateV1::default()),
            Err(e) => Err(format!("cannot read alerting state {}: {e}", p.display())),
        }
    }

    /// Writes the state atomically and durably.
    pub fn save(&self, s: &StateV1) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let bytes = serde_json::to_vec(&StateFile::V1(s.clone()))
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let tmp = self.dir.join("state.json.tmp");
        {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, self.path())?;
        std::fs::File::open(&self.dir)?.sync_all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The version-1 golden file must keep decoding as formats evolve.
    #[test]
    fn golden_v1_decodes() {
        let text = include_str!("testdata/state_v1.json");
        let StateFile::V1(s) = serde_json::from_str::<StateFile>(text).expect("golden decodes");
        let inst = &s.rules["festival/HighErrorRatio"]["0123456789abcdef"];
        assert_eq!(inst.state, crate::alert::state::AlertState::Firing);
        assert_eq!(inst.active_at, 1_770_000_000_000);
        assert_eq!(s.silences.len(), 1);
        assert_eq!(s.nflog.len(), 1);
        assert_eq!(s.history.len(), 1);
    }

    #[test]
    fn save_then_load_round_trips_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = Store::new(dir.path());
        assert_eq!(store.load().expect("empty"), StateV1::default());
        let text = include_str!("testdata/state_v1.json");
        let StateFile::V1(s) = serde_json::from_str::<StateFile>(text).expect("golden decodes");
        store.save(&s).expect("save");
        assert_eq!(store.load().expect("load"), s);
        assert!(!dir.path().join("alerting/state.json.tmp").exists());
        std::fs::write(store.path(), b"{\"version\":\"1\",\"rules\":").expect("w");
        let e = store.load().expect_err("torn");
        assert!(e.contains("does not decode"), "{e}");
    }
}
