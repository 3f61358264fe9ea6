//! Plans, milestones and scores as Arrow tables: plan exports (CSV, JSON, Parquet, Arrow
//! through `query::encode`) and the `milestones` / `milestone_scores` tables SQL reads.

use super::store::MetaStore;
use arrow::array::{
    ArrayRef, BooleanArray, Float64Array, RecordBatch, StringArray, TimestampNanosecondArray,
    UInt32Array, UInt64Array,
};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use forecast::milestone::Milestone;
use forecast::plan::PlanRow;
use std::sync::Arc;

fn ts(secs: impl Iterator<Item = i64>) -> ArrayRef {
    Arc::new(
        TimestampNanosecondArray::from_iter_values(secs.map(|s| s.saturating_mul(1_000_000_000)))
            .with_timezone("UTC"),
    )
}

fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
}

fn strings<'a>(v: impl Iterator<Item = &'a str>) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(v))
}

fn floats(v: impl Iterator<Item = Option<f64>>) -> ArrayRef {
    Arc::new(Float64Array::from_iter(v))
}

fn batch(cols: Vec<(&str, DataType, bool, ArrayRef)>) -> Result<RecordBatch, String> {
    let schema = Schema::new(
        cols.iter()
            .map(|(n, t, null, _)| Field::new(*n, t.clone(), *null))
            .collect::<Vec<_>>(),
    );
    RecordBatch::try_new(Arc::new(schema), cols.into_iter().map(|c| c.3).collect())
        .map_err(|e| e.to_string())
}

/// A plan as one table: every term of the arithmetic is a column.
pub fn plan_batch(made_at: i64, rows: &[PlanRow]) -> Result<RecordBatch, String> {
    use DataType::*;
    let f = |g: fn(&PlanRow) -> f64| floats(rows.iter().map(move |r| Some(g(r))));
    let o = |g: fn(&PlanRow) -> Option<f64>| floats(rows.iter().map(g));
    batch(vec![
        (
            "milestone",
            Utf8,
            false,
            strings(rows.iter().map(|r| r.milestone.as_str())),
        ),
        (
            "milestone_kind",
            Utf8,
            false,
            strings(rows.iter().map(|r| r.milestone_kind.as_str())),
        ),
        (
            "service",
            Utf8,
            false,
            strings(rows.iter().map(|r| r.service.as_str())),
        ),
        (
            "made_at",
            ts_type(),
            false,
            ts(rows.iter().map(|_| made_at)),
        ),
        (
            "model",
            Utf8,
            false,
            strings(rows.iter().map(|r| r.model.as_str())),
        ),
        (
            "baseline_peak_p50",
            Float64,
            true,
            f(|r| r.baseline_peak_p50),
        ),
        (
            "baseline_peak_p90",
            Float64,
            true,
            f(|r| r.baseline_peak_p90),
        ),
        (
            "baseline_peak_p99",
            Float64,
            true,
            f(|r| r.baseline_peak_p99),
        ),
        ("event_multiplier", Float64, true, f(|r| r.event_multiplier)),
        (
            "multiplier_source",
            Utf8,
            false,
            strings(rows.iter().map(|r| r.multiplier_source.as_str())),
        ),
        ("target_qps", Float64, true, o(|r| r.target_qps)),
        (
            "forecast_peak_p50",
            Float64,
            true,
            f(|r| r.forecast_peak_p50),
        ),
        (
            "forecast_peak_p90",
            Float64,
            true,
            f(|r| r.forecast_peak_p90),
        ),
        (
            "forecast_peak_p99",
            Float64,
            true,
            f(|r| r.forecast_peak_p99),
        ),
        (
            "capacity_per_instance_qps",
            Float64,
            true,
            o(|r| r.capacity_per_instance_qps),
        ),
        (
            "capacity_source",
            Utf8,
            false,
            strings(rows.iter().map(|r| r.capacity_source.as_str())),
        ),
        (
            "utilisation_target",
            Float64,
            true,
            f(|r| r.utilisation_target),
        ),
        (
            "usable_qps_per_instance",
            Float64,
            true,
            o(|r| r.usable_qps_per_instance),
        ),
        (
            "zones",
            UInt32,
            false,
            Arc::new(UInt32Array::from_iter_values(rows.iter().map(|r| r.zones))),
        ),
        (
            "zone_loss_tolerance",
            UInt32,
            false,
            Arc::new(UInt32Array::from_iter_values(
                rows.iter().map(|r| r.zone_loss_tolerance),
            )),
        ),
        (
            "instances_needed_all_zones",
            UInt64,
            true,
            Arc::new(UInt64Array::from_iter(
                rows.iter().map(|r| r.instances_needed_all_zones),
            )),
        ),
        (
            "instances_needed",
            UInt64,
            true,
            Arc::new(UInt64Array::from_iter(
                rows.iter().map(|r| r.instances_needed),
            )),
        ),
        ("instances_now", Float64, true, o(|r| r.instances_now)),
        ("gap", Float64, true, o(|r| r.gap)),
    ])
}

