//! Prometheus scraping: one task per `[[scrape]]` target fetches its exposition every
//! interval, parses it with [`ingest::decode::prom_text`], adds `job` and `instance`, applies the
//! job's `metric_relabel` rules and writes the samples plus the synthetic series Prometheus
//! writes (`up`, `scrape_duration_seconds`, `scrape_samples_scraped`,
//! `scrape_samples_post_metric_relabeling`, `scrape_series_added`), all at the scrape timestamp
//! (milliseconds, as Prometheus stamps them).
//!
//! A failed scrape writes `up = 0` and logs the reason: connection refused, timeout, non-2xx
//! status, body over the size limit, or any line of the exposition that does not parse (then,
//! as in Prometheus, none of its samples is kept).
//!
//! No staleness markers are written: Prometheus marks a vanished series with a special NaN,
//! which SQL aggregates over `value` would take as data. A series that stops is visible as the
//! end of its rows, and a target that stops answering as `up = 0`.

use crate::config::{RelabelAction, RelabelRule, ScrapeConfig};
use ingest::Db;
use ingest::decode::prom_text;
use ingest::point::{FieldValue, Point};
use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// The label carrying the metric name during relabelling.
const NAME_LABEL: &str = "__name__";
/// What Crest asks targets for, like Prometheus.
const ACCEPT: &str =
    "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.4,*/*;q=0.1";

/// A relabel rule with its regex compiled.
struct Rule {
    rule: RelabelRule,
    regex: regex::Regex,
}

/// One target of one job.
struct Target {
    job: String,
    instance: String,
    url: String,
    honor_labels: bool,
    rules: Arc<Vec<Rule>>,
    max_body: usize,
}

/// Starts one scrape task per target of every job. The tasks end when `stop` is set.
pub fn spawn(
    db: &Arc<Db>,
    jobs: &[ScrapeConfig],
    max_body: usize,
    stop: &Arc<AtomicBool>,
) -> anyhow::Result<Vec<JoinHandle<()>>> {
    let mut tasks = Vec::new();
    for job in jobs {
        let mut rules = Vec::with_capacity(job.metric_relabel.len());
        for rule in &job.metric_relabel {
            let regex = rule.compiled().map_err(anyhow::Error::msg)?;
            rules.push(Rule {
                rule: rule.clone(),
                regex,
            });
        }
        let rules = Arc::new(rules);
        let timeout = job.timeout();
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()?;
        for instance in &job.targets {
            let target = Target {
                job: job.job_name.clone(),
                instance: instance.clone(),
                url: format!("http://{instance}{}", job.metrics_path),
                honor_labels: job.honor_labels,
                rules: Arc::clone(&rules),
                max_body,
            };
            tracing::info!(job = %target.job, url = %target.url, interval = ?job.interval.0, "Scraping target.");
            tasks.push(tokio::spawn(run(
                Arc::clone(db),
                client.clone(),
                target,
                job.interval.0,
                Arc::clone(stop),
            )));
        }
    }
    Ok(tasks)
}

async fn run(
    db: Arc<Db>,
    client: reqwest::Client,
    target: Target,
    interval: Duration,
    stop: Arc<AtomicBool>,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seen = HashSet::new();
    loop {
        ticker.tick().await;
        if stop.load(Ordering::Relaxed) {
            return;
        }
        scrape_once(&db, &client, &target, &mut seen).await;
    }
}

