//! The config file (TOML) and the settings derived from it and from the command line.

use crate::auth::Scope;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// The whole config file. Every section is optional; see `crest.example.toml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Bearer tokens.
    #[serde(default)]
    pub tokens: Vec<TokenConfig>,
    /// HTTP limits.
    #[serde(default)]
    pub http: HttpConfig,
    /// Storage settings.
    #[serde(default)]
    pub storage: StorageConfig,
    /// Ingest limits.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// Query limits.
    #[serde(default)]
    pub query: QueryLimitsConfig,
    /// Alerting.
    #[serde(default)]
    pub alerting: AlertingConfig,
    /// Prometheus scrape jobs (`[[scrape]]`).
    #[serde(default)]
    pub scrape: Vec<ScrapeConfig>,
    /// Milestones, capacity and plans.
    #[serde(default)]
    pub planning: PlanningConfig,
    /// Crest's own metrics written into its tables.
    #[serde(default)]
    pub self_monitoring: SelfMonitoringConfig,
}

/// `[self_monitoring]`: Crest's `/metrics` written into `crest_*` tables.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SelfMonitoringConfig {
    /// Every this long; `0s` turns it off.
    pub interval: HumanDuration,
}

impl Default for SelfMonitoringConfig {
    fn default() -> Self {
        Self {
            interval: HumanDuration(Duration::from_secs(15)),
        }
    }
}

/// `[planning]`: where demand and latency are read from, SLOs and the sizing policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PlanningConfig {
    /// Request counter (Prometheus convention: cumulative, one series per instance).
    pub requests_metric: String,
    /// Latency histogram base name; its `<name>_bucket` table with an `le` tag is read.
    pub latency_metric: String,
    /// Label naming the service.
    pub service_label: String,
    /// Label naming the instance.
    pub instance_label: String,
    /// Label holding the response code.
    pub code_label: String,
    /// Codes matching this regex count as errors.
    pub error_code_regex: String,
    /// Label that is `"true"` on synthetic (stress-test, drill) traffic.
    pub synthetic_label: String,
    /// Label naming the zone (cluster) an instance runs in.
    pub zone_label: String,
    /// Resolution of stress-test observations and actual peaks.
    pub step: HumanDuration,
    /// History a forecast is fitted on.
    pub history: HumanDuration,
    /// Highest planned load / capacity of an instance.
    pub utilisation_target: f64,
    /// Zones that may be lost with the rest still carrying the peak.
    pub zone_loss_tolerance: u32,
    /// Zones the fleet runs in; counted from `zone_label` when absent.
    pub zones: Option<u32>,
    /// Default p99 SLO, milliseconds.
    pub slo_p99_ms: f64,
    /// Default error budget (ratio).
    pub slo_error_ratio: f64,
    /// Milestones loaded (created or replaced by name) at start: JSON or YAML, a list of
    /// milestones or a `crest simulate` calendar file.
    pub milestones_file: Option<std::path::PathBuf>,
    /// Per-service overrides.
    pub services: BTreeMap<String, ServicePlanning>,
}

impl Default for PlanningConfig {
    fn default() -> Self {
        Self {
            requests_metric: "http_requests_total".into(),
            latency_metric: "http_request_duration_seconds".into(),
            service_label: "service".into(),
            instance_label: "instance".into(),
            code_label: "code".into(),
            error_code_regex: "^5".into(),
            synthetic_label: "synthetic".into(),
            zone_label: "cluster".into(),
            step: HumanDuration(Duration::from_secs(60)),
            history: HumanDuration(Duration::from_secs(56 * 86_400)),
            utilisation_target: 0.7,
            zone_loss_tolerance: 1,
            zones: None,
            slo_p99_ms: 100.0,
            slo_error_ratio: 0.01,
            milestones_file: None,
            services: BTreeMap::new(),
        }
    }
}

/// `[planning.services.<name>]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServicePlanning {
    /// p99 SLO, milliseconds.
    pub slo_p99_ms: Option<f64>,
    /// Error budget (ratio).
    pub slo_error_ratio: Option<f64>,
    /// Per-instance capacity, QPS, instead of the one measured by stress tests.
    pub per_instance_qps: Option<f64>,
    /// Utilisation target for this service.
    pub utilisation_target: Option<f64>,
}

impl PlanningConfig {
    /// The SLO of `service`.
    pub fn slo(&self, service: &str) -> forecast::capacity::Slo {
        let s = self.services.get(service);
        forecast::capacity::Slo {
            p99_seconds: s.and_then(|s| s.slo_p99_ms).unwrap_or(self.slo_p99_ms) / 1e3,
            error_ratio: s
                .and_then(|s| s.slo_error_ratio)
                .unwrap_or(self.slo_error_ratio),
        }
    }

