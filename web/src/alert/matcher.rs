//! Label matchers in Alertmanager's syntax (`severity="critical"`, `service!="db"`,
//! `instance=~"web-.*"`, `env!~"dev|test"`), used by routes, inhibition rules and silences.
//! A missing label matches as the empty string, as in Alertmanager.

use super::Labels;
use regex::Regex;
use serde::{Deserialize, Serialize};

/// How a matcher compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MatchOp {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `=~` (anchored regex)
    Re,
    /// `!~` (anchored regex)
    NotRe,
}

impl MatchOp {
    fn as_str(self) -> &'static str {
        match self {
            MatchOp::Eq => "=",
            MatchOp::Ne => "!=",
            MatchOp::Re => "=~",
            MatchOp::NotRe => "!~",
        }
    }
}

/// One label matcher.
#[derive(Debug, Clone)]
pub struct Matcher {
    /// Label name.
    pub name: String,
    /// Comparison.
    pub op: MatchOp,
    /// Value or regex source.
    pub value: String,
    re: Option<Regex>,
}

impl PartialEq for Matcher {
    fn eq(&self, o: &Self) -> bool {
        self.name == o.name && self.op == o.op && self.value == o.value
    }
}

impl Matcher {
    /// Builds a matcher, compiling the regex (anchored at both ends) for `=~` and `!~`.
    pub fn new(name: &str, op: MatchOp, value: &str) -> Result<Self, String> {
        if !valid_label_name(name) {
            return Err(format!("invalid label name {name:?} in matcher"));
        }
        let re = match op {
            MatchOp::Re | MatchOp::NotRe => Some(
                Regex::new(&format!("^(?:{value})$"))
                    .map_err(|e| format!("invalid regex {value:?} for label {name:?}: {e}"))?,
            ),
            _ => None,
        };
        Ok(Self {
            name: name.to_string(),
            op,
            value: value.to_string(),
            re,
        })
    }

    /// Parses `name<op>"value"` (quotes optional for plain values).
    pub fn parse(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let t = t
            .strip_prefix('{')
            .and_then(|x| x.strip_suffix('}'))
            .unwrap_or(t)
            .trim();
        let pos = t
            .find(['=', '!'])
            .ok_or_else(|| format!("matcher {s:?} has no operator (=, !=, =~, !~)"))?;
        let name = t[..pos].trim();
        let rest = &t[pos..];
        let (op, rest) = if let Some(r) = rest.strip_prefix("=~") {
            (MatchOp::Re, r)
        } else if let Some(r) = rest.strip_prefix("!~") {
            (MatchOp::NotRe, r)
        } else if let Some(r) = rest.strip_prefix("!=") {
            (MatchOp::Ne, r)
        } else if let Some(r) = rest.strip_prefix('=') {
            (MatchOp::Eq, r)
        } else {
            return Err(format!("matcher {s:?} has no operator (=, !=, =~, !~)"));
        };
        let rest = rest.trim();
        let value = if let Some(q) = rest.strip_prefix('"') {
            let inner = q
                .strip_suffix('"')
                .ok_or_else(|| format!("matcher {s:?} has an unterminated quote"))?;
            unescape(inner)
        } else {
            if rest.contains(['"', ',', '{', '}']) {
                return Err(format!(
                    "matcher {s:?}: quote values with special characters"
                ));
            }
            rest.to_string()
        };
        Self::new(name, op, &value).map_err(|e| format!("matcher {s:?}: {e}"))
    }

    /// True when `labels` satisfy this matcher.
    pub fn matches(&self, labels: &Labels) -> bool {
        let v = labels.get(&self.name).map_or("", String::as_str);
        match self.op {
            MatchOp::Eq => v == self.value,
            MatchOp::Ne => v != self.value,
            MatchOp::Re => self.re.as_ref().is_some_and(|r| r.is_match(v)),
            MatchOp::NotRe => !self.re.as_ref().is_some_and(|r| r.is_match(v)),
        }
    }
}

impl std::fmt::Display for Matcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}{:?}", self.name, self.op.as_str(), self.value)
    }
}

/// True when every matcher matches.
pub fn all_match(ms: &[Matcher], labels: &Labels) -> bool {
    ms.iter().all(|m| m.matches(labels))
}

/// A Prometheus label name: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn valid_label_name(n: &str) -> bool {
    let mut c = n.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c == '\\' {
            match it.next() {
                Some('n') => out.push('\n'),
                Some(o) => out.push(o),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Alertmanager API v2's matcher object.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApiMatcher {
    name: String,
    value: String,
    #[serde(default)]
    is_regex: bool,
    #[serde(default = "yes")]
    is_equal: bool,
}

fn yes() -> bool {
    true
}

impl Serialize for Matcher {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        ApiMatcher {
            name: self.name.clone(),
            value: self.value.clone(),
            is_regex: matches!(self.op, MatchOp::Re | MatchOp::NotRe),
            is_equal: matches!(self.op, MatchOp::Eq | MatchOp::Re),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Matcher {
    /// Either the text form (`severity="critical"`) or Alertmanager API v2's object.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            Text(String),
            Api(ApiMatcher),
        }
        match Form::deserialize(d)? {
            Form::Text(t) => Matcher::parse(&t).map_err(serde::de::Error::custom),
            Form::Api(a) => {
                let op = match (a.is_regex, a.is_equal) {
                    (false, true) => MatchOp::Eq,
                    (false, false) => MatchOp::Ne,
                    (true, true) => MatchOp::Re,
                    (true, false) => MatchOp::NotRe,
                };
                Matcher::new(&a.name, op, &a.value).map_err(serde::de::Error::custom)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_and_matches_every_operator() {
        let labels = l(&[("severity", "critical"), ("service", "checkout")]);
        for (m, want) in [
            (r#"severity="critical""#, true),
            ("severity=critical", true),
            (r#"severity!="critical""#, false),
            (r#"service=~"check.*""#, true),
            (r#"service=~"check""#, false), // anchored
            (r#"service!~"web|api""#, true),
            (r#"team="""#, true), // missing label is ""
            (r#"team!="""#, false),
            (r#"{ severity = "critical" }"#, true),
        ] {
            let parsed = Matcher::parse(m).unwrap_or_else(|e| panic!("{m}: {e}"));
            assert_eq!(parsed.matches(&labels), want, "{m}");
        }
    }

    #[test]
    fn bad_matchers_say_why() {
        for (m, needle) in [
            ("severity", "no operator"),
            (r#"sev-erity="x""#, "invalid label name"),
            (r#"a=~"(""#, "invalid regex"),
            (r#"a="x"#, "unterminated"),
        ] {
            let e = Matcher::parse(m).expect_err(m);
            assert!(e.contains(needle), "{m}: {e}");
        }
    }

    #[test]
    fn api_form_round_trips() {
        let m = Matcher::parse(r#"env!~"dev|test""#).expect("parse");
        let j = serde_json::to_string(&m).expect("ser");
        assert_eq!(
            j,
            r#"{"name":"env","value":"dev|test","isRegex":true,"isEqual":false}"#
        );
        let back: Matcher = serde_json::from_str(&j).expect("de");
        assert_eq!(back, m);
        let text: Matcher = serde_json::from_str(r#""env=prod""#).expect("de text");
        assert!(text.matches(&l(&[("env", "prod")])));
    }
}