/// Scrapes the target once and writes what it got. `seen` holds the series of the previous
/// successful scrape (hashes of table and tags), for `scrape_series_added`.
async fn scrape_once(db: &Db, client: &reqwest::Client, target: &Target, seen: &mut HashSet<u64>) {
    let now_ns = ingest::clock::Clock::now_ns(&ingest::clock::SystemClock);
    let ts_ns = now_ns - now_ns.rem_euclid(1_000_000);
    let started = Instant::now();
    let fetched = fetch(client, target).await;
    let duration = started.elapsed().as_secs_f64();
    let mut points = Vec::new();
    // As in Prometheus, a scrape is whole or nothing: a line that does not parse fails it
    // (`up` = 0, no sample kept), so a broken exporter shows in `up` instead of losing series
    // quietly.
    let parsed = fetched.and_then(|body| {
        let (samples, errors) = prom_text::parse(&body, ts_ns);
        match errors.first() {
            Some(first) => Err(format!(
                "GET {}: the exposition has {} unparseable line(s); first: {first}",
                target.url,
                errors.len()
            )),
            None => Ok(samples),
        }
    });
    let (up, scraped, added) = match parsed {
        Ok(samples) => {
            let scraped = samples.len();
            points.extend(samples.into_iter().filter_map(|p| target_point(p, target)));
            let series: HashSet<u64> = points.iter().map(series_hash).collect();
            let added = series.difference(seen).count();
            *seen = series;
            (1.0, scraped, added)
        }
        Err(e) => {
            tracing::warn!(job = %target.job, instance = %target.instance, error = %e, "Scrape failed.");
            (0.0, 0, 0)
        }
    };
    let kept = points.len();
    #[allow(clippy::cast_precision_loss)]
    let synthetic = [
        ("up", up),
        ("scrape_duration_seconds", duration),
        ("scrape_samples_scraped", scraped as f64),
        ("scrape_samples_post_metric_relabeling", kept as f64),
        ("scrape_series_added", added as f64),
    ];
    for (name, value) in synthetic {
        let mut tags = vec![
            ("instance".to_string(), target.instance.clone()),
            ("job".to_string(), target.job.clone()),
        ];
        tags.retain(|(_, v)| !v.is_empty());
        points.push(Point {
            table: name.to_string(),
            tags,
            fields: vec![("value".to_string(), FieldValue::F64(value))],
            time_ns: ts_ns,
        });
    }
    let total = points.len();
    match db.write(points.into_iter().enumerate().collect()).await {
        Ok(out) => {
            if let Some((i, e)) = out.rejected.first() {
                tracing::warn!(job = %target.job, instance = %target.instance, rejected = out.rejected.len(), total, first = %format!("sample {i}: {e}"), "Some scraped samples were rejected.");
            }
        }
        Err(e) => {
            tracing::warn!(job = %target.job, instance = %target.instance, error = %e, "Cannot write a scrape.");
        }
    }
}

/// Identifies a series: its table and tags (sorted by `target_point`).
fn series_hash(p: &Point) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    p.table.hash(&mut h);
    p.tags.hash(&mut h);
    h.finish()
}