    fn validate(&self) -> Result<(), String> {
        regex::Regex::new(&self.error_code_regex)
            .map_err(|e| format!("[planning] error_code_regex: {e}"))?;
        if self.step.0.as_secs() == 0 {
            return Err("[planning] step must be at least 1s".into());
        }
        if self.history.0.as_secs() < 2 * 86_400 {
            return Err("[planning] history must be at least 2d".into());
        }
        let policy = forecast::plan::PlanPolicy {
            utilisation_target: self.utilisation_target,
            zones: self.zones.unwrap_or(self.zone_loss_tolerance + 1),
            zone_loss_tolerance: self.zone_loss_tolerance,
        };
        policy.check().map_err(|e| format!("[planning] {e}"))?;
        for (name, s) in &self.services {
            self.slo(name)
                .check()
                .map_err(|e| format!("[planning.services.{name:?}] {e}"))?;
            if let Some(c) = s.per_instance_qps
                && !(c.is_finite() && c > 0.0)
            {
                return Err(format!(
                    "[planning.services.{name:?}] per_instance_qps {c} is not positive"
                ));
            }
            if let Some(u) = s.utilisation_target
                && !(u > 0.0 && u <= 1.0)
            {
                return Err(format!(
                    "[planning.services.{name:?}] utilisation_target {u} is not in (0, 1]"
                ));
            }
        }
        self.slo("")
            .check()
            .map_err(|e| format!("[planning] {e}"))?;
        Ok(())
    }
}

/// One Prometheus scrape job: static targets scraped every `interval`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScrapeConfig {
    /// The `job` label of every series scraped.
    pub job_name: String,
    /// `host:port` of each target (plain HTTP); each becomes an `instance` label.
    pub targets: Vec<String>,
    /// Path scraped on every target (default `/metrics`).
    #[serde(default = "default_metrics_path")]
    pub metrics_path: String,
    /// Time between scrapes (default 15s).
    #[serde(default = "default_scrape_interval")]
    pub interval: HumanDuration,
    /// Per-scrape timeout (default 10s, or the interval if that is shorter); at most the interval.
    pub timeout: Option<HumanDuration>,
    /// Keep the target's own `job`/`instance` labels on conflict instead of renaming them
    /// `exported_job`/`exported_instance` (default false).
    #[serde(default)]
    pub honor_labels: bool,
    /// Rules applied in order to every scraped series (after `job`/`instance` are added).
    #[serde(default)]
    pub metric_relabel: Vec<RelabelRule>,
}

fn default_metrics_path() -> String {
    "/metrics".to_string()
}

fn default_scrape_interval() -> HumanDuration {
    HumanDuration(Duration::from_secs(15))
}

impl ScrapeConfig {
    /// The effective scrape timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
            .map_or_else(|| Duration::from_secs(10).min(self.interval.0), |t| t.0)
    }

    fn validate(&self) -> Result<(), String> {
        let job = &self.job_name;
        if job.is_empty() {
            return Err("a [[scrape]] job has an empty job_name".to_string());
        }
        if self.targets.is_empty() {
            return Err(format!("scrape job {job:?} has no targets"));
        }
        for t in &self.targets {
            let ok = !t.contains("://")
                && !t.contains('/')
                && t.rsplit_once(':')
                    .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
            if !ok {
                return Err(format!(
                    "scrape job {job:?}: target {t:?} is not host:port (e.g. \"127.0.0.1:9100\")"
                ));
            }
        }
        if !self.metrics_path.starts_with('/') {
            return Err(format!(
                "scrape job {job:?}: metrics_path {:?} must start with '/'",
                self.metrics_path
            ));
        }
        if self.interval.0.is_zero() {
            return Err(format!("scrape job {job:?}: interval must be above zero"));
        }
        let timeout = self.timeout();
        if timeout.is_zero() {
            return Err(format!("scrape job {job:?}: timeout must be above zero"));
        }
        if timeout > self.interval.0 {
            return Err(format!(
                "scrape job {job:?}: timeout {timeout:?} exceeds the interval {:?}",
                self.interval.0
            ));
        }
        for (i, rule) in self.metric_relabel.iter().enumerate() {
            rule.validate()
                .map_err(|e| format!("scrape job {job:?}: metric_relabel rule {}: {e}", i + 1))?;
        }
        Ok(())
    }
}

