//! The running alerting service: one evaluation task per rule group, one dispatch task, and a
//! delivery task per notification in flight. All state sits behind one async mutex and is
//! persisted (see [`super::store`]) before the change it records is acted upon or reported.

use super::dispatch::{Alert, Dispatcher, NflogEntry, needs_update};
use super::route::{AmConfig, inhibited};
use super::rules::{LoadError, RuleExpr, RuleGroup};
use super::silence::silenced_by;
use super::ssrf::Allow;
use super::state::{AlertState, Sample, step};
use super::store::{Delivery, StateV1, Store};
use super::webhook::{self, Backoff};
use super::{Labels, Millis, now_ms};
use arrow::array::{Array, Float64Array, StringArray};
use arrow::datatypes::DataType;
use query::{QueryEngine, QueryResult};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::task::JoinHandle;

/// How often the dispatcher looks for due groups (the resolution of the group timers).
const DISPATCH_TICK: Duration = Duration::from_millis(100);

/// Expired silences and stale log entries are kept this long (Alertmanager: 5 days).
const KEEP_MS: Millis = 5 * 86_400_000;

/// What the alerting service is built from (flags and config file merged).
#[derive(Debug, Clone)]
pub struct AlertingArgs {
    /// Rule file globs.
    pub rules: Vec<String>,
    /// Alertmanager-shaped receivers and routes.
    pub alertmanager_config: Option<PathBuf>,
    /// CIDRs webhooks may target although private/loopback/link-local.
    pub webhook_allow: Vec<String>,
    /// Interval of groups that set none.
    pub eval_interval: Duration,
    /// Base of `externalURL` and `generatorURL` (default: the listen address).
    pub external_url: Option<String>,
    /// The data directory (state lives in `alerting/` below it).
    pub data_dir: PathBuf,
    /// Webhook retry timing.
    pub backoff: Backoff,
}

/// `crest serve` alerting flags (added to the config file's `[alerting]` section).
#[derive(Debug, Clone, clap::Args)]
pub struct AlertFlags {
    /// Alerting rule files (Prometheus shape, SQL expressions); a glob, repeatable.
    #[arg(long = "rules", value_name = "GLOB")]
    pub rules: Vec<String>,
    /// Receivers, routes and inhibition rules in Alertmanager's YAML shape.
    #[arg(long, value_name = "FILE")]
    pub alertmanager_config: Option<PathBuf>,
    /// Let webhooks target this private/loopback/link-local network (CIDR); repeatable.
    #[arg(long = "webhook-allow", value_name = "CIDR")]
    pub webhook_allow: Vec<String>,
    /// Evaluation interval of rule groups that set none (default 30s).
    #[arg(long)]
    pub alert_eval_interval: Option<crate::config::HumanDuration>,
    /// URL Crest is reached at, for `externalURL` and `generatorURL` in notifications.
    #[arg(long)]
    pub external_url: Option<String>,
}

impl AlertFlags {
    /// Merges the flags with the config file's `[alerting]` section (lists add up, flags win).
    pub fn resolve(
        &self,
        cfg: &crate::config::AlertingConfig,
        data_dir: &std::path::Path,
    ) -> AlertingArgs {
        AlertingArgs {
            rules: cfg.rules.iter().chain(&self.rules).cloned().collect(),
            alertmanager_config: self
                .alertmanager_config
                .clone()
                .or_else(|| cfg.alertmanager_config.clone()),
            webhook_allow: cfg
                .webhook_allow
                .iter()
                .chain(&self.webhook_allow)
                .cloned()
                .collect(),
            eval_interval: self
                .alert_eval_interval
                .or(cfg.eval_interval)
                .map_or(Duration::from_secs(30), |d| d.0),
            external_url: self
                .external_url
                .clone()
                .or_else(|| cfg.external_url.clone()),
            data_dir: data_dir.to_path_buf(),
            backoff: Backoff::default(),
        }
    }
}

/// Health of one rule's last evaluation.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleHealth {
    /// When it last ran.
    pub last_evaluation: Option<Millis>,
    /// Its error, if it failed.
    pub last_error: Option<String>,
    /// How long it took, seconds.
    pub evaluation_time: f64,
}

