//! The service map: services as boxes in columns by call depth (callers left of callees), calls
//! as arrows labelled with their request rate and error ratio. Drawn as SVG from the
//! dependency edges of `GET /api/v1/traces/dependencies`; every name is a text node.

use leptos::prelude::*;
use serde_json::Value;

use crate::chart::fmt_num;

/// One caller → callee edge over the window.
#[derive(Clone, Debug, PartialEq)]
pub struct Edge {
    pub caller: String,
    pub callee: String,
    pub calls: f64,
    pub errors: f64,
}

/// Where each service goes: its column (call depth) and row within the column.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub name: String,
    pub column: usize,
    pub row: usize,
    /// Calls into this service over the window, and how many of them failed.
    pub calls_in: f64,
    pub errors_in: f64,
}

pub fn edges_of(deps: &Value) -> Vec<Edge> {
    deps.as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| {
            Some(Edge {
                caller: d["caller"].as_str()?.to_string(),
                callee: d["callee"].as_str()?.to_string(),
                calls: d["calls"].as_f64().unwrap_or(0.0),
                errors: d["errors"].as_f64().unwrap_or(0.0),
            })
        })
        .collect()
}

/// Columns by longest call path from a service nobody calls. Cycles (a service that calls back
/// up the chain) are cut: a node's column is fixed the first time a path reaches it at its
/// final depth, and depth never exceeds the number of services.
pub fn layout(edges: &[Edge]) -> Vec<Node> {
    let mut names: Vec<String> = edges
        .iter()
        .flat_map(|e| [e.caller.clone(), e.callee.clone()])
        .collect();
    names.sort();
    names.dedup();
    let index = |n: &str| names.binary_search_by(|x| x.as_str().cmp(n)).ok();
    let mut depth = vec![0usize; names.len()];
    // Bellman-Ford style relaxation, bounded so a cycle cannot push depths forever.
    for _ in 0..names.len() {
        let mut changed = false;
        for e in edges {
            let (Some(a), Some(b)) = (index(&e.caller), index(&e.callee)) else {
                continue;
            };
            if a != b && depth[b] < depth[a] + 1 && depth[a] + 1 < names.len() {
                depth[b] = depth[a] + 1;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    let mut rows_used: std::collections::BTreeMap<usize, usize> = Default::default();
    names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let row = rows_used.entry(depth[i]).or_default();
            let node = Node {
                name: name.clone(),
                column: depth[i],
                row: *row,
                calls_in: edges
                    .iter()
                    .filter(|e| &e.callee == name)
                    .map(|e| e.calls)
                    .sum(),
                errors_in: edges
                    .iter()
                    .filter(|e| &e.callee == name)
                    .map(|e| e.errors)
                    .sum(),
            };
            *row += 1;
            node
        })
        .collect()
}

const NODE_W: f64 = 150.0;
const NODE_H: f64 = 44.0;
const COL_W: f64 = 330.0;
const ROW_H: f64 = 80.0;
const PAD: f64 = 20.0;

fn ratio(errors: f64, calls: f64) -> f64 {
    if calls > 0.0 { errors / calls } else { 0.0 }
}

/// Request rate and error ratio, e.g. "12.5 req/s · 0.4% err".
fn label(calls: f64, errors: f64, seconds: f64) -> String {
    format!(
        "{} req/s · {:.1}% err",
        fmt_num(calls / seconds.max(1.0)),
        100.0 * ratio(errors, calls)
    )
}

/// The map itself. `seconds` is the time the counts were taken over, for rates.
#[component]
pub fn ServiceMap(edges: Vec<Edge>, seconds: f64) -> impl IntoView {
    if edges.is_empty() {
        return view! { <p class="empty">"No calls between services in this window."</p> }
            .into_any();
    }
    let nodes = layout(&edges);
    let columns = nodes.iter().map(|n| n.column + 1).max().unwrap_or(1);
    let rows = nodes.iter().map(|n| n.row + 1).max().unwrap_or(1);
    let width = PAD * 2.0 + (columns - 1) as f64 * COL_W + NODE_W;
    let height = PAD * 2.0 + (rows - 1) as f64 * ROW_H + NODE_H;
    let at = |name: &str| {
        nodes
            .iter()
            .find(|n| n.name == name)
            .map(|n| (PAD + n.column as f64 * COL_W, PAD + n.row as f64 * ROW_H))
    };
    let max_calls = edges.iter().map(|e| e.calls).fold(1.0, f64::max);
    let arrows: Vec<_> = edges
        .iter()
        .filter_map(|e| {
            let (ax, ay) = at(&e.caller)?;
            let (bx, by) = at(&e.callee)?;
            let (x1, y1) = (ax + NODE_W, ay + NODE_H / 2.0);
            let (x2, y2) = (bx, by + NODE_H / 2.0);
            // Forward edges bend horizontally; an edge back to an earlier column loops below.
            let d = if x2 > x1 {
                let mx = (x1 + x2) / 2.0;
                format!("M{x1:.1},{y1:.1} C{mx:.1},{y1:.1} {mx:.1},{y2:.1} {x2:.1},{y2:.1}")
            } else {
                let low = y1.max(y2) + ROW_H * 0.6;
                format!(
                    "M{x1:.1},{y1:.1} C{:.1},{low:.1} {:.1},{low:.1} {x2:.1},{y2:.1}",
                    x1 + 60.0,
                    x2 - 60.0
                )
            };
            let (lx, ly) = ((x1 + x2) / 2.0, (y1 + y2) / 2.0 - 6.0);
            let width = 1.0 + 4.0 * (e.calls.ln_1p() / max_calls.ln_1p());
            let failing = ratio(e.errors, e.calls) >= 0.01;
            Some(view! {
                <g class="edge" class:failing=failing data-caller=e.caller.clone() data-callee=e.callee.clone()
                    data-calls=e.calls.to_string() data-errors=e.errors.to_string()>
                    <title>{format!("{} → {}: {} calls, {} errors", e.caller, e.callee, e.calls, e.errors)}</title>
                    <path d=d stroke-width=format!("{width:.1}") marker-end="url(#arrow)"></path>
                    <text x=format!("{lx:.1}") y=format!("{ly:.1}") text-anchor="middle">{label(e.calls, e.errors, seconds)}</text>
                </g>
            })
        })
        .collect();
    let boxes: Vec<_> = nodes
        .iter()
        .map(|n| {
            let (x, y) = (PAD + n.column as f64 * COL_W, PAD + n.row as f64 * ROW_H);
            let failing = ratio(n.errors_in, n.calls_in) >= 0.01;
            let sub = if n.calls_in > 0.0 {
                label(n.calls_in, n.errors_in, seconds)
            } else {
                "entry".to_string()
            };
            view! {
                <g class="node" class:failing=failing data-service=n.name.clone()>
                    <rect x=format!("{x:.1}") y=format!("{y:.1}") width=NODE_W height=NODE_H rx="6"></rect>
                    <text class="name" x=format!("{:.1}", x + 8.0) y=format!("{:.1}", y + 18.0)>{n.name.clone()}</text>
                    <text class="sub" x=format!("{:.1}", x + 8.0) y=format!("{:.1}", y + 35.0)>{sub}</text>
                </g>
            }
        })
        .collect();
    view! {
        <svg class="service-map" id="service-map" viewBox=format!("0 0 {width:.0} {height:.0}")
            style=format!("max-width:{width:.0}px") role="img" aria-label="service map">
            <defs>
                <marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerUnits="userSpaceOnUse" markerWidth="9" markerHeight="9" orient="auto-start-reverse">
                    <path d="M0,0 L10,5 L0,10 z"></path>
                </marker>
            </defs>
            {arrows}
            {boxes}
        </svg>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(a: &str, b: &str, calls: f64, errors: f64) -> Edge {
        Edge {
            caller: a.into(),
            callee: b.into(),
            calls,
            errors,
        }
    }

    #[test]
    fn callers_sit_left_of_callees_by_longest_path() {
        let edges = [
            e("gateway", "grab", 10.0, 0.0),
            e("grab", "account", 5.0, 1.0),
            e("gateway", "account", 3.0, 0.0),
            e("account", "payment", 2.0, 2.0),
        ];
        let nodes = layout(&edges);
        let col = |n: &str| nodes.iter().find(|x| x.name == n).map(|x| x.column);
        assert_eq!(col("gateway"), Some(0));
        assert_eq!(col("grab"), Some(1));
        assert_eq!(col("account"), Some(2), "longest path, not the direct call");
        assert_eq!(col("payment"), Some(3));
        let account = nodes.iter().find(|x| x.name == "account").expect("node");
        assert_eq!((account.calls_in, account.errors_in), (8.0, 1.0));
    }

    #[test]
    fn a_cycle_terminates_and_places_every_service_once() {
        let edges = [
            e("a", "b", 1.0, 0.0),
            e("b", "c", 1.0, 0.0),
            e("c", "a", 1.0, 0.0),
        ];
        let nodes = layout(&edges);
        assert_eq!(nodes.len(), 3);
        assert!(nodes.iter().all(|n| n.column < 3));
        let mut places: Vec<_> = nodes.iter().map(|n| (n.column, n.row)).collect();
        places.sort();
        places.dedup();
        assert_eq!(places.len(), 3, "no two services in one place");
    }

    #[test]
    fn labels_give_rate_and_error_ratio() {
        assert_eq!(label(600.0, 6.0, 60.0), "10 req/s · 1.0% err");
        assert_eq!(label(0.0, 0.0, 60.0), "0 req/s · 0.0% err");
    }
}
