use super::proto::{self, any_value, metric::Data, number_data_point::Value as NV};
use super::*;
use crate::point::FieldValue;
use proptest::prelude::*;

const T: u64 = 1_700_000_000_000_000_000;
const NOW: i64 = 42;

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
                attributes: vec![kv("service.name", "checkout"), kv("host.name", "h1")],
            }),
            scope_metrics: vec![proto::ScopeMetrics {
                scope: None,
                metrics,
            }],
        }],
    }
}

fn number(attrs: Vec<proto::KeyValue>, v: NV) -> proto::NumberDataPoint {
    proto::NumberDataPoint {
        attributes: attrs,
        start_time_unix_nano: 0,
        time_unix_nano: T,
        value: Some(v),
        flags: 0,
    }
}

fn metric(name: &str, unit: &str, data: Data) -> proto::Metric {
    proto::Metric {
        name: name.into(),
        description: String::new(),
        unit: unit.into(),
        data: Some(data),
    }
}

/// `(table, tags as k=v joined by ',', value)` of each point, for compact assertions.
fn rows(d: &Decoded) -> Vec<(String, String, f64)> {
    d.points
        .iter()
        .map(|(_, p)| {
            let tags: Vec<String> = p.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let v = match &p.fields[0].1 {
                FieldValue::F64(v) => *v,
                other => panic!("unexpected field {other:?}"),
            };
            (p.table.clone(), tags.join(","), v)
        })
        .collect()
}

fn decode_pb(req: &proto::ExportMetricsServiceRequest) -> Decoded {
    decode_metrics(&req.encode_to_vec(), Encoding::Protobuf, NOW).expect("decodes")
}

#[test]
fn gauge_and_sums_map_to_prometheus_named_tables() {
    let req = metrics_request(vec![
        metric(
            "process.cpu.utilization",
            "1",
            Data::Gauge(proto::Gauge {
                data_points: vec![number(vec![kv("cpu", "0")], NV::AsDouble(0.25))],
            }),
        ),
        metric(
            "http.server.requests",
            "{request}",
            Data::Sum(proto::Sum {
                data_points: vec![number(vec![kv("http.route", "/a")], NV::AsInt(7))],
                aggregation_temporality: proto::TEMPORALITY_CUMULATIVE,
                is_monotonic: true,
            }),
        ),
        metric(
            "queue.size",
            "By",
            Data::Sum(proto::Sum {
                data_points: vec![number(vec![], NV::AsInt(-3))],
                aggregation_temporality: proto::TEMPORALITY_DELTA,
                is_monotonic: false,
            }),
        ),
    ]);
    let d = decode_pb(&req);
    assert!(d.rejected.is_empty(), "{:?}", d.rejected);
    assert_eq!(d.items, 3);
    assert_eq!(
        rows(&d),
        vec![
            (
                "process_cpu_utilization_ratio".into(),
                "cpu=0,host_name=h1,service_name=checkout".into(),
                0.25
            ),
            (
                "http_server_requests_total".into(),
                "host_name=h1,http_route=/a,service_name=checkout".into(),
                7.0
            ),
            (
                "queue_size_bytes".into(),
                "host_name=h1,service_name=checkout".into(),
                -3.0
            ),
        ]
    );
    assert!(d.points.iter().all(|(_, p)| p.time_ns == T as i64));
    let tags: Vec<usize> = d.points.iter().map(|(i, _)| *i).collect();
    assert_eq!(tags, vec![0, 1, 2]);
}