/// What a relabel rule does when its regex matches the joined source labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RelabelAction {
    /// Set `target_label` to `replacement` (with `$1`-style groups); an empty result removes it.
    #[default]
    Replace,
    /// Keep only matching series.
    Keep,
    /// Drop matching series.
    Drop,
}

/// One `metric_relabel` rule, a subset of Prometheus' `metric_relabel_configs`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelabelRule {
    /// Labels whose values are joined with `separator` (`__name__` is the metric name).
    #[serde(default = "default_source_labels")]
    pub source_labels: Vec<String>,
    /// Joins the source label values (default `;`).
    #[serde(default = "default_separator")]
    pub separator: String,
    /// Regex matched against the whole joined value (anchored; default `(.*)`).
    #[serde(default = "default_regex")]
    pub regex: String,
    /// `replace` (default), `keep` or `drop`.
    #[serde(default)]
    pub action: RelabelAction,
    /// The label `replace` writes.
    pub target_label: Option<String>,
    /// What `replace` writes (default `$1`).
    #[serde(default = "default_replacement")]
    pub replacement: String,
}

fn default_source_labels() -> Vec<String> {
    vec!["__name__".to_string()]
}

fn default_separator() -> String {
    ";".to_string()
}

fn default_regex() -> String {
    "(.*)".to_string()
}

fn default_replacement() -> String {
    "$1".to_string()
}

impl RelabelRule {
    /// The rule's regex, anchored at both ends as Prometheus does.
    pub fn compiled(&self) -> Result<regex::Regex, String> {
        regex::Regex::new(&format!("^(?:{})$", self.regex))
            .map_err(|e| format!("invalid regex {:?}: {e}", self.regex))
    }

    fn validate(&self) -> Result<(), String> {
        self.compiled()?;
        if self.source_labels.is_empty() {
            return Err("source_labels is empty".to_string());
        }
        match (self.action, &self.target_label) {
            (RelabelAction::Replace, None) => {
                Err("action \"replace\" needs a target_label".to_string())
            }
            (RelabelAction::Replace, Some(t))
                if t.is_empty()
                    || !t.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    || t.starts_with(|c: char| c.is_ascii_digit()) =>
            {
                Err(format!("target_label {t:?} is not a valid label name"))
            }
            (RelabelAction::Keep | RelabelAction::Drop, Some(_)) => Err(format!(
                "target_label is only used by action \"replace\", not {:?}",
                self.action
            )),
            _ => Ok(()),
        }
    }
}

/// Alerting settings; the `crest serve` flags add to these.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertingConfig {
    /// Rule file globs.
    pub rules: Vec<String>,
    /// Receivers and routes in Alertmanager's YAML shape.
    pub alertmanager_config: Option<std::path::PathBuf>,
    /// CIDRs webhooks may target although private, loopback or link-local.
    pub webhook_allow: Vec<String>,
    /// Interval of rule groups that set none (default 30s).
    pub eval_interval: Option<HumanDuration>,
    /// URL Crest is reached at (for links in notifications).
    pub external_url: Option<String>,
}

/// One token.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// A name for logs (never the secret).
    pub name: String,
    /// The secret clients send as `Authorization: Bearer <token>`.
    pub token: String,
    /// What it may do: any of `read`, `write`, `admin`.
    pub scopes: Vec<Scope>,
}

/// HTTP limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Largest request body as sent (compressed), e.g. "16MiB".
    pub max_body: ByteSize,
    /// Largest request body after decompression.
    pub max_decoded: ByteSize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            max_body: ByteSize(16 << 20),
            max_decoded: ByteSize(64 << 20),
        }
    }
}

/// Storage settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// How often the buffer is persisted to Parquet, e.g. "60s".
    pub snapshot_interval: HumanDuration,
    /// Keep data this long (all tables), e.g. "30d"; absent keeps forever.
    pub retention: Option<HumanDuration>,
    /// Per-table retention overrides.
    pub table_retention: BTreeMap<String, HumanDuration>,
    /// Refuse writes with 503 while the write buffer holds more than this.
    pub max_buffer: ByteSize,
    /// WAL segment size.
    pub wal_segment: ByteSize,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            snapshot_interval: HumanDuration(Duration::from_secs(60)),
            retention: None,
            table_retention: BTreeMap::new(),
            max_buffer: ByteSize(2 << 30),
            wal_segment: ByteSize(32 << 20),
        }
    }
}

