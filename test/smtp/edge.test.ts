// The standalone SMTP edge with real peers: swaks as the sending MTA (STARTTLS against a
// test CA, PROXY headers), the loopback DNS server holding the partner's DKIM key, SPF
// and DMARC (and an ARC sealer's key), and the real core on PostgreSQL.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { sealMessage } from '../../src/mail/mailauth.js';
import { requireBinaries } from '../helpers/requires.js';
import { createTestCa } from '../helpers/test-ca.js';
import { dkimKey } from '../helpers/mail.js';
import { closeLmtp } from '../../src/app/shutdown.js';
import { withoutOurAuthResults } from '../../src/smtp/authenticate.js';
import { AGENTS, PARTNER } from '../e2e/partner.js';
import { addRule } from '../../src/db/policy-rules.js';
import { EDGE_HOST, rawSession, startEdgeWorld } from './world.js';

const needs = ['swaks', 'openssl'];

/** The edge world with a test CA (removed when the test ends) and a certificate for the edge's name. */
async function withCa(t: TestContext) {
  const world = await startEdgeWorld(t);
  const ca = await createTestCa();
  t.after(() => ca.remove());
  return { world, ca, pair: await ca.issue(EDGE_HOST) };
}

test('EHLO offers SIZE, 8BITMIME, PIPELINING, SMTPUTF8 and STARTTLS; signed mail over verified TLS is stored with its verdicts', async (t) => {
  if (!requireBinaries(t, needs)) return;
  const { world, ca, pair } = await withCa(t);
  const { port } = await world.edge({ smtpTlsCert: pair.cert, smtpTlsKey: pair.key });

  const ehlo = await world.swaks(port, [world.bob.address], 'Subject: probe\r\n\r\nprobe\r\n', {
    extra: ['--quit-after', 'EHLO'],
  });
  for (const ext of ['SIZE 10485760', '8BITMIME', 'PIPELINING', 'SMTPUTF8', 'STARTTLS'])
    assert.match(ehlo.transcript, new RegExp(`<-  250[ -]${ext}\\r?$`, 'm'), ext);
  assert.match(ehlo.transcript, new RegExp(`<-  220 ${EDGE_HOST} ESMTP`));

  const mail = await world.mail(world.bob.address);
  const tls = ['--tls', '--tls-verify', '--tls-ca-path', ca.caFile, '--tls-sni', EDGE_HOST, '--pipeline'];
  const r = await world.swaks(port, [world.bob.address], mail, { extra: tls });
  assert.equal(r.code, 250, r.transcript);
  const [row, ...more] = await world.stored(mail);
  assert.deepEqual(more, []);
  assert.match(r.text, new RegExp(`^2\\.6\\.0 <${world.bob.address}> stored as ${row!.id}$`));
  assert.equal(row!.headers.road, 'smtp');
  const domain = row!.auth.domain as unknown as Record<string, unknown>;
  assert.equal(domain.source, 'mailauth');
  assert.equal(domain.method, `dkim:${PARTNER}`);
  assert.equal(domain.spf, 'pass');
  assert.equal(domain.dmarc, 'pass');
  assert.equal(row!.auth.client_ip, '127.0.0.1');
});

