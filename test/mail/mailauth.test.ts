// The partners' DKIM keys are parsed once and reused (src/mail/mailauth.ts), and the
// verification stays real: every mail's signature is checked, the record is looked up
// on every mail, a rotated or revoked record is obeyed at once, a broken one refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { authenticate, dkimVerify, parsedKeys } from '../../src/mail/mailauth.js';
import { startDns } from '../helpers/dns.js';
import { buildMessage, dkimKey, signMessage } from '../helpers/mail.js';

test('a DKIM key is parsed once for many mails; each mail is still verified against the record DNS gives now', async (t) => {
  assert.equal(parsedKeys.installed, true, 'mailauth was loaded before the key cache was put in');
  const key = dkimKey('partner.example', 's1');
  const dns = await startDns({ txt: { [key.dnsName]: key.txt } });
  t.after(() => dns.stop());
  const dkim = async (raw: string) =>
    (await dkimVerify(Buffer.from(raw), { resolver: dns.resolve })).results[0]!.status;
  const mail = () => signMessage(buildMessage({ from: 'worker@partner.example', to: ['bob@agents.test'] }), key);

  const misses = parsedKeys.misses;
  const hits = parsedKeys.hits;
  for (let i = 0; i < 3; i++) assert.equal((await dkim(await mail())).result, 'pass');
  assert.equal(parsedKeys.misses - misses, 1, 'the key was parsed once');
  assert.equal(parsedKeys.hits - hits, 2, 'then reused');
  const asked = dns.queries.filter((q) => q === `TXT ${key.dnsName}`).length;
  assert.equal(asked, 3, 'the record is still looked up for every mail');

  // A cached key does not make a tampered mail pass.
  const tampered = (await mail()).replace('Subject: ', 'Subject: changed ');
  assert.equal((await dkim(tampered)).result, 'fail');

  // The whole of authenticate (DKIM, SPF, DMARC, ARC) uses it too, and reports the key as before.
  const res = await authenticate(Buffer.from(await mail()), {
    ip: '127.0.0.1',
    helo: 'mx.partner.example',
    sender: 'worker@partner.example',
    mta: 'mx.agents.test',
    resolver: dns.resolve as never,
    disableBimi: true,
    trustReceived: false,
  });
  assert.equal(res.dkim.results[0]!.status.result, 'pass');
  assert.match(String((res.dkim.results[0] as { publicKey?: unknown }).publicKey), /^-----BEGIN RSA PUBLIC KEY-----/);

  // Rotated: mail signed with the old key fails at once, the new key is parsed and passes.
  const next = dkimKey('partner.example', 's1');
  const old = await mail();
  dns.setTxt(key.dnsName, next.txt);
  assert.equal((await dkim(old)).result, 'fail');
  const fresh = await signMessage(buildMessage({ from: 'worker@partner.example', to: ['bob@agents.test'] }), next);
  assert.equal((await dkim(fresh)).result, 'pass');

  // Broken, then revoked: refused as mailauth refuses them, cached or not.
  dns.setTxt(key.dnsName, 'v=DKIM1; k=rsa; p=AAAA');
  for (let i = 0; i < 2; i++)
    assert.deepEqual(await dkim(fresh).then((s) => [s.result, s.comment]), ['neutral', 'unknown key type']);
  dns.setTxt(key.dnsName);
  assert.deepEqual(await dkim(fresh).then((s) => [s.result, s.comment]), ['neutral', 'no key']);
});