/// Ingest limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Most tags (labels) per point.
    pub max_tags: usize,
    /// Longest table, tag or field name in bytes.
    pub max_name_len: usize,
    /// Longest tag (label) value in bytes.
    pub max_tag_value_len: usize,
    /// Most active series per table.
    pub max_series_per_table: usize,
    /// Ingest rate limit per token, in points per second (0: no limit); over it, writes get
    /// 429 with Retry-After.
    pub max_points_per_second: u64,
    /// Burst allowance of the rate limit in points (default: one second's worth).
    pub burst_points: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        let d = ingest::db::Limits::default();
        Self {
            max_tags: d.max_tags,
            max_name_len: d.max_name_len,
            max_tag_value_len: d.max_tag_value_len,
            max_series_per_table: d.max_series_per_table,
            max_points_per_second: 0,
            burst_points: 0,
        }
    }
}

/// Query limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueryLimitsConfig {
    /// Per-query memory pool.
    pub memory: ByteSize,
    /// Per-query timeout.
    pub timeout: HumanDuration,
    /// Queries at once.
    pub max_concurrent: usize,
}

impl Default for QueryLimitsConfig {
    fn default() -> Self {
        let d = query::QueryConfig::default();
        Self {
            memory: ByteSize(d.memory_limit),
            timeout: HumanDuration(d.timeout),
            max_concurrent: d.max_concurrent,
        }
    }
}

impl ConfigFile {
    /// Reads and validates a config file; the error names the file and the problem.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read config file {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| anyhow::anyhow!("config file {}: {e}", path.display()))
    }

    /// Parses config text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let cfg: Self = toml::from_str(text).map_err(|e| e.to_string())?;
        for t in &cfg.tokens {
            if t.token.len() < 16 {
                return Err(format!("token {:?} is shorter than 16 characters", t.name));
            }
            if t.scopes.is_empty() {
                return Err(format!("token {:?} has no scopes", t.name));
            }
        }
        if cfg.storage.snapshot_interval.0.is_zero() {
            return Err("[storage] snapshot_interval must be above zero".to_string());
        }
        cfg.planning.validate()?;
        let mut jobs = std::collections::BTreeSet::new();
        for job in &cfg.scrape {
            job.validate()?;
            if !jobs.insert(job.job_name.as_str()) {
                return Err(format!("scrape job {:?} is defined twice", job.job_name));
            }
        }
        Ok(cfg)
    }
}

/// A byte size written as `512`, `64KiB`, `16MiB`, `2GiB` (or KB/MB/GB, decimal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub usize);