#[test]
fn histogram_buckets_become_cumulative_with_inf_sum_and_count() {
    let req = metrics_request(vec![metric(
        "http.server.duration",
        "s",
        Data::Histogram(proto::Histogram {
            data_points: vec![proto::HistogramDataPoint {
                attributes: vec![kv("le", "attribute is overridden")],
                start_time_unix_nano: 1,
                time_unix_nano: T,
                count: 10,
                sum: Some(4.5),
                bucket_counts: vec![1, 2, 3, 4],
                explicit_bounds: vec![0.005, 0.1, 1.0],
                flags: 0,
            }],
            aggregation_temporality: proto::TEMPORALITY_CUMULATIVE,
        }),
    )]);
    let d = decode_pb(&req);
    let base = "host_name=h1,service_name=checkout";
    let b = "http_server_duration_seconds_bucket".to_string();
    assert_eq!(
        rows(&d),
        vec![
            (
                b.clone(),
                "host_name=h1,le=0.005,service_name=checkout".into(),
                1.0
            ),
            (
                b.clone(),
                "host_name=h1,le=0.1,service_name=checkout".into(),
                3.0
            ),
            (
                b.clone(),
                "host_name=h1,le=1,service_name=checkout".into(),
                6.0
            ),
            (b, "host_name=h1,le=+Inf,service_name=checkout".into(), 10.0),
            ("http_server_duration_seconds_sum".into(), base.into(), 4.5),
            (
                "http_server_duration_seconds_count".into(),
                base.into(),
                10.0
            ),
        ]
    );
    assert!(d.points.iter().all(|(i, _)| *i == 0));
    assert_eq!(d.items, 1);
}

#[test]
fn histogram_without_buckets_still_has_inf_bucket_and_no_sum_when_absent() {
    let req = metrics_request(vec![metric(
        "h",
        "",
        Data::Histogram(proto::Histogram {
            data_points: vec![proto::HistogramDataPoint {
                attributes: vec![],
                start_time_unix_nano: 0,
                time_unix_nano: 0,
                count: 3,
                sum: None,
                bucket_counts: vec![],
                explicit_bounds: vec![],
                flags: 0,
            }],
            aggregation_temporality: proto::TEMPORALITY_DELTA,
        }),
    )]);
    let d = decode_pb(&req);
    let tables: Vec<String> = rows(&d).into_iter().map(|r| r.0).collect();
    assert_eq!(tables, vec!["h_bucket", "h_count"]);
    assert_eq!(
        d.points[0].1.time_ns, NOW,
        "a missing timestamp is the server's now"
    );
}

#[test]
fn exponential_histogram_becomes_cumulative_le_buckets() {
    // Scale 0: bucket i holds (2^i, 2^(i+1)]. Offset 1, counts [0, 2]: two values in (4, 8].
    // One value in the zero bucket, one negative value in [-2, -1).
    let dp = proto::ExponentialHistogramDataPoint {
        attributes: vec![],
        start_time_unix_nano: 0,
        time_unix_nano: T,
        count: 4,
        sum: Some(10.0),
        scale: 0,
        zero_count: 1,
        positive: Some(proto::Buckets {
            offset: 1,
            bucket_counts: vec![0, 2],
        }),
        negative: Some(proto::Buckets {
            offset: 0,
            bucket_counts: vec![1],
        }),
        flags: 0,
        zero_threshold: 0.0,
    };
    let req = metrics_request(vec![metric(
        "latency",
        "ms",
        Data::ExponentialHistogram(proto::ExponentialHistogram {
            data_points: vec![dp],
            aggregation_temporality: proto::TEMPORALITY_CUMULATIVE,
        }),
    )]);
    let d = decode_pb(&req);
    let buckets: Vec<(String, f64)> = d
        .points
        .iter()
        .filter(|(_, p)| p.table == "latency_milliseconds_bucket")
        .map(|(_, p)| {
            let le = p
                .tags
                .iter()
                .find(|(k, _)| k == "le")
                .expect("le")
                .1
                .clone();
            let FieldValue::F64(v) = p.fields[0].1 else {
                panic!("float")
            };
            (le, v)
        })
        .collect();
    let want: Vec<(String, f64)> = [
        ("-1", 1.0),
        ("0", 2.0),
        ("4", 2.0),
        ("8", 4.0),
        ("+Inf", 4.0),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), *b))
    .collect();
    assert_eq!(buckets, want);
}

