// The LMTP adapter over a real socket: per-recipient replies in RCPT order, the
// trusted Authentication-Results rule, client allow-list, and 451 on storage faults.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { startTestApi } from '../helpers/api.js';
import { agentMail, signer, trust } from '../helpers/agent-mail.js';
import { lmtpSend } from '../helpers/lmtp-client.js';
import { createLmtpServer } from '../../src/lmtp/server.js';
import { createLogger } from '../../src/log.js';
import { rawSession } from '../smtp/world.js';

const MTA = 'mx.agents.test';
const PARTNER = 'agents.partner.example';
const ar = (id: string, domain: string, result = 'pass') =>
  `Authentication-Results: ${id}; dkim=${result} header.d=${domain} header.s=s1 header.b=abc; spf=pass smtp.mailfrom=${domain}\r\n`;

async function setup(t: { after(fn: () => Promise<void>): void }, env: Record<string, string> = {}) {
  const api = await startTestApi({ ADMP_MTA_HOSTNAME: MTA, ADMP_POLICY_FILE: '', ADMP_MAX_MAIL_BYTES: '4096', ...env });
  const server = createLmtpServer({
    config: api.config,
    log: createLogger('silent'),
    ingest: api.core.ingest,
    directory: api.core.directory,
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const port = (server.server.address() as AddressInfo).port;
  t.after(async () => {
    await new Promise<void>((ok) => server.close(() => ok()));
    await api.close();
  });
  return { api, port };
}

/** The receiver with agent bob, and a partner agent whose key is pinned and whom policy admits. */
async function withPartner(t: { after(fn: () => Promise<void>): void }, env: Record<string, string> = {}) {
  const { api, port } = await setup(t, env);
  await api.db.pool.query(
    `INSERT INTO policy_rule (from_glob, to_glob, action) VALUES ('*@${PARTNER}', '*@agents.test', 'allow')`,
  );
  const bob = await api.agent('bob');
  const partner = signer(`w@${PARTNER}`);
  await trust(api.db.pool, partner);
  return { api, port, bob, partner };
}

test('one reply per recipient in RCPT order: stored, refused by signature, unknown at RCPT', async (t) => {
  const { api, port, bob, partner } = await withPartner(t);
  await api.agent('carol');
  const mail = Buffer.concat([
    Buffer.from(ar(MTA, PARTNER)),
    await agentMail(partner, { to: bob.address, type: 'task.request', body: { n: 1 } }),
  ]);
  const tr = await lmtpSend(port, {
    from: `w@${PARTNER}`,
    to: [bob.address, 'nobody@agents.test', 'carol@agents.test'],
    data: mail,
  });
  assert.match(tr.greeting, /^220 /);
  assert.match(tr.rcpt[0]!, /^250/);
  assert.match(tr.rcpt[1]!, /^550 5\.1\.1 /, 'an unknown agent is refused at RCPT');
  assert.match(tr.rcpt[2]!, /^250/);
  assert.equal(tr.data.length, 2);
  assert.match(tr.data[0]!, /^250 2\.6\.0 <bob@agents\.test> stored as [0-9a-f-]{36}$/);
  assert.match(
    tr.data[1]!,
    /^550 5\.7\.7 .*envelope recipient is not the signed recipient/,
    'signed for bob, not carol',
  );
  const again = await lmtpSend(port, { from: `w@${PARTNER}`, to: [bob.address], data: mail });
  assert.match(again.data[0]!, /\(duplicate\)$/, 'a redelivery gets 250 and the same row');
  const { rows } = await api.db.pool.query('SELECT count(*)::int AS n FROM message');
  assert.equal(rows[0].n, 1);
});

test('only the topmost Authentication-Results of our own MTA counts', async (t) => {
  const { port, bob, partner } = await withPartner(t);
  const body = await agentMail(partner, { to: bob.address, type: 'task.request', body: {} });
  const send = (headers: string) =>
    lmtpSend(port, { from: `w@${PARTNER}`, to: [bob.address], data: Buffer.concat([Buffer.from(headers), body]) });
  assert.match(
    (await send(ar('evil.example', PARTNER))).data[0]!,
    /^550 5\.7\.26 /,
    'a foreign authserv-id is ignored',
  );
  assert.match(
    (await send(ar(MTA, PARTNER, 'fail') + ar(MTA, PARTNER))).data[0]!,
    /^550 5\.7\.26 /,
    'a lower A-R (sender-supplied) does not override ours',
  );
  assert.match((await send(ar(MTA, 'other.example'))).data[0]!, /^550 5\.7\.26 .*no DKIM pass aligned/);
  assert.match((await send(ar(MTA, PARTNER))).data[0]!, /^250 2\.6\.0 /);
});

test('storage faults are 451 4.3.0 for every recipient, and the retry is stored', async (t) => {
  const { api, port, bob, partner } = await withPartner(t);
  const mail = Buffer.concat([
    Buffer.from(ar(MTA, PARTNER)),
    await agentMail(partner, { to: bob.address, type: 'task.request', body: {} }),
  ]);
  // The directory caches bob, so RCPT passes; the outage hits DATA.
  await lmtpSend(port, { from: `w@${PARTNER}`, to: [bob.address], data: 'Subject: warm\r\n\r\nx' });
  await api.db.block();
  const down = await lmtpSend(port, { from: `w@${PARTNER}`, to: [bob.address], data: mail });
  await api.db.unblock();
  assert.match(down.data[0] ?? down.rcpt[0]!, /^45[12] 4\.\d\.\d /, JSON.stringify(down));
  const again = await lmtpSend(port, { from: `w@${PARTNER}`, to: [bob.address], data: mail });
  assert.match(again.data[0]!, /^250 2\.6\.0 /);
});

test('a client that resets its connection in a transaction or in DATA ends only its own session; nothing partial is stored', async (t) => {
  const { api, port, bob, partner } = await withPartner(t);
  const mail = Buffer.concat([
    Buffer.from(ar(MTA, PARTNER)),
    await agentMail(partner, { to: bob.address, type: 'task.request', body: { n: 1 } }),
  ]);
  for (const upTo of ['MAIL FROM', 'DATA'] as const) {
    const s = await rawSession(port);
    assert.match(await s.cmd('LHLO mx.partner.example'), /^250/);
    assert.match(await s.cmd(`MAIL FROM:<w@${PARTNER}>`), /^250/);
    if (upTo === 'DATA') {
      assert.match(await s.cmd(`RCPT TO:<${bob.address}>`), /^250/);
      assert.match(await s.cmd('DATA'), /^354/);
      s.socket.write(mail.subarray(0, mail.length / 2));
    }
    // A TCP reset: the server's socket fails with ECONNRESET inside the transaction.
    s.socket.resetAndDestroy();
    await s.closed;
  }
  const tr = await lmtpSend(port, { from: `w@${PARTNER}`, to: [bob.address], data: mail });
  assert.match(tr.data[0]!, /^250 2\.6\.0 <bob@agents\.test> stored as /, 'the server still takes mail');
  const { rows } = await api.db.pool.query('SELECT count(*)::int AS n FROM message');
  assert.equal(rows[0].n, 1, 'only the whole mail was stored');
});

test('clients outside ADMP_LMTP_ALLOW are turned away', async (t) => {
  const { port } = await setup(t, { ADMP_LMTP_ALLOW: '10.0.0.0/8' });
  const tr = await lmtpSend(port, { from: 'x@y.example', to: ['bob@agents.test'], data: 'x' });
  assert.match(tr.greeting, /^550 5\.7\.1 client not allowed/);
});

test(
  'RFC 2033: a mail over the size limit gets one 552 5.3.4 per accepted recipient',
  { timeout: 20_000 },
  async (t) => {
    const { api, port, bob, partner } = await withPartner(t);
    await api.agent('carol');
    const mail = Buffer.concat([
      Buffer.from(ar(MTA, PARTNER)),
      Buffer.from(`X-Padding: ${'x'.repeat(2000)}\r\n`),
      await agentMail(partner, { to: bob.address, type: 't', body: { pad: 'y'.repeat(2048) } }),
    ]);
    assert.ok(mail.length > api.config.maxMailBytes);
    const tr = await lmtpSend(port, { from: `w@${PARTNER}`, to: [bob.address, 'carol@agents.test'], data: mail });
    assert.equal(tr.data.length, 2);
    for (const line of tr.data) assert.match(line, /^552 5\.3\.4 /);
    const { rows } = await api.db.pool.query('SELECT count(*)::int AS n FROM message');
    assert.equal(rows[0].n, 0);
  },
);

test(
  'RFC 2033: a repeated RCPT is refused, so every accepted RCPT gets its one reply after DATA',
  { timeout: 20_000 },
  async (t) => {
    const { api, port, bob, partner } = await withPartner(t);
    const mail = Buffer.concat([
      Buffer.from(ar(MTA, PARTNER)),
      await agentMail(partner, { to: bob.address, type: 't', body: { n: 2 } }),
    ]);
    const tr = await lmtpSend(port, { from: `w@${PARTNER}`, to: [bob.address, bob.address.toUpperCase()], data: mail });
    assert.match(tr.rcpt[0]!, /^250/);
    assert.match(tr.rcpt[1]!, /^503 5\.5\.1 .*already/i);
    assert.equal(tr.data.length, 1);
    assert.match(tr.data[0]!, /^250 2\.6\.0 <bob@agents\.test> stored as/);
    const { rows } = await api.db.pool.query('SELECT count(*)::int AS n FROM message');
    assert.equal(rows[0].n, 1);
  },
);

test('a plus-address (RFC 5233) reaches the agent over LMTP, with its detail stored', async (t) => {
  const { api, port, bob, partner } = await withPartner(t);
  const mail = Buffer.concat([
    Buffer.from(ar(MTA, PARTNER)),
    await agentMail(partner, { to: bob.address, type: 'task.request', body: {} }),
  ]);
  const tr = await lmtpSend(port, {
    from: `w@${PARTNER}`,
    to: ['bob+ops@agents.test', 'nobody+ops@agents.test'],
    data: mail,
  });
  assert.match(tr.rcpt[1]!, /^550 5\.1\.1 /);
  assert.match(tr.data[0]!, /^250 2\.6\.0 <bob\+ops@agents\.test> stored as /);
  const { rows } = await api.db.pool.query("SELECT headers->>'detail' AS detail, to_agent_id FROM message");
  assert.deepEqual(rows, [{ detail: 'ops', to_agent_id: 'bob' }]);
});

test("freshness: a deferred mail is judged at our MTA's receipt, within the signature validity; a stored one redelivered is a duplicate", async (t) => {
  const now = Math.floor(Date.now() / 1000);
  const received = (host: string, at: number) =>
    `Received: from relay.partner.example (relay.partner.example [192.0.2.7])\r\n\tby ${host} (Postfix) with ESMTPS id 4Q1;\r\n\t${new Date(at * 1000).toUTCString().replace('GMT', '+0000')} (UTC)\r\n`;

  await t.test('the default validity (5 days): a mail the sender retried for 20 minutes is stored', async (tt) => {
    const { port, bob, partner } = await withPartner(tt);
    const mail = Buffer.concat([
      Buffer.from(ar(MTA, PARTNER)),
      await agentMail(partner, { to: bob.address, type: 't', body: {} }, { now: now - 1200 }),
    ]);
    const tr = await lmtpSend(port, { from: `w@${PARTNER}`, to: [bob.address], data: mail });
    assert.match(tr.data[0]!, /^250 2\.6\.0 .* stored as /);
    const future = Buffer.concat([
      Buffer.from(ar(MTA, PARTNER)),
      await agentMail(partner, { to: bob.address, type: 't', body: {} }, { now: now + 900 }),
    ]);
    assert.match(
      (await lmtpSend(port, { from: `w@${PARTNER}`, to: [bob.address], data: future })).data[0]!,
      /^550 5\.7\.7 .*ahead of our clock/,
      'the clock skew still bounds the future side',
    );
  });

  await t.test("no validity: only our MTA's own Received dates the mail", async (tt) => {
    const { port, bob, partner } = await withPartner(tt, { ADMP_SIGNATURE_VALIDITY_SEC: '0' });
    const signed = async () => agentMail(partner, { to: bob.address, type: 't', body: {} }, { now: now - 1200 });
    const send = async (headers: string) =>
      (
        await lmtpSend(port, {
          from: `w@${PARTNER}`,
          to: [bob.address],
          data: Buffer.concat([Buffer.from(headers + ar(MTA, PARTNER)), await signed()]),
        })
      ).data[0]!;
    assert.match(await send(received(MTA, now - 1150)), /^250 2\.6\.0 /, 'received by us 50 s after signing');
    assert.match(await send(''), /^550 5\.7\.7 .*valid until/, 'no Received of ours: judged now');
    assert.match(await send(received('mx.evil.example', now - 1150)), /^550 5\.7\.7 /, "another host's Received");
  });

  await t.test("the signer's X-Agent-Expires: judged at our MTA's receipt, not at the LMTP retry", async (tt) => {
    const { port, bob, partner } = await withPartner(tt);
    const hour = (signedAt: number) =>
      agentMail(partner, { to: bob.address, type: 't', body: { signedAt } }, { now: signedAt, validitySec: 3600 });
    const send = async (headers: string, mail: Buffer) =>
      (
        await lmtpSend(port, {
          from: `w@${PARTNER}`,
          to: [bob.address],
          data: Buffer.concat([Buffer.from(headers + ar(MTA, PARTNER)), mail]),
        })
      ).data[0]!;
    // Signed 5 h ago for one hour; our Postfix took it 1 min after signing and has retried since.
    const early = now - 5 * 3600;
    assert.match(await send(received(MTA, early + 60), await hour(early)), /^250 2\.6\.0 /);
    assert.match(
      await send(received(MTA, early + 3600 + 301), await hour(early - 1)),
      /^550 5\.7\.7 .*valid until/,
      "our MTA got it after the signer's hour and the skew",
    );
    assert.match(await send('', await hour(now - 3000)), /^250 2\.6\.0 /, 'no Received of ours: now, inside the hour');
  });

  await t.test('a stored mail whose signature has gone stale is still answered as stored', async (tt) => {
    const { api, port, bob, partner } = await withPartner(tt, {
      ADMP_SIGNATURE_VALIDITY_SEC: '0',
      ADMP_CLOCK_SKEW_SEC: '2',
    });
    const mail = Buffer.concat([
      Buffer.from(ar(MTA, PARTNER)),
      await agentMail(partner, { to: bob.address, type: 't', body: { once: true } }),
    ]);
    const first = await lmtpSend(port, { from: `w@${PARTNER}`, to: [bob.address], data: mail });
    const id = /stored as ([0-9a-f-]{36})/.exec(first.data[0]!)![1];
    await new Promise((r) => setTimeout(r, 3500)); // now past validity + skew
    const again = await lmtpSend(port, { from: `w@${PARTNER}`, to: [bob.address], data: mail });
    assert.equal(again.data[0], `250 2.6.0 <${bob.address}> stored as ${id} (duplicate)`);
    const stale = Buffer.concat([
      Buffer.from(ar(MTA, PARTNER)),
      await agentMail(partner, { to: bob.address, type: 't', body: { once: false } }, { now: now - 60 }),
    ]);
    assert.match(
      (await lmtpSend(port, { from: `w@${PARTNER}`, to: [bob.address], data: stale })).data[0]!,
      /^550 5\.7\.7 /,
      'a stale mail never stored is still refused',
    );
    const { rows } = await api.db.pool.query('SELECT count(*)::int AS n FROM message');
    assert.equal(rows[0].n, 1);
  });
});