impl std::str::FromStr for ByteSize {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (num, unit) = s.split_at(split);
        let n: usize = num
            .parse()
            .map_err(|_| format!("invalid size {s:?}: expected e.g. 16MiB"))?;
        let mult: usize = match unit.trim() {
            "" | "B" => 1,
            "KiB" => 1 << 10,
            "MiB" => 1 << 20,
            "GiB" => 1 << 30,
            "KB" => 1_000,
            "MB" => 1_000_000,
            "GB" => 1_000_000_000,
            u => {
                return Err(format!(
                    "invalid size unit {u:?} in {s:?}: use B, KiB, MiB, GiB, KB, MB or GB"
                ));
            }
        };
        n.checked_mul(mult)
            .map(ByteSize)
            .ok_or_else(|| format!("size {s:?} is too large"))
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A duration written as `500ms`, `30s`, `5m`, `12h`, `30d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl std::str::FromStr for HumanDuration {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (num, unit) = s.split_at(split);
        let n: u64 = num
            .parse()
            .map_err(|_| format!("invalid duration {s:?}: expected e.g. 30s"))?;
        let d = match unit {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n * 60),
            "h" => Duration::from_secs(n * 3_600),
            "d" => Duration::from_secs(n * 86_400),
            "w" => Duration::from_secs(n * 7 * 86_400),
            u => {
                return Err(format!(
                    "invalid duration unit {u:?} in {s:?}: use ms, s, m, h, d or w"
                ));
            }
        };
        Ok(HumanDuration(d))
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The documented example must keep parsing, with every section meaning what it says.
    #[test]
    fn example_config_parses() {
        let text = include_str!("../../crest.example.toml");
        let cfg = ConfigFile::parse(text).expect("example parses");
        assert_eq!(cfg.tokens.len(), 3);
        assert_eq!(cfg.http.max_body, ByteSize(16 << 20));
        assert_eq!(
            cfg.storage.retention,
            Some(HumanDuration(Duration::from_secs(90 * 86_400)))
        );
        assert_eq!(
            cfg.storage.table_retention["spans"].0,
            Duration::from_secs(7 * 86_400)
        );
        assert_eq!(cfg.query.timeout.0, Duration::from_secs(30));
        assert_eq!(cfg.planning.requests_metric, "http_requests_total");
        assert_eq!(cfg.planning.slo("anything").p99_seconds, 0.1);
        assert_eq!(cfg.planning.history.0, Duration::from_secs(56 * 86_400));
    }

    #[test]
    fn planning_settings_are_checked() {
        let cfg = ConfigFile::parse(
            "[planning]\nslo_p99_ms = 150\n[planning.services.grab]\nslo_p99_ms = 200\nper_instance_qps = 1600\n",
        )
        .expect("parses");
        assert_eq!(cfg.planning.slo("grab").p99_seconds, 0.2);
        assert_eq!(cfg.planning.slo("other").p99_seconds, 0.15);
        for (text, want) in [
            ("[planning]\nerror_code_regex = '('", "error_code_regex"),
            ("[planning]\nutilisation_target = 1.5", "utilisation_target"),
            (
                "[planning]\nzones = 2\nzone_loss_tolerance = 2",
                "zone_loss_tolerance",
            ),
            ("[planning]\nhistory = '1h'", "history"),
            (
                "[planning.services.x]\nper_instance_qps = -1",
                "per_instance_qps",
            ),
            (
                "[planning.services.x]\nslo_error_ratio = 2",
                "slo.error_ratio",
            ),
        ] {
            let err = ConfigFile::parse(text).expect_err(text);
            assert!(err.contains(want), "{text}: {err}");
        }
    }

    #[test]
    fn bad_config_names_the_problem() {
        let err =
            ConfigFile::parse("[storage]\nsnapshot_interval = \"10 parsecs\"").expect_err("bad");
        assert!(err.contains("10 parsecs"), "{err}");
        let err = ConfigFile::parse("[[tokens]]\nname='x'\ntoken='short'\nscopes=['read']")
            .expect_err("bad");
        assert!(err.contains("shorter than 16"), "{err}");
        let err = ConfigFile::parse("[storage]\nsnapshot_interval = \"0s\"").expect_err("zero");
        assert!(
            err.contains("snapshot_interval must be above zero"),
            "{err}"
        );
        let err = ConfigFile::parse("bogus = 1").expect_err("unknown key");
        assert!(err.contains("bogus"), "{err}");
    }

    #[test]
    fn scrape_jobs_parse_with_defaults() {
        let cfg = ConfigFile::parse(
            "[[scrape]]\njob_name = 'node'\ntargets = ['127.0.0.1:9100', 'localhost:9101']\n\
             [[scrape.metric_relabel]]\nsource_labels = ['__name__']\nregex = 'go_.*'\naction = 'drop'\n",
        )
        .expect("parses");
        let job = &cfg.scrape[0];
        assert_eq!(job.metrics_path, "/metrics");
        assert_eq!(job.interval.0, Duration::from_secs(15));
        assert_eq!(job.timeout(), Duration::from_secs(10));
        assert!(!job.honor_labels);
        assert_eq!(job.metric_relabel[0].action, RelabelAction::Drop);
        let cfg = ConfigFile::parse("[[scrape]]\njob_name='j'\ntargets=['h:1']\ninterval='1s'")
            .expect("parses");
        assert_eq!(cfg.scrape[0].timeout(), Duration::from_secs(1));
    }

    #[test]
    fn bad_scrape_jobs_name_the_problem() {
        let cases = [
            ("job_name='j'\ntargets=[]", "no targets"),
            (
                "job_name='j'\ntargets=['http://h:1/metrics']",
                "not host:port",
            ),
            (
                "job_name='j'\ntargets=['h:1']\nmetrics_path='metrics'",
                "must start with",
            ),
            (
                "job_name='j'\ntargets=['h:1']\ninterval='5s'\ntimeout='10s'",
                "exceeds the interval",
            ),
            ("job_name='j'\ntargets=['h:1']\nbogus=1", "bogus"),
            (
                "job_name='j'\ntargets=['h:1']\nmetric_relabel=[{regex='(', action='drop'}]",
                "invalid regex",
            ),
            (
                "job_name='j'\ntargets=['h:1']\nmetric_relabel=[{action='replace'}]",
                "needs a target_label",
            ),
            (
                "job_name='j'\ntargets=['h:1']\nmetric_relabel=[{action='explode'}]",
                "explode",
            ),
        ];
        for (body, want) in cases {
            let err = ConfigFile::parse(&format!("[[scrape]]\n{body}")).expect_err(body);
            assert!(err.contains(want), "{body}: {err}");
        }
        let err = ConfigFile::parse(
            "[[scrape]]\njob_name='j'\ntargets=['h:1']\n[[scrape]]\njob_name='j'\ntargets=['h:2']",
        )
        .expect_err("duplicate");
        assert!(err.contains("defined twice"), "{err}");
    }
}
