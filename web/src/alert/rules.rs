//! Rule files in Prometheus' shape, with SQL as the expression language.
//!
//! ```yaml
//! groups:
//!   - name: checkout
//!     interval: 30s
//!     rules:
//!       - alert: CheckoutSlow
//!         expr: SELECT service, avg(p99) AS value FROM latency WHERE time > $__now - INTERVAL '5 minutes' GROUP BY service HAVING avg(p99) > 0.5
//!         for: 2m
//!         labels: { severity: critical }
//!         annotations: { summary: "{{ $labels.service }} p99 is {{ $value }}s" }
//! ```
//!
//! Every row `expr` returns is an active alert instance: its `value` column is the value, every
//! other column a label. `$__now` in the SQL is replaced by the evaluation time as a UTC
//! timestamp literal (which is what lets `crest alerts test` replay a rule over the past).

use super::matcher::valid_label_name;
use super::{Labels, PromDuration};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A rule file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    groups: Vec<RawGroup>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    name: String,
    #[serde(default)]
    interval: Option<PromDuration>,
    #[serde(default)]
    rules: Vec<Rule>,
}

/// One rule group: evaluated together, every `interval`.
#[derive(Debug, Clone, Serialize)]
pub struct RuleGroup {
    /// Group name (unique within its file).
    pub name: String,
    /// The file it came from.
    pub file: PathBuf,
    /// Evaluation interval; `None` uses the server's default.
    #[serde(serialize_with = "ser_opt_duration")]
    pub interval: Option<PromDuration>,
    /// The rules, in file order.
    pub rules: Vec<Rule>,
}

impl RuleGroup {
    /// The id of rule `i`: `group/alert` (made unique by index when names repeat).
    pub fn rule_id(&self, i: usize) -> String {
        let name = &self.rules[i].alert;
        let dup = self.rules.iter().filter(|r| &r.alert == name).count() > 1;
        if dup {
            format!("{}/{}#{i}", self.name, name)
        } else {
            format!("{}/{}", self.name, name)
        }
    }
}

fn ser_opt_duration<S: serde::Serializer>(
    d: &Option<PromDuration>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_str(&d.to_string()),
        None => s.serialize_none(),
    }
}

fn ser_duration<S: serde::Serializer>(d: &PromDuration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&d.to_string())
}

/// What a rule evaluates. Every kind yields the same rows: labels and a value per active
/// instance, so the state machine, routing and delivery need no change.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RuleExpr {
    /// SQL whose every row is an active instance.
    Sql {
        /// The query, with `$__now` placeholders.
        sql: String,
    },
    /// A service's QPS over the last `window` is above the `quantile` forecast peak of the
    /// running milestone's plan (labels `service`, `milestone`, `milestone_kind`; value: QPS).
    ForecastBand {
        /// `p50`, `p90` or `p99`.
        quantile: String,
        /// Window the QPS is measured over.
        #[serde(serialize_with = "ser_duration")]
        window: PromDuration,
    },
    /// A service's load over the last `window` is above `above` of its capacity: per-instance
    /// capacity (stress tests or config) × instances serving (label `service`, plus the running
    /// milestone's; value: the ratio).
    Headroom {
        /// Load / capacity above which it fires.
        above: f64,
        /// Window the load is measured over.
        #[serde(serialize_with = "ser_duration")]
        window: PromDuration,
    },
}

impl RuleExpr {
    /// The SQL, for the kinds that have one.
    pub fn sql(&self) -> Option<&str> {
        match self {
            RuleExpr::Sql { sql } => Some(sql),
            _ => None,
        }
    }

    /// A one-line description, for listings.
    pub fn describe(&self) -> String {
        match self {
            RuleExpr::Sql { sql } => sql.clone(),
            RuleExpr::ForecastBand { quantile, window } => {
                format!(
                    "forecast_band: QPS over {window} above the running milestone's {quantile} forecast peak"
                )
            }
            RuleExpr::Headroom { above, window } => {
                format!("headroom: load over {window} above {above} of capacity")
            }
        }
    }
}

/// `forecast_band:` in a rule file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct BandSpec {
    #[serde(default = "default_band")]
    quantile: String,
    #[serde(default = "default_window")]
    window: PromDuration,
}

/// `headroom:` in a rule file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct HeadroomSpec {
    above: f64,
    #[serde(default = "default_window")]
    window: PromDuration,
}

fn default_band() -> String {
    "p99".into()
}

fn default_window() -> PromDuration {
    PromDuration(std::time::Duration::from_secs(300))
}

