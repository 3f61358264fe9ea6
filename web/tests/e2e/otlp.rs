//! OTLP/HTTP against the real binary: protobuf, JSON, gzip, chunked bodies, partial success,
//! error statuses, and the trace APIs reading back what was sent.

use super::harness::{Server, client, loadgen, sql, start, start_with_config};
use ingest::decode::otlp::proto::{self, any_value, metric::Data, number_data_point::Value as NV};
use prost::Message;
use serde_json::Value;
use std::io::Write;

const T: u64 = 1_700_000_000_000_000_000;

fn kv(k: &str, v: &str) -> proto::KeyValue {
    proto::KeyValue {
        key: k.into(),
        value: Some(proto::AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        }),
    }
}

fn kv_int(k: &str, v: i64) -> proto::KeyValue {
    proto::KeyValue {
        key: k.into(),
        value: Some(proto::AnyValue {
            value: Some(any_value::Value::IntValue(v)),
        }),
    }
}

fn metrics_request(metrics: Vec<proto::Metric>) -> proto::ExportMetricsServiceRequest {
    proto::ExportMetricsServiceRequest {
        resource_metrics: vec![proto::ResourceMetrics {
            resource: Some(proto::Resource {
                attributes: vec![kv("service.name", "checkout")],
            }),
            scope_metrics: vec![proto::ScopeMetrics {
                scope: None,
                metrics,
            }],
        }],
    }
}

fn histogram_point(bounds: Vec<f64>, counts: Vec<u64>, route: &str) -> proto::HistogramDataPoint {
    proto::HistogramDataPoint {
        attributes: vec![kv("http.route", route)],
        start_time_unix_nano: T - 1,
        time_unix_nano: T,
        count: counts.iter().sum(),
        sum: Some(12.5),
        bucket_counts: counts,
        explicit_bounds: bounds,
        flags: 0,
    }
}

fn histogram(points: Vec<proto::HistogramDataPoint>) -> proto::Metric {
    proto::Metric {
        name: "http.server.duration".into(),
        description: String::new(),
        unit: "s".into(),
        data: Some(Data::Histogram(proto::Histogram {
            data_points: points,
            aggregation_temporality: proto::TEMPORALITY_CUMULATIVE,
        })),
    }
}

fn counter(value: i64) -> proto::Metric {
    proto::Metric {
        name: "http.server.requests".into(),
        description: String::new(),
        unit: "{request}".into(),
        data: Some(Data::Sum(proto::Sum {
            data_points: vec![proto::NumberDataPoint {
                attributes: vec![kv("code", "200")],
                start_time_unix_nano: 0,
                time_unix_nano: T,
                value: Some(NV::AsInt(value)),
                flags: 0,
            }],
            aggregation_temporality: proto::TEMPORALITY_CUMULATIVE,
            is_monotonic: true,
        })),
    }
}

/// POSTs and returns status, content type and body.
fn post(
    s: &Server,
    path: &str,
    content_type: &str,
    encoding: Option<&str>,
    body: Vec<u8>,
) -> (u16, String, Vec<u8>) {
    let mut req = client()
        .post(s.url(path))
        .header("Content-Type", content_type)
        .body(body);
    if let Some(e) = encoding {
        req = req.header("Content-Encoding", e);
    }
    let r = req.send().expect("send");
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (status, ct, r.bytes().expect("body").to_vec())
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(bytes).expect("gzip");
    gz.finish().expect("gzip")
}

fn get_json(s: &Server, path: &str) -> (u16, Value) {
    let r = client().get(s.url(path)).send().expect("send");
    let status = r.status().as_u16();
    let text = r.text().expect("text");
    let v = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}: {text}"));
    (status, v)
}

