//! `crest alerts test RULE --from T1 --to T2`: replays a rule over stored data.
//!
//! The rule's SQL is run against a running Crest (`--url`, `--token`) once per step from T1 to
//! T2, with `$__now` set to each step's time, and the rows go through the same state machine the
//! server uses. It prints every transition (pending, firing, resolved) with its time and labels.
//! Rules whose SQL ignores `$__now` (using `now()` instead) would see the present at every step;
//! the command warns about them.

use super::rules::{Rule, load, with_now};
use super::state::{AlertState, Instances, Sample, step};
use super::{Labels, Millis, PromDuration, labels_string, parse_time, rfc3339};
use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use std::time::Duration;

/// `crest alerts ...`.
#[derive(Debug, Args)]
pub struct AlertsArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: AlertsCommand,
}

/// Alerting subcommands.
#[derive(Debug, Subcommand)]
pub enum AlertsCommand {
    /// Replay a rule over stored data and print when it would have fired and resolved.
    Test(TestArgs),
}

/// `crest alerts test` flags.
#[derive(Debug, Args)]
pub struct TestArgs {
    /// The rule: its alert name, or `group/alert`.
    pub rule: String,
    /// Start (RFC 3339 or ms since the epoch).
    #[arg(long)]
    pub from: String,
    /// End (RFC 3339 or ms since the epoch).
    #[arg(long)]
    pub to: String,
    /// Rule file globs (repeatable).
    #[arg(long = "rules", required = true)]
    pub rules: Vec<String>,
    /// Step between evaluations (default: the group's interval, else 1m).
    #[arg(long)]
    pub step: Option<PromDuration>,
    /// The Crest server holding the data.
    #[arg(long, default_value = "http://127.0.0.1:8086", env = "CREST_URL")]
    pub url: String,
    /// A token with the read scope.
    #[arg(long, env = "CREST_TOKEN")]
    pub token: Option<String>,
}

/// Most steps one replay may take.
const MAX_STEPS: i64 = 100_000;

/// One transition seen during a replay.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// When.
    pub at: Millis,
    /// New state (`Resolved` also for a pending instance that went away is not reported).
    pub state: AlertState,
    /// Instance labels.
    pub labels: Labels,
    /// Value at that step.
    pub value: Option<f64>,
}

/// Replays `rule` over `[from, to]`; `rows(sql)` runs SQL and returns samples.
pub fn replay(
    rule: &Rule,
    from: Millis,
    to: Millis,
    step_ms: Millis,
    mut rows: impl FnMut(&str) -> anyhow::Result<Vec<Sample>>,
) -> anyhow::Result<Vec<Transition>> {
    if step_ms <= 0 {
        bail!("step must be positive");
    }
    if to < from {
        bail!("--to is before --from");
    }
    if (to - from) / step_ms > MAX_STEPS {
        bail!("more than {MAX_STEPS} steps; use a larger --step");
    }
    let Some(sql) = rule.expr.sql() else {
        bail!(
            "rule {:?} is a {} rule; only SQL rules can be replayed",
            rule.alert,
            rule.expr.describe()
        );
    };
    let mut instances = Instances::new();
    let mut out = Vec::new();
    let mut t = from;
    while t <= to {
        let before: std::collections::BTreeMap<String, AlertState> = instances
            .iter()
            .map(|(k, v)| (k.clone(), v.state))
            .collect();
        let samples = rows(&with_now(sql, t)).with_context(|| format!("at {}", rfc3339(t)))?;
        step(&mut instances, rule, samples, t).map_err(anyhow::Error::msg)?;
        for (fp, i) in &instances {
            if before.get(fp) != Some(&i.state) {
                out.push(Transition {
                    at: t,
                    state: i.state,
                    labels: i.labels.clone(),
                    value: i.value,
                });
            }
        }
        t += step_ms;
    }
    Ok(out)
}

/// Turns `/api/v1/sql` JSON rows into samples.
pub fn samples_from_json(rows: &[serde_json::Value]) -> Vec<Sample> {
    rows.iter()
        .filter_map(|r| r.as_object())
        .map(|o| {
            let mut labels = Labels::new();
            let mut value = None;
            for (k, v) in o {
                if k == "value" {
                    value = v
                        .as_f64()
                        .or_else(|| v.as_str().and_then(|s| s.parse().ok()));
                } else if !v.is_null() {
                    let s = v.as_str().map_or_else(|| v.to_string(), str::to_string);
                    labels.insert(super::service::label_name(k), s);
                }
            }
            Sample { labels, value }
        })
        .collect()
}