/// GETs the exposition, refusing non-2xx answers and bodies over the limit.
async fn fetch(client: &reqwest::Client, target: &Target) -> Result<Vec<u8>, String> {
    let mut resp = client
        .get(&target.url)
        .header(reqwest::header::ACCEPT, ACCEPT)
        .send()
        .await
        .map_err(|e| format!("GET {}: {e}", target.url))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(format!("GET {}: HTTP status {status}", target.url));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| format!("GET {}: reading the body: {e}", target.url))?
    {
        if body.len() + chunk.len() > target.max_body {
            return Err(format!(
                "GET {}: body exceeds {} bytes",
                target.url, target.max_body
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Adds the target labels to a scraped sample and relabels it; `None` if a rule dropped it.
fn target_point(p: Point, target: &Target) -> Option<Point> {
    let mut labels = p.tags;
    attach_target_labels(
        &mut labels,
        &[("job", &target.job), ("instance", &target.instance)],
        target.honor_labels,
    );
    labels.push((NAME_LABEL.to_string(), p.table));
    let labels = relabel(labels, &target.rules)?;
    let mut table = None;
    let mut tags = Vec::with_capacity(labels.len());
    for (k, v) in labels {
        if k == NAME_LABEL {
            table = Some(v);
        } else if !k.starts_with("__") && !v.is_empty() {
            tags.push((k, v));
        }
    }
    tags.sort_by(|a, b| a.0.cmp(&b.0));
    Some(Point {
        table: table.filter(|t| !t.is_empty())?,
        tags,
        fields: p.fields,
        time_ns: p.time_ns,
    })
}

/// Adds `job`/`instance`. With `honor_labels`, a scraped label wins; without, the scraped one
/// is renamed `exported_<name>` (prefixed again while that name is taken), as Prometheus does.
fn attach_target_labels(labels: &mut Vec<(String, String)>, add: &[(&str, &str)], honor: bool) {
    for &(name, value) in add {
        if let Some(pos) = labels.iter().position(|(k, _)| k == name) {
            if honor {
                continue;
            }
            let mut renamed = format!("exported_{name}");
            while labels.iter().any(|(k, _)| *k == renamed) {
                renamed = format!("exported_{renamed}");
            }
            labels[pos].0 = renamed;
        }
        labels.push((name.to_string(), value.to_string()));
    }
}

/// Applies the rules in order; `None` if the series is dropped.
fn relabel(mut labels: Vec<(String, String)>, rules: &[Rule]) -> Option<Vec<(String, String)>> {
    for Rule { rule, regex } in rules {
        let joined = rule
            .source_labels
            .iter()
            .map(|name| {
                labels
                    .iter()
                    .find(|(k, _)| k == name)
                    .map_or("", |(_, v)| v.as_str())
            })
            .collect::<Vec<_>>()
            .join(&rule.separator);
        match rule.action {
            RelabelAction::Keep if !regex.is_match(&joined) => return None,
            RelabelAction::Drop if regex.is_match(&joined) => return None,
            RelabelAction::Keep | RelabelAction::Drop => {}
            RelabelAction::Replace => {
                let Some(caps) = regex.captures(&joined) else {
                    continue;
                };
                let Some(target) = rule.target_label.as_deref() else {
                    continue;
                };
                let mut value = String::new();
                caps.expand(&rule.replacement, &mut value);
                labels.retain(|(k, _)| k != target);
                if !value.is_empty() {
                    labels.push((target.to_string(), value));
                }
            }
        }
    }
    Some(labels)
}

/// Writes Crest's own `/metrics` into its tables (`crest_*`) every `every`, until `stop`: the
/// data of the Crest health dashboard, without a token or an HTTP round trip.
pub async fn self_monitor(
    db: std::sync::Arc<Db>,
    metrics: std::sync::Arc<crate::metrics::ServerMetrics>,
    every: std::time::Duration,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    // The first tick is immediate; the first write comes one interval after start.
    tick.tick().await;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        tick.tick().await;
        let now_ns = ingest::clock::Clock::now_ns(&ingest::clock::SystemClock);
        let ts_ns = now_ns - now_ns.rem_euclid(1_000_000);
        let text = metrics.render(&db);
        let (samples, errors) = prom_text::parse(text.as_bytes(), ts_ns);
        if let Some(first) = errors.first() {
            tracing::warn!(first = %first, "Crest's own metrics did not parse.");
        }
        if let Err(e) = db.write(samples.into_iter().enumerate().collect()).await {
            tracing::debug!(error = %e, "Cannot write Crest's own metrics.");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(toml_text: &str) -> Rule {
        let rule: RelabelRule = toml::from_str(toml_text).expect("rule");
        let regex = rule.compiled().expect("regex");
        Rule { rule, regex }
    }

    fn target(honor_labels: bool, rules: Vec<Rule>) -> Target {
        Target {
            job: "node".into(),
            instance: "h:9100".into(),
            url: String::new(),
            honor_labels,
            rules: Arc::new(rules),
            max_body: 1 << 20,
        }
    }

    fn sample(text: &str) -> Point {
        let (mut points, errors) = prom_text::parse(text.as_bytes(), 0);
        assert!(errors.is_empty(), "{errors:?}");
        points.remove(0)
    }

    #[test]
    fn honor_labels_config_decides_conflicting_labels() {
        let p = sample("m{job=\"app\",instance=\"x\",a=\"1\"} 1");
        let got = target_point(p.clone(), &target(false, vec![])).expect("kept");
        let tags: Vec<(&str, &str)> = got
            .tags
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            tags,
            [
                ("a", "1"),
                ("exported_instance", "x"),
                ("exported_job", "app"),
                ("instance", "h:9100"),
                ("job", "node"),
            ]
        );
        let got = target_point(p, &target(true, vec![])).expect("kept");
        assert_eq!(
            got.tags,
            [
                ("a".to_string(), "1".to_string()),
                ("instance".to_string(), "x".to_string()),
                ("job".to_string(), "app".to_string()),
            ]
        );
    }

    #[test]
    fn metric_relabel_config_keep_drop_replace() {
        let drop = rule("source_labels=['__name__']\nregex='go_.*'\naction='drop'");
        let t = target(false, vec![drop]);
        assert!(target_point(sample("go_goroutines 3"), &t).is_none());
        assert!(target_point(sample("node_load1 3"), &t).is_some());

        let keep = rule("source_labels=['__name__','mode']\nregex='cpu;idle'\naction='keep'");
        let t = target(false, vec![keep]);
        assert!(target_point(sample("cpu{mode=\"idle\"} 1"), &t).is_some());
        assert!(target_point(sample("cpu{mode=\"user\"} 1"), &t).is_none());

        let replace = rule(
            "source_labels=['mount']\nregex='/srv/(.*)'\ntarget_label='volume'\nreplacement='v-$1'",
        );
        let t = target(false, vec![replace]);
        let got = target_point(sample("disk{mount=\"/srv/data\"} 1"), &t).expect("kept");
        assert!(
            got.tags
                .contains(&("volume".to_string(), "v-data".to_string())),
            "{:?}",
            got.tags
        );
    }
}
