//! `crest backtest`: the forecast accuracy benchmark on any CSV.
//!
//! Reads a time and a value column, prepares a regular series (duplicates averaged, short gaps
//! filled, optional `--from`/`--to` slice), runs the rolling-origin backtest of the `forecast`
//! crate for each requested model, and prints one row per model run as CSV or JSON on stdout.
//! Progress goes to stderr.

use anyhow::{Context, bail};
use chrono::{DateTime, NaiveDate, NaiveDateTime};
use clap::{Args, ValueEnum};
use forecast::backtest::{BacktestConfig, BacktestRow, required_len};
use forecast::{ForecasterConfig, ModelChoice, PrepareOptions, TimeWindow};
use std::io::Write;
use std::path::PathBuf;

/// Output format of `crest backtest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A header and one line per model run.
    Csv,
    /// An array of objects with the same fields.
    Json,
}

/// `crest backtest` flags.
#[derive(Debug, Args)]
pub struct BacktestArgs {
    /// CSV file with a header row.
    #[arg(long)]
    pub csv: PathBuf,
    /// Column holding timestamps: `YYYY-MM-DD HH:MM[:SS]`, RFC 3339, a date, or Unix seconds.
    #[arg(long)]
    pub time_column: String,
    /// Column holding the values. Empty, `NA` and `NaN` cells count as missing points.
    #[arg(long)]
    pub value_column: String,
    /// Seasonal periods in steps, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "24,168")]
    pub seasons: Vec<usize>,
    /// Steps per test window (and forecast horizon).
    #[arg(long, default_value_t = 168)]
    pub horizon: usize,
    /// Test windows tiling the end of the series.
    #[arg(long, default_value_t = 8)]
    pub windows: usize,
    /// Models, comma-separated: auto (Crest's own choice), snaive (longest season),
    /// snaive<period>, mstl (AutoETS trend), mstl_fast (grid-fitted ETS trend), regression,
    /// ensemble (mean of snaive and mstl). One output row each.
    #[arg(long, value_delimiter = ',', default_value = "auto")]
    pub model: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Csv)]
    pub format: Format,
    /// Points each fit sees (the most recent before the cut-off).
    #[arg(long, default_value_t = 1344)]
    pub train_len: usize,
    /// Inner backtest windows before each cut-off, for model choice and interval calibration.
    #[arg(long, default_value_t = 8)]
    pub inner_windows: usize,
    /// Neighbouring phases (hours of the shortest season) on each side whose residuals are
    /// pooled with a phase's own when calibrating intervals.
    #[arg(long, default_value_t = 1)]
    pub calibration_spread: usize,
    /// Name in the `series` column; defaults to the file name without extension.
    #[arg(long)]
    pub series: Option<String>,
    /// Ignore points before this time (same formats as the time column).
    #[arg(long)]
    pub from: Option<String>,
    /// Ignore points after this time (inclusive).
    #[arg(long)]
    pub to: Option<String>,
    /// Longest run of missing points filled linearly; longer gaps are an error.
    #[arg(long, default_value_t = 12)]
    pub max_gap: usize,
    /// Column marking event days (holidays): a cell other than empty, `None`, `0` or `false`
    /// makes its whole UTC day an event, which the regression model uses as a known feature.
    #[arg(long)]
    pub event_column: Option<String>,
    /// No progress on stderr.
    #[arg(long)]
    pub quiet: bool,
}

/// The exact output columns, in order.
pub const COLUMNS: [&str; 11] = [
    "series",
    "model",
    "windows",
    "mase",
    "rel_mase",
    "cov80",
    "cov95",
    "msis95",
    "peak_ape",
    "peak_over_band",
    "fit_seconds",
];

/// Runs `crest backtest` and prints the rows on stdout.
pub fn run(args: &BacktestArgs) -> anyhow::Result<()> {
    let rows = compute(args)?;
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Csv => write_csv(&mut out, &rows)?,
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &rows)?;
            writeln!(out)?;
        }
    }
    out.flush()?;
    Ok(())
}