pub(crate) struct Core {
    pub(crate) state: StateV1,
    pub(crate) dispatcher: Dispatcher,
    inflight: BTreeSet<String>,
    pub(crate) health: BTreeMap<String, RuleHealth>,
    pub(crate) evaluations: u64,
}

/// The alerting service.
pub struct Alerting {
    pub(crate) groups: Vec<RuleGroup>,
    pub(crate) load_errors: Vec<LoadError>,
    pub(crate) am: AmConfig,
    allow: Allow,
    store: Store,
    external_url: parking_lot::RwLock<Option<String>>,
    pub(crate) default_interval: Duration,
    backoff: Backoff,
    pub(crate) core: tokio::sync::Mutex<Core>,
    /// Milestones and plans for the forecast-band and headroom rules.
    live: std::sync::OnceLock<(crate::planning::Sources, Arc<crate::planning::Planning>)>,
}

impl std::fmt::Debug for Alerting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Alerting")
            .field("groups", &self.groups.len())
            .field("load_errors", &self.load_errors)
            .finish_non_exhaustive()
    }
}

impl Alerting {
    /// Loads rules (broken files are logged and listed, the rest load), the Alertmanager config
    /// (an error stops start-up) and the persisted state.
    pub fn new(args: AlertingArgs) -> Result<Self, String> {
        let allow = Allow::parse(&args.webhook_allow)?;
        let (groups, load_errors) = super::rules::load(&args.rules);
        for e in &load_errors {
            tracing::error!(error = %e, "Rule file not loaded; the other rule files still are.");
        }
        let am = match &args.alertmanager_config {
            Some(p) => AmConfig::load(p, &allow)?,
            None => AmConfig::none(),
        };
        let store = Store::new(&args.data_dir);
        let mut state = store.load()?;
        let known: BTreeSet<String> = groups
            .iter()
            .flat_map(|g| (0..g.rules.len()).map(|i| g.rule_id(i)))
            .collect();
        state.rules.retain(|id, _| known.contains(id));
        let rules: usize = groups.iter().map(|g| g.rules.len()).sum();
        if rules > 0 {
            tracing::info!(
                groups = groups.len(),
                rules,
                errors = load_errors.len(),
                "Alerting rules loaded."
            );
        }
        Ok(Self {
            groups,
            load_errors,
            am,
            allow,
            store,
            external_url: parking_lot::RwLock::new(
                args.external_url
                    .map(|u| u.trim_end_matches('/').to_string()),
            ),
            default_interval: args.eval_interval,
            backoff: args.backoff,
            core: tokio::sync::Mutex::new(Core {
                state,
                dispatcher: Dispatcher::default(),
                inflight: BTreeSet::new(),
                health: BTreeMap::new(),
                evaluations: 0,
            }),
            live: std::sync::OnceLock::new(),
        })
    }

    /// Gives the forecast-band and headroom rules their data (called once at start).
    pub fn set_planning(&self, src: crate::planning::Sources, p: Arc<crate::planning::Planning>) {
        let _ = self.live.set((src, p));
    }

    /// Sets `externalURL` when no flag or config gave one (called once the port is known).
    pub fn set_default_external_url(&self, url: &str) {
        let mut u = self.external_url.write();
        if u.is_none() {
            *u = Some(url.trim_end_matches('/').to_string());
        }
    }

    /// `externalURL`.
    pub fn external_url(&self) -> String {
        self.external_url.read().clone().unwrap_or_default()
    }