#[test]
fn exponential_histogram_is_merged_down_to_a_shared_scale() {
    // Scale 5 buckets 0..64 cover (1, 4]; at scale 3 they are 16 buckets of (1, 4].
    let dp = proto::ExponentialHistogramDataPoint {
        attributes: vec![],
        start_time_unix_nano: 0,
        time_unix_nano: T,
        count: 64,
        sum: None,
        scale: 5,
        zero_count: 0,
        positive: Some(proto::Buckets {
            offset: 0,
            bucket_counts: vec![1; 64],
        }),
        negative: None,
        flags: 0,
        zero_threshold: 0.0,
    };
    let req = metrics_request(vec![metric(
        "x",
        "",
        Data::ExponentialHistogram(proto::ExponentialHistogram {
            data_points: vec![dp],
            aggregation_temporality: proto::TEMPORALITY_CUMULATIVE,
        }),
    )]);
    let d = decode_pb(&req);
    let bucket: Vec<(f64, f64)> = d
        .points
        .iter()
        .filter(|(_, p)| p.table == "x_bucket")
        .map(|(_, p)| {
            let le = &p.tags.iter().find(|(k, _)| k == "le").expect("le").1;
            let FieldValue::F64(v) = p.fields[0].1 else {
                panic!("float")
            };
            (
                if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().expect("le")
                },
                v,
            )
        })
        .collect();
    // zero bucket, 16 buckets, +Inf
    assert_eq!(bucket.len(), 18, "{bucket:?}");
    assert_eq!(bucket[1].1, 4.0);
    assert!((bucket[1].0 - 2f64.powf(1.0 / 8.0)).abs() < 1e-12);
    assert!((bucket[16].0 - 4.0).abs() < 1e-12);
    assert_eq!(bucket[16].1, 64.0);
    assert!(
        bucket
            .windows(2)
            .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1)
    );
}

#[test]
fn summary_has_quantile_tags_sum_and_count() {
    let req = metrics_request(vec![metric(
        "rpc.duration",
        "ms",
        Data::Summary(proto::Summary {
            data_points: vec![proto::SummaryDataPoint {
                attributes: vec![],
                start_time_unix_nano: 0,
                time_unix_nano: T,
                count: 5,
                sum: 50.0,
                quantile_values: vec![
                    proto::ValueAtQuantile {
                        quantile: 0.5,
                        value: 8.0,
                    },
                    proto::ValueAtQuantile {
                        quantile: 0.99,
                        value: 20.0,
                    },
                ],
                flags: 0,
            }],
        }),
    )]);
    let d = decode_pb(&req);
    let r = rows(&d);
    assert_eq!(r.len(), 4);
    assert_eq!(r[0].0, "rpc_duration_milliseconds");
    assert!(r[0].1.contains("quantile=0.5"), "{r:?}");
    assert!(r[1].1.contains("quantile=0.99"), "{r:?}");
    assert_eq!(
        (r[2].0.as_str(), r[2].2),
        ("rpc_duration_milliseconds_sum", 50.0)
    );
    assert_eq!(
        (r[3].0.as_str(), r[3].2),
        ("rpc_duration_milliseconds_count", 5.0)
    );
}

#[test]
fn bad_data_points_are_rejected_alone() {
    let good = number(vec![], NV::AsDouble(1.0));
    let mut no_value = number(vec![], NV::AsDouble(1.0));
    no_value.value = None;
    let mut far_future = number(vec![], NV::AsDouble(1.0));
    far_future.time_unix_nano = u64::MAX;
    let mut not_recorded = number(vec![], NV::AsDouble(1.0));
    not_recorded.flags = proto::FLAG_NO_RECORDED_VALUE;
    let req = metrics_request(vec![
        metric(
            "g",
            "",
            Data::Gauge(proto::Gauge {
                data_points: vec![good.clone(), no_value, far_future, not_recorded, good],
            }),
        ),
        metric(
            "h",
            "",
            Data::Histogram(proto::Histogram {
                data_points: vec![proto::HistogramDataPoint {
                    attributes: vec![],
                    start_time_unix_nano: 0,
                    time_unix_nano: T,
                    count: 1,
                    sum: None,
                    bucket_counts: vec![1, 0],
                    explicit_bounds: vec![1.0, 2.0],
                    flags: 0,
                }],
                aggregation_temporality: proto::TEMPORALITY_CUMULATIVE,
            }),
        ),
        proto::Metric {
            name: "empty".into(),
            description: String::new(),
            unit: String::new(),
            data: None,
        },
    ]);
    let d = decode_pb(&req);
    assert_eq!(d.items, 6);
    let rejected: Vec<usize> = d.rejected.iter().map(|(i, _)| *i).collect();
    assert_eq!(rejected, vec![1, 2, 5]);
    assert!(d.rejected[0].1.contains("no value"), "{:?}", d.rejected);
    assert!(
        d.rejected[1].1.contains("beyond the storable range"),
        "{:?}",
        d.rejected
    );
    assert!(
        d.rejected[2]
            .1
            .contains("2 bucket counts for 2 explicit bounds"),
        "{:?}",
        d.rejected
    );
    assert_eq!(d.points.len(), 2);
    assert_eq!(d.warnings.len(), 1);
}

