// The LMTP road end to end (research/mta.md §2-§4): swaks (posing as the partner's MTA) → a
// private Postfix whose milter is rspamd with Mailcow's milter_headers (it writes the
// Authentication-Results the bridge trusts, authserv-id = Postfix's myhostname) → transport
// `lmtp:` → the real LMTP receiver and pipeline → PostgreSQL. What the partner's MTA would
// see comes from Postfix: its log (status=sent/bounced/deferred), its queue and the DSNs it makes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createLmtpServer } from '../../src/lmtp/server.js';
import { createLogger } from '../../src/log.js';
import { requireBinaries } from '../helpers/requires.js';
import { startRspamd } from '../helpers/rspamd.js';
import { startPostfix } from '../helpers/postfix.js';
import { FIXTURE } from '../installer/checkout.js';
import {
  AGENTS,
  PARTNER,
  PARTNER_MTA,
  deferredOverQuota,
  TENANT_DOMAINS,
  TENANT_HOSTS,
  deferredWhileDatabaseDown,
  deliveryLine,
  floodPolicy,
  logOf,
  startPartnerWorld,
  tenantsThroughPostfix,
  waitFor,
} from './partner.js';

// Postfix's myhostname in test/helpers/postfix.ts: the milter names it as rspamd's authserv-id.
const MTA = 'mx.test.example';
// Mailcow's own settings (its A-R is inserted on top and replaces the first one the sender wrote).
const MAILCOW_MILTER_HEADERS = join(FIXTURE, 'data', 'conf', 'rspamd', 'local.d', 'milter_headers.conf');

