// Interop check: the official OpenTelemetry JS SDK exports to Crest over OTLP/HTTP JSON (the
// Node exporters' default encoding; bodies go chunked, without Content-Length).
// usage: NODE_PATH=<dir>/node_modules node otel_interop.js BASE_URL TOKEN
// Sends one trace (a server span with three children) and a counter; prints one JSON line with
// the trace id; exits 0 only if both exports succeeded.
const { BasicTracerProvider, SimpleSpanProcessor } = require('@opentelemetry/sdk-trace-base');
const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-http');
const { MeterProvider, PeriodicExportingMetricReader } = require('@opentelemetry/sdk-metrics');
const { OTLPMetricExporter } = require('@opentelemetry/exporter-metrics-otlp-http');
const { resourceFromAttributes } = require('@opentelemetry/resources');
const { trace, context } = require('@opentelemetry/api');

const base = process.argv[2].replace(/\/$/, '');
const headers = { Authorization: 'Bearer ' + process.argv[3] };
const failures = [];
function checked(exporter, what) {
  const inner = exporter.export.bind(exporter);
  exporter.export = (items, done) => inner(items, (r) => {
    if (r.code !== 0) failures.push(what + ': ' + (r.error && r.error.message));
    done(r);
  });
  return exporter;
}
const resource = resourceFromAttributes({ 'service.name': 'js-interop' });
const spans = checked(new OTLPTraceExporter({ url: base + '/v1/traces', headers }), 'traces');
const metrics = checked(new OTLPMetricExporter({ url: base + '/v1/metrics', headers }), 'metrics');
const tp = new BasicTracerProvider({ resource, spanProcessors: [new SimpleSpanProcessor(spans)] });
const mp = new MeterProvider({
  resource,
  readers: [new PeriodicExportingMetricReader({ exporter: metrics, exportIntervalMillis: 3600000 })],
});
(async () => {
  const tracer = tp.getTracer('crest.interop.js');
  const root = tracer.startSpan('GET /api/query', { attributes: { 'http.route': '/api/query' } });
  const ctx = trace.setSpan(context.active(), root);
  for (let i = 0; i < 3; i++) tracer.startSpan('child ' + i, { attributes: { i } }, ctx).end();
  root.end();
  mp.getMeter('crest.interop.js').createCounter('js.requests').add(5, { route: '/x' });
  await tp.forceFlush();
  await mp.forceFlush();
  await tp.shutdown();
  await mp.shutdown();
  console.log(JSON.stringify({ trace_id: root.spanContext().traceId, failures }));
  process.exit(failures.length ? 1 : 0);
})().catch((e) => { console.error(e); process.exit(1); });
