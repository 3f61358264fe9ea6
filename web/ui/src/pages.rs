//! The pages. Each loads its data after hydration through [`crate::api`].

use crate::api::{self, ApiError, enc, text};
use crate::chart::{Bars, Heatmap, Stat, Table, TimeSeries, to_series};
use crate::note_error;
use crate::service_map::{ServiceMap, edges_of};
use leptos::prelude::*;
use leptos_router::hooks::{use_navigate, use_params_map, use_query_map};
use serde_json::{Map, Value, json};

fn rows_of(v: &Value) -> Vec<Map<String, Value>> {
    v.as_array()
        .map(|a| a.iter().filter_map(|r| r.as_object().cloned()).collect())
        .unwrap_or_default()
}

fn show_err(e: ApiError) -> AnyView {
    note_error(&e);
    view! { <p class="error">{e.to_string()}</p> }.into_any()
}

/// Milestones, scores, capacity and firing alerts.
#[component]
pub fn Overview() -> impl IntoView {
    let data = LocalResource::new(|| async {
        let milestones = api::get("/api/v1/milestones").await?;
        let scores = api::sql(
            "SELECT milestone, service, forecast_peak_p50, forecast_peak_p99, actual_peak, error, within_p99 \
             FROM milestone_scores ORDER BY scored_at, service",
        )
        .await?;
        let capacity = api::get("/api/v1/capacity").await?;
        let alerts = api::get("/api/v1/alerts").await?;
        Ok::<_, ApiError>((milestones, scores, capacity, alerts))
    });
    view! {
        <h1>"Overview"</h1>
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Err(e) => show_err(e),
                    Ok((milestones, scores, capacity, alerts)) => {
                        let ms = rows_of(&milestones);
                        let firing: Vec<Map<String, Value>> = alerts["data"]["alerts"]
                            .as_array().cloned().unwrap_or_default().into_iter()
                            .filter_map(|a| a.as_object().cloned())
                            .filter(|a| a.get("state").and_then(Value::as_str) == Some("firing"))
                            .collect();
                        let caps = rows_of(&capacity);
                        view! {
                            <section class="panel wide" id="timeline">
                                <h2>"Milestones"</h2>
                                <ol class="timeline">
                                    {ms.into_iter().map(|m| {
                                        let status = text(&m["status"]);
                                        view! {
                                            <li class=format!("milestone {status}")>
                                                <span class="badge">{status.clone()}</span>
                                                <b>{text(&m["name"])}</b>" "
                                                <span class="kind">{text(&m["kind"])}</span>" "
                                                <span class="when">{text(&m["start"])}" → "{text(&m["end"])}</span>
                                            </li>
                                        }
                                    }).collect_view()}
                                </ol>
                            </section>
                            <section class="panel wide">
                                <h2>"Forecast vs actual peak"</h2>
                                {if scores.is_empty() {
                                    view! { <p class="empty">"No milestone has been scored yet."</p> }.into_any()
                                } else {
                                    view! { <Table rows=scores.iter().filter_map(|r| r.as_object().cloned()).collect()/> }.into_any()
                                }}
                            </section>
                            <section class="panel">
                                <h2>"Capacity per instance"</h2>
                                <Table rows=caps.into_iter().map(|c| {
                                    let mut m = Map::new();
                                    m.insert("service".into(), c["service"].clone());
                                    m.insert("per_instance_qps".into(), c["per_instance_qps"].clone());
                                    m.insert("source".into(), c["source"].clone());
                                    m
                                }).collect()/>
                            </section>
                            <section class="panel" id="firing">
                                <h2>"Firing alerts"</h2>
                                {if firing.is_empty() {
                                    view! { <p class="empty">"Nothing is firing."</p> }.into_any()
                                } else {
                                    view! { <ul>{firing.into_iter().map(|a| view! {
                                        <li>{text(&a["labels"]["alertname"])}" "{a["labels"].to_string()}" = "{text(&a["value"])}</li>
                                    }).collect_view()}</ul> }.into_any()
                                }}
                            </section>
                        }.into_any()
                    }
                }
            })}
        </Suspense>
    }
}

/// Every provisioned dashboard, and the files that failed to load.
#[component]
pub fn DashboardList() -> impl IntoView {
    let data = LocalResource::new(|| api::get("/api/v1/dashboards"));
    view! {
        <h1>"Dashboards"</h1>
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Err(e) => show_err(e),
                    Ok(d) => view! {
                        <ul class="dashboards">
                            {d["dashboards"].as_array().cloned().unwrap_or_default().into_iter().map(|x| {
                                let uid = text(&x["uid"]);
                                view! { <li><a href=format!("/d/{uid}")>{text(&x["title"])}</a>" ("{text(&x["panels"])}" panels)"</li> }
                            }).collect_view()}
                        </ul>
                        {d["errors"].as_array().cloned().unwrap_or_default().into_iter().map(|e| view! {
                            <p class="error">{format!("{}:{}: {}", text(&e["file"]), text(&e["line"]), text(&e["message"]))}</p>
                        }).collect_view()}
                    }.into_any(),
                }
            })}
        </Suspense>
    }
}