/// Runs the command.
pub fn run(args: &AlertsArgs) -> anyhow::Result<()> {
    let AlertsCommand::Test(a) = &args.command;
    let (groups, errors) = load(&a.rules);
    for e in &errors {
        eprintln!("warning: {e}");
    }
    let found: Vec<(&super::rules::RuleGroup, &Rule)> = groups
        .iter()
        .flat_map(|g| {
            g.rules
                .iter()
                .enumerate()
                .filter(|(i, r)| r.alert == a.rule || g.rule_id(*i) == a.rule)
                .map(move |(_, r)| (g, r))
        })
        .collect();
    let (group, rule) = match found.as_slice() {
        [one] => *one,
        [] => bail!("no rule named {:?} in {:?}", a.rule, a.rules),
        _ => bail!(
            "several rules are named {:?}; name it as group/alert",
            a.rule
        ),
    };
    let from = parse_time(&a.from).map_err(anyhow::Error::msg)?;
    let to = parse_time(&a.to).map_err(anyhow::Error::msg)?;
    let step_ms = a
        .step
        .or(group.interval)
        .unwrap_or(PromDuration(Duration::from_secs(60)))
        .ms();
    let Some(sql) = rule.expr.sql() else {
        anyhow::bail!(
            "rule {:?} is not SQL ({}); `crest alerts test` replays SQL rules only",
            rule.alert,
            rule.expr.describe()
        );
    };
    if !sql.contains("$__now") {
        eprintln!(
            "warning: rule {:?} does not use $__now, so every step sees the same data",
            rule.alert
        );
    }
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()?;
    let url = format!("{}/api/v1/sql", a.url.trim_end_matches('/'));
    let transitions = replay(rule, from, to, step_ms, |q| {
        let mut req = client.post(&url).body(q.to_string());
        if let Some(t) = &a.token {
            req = req.bearer_auth(t);
        }
        let r = req.send().with_context(|| format!("cannot reach {url}"))?;
        let status = r.status();
        let text = r.text()?;
        if !status.is_success() {
            bail!("{url} answered {status}: {text}");
        }
        let rows: Vec<serde_json::Value> = serde_json::from_str(&text)?;
        Ok(samples_from_json(&rows))
    })?;
    println!(
        "rule {} (for {}) from {} to {} every {}",
        rule.alert,
        rule.for_,
        rfc3339(from),
        rfc3339(to),
        PromDuration(Duration::from_millis(step_ms as u64))
    );
    if transitions.is_empty() {
        println!("never active");
    }
    for t in &transitions {
        let state = match t.state {
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
            AlertState::Resolved => "resolved",
        };
        let value = t
            .value
            .map_or_else(|| "-".into(), super::rules::format_value);
        println!(
            "{}\t{state}\t{}\tvalue={value}",
            rfc3339(t.at),
            labels_string(&t.labels)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_reports_pending_firing_resolved_at_step_times() {
        let g = super::super::rules::parse(
            std::path::Path::new("r.yml"),
            "groups:\n  - name: g\n    rules:\n      - alert: Hot\n        expr: SELECT x AS value WHERE $__now\n        for: 2m\n",
        )
        .expect("parse");
        let rule = &g[0].rules[0];
        // Active from t=2m to t=6m (exclusive) on a 1m step.
        let tr = replay(rule, 0, 8 * 60_000, 60_000, |sql| {
            assert!(sql.contains("arrow_cast("), "{sql}");
            let ns: i128 = sql
                .split("arrow_cast(")
                .nth(1)
                .and_then(|s| s.split(',').next())
                .and_then(|s| s.parse().ok())
                .expect("time literal");
            let t = (ns / 1_000_000) as i64;
            Ok(if (120_000..360_000).contains(&t) {
                vec![Sample {
                    labels: Labels::new(),
                    value: Some(1.0),
                }]
            } else {
                vec![]
            })
        })
        .expect("replay");
        let got: Vec<(Millis, AlertState)> = tr.iter().map(|t| (t.at, t.state)).collect();
        assert_eq!(
            got,
            [
                (120_000, AlertState::Pending),
                (240_000, AlertState::Firing),
                (360_000, AlertState::Resolved),
            ]
        );
    }

    #[test]
    fn json_rows_become_samples() {
        let rows: Vec<serde_json::Value> = serde_json::from_str(
            r#"[{"service":"a","n":3,"value":0.5,"gone":null},{"service":"b","value":"2"}]"#,
        )
        .expect("json");
        let s = samples_from_json(&rows);
        assert_eq!(s[0].labels.get("n").map(String::as_str), Some("3"));
        assert!(!s[0].labels.contains_key("gone"));
        assert_eq!(s[0].value, Some(0.5));
        assert_eq!(s[1].value, Some(2.0));
    }
}
