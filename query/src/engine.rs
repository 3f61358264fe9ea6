//! The SQL engine: sandbox, per-query session and limits.

use crate::error::QueryError;
use crate::table::CrestSchema;
use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::error::DataFusionError;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{SQLOptions, SessionConfig, SessionContext};
use ingest::Db;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Limits every query runs under.
#[derive(Debug, Clone)]
pub struct QueryConfig {
    /// Memory pool per query, bytes.
    pub memory_limit: usize,
    /// Wall-clock limit per query.
    pub timeout: Duration,
    /// Queries running at once; more wait briefly, then get "busy".
    pub max_concurrent: usize,
    /// Threads of the query runtime (separate from the server's, so a heavy query never
    /// starves ingest or health checks).
    pub threads: usize,
}

impl Default for QueryConfig {
    fn default() -> Self {
        Self {
            memory_limit: 1024 * 1024 * 1024,
            timeout: Duration::from_secs(30),
            max_concurrent: 8,
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
        }
    }
}

/// A query's answer.
#[derive(Debug, Clone)]
pub struct QueryResult {
    /// Result columns.
    pub schema: SchemaRef,
    /// Result rows.
    pub batches: Vec<RecordBatch>,
}

impl QueryResult {
    /// Total rows.
    pub fn num_rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }
}

/// Tables kept outside the database (milestones, scores) that every query can read, built
/// fresh for each query.
pub trait ExtraTables: Send + Sync {
    /// `(name, rows)` of each table.
    fn tables(&self) -> Vec<(String, RecordBatch)>;
}

/// Runs read-only SQL over a [`Db`].
pub struct QueryEngine {
    db: Arc<Db>,
    extra: parking_lot::RwLock<Option<Arc<dyn ExtraTables>>>,
    cfg: QueryConfig,
    slots: Arc<Semaphore>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for QueryEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryEngine")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

impl Drop for QueryEngine {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl QueryEngine {
    /// An engine over `db` with its own query runtime.
    pub fn new(db: Arc<Db>, cfg: QueryConfig) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(cfg.threads.max(1))
            .thread_name("crest-query")
            .enable_all()
            .build()?;
        Ok(Self {
            db,
            extra: parking_lot::RwLock::new(None),
            slots: Arc::new(Semaphore::new(cfg.max_concurrent.max(1))),
            cfg,
            runtime: Some(runtime),
        })
    }

    /// Makes `tables` readable from every query from now on.
    pub fn set_extra_tables(&self, tables: Arc<dyn ExtraTables>) {
        *self.extra.write() = Some(tables);
    }

    /// The limits in force.
    pub fn config(&self) -> &QueryConfig {
        &self.cfg
    }

    /// Runs one SQL statement under the sandbox and limits.
    pub async fn sql(&self, sql: &str) -> Result<QueryResult, QueryError> {
        let permit = match Arc::clone(&self.slots).try_acquire_owned() {
            Ok(p) => p,
            Err(_) => tokio::time::timeout(
                Duration::from_secs(2),
                Arc::clone(&self.slots).acquire_owned(),
            )
            .await
            .map_err(|_| QueryError::Busy(self.cfg.max_concurrent))?
            .map_err(|_| QueryError::Busy(self.cfg.max_concurrent))?,
        };
        let ctx = self.session()?;
        let sql = sql.to_string();
        let limit = self.cfg.memory_limit;
        let run = async move {
            let _permit = permit;
            let opts = SQLOptions::new()
                .with_allow_ddl(false)
                .with_allow_dml(false)
                .with_allow_statements(false);
            let df = ctx.sql_with_options(&sql, opts).await?;
            let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
            let batches = df.collect().await?;
            Ok::<_, DataFusionError>(QueryResult { schema, batches })
        };
        let Some(rt) = self.runtime.as_ref() else {
            return Err(QueryError::Internal("query runtime stopped".into()));
        };
        let handle = rt.spawn(run);
        let abort = handle.abort_handle();
        match tokio::time::timeout(self.cfg.timeout, handle).await {
            Err(_) => {
                abort.abort();
                Err(QueryError::Timeout(self.cfg.timeout))
            }
            Ok(Err(join)) => Err(QueryError::Internal(format!("query task failed: {join}"))),
            Ok(Ok(Err(e))) => Err(classify(e, limit)),
            Ok(Ok(Ok(r))) => Ok(r),
        }
    }

    fn session(&self) -> Result<SessionContext, QueryError> {
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_limit(self.cfg.memory_limit, 1.0)
            .build_arc()
            .map_err(|e| QueryError::Internal(e.to_string()))?;
        let config = SessionConfig::new()
            .with_information_schema(true)
            .with_target_partitions(self.cfg.threads.max(1));
        let state = SessionStateBuilder::new()
            .with_config(config)
            .with_runtime_env(runtime)
            .with_default_features()
            .with_physical_optimizer_rule(Arc::new(crate::coop::CooperativeAmplifiers))
            .build();
        let ctx = SessionContext::new_with_state(state);
        ctx.register_udaf(datafusion::logical_expr::AggregateUDF::from(
            crate::histogram::HistogramQuantile::default(),
        ));
        ctx.register_udf(datafusion::logical_expr::ScalarUDF::from(
            crate::series::SeriesId::default(),
        ));
        let extra = self.extra.read().clone();
        let schema = CrestSchema::new(Arc::clone(&self.db))
            .with_batches(extra.map(|e| e.tables()).unwrap_or_default())
            .map_err(|e| QueryError::Internal(e.to_string()))?;
        let catalog = ctx
            .catalog("datafusion")
            .ok_or_else(|| QueryError::Internal("default catalog missing".into()))?;
        catalog
            .register_schema("public", Arc::new(schema))
            .map_err(|e| QueryError::Internal(e.to_string()))?;
        Ok(ctx)
    }
}

/// Maps a DataFusion error to what the client is told.
fn classify(e: DataFusionError, limit: usize) -> QueryError {
    let root = e.find_root();
    let msg = root.to_string();
    let msg = msg
        .strip_prefix("Error during planning: ")
        .or_else(|| msg.strip_prefix("SQL error: "))
        .or_else(|| msg.strip_prefix("Execution error: "))
        .unwrap_or(&msg)
        .to_string();
    match root {
        DataFusionError::ResourcesExhausted(d) => QueryError::Memory {
            limit,
            detail: d.clone(),
        },
        DataFusionError::Plan(p)
            if p.starts_with("DDL not supported")
                || p.starts_with("DML not supported")
                || p.starts_with("Statement not supported") =>
        {
            QueryError::Refused(p.clone())
        }
        DataFusionError::External(inner) => QueryError::Internal(inner.to_string()),
        DataFusionError::Internal(_)
        | DataFusionError::IoError(_)
        | DataFusionError::ObjectStore(_) => QueryError::Internal(msg),
        _ => QueryError::Invalid(msg),
    }
}

#[cfg(test)]
mod tests;