const RANGES: [(&str, &str); 8] = [
    ("now-5m", "Last 5 minutes"),
    ("now-15m", "Last 15 minutes"),
    ("now-1h", "Last hour"),
    ("now-6h", "Last 6 hours"),
    ("now-24h", "Last 24 hours"),
    ("now-2d", "Last 2 days"),
    ("now-7d", "Last 7 days"),
    ("now-30d", "Last 30 days"),
];

/// One dashboard: every bit of state (range, refresh, variables) lives in the URL.
#[component]
pub fn DashboardPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let navigate = use_navigate();
    let uid = move || params.read().get("uid").unwrap_or_default();
    let def = LocalResource::new(move || {
        let u = uid();
        async move { api::get(&format!("/api/v1/dashboards/{}", enc(&u))).await }
    });
    let tick = RwSignal::new(0u64);
    // Auto-refresh from `refresh=` (or the dashboard's default).
    let refresh = move || query.read().get("refresh");
    Effect::new(
        move |prev: Option<Option<leptos::prelude::IntervalHandle>>| {
            if let Some(Some(h)) = prev {
                h.clear();
            }
            let secs = refresh().and_then(|r| parse_secs(&r)).unwrap_or(0);
            (secs > 0)
                .then(|| {
                    set_interval_with_handle(
                        move || tick.update(|t| *t += 1),
                        std::time::Duration::from_secs(secs),
                    )
                    .ok()
                })
                .flatten()
        },
    );
    let set_query = {
        let navigate = navigate.clone();
        move |changes: Vec<(&'static str, Option<String>)>| {
            let mut pairs: Vec<(String, String)> = query
                .get_untracked()
                .into_iter()
                .filter(|(k, _)| !changes.iter().any(|(c, _)| k == c))
                .map(|(k, v)| (k.to_string(), v))
                .collect();
            for (key, value) in changes {
                if let Some(v) = value {
                    pairs.push((key.to_string(), v));
                }
            }
            let qs: Vec<String> = pairs
                .iter()
                .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
                .collect();
            navigate(
                &format!("/d/{}?{}", enc(&uid()), qs.join("&")),
                Default::default(),
            );
        }
    };
    let set_query = StoredValue::new(set_query);
    view! {
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                let d = match def.await {
                    Ok(d) => d,
                    Err(e) => return show_err(e),
                };
                let (dfrom, dto) = (text(&d["from"]), text(&d["to"]));
                let from = Signal::derive(move || query.read().get("from").unwrap_or_else(|| dfrom.clone()));
                let to = Signal::derive(move || query.read().get("to").unwrap_or_else(|| dto.clone()));
                let panels: Vec<(usize, Value)> = d["panels"].as_array().cloned().unwrap_or_default().into_iter().enumerate().collect();
                let vars: Vec<Value> = d["variables"].as_array().cloned().unwrap_or_default();
                let default_refresh = d["refresh"].as_str().map(str::to_string);
                view! {
                    <div class="dash-head">
                        <h1>{text(&d["title"])}</h1>
                        <label>"Range "
                            <select id="range" on:change=move |ev| {
                                let v = event_target_value(&ev);
                                if v.is_empty() {
                                    return;
                                }
                                set_query.with_value(|f| f(vec![("to", None), ("from", Some(v))]));
                            }>
                                <option value="" selected=move || !RANGES.iter().any(|(v, _)| *v == from.get())>"Custom"</option>
                                {RANGES.iter().map(|(v, l)| {
                                    let v = v.to_string();
                                    let selected = {
                                        let v = v.clone();
                                        move || from.get() == v
                                    };
                                    view! { <option value=v.clone() selected=selected>{*l}</option> }
                                }).collect_view()}
                            </select>
                        </label>
                        <label>"Refresh "
                            <select id="refresh" on:change=move |ev| {
                                let v = event_target_value(&ev);
                                set_query.with_value(|f| f(vec![("refresh", (v != "off").then_some(v))]));
                            }>
                                {["off", "5s", "15s", "30s", "1m", "5m"].into_iter().map(|r| {
                                    let dr = default_refresh.clone();
                                    view! { <option value=r selected=move || refresh().or(dr.clone()).as_deref().unwrap_or("off") == r>{r}</option> }
                                }).collect_view()}
                            </select>
                        </label>
                        {vars.into_iter().map(|v| view! { <VarPicker uid=uid() var=v from=from to=to/> }).collect_view()}
                        <span class="range-text">{move || format!("{} → {}", from.get(), to.get())}</span>
                    </div>
                    <div class="grid">
                        {panels.into_iter().map(|(i, p)| view! {
                            <PanelView uid=uid() index=i panel=p tick=tick.read_only() on_zoom=Callback::new(move |(a, b): (f64, f64)| {
                                set_query.with_value(|f| f(vec![("from", Some(format!("{}", a as i64))), ("to", Some(format!("{}", b as i64)))]));
                            })/>
                        }).collect_view()}
                    </div>
                }.into_any()
            })}
        </Suspense>
    }
}