test('a certificate replaced on disk is served to the next client without a restart', async (t) => {
  if (!requireBinaries(t, needs)) return;
  const { world, ca, pair: first } = await withCa(t);
  const live = { cert: join(ca.dir, 'live.pem'), key: join(ca.dir, 'live.key') };
  copyFileSync(first.cert, live.cert);
  copyFileSync(first.key, live.key);
  const { port } = await world.edge({ smtpTlsCert: live.cert, smtpTlsKey: live.key });
  const peer = async (): Promise<string> => {
    const out = join(ca.dir, `peer-${Date.now()}.pem`);
    const r = await world.swaks(port, [world.bob.address], 'Subject: probe\r\n\r\nprobe\r\n', {
      extra: [
        '--tls',
        '--tls-verify',
        '--tls-ca-path',
        ca.caFile,
        '--tls-sni',
        EDGE_HOST,
        '--tls-get-peer-cert',
        out,
        '--quit-after',
        'TLS',
      ],
    });
    assert.doesNotMatch(r.transcript, /\*\*\*/, r.transcript);
    return new X509Certificate(readFileSync(out)).serialNumber;
  };
  assert.equal(await peer(), new X509Certificate(readFileSync(first.cert)).serialNumber);

  const second = await ca.issue(EDGE_HOST);
  // A renewal caught half-written (the key not yet replaced) keeps the old pair in use.
  copyFileSync(second.cert, live.cert);
  await new Promise((r) => setTimeout(r, 1100));
  assert.equal(await peer(), new X509Certificate(readFileSync(first.cert)).serialNumber, 'mismatched pair not taken');
  copyFileSync(second.key, live.key);
  await new Promise((r) => setTimeout(r, 1100));
  assert.equal(await peer(), new X509Certificate(readFileSync(second.cert)).serialNumber);
});

test('require TLS: MAIL FROM before STARTTLS is 530 5.7.0; after it the mail is taken', async (t) => {
  if (!requireBinaries(t, needs)) return;
  const { world, pair } = await withCa(t);
  const { port } = await world.edge({ smtpTlsCert: pair.cert, smtpTlsKey: pair.key, smtpRequireTls: true });
  const mail = await world.mail(world.bob.address);
  const plain = await world.swaks(port, [world.bob.address], mail);
  assert.match(`${plain.code} ${plain.text}`, /^530 5\.7\.0 Must issue a STARTTLS command first/);
  const tls = await world.swaks(port, [world.bob.address], mail, { extra: ['--tls'] });
  assert.equal(tls.code, 250, tls.transcript);
  assert.equal((await world.stored(mail)).length, 1);
});

test('never an open relay; unknown agents at RCPT; one recipient per transaction', async (t) => {
  if (!requireBinaries(t, needs)) return;
  const world = await startEdgeWorld(t);
  const { port } = await world.edge();
  const mail = await world.mail(world.bob.address);
  for (const to of ['victim@elsewhere.example', `bob@sub.${AGENTS}`, `bob@${AGENTS}.evil.example`, 'bob@[127.0.0.1]']) {
    const r = await world.swaks(port, [to], mail);
    assert.match(`${r.code} ${r.text}`, /^550 5\.7\.1 relay access denied/, `${to}: ${r.transcript}`);
  }
  const unknown = await world.swaks(port, [`nobody@${AGENTS}`], mail);
  assert.match(`${unknown.code} ${unknown.text}`, /^550 5\.1\.1 /);
  const s = await rawSession(port);
  await s.cmd('EHLO client.example');
  assert.match(await s.cmd(`MAIL FROM:<${world.worker.agent}>`), /^250/);
  assert.match(await s.cmd(`RCPT TO:<${world.bob.address}>`), /^250/);
  assert.match(await s.cmd(`RCPT TO:<${world.bob.address}>`), /^452 4\.5\.3 /);
  assert.match(await s.cmd('RCPT TO:<victim@elsewhere.example>'), /^452 4\.5\.3 /);
  s.socket.destroy();
  assert.equal(await world.count(), 0);
});