#[test]
fn metrics_in_protobuf_json_gzip_and_chunked_become_prometheus_tables() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = start(dir.path(), &[], &[]);

    // Protobuf, identity.
    let req = metrics_request(vec![
        histogram(vec![histogram_point(
            vec![0.1, 0.5, 1.0],
            vec![2, 3, 4, 1],
            "/cart",
        )]),
        counter(41),
    ]);
    let (status, ct, body) = post(
        &s,
        "/v1/metrics",
        "application/x-protobuf",
        None,
        req.encode_to_vec(),
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(ct, "application/x-protobuf");
    let resp = proto::ExportMetricsServiceResponse::decode(body.as_slice()).expect("response");
    assert_eq!(
        resp.partial_success, None,
        "all written: partial_success unset"
    );

    let rows = sql(
        &s,
        None,
        "SELECT le, value, service_name, http_route FROM http_server_duration_seconds_bucket ORDER BY value",
    );
    let buckets: Vec<(String, f64)> = rows
        .iter()
        .map(|r| {
            (
                r["le"].as_str().expect("le").to_string(),
                r["value"].as_f64().expect("value"),
            )
        })
        .collect();
    assert_eq!(
        buckets,
        vec![
            ("0.1".to_string(), 2.0),
            ("0.5".to_string(), 5.0),
            ("1".to_string(), 9.0),
            ("+Inf".to_string(), 10.0),
        ],
        "cumulative buckets ending in +Inf"
    );
    assert!(
        rows.iter()
            .all(|r| r["service_name"] == "checkout" && r["http_route"] == "/cart")
    );
    let rows = sql(
        &s,
        None,
        "SELECT (SELECT value FROM http_server_duration_seconds_sum) AS s, \
                (SELECT value FROM http_server_duration_seconds_count) AS c, \
                (SELECT value FROM http_server_requests_total) AS total",
    );
    assert_eq!(rows[0]["s"], 12.5);
    assert_eq!(rows[0]["c"], 10.0);
    assert_eq!(rows[0]["total"], 41.0);

    // JSON, gzip, sent chunked (no Content-Length).
    let json = serde_json::json!({
        "resourceMetrics": [{
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "web"}}]},
            "scopeMetrics": [{"metrics": [{
                "name": "process.cpu.utilization", "unit": "1",
                "gauge": {"dataPoints": [
                    {"asDouble": 0.5, "timeUnixNano": T.to_string(),
                     "attributes": [{"key": "cpu", "value": {"intValue": "3"}}]}
                ]}
            }]}]
        }]
    });
    let body = gzip(json.to_string().as_bytes());
    let r = client()
        .post(s.url("/v1/metrics"))
        .header("Content-Type", "application/json")
        .header("Content-Encoding", "gzip")
        .body(reqwest::blocking::Body::new(std::io::Cursor::new(body)))
        .send()
        .expect("send");
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        r.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
    let v: Value = r.json().expect("json");
    assert_eq!(v, serde_json::json!({}));
    let rows = sql(
        &s,
        None,
        "SELECT cpu, service_name, value, CAST(time AS BIGINT) AS t FROM process_cpu_utilization_ratio",
    );
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["cpu"], "3");
    assert_eq!(rows[0]["service_name"], "web");
    assert_eq!(rows[0]["value"], 0.5);
    assert_eq!(rows[0]["t"], T as i64);
}

#[test]
fn partial_success_bad_input_and_unsupported_media_get_otlp_answers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = start(dir.path(), &[], &[]);

    // One good and one bad histogram data point: 200 with partial_success, the good one kept.
    let req = metrics_request(vec![histogram(vec![
        histogram_point(vec![1.0], vec![1, 1], "/good"),
        histogram_point(vec![1.0, 2.0], vec![1], "/bad"),
    ])]);
    let (status, ct, body) = post(
        &s,
        "/v1/metrics",
        "application/x-protobuf",
        None,
        req.encode_to_vec(),
    );
    assert_eq!(status, 200);
    assert_eq!(ct, "application/x-protobuf");
    let partial = proto::ExportMetricsServiceResponse::decode(body.as_slice())
        .expect("response")
        .partial_success
        .expect("partial_success set");
    assert_eq!(partial.rejected_data_points, 1);
    assert!(
        partial
            .error_message
            .contains("1 bucket counts for 2 explicit bounds"),
        "{}",
        partial.error_message
    );
    let rows = sql(
        &s,
        None,
        "SELECT DISTINCT http_route FROM http_server_duration_seconds_bucket",
    );
    assert_eq!(rows, vec![serde_json::json!({"http_route": "/good"})]);

    // JSON partial success answers in JSON.
    let json = serde_json::json!({"resourceSpans": [{"scopeSpans": [{"spans": [
        {"traceId": "0102030405060708090a0b0c0d0e0f10", "spanId": "0102030405060708",
         "name": "ok", "startTimeUnixNano": T.to_string(), "endTimeUnixNano": (T + 5).to_string()},
        {"traceId": "0102", "spanId": "0102030405060709", "name": "short trace id",
         "startTimeUnixNano": T.to_string()}
    ]}]}]});
    let (status, ct, body) = post(
        &s,
        "/v1/traces",
        "application/json",
        None,
        json.to_string().into_bytes(),
    );
    assert_eq!(status, 200);
    assert_eq!(ct, "application/json");
    let v: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(v["partialSuccess"]["rejectedSpans"], "1", "{v}");
    assert!(
        v["partialSuccess"]["errorMessage"]
            .as_str()
            .expect("message")
            .contains("trace_id has 2 bytes"),
        "{v}"
    );

    // Everything invalid: 400 with a google.rpc.Status, and nothing written.
    let req = metrics_request(vec![proto::Metric {
        name: "only.bad".into(),
        description: String::new(),
        unit: String::new(),
        data: Some(Data::Gauge(proto::Gauge {
            data_points: vec![proto::NumberDataPoint {
                attributes: vec![],
                start_time_unix_nano: 0,
                time_unix_nano: T,
                value: None,
                flags: 0,
            }],
        })),
    }]);
    let (status, ct, body) = post(
        &s,
        "/v1/metrics",
        "application/x-protobuf",
        None,
        req.encode_to_vec(),
    );
    assert_eq!(status, 400);
    assert_eq!(ct, "application/x-protobuf");
    let st = proto::RpcStatus::decode(body.as_slice()).expect("status");
    assert_eq!(st.code, 3);
    assert!(st.message.contains("no value"), "{}", st.message);

    // Undecodable bodies.
    let (status, _, body) = post(
        &s,
        "/v1/traces",
        "application/x-protobuf",
        None,
        vec![0x0a, 0x05, 0x0a],
    );
    assert_eq!(status, 400);
    let st = proto::RpcStatus::decode(body.as_slice()).expect("status");
    assert!(
        st.message.starts_with("protobuf decode error"),
        "{}",
        st.message
    );
    let (status, ct, body) = post(
        &s,
        "/v1/metrics",
        "application/json",
        None,
        b"{\"resourceMetrics\": 5}".to_vec(),
    );
    assert_eq!((status, ct.as_str()), (400, "application/json"));
    let v: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(v["code"], 3);
    assert!(
        v["message"]
            .as_str()
            .expect("msg")
            .contains("resourceMetrics"),
        "{v}"
    );
    let (status, _, _) = post(
        &s,
        "/v1/metrics",
        "application/json",
        Some("gzip"),
        b"nope".to_vec(),
    );
    assert_eq!(status, 400, "bad gzip");

    // Unsupported Content-Type and Content-Encoding.
    let (status, _, _) = post(&s, "/v1/metrics", "text/plain", None, b"x".to_vec());
    assert_eq!(status, 415);
    let (status, _, _) = post(
        &s,
        "/v1/traces",
        "application/json",
        Some("br"),
        b"{}".to_vec(),
    );
    assert_eq!(status, 415);

    // Nothing of the rejected requests exists.
    let rows = sql(
        &s,
        None,
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name",
    );
    let names: Vec<&str> = rows
        .iter()
        .map(|r| r["table_name"].as_str().expect("name"))
        .collect();
    assert_eq!(
        names,
        vec![
            "http_server_duration_seconds_bucket",
            "http_server_duration_seconds_count",
            "http_server_duration_seconds_sum",
            "milestone_scores",
            "milestones",
            "spans"
        ]
    );
    let rows = sql(&s, None, "SELECT count(*) AS n FROM spans");
    assert_eq!(rows[0]["n"], 1);
}

