// The Rspamd road end to end, every row of the outcome table (research/rspamd.md §5-§6):
// swaks (posing as the partner's MTA) → a private Postfix → rspamd's proxy as milter, with
// the shipped agents_bridge plugin → the real ADMP core listening on loopback → PostgreSQL.
// Each case checks what the SMTP client is told, what Postfix did, and what the database holds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { signer, trust } from '../helpers/agent-mail.js';
import { requireBinaries } from '../helpers/requires.js';
import { renderBridgeConfig, startRspamd } from '../helpers/rspamd.js';
import { startPostfix } from '../helpers/postfix.js';
import {
  AGENTS,
  PARTNER,
  PARTNER_MTA,
  freeOnePlace,
  TENANTS,
  TENANT_DOMAINS,
  TENANT_HOSTS,
  addTenantBob,
  floodPolicy,
  logOf,
  startPartnerWorld,
  waitFor,
} from './partner.js';

const TOKEN = 'e2e-ingress-token-0123456789';
// A Mailcow mailbox that policy lets send as our agent alice (SASL road, rspamd.md §9.9).
const MAILBOX = 'alice@example.com';
const TEMPFAIL = '4.7.1 Agent mailbox temporarily unavailable, try again later';
// Seconds the plugin waits for the bridge (rspamd.md §8: a hang costs exactly this).
const PLUGIN_TIMEOUT = 2;
// A module before ours choosing `accept`, as Mailcow's postmaster and forwarding-host rules do.
const ACCEPTING_PREFILTER = `rspamd_config:register_symbol({ name = 'E2E_ACCEPT', type = 'prefilter', priority = 10,
  callback = function(task)
    if task:get_header('X-E2E-Accept') then task:set_pre_result('accept', 'accepted early', 'e2e_accept') end
  end })
`;