fn parse_secs(s: &str) -> Option<u64> {
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit())?);
    let n: u64 = n.parse().ok()?;
    Some(match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return None,
    })
}

/// A variable's picker; its value goes to the URL as `var-<name>`.
#[component]
fn VarPicker(uid: String, var: Value, from: Signal<String>, to: Signal<String>) -> impl IntoView {
    let name = text(&var["name"]);
    let label = var["label"]
        .as_str()
        .map_or_else(|| name.clone(), str::to_string);
    let multi = var["multi"].as_bool().unwrap_or(false);
    let query = use_query_map();
    let navigate = use_navigate();
    let n2 = name.clone();
    let choices = LocalResource::new(move || {
        let path = format!(
            "/api/v1/dashboards/{}/variables/{}?from={}&to={}",
            enc(&uid),
            enc(&n2),
            enc(&from.get()),
            enc(&to.get())
        );
        async move { api::get(&path).await }
    });
    let key = format!("var-{name}");
    let key2 = key.clone();
    let current =
        Signal::derive(move || query.read().get(&key2).unwrap_or_else(|| "$__all".into()));
    view! {
        <label>{label}" "
            <select class="var" data-var=name.clone() on:change=move |ev| {
                let v = event_target_value(&ev);
                let mut pairs: Vec<(String, String)> = query.get_untracked().into_iter().filter(|(k, _)| *k != key).map(|(k, v)| (k.to_string(), v)).collect();
                if v != "$__all" {
                    pairs.push((key.clone(), v));
                }
                let path = leptos_router::hooks::use_location().pathname.get_untracked();
                let qs: Vec<String> = pairs.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect();
                navigate(&format!("{path}?{}", qs.join("&")), Default::default());
            }>
                <option value="$__all">{if multi { "All" } else { "Default" }}</option>
                <Suspense fallback=|| ()>
                    {move || Suspend::new(async move {
                        let list = choices.await.ok().and_then(|v| v.as_array().cloned()).unwrap_or_default();
                        list.into_iter().map(|c| {
                            let c = text(&c);
                            let selected = { let c = c.clone(); move || current.get() == c };
                            view! { <option value=c.clone() selected=selected>{c.clone()}</option> }
                        }).collect_view()
                    })}
                </Suspense>
            </select>
        </label>
    }
}

/// One panel: fetches its rows for the URL's range and variables and draws them.
#[component]
fn PanelView(
    uid: String,
    index: usize,
    panel: Value,
    tick: ReadSignal<u64>,
    on_zoom: Callback<(f64, f64)>,
) -> impl IntoView {
    let query = use_query_map();
    let kind = text(&panel["type"]);
    let unit = panel["unit"].as_str().map(str::to_string);
    let width = panel["width"].as_u64().unwrap_or(12);
    let height = panel["height"].as_u64().unwrap_or(8);
    let data = LocalResource::new(move || {
        tick.track();
        let q = query.get();
        let mut qs = vec![format!("width={}", width * 50)];
        for (k, v) in q.into_iter() {
            if k == "from" || k == "to" || k.starts_with("var-") {
                qs.push(format!("{}={}", enc(&k), enc(&v)));
            }
        }
        let path = format!(
            "/api/v1/dashboards/{}/panels/{index}?{}",
            enc(&uid),
            qs.join("&")
        );
        async move { api::get(&path).await }
    });
    let title = text(&panel["title"]);
    view! {
        <section class="panel" data-panel=index style=format!("grid-column: span {width}; min-height: {}px", height * 30)>
            <h2>{title}</h2>
            <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || {
                    let kind = kind.clone();
                    let unit = unit.clone();
                    Suspend::new(async move {
                        match data.await {
                            Err(e) => show_err(e),
                            Ok(r) => {
                                let rows = rows_of(&r["rows"]);
                                let range = (r["from"].as_f64().unwrap_or(0.0), r["to"].as_f64().unwrap_or(0.0));
                                let count = rows.len();
                                let body = match kind.as_str() {
                                    "timeseries" => view! { <TimeSeries series=to_series(&rows) unit=unit.clone().unwrap_or_default() range=range on_zoom=on_zoom/> }.into_any(),
                                    "stat" => view! { <Stat rows=rows unit=unit.clone().unwrap_or_default()/> }.into_any(),
                                    "bar" => view! { <Bars rows=rows unit=unit.clone().unwrap_or_default()/> }.into_any(),
                                    "heatmap" => view! { <Heatmap rows=rows unit=unit.clone().unwrap_or_default()/> }.into_any(),
                                    _ => view! { <Table rows=rows/> }.into_any(),
                                };
                                view! { <div class="panel-body" data-rows=count>{body}</div> }.into_any()
                            }
                        }
                    })
                }}
            </Suspense>
        </section>
    }
}

