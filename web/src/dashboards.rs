//! Dashboards provisioned from `dashboards/*.yaml` at start.
//!
//! A dashboard is a title, a default time range and refresh, variables (each a SQL query whose
//! first column lists the choices) and panels (each a SQL query drawn as a time series, stat,
//! bar chart, table or heatmap). A broken file is reported with its file and line and the others
//! still load. Queries are expanded here, on the server, so escaping lives in one place:
//! `$__timeFilter` (the time range on the `time` column, or `$__timeFilter(col)`), `$__from` and
//! `$__to` (timestamps), `$__interval` (`'<n> seconds'`, the range over the panel's pixel width,
//! at least `min_interval`), and `$name` / `${name}` for each variable (its value inside a
//! single-quoted SQL string, quotes doubled; a multi-value variable becomes `'a', 'b'`, for
//! `IN (...)`).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// How a panel is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PanelKind {
    /// Lines over time: a `time` column, an optional series column, numeric values.
    Timeseries,
    /// One number: the last row's value.
    Stat,
    /// Bars: a label column and values.
    Bar,
    /// Rows as they come.
    Table,
    /// Latency buckets over time: `time`, `le` and a count.
    Heatmap,
}

/// A variable: choices from SQL.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variable {
    /// Referenced as `$name`.
    pub name: String,
    /// Shown as.
    #[serde(default)]
    pub label: Option<String>,
    /// SQL whose first column lists the choices (may use `$__timeFilter`).
    pub query: String,
    /// Several values at once.
    #[serde(default)]
    pub multi: bool,
    /// Default value (else the first choice).
    #[serde(default)]
    pub default: Option<String>,
}

/// A panel.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Panel {
    /// Title.
    pub title: String,
    /// How it is drawn.
    #[serde(rename = "type")]
    pub kind: PanelKind,
    /// The query.
    pub sql: String,
    /// Unit of the values: `reqps`, `s`, `ms`, `percent`, `ratio`, `bytes`, `short`...
    #[serde(default)]
    pub unit: Option<String>,
    /// Width in grid columns (of 24).
    #[serde(default = "default_width")]
    pub width: u8,
    /// Height in rows of 30 px.
    #[serde(default = "default_height")]
    pub height: u8,
    /// Help text.
    #[serde(default)]
    pub description: Option<String>,
}

fn default_width() -> u8 {
    12
}

fn default_height() -> u8 {
    8
}

/// A dashboard file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dashboard {
    /// Stable id used in URLs (default: the file name without extension).
    #[serde(default)]
    pub uid: String,
    /// Title.
    pub title: String,
    /// Default range start, e.g. `now-24h`.
    #[serde(default = "default_from")]
    pub from: String,
    /// Default range end.
    #[serde(default = "default_to")]
    pub to: String,
    /// Default auto-refresh, e.g. `30s` (none when absent).
    #[serde(default)]
    pub refresh: Option<String>,
    /// Variables.
    #[serde(default)]
    pub variables: Vec<Variable>,
    /// Panels, laid out left to right, top to bottom.
    pub panels: Vec<Panel>,
}

fn default_from() -> String {
    "now-6h".into()
}

fn default_to() -> String {
    "now".into()
}

/// A file that did not load.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct LoadError {
    /// The file.
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// Why.
    pub message: String,
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{l}: {}", self.file, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

/// Every dashboard that loaded, and the files that did not.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Dashboards {
    /// By uid.
    pub dashboards: BTreeMap<String, Dashboard>,
    /// Files that failed.
    pub errors: Vec<LoadError>,
}

/// Parses one file's text.
pub fn parse(file: &Path, text: &str) -> Result<Dashboard, LoadError> {
    let name = file.display().to_string();
    let err = |line: Option<usize>, message: String| LoadError {
        file: name.clone(),
        line,
        message,
    };
    let mut d: Dashboard = serde_yaml::from_str(text)
        .map_err(|e| err(e.location().map(|l| l.line()), e.to_string()))?;
    let line_of = |needle: &str| text.lines().position(|l| l.contains(needle)).map(|i| i + 1);
    if d.uid.is_empty() {
        d.uid = file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
    }
    if !d
        .uid
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        || d.uid.is_empty()
    {
        return Err(err(
            line_of("uid:"),
            format!("uid {:?} may hold only letters, digits, - and _", d.uid),
        ));
    }
    if d.panels.is_empty() {
        return Err(err(line_of("panels:"), "a dashboard needs panels".into()));
    }
    let mut names = std::collections::BTreeSet::new();
    for v in &d.variables {
        if v.name.is_empty()
            || !v
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
            || v.name.starts_with("__")
        {
            return Err(err(
                line_of(&format!("name: {}", v.name)),
                format!(
                    "variable name {:?} must be letters, digits and _ (not starting with __)",
                    v.name
                ),
            ));
        }
        if !names.insert(v.name.as_str()) {
            return Err(err(
                line_of(&format!("name: {}", v.name)),
                format!("variable {:?} is defined twice", v.name),
            ));
        }
    }
    for p in &d.panels {
        if p.width == 0 || p.width > 24 || p.height == 0 {
            return Err(err(
                line_of(&format!("title: {}", p.title)),
                format!(
                    "panel {:?}: width must be 1 to 24 and height above 0",
                    p.title
                ),
            ));
        }
        for r in references(&p.sql) {
            if !r.starts_with("__") && !names.contains(r.as_str()) {
                return Err(err(
                    line_of(&format!("${r}")).or_else(|| line_of(&format!("title: {}", p.title))),
                    format!("panel {:?} uses ${r}, which is not a variable", p.title),
                ));
            }
        }
    }
    for (field, value) in [("from", &d.from), ("to", &d.to)] {
        if let Err(e) = parse_time(value, 0) {
            return Err(err(line_of(&format!("{field}:")), e));
        }
    }
    Ok(d)
}