#[test]
fn clashing_attribute_names_are_joined_and_reserved_ones_renamed() {
    let req = metrics_request(vec![metric(
        "g",
        "",
        Data::Gauge(proto::Gauge {
            data_points: vec![number(
                vec![
                    kv("a.b", "1"),
                    kv("a_b", "2"),
                    kv("time", "t"),
                    kv("value", "v"),
                    kv("empty", ""),
                    kv_int("n", 5),
                    kv("host.name", "point wins"),
                ],
                NV::AsDouble(1.0),
            )],
        }),
    )]);
    let d = decode_pb(&req);
    assert_eq!(
        rows(&d)[0].1,
        "a_b=1;2,host_name=point wins,key_time=t,key_value=v,n=5,service_name=checkout"
    );
}

/// The metrics example of `opentelemetry-proto/examples/metrics.json`.
const SPEC_METRICS_JSON: &str = r#"{
  "resourceMetrics": [{
    "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "my.service"}}]},
    "scopeMetrics": [{
      "scope": {"name": "my.library", "version": "1.0.0",
                "attributes": [{"key": "my.scope.attribute", "value": {"stringValue": "some scope attribute"}}]},
      "metrics": [
        {"name": "my.counter", "unit": "1", "description": "I am a Counter",
         "sum": {"aggregationTemporality": 1, "isMonotonic": true,
                 "dataPoints": [{"asDouble": 5, "startTimeUnixNano": "1544712660300000000",
                                 "timeUnixNano": "1544712660300000000",
                                 "attributes": [{"key": "my.counter.attr", "value": {"stringValue": "some value"}}]}]}},
        {"name": "my.gauge", "unit": "1", "description": "I am a Gauge",
         "gauge": {"dataPoints": [{"asDouble": 10, "timeUnixNano": "1544712660300000000",
                                   "attributes": [{"key": "my.gauge.attr", "value": {"stringValue": "some value"}}]}]}},
        {"name": "my.histogram", "unit": "1", "description": "I am a Histogram",
         "histogram": {"aggregationTemporality": "AGGREGATION_TEMPORALITY_DELTA",
                       "dataPoints": [{"startTimeUnixNano": "1544712660300000000", "timeUnixNano": "1544712660300000000",
                                       "count": 2, "sum": 2, "bucketCounts": [1, 1], "explicitBounds": [1],
                                       "min": 0, "max": 2,
                                       "attributes": [{"key": "my.histogram.attr", "value": {"stringValue": "some value"}}]}]}},
        {"name": "my.exponential.histogram", "unit": "1", "description": "I am an Exponential Histogram",
         "exponentialHistogram": {"aggregationTemporality": 1,
                                  "dataPoints": [{"startTimeUnixNano": "1544712660300000000", "timeUnixNano": "1544712660300000000",
                                                  "count": 3, "sum": 10, "scale": 0, "zeroCount": 1,
                                                  "positive": {"offset": 1, "bucketCounts": [0, 2]},
                                                  "min": 0, "max": 5, "zeroThreshold": 0,
                                                  "attributes": [{"key": "my.exponential.histogram.attr", "value": {"stringValue": "some value"}}]}]}}
      ]
    }]
  }]
}"#;

