// Federation end to end on one machine, real parts only (issue 6): two ADMP
// organisations, each with its own database, rspamd and Postfix on loopback, and one
// loopback DNS publishing both sides' DKIM keys and org2's _agentkeys records.
//   org1 (agents.org1.test): mail for its agents arrives by the Rspamd road (milter →
//        agents_bridge → /ingress/rspamd); it finds org2's agent keys in DNS.
//   org2 (agents.org2.test): mail arrives by the LMTP road (Postfix → ADMP LMTP, trusting
//        rspamd's Authentication-Results); it finds org1's keys in org1's JWKS.
// A at org1 sends by HTTP; B at org2 pulls it, replies; A pulls the reply. Statuses reach
// `delivered` through real DSNs; a message to a nonexistent agent ends `failed`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireBinaries } from '../helpers/requires.js';
import { startDns } from '../helpers/dns.js';
import { dkimKey } from '../helpers/mail.js';
import { freePort } from '../helpers/ports.js';
import { startOrg, startOrgRspamd, type Org, type OrgPorts, type OrgSpec } from './org.js';

const ORG1 = 'agents.org1.test';
const ORG2 = 'agents.org2.test';

type Json = Record<string, unknown> & {
  delivery_log?: { event: string; recipients?: { action: string; status: string; diagnostic?: string }[] }[];
};

