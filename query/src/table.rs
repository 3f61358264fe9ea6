//! The table provider over one table's buffered hours and Parquet files, with time pruning.

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::{SchemaProvider, Session};
use datafusion::common::ScalarValue;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{BinaryExpr, Expr, Operator, TableProviderFilterPushDown};
use datafusion::physical_expr::{PhysicalExpr, expressions};
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::filter_pushdown::{
    ChildPushdownResult, FilterDescription, FilterPushdownPhase, FilterPushdownPropagation,
};
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::union::UnionExec;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, SendableRecordBatchStream,
};
use ingest::Db;
use ingest::buffer::HOUR_NS;
use ingest::schema::{TABLE_COLUMN, TIME_COLUMN};
use std::fmt;
use std::sync::Arc;

/// Lists the database's tables as the default schema, fresh on every lookup.
#[derive(Debug)]
pub struct CrestSchema {
    db: Arc<Db>,
    /// Small in-memory tables from outside the database (milestones, scores), checked first.
    extra: Vec<(String, Arc<dyn TableProvider>)>,
}

impl CrestSchema {
    /// A schema over `db`.
    pub fn new(db: Arc<Db>) -> Self {
        Self { db, extra: vec![] }
    }

    /// Adds in-memory tables: each batch becomes a table of that name, shadowing a database
    /// table of the same name.
    pub fn with_batches(
        mut self,
        tables: Vec<(String, arrow::array::RecordBatch)>,
    ) -> Result<Self> {
        for (name, batch) in tables {
            let t = datafusion::datasource::MemTable::try_new(batch.schema(), vec![vec![batch]])?;
            self.extra.push((name, Arc::new(t)));
        }
        Ok(self)
    }

    fn extra(&self, name: &str) -> Option<Arc<dyn TableProvider>> {
        self.extra
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| Arc::clone(t))
    }
}

#[async_trait]
impl SchemaProvider for CrestSchema {
    fn table_names(&self) -> Vec<String> {
        let mut names = self.db.table_names();
        for (n, _) in &self.extra {
            if !names.contains(n) {
                names.push(n.clone());
            }
        }
        names
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        if let Some(t) = self.extra(name) {
            return Ok(Some(t));
        }
        Ok(self.db.table_schema(name).map(|s| {
            Arc::new(CrestTable {
                db: Arc::clone(&self.db),
                name: name.to_string(),
                schema: s.arrow_schema(),
            }) as Arc<dyn TableProvider>
        }))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.extra(name).is_some() || self.db.table_schema(name).is_some()
    }
}

/// One table: buffered hours ∪ Parquet files of the other hours.
#[derive(Debug)]
pub struct CrestTable {
    db: Arc<Db>,
    name: String,
    schema: SchemaRef,
}

/// Inclusive time bounds a query's filters imply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeBounds {
    /// Earliest time that can match.
    pub min: i64,
    /// Latest time that can match.
    pub max: i64,
}

impl Default for TimeBounds {
    fn default() -> Self {
        Self {
            min: i64::MIN,
            max: i64::MAX,
        }
    }
}

impl TimeBounds {
    /// Narrows the bounds with every `time <op> literal` conjunct in `filters`.
    pub fn from_filters(filters: &[Expr]) -> Self {
        let mut b = Self::default();
        for f in filters {
            b.narrow(f);
        }
        b
    }

    fn narrow(&mut self, e: &Expr) {
        match e {
            Expr::BinaryExpr(BinaryExpr {
                left,
                op: Operator::And,
                right,
            }) => {
                self.narrow(left);
                self.narrow(right);
            }
            Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
                let (op, lit) = match (is_time(left), is_time(right)) {
                    (true, false) => (*op, literal_ns(right)),
                    (false, true) => (op.swap().unwrap_or(*op), literal_ns(left)),
                    _ => return,
                };
                let Some(v) = lit else { return };
                match op {
                    Operator::Gt => self.min = self.min.max(v.saturating_add(1)),
                    Operator::GtEq => self.min = self.min.max(v),
                    Operator::Lt => self.max = self.max.min(v.saturating_sub(1)),
                    Operator::LtEq => self.max = self.max.min(v),
                    Operator::Eq => {
                        self.min = self.min.max(v);
                        self.max = self.max.min(v);
                    }
                    _ => {}
                }
            }
            Expr::Between(between) if !between.negated && is_time(&between.expr) => {
                if let Some(lo) = literal_ns(&between.low) {
                    self.min = self.min.max(lo);
                }
                if let Some(hi) = literal_ns(&between.high) {
                    self.max = self.max.min(hi);
                }
            }
            _ => {}
        }
    }

    /// Whether `[lo, hi]` overlaps the bounds.
    pub fn overlaps(&self, lo: i64, hi: i64) -> bool {
        lo <= self.max && hi >= self.min
    }
}