test('DKIM, SPF, DMARC and ARC verdicts: passes and failures, and which of them decide', async (t) => {
  if (!requireBinaries(t, needs)) return;
  const world = await startEdgeWorld(t);
  const { port } = await world.edge();
  const verdicts = async (mail: Awaited<ReturnType<typeof world.mail>>) =>
    (await world.stored(mail))[0]?.auth.domain as unknown as Record<string, unknown> | undefined;

  await t.test('no DKIM signature: 550 5.7.26 at DATA, though SPF passes', async () => {
    const mail = await world.mail(world.bob.address, { dkim: false });
    const r = await world.swaks(port, [world.bob.address], mail);
    assert.match(`${r.code} ${r.text}`, /^550 5\.7\.26 no DKIM pass aligned with partner\.example/);
    assert.deepEqual(await world.stored(mail), []);
  });

  await t.test('a body changed after signing: DKIM does not pass, 550 5.7.26', async () => {
    const mail = await world.mail(world.bob.address);
    const tampered = { ...mail, data: mail.data.replace('Agent message of type', 'Agent massage of type') };
    const r = await world.swaks(port, [world.bob.address], tampered);
    assert.match(`${r.code} ${r.text}`, /^550 5\.7\.26 /, r.transcript);
  });

  await t.test("a forged Authentication-Results under the edge's own name is removed and not believed", async () => {
    const forged = `Authentication-Results: ${EDGE_HOST}; dkim=pass header.d=${PARTNER} header.s=s2025`;
    const mail = await world.mail(world.bob.address, { dkim: false, headers: [forged] });
    const r = await world.swaks(port, [world.bob.address], mail);
    assert.match(`${r.code} ${r.text}`, /^550 5\.7\.26 /);
    const kept = withoutOurAuthResults(Buffer.from(mail.data), EDGE_HOST).toString();
    assert.ok(!kept.includes(forged) && kept.includes('X-Agent-Signature:'), 'the forged field alone is cut');
    const other = `Authentication-Results: mx.partner.example; dkim=pass header.d=${PARTNER}`;
    const foreign = await world.mail(world.bob.address, { headers: [other] });
    assert.ok(withoutOurAuthResults(Buffer.from(foreign.data), EDGE_HOST).toString().includes(other));
  });

  await t.test('SPF fail with aligned DKIM pass: stored, SPF fail and DMARC pass (through DKIM) recorded', async () => {
    world.dns.setTxt(`mail.${PARTNER}`, 'v=spf1 ip4:192.0.2.1 -all');
    const mail = await world.mail(world.bob.address);
    const r = await world.swaks(port, [world.bob.address], mail, { from: `bounces@mail.${PARTNER}` });
    assert.equal(r.code, 250, r.transcript);
    const v = await verdicts(mail);
    assert.equal(v?.spf, 'fail');
    assert.equal(v?.dmarc, 'pass', 'DMARC passes through the aligned DKIM signature');
    assert.equal(v?.method, `dkim:${PARTNER}`);
  });

  await t.test('ARC: a seal by a forwarder whose key is published passes; a seal without key fails', async () => {
    const arcKey = dkimKey('forwarder.example', 'arc1');
    world.dns.setTxt(arcKey.dnsName, arcKey.txt);
    const seal = async (data: string, key = arcKey) =>
      (
        await sealMessage(data, {
          signingDomain: key.domain,
          selector: key.selector,
          privateKey: key.privateKeyPem,
          ...({ i: 1, cv: 'none', authResults: `${key.domain}; dkim=pass header.d=${PARTNER}` } as object),
        })
      ).toString() + data;
    const good = await world.mail(world.bob.address);
    const r1 = await world.swaks(port, [world.bob.address], { ...good, data: await seal(good.data) });
    assert.equal(r1.code, 250, r1.transcript);
    assert.equal((await verdicts(good))?.arc, 'pass');
    const bad = await world.mail(world.bob.address);
    const r2 = await world.swaks(port, [world.bob.address], {
      ...bad,
      data: await seal(bad.data, dkimKey('unpublished.example', 'arc1')),
    });
    assert.equal(r2.code, 250, 'ARC alone decides nothing; the DKIM pass does');
    assert.equal((await verdicts(bad))?.arc, 'fail');
  });
});

test('oversize: a declared SIZE is refused at MAIL, an actual one at DATA (552)', async (t) => {
  if (!requireBinaries(t, needs)) return;
  const world = await startEdgeWorld(t);
  const { port } = await world.edge({ maxMailBytes: 4096 });
  const s = await rawSession(port);
  await s.cmd('EHLO client.example');
  assert.match(await s.cmd(`MAIL FROM:<${world.worker.agent}> SIZE=5000`), /^552 /);
  s.socket.destroy();
  const mail = await world.mail(world.bob.address);
  const big = { ...mail, data: mail.data.replace('\r\n\r\n', `\r\nX-Pad: ${'a'.repeat(5000)}\r\n\r\n`) };
  const r = await world.swaks(port, [world.bob.address], big);
  assert.match(`${r.code} ${r.text}`, /^552 5\.3\.4 message is larger than 4096 bytes/);
  assert.equal(await world.count(), 0);
});