/// Variables a query references (`$name` or `${name}`).
pub fn references(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let b = sql.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' {
            let braced = b.get(i + 1) == Some(&b'{');
            let start = i + 1 + usize::from(braced);
            let mut j = start;
            while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
                j += 1;
            }
            if j > start {
                out.push(sql[start..j].to_string());
            }
            i = j.max(i + 1);
        } else {
            i += 1;
        }
    }
    out
}

/// Loads every `*.yaml` / `*.yml` in `dir`, sorted by name.
pub fn load_dir(dir: &Path) -> Dashboards {
    let mut out = Dashboards::default();
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
            .collect(),
        Err(e) => {
            out.errors.push(LoadError {
                file: dir.display().to_string(),
                line: None,
                message: format!("cannot read the dashboards folder: {e}"),
            });
            return out;
        }
    };
    files.sort();
    for f in files {
        let loaded = std::fs::read_to_string(&f)
            .map_err(|e| LoadError {
                file: f.display().to_string(),
                line: None,
                message: e.to_string(),
            })
            .and_then(|text| parse(&f, &text));
        match loaded {
            Ok(d) => {
                if out.dashboards.contains_key(&d.uid) {
                    out.errors.push(LoadError {
                        file: f.display().to_string(),
                        line: None,
                        message: format!("uid {:?} is used by another dashboard", d.uid),
                    });
                } else {
                    out.dashboards.insert(d.uid.clone(), d);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "Dashboard not loaded.");
                out.errors.push(e);
            }
        }
    }
    out
}

/// A time in a range: `now`, `now-6h`, `now-30m`, RFC 3339, or Unix milliseconds. Returns Unix
/// milliseconds.
pub fn parse_time(s: &str, now_ms: i64) -> Result<i64, String> {
    let s = s.trim();
    if s == "now" {
        return Ok(now_ms);
    }
    if let Some(rest) = s.strip_prefix("now-") {
        let (num, unit) = rest.split_at(
            rest.find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len()),
        );
        let n: i64 = num
            .parse()
            .map_err(|_| format!("{s:?}: expected now-<number><unit>, e.g. now-6h"))?;
        let ms = match unit {
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 604_800_000,
            _ => return Err(format!("{s:?}: unit must be s, m, h, d or w")),
        };
        return Ok(now_ms - n * ms);
    }
    if let Ok(n) = s.parse::<i64>() {
        return Ok(n);
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|d| d.timestamp_millis())
        .map_err(|_| format!("{s:?} is not now, now-<n><unit>, RFC 3339 or Unix milliseconds"))
}

/// What a query is expanded with.
#[derive(Debug, Clone)]
pub struct Context {
    /// Range start, Unix ms.
    pub from_ms: i64,
    /// Range end, Unix ms.
    pub to_ms: i64,
    /// Bucket width, seconds.
    pub interval_s: i64,
    /// Variable values.
    pub vars: BTreeMap<String, Vec<String>>,
}

/// Bucket width for a range drawn over `pixels`: the range / pixels, rounded up to a "nice"
/// step, at least one second.
pub fn interval_for(from_ms: i64, to_ms: i64, pixels: u32) -> i64 {
    let raw = ((to_ms - from_ms).max(1000) / 1000) as f64 / f64::from(pixels.max(1));
    const NICE: [i64; 16] = [
        1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 86400,
    ];
    NICE.iter()
        .copied()
        .find(|n| *n as f64 >= raw)
        .unwrap_or(86400)
}

fn quote(v: &str) -> String {
    format!("'{}'", v.replace('\'', "''"))
}

