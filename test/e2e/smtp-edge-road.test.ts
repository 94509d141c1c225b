// The SMTP edge road end to end with a real sending MTA: swaks submits to a private Postfix
// (posing as the partner's MTA at 1.2.3.4), whose smtp client delivers to the edge with
// STARTTLS verified against a test CA. What the partner would see comes from Postfix: its
// log (status=sent/bounced/deferred, "Verified TLS connection"), its queue and its retries.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { requireBinaries } from '../helpers/requires.js';
import { startPostfix } from '../helpers/postfix.js';
import { createTestCa } from '../helpers/test-ca.js';
import { EDGE_HOST, startEdgeWorld } from '../smtp/world.js';
import {
  AGENTS,
  TENANT_DOMAINS,
  TENANT_HOSTS,
  deferredOverQuota,
  deferredWhileDatabaseDown,
  deliveryLine,
  floodPolicy,
  tenantsThroughPostfix,
} from './partner.js';

test('edge road: Postfix → STARTTLS (verified) → the edge → PostgreSQL', async (t) => {
  if (!requireBinaries(t, ['postfix', 'postqueue', 'swaks', 'openssl'])) return;
  const world = await startEdgeWorld(t, { ...floodPolicy(t), ADMP_DOMAINS: TENANT_DOMAINS });
  const { api, bob } = world;
  const ca = await createTestCa();
  t.after(() => ca.remove());
  const pair = await ca.issue(EDGE_HOST);
  const { port } = await world.edge({ smtpTlsCert: pair.cert, smtpTlsKey: pair.key, smtpRequireTls: true });
  const postfix = await startPostfix({
    milter: null,
    relayDomains: [AGENTS, ...TENANT_HOSTS],
    transport: {
      [AGENTS]: `edge:[127.0.0.1]:${port}`,
      ...Object.fromEntries(TENANT_HOSTS.map((h) => [h, `edge:[127.0.0.1]:${port}`])),
    },
    // The partner's outbound client: TLS required and the certificate verified for the MX name.
    master: [
      'edge unix - - n - - smtp',
      '  -o smtp_tls_security_level=verify',
      `  -o smtp_tls_verify_cert_match=${EDGE_HOST}`,
      `  -o smtp_tls_CAfile=${ca.caFile}`,
      '  -o smtp_tls_loglevel=1',
    ],
  });
  world.onClose(() => postfix.stop());
  const delivery = (qid: string | undefined, rcpt: string, status: string) => deliveryLine(postfix, qid, rcpt, status);

  await t.test('delivers over verified TLS: status=sent with our 250 after commit', async () => {
    const mail = await world.mail(bob.address);
    const r = await world.send(postfix, [bob.address], mail);
    assert.equal(r.code, 250, r.transcript);
    const line = await delivery(r.queueId, bob.address, 'sent');
    const [row] = await world.stored(mail);
    assert.ok(line.includes(`(250 2.6.0 <${bob.address}> stored as ${row!.id})`), line);
    assert.match(
      postfix.log(),
      new RegExp(`Verified TLS connection established to 127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:${port}`),
    );
    assert.equal(row!.headers.road, 'smtp');
  });

  await t.test(
    'two recipients: the second gets 452 4.5.3 and Postfix sends it in a transaction of its own',
    async () => {
      await api.agent('carol', AGENTS);
      const mail = await world.mail(bob.address);
      const r = await world.send(postfix, [bob.address, `carol@${AGENTS}`], mail);
      assert.equal(r.code, 250, r.transcript);
      await delivery(r.queueId, bob.address, 'sent');
      // Signed for bob: carol's own transaction is answered with the signature refusal.
      assert.match(await delivery(r.queueId, `carol@${AGENTS}`, 'bounced'), /said: 550 5\.7\.7 /);
      assert.equal((await world.stored(mail)).length, 1);
    },
  );

  await t.test('refusals reach the partner: unknown agent 550 5.1.1 at RCPT, no DKIM 550 5.7.26 at DATA', async () => {
    const mail = await world.mail(`nobody@${AGENTS}`);
    const r = await world.send(postfix, [`nobody@${AGENTS}`], mail);
    assert.match(
      await delivery(r.queueId, `nobody@${AGENTS}`, 'bounced'),
      /said: 550 5\.1\.1 .*\(in reply to RCPT TO command\)/,
    );
    const unsigned = await world.mail(bob.address, { dkim: false });
    const u = await world.send(postfix, [bob.address], unsigned);
    assert.match(
      await delivery(u.queueId, bob.address, 'bounced'),
      /said: 550 5\.7\.26 .*\(in reply to end of DATA command\)/,
    );
  });

  await t.test(
    'over a rate quota: 451 4.7.1, Postfix keeps the mail; a flush once a place is free delivers it once',
    () => deferredOverQuota(world, postfix),
  );

  await t.test(
    'tenant subdomains and address tokens: delivered to the tenant agent; unknown tenant 550 5.1.2 and revoked token 550 5.1.6 at RCPT',
    () => tenantsThroughPostfix(world, postfix),
  );

  await t.test(
    'database down: 451 4.3.0, the mail stays queued; once the database is back Postfix delivers it once',
    () => deferredWhileDatabaseDown(world, postfix),
  );
});
