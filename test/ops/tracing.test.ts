// Spans through @opentelemetry/api: enqueue, pull, ack and the ingress pipeline stages,
// recorded by a minimal tracer provider registered the way an SDK registers itself.
// Export stays off unless the OTEL_* environment asks for it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  SpanStatusCode,
  trace,
  type Attributes,
  type Span,
  type SpanStatus,
  type Tracer,
  type TracerProvider,
} from '@opentelemetry/api';
import { startTestApi } from '../helpers/api.js';
import { agentMail, signer, trust } from '../helpers/agent-mail.js';
import { tracingRequested } from '../../src/tracing.js';

interface Recorded {
  name: string;
  attributes: Attributes;
  status?: SpanStatus;
  ended: boolean;
}

/** Records spans in memory: the seam where an SDK's span processor would be. */
function recordingProvider(spans: Recorded[]): TracerProvider {
  const startSpan = (name: string, options?: { attributes?: Attributes }): Span => {
    const rec: Recorded = { name, attributes: { ...options?.attributes }, ended: false };
    spans.push(rec);
    const span: Span = {
      spanContext: () => ({ traceId: '0'.repeat(31) + '1', spanId: '0'.repeat(15) + '1', traceFlags: 1 }),
      setAttribute: (k, v) => {
        if (v !== undefined) rec.attributes[k] = v;
        return span;
      },
      setAttributes: (a) => {
        Object.assign(rec.attributes, a);
        return span;
      },
      addEvent: () => span,
      addLink: () => span,
      addLinks: () => span,
      setStatus: (s) => {
        rec.status = s;
        return span;
      },
      updateName: (n) => {
        rec.name = n;
        return span;
      },
      end: () => {
        rec.ended = true;
      },
      isRecording: () => true,
      recordException: () => undefined,
    };
    return span;
  };
  const tracer = {
    startSpan,
    startActiveSpan: (name: string, ...rest: unknown[]) => {
      const fn = rest.pop() as (s: Span) => unknown;
      const options = rest[0] as { attributes?: Attributes } | undefined;
      return fn(startSpan(name, options));
    },
  } as Tracer;
  return { getTracer: () => tracer };
}

test('enqueue, pull, ack and every ingress stage make spans', async (t) => {
  const spans: Recorded[] = [];
  trace.setGlobalTracerProvider(recordingProvider(spans));
  t.after(() => trace.disable());
  const api = await startTestApi({ ADMP_INGRESS_TOKEN: 'tok-0123456789abcdef' });
  t.after(() => api.close());
  const [alice, bob] = [await api.agent('alice'), await api.agent('bob')];
  const inject = (url: string, headers: Record<string, string>, payload: unknown) =>
    api.core.app.inject({ method: 'POST', url, headers, payload: payload as object });

  // Before the first send: the send reads the policy (its rate quotas) and caches it.
  const partner = signer('w@agents.partner.example');
  await trust(api.db.pool, partner);
  await api.db.pool.query(
    "INSERT INTO policy_rule (from_glob, to_glob, action) VALUES ('*@agents.partner.example', '*@agents.test', 'allow')",
  );
  assert.equal((await inject('/v1/messages', alice.auth, { to: bob.address, type: 'note', body: {} })).statusCode, 201);
  const [m] = (await inject('/v1/inbox/pull', bob.auth, { max: 1 })).json().messages;
  assert.equal((await inject(`/v1/messages/${m.id}/ack`, bob.auth, { lease_id: m.lease_id })).statusCode, 200);
  const raw = await agentMail(partner, { to: bob.address, type: 'task.request', body: {} });
  const r = await api.core.app.inject({
    method: 'POST',
    url: '/ingress/rspamd',
    payload: raw,
    headers: {
      'content-type': 'message/rfc822',
      authorization: 'Bearer tok-0123456789abcdef',
      'x-envelope-to': bob.address,
      'x-rspamd-auth': JSON.stringify({ dkim: [{ result: 'allow', domain: 'agents.partner.example' }] }),
    },
  });
  assert.equal(r.statusCode, 200, r.body);

  const names = spans.map((s) => s.name);
  for (const name of [
    'admp.enqueue',
    'admp.pull',
    'admp.ack',
    'admp.ingest',
    'admp.ingest.parse',
    'admp.ingest.domain_auth',
    'admp.ingest.signature',
    'admp.ingest.policy',
  ]) {
    assert.ok(names.includes(name), `no ${name} span in ${names.join(', ')}`);
  }
  assert.ok(
    spans.every((s) => s.ended),
    'every span is ended',
  );
  const enqueues = spans.filter((s) => s.name === 'admp.enqueue');
  assert.deepEqual(
    enqueues.map((s) => s.attributes['admp.channel']),
    ['http', 'smtp'],
  );
  assert.match(String(enqueues[0]!.attributes['admp.message_id']), /^[0-9a-f-]{36}$/);
  assert.equal(spans.find((s) => s.name === 'admp.pull')!.attributes['admp.pulled'], 1);
  assert.equal(spans.find((s) => s.name === 'admp.ingest')!.attributes['admp.road'], 'rspamd');
});

test('a failing stage marks its span as an error', async (t) => {
  const spans: Recorded[] = [];
  trace.setGlobalTracerProvider(recordingProvider(spans));
  t.after(() => trace.disable());
  const api = await startTestApi();
  t.after(() => api.close());
  const bob = await api.agent('bob');
  const pull = () =>
    api.core.app.inject({ method: 'POST', url: '/v1/inbox/pull', headers: bob.auth, payload: { max: 1 } });
  assert.equal((await pull()).statusCode, 200, 'caches the token, so the outage hits the pull itself');
  await api.db.block();
  const down = await pull();
  await api.db.unblock();
  assert.equal(down.statusCode, 503);
  const pulls = spans.filter((s) => s.name === 'admp.pull');
  assert.deepEqual(
    pulls.map((s) => s.status?.code),
    [undefined, SpanStatusCode.ERROR],
  );
});

test('export is off unless the standard OTEL_* variables ask for it', async () => {
  assert.equal(tracingRequested({}), false);
  assert.equal(tracingRequested({ OTEL_SERVICE_NAME: 'admp' }), false);
  assert.equal(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318' }), true);
  assert.equal(tracingRequested({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://127.0.0.1:4318/v1/traces' }), true);
  assert.equal(tracingRequested({ OTEL_TRACES_EXPORTER: 'otlp' }), true);
  assert.equal(
    tracingRequested({ OTEL_TRACES_EXPORTER: 'none', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318' }),
    false,
  );
  assert.equal(tracingRequested({ OTEL_SDK_DISABLED: 'true', OTEL_TRACES_EXPORTER: 'otlp' }), false);
});