fn span(trace: [u8; 16], id: u8, parent: Option<u8>, name: &str, offset_ms: u64) -> proto::Span {
    proto::Span {
        trace_id: trace.to_vec(),
        span_id: vec![0xa0, 0, 0, 0, 0, 0, 0, id],
        trace_state: String::new(),
        parent_span_id: parent
            .map(|p| vec![0xa0, 0, 0, 0, 0, 0, 0, p])
            .unwrap_or_default(),
        name: name.into(),
        kind: if parent.is_none() { 2 } else { 3 },
        start_time_unix_nano: T + offset_ms * 1_000_000,
        end_time_unix_nano: T + offset_ms * 1_000_000 + 10_000_000 * u64::from(id),
        attributes: vec![
            kv("http.route", "/checkout"),
            kv_int("retry", i64::from(id)),
        ],
        events: vec![],
        links: vec![],
        status: Some(proto::Status {
            message: String::new(),
            code: if id == 3 { 2 } else { 0 },
        }),
    }
}

fn service_spans(service: &str, spans: Vec<proto::Span>) -> proto::ResourceSpans {
    proto::ResourceSpans {
        resource: Some(proto::Resource {
            attributes: vec![
                kv("service.name", service),
                kv("deployment.environment", "prod"),
            ],
        }),
        scope_spans: vec![proto::ScopeSpans { scope: None, spans }],
    }
}

