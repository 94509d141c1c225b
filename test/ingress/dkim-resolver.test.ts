// The DNS cache in front of DKIM re-verification and the edge's SPF/DKIM/DMARC: answers,
// negative ones too, are reused for a while and shared by concurrent lookups; other
// failures are never kept (a temperror stays temporary).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cachedResolver, verifyDkim } from '../../src/ingress/domain-auth.js';
import { buildMessage, dkimKey, signMessage } from '../helpers/mail.js';

test('answers are kept for the TTL and shared by concurrent lookups; failures are asked again', async () => {
  let clock = 0;
  const asked: string[] = [];
  let failNext = false;
  const cached = cachedResolver(
    async (name, rrtype) => {
      asked.push(`${rrtype} ${name}`);
      if (failNext) {
        failNext = false;
        throw Object.assign(new Error('timeout'), { code: 'ETIMEOUT' });
      }
      return [[`v=DKIM1; p=${asked.length}`]];
    },
    1000,
    10,
    () => clock,
  );

  const [a, b] = await Promise.all([
    cached('s1._domainkey.example.org', 'TXT'),
    cached('S1._domainkey.example.org', 'TXT'),
  ]);
  assert.deepEqual(a, [['v=DKIM1; p=1']]);
  assert.equal(b, a);
  assert.deepEqual(asked, ['TXT s1._domainkey.example.org']);
  clock = 999;
  assert.equal(await cached('s1._domainkey.example.org', 'TXT'), a);
  clock = 1000;
  assert.deepEqual(await cached('s1._domainkey.example.org', 'TXT'), [['v=DKIM1; p=2']]);

  failNext = true;
  await assert.rejects(cached('s2._domainkey.example.org', 'TXT'), /timeout/);
  assert.deepEqual(await cached('s2._domainkey.example.org', 'TXT'), [['v=DKIM1; p=4']]);
  assert.equal(asked.length, 4);
});

test('no such name and no such record are kept for the TTL like answers (RFC 2308)', async () => {
  let clock = 0;
  const asked: string[] = [];
  const published = new Map<string, string>();
  const cached = cachedResolver(
    async (name, rrtype) => {
      asked.push(`${rrtype} ${name}`);
      const v = published.get(name);
      if (v) return [[v]];
      throw Object.assign(new Error('queryTxt ENOTFOUND'), {
        code: name.startsWith('_dmarc.') ? 'ENOTFOUND' : 'ENODATA',
      });
    },
    1000,
    10,
    () => clock,
  );
  for (const name of ['_dmarc.agents.example.org', '_dmarc.example.org', 'agents.example.org']) {
    await assert.rejects(cached(name, 'TXT'), /ENOTFOUND/);
    await assert.rejects(cached(name, 'TXT'), /ENOTFOUND/);
  }
  assert.equal(asked.length, 3, 'each negative answer asked once');
  published.set('_dmarc.example.org', 'v=DMARC1; p=reject');
  clock = 999;
  await assert.rejects(cached('_dmarc.example.org', 'TXT'), /ENOTFOUND/);
  clock = 1000;
  assert.deepEqual(
    await cached('_dmarc.example.org', 'TXT'),
    [['v=DMARC1; p=reject']],
    'a record published is seen after the TTL',
  );
  assert.equal(asked.length, 4);
});

test('DKIM verifies on CRLF mail as is and on mail whose folded lines end in bare LF', async () => {
  const key = dkimKey('partner.example', 's1');
  const signed = await signMessage(
    buildMessage({
      from: 'worker@partner.example',
      to: ['bob@agents.test'],
      subject: 'a subject long enough to be folded',
    }),
    key,
  );
  const resolve = cachedResolver(async (name) => {
    if (name === key.dnsName) return [[key.txt]];
    throw Object.assign(new Error('no such name'), { code: 'ENOTFOUND' });
  });
  const crlf = Buffer.from(signed);
  const bareLf = Buffer.from(signed.replace(/\r\n(?=[ \t])/g, '\n'));
  assert.notDeepEqual(bareLf, crlf);
  for (const raw of [crlf, bareLf]) {
    const auth = await verifyDkim(raw, resolve);
    assert.deepEqual(
      auth.dkim.map((v) => [v.domain, v.result]),
      [['partner.example', 'pass']],
    );
  }
});
