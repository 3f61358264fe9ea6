//! Alertmanager's configuration shape: the routing tree, receivers and inhibition rules.
//!
//! `route` is a tree; an alert walks it depth first, entering the first child whose matchers
//! match (and further siblings when that child has `continue: true`); the deepest routes it
//! reaches decide its receiver and grouping. Children inherit what they leave unset. Unknown keys
//! are refused, so a typo is an error at start rather than a silent default.

use super::matcher::{Matcher, all_match};
use super::ssrf::Allow;
use super::{Labels, PromDuration, labels_string};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

/// The file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AmConfigFile {
    /// Accepted and ignored (Crest has no global SMTP/Slack settings).
    #[serde(default)]
    pub global: Option<serde_yaml::Value>,
    /// Accepted and ignored (Go templates are not supported).
    #[serde(default)]
    pub templates: Vec<String>,
    /// The routing tree.
    pub route: RouteConfig,
    /// Receivers.
    pub receivers: Vec<ReceiverConfig>,
    /// Inhibition rules.
    #[serde(default)]
    pub inhibit_rules: Vec<InhibitRule>,
}

/// A route as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Receiver name (required at the root).
    #[serde(default)]
    pub receiver: Option<String>,
    /// Labels to group by; `...` groups by all labels.
    #[serde(default)]
    pub group_by: Option<Vec<String>>,
    /// Wait before the first notification of a new group.
    #[serde(default)]
    pub group_wait: Option<PromDuration>,
    /// Wait between notifications of a group that changed.
    #[serde(default)]
    pub group_interval: Option<PromDuration>,
    /// Wait before repeating an unchanged notification.
    #[serde(default)]
    pub repeat_interval: Option<PromDuration>,
    /// Label matchers, e.g. `severity="critical"`.
    #[serde(default)]
    pub matchers: Vec<Matcher>,
    /// Deprecated equality matchers.
    #[serde(default, rename = "match")]
    pub match_eq: BTreeMap<String, String>,
    /// Deprecated regex matchers.
    #[serde(default)]
    pub match_re: BTreeMap<String, String>,
    /// Keep matching siblings after this one matched.
    #[serde(default, rename = "continue")]
    pub continue_: bool,
    /// Child routes.
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
}

/// A receiver as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiverConfig {
    /// Its name.
    pub name: String,
    /// Webhooks.
    #[serde(default)]
    pub webhook_configs: Vec<WebhookConfig>,
    /// Crest: real Alertmanagers the alerts are forwarded to (`POST <url>/api/v2/alerts`, as
    /// Prometheus does), for teams whose routing lives there.
    #[serde(default)]
    pub alertmanager_configs: Vec<AlertmanagerConfig>,
}

/// An Alertmanager alerts are forwarded to.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerConfig {
    /// Base URL, e.g. `http://alertmanager:9093` (the API path is added).
    pub url: String,
    /// Per-attempt timeout (default 10s).
    #[serde(default)]
    pub timeout: Option<PromDuration>,
}

impl AlertmanagerConfig {
    /// The endpoint alerts are posted to.
    pub fn endpoint(&self) -> String {
        format!("{}/api/v2/alerts", self.url.trim_end_matches('/'))
    }

    /// As a delivery target: resolved alerts are always sent, since Alertmanager would keep an
    /// alert firing until its `endsAt` otherwise.
    pub fn as_webhook(&self) -> WebhookConfig {
        WebhookConfig {
            url: self.endpoint(),
            send_resolved: true,
            hmac_secret: None,
            max_alerts: 0,
            timeout: self.timeout,
        }
    }
}

/// One webhook integration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Target URL (http only in this build).
    pub url: String,
    /// Also notify when alerts resolve (default true, as in Alertmanager).
    #[serde(default = "default_true")]
    pub send_resolved: bool,
    /// Crest: sign bodies with HMAC-SHA256 in `X-Crest-Signature: sha256=<hex>`.
    #[serde(default)]
    pub hmac_secret: Option<String>,
    /// Most alerts per payload (0: all); the rest are counted in `truncatedAlerts`.
    #[serde(default)]
    pub max_alerts: usize,
    /// Per-attempt timeout (default 10s).
    #[serde(default)]
    pub timeout: Option<PromDuration>,
}

fn default_true() -> bool {
    true
}

