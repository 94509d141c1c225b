// `admp doctor --standalone` against a real edge: STARTTLS with a test-CA certificate, and the
// public records of a bare server (MX, A, PTR, SPF, DMARC) played by the loopback DNS server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { requireBinaries } from '../helpers/requires.js';
import { createTestCa } from '../helpers/test-ca.js';
import { runChecks } from '../../src/doctor/report.js';
import { standaloneChecks } from '../../src/doctor/standalone.js';
import { AGENTS } from '../e2e/partner.js';
import { EDGE_HOST, startEdgeWorld } from '../smtp/world.js';

test('doctor --standalone: passes on a complete bare server and names each broken part', async (t) => {
  if (!requireBinaries(t, ['openssl'])) return;
  const world = await startEdgeWorld(t);
  const ca = await createTestCa();
  t.after(() => ca.remove());
  const good = await ca.issue(EDGE_HOST, 90);
  const { dns } = world;
  dns.setMx(AGENTS, EDGE_HOST);
  dns.setA(EDGE_HOST, '127.0.0.1');
  dns.setPtr('127.0.0.1', EDGE_HOST);
  dns.setTxt(AGENTS, 'v=spf1 mx -all');
  dns.setTxt(`_dmarc.${AGENTS}`, 'v=DMARC1; p=reject; adkim=s');
  const tls = await world.edge({ smtpTlsCert: good.cert, smtpTlsKey: good.key });
  const run = (port: number) =>
    runChecks(
      standaloneChecks({
        config: world.api.config,
        domain: AGENTS,
        host: EDGE_HOST,
        port,
        ca: readFileSync(ca.caFile, 'utf8'),
      }),
    );

  const ok = await run(tls.port);
  for (const r of ok) assert.ok(r.ok, `${r.name}: ${r.detail}`);
  assert.equal(ok.length, 5);
  assert.match(ok[0]!.detail, new RegExp(`^220 ${EDGE_HOST} ESMTP .*; STARTTLS offered$`));
  assert.match(ok[1]!.detail, /issued by ADMP test CA, expires .* \(in (89|90) days\)/);

  const failing = (results: Awaited<ReturnType<typeof run>>) =>
    Object.fromEntries(
      results.filter((r) => !r.ok).map((r) => [r.name.split(' ')[0] + ' ' + r.name.split(' ')[1], r.detail]),
    );

  // A certificate expiring within 14 days, records missing or wrong.
  const soon = await ca.issue(EDGE_HOST, 5);
  const expiring = await world.edge({ smtpTlsCert: soon.cert, smtpTlsKey: soon.key });
  dns.setPtr('127.0.0.1', 'static.provider.example');
  dns.setTxt(`_dmarc.${AGENTS}`);
  dns.setTxt(AGENTS, 'v=spf1 mx -all', 'v=spf1 a -all');
  const bad = await run(expiring.port);
  assert.deepEqual(Object.keys(failing(bad)).sort(), ['DNS: A', 'DNS: SPF', 'certificate valid'].sort());
  assert.match(failing(bad)['certificate valid']!, /in [45] days/);
  assert.match(failing(bad)['DNS: A']!, /PTR 127\.0\.0\.1: static\.provider\.example/);
  assert.match(
    failing(bad)['DNS: SPF']!,
    /SPF agents\.example\.com: 2 records; DMARC _dmarc\.agents\.example\.com: ENOTFOUND/,
  );
  assert.ok(bad.find((r) => r.name.startsWith('DNS: SPF'))!.fix);

  // No STARTTLS, then nothing listening.
  dns.setTxt(AGENTS, 'v=spf1 mx -all');
  dns.setTxt(`_dmarc.${AGENTS}`, 'v=DMARC1; p=reject');
  dns.setPtr('127.0.0.1', EDGE_HOST);
  const plain = await world.edge();
  const noTls = await run(plain.port);
  assert.match(noTls[0]!.detail, /STARTTLS is not offered/);
  assert.equal(noTls[0]!.ok, false);
  const closed = await run(1);
  assert.equal(closed[0]!.ok, false);
  assert.match(closed[0]!.fix!, /ADMP_SMTP_LISTEN/);
});