#[test]
fn traces_come_back_whole_by_id_and_feed_search_services_red_and_dependencies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = start(dir.path(), &[], &[]);
    let trace = [0x5b; 16];
    let other = [0x6c; 16];
    // gateway(1) → cart(2) → payment(3, error); a second trace with gateway only, as JSON.
    let req = proto::ExportTraceServiceRequest {
        resource_spans: vec![
            service_spans("gateway", vec![span(trace, 1, None, "POST /checkout", 0)]),
            service_spans(
                "cart",
                vec![
                    span(trace, 2, Some(1), "cart.get", 1),
                    span(trace, 4, Some(2), "cart.load", 2),
                ],
            ),
            service_spans("payment", vec![span(trace, 3, Some(2), "charge", 3)]),
        ],
    };
    let (status, _, body) = post(
        &s,
        "/v1/traces",
        "application/x-protobuf",
        Some("gzip"),
        gzip(&req.encode_to_vec()),
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert!(body.is_empty());
    let json = serde_json::json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "gateway"}}]},
        "scopeSpans": [{"spans": [{
            "traceId": hex(&other), "spanId": "B000000000000001", "parentSpanId": "",
            "name": "GET /health", "kind": "SPAN_KIND_SERVER",
            "startTimeUnixNano": (T + 5_000_000).to_string(), "endTimeUnixNano": (T + 6_000_000).to_string(),
            "status": {"code": "STATUS_CODE_OK"}
        }]}]
    }]});
    let (status, _, _) = post(
        &s,
        "/v1/traces",
        "application/json",
        None,
        json.to_string().into_bytes(),
    );
    assert_eq!(status, 200);

    let check_trace = |s: &Server| {
        let (status, v) = get_json(s, &format!("/api/v1/traces/{}", hex(&trace).to_uppercase()));
        assert_eq!(status, 200, "{v}");
        let spans = v["spans"].as_array().expect("spans");
        assert_eq!(spans.len(), 4, "{v}");
        let by_name = |n: &str| {
            spans
                .iter()
                .find(|sp| sp["name"] == n)
                .unwrap_or_else(|| panic!("span {n} in {v}"))
        };
        let root = by_name("POST /checkout");
        assert!(
            root.get("parent_span_id").is_none_or(Value::is_null),
            "{root}"
        );
        assert_eq!(root["service_name"], "gateway");
        assert_eq!(root["kind"], "server");
        assert_eq!(root["attributes"]["http.route"], "/checkout");
        assert_eq!(root["attributes"]["retry"], 1);
        assert_eq!(
            root["resource_attributes"]["deployment.environment"],
            "prod"
        );
        assert_eq!(by_name("cart.get")["parent_span_id"], root["span_id"]);
        assert_eq!(
            by_name("charge")["parent_span_id"],
            by_name("cart.get")["span_id"]
        );
        assert_eq!(
            by_name("cart.load")["parent_span_id"],
            by_name("cart.get")["span_id"]
        );
        assert_eq!(by_name("charge")["status_code"], "error");
        assert_eq!(by_name("charge")["duration_ns"], 30_000_000);
    };
    check_trace(&s);

    let window = format!(
        "start={}&end={}",
        T / 1_000_000_000 - 60,
        T / 1_000_000_000 + 60
    );
    let (status, v) = get_json(
        &s,
        &format!("/api/v1/traces?service=payment&status=error&{window}"),
    );
    assert_eq!(status, 200, "{v}");
    let traces = v["traces"].as_array().expect("traces");
    assert_eq!(traces.len(), 1, "{v}");
    assert_eq!(traces[0]["trace_id"], hex(&trace));
    assert_eq!(traces[0]["root_service_name"], "gateway");
    assert_eq!(traces[0]["root_name"], "POST /checkout");
    let (_, v) = get_json(&s, &format!("/api/v1/traces?{window}&limit=10"));
    assert_eq!(v["traces"].as_array().expect("traces").len(), 2, "{v}");
    assert_eq!(v["traces"][0]["trace_id"], hex(&other), "newest first");
    let (_, v) = get_json(
        &s,
        &format!("/api/v1/traces?{window}&attr.retry=2&min_duration=15ms"),
    );
    assert_eq!(v["traces"].as_array().expect("traces").len(), 1, "{v}");
    let (_, v) = get_json(
        &s,
        &format!("/api/v1/traces?{window}&attr.http.route=/checkout&operation=charge"),
    );
    assert_eq!(v["traces"].as_array().expect("traces").len(), 1, "{v}");
    let (_, v) = get_json(
        &s,
        &format!("/api/v1/traces?{window}&attr.deployment.environment=prod"),
    );
    assert_eq!(v["traces"].as_array().expect("traces").len(), 1, "{v}");
    // A hostile value is a literal, never SQL.
    let (status, v) = get_json(
        &s,
        &format!("/api/v1/traces?{window}&service=x'%20OR%20'1'='1&attr.a%27b=%27%22"),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["traces"].as_array().expect("traces").len(), 0, "{v}");

    let (status, v) = get_json(&s, "/api/v1/services");
    assert_eq!(status, 200, "{v}");
    let names: Vec<&str> = v["services"]
        .as_array()
        .expect("services")
        .iter()
        .map(|x| x["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, vec!["cart", "gateway", "payment"]);
    assert_eq!(v["services"][0]["operations"][0]["name"], "cart.get");

    let (status, v) = get_json(&s, &format!("/api/v1/traces/red?{window}&service=payment"));
    assert_eq!(status, 200, "{v}");
    let op = &v["operations"][0];
    assert_eq!(op["operation"], "charge");
    assert_eq!(op["requests"], 1);
    assert_eq!(op["errors"], 1);
    assert_eq!(op["error_ratio"], 1.0);
    assert_eq!(op["p99_duration_ns"], 30_000_000);
    assert!((op["rate_per_second"].as_f64().expect("rate") - 1.0 / 120.0).abs() < 1e-9);

    let (status, v) = get_json(&s, &format!("/api/v1/traces/dependencies?{window}"));
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v["dependencies"],
        serde_json::json!([
            {"caller": "cart", "callee": "payment", "calls": 1, "errors": 1},
            {"caller": "gateway", "callee": "cart", "calls": 1, "errors": 0},
        ])
    );

    // Bad parameters name themselves.
    for (path, param) in [
        ("/api/v1/traces?min_duration=10", "min_duration"),
        ("/api/v1/traces?limit=0", "limit"),
        ("/api/v1/traces?status=broken", "status"),
        ("/api/v1/traces?start=yesterday", "start"),
        ("/api/v1/traces?bogus=1", "bogus"),
        ("/api/v1/traces/red?end=x", "end"),
        ("/api/v1/traces/dependencies?start=20&end=10", "start"),
        ("/api/v1/traces/not-hex", "trace_id"),
    ] {
        let (status, v) = get_json(&s, path);
        assert_eq!(status, 400, "{path}: {v}");
        assert!(
            v["message"]
                .as_str()
                .expect("message")
                .contains(&format!("`{param}`")),
            "{path}: {v}"
        );
    }
    let (status, _) = get_json(&s, &format!("/api/v1/traces/{}", "0".repeat(32)));
    assert_eq!(status, 404);

    // After a snapshot the trace is read from Parquet, which has a bloom filter on trace_id.
    let r = client()
        .post(s.url("/api/v1/admin/snapshot"))
        .send()
        .expect("snapshot");
    assert!(r.status().is_success());
    s.terminate();
    let s = start(dir.path(), &[], &[]);
    check_trace(&s);
    let files = parquet_files(dir.path());
    let spans_files: Vec<_> = files
        .iter()
        .filter(|p| p.to_string_lossy().contains("spans"))
        .collect();
    assert!(!spans_files.is_empty(), "{files:?}");
    for f in spans_files {
        let reader = parquet::file::serialized_reader::SerializedFileReader::new(
            std::fs::File::open(f).expect("open"),
        )
        .expect("parquet");
        use parquet::file::reader::FileReader;
        let meta = reader.metadata();
        let rg = meta.row_group(0);
        let col = (0..rg.num_columns())
            .find(|i| rg.column(*i).column_path().string() == "trace_id")
            .expect("trace_id column");
        assert!(
            rg.column(col).bloom_filter_offset().is_some(),
            "{}: no bloom filter on trace_id",
            f.display()
        );
    }
}

