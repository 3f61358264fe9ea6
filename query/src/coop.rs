//! Makes runaway queries cancellable.
//!
//! DataFusion's `EnsureCooperative` makes *leaf* streams spend tokio's cooperative budget, so a
//! long-running stream returns `Pending` now and then, which is when a timeout or an abort can
//! take effect. An operator whose output dwarfs its input (a cross or nested-loop join, a
//! many-to-many hash join, an unnest) drains its few input batches and then computes without
//! ever spending budget: its poll never returns, and the query's timeout cannot stop it, while it
//! keeps a concurrency slot and a core. Wrapping those operators' output in `CooperativeExec`
//! makes them spend budget per output batch, so they yield every ~128 batches.

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::error::Result;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::coop::CooperativeExec;
use std::sync::Arc;

/// Operators whose output can be far larger than their input.
const AMPLIFIERS: &[&str] = &[
    "CrossJoinExec",
    "NestedLoopJoinExec",
    "HashJoinExec",
    "SortMergeJoinExec",
    "SymmetricHashJoinExec",
    "UnnestExec",
];

/// Physical optimizer rule wrapping input-amplifying operators in `CooperativeExec`.
#[derive(Debug, Default)]
pub struct CooperativeAmplifiers;

impl PhysicalOptimizerRule for CooperativeAmplifiers {
    fn name(&self) -> &str {
        "CooperativeAmplifiers"
    }

    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|p| {
            if AMPLIFIERS.contains(&p.name()) {
                Ok(Transformed::yes(
                    Arc::new(CooperativeExec::new(p)) as Arc<dyn ExecutionPlan>
                ))
            } else {
                Ok(Transformed::no(p))
            }
        })
        .map(|t| t.data)
    }

    fn schema_check(&self) -> bool {
        true
    }
}
