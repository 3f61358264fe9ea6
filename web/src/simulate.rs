//! `crest simulate`: plays the reference festival campaign of `../shared/SCENARIO.md` into a
//! running Crest through the real protocols.
//!
//! The model is pure: [`fleet`] (services, clusters, instances), [`calendar`] (milestones) and
//! [`traffic`] (QPS, latency, errors as functions of seed and simulated time). [`scrape`] turns
//! it into what a Prometheus scraping the fleet every step would remote-write, [`traces`] into a
//! few sampled OTLP traces per simulated minute, and [`send`] delivers both with retries. The
//! run backfills history as fast as the server accepts, then plays on live at `--speed`
//! simulated seconds per real second; the calendar it played is written to `--calendar-out`.

pub mod calendar;
pub mod fleet;
pub mod scrape;
pub mod send;
pub mod traces;
pub mod traffic;

use crate::config::HumanDuration;
use anyhow::Context;
use calendar::{CalendarFile, DAY, rfc3339};
use clap::Args;
use prost::Message;
use scrape::Scraper;
use send::{Body, Sender, Stats};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use traffic::Scenario;

/// Spans per traces request.
const SPANS_PER_REQUEST: usize = 5_000;
/// Scrape steps generated per backfill chunk.
const STEPS_PER_CHUNK: i64 = 240;
/// How often the progress line is printed.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);

/// A simulated instant: RFC 3339 (`2026-01-01T20:00:00Z`), a date (`2026-01-01`, midnight
/// UTC) or Unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimTime(pub i64);

impl FromStr for SimTime {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if let Ok(n) = s.parse::<i64>() {
            return Ok(Self(n));
        }
        if let Ok(d) = chrono::DateTime::parse_from_rfc3339(s) {
            return Ok(Self(d.timestamp()));
        }
        if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
            && let Some(dt) = d.and_hms_opt(0, 0, 0)
        {
            return Ok(Self(dt.and_utc().timestamp()));
        }
        Err(format!(
            "invalid time {s:?}: use RFC 3339 (2026-01-01T20:00:00Z), a date (2026-01-01) or Unix seconds"
        ))
    }
}

/// `crest simulate` flags.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Base URL of the Crest to fill, e.g. http://127.0.0.1:8086.
    #[arg(long)]
    pub url: String,
    /// Bearer token with the write scope.
    #[arg(long, env = "CREST_TOKEN")]
    pub token: Option<String>,
    /// Seed: the same seed plays the same campaign, byte for byte.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Simulated history written fast before going live, e.g. 30d (0s: none).
    #[arg(long, default_value = "30d")]
    pub backfill: HumanDuration,
    /// Simulated seconds per real second once live (0: stop after the backfill).
    #[arg(long, default_value_t = 60.0)]
    pub speed: f64,
    /// Simulated time between two samples of a series (scrape interval), whole seconds.
    #[arg(long, default_value = "15s")]
    pub step: HumanDuration,
    /// First simulated instant (default: now minus --backfill).
    #[arg(long)]
    pub start: Option<SimTime>,
    /// Day 0 of the campaign, 00:00 UTC (default: 30 days after the first simulated day, so
    /// --backfill 30d writes 30 days of organic history and the campaign plays live).
    #[arg(long)]
    pub kickoff: Option<SimTime>,
    /// Stop once simulated time reaches this instant.
    #[arg(long)]
    pub until: Option<SimTime>,
    /// Stop after running live this long (real time), e.g. 10m; 0s stops after the backfill.
    #[arg(long)]
    pub live_for: Option<HumanDuration>,
    /// Multiplies every QPS and every knee: shapes, ratios, latency and instance counts stay.
    #[arg(long, default_value_t = 1.0)]
    pub scale: f64,
    /// Where to write the calendar played: JSON, or CSV when the name ends in .csv.
    #[arg(long, default_value = "./crest-calendar.json")]
    pub calendar_out: PathBuf,
    /// Send no traces.
    #[arg(long)]
    pub no_traces: bool,
    /// Sampled traces per simulated minute.
    #[arg(long, default_value_t = 4)]
    pub traces_per_minute: u32,
    /// Samples per remote-write request (about).
    #[arg(long, default_value_t = 50_000)]
    pub batch: usize,
    /// Requests in flight.
    #[arg(long, default_value_t = 2)]
    pub concurrency: usize,
    /// Retries of one request (429, 503, connection errors) before giving up.
    #[arg(long, default_value_t = 30)]
    pub max_retries: u32,
}

