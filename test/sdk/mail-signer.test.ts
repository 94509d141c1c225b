// The SDK's partner-mail signer: its .eml verifies the way the ingress pipeline
// verifies mail (mailparser, readSignedMail, verifySignature), its signature is the
// one `admp sign` makes for the same message, and a tampered copy fails.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { signAgentMail } from '../../src/sdk/index.js';
import { buildSignedMessage } from '../../src/mail/signed-message.js';
import { createAgentKey, seedFromPem } from '../../src/keys/private-key.js';
import type { KeyResolver } from '../../src/core/signature.js';
import { outcome, verifyEml } from '../signature/verify-eml.js';

/** A partner agent's new key, and a resolver that knows only it. */
async function partner() {
  const key = await createAgentKey();
  const agent = 'partner-bot@agents.partner.example';
  const resolveKey: KeyResolver = async (domain, kid) =>
    domain === 'agents.partner.example' && kid === key.kid
      ? { status: 'found', key: { domain, kid, agent, publicKey: key.publicKey, source: 'pinned' } }
      : { status: 'not_found' };
  return { key, agent, resolveKey };
}

test('signAgentMail: verified by the server path, equal to `admp sign`, tampering detected', async () => {
  const { key, agent, resolveKey } = await partner();
  const now = 1_780_000_000;
  const envelope = {
    to: 'Bob@Agents.Test',
    type: 'task.request',
    subject: 'Prüfung: naïve café',
    body: { q: 'ünïcode', n: [1, 2] },
    correlation_id: 'c-42',
  };
  const signed = signAgentMail(envelope, { agent, kid: key.kid, privateKey: key.privateKeyPem }, { now });
  assert.equal(signed.to, 'bob@agents.test');
  const verified = await verifyEml(signed.eml, { rcpt: 'bob@agents.test', now, clockSkewSec: 300, resolveKey });
  assert.equal(outcome(verified), 'ok');

  const byCli = await buildSignedMessage(
    envelope,
    { agent, kid: key.kid, seed: seedFromPem(key.privateKeyPem) },
    { now, messageId: signed.messageId },
  );
  assert.equal(Buffer.from(signed.envelope).toString('utf8'), byCli.envelopeBytes.toString('utf8'));
  const unfolded = byCli.eml.toString('utf8').replace(/\r\n(?=[ \t])/g, '');
  assert.ok(unfolded.includes(`X-Agent-Signature: ${signed.headers['X-Agent-Signature']}\r\n`), 'the same signature');

  const otherRecipient = await verifyEml(signed.eml, { rcpt: 'carol@agents.test', now, clockSkewSec: 300, resolveKey });
  assert.equal(outcome(otherRecipient), 'signature_invalid');
  const tampered = signed.eml.replace('Subject: ', 'Subject: Re: ');
  assert.equal(
    outcome(await verifyEml(tampered, { rcpt: 'bob@agents.test', now, clockSkewSec: 300, resolveKey })),
    'signature_invalid',
  );
  const late = await verifyEml(signed.eml, { rcpt: 'bob@agents.test', now: now + 3600, clockSkewSec: 300, resolveKey });
  assert.equal(outcome(late), 'signature_expired');
});

test('signAgentMail with validitySec: X-Agent-Expires, signed, the same as admp sign --validity-sec', async () => {
  const { key, agent, resolveKey } = await partner();
  const now = 1_780_000_000;
  const envelope = { to: 'bob@agents.test', type: 'quote.offer', body: { offer: 1 } };
  const privateKey = key.privateKeyPem;
  const signed = signAgentMail(envelope, { agent, kid: key.kid, privateKey }, { now, validitySec: 3600 });
  assert.equal(signed.headers['X-Agent-Expires'], String(now + 3600));
  const byCli = await buildSignedMessage(
    envelope,
    { agent, kid: key.kid, seed: seedFromPem(privateKey) },
    { now, messageId: signed.messageId, validitySec: 3600 },
  );
  const unfolded = byCli.eml.toString('utf8').replace(/\r\n(?=[ \t])/g, '');
  assert.ok(unfolded.includes(`X-Agent-Signature: ${signed.headers['X-Agent-Signature']}\r\n`), 'the same signature');
  const at = async (t: number) =>
    outcome(
      await verifyEml(signed.eml, {
        rcpt: 'bob@agents.test',
        now: t,
        clockSkewSec: 300,
        validitySec: 432000,
        maxValiditySec: 604800,
        resolveKey,
      }),
    );
  assert.equal(await at(now + 3900), 'ok');
  assert.equal(await at(now + 3901), 'signature_expired');
});
