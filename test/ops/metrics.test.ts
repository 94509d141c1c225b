// /metrics: what the API, the ingress pipeline, the key discovery and the queue gauges
// count, scraped the way Prometheus does; on the API listener or on its own.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { startTestApi, type TestApi } from '../helpers/api.js';
import { agentMail, signer, trust } from '../helpers/agent-mail.js';
import { startDns } from '../helpers/dns.js';
import { createTestDatabase } from '../helpers/db.js';
import { LOOPBACK_ALLOWED, loopbackLookup, startJwksServer } from '../keys/loopback.js';
import { refreshQueueGauges } from '../../src/jobs/queue-gauges.js';
import { createHousekeeping } from '../../src/mailbox/housekeeping.js';
import { startServer } from '../../src/app/server.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { createMetrics } from '../../src/metrics.js';
import { families, sample } from './scrape.js';

const METRICS_TOKEN = 'metrics-secret-for-tests-0123456789';
const TOKEN = 'ingress-secret-for-metrics-0123456789';
const PARTNER = 'agents.partner.example';
const REPO = join(import.meta.dirname, '..', '..');

const dkimPass = (domain: string) => JSON.stringify({ dkim: [{ result: 'allow', domain, selector: 's1' }] });

async function setup(t: { after(fn: () => Promise<void>): void }) {
  const jwks = await startJwksServer();
  const dns = await startDns();
  jwks.set(PARTNER, { body: { keys: [] } });
  const api = await startTestApi(
    {
      ADMP_INGRESS_TOKEN: TOKEN,
      ADMP_METRICS_TOKEN: METRICS_TOKEN,
      ADMP_JWKS_SCHEME: 'http',
      ADMP_FETCH_ALLOW: LOOPBACK_ALLOWED,
      ADMP_JWKS_PORT: String(jwks.port),
      ADMP_DNS_SERVERS: dns.server,
      ADMP_KEY_FETCH_TIMEOUT_MS: '300',
      ADMP_DNS_TIMEOUT_MS: '300',
    },
    { keyDeps: { lookup: loopbackLookup() } },
  );
  t.after(async () => {
    await api.close();
    await jwks.stop();
    await dns.stop();
  });
  await api.db.pool.query(
    `INSERT INTO policy_rule (from_glob, to_glob, action) VALUES ('*@${PARTNER}', '*@agents.test', 'allow')`,
  );
  return { api, jwks };
}

const ingest = (api: TestApi, raw: Buffer, to: string, auth = dkimPass(PARTNER)) =>
  api.core.app.inject({
    method: 'POST',
    url: '/ingress/rspamd',
    payload: raw,
    headers: {
      'content-type': 'message/rfc822',
      authorization: `Bearer ${TOKEN}`,
      'x-envelope-to': to,
      'x-rspamd-auth': auth,
    },
  });

const scrape = async (api: TestApi): Promise<string> => {
  const r = await api.core.app.inject({
    method: 'GET',
    url: '/metrics',
    headers: { authorization: `Bearer ${METRICS_TOKEN}` },
  });
  assert.equal(r.statusCode, 200);
  assert.match(String(r.headers['content-type']), /^text\/plain; version=0\.0\.4/);
  return r.body;
};