/// Checked settings of a run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Base URL.
    pub url: String,
    /// Bearer token.
    pub token: Option<String>,
    /// Seed.
    pub seed: u64,
    /// QPS multiplier.
    pub scale: f64,
    /// Seconds between samples.
    pub step: i64,
    /// First sample, Unix seconds.
    pub start: i64,
    /// Last backfilled sample is before this, Unix seconds.
    pub backfill_end: i64,
    /// Day 0, Unix seconds.
    pub kickoff: i64,
    /// Simulated seconds per real second once live; 0 for no live phase.
    pub speed: f64,
    /// Real time to stay live.
    pub live_for: Option<Duration>,
    /// Simulated instant to stop at.
    pub until: Option<i64>,
    /// Calendar file.
    pub calendar_out: PathBuf,
    /// Traces per simulated minute (0: none).
    pub traces_per_minute: u32,
    /// Samples per remote-write request.
    pub batch: usize,
    /// Requests in flight.
    pub concurrency: usize,
    /// Retries per request.
    pub max_retries: u32,
}

impl SimulateArgs {
    /// Validates the flags against the current time `now` (Unix seconds).
    pub fn check(&self, now: i64) -> anyhow::Result<Settings> {
        let url = reqwest::Url::parse(&self.url)
            .with_context(|| format!("--url {:?} is not a URL", self.url))?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            anyhow::bail!("--url {:?} must be an http:// or https:// URL", self.url);
        }
        let step = self.step.0;
        if step.subsec_nanos() != 0 || step.as_secs() == 0 || step.as_secs() > 86_400 {
            anyhow::bail!("--step must be whole seconds between 1s and 1d");
        }
        let step = step.as_secs() as i64;
        if !(self.scale.is_finite() && self.scale > 0.0) {
            anyhow::bail!("--scale must be a positive number, not {}", self.scale);
        }
        if !(self.speed.is_finite() && self.speed >= 0.0) {
            anyhow::bail!("--speed must be 0 or a positive number, not {}", self.speed);
        }
        if self.batch == 0 {
            anyhow::bail!("--batch must be at least 1");
        }
        if !(1..=64).contains(&self.concurrency) {
            anyhow::bail!("--concurrency must be between 1 and 64");
        }
        if self.traces_per_minute > 10_000 {
            anyhow::bail!("--traces-per-minute must be at most 10000");
        }
        let backfill = i64::try_from(self.backfill.0.as_secs())
            .ok()
            .filter(|b| *b <= 3650 * DAY)
            .context("--backfill must be at most 3650d")?;
        let start = match self.start {
            Some(t) => t.0,
            None => now - backfill,
        };
        // Samples fall on multiples of the step, as a scraper's would.
        let start = start.div_euclid(step) * step;
        // Stay within what timestamps in nanoseconds can hold.
        const LIMIT: i64 = 9_000_000_000;
        if !(0..LIMIT).contains(&start) {
            anyhow::bail!("--start {} is outside 1970..2255", rfc3339(start));
        }
        let kickoff = match self.kickoff {
            Some(k) => k.0,
            None => start.div_euclid(DAY) * DAY + 30 * DAY,
        };
        if !(0..LIMIT).contains(&kickoff) {
            anyhow::bail!("--kickoff {} is outside 1970..2255", rfc3339(kickoff));
        }
        if kickoff % DAY != 0 {
            anyhow::bail!(
                "--kickoff {} must be midnight UTC (day 0 starts at 00:00)",
                rfc3339(kickoff)
            );
        }
        let until = self.until.map(|u| u.0);
        if let Some(u) = until
            && u < start
        {
            anyhow::bail!(
                "--until {} is before the first simulated instant {}",
                rfc3339(u),
                rfc3339(start)
            );
        }
        Ok(Settings {
            url: self.url.clone(),
            token: self.token.clone(),
            seed: self.seed,
            scale: self.scale,
            step,
            start,
            backfill_end: start + backfill,
            kickoff,
            speed: self.speed,
            live_for: self.live_for.map(|d| d.0),
            until,
            calendar_out: self.calendar_out.clone(),
            traces_per_minute: if self.no_traces {
                0
            } else {
                self.traces_per_minute
            },
            batch: self.batch,
            concurrency: self.concurrency,
            max_retries: self.max_retries,
        })
    }
}

