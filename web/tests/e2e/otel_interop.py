#!/usr/bin/env python3
"""Interop check: the official OpenTelemetry Python SDK exports to Crest over OTLP/HTTP protobuf.

usage: otel_interop.py BASE_URL

Traces go gzip-compressed, metrics uncompressed. Sends one trace (a server span with four
client children, one of them an error with an exception event), a counter, an explicit-bucket
histogram, an exponential histogram and a gauge. Prints one JSON line with what it sent and
exits 0 only if every export call succeeded (the SDK reports success only on a 2xx).
"""
import json
import sys

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.metrics import Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExportResult, PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult

base = sys.argv[1].rstrip("/")
failures = []

span_exporter = OTLPSpanExporter(endpoint=base + "/v1/traces", timeout=10,
                                 compression=Compression.Gzip)
metric_exporter = OTLPMetricExporter(endpoint=base + "/v1/metrics", timeout=10)

export_spans = span_exporter.export
def checked_spans(batch):
    r = export_spans(batch)
    if r != SpanExportResult.SUCCESS:
        failures.append("traces")
    return r
span_exporter.export = checked_spans

export_metrics = metric_exporter.export
def checked_metrics(data, **kw):
    r = export_metrics(data, **kw)
    if r != MetricExportResult.SUCCESS:
        failures.append("metrics")
    return r
metric_exporter.export = checked_metrics

resource = Resource.create({"service.name": "py-interop", "deployment.environment": "ci"})
tracer_provider = TracerProvider(resource=resource)
tracer_provider.add_span_processor(SimpleSpanProcessor(span_exporter))
tracer = tracer_provider.get_tracer("crest.interop")

reader = PeriodicExportingMetricReader(metric_exporter, export_interval_millis=3_600_000)
meter_provider = MeterProvider(
    resource=resource,
    metric_readers=[reader],
    views=[View(instrument_name="rpc.latency", aggregation=ExponentialBucketHistogramAggregation())],
)
meter = meter_provider.get_meter("crest.interop")
requests = meter.create_counter("http.server.requests", unit="{request}")
duration = meter.create_histogram("http.server.duration", unit="ms")
latency = meter.create_histogram("rpc.latency", unit="s")
meter.create_observable_gauge(
    "process.cpu.utilization", unit="1",
    callbacks=[lambda options: [Observation(0.25, {"cpu": "0"})]],
)

values = [3.0, 7.0, 12.0, 40.0, 80.0, 250.0, 600.0, 1200.0]
with tracer.start_as_current_span("GET /checkout", kind=trace.SpanKind.SERVER,
                                  attributes={"http.route": "/checkout",
                                              "http.request.method": "GET",
                                              "http.response.status_code": 200}) as root:
    trace_id = format(root.get_span_context().trace_id, "032x")
    for i in range(4):
        with tracer.start_as_current_span(f"call {i}", kind=trace.SpanKind.CLIENT,
                                          attributes={"peer.service": "db", "i": i}) as child:
            if i == 3:
                child.set_status(trace.Status(trace.StatusCode.ERROR, "boom"))
                child.add_event("exception", {"exception.message": "boom"})
for v in values:
    requests.add(1, {"code": "200"})
    duration.record(v, {"route": "/checkout"})
    latency.record(v / 1000.0, {"method": "Get"})

tracer_provider.force_flush()
meter_provider.force_flush()
tracer_provider.shutdown()
meter_provider.shutdown()
print(json.dumps({"trace_id": trace_id, "spans": 5, "records": len(values),
                  "failures": failures}))
sys.exit(1 if failures else 0)