test('per-address rate limits on connections and messages are hit, then recover', async (t) => {
  if (!requireBinaries(t, needs)) return;
  const world = await startEdgeWorld(t);
  const { port } = await world.edge({ smtpRateConnections: 3, smtpRateMessages: 2, smtpRateWindowSec: 2 });
  const s = await rawSession(port);
  await s.cmd('EHLO client.example');
  assert.match(await s.cmd(`MAIL FROM:<${world.worker.agent}>`), /^250/);
  await s.cmd('RSET');
  assert.match(await s.cmd(`MAIL FROM:<${world.worker.agent}>`), /^250/);
  await s.cmd('RSET');
  assert.match(await s.cmd(`MAIL FROM:<${world.worker.agent}>`), /^451 4\.7\.0 too many messages/);
  s.socket.destroy();
  await s.closed;
  const second = await rawSession(port);
  const third = await rawSession(port);
  const fourth = await rawSession(port);
  assert.match(second.greeting, /^220 /);
  assert.match(third.greeting, /^220 /);
  assert.match(fourth.greeting, /^421 4\.7\.0 too many connections; try again later/);
  for (const c of [second, third]) c.socket.destroy();
  await new Promise((r) => setTimeout(r, 2200));
  const mail = await world.mail(world.bob.address);
  const r = await world.swaks(port, [world.bob.address], mail);
  assert.equal(r.code, 250, `recovered after the window: ${r.transcript}`);
});

test('connection limits: per address, and in all', async (t) => {
  if (!requireBinaries(t, needs)) return;
  const world = await startEdgeWorld(t);
  const perIp = await world.edge({ smtpMaxConnectionsPerIp: 2 });
  const a = await rawSession(perIp.port);
  const b = await rawSession(perIp.port);
  const c = await rawSession(perIp.port);
  assert.match(a.greeting, /^220 /);
  assert.match(b.greeting, /^220 /);
  assert.match(c.greeting, /^421 4\.7\.0 too many connections from your address/);
  await c.closed;
  a.socket.destroy();
  await a.closed;
  await new Promise((r) => setTimeout(r, 50));
  const d = await rawSession(perIp.port);
  assert.match(d.greeting, /^220 /, 'a closed connection frees its place');
  for (const x of [b, d]) x.socket.destroy();

  const total = await world.edge({ smtpMaxConnections: 2 });
  const held = [await rawSession(total.port), await rawSession(total.port)];
  const over = await rawSession(total.port);
  assert.match(over.greeting, /^421 .*Too many connected clients/);
  for (const x of held) x.socket.destroy();
});

test('PROXY protocol v1 and v2 from a listed balancer name the client (limits, SPF, stored address)', async (t) => {
  if (!requireBinaries(t, needs)) return;
  const world = await startEdgeWorld(t);
  // SPF names only the partner's real address, so a pass proves the PROXY address was used.
  world.dns.setTxt(PARTNER, 'v=spf1 ip4:1.2.3.4 -all');
  const { edge, port } = await world.edge({ smtpProxy: ['127.0.0.1/32'] });
  for (const version of ['1', '2']) {
    const mail = await world.mail(world.bob.address);
    const r = await world.swaks(port, [world.bob.address], mail, {
      extra: [
        '--proxy-version',
        version,
        '--proxy-family',
        version === '1' ? 'TCP4' : 'AF_INET',
        '--proxy-protocol',
        'STREAM',
        '--proxy-source',
        '1.2.3.4',
        '--proxy-source-port',
        '40000',
        '--proxy-dest',
        '127.0.0.1',
        '--proxy-dest-port',
        String(port),
      ],
    });
    assert.equal(r.code, 250, r.transcript);
    const [row] = await world.stored(mail);
    assert.equal(row!.auth.client_ip, '1.2.3.4', `v${version}`);
    assert.equal((row!.auth.domain as unknown as Record<string, unknown>).spf, 'pass', `v${version}`);
  }
  const held = await rawSession(port, Buffer.from('PROXY TCP4 5.6.7.8 127.0.0.1 40001 25\r\n'));
  assert.match(held.greeting, /^220 /);
  assert.equal(edge.limits.open('5.6.7.8'), 1, 'counted under the address the header names');
  assert.equal(edge.limits.open('127.0.0.1'), 0);
  held.socket.destroy();
  const bare = await rawSession(port, Buffer.from('EHLO no-proxy-header\r\n'));
  assert.equal(bare.greeting, '(closed)', 'a listed balancer must send the header');
});