/// One alerting rule.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "RawRule")]
pub struct Rule {
    /// The alert name (becomes the `alertname` label).
    pub alert: String,
    /// What is evaluated.
    pub expr: RuleExpr,
    /// How long an instance stays pending before it fires.
    #[serde(rename = "for", serialize_with = "ser_duration")]
    pub for_: PromDuration,
    /// Labels added to every instance (they win over the row's).
    pub labels: Labels,
    /// Annotations; `{{ $labels.name }}` and `{{ $value }}` are expanded per instance.
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    #[serde(default)]
    alert: Option<String>,
    #[serde(default)]
    record: Option<String>,
    #[serde(default)]
    expr: Option<String>,
    #[serde(default)]
    forecast_band: Option<BandSpec>,
    #[serde(default)]
    headroom: Option<HeadroomSpec>,
    #[serde(default, rename = "for")]
    for_: Option<PromDuration>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

impl TryFrom<RawRule> for Rule {
    type Error = String;
    fn try_from(r: RawRule) -> Result<Self, String> {
        if let Some(rec) = r.record {
            return Err(format!(
                "recording rule {rec:?}: Crest has no recording rules; only `alert:` rules are supported"
            ));
        }
        let alert = r.alert.ok_or("rule without `alert:` name")?;
        if alert.trim().is_empty() {
            return Err("rule with an empty `alert:` name".into());
        }
        let expr = match (r.expr, r.forecast_band, r.headroom) {
            (Some(sql), None, None) => {
                if sql.trim().is_empty() {
                    return Err(format!("rule {alert:?} has an empty `expr`"));
                }
                RuleExpr::Sql { sql }
            }
            (None, Some(b), None) => {
                if crate::planning::live::band_column(&b.quantile).is_none() {
                    return Err(format!(
                        "rule {alert:?}: forecast_band quantile {:?} is not p50, p90 or p99",
                        b.quantile
                    ));
                }
                if b.window.0.is_zero() {
                    return Err(format!(
                        "rule {alert:?}: forecast_band window must be above zero"
                    ));
                }
                RuleExpr::ForecastBand {
                    quantile: b.quantile,
                    window: b.window,
                }
            }
            (None, None, Some(h)) => {
                if !(h.above.is_finite() && h.above > 0.0) {
                    return Err(format!(
                        "rule {alert:?}: headroom `above` {} is not a positive ratio",
                        h.above
                    ));
                }
                if h.window.0.is_zero() {
                    return Err(format!(
                        "rule {alert:?}: headroom window must be above zero"
                    ));
                }
                RuleExpr::Headroom {
                    above: h.above,
                    window: h.window,
                }
            }
            _ => {
                return Err(format!(
                    "rule {alert:?} needs exactly one of `expr` (SQL), `forecast_band` or `headroom`"
                ));
            }
        };
        for k in r.labels.keys().chain(r.annotations.keys()) {
            if !valid_label_name(k) {
                return Err(format!(
                    "rule {alert:?}: invalid label/annotation name {k:?}"
                ));
            }
        }
        Ok(Rule {
            alert,
            expr,
            for_: r.for_.unwrap_or_default(),
            labels: r.labels,
            annotations: r.annotations,
        })
    }
}

/// Why a rule file did not load.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct LoadError {
    /// The file (or the glob that matched nothing).
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column, when known.
    pub column: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.line, self.column) {
            (Some(l), Some(c)) => write!(f, "{}:{l}:{c}: {}", self.file, self.message),
            (Some(l), None) => write!(f, "{}:{l}: {}", self.file, self.message),
            _ => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

/// Parses one rule file's text.
pub fn parse(file: &Path, text: &str) -> Result<Vec<RuleGroup>, LoadError> {
    let err = |line, column, message| LoadError {
        file: file.display().to_string(),
        line,
        column,
        message,
    };
    let parsed: RuleFile = serde_yaml::from_str(text).map_err(|e| {
        let loc = e.location();
        // serde_yaml repeats the position in the message; keep the message alone.
        let msg = e.to_string();
        let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
        err(
            loc.as_ref().map(|l| l.line()),
            loc.as_ref().map(|l| l.column()),
            msg,
        )
    })?;
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for g in parsed.groups {
        let line = name_lines(text, &g.name).first().copied();
        if g.name.trim().is_empty() {
            return Err(err(line, None, "group with an empty name".into()));
        }
        if !seen.insert(g.name.clone()) {
            let second = name_lines(text, &g.name).get(1).copied();
            return Err(err(
                second.or(line),
                None,
                format!("group name {:?} repeated in the file", g.name),
            ));
        }
        if g.interval.is_some_and(|d| d.0 < Duration::from_millis(100)) {
            return Err(err(
                line,
                None,
                format!("group {:?}: interval below 100ms", g.name),
            ));
        }
        out.push(RuleGroup {
            name: g.name,
            file: file.to_path_buf(),
            interval: g.interval,
            rules: g.rules,
        });
    }
    Ok(out)
}

/// The 1-based lines of `name: <name>` entries (block style), to point at a group.
fn name_lines(text: &str, name: &str) -> Vec<usize> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| {
            let t = l.trim_start().trim_start_matches('-').trim_start();
            t.strip_prefix("name:").is_some_and(|v| {
                let v = v.trim();
                v.trim_matches(|c| c == '"' || c == '\'') == name
            })
        })
        .map(|(i, _)| i + 1)
        .collect()
}