test('LMTP road: Postfix + rspamd milter (Authentication-Results) + transport lmtp: + the real bridge', async (t) => {
  if (!requireBinaries(t, ['rspamd', 'postfix', 'postqueue', 'swaks'])) return;
  const world = await startPartnerWorld(t, { ADMP_MTA_HOSTNAME: MTA, ADMP_DOMAINS: TENANT_DOMAINS, ...floodPolicy(t) });
  const { api, bob } = world;
  const lmtp = createLmtpServer({
    config: api.config,
    log: createLogger('silent'),
    ingest: api.core.ingest,
    directory: api.core.directory,
  });
  await new Promise<void>((ok) => lmtp.listen(0, '127.0.0.1', ok));
  world.onClose(() => new Promise<void>((ok) => lmtp.close(() => ok())));
  const lmtpPort = (lmtp.server.address() as AddressInfo).port;
  // No agents_bridge settings: on this road rspamd only scores and writes headers.
  const rspamd = await startRspamd({
    dns: world.dns.server,
    pluginConfig: null,
    extraLocal: { 'local.d/milter_headers.conf': readFileSync(MAILCOW_MILTER_HEADERS, 'utf8') },
  });
  world.onClose(() => rspamd.stop());
  const postfix = await startPostfix({
    milter: rspamd.milter,
    relayDomains: [AGENTS, ...TENANT_HOSTS],
    transport: {
      [AGENTS]: `lmtp:inet:127.0.0.1:${lmtpPort}`,
      ...Object.fromEntries(TENANT_HOSTS.map((h) => [h, `lmtp:inet:127.0.0.1:${lmtpPort}`])),
    },
  });
  world.onClose(() => postfix.stop());
  const lmtpRelay = `relay=127.0.0.1[127.0.0.1]:${lmtpPort}`;
  const delivery = (qid: string | undefined, rcpt: string, status: string) =>
    deliveryLine(postfix, qid, rcpt, status, 10_000);
  // Postfix logs the DSN it made a moment after the bounce line.
  const dsnOf = async (qid: string): Promise<string | undefined> => {
    const made = () => /sender non-delivery notification: ([0-9A-Z]+)/.exec(logOf(postfix, qid).join('\n'))?.[1];
    await waitFor(`the DSN of ${qid}`, () => made() !== undefined).catch(() => undefined);
    return made();
  };

  await t.test(
    'delivers: 250 at SMTP, Postfix status=sent with our 250, one row authenticated by the trusted Authentication-Results',
    async () => {
      const mail = await world.mail(bob.address);
      const r = await world.send(postfix, [bob.address], mail);
      assert.equal(r.code, 250, r.transcript);
      const line = await delivery(r.queueId, bob.address, 'sent');
      assert.ok(line.includes(lmtpRelay), line);
      const [row, ...more] = await world.stored(mail);
      assert.deepEqual(more, []);
      assert.ok(line.includes(`(250 2.6.0 <${bob.address}> stored as ${row!.id})`), line);
      assert.deepEqual(row!.headers, { message_id: mail.messageId, road: 'lmtp', queue_id: r.queueId });
      assert.equal(row!.auth.domain.source, 'authentication-results');
      assert.equal(row!.auth.domain.method, `dkim:${PARTNER}`);
      assert.deepEqual(row!.auth.domain.dkim, [{ result: 'pass', domain: PARTNER, selector: 's2025' }]);
      assert.equal(row!.auth.client_ip, PARTNER_MTA.clientAddr, "the original client, from Postfix's XFORWARD");
    },
  );

  await t.test(
    'tenant subdomains and address tokens: delivered to the tenant agent; unknown tenant 550 5.1.2 and revoked token 550 5.1.6 at RCPT',
    () => tenantsThroughPostfix(world, postfix),
  );

  await t.test('refuses: a bad agent signature is bounced with 550 5.7.7 and the partner gets a DSN', async () => {
    const mail = await world.mail(bob.address, { signedFor: `carol@${AGENTS}` });
    const r = await world.send(postfix, [bob.address], mail);
    assert.equal(r.code, 250, r.transcript);
    const line = await delivery(r.queueId, bob.address, 'bounced');
    assert.match(line, /said: 550 5\.7\.7 agent signature: .*signed recipient \(in reply to end of DATA command\)/);
    assert.deepEqual(await world.stored(mail), []);
    // The DSN (RFC 3464) to the partner's agent waits for outbound delivery, which this Postfix never does.
    const dsn = await dsnOf(r.queueId!);
    assert.ok(dsn, postfix.log());
    const [queued] = (await postfix.queue()).filter((m) => m.queue_id === dsn);
    assert.equal(queued?.sender, 'MAILER-DAEMON', 'the null sender (RFC 5321 4.5.5)');
    assert.deepEqual(
      queued?.recipients.map((x) => x.address),
      [world.worker.agent],
    );
  });

  await t.test(
    'a forged Authentication-Results with our authserv-id does not stand in for DKIM: bounced with 550 5.7.26',
    async () => {
      const forged = `Authentication-Results: ${MTA}; dkim=pass header.d=${PARTNER} header.s=s2025; spf=pass smtp.mailfrom=${PARTNER}`;
      const mail = await world.mail(bob.address, { dkim: false, headers: [forged] });
      const r = await world.send(postfix, [bob.address], mail);
      assert.equal(r.code, 250, r.transcript);
      assert.match(
        await delivery(r.queueId, bob.address, 'bounced'),
        /said: 550 5\.7\.26 no DKIM pass aligned with partner\.example \(=none\)/,
        'rspamd found no signature; the forged header was not believed',
      );
      assert.deepEqual(await world.stored(mail), []);
    },
  );

  await t.test(
    'refuses mail from our own agents domain: the DSN comes back over LMTP and, addressed to an agent rather than a bounce tag, is refused; nothing is enqueued',
    async () => {
      await api.agent('alice', AGENTS);
      const mail = await world.mail(bob.address, { signedFor: `carol@${AGENTS}` });
      const before = await world.count();
      const r = await world.send(postfix, [bob.address], mail, { from: `alice@${AGENTS}` });
      assert.equal(r.code, 250, r.transcript);
      assert.match(await delivery(r.queueId, bob.address, 'bounced'), /said: 550 5\.7\.7 /);
      const dsn = await dsnOf(r.queueId!);
      assert.ok(dsn, postfix.log());
      // Only a report to a bounce tag we made is acted on (docs/protocol.md §11).
      assert.match(await delivery(dsn, `alice@${AGENTS}`, 'bounced'), /said: 550 5\.7\.1 /);
      assert.equal(await world.count(), before);
    },
  );

  await t.test(
    'over a rate quota: Postfix defers with our 451 4.7.1 and keeps the mail; a flush once a place is free delivers it once',
    () => deferredOverQuota(world, postfix),
  );

  await t.test(
    'tempfails: database down → 451 4.3.0, the message stays queued; once the database is back it arrives once',
    () => deferredWhileDatabaseDown(world, postfix),
  );
});