test('Rspamd road: Postfix + rspamd milter + agents_bridge plugin + the real bridge', async (t) => {
  if (!requireBinaries(t, ['rspamd', 'postfix', 'postqueue', 'postcat', 'swaks'])) return;
  // The bridge's own budget is longer than the plugin's timeout only so that a stuck store
  // shows the plugin-side hang; in production it is shorter (config.ts ADMP_INGRESS_BUDGET_MS).
  const world = await startPartnerWorld(t, {
    ADMP_INGRESS_TOKEN: TOKEN,
    ...floodPolicy(t, `sasl:\n  - { user: "${MAILBOX}", agents: ["alice@${AGENTS}"] }\n`),
    ADMP_INGRESS_BUDGET_MS: String(PLUGIN_TIMEOUT * 1000 + 3000),
    ADMP_DOMAINS: TENANT_DOMAINS,
  });
  const { api, bob } = world;
  // An observer on the real bridge: which statuses it answered the plugin.
  const answered: number[] = [];
  api.core.app.addHook('onResponse', async (req, reply) => {
    if (req.url === '/ingress/rspamd') answered.push(reply.statusCode);
  });
  await api.core.app.listen({ port: 0, host: '127.0.0.1' });
  const bridgePort = (api.core.app.server.address() as AddressInfo).port;
  const rspamd = await startRspamd({
    dns: world.dns.server,
    // The plugin hands over the tenant subdomains too, as ADMP_DOMAINS names them.
    pluginConfig: renderBridgeConfig({
      url: `http://127.0.0.1:${bridgePort}/ingress/rspamd`,
      token: TOKEN,
      domain: AGENTS,
      timeout: PLUGIN_TIMEOUT,
    }).replace(`domains = ["${AGENTS}"];`, `domains = ["${AGENTS}", "*.${TENANTS}"];`),
    extraLocal: { 'rspamd.local.lua': ACCEPTING_PREFILTER },
  });
  world.onClose(() => rspamd.stop());
  // hold: mail that stays with Postfix waits in the hold queue, where it can be inspected.
  const postfix = await startPostfix({
    milter: rspamd.milter,
    relayDomains: ['example.com', AGENTS, ...TENANT_HOSTS],
    hold: true,
  });
  world.onClose(() => postfix.stop());
  const queued = async (queueId: string | undefined) => (await postfix.queue()).filter((m) => m.queue_id === queueId);
  // A refused or tempfailed transaction has no queue id to look up: the queue must not grow.
  const queueSize = async () => (await postfix.queue()).length;
  const discarded = (queueId: string | undefined) =>
    waitFor(`milter-discard of ${queueId}`, () =>
      logOf(postfix, queueId ?? '?').some((l) => l.includes('milter-discard: END-OF-MESSAGE')),
    );
  const bridgeCalls = (since: number) => answered.slice(since);

  await t.test(
    '200: 250, milter-discard, one row with the domain and agent authentication; the same message again is not stored twice',
    async () => {
      const mail = await world.mail(bob.address);
      const before = answered.length;
      const first = await world.send(postfix, [bob.address], mail);
      assert.equal(first.code, 250, first.transcript);
      await discarded(first.queueId);
      assert.deepEqual(await queued(first.queueId), []);
      const [row, ...more] = await world.stored(mail);
      assert.ok(row, 'stored');
      assert.deepEqual(more, []);
      assert.equal(row.to_agent_id, 'bob');
      assert.equal(row.from_agent, world.worker.agent);
      assert.equal(row.channel, 'smtp');
      assert.equal(row.status, 'delivered');
      assert.deepEqual(row.body, { n: 1 });
      assert.ok(
        world.dns.queries.includes('TXT s2025._domainkey.partner.example'),
        'rspamd fetched the DKIM key from the loopback DNS',
      );
      assert.deepEqual(row.headers, { message_id: mail.messageId, road: 'rspamd', queue_id: first.queueId });
      assert.equal(row.auth.domain.method, `dkim:${PARTNER}`);
      assert.equal(row.auth.domain.source, 'rspamd');
      assert.deepEqual(row.auth.domain.dkim, [{ result: 'pass', domain: PARTNER, selector: 's2025' }]);
      assert.equal(row.auth.client_ip, PARTNER_MTA.clientAddr);
      const { agent, kid, key_source } = row.auth.signature;
      assert.deepEqual(
        { agent, kid, key_source },
        { agent: world.worker.agent, kid: world.worker.kid, key_source: 'pinned' },
      );

      // A sender retrying after a lost verdict (rspamd.md §9.11): a new queue id, the same Message-ID.
      const again = await world.send(postfix, [bob.address], mail);
      assert.equal(again.code, 250, again.transcript);
      assert.notEqual(again.queueId, first.queueId);
      await discarded(again.queueId);
      assert.deepEqual(bridgeCalls(before), [200, 200]);
      assert.deepEqual(
        (await world.stored(mail)).map((r) => r.id),
        [row.id],
      );
    },
  );

  await t.test(
    'tenant subdomains and address tokens: stored in the tenant agent; unknown tenant and revoked token refused',
    async () => {
      const { acme, live, gone } = await addTenantBob(world);
      for (const to of [`bob@${acme}`, live]) {
        const mail = await world.mail(to);
        const r = await world.send(postfix, [to], mail);
        assert.equal(r.code, 250, r.transcript);
        await discarded(r.queueId);
        assert.deepEqual(
          (await world.stored(mail)).map((row) => row.to_agent_id),
          [`bob@${acme}`],
        );
      }
      // The milter's reply code is fixed (554 5.7.1); the bridge's reason (5.1.2, 5.1.6 on the other roads) is its text.
      const unknown = await world.send(postfix, [`bob@initech.${TENANTS}`], await world.mail(`bob@initech.${TENANTS}`));
      assert.equal(unknown.code, 554, unknown.transcript);
      assert.match(unknown.text, /^5\.7\.1 recipient: no tenant initech\./);
      const revoked = await world.send(postfix, [gone], await world.mail(gone));
      assert.equal(revoked.code, 554, revoked.transcript);
      assert.match(revoked.text, /^5\.7\.1 recipient: .* was revoked/);
    },
  );

  await t.test(
    "422, agent signature for another recipient: 554 5.7.1 with the bridge's text, nothing stored or queued",
    async () => {
      const mail = await world.mail(bob.address, { signedFor: `carol@${AGENTS}` });
      const [before, queueBefore] = [answered.length, await queueSize()];
      const r = await world.send(postfix, [bob.address], mail);
      assert.equal(r.code, 554, r.transcript);
      // The milter's code is fixed (554 5.7.1); the plugin drops the bridge's own so that one code is read.
      assert.match(r.text, /^5\.7\.1 agent signature: .*signed recipient/);
      assert.deepEqual(bridgeCalls(before), [422]);
      assert.deepEqual(await world.stored(mail), []);
      assert.equal(await queueSize(), queueBefore);
    },
  );

  await t.test('422, no DKIM signature aligned with the sender: 554 5.7.1, nothing stored', async () => {
    const mail = await world.mail(bob.address, { dkim: false });
    const before = answered.length;
    const r = await world.send(postfix, [bob.address], mail);
    assert.equal(r.code, 554, r.transcript);
    assert.equal(r.text, '5.7.1 no DKIM pass aligned with partner.example (no DKIM signature)');
    assert.deepEqual(bridgeCalls(before), [422]);
    assert.deepEqual(await world.stored(mail), []);
  });

  await t.test(
    'over a rate quota: 451 4.7.1 (soft reject), nothing stored; the retry once a place is free is stored',
    async () => {
      const from = world.flooder.agent;
      const mails = [];
      for (let i = 0; i < 3; i++) mails.push(await world.mail(bob.address, { as: world.flooder }));
      const before = answered.length;
      for (const m of mails.slice(0, 2)) {
        const r = await world.send(postfix, [bob.address], m, { from });
        assert.equal(r.code, 250, r.transcript);
        await discarded(r.queueId);
      }
      const queueBefore = await queueSize();
      const over = await world.send(postfix, [bob.address], mails[2]!, { from });
      assert.equal(over.code, 451, over.transcript);
      assert.equal(over.text, TEMPFAIL);
      assert.deepEqual(bridgeCalls(before), [200, 200, 503]);
      assert.deepEqual(await world.stored(mails[2]!), []);
      assert.equal(await queueSize(), queueBefore, 'nothing kept by Postfix: the sender retries');
      assert.match(
        await api.core.metrics.registry.metrics(),
        /admp_rate_limited_total\{scope="mail",rule="flood-guard",window="16s"\} 1/,
      );
      // Retried while the quota is still full: refused again, still nothing stored.
      const early = await world.send(postfix, [bob.address], mails[2]!, { from });
      assert.equal(early.code, 451, early.transcript);
      assert.deepEqual(await world.stored(mails[2]!), []);
      await freeOnePlace(world);
      const retry = await world.send(postfix, [bob.address], mails[2]!, { from });
      assert.equal(retry.code, 250, retry.transcript);
      await discarded(retry.queueId);
      assert.equal((await world.stored(mails[2]!)).length, 1);
      assert.equal(
        (await world.send(postfix, [bob.address], await world.mail(bob.address))).code,
        250,
        'another sender is not counted',
      );
    },
  );

  await t.test(
    "503, database down: 451 4.7.1, nothing stored; the sender's retry after recovery is stored once",
    async (c) => {
      const mail = await world.mail(bob.address);
      const [before, queueBefore] = [answered.length, await queueSize()];
      await api.db.block();
      c.after(() => api.db.unblock());
      const down = await world.send(postfix, [bob.address], mail);
      await api.db.unblock();
      assert.equal(down.code, 451, down.transcript);
      assert.equal(down.text, TEMPFAIL);
      assert.deepEqual(bridgeCalls(before), [503]);
      assert.deepEqual(await world.stored(mail), []);
      assert.equal(await queueSize(), queueBefore);
      const retry = await world.send(postfix, [bob.address], mail);
      assert.equal(retry.code, 250, retry.transcript);
      await discarded(retry.queueId);
      assert.equal((await world.stored(mail)).length, 1);
    },
  );

  await t.test(
    'bridge down (connection refused): 451 4.7.1, nothing stored; stored once when it is back',
    async (c) => {
      const mail = await world.mail(bob.address);
      const server = api.core.app.server;
      const relisten = () =>
        new Promise<void>((ok) => (server.listening ? ok() : server.listen(bridgePort, '127.0.0.1', () => ok())));
      c.after(relisten);
      await new Promise<void>((ok) => {
        server.close(() => ok());
        server.closeAllConnections();
      });
      const before = answered.length;
      const down = await world.send(postfix, [bob.address], mail);
      assert.equal(down.code, 451, down.transcript);
      assert.equal(down.text, TEMPFAIL);
      assert.match(rspamd.log(), /agents_bridge: bridge unreachable after \d+ms: .*Connection refused/);
      await relisten();
      assert.deepEqual(bridgeCalls(before), []);
      assert.deepEqual(await world.stored(mail), []);
      const retry = await world.send(postfix, [bob.address], mail);
      assert.equal(retry.code, 250, retry.transcript);
      assert.equal((await world.stored(mail)).length, 1);
    },
  );

  await t.test(
    'bridge hanging (its store blocked by a table lock): 451 4.7.1 after the plugin timeout; the late row deduplicates the retry',
    async (c) => {
      const mail = await world.mail(bob.address);
      const locker = new pg.Client({ connectionString: api.db.url });
      await locker.connect();
      c.after(() => locker.end());
      await locker.query('BEGIN');
      // Holds every INSERT into message (enqueue_message) until COMMIT.
      await locker.query('LOCK TABLE message IN ACCESS EXCLUSIVE MODE');
      const started = Date.now();
      const hung = await world.send(postfix, [bob.address], mail);
      const took = Date.now() - started;
      assert.equal(hung.code, 451, hung.transcript);
      assert.equal(hung.text, TEMPFAIL);
      assert.ok(took >= PLUGIN_TIMEOUT * 1000 - 100 && took < PLUGIN_TIMEOUT * 1000 + 3000, `took ${took} ms`);
      assert.match(rspamd.log(), /agents_bridge: bridge unreachable after \d+ms: IO timeout/);
      await locker.query('COMMIT');
      // The bridge was still working on it: the row lands after the sender was told 451.
      await waitFor('the late row', async () => (await world.stored(mail)).length === 1);
      const [late] = await world.stored(mail);
      const retry = await world.send(postfix, [bob.address], mail);
      assert.equal(retry.code, 250, retry.transcript);
      await discarded(retry.queueId);
      const rows = await world.stored(mail);
      assert.deepEqual(
        rows.map((r) => r.id),
        [late!.id],
      );
      assert.notEqual(
        rows[0]!.headers.queue_id,
        retry.queueId,
        "the row is the first attempt's, the retry was a duplicate",
      );
    },
  );

  await t.test('no agents recipient: no bridge call, the message stays with Postfix', async () => {
    const mail = await world.mail('human@example.com');
    const before = answered.length;
    const r = await world.send(postfix, ['human@example.com'], mail);
    assert.equal(r.code, 250, r.transcript);
    assert.deepEqual(bridgeCalls(before), []);
    assert.deepEqual(await world.stored(mail), []);
    const [held] = await queued(r.queueId);
    assert.equal(held?.queue_name, 'hold');
    assert.deepEqual(
      held?.recipients.map((x) => x.address),
      ['human@example.com'],
    );
  });

  await t.test(
    'mixed recipients: 250, the agent copy stored and its recipient canceled, the human one stays queued',
    async () => {
      const mail = await world.mail(bob.address);
      const r = await world.send(postfix, [bob.address, 'human@example.com'], mail);
      assert.equal(r.code, 250, r.transcript);
      assert.equal((await world.stored(mail)).length, 1);
      const [held] = await queued(r.queueId);
      assert.equal(held?.queue_name, 'hold');
      assert.deepEqual(
        held?.recipients.map((x) => x.address),
        ['human@example.com'],
      );
      const envelope = (await postfix.postcat(r.queueId!)).split('\n');
      assert.ok(envelope.includes(`canceled_recipient: ${bob.address}`), envelope.join('\n'));
      assert.ok(envelope.includes('recipient: human@example.com'), envelope.join('\n'));
    },
  );

  // Mailcow's `accept` pre-results (postmaster rule, forwarding hosts) come before our postfilter:
  // the plugin's discard must still win, or the bridge's copy would be delivered a second time.
  await t.test(
    'an earlier prefilter accept, SASL-authenticated local sender: stored once and discarded, not delivered as well',
    async () => {
      const alice = signer(`alice@${AGENTS}`);
      await trust(api.db.pool, alice, 'local');
      const mail = await world.mail(bob.address, { as: alice, dkim: false, headers: ['X-E2E-Accept: yes'] });
      const before = answered.length;
      const r = await world.send(postfix, [bob.address], mail, { from: alice.agent, login: MAILBOX });
      assert.equal(r.code, 250, r.transcript);
      await discarded(r.queueId);
      assert.deepEqual(await queued(r.queueId), []);
      assert.deepEqual(bridgeCalls(before), [200]);
      const [row, ...more] = await world.stored(mail);
      assert.deepEqual(more, []);
      assert.equal(row?.auth.domain.method, `sasl:${MAILBOX}`);
      // rspamd 3.4 names an accept pre-result `no action`.
      assert.ok(
        rspamd
          .log()
          .includes(`<${mail.messageId}>: set pre-result to 'no action' (no score): 'accepted early' from e2e_accept`),
        'the prefilter accepted first',
      );
    },
  );

  // rspamd skips its DKIM check after an earlier accept (passthrough), so X-Rspamd-Auth
  // carries no DKIM verdict; the bridge then verifies the signature itself.
  await t.test(
    'an earlier prefilter accept, partner mail authenticated by DKIM: stored once and discarded',
    async () => {
      const mail = await world.mail(bob.address, { headers: ['X-E2E-Accept: yes'] });
      const r = await world.send(postfix, [bob.address], mail);
      assert.equal(r.code, 250, r.transcript);
      await discarded(r.queueId);
      const rows = await world.stored(mail);
      assert.equal(rows.length, 1);
      assert.equal(rows[0]?.auth.domain.source, 'mailauth');
    },
  );
});
