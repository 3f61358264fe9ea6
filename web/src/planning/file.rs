//! Milestone files: JSON or YAML, either a list of milestones (the API's shape) or an object
//! with a `milestones` list, such as the calendar `crest simulate --calendar-out` writes, whose
//! drivers (`audience_share`, `expected_multiplier` and `target_qps` per service) are mapped to
//! the API's.

use forecast::milestone::{Drivers, MilestoneKind, MilestoneSpec, ServiceDrivers, rfc3339};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Deserialize)]
#[serde(untagged)]
enum Doc {
    List(Vec<Value>),
    Calendar { milestones: Vec<Value> },
}

/// The calendar's record shape.
#[derive(Deserialize)]
struct CalendarRecord {
    name: String,
    kind: String,
    start: String,
    end: String,
    #[serde(default)]
    drivers: Value,
    #[serde(default)]
    notes: String,
}

/// Parses a milestone file; the error names the entry (and, for YAML syntax, the line).
pub fn parse(text: &str) -> Result<Vec<MilestoneSpec>, String> {
    let doc: Doc = serde_yaml::from_str(text).map_err(|e| match e.location() {
        Some(l) => format!("line {}: {e}", l.line()),
        None => e.to_string(),
    })?;
    let items = match doc {
        Doc::List(v) | Doc::Calendar { milestones: v } => v,
    };
    let mut out = Vec::with_capacity(items.len());
    let mut names = std::collections::BTreeSet::new();
    for (i, item) in items.into_iter().enumerate() {
        let at = |e: &dyn std::fmt::Display| {
            let name = item.get("name").and_then(Value::as_str).unwrap_or("?");
            format!("milestone {} ({name:?}): {e}", i + 1)
        };
        let spec = match serde_json::from_value::<MilestoneSpec>(item.clone()) {
            Ok(s) => s,
            Err(direct) => from_calendar(&item).map_err(|_| at(&direct))?,
        };
        spec.check().map_err(|e| at(&e))?;
        if !names.insert(spec.name.clone()) {
            return Err(at(&"the name appears twice in the file"));
        }
        out.push(spec);
    }
    Ok(out)
}

fn from_calendar(item: &Value) -> Result<MilestoneSpec, String> {
    let r: CalendarRecord = serde_json::from_value(item.clone()).map_err(|e| e.to_string())?;
    let per_service = |key: &str| -> BTreeMap<String, f64> {
        r.drivers
            .get(key)
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_f64()?)))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut services: BTreeMap<String, ServiceDrivers> = BTreeMap::new();
    for (s, m) in per_service("expected_multiplier") {
        services.entry(s).or_default().multiplier = Some(m);
    }
    for (s, q) in per_service("target_qps") {
        services.entry(s).or_default().target_qps = Some(q);
    }
    let kind = MilestoneKind::parse(&r.kind).map_err(|e| e.to_string())?;
    // A rehearsal's per-service target is the scenario's expected peak, not a load to drive:
    // only stress tests keep theirs.
    if kind != MilestoneKind::StressTest {
        services.values_mut().for_each(|s| s.target_qps = None);
        services.retain(|_, s| s.multiplier.is_some());
    }
    Ok(MilestoneSpec {
        name: r.name,
        kind,
        start: rfc3339::parse(&r.start)?,
        end: rfc3339::parse(&r.end)?,
        drivers: Drivers {
            expected_audience: r.drivers.get("audience_share").and_then(Value::as_f64),
            multiplier: None,
            target_qps: None,
            services,
        },
        notes: r.notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_api_shape_in_yaml_and_the_simulator_calendar() {
        let yaml = "- name: stress test 1\n  kind: stress_test\n  start: 2026-01-05T02:00:00Z\n  end: 2026-01-05T03:00:00Z\n  drivers: {target_qps: 5000}\n";
        let v = parse(yaml).expect("yaml");
        assert_eq!(v[0].drivers.target_for("x"), Some(5000.0));
        let cal = r#"{"version":1,"milestones":[
          {"name":"rehearsal 1","kind":"rehearsal","start":"2026-01-19T20:00:00Z","end":"2026-01-19T22:00:00Z",
           "drivers":{"audience_share":0.1,"rounds":[],"expected_multiplier":{"envelope-grab":6.0},
                      "target_qps":{"envelope-grab":1200.0,"feed":900.0}},"notes":"n"},
          {"name":"stress test 3","kind":"stress_test","start":"2026-01-13T02:00:00Z","end":"2026-01-13T03:30:00Z",
           "drivers":{"services":["envelope-grab"],"target_qps":{"envelope-grab":4000.0},"synthetic":true}}]}"#;
        let v = parse(cal).expect("calendar");
        assert_eq!(v[0].drivers.expected_audience, Some(0.1));
        assert_eq!(
            v[0].drivers.multiplier_for("envelope-grab").map(|m| m.0),
            Some(6.0)
        );
        assert_eq!(v[0].drivers.target_for("feed"), None);
        assert_eq!(v[1].drivers.target_for("envelope-grab"), Some(4000.0));
    }

    #[test]
    fn errors_name_the_entry_or_line() {
        let e = parse("- name: a\n  kind: party\n  start: 0\n  end: 1\n").unwrap_err();
        assert!(
            e.contains("milestone 1 (\"a\")") && e.contains("party"),
            "{e}"
        );
        let e = parse("- name: a\n  kind: live\n  start: 5\n  end: 1\n").unwrap_err();
        assert!(e.contains("end"), "{e}");
        let e = parse("- name: [\n").unwrap_err();
        assert!(e.starts_with("line "), "{e}");
        let e = parse("- {name: a, kind: live, start: 0, end: 1}\n- {name: a, kind: live, start: 0, end: 1}\n")
            .unwrap_err();
        assert!(e.contains("twice"), "{e}");
    }
}