/// An inhibition rule: while a firing alert matches `source_matchers`, alerts matching
/// `target_matchers` with equal values of the `equal` labels are muted.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InhibitRule {
    /// Which alerts inhibit.
    #[serde(default)]
    pub source_matchers: Vec<Matcher>,
    /// Which alerts get inhibited.
    #[serde(default)]
    pub target_matchers: Vec<Matcher>,
    /// Labels that must be equal on source and target.
    #[serde(default)]
    pub equal: Vec<String>,
}

/// Timing and grouping of a route, inheritance resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteOpts {
    /// Receiver name.
    pub receiver: String,
    /// Group-by labels; `None` means all labels (`...`).
    pub group_by: Option<BTreeSet<String>>,
    /// ms.
    pub group_wait: i64,
    /// ms.
    pub group_interval: i64,
    /// ms.
    pub repeat_interval: i64,
}

/// One route of the compiled tree.
#[derive(Debug, Clone)]
pub struct RouteNode {
    /// Alertmanager-style key: `{}/{severity="critical"}`.
    pub key: String,
    /// Matchers of this node only.
    pub matchers: Vec<Matcher>,
    /// Resolved options.
    pub opts: RouteOpts,
    /// Continue to siblings after matching.
    pub continue_: bool,
    /// Child indexes into [`AmConfig::nodes`].
    pub children: Vec<usize>,
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct AmConfig {
    /// Routes; index 0 is the root.
    pub nodes: Vec<RouteNode>,
    /// Receivers by name.
    pub receivers: BTreeMap<String, ReceiverConfig>,
    /// Inhibition rules.
    pub inhibit_rules: Vec<InhibitRule>,
}

impl AmConfig {
    /// Reads, parses and validates a file; errors name the file and the line.
    pub fn load(path: &Path, allow: &Allow) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read alertmanager config {}: {e}", path.display()))?;
        Self::parse(&text, allow).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parses and validates config text.
    pub fn parse(text: &str, allow: &Allow) -> Result<Self, String> {
        let file: AmConfigFile = serde_yaml::from_str(text).map_err(|e| {
            let loc = e
                .location()
                .map(|l| format!("line {}: ", l.line()))
                .unwrap_or_default();
            let msg = e.to_string();
            format!("{loc}{}", msg.split(" at line ").next().unwrap_or(&msg))
        })?;
        Self::build(file, allow)
    }

    /// Validates a parsed file.
    pub fn build(file: AmConfigFile, allow: &Allow) -> Result<Self, String> {
        let mut receivers = BTreeMap::new();
        for r in file.receivers {
            for w in &r.webhook_configs {
                super::ssrf::check_config_url(&w.url, allow)
                    .map_err(|e| format!("receiver {:?}: {e}", r.name))?;
            }
            for a in &r.alertmanager_configs {
                super::ssrf::check_config_url(&a.endpoint(), allow)
                    .map_err(|e| format!("receiver {:?}: alertmanager {e}", r.name))?;
            }
            if receivers.insert(r.name.clone(), r.clone()).is_some() {
                return Err(format!("receiver {:?} defined twice", r.name));
            }
        }
        let root = &file.route;
        if root.receiver.is_none() {
            return Err("the root route needs a `receiver`".into());
        }
        if !root.matchers.is_empty() || !root.match_eq.is_empty() || !root.match_re.is_empty() {
            return Err("the root route must not have matchers".into());
        }
        let defaults = RouteOpts {
            receiver: String::new(),
            group_by: Some(BTreeSet::new()),
            group_wait: 30_000,
            group_interval: 300_000,
            repeat_interval: 4 * 3_600_000,
        };
        let mut nodes = Vec::new();
        compile(root, &defaults, "", &receivers, &mut nodes)?;
        Ok(Self {
            nodes,
            receivers,
            inhibit_rules: file.inhibit_rules,
        })
    }

    /// A configuration with one receiver that has no integrations: alerts are evaluated and
    /// listed, nothing is sent.
    pub fn none() -> Self {
        let mut receivers = BTreeMap::new();
        receivers.insert(
            "none".to_string(),
            ReceiverConfig {
                name: "none".into(),
                webhook_configs: vec![],
                alertmanager_configs: vec![],
            },
        );
        Self {
            nodes: vec![RouteNode {
                key: "{}".into(),
                matchers: vec![],
                opts: RouteOpts {
                    receiver: "none".into(),
                    group_by: Some(BTreeSet::new()),
                    group_wait: 30_000,
                    group_interval: 300_000,
                    repeat_interval: 4 * 3_600_000,
                },
                continue_: false,
                children: vec![],
            }],
            receivers,
            inhibit_rules: vec![],
        }
    }