/// The dependency join runs hour by hour: an edge whose parent is in the hour before its child
/// is found, a child exactly on an hour's end is counted once, and the hours add up.
#[test]
fn dependencies_add_up_across_the_hours_of_a_long_window() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = start(dir.path(), &[], &[]);
    const HOUR_MS: u64 = 3_600_000;
    let (x, y, z) = ([0x11; 16], [0x22; 16], [0x33; 16]);
    let req = proto::ExportTraceServiceRequest {
        resource_spans: vec![
            // x: the child starts exactly where the first hour ends; y: parent and child on
            // either side of that end; z: in the third hour, with an error.
            service_spans(
                "gateway",
                vec![
                    span(x, 1, None, "GET /x", 10),
                    span(y, 1, None, "GET /y", HOUR_MS - 1_000),
                ],
            ),
            service_spans(
                "cart",
                vec![
                    span(x, 2, Some(1), "cart.get", HOUR_MS),
                    span(y, 2, Some(1), "cart.get", HOUR_MS + 1_000),
                    span(z, 2, None, "cart.get", 2 * HOUR_MS + 600_000),
                ],
            ),
            service_spans(
                "payment",
                vec![span(z, 3, Some(2), "charge", 2 * HOUR_MS + 600_500)],
            ),
        ],
    };
    let (status, _, body) = post(
        &s,
        "/v1/traces",
        "application/x-protobuf",
        None,
        req.encode_to_vec(),
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let t0 = T / 1_000_000_000;
    let (status, v) = get_json(
        &s,
        &format!(
            "/api/v1/traces/dependencies?start={t0}&end={}",
            t0 + 3 * 3600
        ),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v["dependencies"],
        serde_json::json!([
            {"caller": "cart", "callee": "payment", "calls": 1, "errors": 1},
            {"caller": "gateway", "callee": "cart", "calls": 2, "errors": 0},
        ])
    );
    // A window that ends on the child at the first hour's end still counts it.
    let (status, v) = get_json(
        &s,
        &format!("/api/v1/traces/dependencies?start={t0}&end={}", t0 + 3600),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v["dependencies"],
        serde_json::json!([{"caller": "gateway", "callee": "cart", "calls": 1, "errors": 0}])
    );
    // A window of decades (the UI's "everything") joins only the hours that hold spans: one
    // chunk per hour since 1970 would be over 490,000 joins and never answer.
    let (status, v) = get_json(
        &s,
        &format!("/api/v1/traces/dependencies?start=0&end={}", t0 + 3 * 3600),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["dependencies"].as_array().map(Vec::len), Some(2), "{v}");
    assert_eq!(v["first_span_unix_nano"], T + 10 * 1_000_000, "{v}");
    assert_eq!(
        v["last_span_unix_nano"],
        T + (2 * HOUR_MS + 600_500) * 1_000_000,
        "{v}"
    );
}

fn parquet_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "parquet") {
                out.push(p);
            }
        }
    }
    out
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn oversized_bodies_get_413_and_a_full_buffer_gets_503_with_retry_after() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = start_with_config(
        dir.path(),
        "[http]\nmax_body = \"2KiB\"\nmax_decoded = \"8KiB\"\n[storage]\nmax_buffer = \"1B\"\n",
        &[],
    );
    let big = vec![b' '; 4096];
    // Declared too large, streamed too large, and decoded too large.
    let (status, ct, body) = post(&s, "/v1/metrics", "application/json", None, big.clone());
    assert_eq!((status, ct.as_str()), (413, "application/json"));
    let v: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(v["code"], 8, "{v}");
    let r = client()
        .post(s.url("/v1/traces"))
        .header("Content-Type", "application/x-protobuf")
        .body(reqwest::blocking::Body::new(std::io::Cursor::new(big)))
        .send()
        .expect("send");
    assert_eq!(r.status().as_u16(), 413);
    let bomb = gzip(&vec![b' '; 64 * 1024]);
    assert!(bomb.len() < 2048);
    let (status, _, _) = post(&s, "/v1/metrics", "application/json", Some("gzip"), bomb);
    assert_eq!(status, 413);

    // The first write fills the 1-byte buffer; the next is refused for now, retryably. The
    // point is written "now": a snapshot (which starts at once on a buffer over half full)
    // keeps the current hour in memory, so the buffer stays full.
    let mut req = metrics_request(vec![counter(1)]);
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos() as u64;
    if let Some(Data::Sum(sum)) = req.resource_metrics[0].scope_metrics[0].metrics[0]
        .data
        .as_mut()
    {
        sum.data_points[0].time_unix_nano = now_ns;
    }
    let (status, _, _) = post(
        &s,
        "/v1/metrics",
        "application/x-protobuf",
        None,
        req.encode_to_vec(),
    );
    assert_eq!(status, 200);
    let r = client()
        .post(s.url("/v1/metrics"))
        .header("Content-Type", "application/x-protobuf")
        .body(req.encode_to_vec())
        .send()
        .expect("send");
    assert_eq!(r.status().as_u16(), 503);
    assert!(r.headers().get("retry-after").is_some());
    let st = proto::RpcStatus::decode(r.bytes().expect("body").as_ref()).expect("status");
    assert_eq!(st.code, 14, "{}", st.message);
}