test('the API, the ingress roads and key discovery are counted; the queue gauges come from the database', async (t) => {
  const { api, jwks } = await setup(t);
  const [alice, bob] = [await api.agent('alice'), await api.agent('bob')];

  // HTTP road: one stored, one idempotent replay, one pull, one ack.
  const send = () =>
    api.core.app.inject({
      method: 'POST',
      url: '/v1/messages',
      headers: { ...alice.auth, 'idempotency-key': 'k1' },
      payload: { to: bob.address, type: 'note', body: { n: 1 }, correlation_id: 'c-1' },
    });
  assert.equal((await send()).statusCode, 201);
  assert.equal((await send()).statusCode, 200);
  const pulled = (
    await api.core.app.inject({ method: 'POST', url: '/v1/inbox/pull', headers: bob.auth, payload: { max: 10 } })
  ).json().messages;
  assert.equal(pulled.length, 1);
  const ack = await api.core.app.inject({
    method: 'POST',
    url: `/v1/messages/${pulled[0].id}/ack`,
    headers: bob.auth,
    payload: { lease_id: pulled[0].lease_id },
  });
  assert.equal(ack.statusCode, 200, ack.body);

  // Rspamd road: stored, refused by signature, refused by policy, tempfail on an unreachable key server.
  const partner = signer(`w@${PARTNER}`);
  await trust(api.db.pool, partner);
  await api.agent('carol');
  assert.equal(
    (await ingest(api, await agentMail(partner, { to: bob.address, type: 'task.request', body: {} }), bob.address))
      .statusCode,
    200,
  );
  assert.equal(
    (
      await ingest(
        api,
        await agentMail(partner, { to: bob.address, type: 'task.request', body: {} }),
        'carol@agents.test',
      )
    ).statusCode,
    422,
  );
  const stranger = signer('x@agents.stranger.example');
  await trust(api.db.pool, stranger);
  assert.equal(
    (
      await ingest(
        api,
        await agentMail(stranger, { to: bob.address, type: 'task.request', body: {} }),
        bob.address,
        dkimPass('agents.stranger.example'),
      )
    ).statusCode,
    422,
  );
  jwks.set(PARTNER, { status: 503 });
  const unknown = signer(`w2@${PARTNER}`);
  assert.equal(
    (await ingest(api, await agentMail(unknown, { to: bob.address, type: 'task.request', body: {} }), bob.address))
      .statusCode,
    503,
  );

  await refreshQueueGauges(createHousekeeping(api.db.pool, api.config), api.core.metrics);
  const text = await scrape(api);
  const expect = (name: string, labels: Record<string, string>, value: number) =>
    assert.equal(
      sample(text, name, labels),
      value,
      `${name}${JSON.stringify(labels)}\n${text
        .split('\n')
        .filter((l) => l.startsWith(name))
        .join('\n')}`,
    );
  expect('admp_enqueue_total', { channel: 'http' }, 1);
  expect('admp_duplicate_total', { channel: 'http' }, 1);
  expect('admp_enqueue_total', { channel: 'smtp' }, 1);
  expect('admp_enqueue_seconds_count', { channel: 'http' }, 2);
  expect('admp_pulled_total', {}, 1);
  expect('admp_pull_seconds_count', {}, 1);
  expect('admp_ack_total', { outcome: 'ok' }, 1);
  expect('admp_ingress_total', { road: 'rspamd', outcome: 'stored', code: 'none' }, 1);
  expect('admp_ingress_total', { road: 'rspamd', outcome: 'refused', code: 'signature_invalid' }, 1);
  expect('admp_ingress_total', { road: 'rspamd', outcome: 'refused', code: 'policy_denied' }, 1);
  expect('admp_ingress_total', { road: 'rspamd', outcome: 'tempfail', code: 'key_unavailable' }, 1);
  expect('admp_ingest_seconds_count', { road: 'rspamd' }, 4);
  expect('admp_signature_fail_total', { reason: 'signature_invalid' }, 1);
  expect('admp_signature_fail_total', { reason: 'key_unavailable' }, 1);
  expect('admp_policy_denied_total', { reason: 'unknown_sender' }, 1);
  expect('admp_key_fetch_failures_total', { source: 'jwks' }, 1);
  assert.ok((sample(text, 'admp_key_cache_total', { source: 'jwks', result: 'miss' }) ?? 0) >= 1);
  expect('admp_http_requests_total', { method: 'POST', route: '/v1/messages', status: '201' }, 1);
  expect('admp_http_requests_total', { method: 'POST', route: '/ingress/rspamd', status: '422' }, 2);
  // The queue gauges: bob has the partner's message waiting (his HTTP one is acked).
  expect('admp_inbox_depth', { agent: 'bob' }, 1);
  expect('admp_queue_messages', { status: 'delivered' }, 1);
  expect('admp_queue_messages', { status: 'leased' }, 0);
  expect('admp_db_pool_max', {}, api.config.pgPoolMax);
  assert.ok((sample(text, 'admp_db_pool_connections') ?? 0) >= 1);
});

test('admp_inbox_depth names only the deepest inboxes, and forgets an agent that left the top', async (t) => {
  const { api } = await setup(t);
  const alice = await api.agent('alice');
  const deep = [await api.agent('d1'), await api.agent('d2'), await api.agent('d3')];
  for (const [i, a] of deep.entries()) {
    for (let n = 0; n <= i; n++) {
      await api.core.app.inject({
        method: 'POST',
        url: '/v1/messages',
        headers: alice.auth,
        payload: { to: a.address, type: 'note', body: { n } },
      });
    }
  }
  await refreshQueueGauges(createHousekeeping(api.db.pool, api.config), api.core.metrics, 2);
  let text = await scrape(api);
  assert.equal(sample(text, 'admp_inbox_depth', { agent: 'd3' }), 3);
  assert.equal(sample(text, 'admp_inbox_depth', { agent: 'd2' }), 2);
  assert.equal(sample(text, 'admp_inbox_depth', { agent: 'd1' }), undefined, 'only the top 2');
  await api.db.pool.query("UPDATE message SET status = 'acked', acked_at = now() WHERE to_agent_id = 'd3'");
  await refreshQueueGauges(createHousekeeping(api.db.pool, api.config), api.core.metrics, 2);
  text = await scrape(api);
  assert.equal(sample(text, 'admp_inbox_depth', { agent: 'd3' }), undefined, 'an emptied inbox leaves the list');
  assert.equal(sample(text, 'admp_inbox_depth', { agent: 'd1' }), 1);
  assert.ok((sample(text, 'admp_oldest_deliverable_seconds') ?? -1) >= 0);
});