fn is_time(e: &Expr) -> bool {
    match e {
        Expr::Column(c) => c.name == TIME_COLUMN,
        // Only a cast that keeps nanoseconds keeps the bounds exact: a cast to a coarser unit
        // truncates, so `CAST(time AS Timestamp(s)) <= 10` also matches 10.5 s.
        Expr::Cast(c) => {
            matches!(
                c.field.data_type(),
                arrow::datatypes::DataType::Timestamp(arrow::datatypes::TimeUnit::Nanosecond, _)
            ) && is_time(&c.expr)
        }
        _ => false,
    }
}

fn literal_ns(e: &Expr) -> Option<i64> {
    let Expr::Literal(v, _) = e else { return None };
    match v {
        ScalarValue::TimestampNanosecond(Some(x), _) => Some(*x),
        ScalarValue::TimestampMicrosecond(Some(x), _) => x.checked_mul(1_000),
        ScalarValue::TimestampMillisecond(Some(x), _) => x.checked_mul(1_000_000),
        ScalarValue::TimestampSecond(Some(x), _) => x.checked_mul(1_000_000_000),
        _ => None,
    }
}

#[async_trait]
impl TableProvider for CrestTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let view = self
            .db
            .table_view(&self.name)
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        let bounds = TimeBounds::from_filters(filters);
        let mut stats = ScanStats::default();
        let mut inputs: Vec<Arc<dyn ExecutionPlan>> = Vec::new();
        if let Some(view) = view {
            let mut hours = Vec::new();
            for (hour, batch) in view.buffered {
                if bounds.overlaps(hour, hour + HOUR_NS - 1) && batch.num_rows() > 0 {
                    stats.buffer_hours_scanned += 1;
                    // The table schema may have grown since the batch was built.
                    hours.push(vec![conform(&batch, &self.schema)?]);
                } else {
                    stats.buffer_hours_pruned += 1;
                }
            }
            let (mut own, mut shared) = (Vec::new(), Vec::new());
            for (path, meta) in view.files {
                if bounds.overlaps(meta.min_time_ns, meta.max_time_ns) {
                    stats.files_scanned += 1;
                    let p = path.to_str().ok_or_else(|| {
                        DataFusionError::Internal(format!("non-UTF-8 path {}", path.display()))
                    })?;
                    let url = ListingTableUrl::parse(p)?;
                    if meta.shared {
                        // Several tables' rows in one file: many entries may name the same one.
                        if !shared.contains(&url) {
                            shared.push(url);
                        }
                    } else {
                        own.push(url);
                    }
                } else {
                    stats.files_pruned += 1;
                }
            }
            if !own.is_empty() {
                let listing = parquet_listing(own, Arc::clone(&self.schema))?;
                inputs.push(listing.scan(state, projection, filters, limit).await?);
            }
            if !shared.is_empty() {
                inputs.push(self.scan_shared(state, shared, projection, filters).await?);
            }
            if !hours.is_empty() {
                inputs.push(MemorySourceConfig::try_new_exec(
                    &hours,
                    Arc::clone(&self.schema),
                    projection.cloned(),
                )?);
            }
        }
        let projected = match projection {
            Some(p) => Arc::new(self.schema.project(p)?),
            None => Arc::clone(&self.schema),
        };
        let input: Arc<dyn ExecutionPlan> = if inputs.is_empty() {
            Arc::new(EmptyExec::new(projected))
        } else {
            UnionExec::try_new(inputs)?
        };
        Ok(Arc::new(CrestScanExec::new(
            self.name.clone(),
            stats,
            input,
        )))
    }
}

/// A Parquet listing over `urls` read with `schema` (columns a file lacks read as nulls, columns
/// it has beyond `schema` are ignored).
fn parquet_listing(urls: Vec<ListingTableUrl>, schema: SchemaRef) -> Result<ListingTable> {
    let opts =
        ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
    let config = ListingTableConfig::new_with_multi_paths(urls)
        .with_listing_options(opts)
        .with_schema(schema);
    ListingTable::try_new(config)
}

impl CrestTable {
    /// Scans shared files: reads this table's columns plus the table column, keeps this
    /// table's rows (the table-column filter also prunes row groups and pages by statistics,
    /// as the files are sorted by table), then drops the table column.
    async fn scan_shared(
        &self,
        state: &dyn Session,
        urls: Vec<ListingTableUrl>,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let mut fields: Vec<_> = self.schema.fields().iter().cloned().collect();
        let table_idx = fields.len();
        fields.push(Arc::new(Field::new(TABLE_COLUMN, DataType::Utf8, false)));
        let wide = Arc::new(Schema::new(fields));
        let cols: Vec<usize> = match projection {
            Some(p) => p.clone(),
            None => (0..table_idx).collect(),
        };
        let mut wide_projection = cols.clone();
        wide_projection.push(table_idx);
        let mut wide_filters = filters.to_vec();
        let is_this_table = datafusion::logical_expr::col(TABLE_COLUMN)
            .eq(datafusion::logical_expr::lit(self.name.as_str()));
        wide_filters.push(is_this_table);
        let listing = parquet_listing(urls, wide)?;
        let scan = listing
            .scan(state, Some(&wide_projection), &wide_filters, None)
            .await?;
        let scanned = scan.schema();
        let predicate: Arc<dyn PhysicalExpr> = Arc::new(expressions::BinaryExpr::new(
            expressions::col(TABLE_COLUMN, &scanned)?,
            Operator::Eq,
            expressions::lit(self.name.as_str()),
        ));
        let filtered = Arc::new(FilterExec::try_new(predicate, scan)?);
        let exprs = (0..cols.len())
            .map(|i| {
                let f = scanned.field(i);
                (
                    Arc::new(expressions::Column::new(f.name(), i)) as Arc<dyn PhysicalExpr>,
                    f.name().clone(),
                )
            })
            .collect::<Vec<_>>();
        Ok(Arc::new(ProjectionExec::try_new(exprs, filtered)?))
    }
}

