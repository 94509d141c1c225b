// What both ingress e2e files share: a partner organisation (partner.example) whose agent
// Ed25519-signs its mail and whose MTA DKIM-signs it, a loopback DNS server publishing the
// partner's DKIM key, SPF and DMARC, and the real ADMP core on a fresh database with the
// partner's agent key pinned and a policy rule admitting it. Mail is submitted with swaks
// (XCLIENT), posing as the partner's MTA at 1.2.3.4, so SPF passes as it would on the internet.
import type { TestContext } from 'node:test';
import { buildSignedMessage } from '../../src/mail/signed-message.js';
import { canonicalMessageId } from '../../src/core/signature.js';
import { addRule } from '../../src/db/policy-rules.js';
import { startTestApi, type TestAgent, type TestApi } from '../helpers/api.js';
import type { WireOptions } from '../../src/app/server.js';
import { signer, trust, type TestSigner } from '../helpers/agent-mail.js';
import { startDns, type TestDns } from '../helpers/dns.js';
import { dkimKey, sendMail, signMessage, type SmtpOutcome } from '../helpers/mail.js';
import type { TestPostfix } from '../helpers/postfix.js';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LOOPBACK_ALLOWED, loopbackLookup } from '../keys/loopback.js';

export const AGENTS = 'agents.example.com';
export const PARTNER = 'partner.example';
export const PARTNER_MTA = { clientAddr: '1.2.3.4', helo: 'mail.partner.example' };
/** The partner's agent that floods (its key is pinned too). */
export const FLOODER = `flood@${PARTNER}`;

/**
 * A policy file (removed when the test ends) whose rule lets FLOODER send 2 per 16 s (one
 * place every 8 s, docs/policy.md), then `extra` YAML: the setting for startPartnerWorld.
 */