    /// Starts the evaluation and dispatch loops; they end when `stop` turns true.
    pub fn spawn(
        self: &Arc<Self>,
        engine: Arc<QueryEngine>,
        stop: Arc<AtomicBool>,
    ) -> Vec<JoinHandle<()>> {
        let mut tasks = Vec::new();
        for gi in 0..self.groups.len() {
            let (me, engine, stop) = (Arc::clone(self), Arc::clone(&engine), Arc::clone(&stop));
            tasks.push(tokio::spawn(async move {
                let every = me.groups[gi].interval.map_or(me.default_interval, |d| d.0);
                let mut tick = tokio::time::interval(every);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                loop {
                    tick.tick().await;
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    me.eval_group(gi, &engine).await;
                }
            }));
        }
        let me = Arc::clone(self);
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(DISPATCH_TICK);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tick.tick().await;
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                me.dispatch().await;
            }
        }));
        tasks
    }

    /// Evaluates every rule of group `gi` once.
    pub async fn eval_group(&self, gi: usize, engine: &QueryEngine) {
        let group = &self.groups[gi];
        let now = now_ms();
        let mut results = Vec::with_capacity(group.rules.len());
        for rule in &group.rules {
            let started = std::time::Instant::now();
            let live = self.live.get();
            let now_s = now.div_euclid(1000);
            let samples = match (&rule.expr, live) {
                (RuleExpr::Sql { sql }, _) => {
                    let sql = super::rules::with_now(sql, now);
                    match engine.sql(&sql).await {
                        Ok(r) => samples_from_result(&r),
                        Err(e) => Err(e.to_string()),
                    }
                }
                (RuleExpr::ForecastBand { quantile, window }, Some((src, p))) => {
                    let w = window.0.as_secs() as i64;
                    crate::planning::live::above_band(src, p, now_s, quantile, w).await
                }
                (RuleExpr::Headroom { above, window }, Some((src, p))) => {
                    let w = window.0.as_secs() as i64;
                    crate::planning::live::headroom(src, p, now_s, *above, w).await
                }
                (_, None) => Err("milestones and plans are not available to this rule".into()),
            };
            results.push((samples, started.elapsed()));
        }
        let mut core = self.core.lock().await;
        let mut changed = false;
        for (i, (samples, took)) in results.into_iter().enumerate() {
            let id = group.rule_id(i);
            let health = RuleHealth {
                last_evaluation: Some(now),
                last_error: None,
                evaluation_time: took.as_secs_f64(),
            };
            let health = match samples {
                Ok(samples) => {
                    let instances = core.state.rules.entry(id.clone()).or_default();
                    let before = instances.len();
                    match step(instances, &group.rules[i], samples, now) {
                        Ok(s) => {
                            if !s.is_quiet() || instances.len() != before {
                                changed = true;
                                tracing::info!(rule = %id, pending = s.pending, fired = s.fired, resolved = s.resolved, "Alert state changed.");
                            }
                            health
                        }
                        Err(e) => RuleHealth {
                            last_error: Some(e),
                            ..health
                        },
                    }
                }
                // On error the instances keep their state, as in Prometheus: a failing query
                // neither fires nor resolves anything.
                Err(e) => RuleHealth {
                    last_error: Some(e),
                    ..health
                },
            };
            if let Some(e) = &health.last_error {
                tracing::warn!(rule = %id, error = %e, "Rule evaluation failed.");
            }
            core.health.insert(id, health);
        }
        core.evaluations += 1;
        if changed {
            self.persist(&core).await;
        }
    }

    /// The alerts to route: firing and resolved instances of every rule.
    pub(crate) fn alerts(&self, state: &StateV1) -> Vec<Alert> {
        let mut out = Vec::new();
        let base = self.external_url();
        for (id, instances) in &state.rules {
            for (fp, i) in instances {
                let ends_at = match i.state {
                    AlertState::Pending => continue,
                    AlertState::Firing => None,
                    AlertState::Resolved => i.resolved_at.or(Some(i.active_at)),
                };
                out.push(Alert {
                    labels: i.labels.clone(),
                    annotations: i.annotations.clone(),
                    starts_at: i.fired_at.unwrap_or(i.active_at),
                    ends_at,
                    generator_url: format!("{base}/api/v1/rules?rule={}", id.replace(' ', "%20")),
                    fingerprint: fp.clone(),
                });
            }
        }
        out
    }

    /// Why an alert is muted: the silences and whether inhibition applies.
    pub(crate) fn muted(
        &self,
        state: &StateV1,
        firing: &[&Labels],
        labels: &Labels,
        now: Millis,
    ) -> (Vec<String>, bool) {
        (
            silenced_by(&state.silences, labels, now),
            inhibited(&self.am.inhibit_rules, firing, labels),
        )
    }

    /// One dispatcher tick: route, group, decide and start deliveries.
    pub async fn dispatch(self: &Arc<Self>) {
        let now = now_ms();
        let mut core = self.core.lock().await;
        let alerts = self.alerts(&core.state);
        let flushes = core.dispatcher.tick(&self.am, &alerts, now);
        let mut changed = false;
        let before = (core.state.silences.len(), core.state.nflog.len());
        super::silence::gc(&mut core.state.silences, now, KEEP_MS);
        core.state.nflog.retain(|_, e| now - e.sent_at <= KEEP_MS);
        if before != (core.state.silences.len(), core.state.nflog.len()) {
            changed = true;
        }
        if flushes.is_empty() {
            if changed {
                self.persist(&core).await;
            }
            return;
        }
        let firing_labels: Vec<&Labels> = alerts
            .iter()
            .filter(|a| !a.resolved())
            .map(|a| &a.labels)
            .collect();
        for f in flushes {
            let visible: Vec<Alert> = f
                .alerts
                .iter()
                .filter(|a| {
                    let (s, inh) = self.muted(&core.state, &firing_labels, &a.labels, now);
                    s.is_empty() && !inh
                })
                .cloned()
                .collect();
            let Some(receiver) = self.am.receivers.get(&f.opts.receiver) else {
                continue;
            };
            let firing: BTreeSet<String> = visible
                .iter()
                .filter(|a| !a.resolved())
                .map(|a| a.fingerprint.clone())
                .collect();
            let resolved: BTreeSet<String> = visible
                .iter()
                .filter(|a| a.resolved())
                .map(|a| a.fingerprint.clone())
                .collect();
            // Webhooks keep their index in the notification-log key (state written by earlier
            // versions stays valid); forwarded Alertmanagers are `am<index>`.
            let integrations = receiver
                .webhook_configs
                .iter()
                .enumerate()
                .map(|(wi, w)| (wi.to_string(), w.clone(), false))
                .chain(
                    receiver
                        .alertmanager_configs
                        .iter()
                        .enumerate()
                        .map(|(ai, a)| (format!("am{ai}"), a.as_webhook(), true)),
                );
            for (wi, w, forward) in integrations {
                let key = format!("{}/{}/{wi}", f.group_key, receiver.name);
                if core.inflight.contains(&key) {
                    continue;
                }
                if !needs_update(
                    core.state.nflog.get(&key),
                    &firing,
                    &resolved,
                    w.send_resolved,
                    f.opts.repeat_interval,
                    now,
                ) {
                    continue;
                }
                let entry = NflogEntry {
                    firing: firing.clone(),
                    resolved: resolved.clone(),
                    sent_at: now,
                };
                let mut send: Vec<Alert> =
                    visible.iter().filter(|a| !a.resolved()).cloned().collect();
                if w.send_resolved {
                    send.extend(visible.iter().filter(|a| a.resolved()).cloned());
                }
                if send.is_empty() {
                    // All resolved and this receiver does not want to hear it: just log it.
                    core.state.nflog.insert(key, entry);
                    changed = true;
                    continue;
                }
                let p = webhook::payload(
                    &receiver.name,
                    &f.group_key,
                    &f.group_labels,
                    &send,
                    &self.external_url(),
                    w.max_alerts,
                );
                let status = p.status.to_string();
                let encoded = if forward {
                    // Sent again every repeat interval: alive until two of them pass.
                    let ttl = f
                        .opts
                        .repeat_interval
                        .saturating_mul(2)
                        .saturating_add(f.opts.group_interval);
                    serde_json::to_vec(&webhook::postable_alerts(&send, now.saturating_add(ttl)))
                } else {
                    serde_json::to_vec(&p)
                };
                let body = match encoded {
                    Ok(b) => b,
                    Err(e) => {
                        tracing::error!(error = %e, "Cannot encode a webhook payload.");
                        continue;
                    }
                };
                core.inflight.insert(key.clone());
                let me = Arc::clone(self);
                let w = w.clone();
                let meta = Delivery {
                    at: now,
                    group_key: f.group_key.clone(),
                    receiver: receiver.name.clone(),
                    target: webhook::redact(&w.url),
                    status,
                    firing: entry.firing.len(),
                    resolved: if w.send_resolved {
                        entry.resolved.len()
                    } else {
                        0
                    },
                    attempts: 0,
                    outcome: String::new(),
                    error: None,
                };
                tokio::spawn(async move {
                    let out = webhook::deliver(&w, &body, &me.allow, me.backoff).await;
                    let mut core = me.core.lock().await;
                    core.inflight.remove(&key);
                    let at = now_ms();
                    let delivered = out.error.is_none();
                    if delivered {
                        core.state.nflog.insert(
                            key,
                            NflogEntry {
                                sent_at: at,
                                ..entry
                            },
                        );
                    } else {
                        tracing::error!(receiver = %meta.receiver, group = %meta.group_key, error = ?out.error, "Notification not delivered; the next group interval tries again.");
                    }
                    core.state.record(Delivery {
                        at,
                        attempts: out.attempts,
                        outcome: if delivered { "delivered" } else { "failed" }.into(),
                        error: out.error,
                        ..meta
                    });
                    me.persist(&core).await;
                });
            }
        }
        if changed {
            self.persist(&core).await;
        }
    }

    /// Writes the state; the caller holds the lock, so writes are ordered.
    async fn persist(&self, core: &Core) {
        let store = self.store.clone();
        let state = core.state.clone();
        match tokio::task::spawn_blocking(move || store.save(&state)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::error!(error = %e, "Cannot persist alert state; a restart may repeat or miss notifications.")
            }
            Err(e) => tracing::error!(error = %e, "Alert state persistence task failed."),
        }
    }

    /// Adds a silence and persists it.
    pub(crate) async fn add_silence(&self, s: super::silence::Silence) {
        let mut core = self.core.lock().await;
        core.state.silences.push(s);
        self.persist(&core).await;
    }

    /// Expires a silence; false when unknown.
    pub(crate) async fn expire_silence(&self, id: &str) -> bool {
        let mut core = self.core.lock().await;
        let ok = super::silence::expire(&mut core.state.silences, id, now_ms());
        if ok {
            self.persist(&core).await;
        }
        ok
    }
}