/// Adds null columns a batch lacks so it matches the table schema.
fn conform(
    batch: &arrow::array::RecordBatch,
    schema: &SchemaRef,
) -> Result<arrow::array::RecordBatch> {
    if batch.schema().fields() == schema.fields() {
        return Ok(batch.clone());
    }
    let cols = schema
        .fields()
        .iter()
        .map(|f| match batch.column_by_name(f.name()) {
            Some(c) => Arc::clone(c),
            None => arrow::array::new_null_array(f.data_type(), batch.num_rows()),
        })
        .collect();
    Ok(arrow::array::RecordBatch::try_new(
        Arc::clone(schema),
        cols,
    )?)
}

/// What a scan read and what the time bounds let it skip.
#[derive(Debug, Default, Clone, Copy)]
pub struct ScanStats {
    /// Parquet files read.
    pub files_scanned: usize,
    /// Parquet files skipped by the manifest's time ranges.
    pub files_pruned: usize,
    /// Buffered hours read.
    pub buffer_hours_scanned: usize,
    /// Buffered hours skipped.
    pub buffer_hours_pruned: usize,
}

/// A pass-through node that makes `EXPLAIN` show what the scan pruned.
#[derive(Debug)]
pub struct CrestScanExec {
    table: String,
    stats: ScanStats,
    input: Arc<dyn ExecutionPlan>,
}

impl CrestScanExec {
    fn new(table: String, stats: ScanStats, input: Arc<dyn ExecutionPlan>) -> Self {
        Self {
            table,
            stats,
            input,
        }
    }
}

impl DisplayAs for CrestScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let s = self.stats;
        write!(
            f,
            "CrestScanExec: table={}, files_scanned={}, files_pruned={}, buffer_hours_scanned={}, buffer_hours_pruned={}",
            self.table,
            s.files_scanned,
            s.files_pruned,
            s.buffer_hours_scanned,
            s.buffer_hours_pruned
        )
    }
}

impl ExecutionPlan for CrestScanExec {
    fn name(&self) -> &str {
        "CrestScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.input.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let input = children
            .pop()
            .ok_or_else(|| DataFusionError::Internal("CrestScanExec needs one child".into()))?;
        Ok(Arc::new(CrestScanExec::new(
            self.table.clone(),
            self.stats,
            input,
        )))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        self.input.execute(partition, context)
    }

    // Filters pass through to the scans below: DataFusion's Parquet reader prunes row groups
    // by statistics and bloom filters only with a predicate the physical optimizer pushes into
    // it, and a node that does not pass filters on stops them here.
    fn gather_filters_for_pushdown(
        &self,
        _phase: FilterPushdownPhase,
        parent_filters: Vec<Arc<dyn PhysicalExpr>>,
        _config: &ConfigOptions,
    ) -> Result<FilterDescription> {
        FilterDescription::from_children(parent_filters, &self.children())
    }

    fn handle_child_pushdown_result(
        &self,
        _phase: FilterPushdownPhase,
        child_pushdown_result: ChildPushdownResult,
        _config: &ConfigOptions,
    ) -> Result<FilterPushdownPropagation<Arc<dyn ExecutionPlan>>> {
        Ok(FilterPushdownPropagation::if_all(child_pushdown_result))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::{DataType, TimeUnit};
    use datafusion::prelude::{cast, col, lit};

    #[test]
    fn time_bounds_come_from_nanosecond_comparisons_only() {
        let ns = |v| lit(ScalarValue::TimestampNanosecond(Some(v), None));
        let b = TimeBounds::from_filters(&[col("time").gt_eq(ns(10)).and(col("time").lt(ns(20)))]);
        assert_eq!(b, TimeBounds { min: 10, max: 19 });
        let b = TimeBounds::from_filters(&[ns(5).lt(col("time"))]);
        assert_eq!(b.min, 6);
        // A cast to seconds truncates: 10.5 s matches `<= 10 s`, so no bound may be taken.
        let secs = cast(col("time"), DataType::Timestamp(TimeUnit::Second, None));
        let b = TimeBounds::from_filters(&[
            secs.lt_eq(lit(ScalarValue::TimestampSecond(Some(10), None)))
        ]);
        assert_eq!(b, TimeBounds::default());
        let same = cast(col("time"), DataType::Timestamp(TimeUnit::Nanosecond, None));
        let b = TimeBounds::from_filters(&[same.lt_eq(ns(7))]);
        assert_eq!(b.max, 7);
    }
}