#[test]
fn spec_metrics_json_example_decodes() {
    let d = decode_metrics(SPEC_METRICS_JSON.as_bytes(), Encoding::Json, NOW).expect("decodes");
    assert!(d.rejected.is_empty(), "{:?}", d.rejected);
    assert_eq!(d.items, 4);
    let r = rows(&d);
    let find = |table: &str, tag: &str| {
        r.iter()
            .find(|(t, tags, _)| t == table && tags.contains(tag))
            .map(|x| x.2)
    };
    assert_eq!(
        find("my_counter_total", "my_counter_attr=some value"),
        Some(5.0)
    );
    assert_eq!(
        find("my_gauge_ratio", "service_name=my.service"),
        Some(10.0)
    );
    assert_eq!(find("my_histogram_bucket", "le=1,"), Some(1.0));
    assert_eq!(find("my_histogram_bucket", "le=+Inf"), Some(2.0));
    assert_eq!(find("my_histogram_sum", ""), Some(2.0));
    assert_eq!(find("my_exponential_histogram_bucket", "le=0,"), Some(1.0));
    assert_eq!(find("my_exponential_histogram_bucket", "le=8,"), Some(3.0));
    assert_eq!(find("my_exponential_histogram_count", ""), Some(3.0));
    assert!(
        d.points
            .iter()
            .all(|(_, p)| p.time_ns == 1_544_712_660_300_000_000)
    );
}

#[test]
fn json_and_protobuf_decode_to_the_same_points() {
    let pb =
        proto::ExportMetricsServiceRequest::decode(decode_json_to_pb(SPEC_METRICS_JSON).as_slice())
            .expect("re-decode");
    let from_pb = decode_pb(&pb);
    let from_json =
        decode_metrics(SPEC_METRICS_JSON.as_bytes(), Encoding::Json, NOW).expect("decodes");
    assert_eq!(from_pb, from_json);
}

fn decode_json_to_pb(text: &str) -> Vec<u8> {
    json::metrics_request(text.as_bytes())
        .expect("json")
        .encode_to_vec()
}

#[test]
fn json_accepts_snake_case_string_or_number_ints_and_enum_names() {
    let body = r#"{"resource_metrics":[{"scope_metrics":[{"metrics":[
        {"name":"c","sum":{"aggregation_temporality":"AGGREGATION_TEMPORALITY_CUMULATIVE","is_monotonic":true,
          "data_points":[{"as_int":"9007199254740993","time_unix_nano":1700000000000000000,"unknownField":{"x":1}}]}},
        {"name":"g","gauge":{"dataPoints":[{"asDouble":"NaN","timeUnixNano":"1700000000000000000"}]}}
    ]}]}], "somethingNew": true}"#;
    let d = decode_metrics(body.as_bytes(), Encoding::Json, NOW).expect("decodes");
    assert!(d.rejected.is_empty(), "{:?}", d.rejected);
    let r = rows(&d);
    assert_eq!(r[0].0, "c_total");
    assert_eq!(r[0].2, 9007199254740992.0);
    assert!(r[1].2.is_nan());
}

fn span(trace: [u8; 16], id: u8, parent: Option<u8>, name: &str) -> proto::Span {
    proto::Span {
        trace_id: trace.to_vec(),
        span_id: vec![0, 0, 0, 0, 0, 0, 0, id],
        trace_state: String::new(),
        parent_span_id: parent
            .map(|p| vec![0, 0, 0, 0, 0, 0, 0, p])
            .unwrap_or_default(),
        name: name.into(),
        kind: 2,
        start_time_unix_nano: T,
        end_time_unix_nano: T + 1_500,
        attributes: vec![
            kv("http.route", "/users/{id}"),
            kv_int("http.response.status_code", 503),
            kv("user.id", "u1"),
        ],
        events: vec![proto::Event {
            time_unix_nano: T + 10,
            name: "exception".into(),
            attributes: vec![kv("exception.message", "boom")],
        }],
        links: vec![],
        status: Some(proto::Status {
            message: "upstream".into(),
            code: 2,
        }),
    }
}

