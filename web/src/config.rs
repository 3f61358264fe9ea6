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
    }

    #[test]
    fn bad_config_names_the_problem() {
        let err =
            ConfigFile::parse("[storage]\nsnapshot_interval = \"10 parsecs\"").expect_err("bad");
        assert!(err.contains("10 parsecs"), "{err}");
        let err = ConfigFile::parse("[[tokens]]\nname='x'\ntoken='short'\nscopes=['read']")
            .expect_err("bad");
        assert!(err.contains("shorter than 16"), "{err}");
        let err = ConfigFile::parse("bogus = 1").expect_err("unknown key");
        assert!(err.contains("bogus"), "{err}");
    }
}