const HISTORY_KEY: &str = "crest-sql-history";

/// SQL editor with results as a table or a chart, history and CSV download.
#[component]
pub fn Explore() -> impl IntoView {
    let sql =
        RwSignal::new("SELECT table_name FROM information_schema.tables ORDER BY 1".to_string());
    let run_id = RwSignal::new(0u64);
    let as_chart = RwSignal::new(false);
    let history = RwSignal::new(Vec::<String>::new());
    Effect::new(move |_| {
        let h: Vec<String> = api::local_get(HISTORY_KEY)
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default();
        history.set(h);
    });
    let result = LocalResource::new(move || {
        let n = run_id.get();
        let q = sql.get_untracked();
        async move {
            if n == 0 {
                return Ok(None);
            }
            api::sql(&q).await.map(Some)
        }
    });
    let run = move || {
        let q = sql.get_untracked();
        history.update(|h| {
            h.retain(|x| *x != q);
            h.insert(0, q.clone());
            h.truncate(20);
            api::local_set(HISTORY_KEY, &serde_json::to_string(h).unwrap_or_default());
        });
        run_id.update(|n| *n += 1);
    };
    let download_error = RwSignal::new(None::<String>);
    view! {
        <h1>"Explore"</h1>
        <textarea id="sql" rows="6" on:input=move |ev| sql.set(event_target_value(&ev)) prop:value=move || sql.get()></textarea>
        <div class="toolbar">
            <button id="run" on:click=move |_| run()>"Run"</button>
            <label><input type="checkbox" id="as-chart" on:change=move |ev| as_chart.set(event_target_checked(&ev))/>" chart"</label>
            <button id="csv" on:click=move |_| {
                let q = sql.get_untracked();
                leptos::task::spawn_local(async move {
                    let r = api::download("/api/v1/sql?format=csv", Some(json!({ "sql": q })), "crest-query.csv").await;
                    download_error.set(r.err().map(|e| e.to_string()));
                });
            }>"Download CSV"</button>
            <select id="history" on:change=move |ev| sql.set(event_target_value(&ev))>
                <option value="">"History…"</option>
                {move || history.get().into_iter().map(|h| view! { <option value=h.clone()>{h.clone()}</option> }).collect_view()}
            </select>
        </div>
        {move || download_error.get().map(|e| view! { <p class="error">{e}</p> })}
        <Suspense fallback=|| view! { <p class="loading">"Running…"</p> }>
            {move || Suspend::new(async move {
                match result.await {
                    Err(e) => show_err(e),
                    Ok(None) => view! { <p class="empty">"Write SQL and press Run."</p> }.into_any(),
                    Ok(Some(rows)) => {
                        let rows: Vec<Map<String, Value>> = rows.into_iter().filter_map(|r| r.as_object().cloned()).collect();
                        let n = rows.len();
                        view! {
                            <p class="meta" id="row-count">{format!("{n} rows")}</p>
                            {move || if as_chart.get() {
                                view! { <TimeSeries series=to_series(&rows)/> }.into_any()
                            } else {
                                view! { <Table rows=rows.clone()/> }.into_any()
                            }}
                        }.into_any()
                    }
                }
            })}
        </Suspense>
    }
}