test('by default /metrics is on its own loopback listener, never on the API port', () => {
  const config = loadConfig({});
  assert.deepEqual(config.metricsListen, { host: '127.0.0.1', port: 9464 });
  assert.equal(config.metricsToken, '');
});

test('ADMP_METRICS_LISTEN serves /metrics on its own listener and not on the API', async (t) => {
  const db = await createTestDatabase();
  const config = loadConfig({
    DATABASE_URL: db.url,
    ADMP_HTTP_LISTEN: '127.0.0.1:0',
    ADMP_LMTP_LISTEN: '',
    ADMP_SMTP_LISTEN: '',
    ADMP_METRICS_LISTEN: '127.0.0.1:0',
    ADMP_LOG_LEVEL: 'silent',
    ADMP_DOMAINS: 'agents.test',
  });
  const server = await startServer(config, createLogger('silent'));
  t.after(async () => {
    await server.stop();
    await db.drop();
  });
  assert.ok(server.metricsUrl);
  const own = await fetch(`${server.metricsUrl}/metrics`);
  assert.equal(own.status, 200);
  assert.match(await own.text(), /^# HELP admp_enqueue_total /m);
  assert.equal((await fetch(`${server.metricsUrl}/v1/inbox`)).status, 404, 'the metrics listener serves nothing else');
  assert.equal((await fetch(`${server.httpUrl}/metrics`)).status, 404, 'not on the API listener');
  assert.equal((await fetch(`${server.httpUrl}/readyz`)).status, 200);
});

test('every admp_* metric that the alerts, the dashboard and the operations docs name is declared', async () => {
  const declared = families(await createMetrics().registry.metrics());
  // The README's Operations section, up to the next top-level section.
  const operations = /\n## Operations\n[\s\S]*?(?=\n## )/.exec(readFileSync(join(REPO, 'README.md'), 'utf8'))![0];
  const sources: [string, string][] = [
    ['compose/prometheus/alerts.yml', readFileSync(join(REPO, 'compose', 'prometheus', 'alerts.yml'), 'utf8')],
    ['README.md (Operations)', operations],
    ...readdirSync(join(REPO, 'compose', 'grafana'))
      .filter((f) => f.endsWith('.json'))
      .map((f): [string, string] => [
        `compose/grafana/${f}`,
        readFileSync(join(REPO, 'compose', 'grafana', f), 'utf8'),
      ]),
  ];
  for (const [file, text] of sources) {
    const named = new Set([...text.matchAll(/\badmp_[a-z_]+/g)].map((m) => m[0].replace(/_(bucket|sum|count)$/, '')));
    assert.ok(named.size > 0, `${file} names no metric`);
    for (const name of named)
      assert.ok(declared.has(name), `${file} names ${name}, which src/metrics.ts does not declare`);
  }
  // And the README lists every declared metric.
  for (const name of declared)
    assert.ok(operations.includes(name), `the README's Operations section does not describe ${name}`);
});

test('ADMP_METRICS_TOKEN: /metrics on the API listener and on its own asks for the token', async (t) => {
  const db = await createTestDatabase();
  const config = loadConfig({
    DATABASE_URL: db.url,
    ADMP_HTTP_LISTEN: '127.0.0.1:0',
    ADMP_LMTP_LISTEN: '',
    ADMP_SMTP_LISTEN: '',
    ADMP_METRICS_LISTEN: '127.0.0.1:0',
    ADMP_METRICS_TOKEN: METRICS_TOKEN,
    ADMP_LOG_LEVEL: 'silent',
    ADMP_DOMAINS: 'agents.test',
  });
  const server = await startServer(config, createLogger('silent'));
  t.after(async () => {
    await server.stop();
    await db.drop();
  });
  for (const base of [server.httpUrl, server.metricsUrl!]) {
    assert.equal((await fetch(`${base}/metrics`)).status, 401, `${base}: no token`);
    const wrong = await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}x` } });
    assert.equal(wrong.status, 401, `${base}: wrong token`);
    const ok = await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
    assert.equal(ok.status, 200, base);
    assert.match(await ok.text(), /^# HELP admp_enqueue_total /m);
  }
});