/// Expands globs and loads every file. Broken files are reported and skipped; the rest load.
pub fn load(globs: &[String]) -> (Vec<RuleGroup>, Vec<LoadError>) {
    let mut groups = Vec::new();
    let mut errors = Vec::new();
    let mut files = std::collections::BTreeSet::new();
    for g in globs {
        match glob::glob(g) {
            Ok(paths) => {
                let before = files.len();
                for p in paths {
                    match p {
                        Ok(p) if p.is_file() => {
                            files.insert(p);
                        }
                        Ok(_) => {}
                        Err(e) => errors.push(LoadError {
                            file: e.path().display().to_string(),
                            line: None,
                            column: None,
                            message: e.error().to_string(),
                        }),
                    }
                }
                if files.len() == before {
                    errors.push(LoadError {
                        file: g.clone(),
                        line: None,
                        column: None,
                        message: "no rule file matches this pattern".into(),
                    });
                }
            }
            Err(e) => errors.push(LoadError {
                file: g.clone(),
                line: None,
                column: None,
                message: format!("invalid glob: {e}"),
            }),
        }
    }
    for f in files {
        match std::fs::read_to_string(&f) {
            Ok(text) => match parse(&f, &text) {
                Ok(gs) => groups.extend(gs),
                Err(e) => errors.push(e),
            },
            Err(e) => errors.push(LoadError {
                file: f.display().to_string(),
                line: None,
                column: None,
                message: format!("cannot read: {e}"),
            }),
        }
    }
    (groups, errors)
}

/// Replaces every `$__now` in `sql` with the evaluation time as a UTC nanosecond timestamp.
pub fn with_now(sql: &str, now_ms: super::Millis) -> String {
    sql.replace("$__now", &now_literal(now_ms))
}

/// `$__now`'s replacement: a `Timestamp(Nanosecond, "UTC")` literal, the type of `time` columns.
pub fn now_literal(now_ms: super::Millis) -> String {
    format!(
        "arrow_cast({}, 'Timestamp(Nanosecond, Some(\"UTC\"))')",
        i128::from(now_ms) * 1_000_000
    )
}