    /// The routes an alert ends up at (indexes into `nodes`), Alertmanager's walk.
    pub fn match_routes(&self, labels: &Labels) -> Vec<usize> {
        let mut out = Vec::new();
        self.walk(0, labels, &mut out);
        out
    }

    fn walk(&self, i: usize, labels: &Labels, out: &mut Vec<usize>) -> bool {
        let n = &self.nodes[i];
        if !all_match(&n.matchers, labels) {
            return false;
        }
        let mut any = false;
        for &c in &n.children {
            if self.walk(c, labels, out) {
                any = true;
                if !self.nodes[c].continue_ {
                    break;
                }
            }
        }
        if !any {
            out.push(i);
        }
        true
    }

    /// The group labels and group key of an alert at route `i`.
    pub fn group_of(&self, i: usize, labels: &Labels) -> (Labels, String) {
        let n = &self.nodes[i];
        let group: Labels = match &n.opts.group_by {
            None => labels.clone(),
            Some(by) => labels
                .iter()
                .filter(|(k, _)| by.contains(*k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        };
        let key = format!("{}:{}", n.key, labels_string(&group));
        (group, key)
    }
}

fn compile(
    r: &RouteConfig,
    parent: &RouteOpts,
    parent_key: &str,
    receivers: &BTreeMap<String, ReceiverConfig>,
    nodes: &mut Vec<RouteNode>,
) -> Result<usize, String> {
    let mut matchers = r.matchers.clone();
    for (k, v) in &r.match_eq {
        matchers.push(Matcher::new(k, super::matcher::MatchOp::Eq, v)?);
    }
    for (k, v) in &r.match_re {
        matchers.push(Matcher::new(k, super::matcher::MatchOp::Re, v)?);
    }
    let ms = |d: Option<PromDuration>, p: i64| d.map_or(p, PromDuration::ms);
    let opts = RouteOpts {
        receiver: r
            .receiver
            .clone()
            .unwrap_or_else(|| parent.receiver.clone()),
        group_by: match &r.group_by {
            None => parent.group_by.clone(),
            Some(v) if v.iter().any(|x| x == "...") => None,
            Some(v) => Some(v.iter().cloned().collect()),
        },
        group_wait: ms(r.group_wait, parent.group_wait),
        group_interval: ms(r.group_interval, parent.group_interval),
        repeat_interval: ms(r.repeat_interval, parent.repeat_interval),
    };
    if !receivers.contains_key(&opts.receiver) {
        return Err(format!("route uses undefined receiver {:?}", opts.receiver));
    }
    if opts.group_interval <= 0 || opts.repeat_interval <= 0 {
        return Err("group_interval and repeat_interval must be positive".into());
    }
    let own: Vec<String> = matchers.iter().map(ToString::to_string).collect();
    let key = if parent_key.is_empty() {
        format!("{{{}}}", own.join(","))
    } else {
        format!("{parent_key}/{{{}}}", own.join(","))
    };
    let idx = nodes.len();
    nodes.push(RouteNode {
        key: key.clone(),
        matchers,
        opts: opts.clone(),
        continue_: r.continue_,
        children: vec![],
    });
    for (ci, c) in r.routes.iter().enumerate() {
        // Siblings with identical matchers would share a key; the index keeps them apart.
        let child = compile(c, &opts, &format!("{key}/{ci}"), receivers, nodes)?;
        nodes[idx].children.push(child);
    }
    Ok(idx)
}

/// Which alerts are inhibited: those matching a rule's target while a different alert matching
/// its source fires with equal `equal` labels. `firing` are the labels of firing alerts.
pub fn inhibited(rules: &[InhibitRule], firing: &[&Labels], target: &Labels) -> bool {
    rules.iter().any(|r| {
        all_match(&r.target_matchers, target)
            && firing.iter().any(|src| {
                *src != target
                    && all_match(&r.source_matchers, src)
                    && r.equal.iter().all(|l| src.get(l) == target.get(l))
            })
    })
}

/// Default per-attempt webhook timeout.
pub const DEFAULT_WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn l(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const CFG: &str = r#"
route:
  receiver: default
  group_by: [alertname]
  group_wait: 1s
  group_interval: 2s
  repeat_interval: 4s
  routes:
    - matchers: ['severity="critical"']
      receiver: pager
      group_by: [alertname, service]
      continue: true
    - matchers: ['severity=~"critical|warning"']
      receiver: chat
      repeat_interval: 1h
      routes:
        - matchers: ['team="db"']
          receiver: dba
          group_by: ['...']
receivers:
  - name: default
  - name: pager
    webhook_configs:
      - url: http://hooks.example.com/pager
        hmac_secret: s3cret
  - name: chat
    webhook_configs:
      - url: http://hooks.example.com/chat
        send_resolved: false
  - name: dba
inhibit_rules:
  - source_matchers: ['severity="critical"']
    target_matchers: ['severity="warning"']
    equal: [service]
"#;

    fn cfg() -> AmConfig {
        AmConfig::parse(CFG, &Allow::default()).expect("parses")
    }

    fn receivers(c: &AmConfig, labels: &Labels) -> Vec<String> {
        c.match_routes(labels)
            .into_iter()
            .map(|i| c.nodes[i].opts.receiver.clone())
            .collect()
    }

    #[test]
    fn routing_tree_walks_like_alertmanager() {
        let c = cfg();
        assert_eq!(receivers(&c, &l(&[("severity", "info")])), ["default"]);
        // continue: true on the pager route lets the chat route match too.
        assert_eq!(
            receivers(&c, &l(&[("severity", "critical")])),
            ["pager", "chat"]
        );
        assert_eq!(receivers(&c, &l(&[("severity", "warning")])), ["chat"]);
        assert_eq!(
            receivers(&c, &l(&[("severity", "warning"), ("team", "db")])),
            ["dba"]
        );
    }

    #[test]
    fn children_inherit_unset_options() {
        let c = cfg();
        let chat = &c.nodes[c.match_routes(&l(&[("severity", "warning")]))[0]];
        assert_eq!(chat.opts.group_wait, 1_000);
        assert_eq!(chat.opts.repeat_interval, 3_600_000);
        let dba = &c.nodes[c.match_routes(&l(&[("severity", "warning"), ("team", "db")]))[0]];
        assert_eq!(dba.opts.repeat_interval, 3_600_000);
        assert_eq!(dba.opts.group_by, None);
    }

    #[test]
    fn group_keys_follow_group_by() {
        let c = cfg();
        let a = l(&[
            ("alertname", "A"),
            ("severity", "critical"),
            ("service", "x"),
        ]);
        let routes = c.match_routes(&a);
        let (g, key) = c.group_of(routes[0], &a);
        assert_eq!(g, l(&[("alertname", "A"), ("service", "x")]));
        assert!(key.ends_with(r#":{alertname="A", service="x"}"#), "{key}");
        let (_, key2) = c.group_of(routes[1], &a);
        assert_ne!(key, key2, "different routes, different groups");
    }

    #[test]
    fn config_errors_are_clear() {
        let a = Allow::default();
        let e = AmConfig::parse("route: {receiver: x}\nreceivers: []\n", &a).expect_err("x");
        assert!(e.contains("undefined receiver \"x\""), "{e}");
        let e = AmConfig::parse(
            "route: {receiver: x}\nreceivers: [{name: x}]\nbogus: 1\n",
            &a,
        )
        .expect_err("bogus");
        assert!(e.contains("line 3") && e.contains("bogus"), "{e}");
        let e = AmConfig::parse(
            "route: {receiver: x}\nreceivers:\n  - name: x\n    webhook_configs: [{url: 'http://10.0.0.5/hook'}]\n",
            &a,
        )
        .expect_err("private");
        assert!(
            e.contains("10.0.0.5") && e.contains("--webhook-allow"),
            "{e}"
        );
        let e = AmConfig::parse(
            "route: {receiver: x, matchers: ['a=\"b\"']}\nreceivers: [{name: x}]\n",
            &a,
        )
        .expect_err("root matchers");
        assert!(e.contains("root route"), "{e}");
    }

    #[test]
    fn inhibition_needs_a_firing_source_with_equal_labels() {
        let c = cfg();
        let crit = l(&[("severity", "critical"), ("service", "checkout")]);
        let warn_same = l(&[("severity", "warning"), ("service", "checkout")]);
        let warn_other = l(&[("severity", "warning"), ("service", "search")]);
        let firing = [&crit];
        assert!(inhibited(&c.inhibit_rules, &firing, &warn_same));
        assert!(!inhibited(&c.inhibit_rules, &firing, &warn_other));
        assert!(!inhibited(&c.inhibit_rules, &firing, &crit));
        assert!(!inhibited(&c.inhibit_rules, &[], &warn_same));
    }
}