export function floodPolicy(t: TestContext, extra = ''): { ADMP_POLICY_FILE: string } {
  const dir = mkdtempSync(join(tmpdir(), 'admp-e2e-policy-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'policy.yaml');
  writeFileSync(
    file,
    `rules:\n  - { id: flood-guard, from: "${FLOODER}", to: "*", action: limit, quota: { per: sender, limit: 2, window_sec: 16 } }\n${extra}`,
  );
  return { ADMP_POLICY_FILE: file };
}

export interface PartnerMail {
  /** The message as the partner's MTA sends it (CRLF line ends). */
  readonly data: string;
  /** As stored in message.mail_message_id. */
  readonly messageId: string;
}

export interface MailOptions {
  /** The signing agent (default: the partner's agent). */
  readonly as?: TestSigner;
  /** The recipient the agent signature names (default: the mail's `to`). */
  readonly signedFor?: string;
  /** DKIM-sign as partner.example (default true). */
  readonly dkim?: boolean;
  /** Extra header lines put on top (before DKIM signing). */
  readonly headers?: readonly string[];
  /** The agent's signing time (Unix seconds; default now) and its chosen validity (X-Agent-Expires). */
  readonly signedAt?: number;
  readonly validitySec?: number;
}

export interface StoredRow {
  id: string;
  to_agent_id: string;
  from_agent: string;
  channel: string;
  status: string;
  body: unknown;
  headers: { road?: string; queue_id?: string };
  auth: {
    domain: { method: string; source: string; dkim: unknown[] };
    signature: { agent: string; kid: string; key_source: string };
    client_ip: string | null;
  };
}

export interface PartnerWorld {
  readonly api: TestApi;
  readonly dns: TestDns;
  /** The partner's agent, whose key is pinned. */
  readonly worker: TestSigner;
  /** FLOODER, whose key is pinned. */
  readonly flooder: TestSigner;
  /** Our agent the partner writes to. */
  readonly bob: TestAgent;
  mail(to: string, o?: MailOptions): Promise<PartnerMail>;
  /** Submits `mail` to Postfix from the partner's MTA (envelope sender: the partner's agent unless given; `login`: as a SASL-authenticated client). */
  send(
    postfix: TestPostfix,
    to: readonly string[],
    mail: PartnerMail,
    o?: { from?: string; login?: string },
  ): Promise<SmtpOutcome>;
  /** The rows `message` holds for this mail. */
  stored(mail: PartnerMail): Promise<StoredRow[]>;
  /** Every row of `message`. */
  count(): Promise<number>;
  /** Runs `stop` when the test ends, before what was started earlier (Postfix before the bridge before the database). */
  onClose(stop: () => Promise<unknown>): void;
}

export async function startPartnerWorld(
  t: TestContext,
  env: Record<string, string> = {},
  wireOptions: WireOptions = {},
): Promise<PartnerWorld> {
  // node:test runs after-hooks first-in first-out; teardown must go the other way.
  const stops: (() => Promise<unknown>)[] = [];
  t.after(async () => {
    for (const stop of stops.reverse()) await stop();
  });
  const dkim = dkimKey(PARTNER, 's2025');
  const dns = await startDns({
    txt: {
      [dkim.dnsName]: dkim.txt,
      [PARTNER]: `v=spf1 ip4:${PARTNER_MTA.clientAddr} -all`,
      [`_dmarc.${PARTNER}`]: 'v=DMARC1; p=reject',
    },
  });
  stops.push(() => dns.stop());
  // Key discovery stays on loopback: partner JWKS names resolve to 127.0.0.1, TXT to the test DNS.
  const api = await startTestApi(
    {
      ADMP_DOMAINS: AGENTS,
      ADMP_POLICY_FILE: '',
      ADMP_DNS_SERVERS: dns.server,
      ADMP_FETCH_ALLOW: LOOPBACK_ALLOWED,
      ...env,
    },
    { keyDeps: { lookup: loopbackLookup() }, ...wireOptions },
  );
  stops.push(() => api.close());
  const worker = signer(`worker@${PARTNER}`);
  await trust(api.db.pool, worker);
  const flooder = signer(FLOODER);
  await trust(api.db.pool, flooder);
  await addRule(api.db.pool, { from: `*@${PARTNER}`, to: `*@${AGENTS}`, action: 'allow' });
  const bob = await api.agent('bob', AGENTS);
  let n = 0;
  return {
    api,
    dns,
    worker,
    flooder,
    bob,
    async mail(to, o = {}) {
      const signed = await buildSignedMessage(
        { to: o.signedFor ?? to, type: 'task.request', body: { n: ++n } },
        o.as ?? worker,
        { now: o.signedAt, validitySec: o.validitySec },
      );
      const raw = [...(o.headers ?? []), ''].join('\r\n') + signed.eml.toString('utf8');
      return {
        data: o.dkim === false ? raw : await signMessage(raw, dkim),
        messageId: canonicalMessageId(signed.messageId),
      };
    },
    send: (postfix, to, mail, o = {}) =>
      sendMail({
        port: postfix.port,
        from: o.from ?? worker.agent,
        to,
        data: mail.data,
        ...PARTNER_MTA,
        ...(o.login ? { login: o.login } : {}),
      }),
    async stored(mail) {
      return (await api.db.pool.query<StoredRow>('SELECT * FROM message WHERE mail_message_id = $1', [mail.messageId]))
        .rows;
    },
    onClose: (stop) => void stops.push(stop),
    async count() {
      return (await api.db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM message')).rows[0]!.n;
    },
  };
}

export async function waitFor(what: string, check: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The Postfix log lines about queue id `qid`. */
export const logOf = (postfix: TestPostfix, qid: string): string[] =>
  postfix
    .log()
    .split('\n')
    .filter((l) => l.includes(`: ${qid}: `));

/** Postfix's delivery line for `rcpt` of message `qid` once it says `status`. */
export async function deliveryLine(
  postfix: TestPostfix,
  qid: string | undefined,
  rcpt: string,
  status: string,
  ms = 20_000,
): Promise<string> {
  let line: string | undefined;
  await waitFor(
    `${qid} to=<${rcpt}> status=${status}`,
    () => {
      line = logOf(postfix, qid ?? '?').find((l) => l.includes(`to=<${rcpt}>`) && l.includes(`status=${status}`));
      return line !== undefined;
    },
    ms,
  );
  return line!;
}

/**
 * With the database down the receiver answers 451 4.3.0, and Postfix keeps the mail in its
 * deferred queue; once the database is back a flush delivers it, once, and the queue is empty.
 */
export async function deferredWhileDatabaseDown(world: PartnerWorld, postfix: TestPostfix): Promise<void> {
  const { api, bob } = world;
  const mail = await world.mail(bob.address);
  await api.db.block();
  try {
    const r = await world.send(postfix, [bob.address], mail);
    assert.equal(r.code, 250, r.transcript);
    const line = await deliveryLine(postfix, r.queueId, bob.address, 'deferred');
    assert.match(line, /said: 451 4\.3\.0 message store temporarily unavailable/);
    const [queued] = (await postfix.queue()).filter((m) => m.queue_id === r.queueId);
    assert.equal(queued?.queue_name, 'deferred');
    assert.match(queued?.recipients[0]?.delay_reason ?? '', /451 4\.3\.0/);
    await api.db.unblock();
    await postfix.flush();
    await deliveryLine(postfix, r.queueId, bob.address, 'sent');
    assert.equal((await world.stored(mail)).length, 1);
    assert.deepEqual(
      (await postfix.queue()).filter((m) => m.queue_id === r.queueId),
      [],
    );
  } finally {
    await api.db.unblock();
  }
}

/**
 * Over FLOODER's quota (floodPolicy) the receiver answers 451 4.7.1 and Postfix keeps the
 * third mail in its deferred queue; a flush once a place is free delivers it, once.
 */
export async function deferredOverQuota(world: PartnerWorld, postfix: TestPostfix): Promise<void> {
  const { bob, flooder } = world;
  const sent = [];
  for (let i = 0; i < 3; i++) {
    const mail = await world.mail(bob.address, { as: flooder });
    const r = await world.send(postfix, [bob.address], mail, { from: flooder.agent });
    assert.equal(r.code, 250, r.transcript);
    sent.push({ mail, r });
    // One at a time, so that the third is the one over the quota.
    if (i < 2) await deliveryLine(postfix, r.queueId, bob.address, 'sent');
  }
  const { mail, r } = sent[2]!;
  const line = await deliveryLine(postfix, r.queueId, bob.address, 'deferred');
  assert.match(line, /said: 451 4\.7\.1 policy flood-guard: sender=flood@partner\.example is over 2 messages per 16 s/);
  assert.deepEqual(await world.stored(mail), []);
  const [queued] = (await postfix.queue()).filter((m) => m.queue_id === r.queueId);
  assert.equal(queued?.queue_name, 'deferred');
  // Flushed while the quota is still full: deferred again, still not stored.
  await postfix.flush();
  const deferrals = () =>
    logOf(postfix, r.queueId ?? '?').filter((l) => l.includes(`to=<${bob.address}>`) && l.includes('status=deferred'));
  await waitFor(`${r.queueId} deferred twice`, () => deferrals().length === 2);
  assert.match(deferrals()[1]!, /said: 451 4\.7\.1 policy flood-guard/);
  assert.deepEqual(await world.stored(mail), []);
  await freeOnePlace(world);
  await postfix.flush();
  await deliveryLine(postfix, r.queueId, bob.address, 'sent');
  assert.equal((await world.stored(mail)).length, 1);
  assert.equal((await world.send(postfix, [bob.address], await world.mail(bob.address))).code, 250);
}

/**
 * Time moved in the database instead of waited out: FLOODER's quota counter (its theoretical
 * arrival time, src/db/rate-quota.ts) one emission interval back, as if that interval (8 s
 * of floodPolicy's 2 per 16 s) had passed since its last admitted mail: one place is free.
 */
export async function freeOnePlace(world: PartnerWorld): Promise<void> {
  const r = await world.api.db.pool.query(
    "UPDATE rate_quota SET tat_us = tat_us - interval_us WHERE key LIKE 'flood-guard|%'",
  );
  assert.equal(r.rowCount, 1, "the flooder's one quota counter");
}

/** Tenant subdomains of the e2e roads: ADMP_DOMAINS holds `*.${TENANTS}` besides AGENTS. */
export const TENANTS = `tenants.${AGENTS}`;
export const TENANT_DOMAINS = `${AGENTS},*.${TENANTS}`;
/** The tenant subdomains the e2e mail goes to, for the sending Postfix's relay_domains and transport. */
export const TENANT_HOSTS = [`acme.${TENANTS}`, `initech.${TENANTS}`];

export interface TenantSetup {
  /** Tenant acme's subdomain, where agent bob lives. */
  readonly acme: string;
  /** A live address token of acme's bob, and a revoked one. */
  readonly live: string;
  readonly gone: string;
}

/** Tenant acme with its own bob, a live and a revoked address token of it, and a rule admitting the partner. */
export async function addTenantBob(world: PartnerWorld): Promise<TenantSetup> {
  const { admin } = world.api.core;
  const acme = `acme.${TENANTS}`;
  await addRule(world.api.db.pool, { from: `*@${PARTNER}`, to: `*@${acme}`, action: 'allow' });
  // A dry run reads the policy afresh, so the roads see the new rule at once (not after the cache's refresh).
  assert.equal((await admin.dryRun({ from: `w@${PARTNER}`, to: `bob@${acme}`, type: 't', bytes: 0 })).allow, true);
  await admin.addTenant('acme');
  await admin.addAgent('bob', acme);
  const live = `${(await admin.createAddressToken(`bob@${acme}`)).token}@${acme}`;
  const gone = `${(await admin.createAddressToken(`bob@${acme}`)).token}@${acme}`;
  await admin.revokeAddressToken(gone);
  return { acme, live, gone };
}

/**
 * Through Postfix to a road that answers at RCPT (LMTP, the edge): mail to a tenant's agent
 * and to its address token is delivered into the tenant agent's inbox; an unknown tenant
 * (550 5.1.2) and a revoked token (550 5.1.6) are bounced in reply to RCPT TO.
 */
export async function tenantsThroughPostfix(world: PartnerWorld, postfix: TestPostfix): Promise<void> {
  const { acme, live, gone } = await addTenantBob(world);
  for (const to of [`bob@${acme}`, live]) {
    const mail = await world.mail(to);
    const r = await world.send(postfix, [to], mail);
    assert.equal(r.code, 250, r.transcript);
    const line = await deliveryLine(postfix, r.queueId, to, 'sent').catch((err: Error) => {
      throw new Error(`${err.message}\n${logOf(postfix, r.queueId ?? '?').join('\n')}`);
    });
    assert.ok(!line.includes(`bob@${acme}>`) || to === `bob@${acme}`, `the reply never names the agent: ${line}`);
    assert.deepEqual(
      (await world.stored(mail)).map((row) => row.to_agent_id),
      [`bob@${acme}`],
    );
  }
  const refusals: [string, RegExp][] = [
    [`bob@initech.${TENANTS}`, /said: 550 5\.1\.2 recipient: no tenant initech\.\S+ \(in reply to RCPT TO command\)/],
    [gone, /said: 550 5\.1\.6 recipient: t-[0-9a-f]{32}@\S+ was revoked \(in reply to RCPT TO command\)/],
  ];
  for (const [to, said] of refusals) {
    const r = await world.send(postfix, [to], await world.mail(to));
    assert.equal(r.code, 250, r.transcript);
    assert.match(await deliveryLine(postfix, r.queueId, to, 'bounced'), said);
  }
}