test('a storage fault is 451 4.3.0 at DATA, and the retry is stored once', async (t) => {
  if (!requireBinaries(t, needs)) return;
  const world = await startEdgeWorld(t);
  const { port } = await world.edge();
  const warm = await world.mail(world.bob.address);
  assert.equal((await world.swaks(port, [world.bob.address], warm)).code, 250);
  const mail = await world.mail(world.bob.address);
  await world.api.db.block();
  const down = await world.swaks(port, [world.bob.address], mail);
  await world.api.db.unblock();
  assert.match(`${down.code} ${down.text}`, /^451 4\.3\.0 /, down.transcript);
  const again = await world.swaks(port, [world.bob.address], mail);
  assert.equal(again.code, 250, again.transcript);
  assert.equal((await world.stored(mail)).length, 1);
});

test('a client that resets its connection in a transaction or in DATA ends only its own session; nothing partial is stored', async (t) => {
  if (!requireBinaries(t, needs)) return;
  const world = await startEdgeWorld(t);
  const { port } = await world.edge();
  const cut = await world.mail(world.bob.address);
  for (const upTo of ['MAIL FROM', 'DATA'] as const) {
    const s = await rawSession(port);
    assert.match(await s.cmd('EHLO mx.partner.example'), /^250/);
    assert.match(await s.cmd(`MAIL FROM:<${world.worker.agent}>`), /^250/);
    if (upTo === 'DATA') {
      assert.match(await s.cmd(`RCPT TO:<${world.bob.address}>`), /^250/);
      assert.match(await s.cmd('DATA'), /^354/);
      s.socket.write(cut.data.slice(0, cut.data.length / 2));
    }
    // A TCP reset: the server's socket fails with ECONNRESET inside the transaction.
    s.socket.resetAndDestroy();
    await s.closed;
  }
  const mail = await world.mail(world.bob.address);
  const r = await world.swaks(port, [world.bob.address], mail);
  assert.equal(r.code, 250, `the edge still takes mail: ${r.transcript}`);
  assert.equal((await world.stored(mail)).length, 1);
  assert.deepEqual(await world.stored(cut), [], 'nothing of the cut mail');
  assert.equal(await world.count(), 1);
});

test('graceful shutdown: idle clients get 421 at once, a transaction in DATA gets 421 when the grace ends', async (t) => {
  if (!requireBinaries(t, needs)) return;
  const world = await startEdgeWorld(t);
  const { edge, port } = await world.edge({ shutdownGraceMs: 300 });
  const idle = await rawSession(port);
  const busy = await rawSession(port);
  await busy.cmd('EHLO client.example');
  await busy.cmd(`MAIL FROM:<${world.worker.agent}>`);
  await busy.cmd(`RCPT TO:<${world.bob.address}>`);
  assert.match(await busy.cmd('DATA'), /^354/);
  busy.socket.write('Subject: half a message\r\n');
  const closing = closeLmtp(edge.server);
  assert.match(await idle.reply(), /^421 /);
  assert.match(await busy.reply(), /^421 .*shutting down/);
  await closing;
  assert.equal(await world.count(), 0, 'nothing half-received is stored');
});