/// The `milestones` table.
pub fn milestones_batch(all: &[Milestone], now: i64) -> Result<RecordBatch, String> {
    use DataType::*;
    let drivers: Vec<String> = all
        .iter()
        .map(|m| serde_json::to_string(&m.spec.drivers).unwrap_or_default())
        .collect();
    let status: Vec<&str> = all
        .iter()
        .map(|m| match m.spec.status(now) {
            forecast::milestone::MilestoneStatus::Upcoming => "upcoming",
            forecast::milestone::MilestoneStatus::Running => "running",
            forecast::milestone::MilestoneStatus::Done => "done",
        })
        .collect();
    batch(vec![
        (
            "id",
            UInt64,
            false,
            Arc::new(UInt64Array::from_iter_values(all.iter().map(|m| m.id))),
        ),
        (
            "name",
            Utf8,
            false,
            strings(all.iter().map(|m| m.spec.name.as_str())),
        ),
        (
            "kind",
            Utf8,
            false,
            strings(all.iter().map(|m| m.spec.kind.as_str())),
        ),
        (
            "start",
            ts_type(),
            false,
            ts(all.iter().map(|m| m.spec.start)),
        ),
        ("end", ts_type(), false, ts(all.iter().map(|m| m.spec.end))),
        ("status", Utf8, false, strings(status.into_iter())),
        (
            "expected_audience",
            Float64,
            true,
            floats(all.iter().map(|m| m.spec.drivers.expected_audience)),
        ),
        (
            "multiplier",
            Float64,
            true,
            floats(all.iter().map(|m| m.spec.drivers.multiplier)),
        ),
        (
            "target_qps",
            Float64,
            true,
            floats(all.iter().map(|m| m.spec.drivers.target_qps)),
        ),
        (
            "drivers",
            Utf8,
            false,
            strings(drivers.iter().map(String::as_str)),
        ),
        (
            "notes",
            Utf8,
            false,
            strings(all.iter().map(|m| m.spec.notes.as_str())),
        ),
    ])
}

/// The `milestone_scores` table: one row per scored milestone and service.
pub fn scores_batch(store: &MetaStore) -> Result<RecordBatch, String> {
    use DataType::*;
    let scores = store.scores().map_err(|e| e.to_string())?;
    let rows: Vec<(&super::store::MilestoneScore, &forecast::plan::ServiceScore)> = scores
        .iter()
        .flat_map(|m| m.services.iter().map(move |s| (m, s)))
        .collect();
    let f = |g: fn(&forecast::plan::ServiceScore) -> f64| {
        floats(rows.iter().map(move |(_, s)| Some(g(s))))
    };
    batch(vec![
        (
            "milestone_id",
            UInt64,
            false,
            Arc::new(UInt64Array::from_iter_values(
                rows.iter().map(|(m, _)| m.milestone_id),
            )),
        ),
        (
            "milestone",
            Utf8,
            false,
            strings(rows.iter().map(|(m, _)| m.milestone.as_str())),
        ),
        (
            "service",
            Utf8,
            false,
            strings(rows.iter().map(|(_, s)| s.service.as_str())),
        ),
        (
            "scored_at",
            ts_type(),
            false,
            ts(rows.iter().map(|(m, _)| m.scored_at)),
        ),
        (
            "plan",
            Utf8,
            false,
            strings(rows.iter().map(|(m, _)| m.plan.as_str())),
        ),
        (
            "forecast_peak_p50",
            Float64,
            true,
            f(|s| s.forecast_peak_p50),
        ),
        (
            "forecast_peak_p90",
            Float64,
            true,
            f(|s| s.forecast_peak_p90),
        ),
        (
            "forecast_peak_p99",
            Float64,
            true,
            f(|s| s.forecast_peak_p99),
        ),
        ("actual_peak", Float64, true, f(|s| s.actual_peak)),
        ("error", Float64, true, f(|s| s.error)),
        (
            "within_p99",
            Boolean,
            false,
            Arc::new(BooleanArray::from_iter(
                rows.iter().map(|(_, s)| Some(s.within_p99)),
            )),
        ),
        ("event_multiplier", Float64, true, f(|s| s.event_multiplier)),
        (
            "realised_multiplier",
            Float64,
            true,
            f(|s| s.realised_multiplier),
        ),
    ])
}

/// Serves `milestones` and `milestone_scores` to SQL.
pub struct MetaTables(pub Arc<super::Planning>);

impl query::ExtraTables for MetaTables {
    fn tables(&self) -> Vec<(String, RecordBatch)> {
        let mut out = Vec::new();
        match self.0.store.milestones() {
            Ok(all) => match milestones_batch(&all, super::now()) {
                Ok(b) => out.push(("milestones".to_string(), b)),
                Err(e) => tracing::error!(error = %e, "Cannot build the milestones table."),
            },
            Err(e) => tracing::error!(error = %e, "Cannot read milestones for SQL."),
        }
        match scores_batch(&self.0.store) {
            Ok(b) => out.push(("milestone_scores".to_string(), b)),
            Err(e) => tracing::error!(error = %e, "Cannot build the milestone_scores table."),
        }
        out
    }
}