/// Reads, prepares and backtests; one row per model.
pub fn compute(args: &BacktestArgs) -> anyhow::Result<Vec<BacktestRow>> {
    let name = args.series.clone().unwrap_or_else(|| {
        args.csv
            .file_stem()
            .map_or_else(|| "series".into(), |s| s.to_string_lossy().into_owned())
    });
    let choices = args
        .model
        .iter()
        .map(|m| ModelChoice::parse(m.trim(), &args.seasons))
        .collect::<Result<Vec<_>, _>>()?;
    let input = read_csv(args)?;
    let opts = PrepareOptions {
        step: None,
        max_gap: args.max_gap,
        from: args.from.as_deref().map(parse_time_arg).transpose()?,
        to: args.to.as_deref().map(parse_time_arg).transpose()?,
    };
    let (series, report) = forecast::prepare(&input.points, &opts)
        .with_context(|| format!("cannot prepare the series from {}", args.csv.display()))?;
    let cfg = BacktestConfig {
        forecaster: ForecasterConfig {
            seasons: args.seasons.clone(),
            horizon: args.horizon,
            train_len: args.train_len,
            inner_windows: args.inner_windows,
            calibration_spread: args.calibration_spread,
        },
        windows: args.windows,
        day_len: day_len(series.step, &args.seasons),
    };
    cfg.forecaster.check()?;
    if series.len() < required_len(&cfg) {
        bail!(
            "series {name} too short: {} points after preparation, {} needed for {} windows of {} after {} training points and one calibration window",
            series.len(),
            required_len(&cfg),
            args.windows,
            args.horizon,
            args.train_len
        );
    }
    if !args.quiet {
        eprintln!(
            "backtest {name}: {} points every {} s from {} ({} missing cells skipped, {} duplicates merged, {} points filled, {} outside --from/--to)",
            series.len(),
            series.step,
            fmt_time(series.start),
            input.missing,
            report.duplicates_merged,
            report.filled,
            report.sliced_out
        );
    }
    let mut rows = Vec::with_capacity(choices.len());
    for choice in &choices {
        let label = choice.name();
        let quiet = args.quiet;
        let windows = args.windows;
        let r = forecast::backtest(
            &series,
            &name,
            &cfg,
            choice,
            &input.events,
            &mut |k, w| {
                if !quiet {
                    eprintln!(
                        "backtest {name} {label}: window {}/{windows} from {}: {} mase {:.3} (naive {:.3}), cov95 {:.3}, {:.2} s",
                        k + 1,
                        fmt_time(w.cutoff_time),
                        w.model,
                        w.mase,
                        w.snaive_mase,
                        w.cov95,
                        w.fit_seconds
                    );
                }
            },
        )
        .with_context(|| format!("backtest of {label} on {name} failed"))?;
        rows.push(r.row);
    }
    Ok(rows)
}

/// Points per day for the daily-peak metrics: from the step when it divides a day, otherwise
/// the shortest season.
fn day_len(step: i64, seasons: &[usize]) -> usize {
    if step > 0 && 86_400 % step == 0 {
        usize::try_from(86_400 / step).unwrap_or(1)
    } else {
        seasons.iter().copied().min().unwrap_or(1)
    }
}

struct CsvInput {
    points: Vec<(i64, f64)>,
    events: Vec<TimeWindow>,
    missing: usize,
}