test('a plus-address (RFC 5233) reaches the agent through the edge; a bad one is refused at RCPT', async (t) => {
  if (!requireBinaries(t, needs)) return;
  const world = await startEdgeWorld(t);
  const { port } = await world.edge();
  const mail = await world.mail(world.bob.address);
  const r = await world.swaks(port, [`bob+support@${AGENTS}`], mail);
  assert.equal(r.code, 250, r.transcript);
  const [row] = await world.stored(mail);
  assert.equal((row!.headers as Record<string, unknown>).detail, 'support');
  const bad = await world.swaks(port, [`bob+a!b@${AGENTS}`], mail);
  assert.match(`${bad.code} ${bad.text}`, /^550 5\.1\.1 /);
});

test("freshness on the edge: judged when the edge receives the mail, within the signer's validity", async (t) => {
  if (!requireBinaries(t, needs)) return;
  const world = await startEdgeWorld(t);
  const { port } = await world.edge();
  const twoHoursAgo = Math.floor(Date.now() / 1000) - 7200;
  // The sender's MTA held it two hours (our side was down): the default validity is 5 days.
  const held = await world.mail(world.bob.address, { signedAt: twoHoursAgo });
  const ok = await world.swaks(port, [world.bob.address], held);
  assert.equal(ok.code, 250, ok.transcript);
  assert.equal((await world.stored(held)).length, 1);
  // The signer gave it ten minutes (X-Agent-Expires): refused, precisely, and permanently.
  const expired = await world.mail(world.bob.address, { signedAt: twoHoursAgo, validitySec: 600 });
  const refused = await world.swaks(port, [world.bob.address], expired);
  assert.match(`${refused.code} ${refused.text}`, /^550 5\.7\.7 .*valid until/);
  assert.deepEqual(await world.stored(expired), []);
});

test('tenant subdomains and address tokens through the edge; unknown tenant 550 5.1.2, revoked token 550 5.1.6 at RCPT', async (t) => {
  if (!requireBinaries(t, needs)) return;
  const tenants = `*.tenants.${AGENTS}`;
  const acme = `acme.tenants.${AGENTS}`;
  const world = await startEdgeWorld(t, { ADMP_DOMAINS: `${AGENTS},${tenants}` });
  await addRule(world.api.db.pool, { from: `*@${PARTNER}`, to: `*@${acme}`, action: 'allow' });
  const admin = world.api.core.admin;
  await admin.addTenant('acme');
  await admin.addAgent('bob', acme);
  const live = `${(await admin.createAddressToken(`bob@${acme}`)).token}@${acme}`;
  const gone = `${(await admin.createAddressToken(`bob@${acme}`)).token}@${acme}`;
  await admin.revokeAddressToken(gone);
  const { port } = await world.edge();

  const toTenant = await world.mail(`bob@${acme}`);
  const r = await world.swaks(port, [`bob@${acme}`], toTenant);
  assert.equal(r.code, 250, r.transcript);
  assert.equal((await world.stored(toTenant))[0]!.to_agent_id, `bob@${acme}`);
  const toToken = await world.mail(live);
  const viaToken = await world.swaks(port, [live], toToken);
  assert.equal(viaToken.code, 250, viaToken.transcript);
  assert.ok(!viaToken.transcript.includes(`bob@${acme}`), 'the answers never name the agent behind the token');
  const [row] = await world.stored(toToken);
  assert.equal(row!.to_agent_id, `bob@${acme}`);
  assert.equal((row!.headers as Record<string, unknown>).token, live);

  const unknown = await world.swaks(
    port,
    [`bob@initech.tenants.${AGENTS}`],
    await world.mail(`bob@initech.tenants.${AGENTS}`),
  );
  assert.match(`${unknown.code} ${unknown.text}`, /^550 5\.1\.2 /, unknown.transcript);
  const revoked = await world.swaks(port, [gone], await world.mail(gone));
  assert.match(`${revoked.code} ${revoked.text}`, /^550 5\.1\.6 /, revoked.transcript);
  // Two labels under the wildcard are no tenant's: not ours at all.
  const deep = await world.swaks(port, [`bob@a.acme.tenants.${AGENTS}`], toTenant);
  assert.match(`${deep.code} ${deep.text}`, /^550 5\.7\.1 relay access denied/);
  assert.equal(await world.count(), 2);
});
