//! The metadata store: milestones, the plans made before them and their scores, in one redb
//! database at `<data-dir>/meta/crest.redb`.
//!
//! redb commits are atomic and crash-safe (copy-on-write pages, checksummed commit slots): a
//! kill at any point leaves either the old or the new state. Values are JSON so the format can
//! grow fields without a migration; keys are milestone ids.

use forecast::milestone::{Milestone, MilestoneSpec};
use forecast::plan::{PlanRow, ServiceScore};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use std::path::Path;

const MILESTONES: TableDefinition<u64, &[u8]> = TableDefinition::new("milestones");
const PLANS: TableDefinition<u64, &[u8]> = TableDefinition::new("plans");
const SCORES: TableDefinition<u64, &[u8]> = TableDefinition::new("scores");
const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("counters");

/// Store errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No milestone with that id or name.
    #[error("no milestone {0:?}")]
    NotFound(String),
    /// Another milestone has that name.
    #[error("a milestone named {0:?} exists already (id {1})")]
    NameTaken(String, u64),
    /// The database failed.
    #[error("metadata store: {0}")]
    Db(String),
}

impl<E: Into<redb::Error>> From<E> for StoreError {
    fn from(e: E) -> Self {
        Self::Db(e.into().to_string())
    }
}

/// The plan last made for a milestone before it started, kept to score it against.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredPlan {
    /// When it was made, Unix seconds.
    pub made_at: i64,
    /// Its rows.
    pub rows: Vec<PlanRow>,
}

/// A finished milestone's score.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MilestoneScore {
    /// Milestone id.
    pub milestone_id: u64,
    /// Milestone name.
    pub milestone: String,
    /// When it was scored, Unix seconds.
    pub scored_at: i64,
    /// Which plan it was scored against: `stored` (made before the start) or `recomputed`
    /// (no plan was made before; recomputed from data before the start).
    pub plan: String,
    /// When that plan was made, Unix seconds.
    pub plan_made_at: i64,
    /// Per service.
    pub services: Vec<ServiceScore>,
}

/// The redb database.
pub struct MetaStore {
    db: Database,
}

impl std::fmt::Debug for MetaStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetaStore").finish_non_exhaustive()
    }
}

fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Db(format!("undecodable record: {e}")))
}

fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(v).map_err(|e| StoreError::Db(e.to_string()))
}

impl MetaStore {
    /// Opens (or creates) the store under `data_dir/meta/`.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        let dir = data_dir.join("meta");
        std::fs::create_dir_all(&dir)
            .map_err(|e| StoreError::Db(format!("cannot create {}: {e}", dir.display())))?;
        let db = Database::create(dir.join("crest.redb"))?;
        let tx = db.begin_write()?;
        tx.open_table(MILESTONES)?;
        tx.open_table(PLANS)?;
        tx.open_table(SCORES)?;
        tx.open_table(COUNTERS)?;
        tx.commit()?;
        Ok(Self { db })
    }

    /// Every milestone, by start time then id.
    pub fn milestones(&self) -> Result<Vec<Milestone>, StoreError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(MILESTONES)?;
        let mut out = Vec::new();
        for e in t.iter()? {
            let (k, v) = e?;
            out.push(Milestone {
                id: k.value(),
                spec: decode(v.value())?,
            });
        }
        out.sort_by_key(|m| (m.spec.start, m.id));
        Ok(out)
    }

    /// One milestone by id, or by name when `key` is not a number.
    pub fn milestone(&self, key: &str) -> Result<Milestone, StoreError> {
        if let Ok(id) = key.parse::<u64>() {
            let tx = self.db.begin_read()?;
            let t = tx.open_table(MILESTONES)?;
            if let Some(v) = t.get(id)? {
                return Ok(Milestone {
                    id,
                    spec: decode(v.value())?,
                });
            }
        }
        self.milestones()?
            .into_iter()
            .find(|m| m.spec.name == key)
            .ok_or_else(|| StoreError::NotFound(key.to_string()))
    }

    /// Creates a milestone (names are unique).
    pub fn create(&self, spec: &MilestoneSpec) -> Result<Milestone, StoreError> {
        let tx = self.db.begin_write()?;
        let id = {
            let mut t = tx.open_table(MILESTONES)?;
            check_name(&t, &spec.name, None)?;
            let mut c = tx.open_table(COUNTERS)?;
            let id = c.get("milestone_id")?.map_or(1, |v| v.value() + 1);
            c.insert("milestone_id", id)?;
            t.insert(id, encode(spec)?.as_slice())?;
            id
        };
        tx.commit()?;
        Ok(Milestone {
            id,
            spec: spec.clone(),
        })
    }

    /// Replaces milestone `id`.
    pub fn update(&self, id: u64, spec: &MilestoneSpec) -> Result<Milestone, StoreError> {
        let tx = self.db.begin_write()?;
        {
            let mut t = tx.open_table(MILESTONES)?;
            if t.get(id)?.is_none() {
                return Err(StoreError::NotFound(id.to_string()));
            }
            check_name(&t, &spec.name, Some(id))?;
            t.insert(id, encode(spec)?.as_slice())?;
        }
        tx.commit()?;
        Ok(Milestone {
            id,
            spec: spec.clone(),
        })
    }

    /// Creates or replaces (by name) every milestone of a file in one transaction: all or none.
    pub fn upsert_all(&self, specs: &[MilestoneSpec]) -> Result<Vec<Milestone>, StoreError> {
        let tx = self.db.begin_write()?;
        let mut out = Vec::with_capacity(specs.len());
        {
            let mut t = tx.open_table(MILESTONES)?;
            let mut c = tx.open_table(COUNTERS)?;
            for spec in specs {
                let mut existing = None;
                for e in t.iter()? {
                    let (k, v) = e?;
                    if decode::<MilestoneSpec>(v.value())?.name == spec.name {
                        existing = Some(k.value());
                        break;
                    }
                }
                let id = match existing {
                    Some(id) => id,
                    None => {
                        let id = c.get("milestone_id")?.map_or(1, |v| v.value() + 1);
                        c.insert("milestone_id", id)?;
                        id
                    }
                };
                t.insert(id, encode(spec)?.as_slice())?;
                out.push(Milestone {
                    id,
                    spec: spec.clone(),
                });
            }
        }
        tx.commit()?;
        Ok(out)
    }

    /// Deletes milestone `id` with its stored plan and score.
    pub fn delete(&self, id: u64) -> Result<(), StoreError> {
        let tx = self.db.begin_write()?;
        {
            let mut t = tx.open_table(MILESTONES)?;
            if t.remove(id)?.is_none() {
                return Err(StoreError::NotFound(id.to_string()));
            }
            tx.open_table(PLANS)?.remove(id)?;
            tx.open_table(SCORES)?.remove(id)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The plan stored for milestone `id`.
    pub fn plan(&self, id: u64) -> Result<Option<StoredPlan>, StoreError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(PLANS)?;
        t.get(id)?.map(|v| decode(v.value())).transpose()
    }

    /// Stores the plan made for milestone `id`.
    pub fn put_plan(&self, id: u64, plan: &StoredPlan) -> Result<(), StoreError> {
        let tx = self.db.begin_write()?;
        tx.open_table(PLANS)?.insert(id, encode(plan)?.as_slice())?;
        tx.commit()?;
        Ok(())
    }

    /// Every score.
    pub fn scores(&self) -> Result<Vec<MilestoneScore>, StoreError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(SCORES)?;
        let mut out = Vec::new();
        for e in t.iter()? {
            out.push(decode(e?.1.value())?);
        }
        Ok(out)
    }

    /// The score of milestone `id`.
    pub fn score(&self, id: u64) -> Result<Option<MilestoneScore>, StoreError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(SCORES)?;
        t.get(id)?.map(|v| decode(v.value())).transpose()
    }

    /// Records a score (replacing an earlier one).
    pub fn put_score(&self, s: &MilestoneScore) -> Result<(), StoreError> {
        let tx = self.db.begin_write()?;
        tx.open_table(SCORES)?
            .insert(s.milestone_id, encode(s)?.as_slice())?;
        tx.commit()?;
        Ok(())
    }
}