/// Expands `{{ $labels.name }}`, `{{ $value }}` and `{{ $externalLabels }}`-free templates: the
/// small subset of Prometheus' templating that annotations use in practice. Unknown actions are
/// left as written.
pub fn expand(template: &str, labels: &Labels, value: Option<f64>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let action = after[..end].trim();
        if action == "$value" || action == ".Value" {
            match value {
                Some(v) => out.push_str(&format_value(v)),
                None => out.push_str("<no value>"),
            }
        } else if let Some(name) = action
            .strip_prefix("$labels.")
            .or_else(|| action.strip_prefix(".Labels."))
        {
            out.push_str(labels.get(name).map_or("", String::as_str));
        } else {
            out.push_str(&rest[start..start + 2 + end + 2]);
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

/// A value as annotations show it: integers without a fraction, others with up to 4 decimals.
pub fn format_value(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
groups:
  - name: checkout
    interval: 30s
    rules:
      - alert: CheckoutSlow
        expr: SELECT service, 1.0 AS value
        for: 2m
        labels:
          severity: critical
        annotations:
          summary: "{{ $labels.service }} is slow ({{ $value }}s)"
          runbook_url: https://runbooks.example/checkout
      - alert: Other
        expr: SELECT 1 AS value
"#;

    #[test]
    fn good_file_parses() {
        let gs = parse(Path::new("a.yml"), GOOD).expect("parses");
        assert_eq!(gs.len(), 1);
        let g = &gs[0];
        assert_eq!(g.interval.map(PromDuration::ms), Some(30_000));
        assert_eq!(g.rules.len(), 2);
        assert_eq!(g.rules[0].for_.ms(), 120_000);
        assert_eq!(g.rules[1].for_.ms(), 0);
        assert_eq!(g.rules[0].labels["severity"], "critical");
        assert_eq!(g.rule_id(0), "checkout/CheckoutSlow");
    }

    #[test]
    fn errors_name_file_and_line() {
        let cases = [
            // unknown key on line 6
            (
                "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: SELECT 1\n        fro: 5m\n",
                6,
                "unknown field `fro`",
            ),
            // bad duration in the rule starting on line 4 (serde_yaml points value errors at
            // the enclosing rule)
            (
                "groups:\n  - name: g\n    rules:\n      - alert: A\n        for: 5 minutes\n        expr: SELECT 1\n",
                4,
                "invalid duration",
            ),
            // an unclosed `[` opened on line 3: reported where the input ends (line 4)
            ("groups:\n  - name: g\n    rules: [\n", 4, ""),
            // recording rule
            (
                "groups:\n  - name: g\n    rules:\n      - record: r\n        expr: SELECT 1\n",
                4,
                "recording rule",
            ),
            // two kinds in one rule
            (
                "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: SELECT 1\n        headroom: {above: 0.8}\n",
                4,
                "exactly one of",
            ),
            // a band that is not a quantile the plan has
            (
                "groups:\n  - name: g\n    rules:\n      - alert: A\n        forecast_band: {quantile: p75}\n",
                4,
                "p75",
            ),
            (
                "groups:\n  - name: g\n    rules:\n      - alert: A\n        headroom: {above: -1}\n",
                4,
                "positive ratio",
            ),
        ];
        for (text, line, needle) in cases {
            let e = parse(Path::new("rules/bad.yml"), text).expect_err(text);
            assert_eq!(e.file, "rules/bad.yml");
            assert!(e.message.contains(needle), "{e}");
            assert_eq!(e.line, Some(line), "{text}: {e}");
            assert!(e.to_string().starts_with("rules/bad.yml:"), "{e}");
        }
    }

    #[test]
    fn repeated_group_names_are_refused_with_the_second_line() {
        let text = "groups:\n  - name: g\n    rules: []\n  - name: g\n    rules: []\n";
        let e = parse(Path::new("x.yml"), text).expect_err("dup");
        assert!(e.message.contains("repeated"), "{e}");
        assert_eq!(e.line, Some(4));
    }

    #[test]
    fn one_broken_file_does_not_stop_the_others() {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::write(dir.path().join("a.yml"), GOOD).expect("w");
        std::fs::write(
            dir.path().join("b.yml"),
            "groups: [ {name: x, rules: [ {alert: }",
        )
        .expect("w");
        let pattern = format!("{}/*.yml", dir.path().display());
        let missing = format!("{}/none/*.yml", dir.path().display());
        let (groups, errors) = load(&[pattern, missing]);
        assert_eq!(groups.len(), 1);
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].message.contains("no rule file"), "{errors:?}");
        assert!(errors[1].file.ends_with("b.yml"), "{errors:?}");
        assert!(errors[1].line.is_some());
    }

    #[test]
    fn shipped_rule_files_parse() {
        let gs = parse(
            Path::new("rules/festival.yml"),
            include_str!("../../../rules/festival.yml"),
        )
        .expect("festival rules parse");
        let names: Vec<&str> = gs[0].rules.iter().map(|r| r.alert.as_str()).collect();
        assert_eq!(
            names,
            [
                "ErrorBudgetFastBurn",
                "ErrorBudgetSlowBurn",
                "LatencySLOFastBurn"
            ]
        );
        for r in gs[0].rules.iter() {
            let Some(sql) = r.expr.sql() else { continue };
            assert!(sql.contains("$__now"), "{} must be replayable", r.alert);
            assert!(r.annotations.contains_key("runbook_url"));
        }
        let cap: Vec<(&str, &RuleExpr)> = gs[1]
            .rules
            .iter()
            .map(|r| (r.alert.as_str(), &r.expr))
            .collect();
        assert!(matches!(
            cap[0],
            ("QpsAboveForecastBand", RuleExpr::ForecastBand { quantile, .. }) if quantile == "p99"
        ));
        assert!(matches!(
            cap[1],
            ("HeadroomLow", RuleExpr::Headroom { above, .. }) if *above == 0.85
        ));
        let am = crate::alert::route::AmConfig::parse(
            include_str!("../../../rules/receivers/alertmanager.yml"),
            &crate::alert::ssrf::Allow::default(),
        )
        .expect("example alertmanager config parses");
        assert_eq!(am.receivers.len(), 2);
    }

    #[test]
    fn templates_expand() {
        let labels: Labels = [("service".to_string(), "checkout".to_string())].into();
        assert_eq!(
            expand(
                "{{ $labels.service }} at {{$value}}, {{ $labels.none }}|{{ .Foo }}",
                &labels,
                Some(0.51234)
            ),
            "checkout at 0.5123, |{{ .Foo }}"
        );
        assert_eq!(expand("{{ $value }} {{", &labels, Some(3.0)), "3 {{");
    }
}