/// Writes the calendar file: CSV when the path ends in `.csv`, else JSON.
pub fn write_calendar(file: &CalendarFile, path: &std::path::Path) -> anyhow::Result<()> {
    let bytes = if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
    {
        file.to_csv()?
    } else {
        let mut v = serde_json::to_vec_pretty(file)?;
        v.push(b'\n');
        v
    };
    std::fs::write(path, bytes)
        .with_context(|| format!("cannot write the calendar to {}", path.display()))
}

/// Splits series into remote-write bodies of about `batch` samples each.
pub fn remote_write_bodies(
    series: &[ingest::decode::remote_write::Series],
    batch: usize,
    until: i64,
) -> Vec<Body> {
    let mut out = Vec::new();
    let mut from = 0;
    let mut samples = 0usize;
    for (i, (_, s)) in series.iter().enumerate() {
        samples += s.len();
        if samples >= batch || i + 1 == series.len() {
            out.push(Body::RemoteWrite {
                bytes: ingest::decode::remote_write::encode(&series[from..=i]),
                samples: samples as u64,
                until,
            });
            from = i + 1;
            samples = 0;
        }
    }
    out
}

/// Generates bodies in simulated-time order: the backfill as fast as the channel takes them,
/// then live at the configured speed. Returns when done, stopped, or the channel closed.
fn produce(
    cfg: &Settings,
    mut scraper: Scraper,
    tx: &tokio::sync::mpsc::Sender<Body>,
    stop: &AtomicBool,
) {
    let step = cfg.step;
    let last_backfill = cfg.backfill_end - 1;
    let mut next_minute = cfg.start.div_euclid(60) * 60;
    let mut live_since: Option<Instant> = None;
    let until = cfg.until.unwrap_or(i64::MAX);
    loop {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let next = scraper.next_sample();
        if next > until {
            return;
        }
        let target = if next <= last_backfill {
            (next + (STEPS_PER_CHUNK - 1) * step).min(last_backfill)
        } else {
            if cfg.speed == 0.0 {
                return;
            }
            let since = *live_since.get_or_insert_with(Instant::now);
            let elapsed = since.elapsed();
            if cfg.live_for.is_some_and(|d| elapsed >= d) {
                return;
            }
            let now = cfg.backfill_end as f64 + cfg.speed * elapsed.as_secs_f64();
            if (now as i64) < next {
                let wait = (next as f64 - now) / cfg.speed;
                std::thread::sleep(Duration::from_secs_f64(wait.clamp(0.01, 0.25)));
                continue;
            }
            now as i64
        }
        .min(until);
        let series = scraper.advance(target);
        let mut bodies = remote_write_bodies(&series, cfg.batch, target);
        drop(series);
        if cfg.traces_per_minute > 0 {
            let mut spans = Vec::new();
            while next_minute + 60 <= target + 1 {
                spans.extend(traces::minute_traces(
                    scraper.scenario(),
                    next_minute,
                    cfg.traces_per_minute,
                ));
                next_minute += 60;
            }
            for chunk in spans.chunks(SPANS_PER_REQUEST) {
                bodies.push(Body::Traces {
                    bytes: traces::export_request(chunk).encode_to_vec(),
                    spans: chunk.len() as u64,
                    until: target,
                });
            }
        }
        for b in bodies {
            if tx.blocking_send(b).is_err() {
                return;
            }
        }
    }
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn human(n: f64) -> String {
    if n >= 1e9 {
        format!("{:.2}G", n / 1e9)
    } else if n >= 1e6 {
        format!("{:.2}M", n / 1e6)
    } else if n >= 1e3 {
        format!("{:.1}k", n / 1e3)
    } else {
        format!("{n:.0}")
    }
}

fn progress_line(cfg: &Settings, stats: &Stats, started: Instant) -> String {
    let reached = stats.reached.load(Ordering::Relaxed);
    let samples = stats.samples.load(Ordering::Relaxed);
    let secs = started.elapsed().as_secs_f64().max(1e-3);
    let phase = if reached < cfg.backfill_end - cfg.step && cfg.backfill_end > cfg.start {
        let done = (reached - cfg.start).max(0) as f64 / (cfg.backfill_end - cfg.start) as f64;
        format!("backfill {:.1}%", done * 100.0)
    } else if reached < cfg.backfill_end {
        "backfill done".to_string()
    } else {
        format!("live at {}x", cfg.speed)
    };
    format!(
        "simulate: {} ({phase}) | {} samples ({}/s) | {} spans | {} requests | {} retries",
        if reached > 0 {
            rfc3339(reached)
        } else {
            "-".into()
        },
        human(samples as f64),
        human(samples as f64 / secs),
        human(stats.spans.load(Ordering::Relaxed) as f64),
        stats.requests.load(Ordering::Relaxed),
        stats.retries.load(Ordering::Relaxed),
    )
}

/// Runs `crest simulate` until the backfill and the live phase are done or Ctrl-C.
pub async fn run(args: SimulateArgs) -> anyhow::Result<()> {
    let cfg = args.check(now_unix())?;
    let scenario = Scenario::new(cfg.seed, cfg.scale, cfg.kickoff);
    let calendar = CalendarFile::new(&scenario, cfg.start, cfg.step);
    write_calendar(&calendar, &cfg.calendar_out)?;
    let scraper = Scraper::new(scenario, cfg.start, cfg.step);
    let steps = (cfg.backfill_end - cfg.start + cfg.step - 1).max(0) / cfg.step;
    eprintln!(
        "simulate: kick-off {}, live run {}; backfilling {} → {} ({} steps of {}s, up to {} series, about {} samples), then {}; calendar in {}",
        calendar.kickoff,
        calendar.milestones.last().map_or("-", |m| m.start.as_str()),
        rfc3339(cfg.start),
        rfc3339(cfg.backfill_end),
        steps,
        cfg.step,
        scraper.series_count(),
        human(steps as f64 * scraper.series_count() as f64 * 0.8),
        if cfg.speed > 0.0 && cfg.live_for != Some(Duration::ZERO) {
            format!("live at {}x", cfg.speed)
        } else {
            "stop".into()
        },
        cfg.calendar_out.display()
    );
    let sender = Sender::new(&cfg.url, cfg.token.clone(), cfg.max_retries)?;
    let stats = Arc::new(Stats::default());
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = tokio::sync::mpsc::channel::<Body>(cfg.concurrency * 2);
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let failure: Arc<parking_lot::Mutex<Option<send::SendError>>> = Arc::default();
    let started = Instant::now();

    let producer = {
        let (cfg, stop) = (cfg.clone(), Arc::clone(&stop));
        std::thread::spawn(move || produce(&cfg, scraper, &tx, &stop))
    };
    let mut workers = Vec::new();
    for _ in 0..cfg.concurrency {
        let (rx, sender, stats, stop, failure) = (
            Arc::clone(&rx),
            sender.clone(),
            Arc::clone(&stats),
            Arc::clone(&stop),
            Arc::clone(&failure),
        );
        workers.push(tokio::spawn(async move {
            loop {
                let body = rx.lock().await.recv().await;
                let Some(body) = body else { break };
                if let Err(e) = sender.send(body, &stats).await {
                    stop.store(true, Ordering::Relaxed);
                    failure.lock().get_or_insert(e);
                    break;
                }
            }
        }));
    }
    drop(rx);
    let progress = {
        let (cfg, stats) = (cfg.clone(), Arc::clone(&stats));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(PROGRESS_EVERY).await;
                eprintln!("{}", progress_line(&cfg, &stats, started));
            }
        })
    };
    let interrupt = {
        let stop = Arc::clone(&stop);
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("simulate: stopping; sending what was generated");
                stop.store(true, Ordering::Relaxed);
            }
        })
    };
    for w in workers {
        w.await?;
    }
    progress.abort();
    interrupt.abort();
    // Workers end once the producer has stopped and dropped its sender, or on a failure (the
    // producer then sees the closed channel).
    producer
        .join()
        .map_err(|_| anyhow::anyhow!("the generator thread panicked"))?;
    eprintln!("{}", progress_line(&cfg, &stats, started));
    if let Some(e) = failure.lock().take() {
        return Err(anyhow::Error::new(e).context("simulate failed"));
    }
    println!(
        "{}",
        serde_json::json!({
            "samples": stats.samples.load(Ordering::Relaxed),
            "spans": stats.spans.load(Ordering::Relaxed),
            "requests": stats.requests.load(Ordering::Relaxed),
            "retries": stats.retries.load(Ordering::Relaxed),
            "reached": rfc3339(stats.reached.load(Ordering::Relaxed)),
            "seconds": started.elapsed().as_secs_f64(),
            "calendar": cfg.calendar_out.display().to_string(),
        })
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: SimulateArgs,
    }

    fn parse(extra: &[&str]) -> anyhow::Result<Settings> {
        let mut argv = vec!["x", "--url", "http://127.0.0.1:1"];
        argv.extend_from_slice(extra);
        let cli = Cli::try_parse_from(argv)?;
        cli.args.check(1_767_225_600 + 12_345)
    }

    #[test]
    fn defaults_put_kickoff_thirty_days_after_the_backfill_start() {
        let s = parse(&[]).expect("defaults");
        assert_eq!(s.step, 15);
        assert_eq!(s.start % 15, 0);
        assert_eq!(s.backfill_end - s.start, 30 * DAY);
        assert_eq!(s.kickoff % DAY, 0);
        assert_eq!((s.kickoff - s.start.div_euclid(DAY) * DAY) / DAY, 30);
        assert_eq!(s.traces_per_minute, 4);
    }

    #[test]
    fn bad_flags_are_clear_errors() {
        for (flags, want) in [
            (&["--speed=-1"][..], "--speed"),
            (&["--scale", "0"][..], "--scale"),
            (&["--step", "500ms"][..], "--step"),
            (&["--kickoff", "2026-01-01T03:00:00Z"][..], "midnight"),
            (&["--until", "2000-01-01"][..], "--until"),
            (&["--concurrency", "0"][..], "--concurrency"),
        ] {
            let e = parse(flags).expect_err("must fail").to_string();
            assert!(e.contains(want), "{flags:?}: {e}");
        }
        assert!(parse(&["--kickoff", "yesterday"]).is_err());
        assert!(parse(&["--backfill", "3x"]).is_err());
        let mut cli = Cli::try_parse_from(["x", "--url", "ftp://h"]).expect("parse");
        assert!(cli.args.check(0).is_err());
        cli.args.url = "not a url".into();
        assert!(cli.args.check(0).is_err());
    }

    #[test]
    fn sim_time_accepts_three_forms() {
        assert_eq!("2026-01-01".parse::<SimTime>(), Ok(SimTime(1_767_225_600)));
        assert_eq!(
            "2026-01-01T01:00:00+01:00".parse::<SimTime>(),
            Ok(SimTime(1_767_225_600))
        );
        assert_eq!("1767225600".parse::<SimTime>(), Ok(SimTime(1_767_225_600)));
    }

    #[test]
    fn calendar_file_has_every_kind_and_csv() {
        let scn = Scenario::new(1, 1.0, 1_767_225_600);
        let f = CalendarFile::new(&scn, 1_767_225_600 - 30 * DAY, 15);
        let json = serde_json::to_value(&f).expect("json");
        let kinds: std::collections::BTreeSet<&str> = json["milestones"]
            .as_array()
            .expect("milestones")
            .iter()
            .map(|m| m["kind"].as_str().expect("kind"))
            .collect();
        assert_eq!(
            kinds.into_iter().collect::<Vec<_>>(),
            ["dr_drill", "live", "rehearsal", "stress_test"]
        );
        let live = &json["milestones"][8];
        assert_eq!(
            live["drivers"]["expected_multiplier"]["envelope-grab"],
            60.0
        );
        let csv = String::from_utf8(f.to_csv().expect("csv")).expect("utf8");
        assert_eq!(csv.lines().count(), 10);
        assert!(
            csv.lines()
                .nth(9)
                .expect("live row")
                .starts_with("live run,live,")
        );
    }

    #[test]
    fn bodies_split_by_batch_and_keep_every_sample() {
        let series: Vec<ingest::decode::remote_write::Series> = (0..10)
            .map(|i| {
                (
                    vec![("__name__".to_string(), format!("m{i}"))],
                    vec![(1, 1.0), (2, 2.0), (3, 3.0)],
                )
            })
            .collect();
        let bodies = remote_write_bodies(&series, 7, 0);
        assert_eq!(bodies.len(), 4);
        let total: u64 = bodies
            .iter()
            .map(|b| match b {
                Body::RemoteWrite { samples, .. } => *samples,
                Body::Traces { .. } => 0,
            })
            .sum();
        assert_eq!(total, 30);
    }
}