fn traces_request(
    spans: Vec<proto::Span>,
    service: Option<&str>,
) -> proto::ExportTraceServiceRequest {
    proto::ExportTraceServiceRequest {
        resource_spans: vec![proto::ResourceSpans {
            resource: Some(proto::Resource {
                attributes: service
                    .map(|s| vec![kv("service.name", s), kv("host.name", "h1")])
                    .unwrap_or_default(),
            }),
            scope_spans: vec![proto::ScopeSpans {
                scope: Some(proto::InstrumentationScope {
                    name: "lib".into(),
                    version: "1.0".into(),
                }),
                spans,
            }],
        }],
    }
}

fn field<'a>(p: &'a Point, name: &str) -> Option<&'a FieldValue> {
    p.fields.iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

fn s(v: &str) -> FieldValue {
    FieldValue::Str(v.into())
}

#[test]
fn spans_become_rows_with_ids_status_and_promoted_attributes() {
    let trace = [0xab; 16];
    let req = traces_request(
        vec![
            span(trace, 1, None, "GET /users"),
            span(trace, 2, Some(1), "SELECT"),
        ],
        Some("api"),
    );
    let d = decode_traces(&req.encode_to_vec(), Encoding::Protobuf).expect("decodes");
    assert!(d.rejected.is_empty(), "{:?}", d.rejected);
    assert_eq!(d.items, 2);
    let (_, root) = &d.points[0];
    let (_, child) = &d.points[1];
    assert_eq!(root.table, SPANS_TABLE);
    assert_eq!(
        root.tags,
        vec![
            ("service_name".to_string(), "api".to_string()),
            ("span_id".to_string(), "0000000000000001".to_string())
        ]
    );
    assert_eq!(root.time_ns, T as i64);
    assert_eq!(field(root, "trace_id"), Some(&s(&"ab".repeat(16))));
    assert_eq!(field(root, "parent_span_id"), None);
    assert_eq!(field(child, "parent_span_id"), Some(&s("0000000000000001")));
    assert_eq!(field(root, "kind"), Some(&s("server")));
    assert_eq!(field(root, "status_code"), Some(&s("error")));
    assert_eq!(field(root, "status_message"), Some(&s("upstream")));
    assert_eq!(field(root, "duration_ns"), Some(&FieldValue::I64(1_500)));
    assert_eq!(
        field(root, "end_time"),
        Some(&FieldValue::I64(T as i64 + 1_500))
    );
    assert_eq!(field(root, "http_route"), Some(&s("/users/{id}")));
    assert_eq!(
        field(root, "http_response_status_code"),
        Some(&FieldValue::I64(503))
    );
    assert_eq!(field(root, "attributes"), Some(&s(r#"{"user.id":"u1"}"#)));
    assert_eq!(
        field(root, "resource_attributes"),
        Some(&s(r#"{"host.name":"h1"}"#))
    );
    assert_eq!(field(root, "scope_name"), Some(&s("lib")));
    let Some(FieldValue::Str(events)) = field(root, "events") else {
        panic!("events")
    };
    let events: serde_json::Value = serde_json::from_str(events).expect("json");
    assert_eq!(events[0]["name"], "exception");
    assert_eq!(events[0]["attributes"]["exception.message"], "boom");
}

#[test]
fn spans_with_bad_ids_are_rejected_alone_and_service_defaults() {
    let trace = [7; 16];
    let mut short_trace = span(trace, 1, None, "a");
    short_trace.trace_id = vec![1; 8];
    let mut zero_span = span(trace, 1, None, "b");
    zero_span.span_id = vec![0; 8];
    let mut bad_parent = span(trace, 3, None, "c");
    bad_parent.parent_span_id = vec![1, 2, 3];
    let mut no_start = span(trace, 4, None, "d");
    no_start.start_time_unix_nano = 0;
    let req = traces_request(
        vec![
            short_trace,
            span(trace, 5, None, "ok"),
            zero_span,
            bad_parent,
            no_start,
        ],
        None,
    );
    let d = decode_traces(&req.encode_to_vec(), Encoding::Protobuf).expect("decodes");
    let rejected: Vec<(usize, &str)> = d.rejected.iter().map(|(i, m)| (*i, m.as_str())).collect();
    assert_eq!(
        rejected,
        vec![
            (0, "span 0: trace_id has 8 bytes, expected 16"),
            (2, "span 2: span_id is all zeroes (invalid)"),
            (3, "span 3: parent_span_id has 3 bytes, expected 8"),
            (4, "span 4: start_time_unix_nano is missing"),
        ]
    );
    assert_eq!(d.points.len(), 1);
    assert_eq!(d.points[0].0, 1);
    assert_eq!(d.points[0].1.tags[0].1, "unknown_service");
    assert_eq!(field(&d.points[0].1, "resource_attributes"), None);
}

/// The trace example of `opentelemetry-proto/examples/trace.json`.
const SPEC_TRACE_JSON: &str = r#"{
  "resourceSpans": [{
    "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "my.service"}}]},
    "scopeSpans": [{
      "scope": {"name": "my.library", "version": "1.0.0",
                "attributes": [{"key": "my.scope.attribute", "value": {"stringValue": "some scope attribute"}}]},
      "spans": [{
        "traceId": "5B8EFFF798038103D269B633813FC60C",
        "spanId": "EEE19B7EC3C1B174",
        "parentSpanId": "EEE19B7EC3C1B173",
        "name": "I'm a server span",
        "startTimeUnixNano": "1544712660000000000",
        "endTimeUnixNano": "1544712661000000000",
        "kind": 2,
        "attributes": [{"key": "my.span.attr", "value": {"stringValue": "some value"}}]
      }]
    }]
  }]
}"#;

#[test]
fn spec_trace_json_example_decodes() {
    let d = decode_traces(SPEC_TRACE_JSON.as_bytes(), Encoding::Json).expect("decodes");
    assert!(d.rejected.is_empty(), "{:?}", d.rejected);
    let p = &d.points[0].1;
    assert_eq!(p.tags[0].1, "my.service");
    assert_eq!(p.tags[1].1, "eee19b7ec3c1b174");
    assert_eq!(
        field(p, "trace_id"),
        Some(&s("5b8efff798038103d269b633813fc60c"))
    );
    assert_eq!(field(p, "parent_span_id"), Some(&s("eee19b7ec3c1b173")));
    assert_eq!(field(p, "kind"), Some(&s("server")));
    assert_eq!(field(p, "status_code"), Some(&s("unset")));
    assert_eq!(
        field(p, "duration_ns"),
        Some(&FieldValue::I64(1_000_000_000))
    );
    assert_eq!(field(p, "name"), Some(&s("I'm a server span")));
    // Enum names work as well as numbers.
    let named = SPEC_TRACE_JSON.replace("\"kind\": 2", "\"kind\": \"SPAN_KIND_CLIENT\"");
    let d = decode_traces(named.as_bytes(), Encoding::Json).expect("decodes");
    assert_eq!(field(&d.points[0].1, "kind"), Some(&s("client")));
}

#[test]
fn responses_and_status_bodies_encode() {
    assert!(metrics_response(0, "", Encoding::Protobuf).is_empty());
    assert_eq!(traces_response(0, "", Encoding::Json), b"{}");
    let pb = metrics_response(3, "bad", Encoding::Protobuf);
    let back = proto::ExportMetricsServiceResponse::decode(pb.as_slice()).expect("decode");
    let partial = back.partial_success.expect("partial");
    assert_eq!(
        (partial.rejected_data_points, partial.error_message.as_str()),
        (3, "bad")
    );
    let j: serde_json::Value =
        serde_json::from_slice(&traces_response(2, "x", Encoding::Json)).expect("json");
    assert_eq!(j["partialSuccess"]["rejectedSpans"], "2");
    assert_eq!(j["partialSuccess"]["errorMessage"], "x");
    let st = proto::RpcStatus::decode(
        status_body(rpc_code::INVALID_ARGUMENT, "nope", Encoding::Protobuf).as_slice(),
    )
    .expect("status");
    assert_eq!((st.code, st.message.as_str()), (3, "nope"));
}

#[test]
fn undecodable_bodies_are_request_errors() {
    assert!(matches!(
        decode_metrics(&[0x0a, 0x05, 0x0a], Encoding::Protobuf, NOW),
        Err(OtlpError::Protobuf(_))
    ));
    assert!(matches!(
        decode_traces(b"{not json", Encoding::Json),
        Err(OtlpError::Json(_))
    ));
    let deep = "[".repeat(10_000);
    assert!(decode_traces(deep.as_bytes(), Encoding::Json).is_err());
    // Deeply nested kvlists in protobuf hit prost's recursion limit, not the stack.
    let mut v = proto::AnyValue {
        value: Some(any_value::Value::StringValue("x".into())),
    };
    for _ in 0..200 {
        v = proto::AnyValue {
            value: Some(any_value::Value::ArrayValue(proto::ArrayValue {
                values: vec![v],
            })),
        };
    }
    let mut sp = span([1; 16], 1, None, "deep");
    sp.attributes = vec![proto::KeyValue {
        key: "deep".into(),
        value: Some(v),
    }];
    let body = traces_request(vec![sp], Some("s")).encode_to_vec();
    assert!(decode_traces(&body, Encoding::Protobuf).is_err());
}

#[test]
fn base64_and_hex_encode() {
    assert_eq!(base64(b""), "");
    assert_eq!(base64(b"f"), "Zg==");
    assert_eq!(base64(b"fo"), "Zm8=");
    assert_eq!(base64(b"foo"), "Zm9v");
    assert_eq!(hex(&[0, 0xff, 0x1a]), "00ff1a");
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..1024)) {
        let _ = decode_metrics(&body, Encoding::Protobuf, NOW);
        let _ = decode_traces(&body, Encoding::Protobuf);
        let _ = decode_metrics(&body, Encoding::Json, NOW);
        let _ = decode_traces(&body, Encoding::Json);
    }

    #[test]
    fn mutated_requests_never_panic(
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let mut body = decode_json_to_pb(SPEC_METRICS_JSON);
        for (at, byte) in &flips {
            let i = at.index(body.len());
            body[i] = *byte;
        }
        let _ = decode_metrics(&body, Encoding::Protobuf, NOW);
        let mut text = SPEC_TRACE_JSON.as_bytes().to_vec();
        for (at, byte) in &flips {
            let i = at.index(text.len());
            text[i] = *byte;
        }
        let _ = decode_traces(&text, Encoding::Json);
        let _ = decode_metrics(&text, Encoding::Json, NOW);
    }

    #[test]
    fn exponential_histograms_of_any_shape_give_monotonic_buckets(
        scale in -10i32..=20,
        offset in -2000i32..2000,
        counts in prop::collection::vec(0u64..1000, 0..40),
        neg in prop::collection::vec(0u64..1000, 0..10),
        zero in 0u64..10,
    ) {
        let count = counts.iter().sum::<u64>() + neg.iter().sum::<u64>() + zero;
        let dp = proto::ExponentialHistogramDataPoint {
            attributes: vec![],
            start_time_unix_nano: 0,
            time_unix_nano: T,
            count,
            sum: None,
            scale,
            zero_count: zero,
            positive: Some(proto::Buckets { offset, bucket_counts: counts }),
            negative: Some(proto::Buckets { offset, bucket_counts: neg }),
            flags: 0,
            zero_threshold: 0.0,
        };
        let req = metrics_request(vec![metric("e", "", Data::ExponentialHistogram(
            proto::ExponentialHistogram { data_points: vec![dp], aggregation_temporality: 2 }))]);
        let d = decode_pb(&req);
        prop_assert!(d.rejected.is_empty());
        let buckets: Vec<(f64, f64)> = d.points.iter()
            .filter(|(_, p)| p.table == "e_bucket")
            .map(|(_, p)| {
                let le = &p.tags.iter().find(|(k, _)| k == "le").expect("le").1;
                let v = match p.fields[0].1 { FieldValue::F64(v) => v, _ => f64::NAN };
                (if le == "+Inf" { f64::INFINITY } else { le.parse().expect("le") }, v)
            })
            .collect();
        prop_assert!(buckets.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1), "{:?}", buckets);
        prop_assert_eq!(buckets.last().map(|b| b.1), Some(count as f64));
    }
}