/// Turns a query result into samples: `value` is the value, every other column a label.
pub fn samples_from_result(r: &QueryResult) -> Result<Vec<Sample>, String> {
    let mut out = Vec::new();
    for batch in &r.batches {
        let schema = batch.schema();
        let mut labels: Vec<(String, StringArray)> = Vec::new();
        let mut value: Option<Float64Array> = None;
        for (i, f) in schema.fields().iter().enumerate() {
            let col = batch.column(i);
            if f.name() == "value" {
                let v = arrow::compute::cast(col, &DataType::Float64)
                    .map_err(|e| format!("the `value` column is not numeric: {e}"))?;
                value = v.as_any().downcast_ref::<Float64Array>().cloned();
            } else {
                let v = arrow::compute::cast(col, &DataType::Utf8)
                    .map_err(|e| format!("column {:?} cannot be a label: {e}", f.name()))?;
                if let Some(s) = v.as_any().downcast_ref::<StringArray>() {
                    labels.push((label_name(f.name()), s.clone()));
                }
            }
        }
        for row in 0..batch.num_rows() {
            let l: Labels = labels
                .iter()
                .filter(|(_, a)| a.is_valid(row))
                .map(|(n, a)| (n.clone(), a.value(row).to_string()))
                .collect();
            let v = value
                .as_ref()
                .and_then(|a| a.is_valid(row).then(|| a.value(row)));
            out.push(Sample {
                labels: l,
                value: v,
            });
        }
    }
    Ok(out)
}

/// A column name as a label name: characters outside `[a-zA-Z0-9_]` become `_`.
pub fn label_name(col: &str) -> String {
    let mut s: String = col
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, '_');
    }
    s
}