/// The official OpenTelemetry Python SDK (a venv with `opentelemetry-sdk` and
/// `opentelemetry-exporter-otlp-proto-http`; `.ci/run` makes one and sets `CREST_OTEL_VENV`)
/// exports a trace gzip-compressed and metrics uncompressed; both read back whole through the
/// trace API and SQL. Skipped without the venv unless `CREST_INTEROP=1`.
/// The venv's Python when it can import `module` (`.ci/run` makes the venv and sets
/// `CREST_OTEL_VENV`); `None` (skip) without it, a failure when `CREST_INTEROP=1`.
fn otel_python(module: &str) -> Option<std::path::PathBuf> {
    let venv =
        std::env::var("CREST_OTEL_VENV").unwrap_or_else(|_| "/var/tmp/crest-otel-venv".into());
    let python = std::path::Path::new(&venv).join("bin/python");
    let usable = std::process::Command::new(&python)
        .args(["-c", &format!("import opentelemetry.sdk, {module}")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !usable {
        assert!(
            std::env::var("CREST_INTEROP").as_deref() != Ok("1"),
            "CREST_INTEROP=1 but {} cannot import {module}",
            python.display()
        );
        eprintln!("skipping: no {module} at {venv} (set CREST_OTEL_VENV)");
        return None;
    }
    Some(python)
}

/// Runs one of the interop scripts beside this file; bounded, since the SDK's own timeouts are
/// 10 s per export. Returns success, stdout and stderr.
fn run_script(python: &std::path::Path, script: &str, args: &[&str]) -> (bool, String, String) {
    let script = format!("{}/tests/e2e/{script}", env!("CARGO_MANIFEST_DIR"));
    let mut child = std::process::Command::new(python)
        .arg(script)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn python");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while child.try_wait().expect("wait").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("the Python exporter did not finish in 120 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let out = child.wait_with_output().expect("output");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn python_sdk_exports_read_back_whole() {
    let Some(python) = otel_python("opentelemetry.exporter.otlp.proto.http") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let s = start(dir.path(), &[], &[]);
    let (ok, stdout, stderr) = run_script(&python, "otel_interop.py", &[&s.base]);
    assert!(ok, "exporter failed:\n{stdout}\n{stderr}");
    let sent: Value = serde_json::from_str(stdout.trim()).expect("summary line");
    let trace_id = sent["trace_id"].as_str().expect("trace id");

    // The trace, whole, with its parent links.
    let (status, v) = get_json(&s, &format!("/api/v1/traces/{trace_id}"));
    assert_eq!(status, 200, "{v}");
    let spans = v["spans"].as_array().expect("spans");
    assert_eq!(spans.len(), 5, "{v}");
    let root = spans
        .iter()
        .find(|sp| sp.get("parent_span_id").is_none_or(Value::is_null))
        .expect("root");
    assert_eq!(root["name"], "GET /checkout");
    assert_eq!(root["kind"], "server");
    assert_eq!(root["service_name"], "py-interop");
    assert_eq!(root["attributes"]["http.route"], "/checkout");
    assert_eq!(root["attributes"]["http.response.status_code"], 200);
    assert_eq!(root["resource_attributes"]["deployment.environment"], "ci");
    let children: Vec<&Value> = spans
        .iter()
        .filter(|sp| sp["parent_span_id"] == root["span_id"])
        .collect();
    assert_eq!(children.len(), 4, "{v}");
    let failed = children
        .iter()
        .find(|c| c["name"] == "call 3")
        .expect("call 3");
    assert_eq!(failed["status_code"], "error");
    assert_eq!(failed["status_message"], "boom");
    assert_eq!(failed["events"][0]["name"], "exception");
    assert_eq!(failed["attributes"]["peer.service"], "db");

    // Metrics: counter, explicit buckets (cumulative, +Inf = count), exponential, gauge.
    let records = sent["records"].as_f64().expect("records");
    let rows = sql(
        &s,
        None,
        "SELECT value FROM http_server_requests_total WHERE service_name = 'py-interop' AND code = '200'",
    );
    assert_eq!(rows[0]["value"].as_f64(), Some(records));
    for table in ["http_server_duration_milliseconds", "rpc_latency_seconds"] {
        let rows = sql(
            &s,
            None,
            &format!(
                "SELECT le, value FROM {table}_bucket WHERE service_name = 'py-interop' \
                 ORDER BY CASE WHEN le = '+Inf' THEN 'Infinity' ELSE le END::DOUBLE"
            ),
        );
        assert!(rows.len() > 2, "{table}: {rows:?}");
        let counts: Vec<f64> = rows
            .iter()
            .map(|r| r["value"].as_f64().expect("v"))
            .collect();
        assert!(
            counts.windows(2).all(|w| w[0] <= w[1]),
            "{table} not cumulative: {rows:?}"
        );
        assert_eq!(rows.last().expect("last")["le"], "+Inf", "{table}");
        assert_eq!(counts.last().copied(), Some(records), "{table}: {rows:?}");
        let count = sql(&s, None, &format!("SELECT value FROM {table}_count"));
        assert_eq!(count[0]["value"].as_f64(), Some(records), "{table}");
    }
    let rows = sql(
        &s,
        None,
        "SELECT value FROM http_server_duration_milliseconds_bucket WHERE le = '10'",
    );
    assert_eq!(rows[0]["value"], 2.0, "3 and 7 are <= 10");
    let rows = sql(
        &s,
        None,
        "SELECT value, cpu FROM process_cpu_utilization_ratio",
    );
    assert_eq!(
        (rows[0]["value"].as_f64(), rows[0]["cpu"].as_str()),
        (Some(0.25), Some("0"))
    );
}

/// The same SDK over OTLP/gRPC on Crest's gRPC listener, with a bearer token: a trace
/// (gzip-compressed) and metrics read back through the trace API and SQL; a wrong token is
/// refused (UNAUTHENTICATED) and writes nothing.
#[test]
fn python_sdk_exports_over_grpc() {
    let Some(python) = otel_python("opentelemetry.exporter.otlp.proto.grpc") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let s = start(dir.path(), &[], &[("CREST_ADMIN_TOKEN", "grpc-token")]);
    let grpc = s.grpc.clone().expect("the gRPC listener's address");
    let (ok, stdout, stderr) = run_script(&python, "otel_grpc_interop.py", &[&grpc, "nope"]);
    assert!(!ok, "a wrong token was accepted:\n{stdout}\n{stderr}");
    assert!(stderr.contains("UNAUTHENTICATED"), "{stderr}");
    let (ok, stdout, stderr) = run_script(&python, "otel_grpc_interop.py", &[&grpc, "grpc-token"]);
    assert!(ok, "exporter failed:\n{stdout}\n{stderr}");
    let sent: Value = serde_json::from_str(stdout.trim()).expect("summary line");
    let trace_id = sent["trace_id"].as_str().expect("trace id");
    let r = client()
        .get(s.url(&format!("/api/v1/traces/{trace_id}")))
        .bearer_auth("grpc-token")
        .send()
        .expect("trace");
    assert_eq!(r.status().as_u16(), 200);
    let v: Value = r.json().expect("json");
    let spans = v["spans"].as_array().expect("spans");
    assert_eq!(spans.len(), 3, "{v}");
    let root = spans
        .iter()
        .find(|sp| sp.get("parent_span_id").is_none_or(Value::is_null))
        .expect("root");
    assert_eq!(root["name"], "Checkout");
    assert_eq!(root["service_name"], "py-grpc");
    assert!(
        spans
            .iter()
            .filter(|sp| sp["name"] != "Checkout")
            .all(|sp| sp["parent_span_id"] == root["span_id"]),
        "{v}"
    );
    let rows = sql(
        &s,
        Some("grpc-token"),
        "SELECT max(value) AS v FROM grpc_requests_total WHERE service_name = 'py-grpc'",
    );
    assert_eq!(rows[0]["v"], 6.0, "{rows:?}");
    let rows = sql(
        &s,
        Some("grpc-token"),
        "SELECT le, max(value) AS n FROM grpc_duration_milliseconds_bucket GROUP BY le ORDER BY n",
    );
    assert!(
        rows.iter().any(|r| r["le"] == "+Inf" && r["n"] == 3.0),
        "{rows:?}"
    );
}

/// The official OpenTelemetry JS SDK (Node, OTLP/HTTP JSON with chunked bodies): its trace and
/// counter read back through the trace API and SQL. `.ci/run` installs the packages under
/// `CREST_OTEL_NODE` (default /var/tmp/crest-otel-node); skipped without them unless
/// `CREST_INTEROP=1`.
#[test]
fn js_sdk_exports_otlp_json() {
    let dir =
        std::env::var("CREST_OTEL_NODE").unwrap_or_else(|_| "/var/tmp/crest-otel-node".into());
    let modules = std::path::Path::new(&dir).join("node_modules");
    let usable = modules
        .join("@opentelemetry/exporter-trace-otlp-http")
        .is_dir()
        && std::process::Command::new("node")
            .arg("--version")
            .stdout(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    if !usable {
        assert!(
            std::env::var("CREST_INTEROP").as_deref() != Ok("1"),
            "CREST_INTEROP=1 but node or the OpenTelemetry JS packages under {dir} are missing"
        );
        eprintln!("skipping: no node or OpenTelemetry JS packages at {dir} (set CREST_OTEL_NODE)");
        return;
    }
    let data = tempfile::tempdir().expect("tempdir");
    let s = start(data.path(), &[], &[("CREST_ADMIN_TOKEN", "js-token")]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/otel_interop.js");
    let out = std::process::Command::new("timeout")
        .args(["120", "node", script, &s.base, "js-token"])
        .env("NODE_PATH", &modules)
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exporter failed:\n{stdout}\n{stderr}");
    let sent: Value = serde_json::from_str(stdout.trim()).expect("summary line");
    let trace_id = sent["trace_id"].as_str().expect("trace id");
    let r = client()
        .get(s.url(&format!("/api/v1/traces/{trace_id}")))
        .bearer_auth("js-token")
        .send()
        .expect("trace");
    assert_eq!(r.status().as_u16(), 200);
    let v: Value = r.json().expect("json");
    let spans = v["spans"].as_array().expect("spans");
    assert_eq!(spans.len(), 4, "{v}");
    let root = spans
        .iter()
        .find(|sp| sp["name"] == "GET /api/query")
        .expect("root");
    assert!(
        root.get("parent_span_id").is_none_or(Value::is_null),
        "{root}"
    );
    assert_eq!(root["service_name"], "js-interop");
    assert_eq!(root["attributes"]["http.route"], "/api/query");
    assert!(
        spans
            .iter()
            .filter(|sp| sp["name"] != "GET /api/query")
            .all(|sp| sp["parent_span_id"] == root["span_id"]),
        "{v}"
    );
    let rows = sql(
        &s,
        Some("js-token"),
        "SELECT route, value FROM js_requests_total WHERE service_name = 'js-interop'",
    );
    // forceFlush and shutdown each collect the cumulative counter: one or two rows, all 5.
    assert!(!rows.is_empty() && rows.len() <= 2, "{rows:?}");
    assert!(
        rows.iter().all(|r| r["route"] == "/x" && r["value"] == 5.0),
        "{rows:?}"
    );
}

/// `crest loadgen`'s OTLP workloads (the benchmark's) land whole: every span with its trace of
/// eight and its parent link, and every metric point.
#[test]
fn loadgen_otlp_workloads_land_whole() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = start(dir.path(), &[], &[("CREST_ADMIN_TOKEN", "lg-token")]);
    for args in [
        &[
            "--protocol",
            "otlp-traces",
            "--spans",
            "800",
            "--batch",
            "200",
        ][..],
        &[
            "--protocol",
            "otlp-metrics",
            "--hosts",
            "1",
            "--series-per-host",
            "50",
            "--samples",
            "2",
            "--batch",
            "40",
        ][..],
    ] {
        let summary = loadgen(&s, &[&["--token", "lg-token"][..], args].concat());
        assert_eq!(summary["errors"], 0, "{summary}");
    }
    let rows = sql(
        &s,
        Some("lg-token"),
        "SELECT count(*) AS spans, count(DISTINCT trace_id) AS traces, \
                count(*) FILTER (WHERE parent_span_id IS NULL) AS roots FROM spans",
    );
    assert_eq!(rows[0]["spans"], 800, "{rows:?}");
    assert_eq!(rows[0]["traces"], 100, "{rows:?}");
    assert_eq!(rows[0]["roots"], 100, "{rows:?}");
    let orphans = sql(
        &s,
        Some("lg-token"),
        "SELECT count(*) AS n FROM spans c LEFT JOIN spans p \
           ON c.trace_id = p.trace_id AND c.parent_span_id = p.span_id \
         WHERE c.parent_span_id IS NOT NULL AND p.span_id IS NULL",
    );
    assert_eq!(orphans[0]["n"], 0, "{orphans:?}");
    let points = sql(
        &s,
        Some("lg-token"),
        "SELECT (SELECT count(*) FROM node_cpu_seconds_total) AS cpu, \
                (SELECT count(DISTINCT mode) FROM node_cpu_seconds_total) AS modes",
    );
    // 50 series per host: the first 50 of 64 CPU series (cpu 0..6 × 8 modes), 2 samples each.
    assert_eq!(points[0]["cpu"], 100, "{points:?}");
    assert_eq!(points[0]["modes"], 8, "{points:?}");
}

/// `crest loadgen` retries a 503 after its Retry-After, as real clients do: against a 1-byte
/// write buffer every request after the first is refused until the early snapshot evicts the
/// past hour, and the run still ends with every sample written and no error.
#[test]
fn loadgen_retries_a_full_buffer_until_the_snapshot_frees_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = start_with_config(dir.path(), "[storage]\nmax_buffer = \"1B\"\n", &[]);
    let two_days_ago_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64
        - 2 * 86_400_000;
    let start_ms = two_days_ago_ms.to_string();
    let summary = loadgen(
        &s,
        &[
            "--protocol",
            "lp",
            "--hosts",
            "1",
            "--series-per-host",
            "50",
            "--samples",
            "4",
            "--batch",
            "50",
            "--concurrency",
            "2",
            "--start-ms",
            &start_ms,
        ],
    );
    assert_eq!(summary["errors"], 0, "{summary}");
    assert!(
        summary["retries"].as_u64().unwrap_or(0) >= 1,
        "the full buffer refused something: {summary}"
    );
    let tables = sql(&s, None, "SHOW TABLES");
    let names: Vec<String> = tables
        .iter()
        .filter(|r| r["table_schema"] == "public")
        .filter_map(|r| r["table_name"].as_str().map(str::to_string))
        .collect();
    let total: u64 = names
        .iter()
        .map(|t| {
            sql(&s, None, &format!("SELECT count(*) AS n FROM \"{t}\""))[0]["n"]
                .as_u64()
                .unwrap_or(0)
        })
        .sum();
    assert_eq!(total, 200, "every sample of the 4 requests: {names:?}");
}
