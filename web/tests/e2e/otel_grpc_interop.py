#!/usr/bin/env python3
"""Interop check: the official OpenTelemetry Python SDK exports to Crest over OTLP/gRPC.

usage: otel_grpc_interop.py HOST:PORT TOKEN

Traces go gzip-compressed, metrics uncompressed, both with the bearer token in the
`authorization` metadata. Sends one trace (a server span with two client children) and a
counter and a histogram. Prints one JSON line with what it sent; exits 0 only if every export
call succeeded (the SDK reports success only on grpc-status OK), 1 otherwise.
"""
import json
import sys

from grpc import Compression
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExportResult, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult

endpoint, token = sys.argv[1], sys.argv[2]
headers = (("authorization", f"Bearer {token}"),)
failures = []

span_exporter = OTLPSpanExporter(endpoint=endpoint, insecure=True, headers=headers, timeout=10,
                                 compression=Compression.Gzip)
metric_exporter = OTLPMetricExporter(endpoint=endpoint, insecure=True, headers=headers, timeout=10)

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

resource = Resource.create({"service.name": "py-grpc"})
tracer_provider = TracerProvider(resource=resource)
tracer_provider.add_span_processor(SimpleSpanProcessor(span_exporter))
tracer = tracer_provider.get_tracer("crest.interop.grpc")
reader = PeriodicExportingMetricReader(metric_exporter, export_interval_millis=3_600_000)
meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
meter = meter_provider.get_meter("crest.interop.grpc")
requests = meter.create_counter("grpc.requests", unit="{request}")
duration = meter.create_histogram("grpc.duration", unit="ms")

with tracer.start_as_current_span("Checkout", kind=trace.SpanKind.SERVER) as root:
    trace_id = format(root.get_span_context().trace_id, "032x")
    for i in range(2):
        with tracer.start_as_current_span(f"call {i}", kind=trace.SpanKind.CLIENT,
                                          attributes={"peer.service": "db"}):
            pass
for v in (5.0, 50.0, 500.0):
    requests.add(2, {"route": "/checkout"})
    duration.record(v, {"route": "/checkout"})

meter_provider.force_flush()
meter_provider.shutdown()
tracer_provider.shutdown()
print(json.dumps({"trace_id": trace_id, "spans": 3, "requests": 6, "failures": failures}))
sys.exit(1 if failures else 0)
