// With the standard OTEL_* variables set, spans leave through the real OpenTelemetry
// Node SDK and its OTLP/HTTP exporter, here to a collector on loopback.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startTracing } from '../../src/tracing.js';
import { createLogger } from '../../src/log.js';
import { startTestApi } from '../helpers/api.js';

test('OTEL_TRACES_EXPORTER=otlp exports enqueue and pull spans over OTLP/HTTP', async (t) => {
  const bodies: string[] = [];
  const collector = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => {
      body += c.toString();
    });
    req.on('end', () => {
      if (req.url === '/v1/traces') bodies.push(body);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
  });
  await new Promise<void>((ok) => collector.listen(0, '127.0.0.1', ok));
  t.after(() => new Promise<void>((ok) => collector.close(() => ok())));
  // The SDK reads the process environment itself; this file runs in its own process.
  Object.assign(process.env, {
    OTEL_TRACES_EXPORTER: 'otlp',
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    OTEL_METRICS_EXPORTER: 'none',
    OTEL_LOGS_EXPORTER: 'none',
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${(collector.address() as AddressInfo).port}`,
    OTEL_SERVICE_NAME: 'admp-test',
  });
  const stop = await startTracing(process.env, createLogger('silent'));
  const api = await startTestApi();
  const [a, b] = [await api.agent('alice'), await api.agent('bob')];
  await api.core.app.inject({
    method: 'POST',
    url: '/v1/messages',
    headers: a.auth,
    payload: { to: b.address, type: 't', body: {} },
  });
  await api.core.app.inject({ method: 'POST', url: '/v1/inbox/pull', headers: b.auth, payload: { max: 1 } });
  await api.close();
  await stop(); // flushes the batch processor
  const all = bodies.join('\n');
  assert.ok(bodies.length > 0, 'the collector received OTLP trace requests');
  assert.match(all, /"admp-test"/);
  for (const span of ['enqueue', 'pull'])
    assert.match(all, new RegExp(`"name":"[^"]*${span}[^"]*"`), `a ${span} span was exported`);
});
