//! Charts drawn as SVG in the browser: time series (downsampled to the pixel width with LTTB,
//! drag to zoom, hover for values), stat, bars, tables and latency heatmaps. Every label is a
//! text node, so ingested strings are always escaped.

use leptos::prelude::*;
use serde_json::{Map, Value};

/// Plot area, in SVG units.
const W: f64 = 600.0;
const H: f64 = 200.0;
const LEFT: f64 = 64.0;
const BOTTOM: f64 = 20.0;
const PALETTE: [&str; 10] = [
    "#3b82f6", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6", "#14b8a6", "#ec4899", "#84cc16",
    "#f97316", "#64748b",
];

/// Short number: 1.2k, 3.4M, 0.012.
pub fn fmt_num(v: f64) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    let a = v.abs();
    let (x, suffix) = if a >= 1e9 {
        (v / 1e9, "G")
    } else if a >= 1e6 {
        (v / 1e6, "M")
    } else if a >= 1e4 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    let digits = if x.abs() >= 100.0 || x == x.trunc() {
        0
    } else if x.abs() >= 10.0 {
        1
    } else if x.abs() >= 0.1 {
        2
    } else {
        4
    };
    format!("{x:.digits$}{suffix}")
}

/// A value with its unit.
pub fn fmt_unit(v: f64, unit: Option<&str>) -> String {
    match unit {
        Some("s") if v.abs() < 1.0 && v != 0.0 => format!("{} ms", fmt_num(v * 1e3)),
        Some("s") => format!("{} s", fmt_num(v)),
        Some("ms") => format!("{} ms", fmt_num(v)),
        Some("percent") => format!("{}%", fmt_num(v)),
        Some("ratio") => format!("{}%", fmt_num(v * 100.0)),
        Some("reqps") => format!("{} req/s", fmt_num(v)),
        Some("bytes") => {
            let units = ["B", "KiB", "MiB", "GiB", "TiB"];
            let mut x = v;
            let mut i = 0;
            while x.abs() >= 1024.0 && i < units.len() - 1 {
                x /= 1024.0;
                i += 1;
            }
            format!("{} {}", fmt_num(x), units[i])
        }
        _ => fmt_num(v),
    }
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Unix ms of an RFC 3339-like timestamp (`2026-01-20T10:00:00Z`, fractions and `+00:00`
/// accepted, no offset means UTC), or of a number of ms.
pub fn parse_ts(v: &Value) -> Option<f64> {
    let s = match v {
        Value::String(s) => s.as_str(),
        Value::Number(n) => return n.as_f64(),
        _ => return None,
    };
    let b = s.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[10] != b'T' && b[10] != b' ' {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let days = days_from_civil(n(0..4)?, n(5..7)?, n(8..10)?);
    let mut ms = ((days * 24 + n(11..13)?) * 60 + n(14..16)?) * 60_000 + n(17..19)? * 1000;
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let digits: String = frac.chars().take_while(char::is_ascii_digit).collect();
        rest = &frac[digits.len()..];
        let scaled = format!("{digits:0<3}");
        ms += scaled[..3].parse::<i64>().unwrap_or(0);
    }
    if let Some(off) = rest
        .get(1..)
        .filter(|_| rest.starts_with('+') || rest.starts_with('-'))
    {
        let h: i64 = off.get(0..2)?.parse().ok()?;
        let m: i64 = off.get(3..5).and_then(|x| x.parse().ok()).unwrap_or(0);
        let sign = if rest.starts_with('+') { 1 } else { -1 };
        ms -= sign * (h * 60 + m) * 60_000;
    }
    Some(ms as f64)
}

/// `MM-DD HH:MM` (UTC) or `HH:MM` when the range is under a day.
pub fn fmt_time(ms: f64, span_ms: f64) -> String {
    let secs = (ms / 1000.0).floor() as i64;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (h, m, s) = (sod / 3600, sod % 3600 / 60, sod % 60);
    // civil from days
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    if span_ms <= 120_000.0 {
        format!("{h:02}:{m:02}:{s:02}")
    } else if span_ms < 86_400_000.0 {
        format!("{h:02}:{m:02}")
    } else {
        format!("{mo:02}-{d:02} {h:02}:{m:02}")
    }
}

/// Largest-Triangle-Three-Buckets: keeps at most `threshold` points with the shape of the line.
pub fn lttb(data: &[(f64, f64)], threshold: usize) -> Vec<(f64, f64)> {
    if threshold >= data.len() || threshold < 3 {
        return data.to_vec();
    }
    let mut out = Vec::with_capacity(threshold);
    let every = (data.len() - 2) as f64 / (threshold - 2) as f64;
    let mut a = 0usize;
    out.push(data[0]);
    for i in 0..threshold - 2 {
        let start = ((i as f64 + 1.0) * every).floor() as usize + 1;
        let end = (((i as f64 + 2.0) * every).floor() as usize + 1).min(data.len());
        let (mut ax, mut ay, mut n) = (0.0, 0.0, 0.0);
        for p in &data[start.min(data.len() - 1)..end] {
            ax += p.0;
            ay += p.1;
            n += 1.0;
        }
        if n > 0.0 {
            ax /= n;
            ay /= n;
        }
        let rs = (i as f64 * every).floor() as usize + 1;
        let re = ((i as f64 + 1.0) * every).floor() as usize + 1;
        let (px, py) = data[a];
        let mut best = (rs, -1.0);
        for (j, p) in data.iter().enumerate().take(re.min(data.len())).skip(rs) {
            let area = ((px - ax) * (p.1 - py) - (px - p.0) * (ay - py)).abs();
            if area > best.1 {
                best = (j, area);
            }
        }
        out.push(data[best.0]);
        a = best.0;
    }
    out.push(data[data.len() - 1]);
    out
}

/// A series: name and points (ms, value), sorted by time.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend name.
    pub name: String,
    /// Points.
    pub points: Vec<(f64, f64)>,
}

fn num(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// Splits rows into series: the `time` column (or the first timestamp column), one series per
/// value of the text columns, one per numeric column.
pub fn to_series(rows: &[Map<String, Value>]) -> Vec<Series> {
    let Some(first) = rows.first() else {
        return vec![];
    };
    let time_col = if first.contains_key("time") {
        "time".to_string()
    } else {
        match first
            .iter()
            .find(|(_, v)| parse_ts(v).is_some() && v.is_string())
        {
            Some((k, _)) => k.clone(),
            None => return vec![],
        }
    };
    let labels: Vec<&String> = first
        .iter()
        .filter(|(k, v)| **k != time_col && v.is_string() && parse_ts(v).is_none())
        .map(|(k, _)| k)
        .collect();
    let values: Vec<&String> = first
        .iter()
        .filter(|(k, v)| **k != time_col && (v.is_number() || v.is_null()))
        .map(|(k, _)| k)
        .collect();
    let mut by: std::collections::BTreeMap<String, Vec<(f64, f64)>> = Default::default();
    for r in rows {
        let Some(t) = r.get(&time_col).and_then(parse_ts) else {
            continue;
        };
        let label: Vec<String> = labels
            .iter()
            .map(|l| r.get(*l).map(crate::api::text).unwrap_or_default())
            .collect();
        for v in &values {
            let Some(y) = r.get(*v).and_then(num) else {
                continue;
            };
            let mut name = label.join(" ");
            if values.len() > 1 || name.is_empty() {
                if !name.is_empty() {
                    name.push(' ');
                }
                name.push_str(v);
            }
            by.entry(name).or_default().push((t, y));
        }
    }
    by.into_iter()
        .map(|(name, mut points)| {
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            Series { name, points }
        })
        .collect()
}

/// A time-series chart. `on_zoom` gets the dragged range in ms.
#[component]
pub fn TimeSeries(
    series: Vec<Series>,
    #[prop(optional)] unit: Option<String>,
    #[prop(optional)] range: Option<(f64, f64)>,
    #[prop(optional)] on_zoom: Option<Callback<(f64, f64)>>,
) -> impl IntoView {
    if series.iter().all(|s| s.points.is_empty()) {
        return view! { <p class="empty">"No data in this range."</p> }.into_any();
    }
    let (mut x0, mut x1, mut y1) = (f64::MAX, f64::MIN, f64::MIN);
    let mut y0 = 0.0f64;
    for s in &series {
        for &(x, y) in &s.points {
            x0 = x0.min(x);
            x1 = x1.max(x);
            y0 = y0.min(y);
            y1 = y1.max(y);
        }
    }
    if let Some((a, b)) = range {
        x0 = a;
        x1 = b;
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    if y1 <= y0 {
        y1 = y0 + 1.0;
    }
    y1 *= 1.05;
    let px = move |x: f64| LEFT + (x - x0) / (x1 - x0) * (W - LEFT);
    let py = move |y: f64| (H - BOTTOM) - (y - y0) / (y1 - y0) * (H - BOTTOM - 4.0);
    let width_px = (W - LEFT) as usize;
    let paths: Vec<(String, String, String)> = series
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let pts = lttb(&s.points, width_px);
            let d: String = pts
                .iter()
                .enumerate()
                .map(|(k, &(x, y))| {
                    format!(
                        "{}{:.1},{:.1}",
                        if k == 0 { "M" } else { "L" },
                        px(x),
                        py(y)
                    )
                })
                .collect();
            (d, PALETTE[i % PALETTE.len()].to_string(), s.name.clone())
        })
        .collect();
    let unit2 = unit.clone();
    let yticks: Vec<(f64, String)> = (0..=4)
        .map(|k| {
            let v = y0 + (y1 - y0) * f64::from(k) / 4.0;
            // Axis labels stay short: the unit of a rate is in the legend's tooltip.
            let label = match unit2.as_deref() {
                Some("reqps") | Some("short") | None => fmt_num(v),
                u => fmt_unit(v, u),
            };
            (py(v), label)
        })
        .collect();
    let span = x1 - x0;
    let xticks: Vec<(f64, String, &'static str)> = (0..=4)
        .map(|k| {
            let v = x0 + span * f64::from(k) / 4.0;
            let anchor = match k {
                0 => "start",
                4 => "end",
                _ => "middle",
            };
            (px(v), fmt_time(v, span), anchor)
        })
        .collect();
    let hover = RwSignal::new(None::<f64>);
    let drag = RwSignal::new(None::<f64>);
    let frac_of = move |ev: &leptos::ev::MouseEvent| -> Option<f64> {
        #[cfg(feature = "hydrate")]
        {
            use wasm_bindgen::JsCast;
            let el = ev.current_target()?.dyn_into::<web_sys::Element>().ok()?;
            let r = el.get_bounding_client_rect();
            let f = (f64::from(ev.client_x()) - r.left()) / r.width().max(1.0);
            // The overlay covers the plot area only.
            Some(f.clamp(0.0, 1.0))
        }
        #[cfg(not(feature = "hydrate"))]
        {
            let _ = ev;
            None
        }
    };
    let to_ms = move |f: f64| x0 + f * (x1 - x0);
    let tip_series = series.clone();
    let unit3 = unit.clone();
    let tooltip = move || {
        hover.get().map(|f| {
            let t = to_ms(f);
            let mut lines = vec![fmt_time(t, 0.0_f64.max(span))];
            for s in &tip_series {
                if let Some(p) = s
                    .points
                    .iter()
                    .min_by(|a, b| (a.0 - t).abs().total_cmp(&(b.0 - t).abs()))
                {
                    lines.push(format!("{}: {}", s.name, fmt_unit(p.1, unit3.as_deref())));
                }
            }
            view! { <div class="tooltip">{lines.into_iter().map(|l| view! { <div>{l}</div> }).collect_view()}</div> }
        })
    };
    let legend: Vec<(String, String)> = paths.iter().map(|p| (p.1.clone(), p.2.clone())).collect();
    view! {
        <div class="chart">
            <svg viewBox=format!("0 0 {W} {H}") preserveAspectRatio="none" class="plot">
                {yticks.into_iter().map(|(y, l)| view! {
                    <line x1=LEFT x2=W y1=y y2=y class="grid"/>
                    <text x=LEFT - 4.0 y=y + 3.0 class="tick" text-anchor="end">{l}</text>
                }).collect_view()}
                {xticks.into_iter().map(|(x, l, anchor)| view! {
                    <text x=x y=H - 4.0 class="tick" text-anchor=anchor>{l}</text>
                }).collect_view()}
                {paths.into_iter().map(|(d, c, name)| view! {
                    <path d=d stroke=c fill="none" stroke-width="1.5" vector-effect="non-scaling-stroke"><title>{name}</title></path>
                }).collect_view()}
                {move || hover.get().map(|f| view! {
                    <line x1=LEFT + f * (W - LEFT) x2=LEFT + f * (W - LEFT) y1=0 y2=H - BOTTOM class="cursor"/>
                })}
                {move || match (drag.get(), hover.get()) {
                    (Some(a), Some(b)) => Some(view! {
                        <rect x=LEFT + a.min(b) * (W - LEFT) y=0 width=(a - b).abs() * (W - LEFT) height=H - BOTTOM class="selection"/>
                    }),
                    _ => None,
                }}
                <rect x=LEFT y=0 width=W - LEFT height=H - BOTTOM class="overlay"
                    on:mousemove=move |ev| hover.set(frac_of(&ev))
                    on:mouseleave=move |_| { hover.set(None); drag.set(None); }
                    on:mousedown=move |ev| drag.set(frac_of(&ev))
                    on:mouseup=move |ev| {
                        if let (Some(a), Some(b)) = (drag.get_untracked(), frac_of(&ev))
                            && (a - b).abs() > 0.01
                            && let Some(cb) = on_zoom
                        {
                            cb.run((to_ms(a.min(b)), to_ms(a.max(b))));
                        }
                        drag.set(None);
                    }
                />
            </svg>
            {tooltip}
            <ul class="legend">
                {legend.into_iter().map(|(c, name)| view! {
                    <li><span class="swatch" style=format!("background:{c}")></span>{name}</li>
                }).collect_view()}
            </ul>
        </div>
    }
    .into_any()
}

/// One big number: the `value` column of the last row (else its first number).
#[component]
pub fn Stat(
    rows: Vec<Map<String, Value>>,
    #[prop(optional)] unit: Option<String>,
) -> impl IntoView {
    let v = rows.last().and_then(|r| {
        r.get("value")
            .and_then(num)
            .or_else(|| r.values().find_map(num))
    });
    view! {
        <div class="stat">{match v {
            Some(v) => fmt_unit(v, unit.as_deref()),
            None => "–".to_string(),
        }}</div>
    }
}

/// Horizontal bars: the first text column labels, the first number sizes.
#[component]
pub fn Bars(
    rows: Vec<Map<String, Value>>,
    #[prop(optional)] unit: Option<String>,
) -> impl IntoView {
    let bars: Vec<(String, f64)> = rows
        .iter()
        .filter_map(|r| {
            let label = r.values().find(|v| v.is_string()).map(crate::api::text)?;
            let v = r
                .values()
                .find_map(|v| if v.is_number() { num(v) } else { None })?;
            Some((label, v))
        })
        .collect();
    let max = bars
        .iter()
        .map(|b| b.1)
        .fold(0.0, f64::max)
        .max(f64::MIN_POSITIVE);
    view! {
        <div class="bars">
            {bars.into_iter().enumerate().map(|(i, (l, v))| view! {
                <div class="bar-row">
                    <span class="bar-label">{l}</span>
                    <span class="bar" style=format!("width:{:.1}%;background:{}", 100.0 * v / max, PALETTE[i % PALETTE.len()])></span>
                    <span class="bar-value">{fmt_unit(v, unit.as_deref())}</span>
                </div>
            }).collect_view()}
        </div>
    }
}

/// Rows as a table.
#[component]
pub fn Table(rows: Vec<Map<String, Value>>) -> impl IntoView {
    let cols: Vec<String> = rows
        .first()
        .map(|r| r.keys().cloned().collect())
        .unwrap_or_default();
    let header = cols.clone();
    view! {
        <div class="table-wrap">
            <table>
                <thead><tr>{header.into_iter().map(|c| view! { <th>{c}</th> }).collect_view()}</tr></thead>
                <tbody>
                    {rows.into_iter().map(|r| {
                        let cells: Vec<String> = cols.iter().map(|c| r.get(c).map(crate::api::text).unwrap_or_default()).collect();
                        view! { <tr>{cells.into_iter().map(|c| view! { <td>{c}</td> }).collect_view()}</tr> }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
}

/// Latency buckets over time: rows of `time`, `le` (cumulative upper bound) and `count`.
#[component]
pub fn Heatmap(
    rows: Vec<Map<String, Value>>,
    #[prop(optional)] unit: Option<String>,
) -> impl IntoView {
    let mut les: Vec<f64> = Vec::new();
    let mut cells: std::collections::BTreeMap<i64, Vec<(f64, f64)>> = Default::default();
    for r in &rows {
        let (Some(t), Some(le), Some(c)) = (
            r.get("time").and_then(parse_ts),
            r.get("le").map(crate::api::text),
            r.get("count").and_then(num),
        ) else {
            continue;
        };
        let le = if le == "+Inf" {
            f64::INFINITY
        } else {
            le.parse().unwrap_or(f64::NAN)
        };
        if le.is_nan() {
            continue;
        }
        if !les.contains(&le) {
            les.push(le);
        }
        cells.entry(t as i64).or_default().push((le, c));
    }
    if cells.is_empty() {
        return view! { <p class="empty">"No data in this range."</p> }.into_any();
    }
    les.sort_by(f64::total_cmp);
    let cols = cells.len() as f64;
    let rowsn = les.len() as f64;
    let mut rects = Vec::new();
    let mut maxc: f64 = 0.0;
    let mut grid = Vec::new();
    for (ci, (_, mut b)) in cells.iter().map(|(t, b)| (*t, b.clone())).enumerate() {
        b.sort_by(|x, y| x.0.total_cmp(&y.0));
        let mut prev = 0.0;
        for (le, c) in b {
            let n = (c - prev).max(0.0);
            prev = c;
            let ri = les.iter().position(|x| *x == le).unwrap_or(0);
            maxc = maxc.max(n);
            grid.push((ci, ri, n, le));
        }
    }
    let times: Vec<i64> = cells.keys().copied().collect();
    let span = (times.last().copied().unwrap_or(0) - times.first().copied().unwrap_or(0)) as f64;
    for (ci, ri, n, le) in grid {
        let x = LEFT + ci as f64 / cols * (W - LEFT);
        let y = (H - BOTTOM) - (ri as f64 + 1.0) / rowsn * (H - BOTTOM);
        let a = if maxc > 0.0 {
            (n.ln_1p() / maxc.ln_1p()).clamp(0.0, 1.0)
        } else {
            0.0
        };
        let label = format!(
            "{} ≤ {}: {}",
            fmt_time(times[ci] as f64, span),
            if le.is_infinite() {
                "+Inf".to_string()
            } else {
                fmt_unit(le, unit.as_deref())
            },
            fmt_num(n)
        );
        rects.push(view! {
            <rect x=x y=y width=(W - LEFT) / cols + 0.5 height=(H - BOTTOM) / rowsn + 0.5
                fill=format!("rgba(239,68,68,{a:.3})")><title>{label}</title></rect>
        });
    }
    let ylabels: Vec<(f64, String)> = les
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 2 == 0)
        .map(|(i, le)| {
            (
                (H - BOTTOM) - (i as f64 + 0.5) / rowsn * (H - BOTTOM),
                if le.is_infinite() {
                    "+Inf".into()
                } else {
                    fmt_unit(*le, unit.as_deref())
                },
            )
        })
        .collect();
    view! {
        <div class="chart">
            <svg viewBox=format!("0 0 {W} {H}") preserveAspectRatio="none" class="plot">
                {rects}
                {ylabels.into_iter().map(|(y, l)| view! { <text x=LEFT - 4.0 y=y + 3.0 class="tick" text-anchor="end">{l}</text> }).collect_view()}
                <text x=LEFT y=H - 4.0 class="tick">{fmt_time(times[0] as f64, span)}</text>
                <text x=W y=H - 4.0 class="tick" text-anchor="end">{fmt_time(*times.last().unwrap_or(&0) as f64, span)}</text>
            </svg>
        </div>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lttb_keeps_ends_and_peaks() {
        let data: Vec<(f64, f64)> = (0..1000)
            .map(|i| (f64::from(i), if i == 500 { 100.0 } else { 0.0 }))
            .collect();
        let d = lttb(&data, 50);
        assert_eq!(d.len(), 50);
        assert_eq!(d[0], data[0]);
        assert_eq!(d[49], data[999]);
        assert!(d.iter().any(|p| p.1 == 100.0), "the spike survives");
    }

    #[test]
    fn timestamps_and_units() {
        let t = parse_ts(&Value::String("2026-01-20T10:00:00Z".into())).expect("ts");
        assert_eq!(t, 1_768_903_200_000.0);
        assert_eq!(
            parse_ts(&Value::String("2026-01-20T11:00:00.5+01:00".into())),
            Some(1_768_903_200_500.0)
        );
        assert_eq!(fmt_time(t, 3_600_000.0), "10:00");
        assert_eq!(fmt_time(t, 3.0 * 86_400_000.0), "01-20 10:00");
        assert_eq!(fmt_unit(0.25, Some("s")), "250 ms");
        assert_eq!(fmt_unit(2048.0, Some("bytes")), "2 KiB");
        assert_eq!(fmt_num(12_345.0), "12.3k");
    }
}