/// Trace search, results and the waterfall of one trace.
#[component]
pub fn Traces() -> impl IntoView {
    let service = RwSignal::new(String::new());
    let operation = RwSignal::new(String::new());
    let min_duration = RwSignal::new(String::new());
    let status = RwSignal::new(String::new());
    let lookback = RwSignal::new("3600".to_string());
    let search_id = RwSignal::new(0u64);
    let selected = RwSignal::new(None::<String>);
    let services = LocalResource::new(|| api::get("/api/v1/services?start=0"));
    let results = LocalResource::new(move || {
        search_id.track();
        let mut qs = vec![format!(
            "start={}",
            enc(&format!(
                "{}",
                now_secs() - lookback.get_untracked().parse::<i64>().unwrap_or(3600)
            ))
        )];
        for (k, v) in [
            ("service", service.get_untracked()),
            ("operation", operation.get_untracked()),
            ("min_duration", min_duration.get_untracked()),
            ("status", status.get_untracked()),
        ] {
            if !v.is_empty() {
                qs.push(format!("{k}={}", enc(&v)));
            }
        }
        qs.push("limit=50".into());
        let path = format!("/api/v1/traces?{}", qs.join("&"));
        async move { api::get(&path).await }
    });
    let trace = LocalResource::new(move || {
        let id = selected.get();
        async move {
            match id {
                Some(id) => api::get(&format!("/api/v1/traces/{}", enc(&id)))
                    .await
                    .map(Some),
                None => Ok(None),
            }
        }
    });
    let deps = LocalResource::new(move || {
        search_id.track();
        let start = now_secs() - lookback.get_untracked().parse::<i64>().unwrap_or(3600);
        async move { api::get(&format!("/api/v1/traces/dependencies?start={start}")).await }
    });
    view! {
        <h1>"Traces"</h1>
        <form class="toolbar" on:submit=move |ev| { ev.prevent_default(); search_id.update(|n| *n += 1); }>
            <select id="t-service" on:change=move |ev| service.set(event_target_value(&ev))>
                <option value="">"any service"</option>
                <Suspense fallback=|| ()>
                    {move || Suspend::new(async move {
                        services.await.ok().and_then(|v| v["services"].as_array().cloned()).unwrap_or_default().into_iter()
                            .map(|s| { let n = text(&s["name"]); view! { <option value=n.clone()>{n.clone()}</option> } }).collect_view()
                    })}
                </Suspense>
            </select>
            <input id="t-operation" placeholder="operation" on:input=move |ev| operation.set(event_target_value(&ev))/>
            <input id="t-min" placeholder="min duration (e.g. 100ms)" on:input=move |ev| min_duration.set(event_target_value(&ev))/>
            <select id="t-status" on:change=move |ev| status.set(event_target_value(&ev))>
                <option value="">"any status"</option><option value="error">"error"</option><option value="ok">"ok"</option><option value="unset">"unset"</option>
            </select>
            <select id="t-range" on:change=move |ev| lookback.set(event_target_value(&ev))>
                <option value="3600">"last hour"</option><option value="21600">"last 6 hours"</option>
                <option value="86400">"last day"</option><option value="2592000">"last 30 days"</option>
                <option value="1576800000">"everything"</option>
            </select>
            <button type="submit" id="t-search">"Search"</button>
        </form>
        <div class="split">
            <section class="panel">
                <h2>"Results"</h2>
                <Suspense fallback=|| view! { <p class="loading">"Searching…"</p> }>
                    {move || Suspend::new(async move {
                        match results.await {
                            Err(e) => show_err(e),
                            Ok(r) => {
                                let list = r["traces"].as_array().cloned().unwrap_or_default();
                                if list.is_empty() {
                                    return view! { <p class="empty">"No traces match."</p> }.into_any();
                                }
                                view! { <ul class="traces">{list.into_iter().map(|t| {
                                    let id = text(&t["trace_id"]);
                                    let ms = t["duration_ns"].as_f64().unwrap_or(0.0) / 1e6;
                                    view! { <li><a href="#" class="trace-link" data-trace=id.clone() on:click=move |ev| { ev.prevent_default(); selected.set(Some(id.clone())); }>
                                        {text(&t["root_service_name"])}": "{text(&t["root_name"])}</a>{format!(" {ms:.1} ms")}</li> }
                                }).collect_view()}</ul> }.into_any()
                            }
                        }
                    })}
                </Suspense>
            </section>
            <section class="panel wide">
                <h2>"Trace"</h2>
                <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
                    {move || Suspend::new(async move {
                        match trace.await {
                            Err(e) => show_err(e),
                            Ok(None) => view! { <p class="empty">"Pick a trace."</p> }.into_any(),
                            Ok(Some(t)) => view! { <Waterfall spans=t["spans"].as_array().cloned().unwrap_or_default()/> }.into_any(),
                        }
                    })}
                </Suspense>
            </section>
        </div>
        <section class="panel wide">
            <h2>"Service map"</h2>
            <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match deps.await {
                        Err(e) => show_err(e),
                        Ok(d) => {
                            // Rates over the part of the window that holds spans, so "everything"
                            // over last month's test still reads as that test's rates.
                            let from = d["first_span_unix_nano"].as_f64().unwrap_or(0.0);
                            let to = d["last_span_unix_nano"].as_f64().unwrap_or(from);
                            let seconds = ((to - from) / 1e9).max(1.0);
                            view! {
                                <ServiceMap edges=edges_of(&d["dependencies"]) seconds=seconds/>
                                <details><summary>"Calls and errors per edge"</summary>
                                    <Table rows=rows_of(&d["dependencies"])/>
                                </details>
                            }.into_any()
                        }
                    }
                })}
            </Suspense>
        </section>
    }
}

fn now_secs() -> i64 {
    #[cfg(feature = "hydrate")]
    {
        (js_sys::Date::now() / 1000.0) as i64
    }
    #[cfg(not(feature = "hydrate"))]
    {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64)
    }
}