/// Expands a panel or variable query.
pub fn expand(sql: &str, ctx: &Context) -> Result<String, String> {
    let ts = |ms: i64| format!("to_timestamp_millis({ms})");
    let mut out = String::with_capacity(sql.len() + 64);
    let b = sql.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'$' {
            let next = sql[i..].find('$').map_or(sql.len(), |k| i + k);
            out.push_str(&sql[i..next]);
            i = next;
            continue;
        }
        let braced = b.get(i + 1) == Some(&b'{');
        let start = i + 1 + usize::from(braced);
        let mut j = start;
        while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
            j += 1;
        }
        let name = &sql[start..j];
        if braced {
            if b.get(j) != Some(&b'}') {
                return Err(format!("unclosed ${{ at byte {i}"));
            }
            j += 1;
        }
        match name {
            "" => out.push('$'),
            "__timeFilter" => {
                let mut col = "time".to_string();
                if b.get(j) == Some(&b'(') {
                    let close = sql[j..].find(')').ok_or("unclosed $__timeFilter(")?;
                    col = sql[j + 1..j + close].trim().to_string();
                    j += close + 1;
                }
                out.push_str(&format!(
                    "{col} >= {} AND {col} <= {}",
                    ts(ctx.from_ms),
                    ts(ctx.to_ms)
                ));
            }
            "__from" => out.push_str(&ts(ctx.from_ms)),
            "__to" => out.push_str(&ts(ctx.to_ms)),
            "__interval" => out.push_str(&format!("'{} seconds'", ctx.interval_s)),
            "__interval_s" => out.push_str(&ctx.interval_s.to_string()),
            v => match ctx.vars.get(v) {
                Some(values) if !values.is_empty() => out.push_str(
                    &values
                        .iter()
                        .map(|x| quote(x))
                        .collect::<Vec<_>>()
                        .join(", "),
                ),
                Some(_) => out.push_str("NULL"),
                None => return Err(format!("${v} is not a variable of this dashboard")),
            },
        }
        i = j;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Context {
        Context {
            from_ms: 1_000,
            to_ms: 61_000,
            interval_s: 15,
            vars: BTreeMap::from([
                ("service".into(), vec!["o'neil".into()]),
                ("cluster".into(), vec!["c1".into(), "c2".into()]),
            ]),
        }
    }

    #[test]
    fn expansion_escapes_and_fills_every_macro() {
        let sql = "SELECT date_bin(INTERVAL $__interval, time) AS t FROM x WHERE $__timeFilter AND service = $service AND \"cluster\" IN (${cluster}) AND ts2 < $__to AND $__timeFilter(t2)";
        let e = expand(sql, &ctx()).expect("expands");
        assert_eq!(
            e,
            "SELECT date_bin(INTERVAL '15 seconds', time) AS t FROM x WHERE time >= to_timestamp_millis(1000) AND time <= to_timestamp_millis(61000) AND service = 'o''neil' AND \"cluster\" IN ('c1', 'c2') AND ts2 < to_timestamp_millis(61000) AND t2 >= to_timestamp_millis(1000) AND t2 <= to_timestamp_millis(61000)"
        );
        assert!(expand("SELECT $nope", &ctx()).unwrap_err().contains("nope"));
        assert_eq!(references("a $b ${c} $__x $"), ["b", "c", "__x"]);
    }

    #[test]
    fn intervals_are_nice() {
        assert_eq!(interval_for(0, 86_400_000, 1000), 120);
        assert_eq!(interval_for(0, 3_600_000, 1200), 5);
        assert_eq!(interval_for(0, 10, 1000), 1);
        assert_eq!(parse_time("now-6h", 7 * 3_600_000).expect("t"), 3_600_000);
        assert!(parse_time("yesterday", 0).is_err());
    }

    #[test]
    fn broken_files_name_file_and_line_and_the_rest_load() {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::write(
            dir.path().join("a.yaml"),
            "title: A\npanels:\n  - title: p\n    type: stat\n    sql: SELECT 1 AS value\n",
        )
        .expect("write");
        std::fs::write(
            dir.path().join("b.yaml"),
            "title: B\npanels:\n  - title: p\n    type: pie\n    sql: SELECT 1\n",
        )
        .expect("write");
        std::fs::write(
            dir.path().join("c.yaml"),
            "title: C\npanels:\n  - title: p\n    type: table\n    sql: SELECT $missing\n",
        )
        .expect("write");
        let d = load_dir(dir.path());
        assert_eq!(d.dashboards.keys().collect::<Vec<_>>(), ["a"]);
        assert_eq!(d.errors.len(), 2);
        assert!(d.errors[0].file.ends_with("b.yaml"));
        assert_eq!(d.errors[0].line, Some(4), "{}", d.errors[0]);
        assert!(d.errors[0].message.contains("pie"));
        assert!(d.errors[1].message.contains("$missing"));
        assert_eq!(d.errors[1].line, Some(5));
    }

    #[test]
    fn shipped_dashboards_load() {
        let d = load_dir(Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../dashboards"
        )));
        assert!(d.errors.is_empty(), "{:?}", d.errors);
        for uid in [
            "festival-overview",
            "service-red",
            "capacity",
            "crest-health",
        ] {
            assert!(d.dashboards.contains_key(uid), "{uid} missing");
        }
        assert!(d.dashboards["festival-overview"].panels.len() >= 12);
    }
}
