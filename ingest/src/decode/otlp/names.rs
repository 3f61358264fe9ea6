//! Metric and label names the way Prometheus translates OTLP (`prometheus/otlptranslator`,
//! "with suffixes"): names are split into tokens at characters outside `[a-zA-Z0-9:]` (so runs
//! of `_` collapse) and joined with `_`; the unit becomes a suffix (`s` → `_seconds`, `By` → `_bytes`,
//! `By/s` → `_bytes_per_second`; annotations in braces such as `{request}` add nothing);
//! monotonic sums end in `_total`, gauges with unit `1` in `_ratio`.

/// What a metric is, as far as its name is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    /// A gauge (unit `1` adds `_ratio`).
    Gauge,
    /// A monotonic sum (adds `_total`).
    Counter,
    /// Anything else: non-monotonic sums, histograms, summaries.
    Other,
}

/// The Prometheus unit word of an OTLP (UCUM) unit, if it has one.
fn unit_word(unit: &str) -> &str {
    match unit {
        "d" => "days",
        "h" => "hours",
        "min" => "minutes",
        "s" => "seconds",
        "ms" => "milliseconds",
        "us" => "microseconds",
        "ns" => "nanoseconds",
        "By" => "bytes",
        "KiBy" => "kibibytes",
        "MiBy" => "mebibytes",
        "GiBy" => "gibibytes",
        "TiBy" => "tibibytes",
        "KBy" => "kilobytes",
        "MBy" => "megabytes",
        "GBy" => "gigabytes",
        "TBy" => "terabytes",
        "m" => "meters",
        "V" => "volts",
        "A" => "amperes",
        "J" => "joules",
        "W" => "watts",
        "g" => "grams",
        "Cel" => "celsius",
        "Hz" => "hertz",
        "1" => "",
        "%" => "percent",
        other => other,
    }
}

/// The Prometheus word of a "per" unit (`/s` → `second`).
fn per_unit_word(unit: &str) -> &str {
    match unit {
        "s" => "second",
        "m" => "minute",
        "h" => "hour",
        "d" => "day",
        "w" => "week",
        "mo" => "month",
        "y" => "year",
        other => other,
    }
}

/// Non-alphanumeric runs become `_`, and `_` at either end goes.
fn clean_unit(word: &str) -> String {
    let mut out = String::with_capacity(word.len());
    for c in word.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_matches('_').to_string()
}

/// The Prometheus name of an OTLP metric with `unit` and `kind`.
pub fn metric_name(name: &str, unit: &str, kind: NameKind) -> String {
    let mut tokens: Vec<String> = name
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == ':'))
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect();
    let mut parts = unit.splitn(2, '/');
    let main = parts.next().unwrap_or("").trim();
    if !main.is_empty() && !main.contains(['{', '}']) {
        let word = clean_unit(unit_word(main));
        if !word.is_empty() && !tokens.contains(&word) {
            tokens.push(word);
        }
    }
    if let Some(per) = parts.next().map(str::trim)
        && !per.is_empty()
        && !per.contains(['{', '}'])
    {
        let word = clean_unit(per_unit_word(per));
        if !word.is_empty() && !tokens.contains(&word) {
            tokens.push("per".to_string());
            tokens.push(word);
        }
    }
    match kind {
        NameKind::Counter => {
            tokens.retain(|t| t != "total");
            tokens.push("total".to_string());
        }
        NameKind::Gauge if unit == "1" => {
            tokens.retain(|t| t != "ratio");
            tokens.push("ratio".to_string());
        }
        _ => {}
    }
    let joined = tokens.join("_");
    if joined.starts_with(|c: char| c.is_ascii_digit()) {
        format!("_{joined}")
    } else {
        joined
    }
}

/// The Prometheus label name of an attribute key: characters outside `[a-zA-Z0-9_]` become
/// `_`; a leading digit gets `key_` in front, a single leading `_` gets `key`.
pub fn label_name(key: &str) -> String {
    let mut out: String = key
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert_str(0, "key_");
    } else if out.starts_with('_') && !out.starts_with("__") {
        out.insert_str(0, "key");
    }
    out
}

/// An `le` or `quantile` label value: the shortest decimal that reads back as `v`, `+Inf` and
/// `-Inf` for infinities (Go's `strconv.FormatFloat(v, 'f', -1, 64)`, as Prometheus writes it).
pub fn float_label(v: f64) -> String {
    if v == f64::INFINITY {
        "+Inf".to_string()
    } else if v == f64::NEG_INFINITY {
        "-Inf".to_string()
    } else if v.is_nan() {
        "NaN".to_string()
    } else if v == 0.0 {
        "0".to_string()
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_names_follow_the_prometheus_translator() {
        use NameKind::*;
        let cases = [
            (
                "http.server.duration",
                "ms",
                Other,
                "http_server_duration_milliseconds",
            ),
            (
                "http.server.duration",
                "s",
                Other,
                "http_server_duration_seconds",
            ),
            (
                "http.server.requests",
                "{request}",
                Counter,
                "http_server_requests_total",
            ),
            ("requests_total", "1", Counter, "requests_total"),
            (
                "system.memory.usage",
                "By",
                Other,
                "system_memory_usage_bytes",
            ),
            ("network.io", "By/s", Gauge, "network_io_bytes_per_second"),
            (
                "process.cpu.utilization",
                "1",
                Gauge,
                "process_cpu_utilization_ratio",
            ),
            ("cpu.ratio", "1", Gauge, "cpu_ratio"),
            ("up.time", "1", Other, "up_time"),
            ("latency_seconds", "s", Other, "latency_seconds"),
            ("2xx.count", "", Counter, "_2xx_count_total"),
            ("a..b--c", "", Gauge, "a_b_c"),
            ("foo", "km/h", Gauge, "foo_km_per_hour"),
            ("foo", "Cel", Gauge, "foo_celsius"),
        ];
        for (name, unit, kind, want) in cases {
            assert_eq!(
                metric_name(name, unit, kind),
                want,
                "{name} {unit} {kind:?}"
            );
        }
    }

    #[test]
    fn label_names_are_sanitised() {
        assert_eq!(label_name("service.name"), "service_name");
        assert_eq!(
            label_name("http.response.status_code"),
            "http_response_status_code"
        );
        assert_eq!(label_name("k8s-pod/name"), "k8s_pod_name");
        assert_eq!(label_name("0day"), "key_0day");
        assert_eq!(label_name("_private"), "key_private");
        assert_eq!(label_name("__reserved"), "__reserved");
        assert_eq!(label_name("naïve"), "na_ve");
    }

    #[test]
    fn float_labels() {
        assert_eq!(float_label(0.005), "0.005");
        assert_eq!(float_label(1.0), "1");
        assert_eq!(float_label(1e6), "1000000");
        assert_eq!(float_label(f64::INFINITY), "+Inf");
        assert_eq!(float_label(-0.0), "0");
        assert_eq!(float_label(-2.5), "-2.5");
    }
}
