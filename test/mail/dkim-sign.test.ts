// DKIM signatures we make (the doctor's probe, the partners of tests and benchmarks)
// verify whatever the clock does while the RSA signature is computed: the t= signed is
// the t= written. The clock below jumps a second at every reading, so a signer that
// read it twice would write another t= than the one it signed, every time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dkimVerify } from 'mailauth/lib/dkim/verify.js';
import { dkimSignatureField } from '../../src/mail/dkim-sign.js';
import { startDns } from '../helpers/dns.js';
import { buildMessage, dkimKey } from '../helpers/mail.js';

test('the t= tag signed is the one written, even when the clock moves during signing', async (t) => {
  const key = dkimKey('partner.example', 's1');
  const dns = await startDns({ txt: { [key.dnsName]: key.txt } });
  t.after(() => dns.stop());

  const raw = buildMessage({ from: 'worker@partner.example', to: ['bob@agents.test'] });
  const realNow = Date.now;
  let clock = Math.floor(realNow() / 1000) * 1000 + 300;
  Date.now = () => (clock += 1000);
  let field: string;
  try {
    field = await dkimSignatureField(raw, key);
  } finally {
    Date.now = realNow;
  }
  assert.match(field, /\bt=\d+;/);
  const res = await dkimVerify(Buffer.from(field + raw), { resolver: dns.resolve });
  assert.equal(res.results.length, 1);
  assert.equal(res.results[0]!.status.result, 'pass', JSON.stringify(res.results[0]!.status));
});