async function http(
  org: Org,
  token: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; json: Json }> {
  const r = await fetch(`http://127.0.0.1:${org.spec.ports.http}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  return { status: r.status, json: (await r.json()) as Json };
}

/** The ingress road a stored message took (message.headers.road). */
async function road(org: Org, id: string): Promise<string> {
  return (
    await org.api.db.pool.query<{ road: string }>("SELECT headers->>'road' AS road FROM message WHERE id = $1", [id])
  ).rows[0]!.road;
}

async function until<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  ms: number,
  diagnose: () => string,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${diagnose()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Pulls one message for the token's agent, long-polling until it arrives. */
const pullOne = (org: Org, token: string, logs: () => string): Promise<Json> =>
  until(
    `a message at ${org.spec.domain}`,
    async () => {
      const r = await http(org, token, 'POST', '/v1/inbox/pull', { max: 1, wait: 1 });
      return (r.json.messages as Json[] | undefined)?.[0];
    },
    30_000,
    logs,
  );

/** GET /v1/messages/{id} once the message has the status `want`. */
const statusWhen = (org: Org, token: string, id: string, want: string, logs: () => string): Promise<Json> =>
  until(
    `message ${id} ${want}`,
    async () => {
      const r = await http(org, token, 'GET', `/v1/messages/${id}`);
      return r.json.status === want ? r.json : undefined;
    },
    30_000,
    logs,
  );

test(
  'two organisations exchange signed agent mail through Postfix, Rspamd and DNS; DSNs settle both statuses',
  { timeout: 120_000 },
  async (t) => {
    if (!requireBinaries(t, ['rspamd', 'postfix', 'postqueue'])) return;
    const dns = await startDns();
    t.after(() => dns.stop());
    const dkim1 = dkimKey(ORG1, 'mail2026');
    const dkim2 = dkimKey(ORG2, 'mail2026');
    dns.setTxt(dkim1.dnsName, dkim1.txt);
    dns.setTxt(dkim2.dnsName, dkim2.txt);
    const ports = async (): Promise<OrgPorts> => ({
      http: await freePort(),
      mx: await freePort(),
      submission: await freePort(),
      lmtp: await freePort(),
    });
    const [p1, p2] = [await ports(), await ports()];
    const keys = mkdtempSync(join(tmpdir(), 'admp-fed-keys-'));
    t.after(() => rmSync(keys, { recursive: true, force: true }));
    const spec1: OrgSpec = {
      domain: ORG1,
      mtaHostname: 'mx.org1.test',
      dkim: dkim1,
      ports: p1,
      partner: { domain: ORG2, ports: p2 },
      road: 'rspamd',
      discovery: 'dns',
      dns,
      keysDir: join(keys, 'org1'),
    };
    const spec2: OrgSpec = {
      domain: ORG2,
      mtaHostname: 'mx.org2.test',
      dkim: dkim2,
      ports: p2,
      partner: { domain: ORG1, ports: p1 },
      road: 'lmtp',
      discovery: 'jwks',
      dns,
      keysDir: join(keys, 'org2'),
    };
    for (const s of [spec1, spec2]) mkdirSync(s.keysDir);

    const [r1, r2] = await Promise.all([startOrgRspamd(spec1), startOrgRspamd(spec2)]);
    t.after(async () => {
      await r1.stop();
      await r2.stop();
    });
    const org1 = await startOrg(spec1, r1);
    t.after(() => org1.stop());
    const org2 = await startOrg(spec2, r2);
    t.after(() => org2.stop());
    const logs = () =>
      `--- org1 postfix\n${org1.postfix.log().split('\n').slice(-25).join('\n')}\n--- org2 postfix\n${org2.postfix.log().split('\n').slice(-25).join('\n')}`;

    const a = await org1.agent('a');
    const b = await org2.agent('b');
    await org2.publishKeys(b.address);

    // 1. A (org1) sends to B (org2) over the HTTP API; it leaves by mail.
    const sent = await http(org1, a.token, 'POST', '/v1/messages', {
      to: b.address,
      type: 'task.request',
      subject: 'Quarterly numbers',
      body: { quarter: '2026-Q1' },
      correlation_id: 'c-42',
    });
    assert.equal(sent.status, 201, JSON.stringify(sent.json));
    assert.equal(sent.json.status, 'queued');
    const first = String(sent.json.id);

    // 2. B pulls it: signature verified with org1's JWKS, DKIM verified by org2's rspamd.
    const pulled = await pullOne(org2, b.token, logs);
    assert.equal(pulled.from, a.address);
    assert.equal(pulled.channel, 'smtp');
    assert.deepEqual(pulled.body, { quarter: '2026-Q1' });
    assert.equal(pulled.correlation_id, 'c-42');
    const auth = pulled.auth as {
      domain: { method: string; source: string };
      signature: { agent: string; kid: string; key_source: string };
    };
    assert.deepEqual(auth.signature, { ...auth.signature, agent: a.address, kid: a.kid, key_source: 'jwks' });
    assert.equal(auth.domain.method, `dkim:${ORG1}`);
    assert.equal(auth.domain.source, 'authentication-results');
    assert.equal(await road(org2, String(pulled.id)), 'lmtp');

    // 3. org2's Postfix reports success: "relayed", because our LMTP receiver does not announce DSN
    //    (the LMTP 250 is the commit, so ADMP counts it as delivered, RFC 3464 §2.3.3).
    const aStatus = await statusWhen(org1, a.token, first, 'delivered', logs);
    assert.deepEqual(
      aStatus.delivery_log!.map((e) => e.event),
      ['queued', 'sent', 'dsn'],
    );
    assert.equal(aStatus.delivery_log![2]!.recipients![0]!.action, 'relayed');

    // 4. B replies; the reply goes back by mail and A pulls it with the thread's correlation id.
    const replied = await http(org2, b.token, 'POST', `/v1/messages/${String(pulled.id)}/reply`, {
      type: 'task.result',
      body: { total: 17 },
      lease_id: pulled.lease_id,
    });
    assert.equal(replied.status, 201, JSON.stringify(replied.json));
    assert.equal(replied.json.status, 'queued');
    const reply = await pullOne(org1, a.token, logs);
    assert.equal(reply.from, b.address);
    assert.equal(reply.type, 'task.result');
    assert.deepEqual(reply.body, { total: 17 });
    assert.equal(reply.correlation_id, 'c-42');
    const replyAuth = reply.auth as { domain: { method: string }; signature: { kid: string; key_source: string } };
    assert.equal(replyAuth.signature.key_source, 'dns');
    assert.equal(replyAuth.signature.kid, b.kid);
    assert.equal(replyAuth.domain.method, `dkim:${ORG2}`);
    assert.equal(await road(org1, String(reply.id)), 'rspamd');

    // 5. org1's MX does not announce DSN (Rspamd road), so org2's Postfix reports "relayed" on its 250.
    const bStatus = await statusWhen(org2, b.token, String(replied.json.id), 'delivered', logs);
    assert.deepEqual(
      bStatus.delivery_log!.map((e) => e.event),
      ['queued', 'sent', 'dsn'],
    );
    assert.equal(bStatus.delivery_log![2]!.recipients![0]!.action, 'relayed');

    // 6. To an agent org2 does not have: org2's LMTP refuses, its Postfix bounces, org1 records the diagnostic.
    const lost = await http(org1, a.token, 'POST', '/v1/messages', {
      to: `nobody@${ORG2}`,
      type: 'task.request',
      body: {},
    });
    assert.equal(lost.status, 201);
    const failed = await statusWhen(org1, a.token, String(lost.json.id), 'failed', logs);
    const report = failed.delivery_log!.at(-1)!;
    assert.equal(report.event, 'dsn');
    assert.deepEqual([report.recipients![0]!.action, report.recipients![0]!.status], ['failed', '5.1.1']);
    assert.match(report.recipients![0]!.diagnostic!, /550 5\.1\.1 .*no agent nobody@agents\.org2\.test/);
  },
);