fn read_csv(args: &BacktestArgs) -> anyhow::Result<CsvInput> {
    let path = &args.csv;
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(false)
        .from_path(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    let headers = rdr
        .headers()
        .with_context(|| format!("cannot read the header row of {}", path.display()))?
        .clone();
    let find = |col: &str, flag: &str| -> anyhow::Result<usize> {
        headers
            .iter()
            .position(|h| h.trim() == col)
            .with_context(|| {
                format!(
                    "{flag} {col:?} is not a column of {}; the columns are: {}",
                    path.display(),
                    headers.iter().collect::<Vec<_>>().join(", ")
                )
            })
    };
    let t_col = find(&args.time_column, "--time-column")?;
    let v_col = find(&args.value_column, "--value-column")?;
    let e_col = args
        .event_column
        .as_deref()
        .map(|c| find(c, "--event-column"))
        .transpose()?;
    let mut points = Vec::new();
    let mut event_days: Vec<i64> = Vec::new();
    let mut missing = 0;
    for (i, rec) in rdr.records().enumerate() {
        let line = i + 2;
        let rec =
            rec.with_context(|| format!("{}: line {line} is not valid CSV", path.display()))?;
        let t_raw = rec.get(t_col).unwrap_or("").trim();
        let t = parse_time(t_raw).with_context(|| {
            format!(
                "{} line {line}: cannot parse time {t_raw:?} in column {}",
                path.display(),
                args.time_column
            )
        })?;
        if let Some(e) = e_col {
            let v = rec.get(e).unwrap_or("").trim();
            if !(v.is_empty()
                || v.eq_ignore_ascii_case("none")
                || v == "0"
                || v.eq_ignore_ascii_case("false"))
            {
                event_days.push(t.div_euclid(86_400));
            }
        }
        let v_raw = rec.get(v_col).unwrap_or("").trim();
        if v_raw.is_empty()
            || v_raw.eq_ignore_ascii_case("na")
            || v_raw.eq_ignore_ascii_case("nan")
            || v_raw.eq_ignore_ascii_case("null")
        {
            missing += 1;
            continue;
        }
        let v: f64 = v_raw
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite())
            .with_context(|| {
                format!(
                    "{} line {line}: cannot parse value {v_raw:?} in column {} as a finite number",
                    path.display(),
                    args.value_column
                )
            })?;
        points.push((t, v));
    }
    if points.is_empty() {
        bail!(
            "{} has no values in column {}",
            path.display(),
            args.value_column
        );
    }
    event_days.sort_unstable();
    event_days.dedup();
    let events = event_days
        .into_iter()
        .map(|d| TimeWindow {
            start: d * 86_400,
            end: (d + 1) * 86_400,
        })
        .collect();
    Ok(CsvInput {
        points,
        events,
        missing,
    })
}

/// Unix seconds of a timestamp: RFC 3339, `YYYY-MM-DD HH:MM[:SS[.f]]` (UTC), `YYYY-MM-DD`, or
/// an integer of Unix seconds.
pub fn parse_time(s: &str) -> anyhow::Result<i64> {
    if let Ok(n) = s.parse::<i64>() {
        return Ok(n);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp());
    }
    for f in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return Ok(t.and_utc().timestamp());
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d
            .and_hms_opt(0, 0, 0)
            .map_or(0, |t| t.and_utc().timestamp()));
    }
    bail!("expected YYYY-MM-DD HH:MM:SS, RFC 3339, YYYY-MM-DD or Unix seconds")
}

fn parse_time_arg(s: &str) -> anyhow::Result<i64> {
    parse_time(s).with_context(|| format!("cannot parse time {s:?}"))
}

fn fmt_time(t: i64) -> String {
    DateTime::from_timestamp(t, 0)
        .map_or_else(|| t.to_string(), |d| d.format("%Y-%m-%d %H:%M").to_string())
}

/// Writes the rows as CSV with exactly [`COLUMNS`].
pub fn write_csv(out: &mut impl Write, rows: &[BacktestRow]) -> anyhow::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record(COLUMNS)?;
    for r in rows {
        w.write_record([
            r.series.clone(),
            r.model.clone(),
            r.windows.to_string(),
            format!("{:.4}", r.mase),
            format!("{:.4}", r.rel_mase),
            format!("{:.4}", r.cov80),
            format!("{:.4}", r.cov95),
            format!("{:.4}", r.msis95),
            format!("{:.4}", r.peak_ape),
            format!("{:.4}", r.peak_over_band),
            format!("{:.5}", r.fit_seconds),
        ])?;
    }
    w.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_time_formats() {
        assert_eq!(parse_time("1970-01-02 01:00:00").unwrap(), 90_000);
        assert_eq!(parse_time("1970-01-02T01:00").unwrap(), 90_000);
        assert_eq!(parse_time("1970-01-02T02:00:00+01:00").unwrap(), 90_000);
        assert_eq!(parse_time("1970-01-02").unwrap(), 86_400);
        assert_eq!(parse_time("90000").unwrap(), 90_000);
        assert!(parse_time("yesterday").is_err());
    }

    #[test]
    fn day_len_from_step() {
        assert_eq!(day_len(3600, &[24, 168]), 24);
        assert_eq!(day_len(7000, &[24, 168]), 24);
        assert_eq!(day_len(900, &[96]), 96);
    }
}