fn check_name(
    t: &redb::Table<'_, u64, &[u8]>,
    name: &str,
    except: Option<u64>,
) -> Result<(), StoreError> {
    for e in t.iter()? {
        let (k, v) = e?;
        if Some(k.value()) != except && decode::<MilestoneSpec>(v.value())?.name == name {
            return Err(StoreError::NameTaken(name.to_string(), k.value()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use forecast::milestone::{Drivers, MilestoneKind};

    fn spec(name: &str, start: i64) -> MilestoneSpec {
        MilestoneSpec {
            name: name.into(),
            kind: MilestoneKind::Rehearsal,
            start,
            end: start + 3600,
            drivers: Drivers::default(),
            notes: String::new(),
        }
    }

    #[test]
    fn crud_survives_reopen_and_names_stay_unique() {
        let dir = tempfile::tempdir().expect("tmp");
        let a;
        {
            let s = MetaStore::open(dir.path()).expect("open");
            a = s.create(&spec("r2", 200)).expect("create");
            let b = s.create(&spec("r1", 100)).expect("create");
            assert_eq!((a.id, b.id), (1, 2));
            assert!(matches!(
                s.create(&spec("r1", 5)),
                Err(StoreError::NameTaken(_, 2))
            ));
            assert!(matches!(
                s.update(a.id, &spec("r1", 5)),
                Err(StoreError::NameTaken(_, 2))
            ));
            s.update(a.id, &spec("r2", 300)).expect("update");
            s.put_plan(
                b.id,
                &StoredPlan {
                    made_at: 1,
                    rows: vec![],
                },
            )
            .expect("plan");
            s.delete(b.id).expect("delete");
            assert!(s.plan(b.id).expect("read").is_none());
            assert!(matches!(s.delete(b.id), Err(StoreError::NotFound(_))));
        }
        let s = MetaStore::open(dir.path()).expect("reopen");
        let all = s.milestones().expect("list");
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].spec.start, 300);
        assert_eq!(s.milestone("r2").expect("by name").id, a.id);
        assert_eq!(s.milestone("1").expect("by id").spec.name, "r2");
        // Ids are never reused.
        assert_eq!(s.create(&spec("r3", 1)).expect("create").id, 3);
        // A file upsert keeps ids of known names and adds the others, atomically.
        let up = s
            .upsert_all(&[spec("r2", 400), spec("r4", 500)])
            .expect("upsert");
        assert_eq!((up[0].id, up[1].id), (1, 4));
        assert_eq!(s.milestones().expect("list").len(), 3);
    }
}