/// Spans in start order, indented by depth, with bars on a shared time axis.
#[component]
fn Waterfall(spans: Vec<Value>) -> impl IntoView {
    let mut spans = spans;
    spans.sort_by(|a, b| {
        a["start_time_unix_nano"]
            .as_f64()
            .unwrap_or(0.0)
            .total_cmp(&b["start_time_unix_nano"].as_f64().unwrap_or(0.0))
    });
    let ids: std::collections::HashMap<String, String> = spans
        .iter()
        .map(|s| (text(&s["span_id"]), text(&s["parent_span_id"])))
        .collect();
    let depth = |id: &str| {
        let mut d = 0;
        let mut cur = ids.get(id).cloned().unwrap_or_default();
        while !cur.is_empty() && d < 64 {
            d += 1;
            cur = ids.get(&cur).cloned().unwrap_or_default();
        }
        d
    };
    let t0 = spans
        .iter()
        .filter_map(|s| s["start_time_unix_nano"].as_f64())
        .fold(f64::MAX, f64::min);
    let t1 = spans
        .iter()
        .filter_map(|s| s["end_time_unix_nano"].as_f64())
        .fold(f64::MIN, f64::max)
        .max(t0 + 1.0);
    let open = RwSignal::new(None::<usize>);
    let rows: Vec<(usize, Value, usize, f64, f64)> = spans
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            let d = depth(&text(&s["span_id"]));
            let a = (s["start_time_unix_nano"].as_f64().unwrap_or(t0) - t0) / (t1 - t0) * 100.0;
            let w = (s["duration_ns"].as_f64().unwrap_or(0.0) / (t1 - t0) * 100.0).max(0.3);
            (i, s, d, a, w)
        })
        .collect();
    view! {
        <table class="waterfall" id="waterfall">
            <tbody>
                {rows.into_iter().map(|(i, s, d, a, w)| {
                    let err = text(&s["status_code"]) == "error";
                    let attrs = s["attributes"].as_object().cloned().unwrap_or_default();
                    let ms = s["duration_ns"].as_f64().unwrap_or(0.0) / 1e6;
                    view! {
                        <tr class="span" data-depth=d data-span=text(&s["span_id"]) on:click=move |_| open.update(|o| *o = if *o == Some(i) { None } else { Some(i) })>
                            <td class="span-name" style=format!("padding-left:{}px", 8 + d * 16)>
                                <b>{text(&s["service_name"])}</b>" "{text(&s["name"])}
                            </td>
                            <td class="span-bar-cell">
                                <span class="span-bar" class:error=err style=format!("margin-left:{a:.2}%;width:{w:.2}%")></span>
                                <span class="span-ms">{format!("{ms:.2} ms")}</span>
                            </td>
                        </tr>
                        <Show when=move || open.get() == Some(i)>
                            <tr class="span-details"><td colspan="2">
                                <dl>
                                    <dt>"span"</dt><dd>{text(&s["span_id"])}</dd>
                                    <dt>"kind"</dt><dd>{text(&s["kind"])}</dd>
                                    <dt>"status"</dt><dd>{text(&s["status_code"])}</dd>
                                    {attrs.clone().into_iter().map(|(k, v)| view! { <dt>{k}</dt><dd>{text(&v)}</dd> }).collect_view()}
                                </dl>
                            </td></tr>
                        </Show>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
}

/// Milestones (create, edit), their plans with exports, and forecast vs actual.
#[component]
pub fn Milestones() -> impl IntoView {
    let reload = RwSignal::new(0u64);
    let list = LocalResource::new(move || {
        reload.track();
        api::get("/api/v1/milestones")
    });
    let selected = RwSignal::new(None::<String>);
    let plan = LocalResource::new(move || {
        let m = selected.get();
        async move {
            match m {
                Some(m) => api::get(&format!("/api/v1/plans/{}", enc(&m)))
                    .await
                    .map(Some),
                None => Ok(None),
            }
        }
    });
    let score = LocalResource::new(move || {
        let m = selected.get();
        async move {
            match m {
                Some(m) => Ok(api::get(&format!("/api/v1/milestones/{}/score", enc(&m)))
                    .await
                    .ok()),
                None => Ok::<_, ApiError>(None),
            }
        }
    });
    // The form: create, or edit the milestone loaded into it.
    let editing = RwSignal::new(None::<u64>);
    let name = RwSignal::new(String::new());
    let kind = RwSignal::new("rehearsal".to_string());
    let start = RwSignal::new(String::new());
    let end = RwSignal::new(String::new());
    let multiplier = RwSignal::new(String::new());
    let notes = RwSignal::new(String::new());
    let form_error = RwSignal::new(None::<String>);
    let save = move || {
        let mut drivers = Map::new();
        if let Ok(m) = multiplier.get_untracked().trim().parse::<f64>() {
            drivers.insert("multiplier".into(), json!(m));
        }
        let body = json!({
            "name": name.get_untracked(), "kind": kind.get_untracked(),
            "start": start.get_untracked(), "end": end.get_untracked(),
            "drivers": drivers, "notes": notes.get_untracked(),
        });
        let (method, path) = match editing.get_untracked() {
            Some(id) => ("PUT", format!("/api/v1/milestones/{id}")),
            None => ("POST", "/api/v1/milestones".to_string()),
        };
        leptos::task::spawn_local(async move {
            match api::send(method, &path, Some(&body)).await {
                Ok(_) => {
                    form_error.set(None);
                    editing.set(None);
                    reload.update(|n| *n += 1);
                }
                Err(e) => form_error.set(Some(e.to_string())),
            }
        });
    };
    let export = move |format: &'static str| {
        if let Some(m) = selected.get_untracked() {
            leptos::task::spawn_local(async move {
                let file = format!(
                    "plan-{}.{format}",
                    m.replace(|c: char| !c.is_ascii_alphanumeric(), "-")
                );
                let _ = api::download(
                    &format!("/api/v1/plans/{}?format={format}", enc(&m)),
                    None,
                    &file,
                )
                .await;
            });
        }
    };
    view! {
        <h1>"Milestones & capacity"</h1>
        <div class="split">
            <section class="panel">
                <h2>"Milestones"</h2>
                <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
                    {move || Suspend::new(async move {
                        match list.await {
                            Err(e) => show_err(e),
                            Ok(v) => view! { <div class="table-wrap"><table id="milestones"><tbody>
                                {rows_of(&v).into_iter().map(|m| {
                                    let n = text(&m["name"]);
                                    let n2 = n.clone();
                                    let m2 = m.clone();
                                    view! { <tr>
                                        <td><a href="#" class="milestone-link" on:click=move |ev| { ev.prevent_default(); selected.set(Some(n2.clone())); }>{n.clone()}</a></td>
                                        <td>{text(&m["kind"])}</td><td>{text(&m["status"])}</td><td>{text(&m["start"])}</td>
                                        <td><button class="edit" on:click=move |_| {
                                            editing.set(m2["id"].as_u64());
                                            name.set(text(&m2["name"])); kind.set(text(&m2["kind"]));
                                            start.set(text(&m2["start"])); end.set(text(&m2["end"]));
                                            multiplier.set(m2["drivers"]["multiplier"].as_f64().map(|x| x.to_string()).unwrap_or_default());
                                            notes.set(text(&m2["notes"]));
                                        }>"Edit"</button></td>
                                    </tr> }
                                }).collect_view()}
                            </tbody></table></div> }.into_any(),
                        }
                    })}
                </Suspense>
            </section>
            <section class="panel">
                <h2>{move || if editing.get().is_some() { "Edit milestone" } else { "New milestone" }}</h2>
                <form id="milestone-form" class="form" on:submit=move |ev| { ev.prevent_default(); save(); }>
                    <label>"Name"<input id="m-name" prop:value=move || name.get() on:input=move |ev| name.set(event_target_value(&ev))/></label>
                    <label>"Kind"<select id="m-kind" prop:value=move || kind.get() on:change=move |ev| kind.set(event_target_value(&ev))>
                        <option value="stress_test">"stress test"</option><option value="dr_drill">"DR drill"</option>
                        <option value="rehearsal" selected=true>"rehearsal"</option><option value="live">"live"</option>
                    </select></label>
                    <label>"Start (RFC 3339)"<input id="m-start" placeholder="2026-01-28T20:00:00Z" prop:value=move || start.get() on:input=move |ev| start.set(event_target_value(&ev))/></label>
                    <label>"End"<input id="m-end" prop:value=move || end.get() on:input=move |ev| end.set(event_target_value(&ev))/></label>
                    <label>"Multiplier"<input id="m-mult" prop:value=move || multiplier.get() on:input=move |ev| multiplier.set(event_target_value(&ev))/></label>
                    <label>"Notes"<input id="m-notes" prop:value=move || notes.get() on:input=move |ev| notes.set(event_target_value(&ev))/></label>
                    <button type="submit" id="m-save">"Save"</button>
                    {move || form_error.get().map(|e| view! { <p class="error" id="m-error">{e}</p> })}
                </form>
            </section>
        </div>
        <section class="panel wide">
            <h2>"Plan " {move || selected.get().unwrap_or_default()}</h2>
            <div class="toolbar">
                <button id="export-csv" on:click=move |_| export("csv")>"CSV"</button>
                <button id="export-json" on:click=move |_| export("json")>"JSON"</button>
                <button id="export-parquet" on:click=move |_| export("parquet")>"Parquet"</button>
            </div>
            <Suspense fallback=|| view! { <p class="loading">"Planning…"</p> }>
                {move || Suspend::new(async move {
                    match plan.await {
                        Err(e) => show_err(e),
                        Ok(None) => view! { <p class="empty">"Pick a milestone."</p> }.into_any(),
                        Ok(Some(p)) => view! {
                            <div id="plan"><Table rows=rows_of(&p["rows"])/></div>
                            {p["skipped"].as_array().cloned().unwrap_or_default().into_iter().map(|s| view! {
                                <p class="warning">{format!("{} not planned: {}", text(&s["service"]), text(&s["reason"]))}</p>
                            }).collect_view()}
                        }.into_any(),
                    }
                })}
            </Suspense>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    match score.await {
                        Ok(Some(s)) => {
                            let svc = s["services"].as_array().cloned().unwrap_or_default();
                            view! { <ForecastVsActual services=svc/> }.into_any()
                        }
                        _ => ().into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}

/// Forecast band (P50 to P99 of the peak) against the actual peak, per service.
#[component]
fn ForecastVsActual(services: Vec<Value>) -> impl IntoView {
    let max = services
        .iter()
        .flat_map(|s| [s["forecast_peak_p99"].as_f64(), s["actual_peak"].as_f64()])
        .flatten()
        .fold(0.0, f64::max)
        .max(f64::MIN_POSITIVE);
    view! {
        <h3>"Forecast vs actual peak"</h3>
        <div class="fva" id="forecast-vs-actual">
            {services.into_iter().map(|s| {
                let p50 = s["forecast_peak_p50"].as_f64().unwrap_or(0.0) / max * 100.0;
                let p99 = s["forecast_peak_p99"].as_f64().unwrap_or(0.0) / max * 100.0;
                let act = s["actual_peak"].as_f64().unwrap_or(0.0) / max * 100.0;
                view! {
                    <div class="fva-row">
                        <span class="bar-label">{text(&s["service"])}</span>
                        <span class="fva-track">
                            <span class="band" style=format!("left:{p50:.1}%;width:{:.1}%", (p99 - p50).max(0.5))></span>
                            <span class="actual" style=format!("left:{act:.1}%")></span>
                        </span>
                        <span class="bar-value">{format!("{} vs {}", crate::chart::fmt_num(s["actual_peak"].as_f64().unwrap_or(0.0)), crate::chart::fmt_num(s["forecast_peak_p50"].as_f64().unwrap_or(0.0)))}</span>
                    </div>
                }
            }).collect_view()}
        </div>
    }
}

/// Rules with their state, firing alerts, silences and the notification history.
#[component]
pub fn Alerts() -> impl IntoView {
    let data = LocalResource::new(|| async {
        Ok::<_, ApiError>((
            api::get("/api/v1/rules").await?,
            api::get("/api/v1/alerts").await?,
            api::get("/api/v1/silences").await?,
            api::get("/api/v1/alerts/notifications").await?,
        ))
    });
    view! {
        <h1>"Alerts"</h1>
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Err(e) => show_err(e),
                    Ok((rules, alerts, silences, notes)) => {
                        let rule_rows: Vec<Map<String, Value>> = rules["data"]["groups"].as_array().cloned().unwrap_or_default().into_iter()
                            .flat_map(|g| {
                                let gname = text(&g["name"]);
                                g["rules"].as_array().cloned().unwrap_or_default().into_iter().map(move |r| {
                                    let mut m = Map::new();
                                    m.insert("group".into(), json!(gname.clone()));
                                    m.insert("alert".into(), r["name"].clone());
                                    m.insert("state".into(), r["state"].clone());
                                    m.insert("health".into(), r["health"].clone());
                                    m.insert("lastError".into(), r["lastError"].clone());
                                    m
                                })
                            }).collect();
                        let alert_rows: Vec<Map<String, Value>> = alerts["data"]["alerts"].as_array().cloned().unwrap_or_default().into_iter()
                            .map(|a| {
                                let mut m = Map::new();
                                m.insert("state".into(), a["state"].clone());
                                m.insert("labels".into(), json!(a["labels"].to_string()));
                                m.insert("value".into(), a["value"].clone());
                                m.insert("activeAt".into(), a["activeAt"].clone());
                                m
                            }).collect();
                        let silence_rows: Vec<Map<String, Value>> = silences.as_array().cloned().unwrap_or_default().into_iter()
                            .map(|s| {
                                let mut m = Map::new();
                                m.insert("id".into(), s["id"].clone());
                                m.insert("state".into(), s["status"]["state"].clone());
                                m.insert("matchers".into(), json!(s["matchers"].to_string()));
                                m.insert("endsAt".into(), s["endsAt"].clone());
                                m.insert("comment".into(), s["comment"].clone());
                                m
                            }).collect();
                        let history = rows_of(&notes["data"]["history"]);
                        view! {
                            <section class="panel wide" id="rules"><h2>"Rules"</h2><Table rows=rule_rows/></section>
                            <section class="panel wide" id="alerts"><h2>"Alerts"</h2><Table rows=alert_rows/></section>
                            <section class="panel wide"><h2>"Silences"</h2><Table rows=silence_rows/></section>
                            <section class="panel wide"><h2>"Notifications"</h2><Table rows=history/></section>
                        }.into_any()
                    }
                }
            })}
        </Suspense>
    }
}
