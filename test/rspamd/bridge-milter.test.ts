// The agents_bridge plugin's decision table (rspamd/README.md), end to end: SMTP with XCLIENT into
// a real Postfix, rspamd's proxy as its milter, the shipped plugin and config, a loopback DNS
// server that publishes the sender's DKIM key, SPF and DMARC, and a scripted bridge.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { requireBinaries } from '../helpers/requires.js';
import { startDns } from '../helpers/dns.js';
import { startScriptedBridge, type BridgeAnswer, type BridgeRequest } from '../helpers/scripted-bridge.js';
import { renderBridgeConfig, startRspamd } from '../helpers/rspamd.js';
import { startPostfix, type TestPostfix } from '../helpers/postfix.js';
import { buildMessage, dkimKey, sendMail, signMessage, type MessageSpec, type SmtpOutcome } from '../helpers/mail.js';

const AGENTS = 'agents.example.com';
const TOKEN = 'test-ingress-token-0123456789';
const TEMPFAIL_TEXT = '4.7.1 Agent mailbox temporarily unavailable, try again later';
// Earlier modules' verdicts, as Mailcow's prefilters give them (priority 1, the default).
const TEST_PREFILTER = `
rspamd_config:register_symbol({
  name = 'TEST_PREFILTER',
  type = 'prefilter',
  priority = 10,
  callback = function(task)
    local verdict = task:get_header('X-Test-Prefilter')
    if verdict == 'accept' then
      task:set_pre_result('accept', 'accepted by test prefilter', 'test_prefilter')
    elseif verdict == 'reject' then
      task:set_pre_result('reject', 'blacklisted by test prefilter', 'test_prefilter')
    end
  end,
})
`;

async function waitFor(what: string, check: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('agents_bridge through Postfix and the rspamd milter', async (t) => {
  if (!requireBinaries(t, ['rspamd', 'postfix', 'postqueue', 'postcat', 'swaks'])) return;
  const key = dkimKey('sender.example', 'sel1');
  const dns = await startDns({
    txt: {
      [key.dnsName]: key.txt,
      'sender.example': 'v=spf1 ip4:1.2.3.4 -all',
      '_dmarc.sender.example': 'v=DMARC1; p=reject',
    },
  });
  t.after(() => dns.stop());
  const bridge = await startScriptedBridge();
  t.after(() => bridge.stop());
  const rspamd = await startRspamd({
    dns: dns.server,
    pluginConfig: renderBridgeConfig({ url: bridge.url, token: TOKEN, domain: AGENTS, timeout: 2 }),
    extraLocal: { 'rspamd.local.lua': TEST_PREFILTER },
  });
  t.after(() => rspamd.stop());
  const postfix: TestPostfix = await startPostfix({
    milter: rspamd.milter,
    relayDomains: ['example.com', AGENTS, 'agents.example.org'],
    hold: true,
  });
  t.after(() => postfix.stop());

  let n = 0;
  /** Sends a DKIM-signed message from a fresh sender address, posing as mail.sender.example [1.2.3.4]. */
  const send = async (
    to: string[],
    extra: Partial<MessageSpec> & { login?: string; from?: string } = {},
  ): Promise<SmtpOutcome & { from: string; bridgeCalls: BridgeRequest[] }> => {
    const from = extra.from ?? `alice+${++n}@sender.example`;
    const before = bridge.requests.length;
    const data = await signMessage(
      buildMessage({ from: from || 'mailer-daemon@sender.example', to, subject: `case ${n}`, ...extra }),
      key,
    );
    const outcome = await sendMail({
      port: postfix.port,
      from,
      to,
      data,
      clientAddr: '1.2.3.4',
      helo: 'mail.sender.example',
      ...(extra.login ? { login: extra.login } : {}),
    });
    return { ...outcome, from, bridgeCalls: bridge.requests.slice(before) };
  };
  const queuedFrom = async (from: string) => (await postfix.queue()).filter((m) => m.sender === from);
  const answering = async (a: BridgeAnswer, c: TestContext) => {
    await bridge.answer(a);
    c.after(() => bridge.answer({ status: 200, json: { stored: [] } }));
  };

  await t.test(
    "2xx: 250 to the client, milter-discard, nothing queued; the bridge gets the message and rspamd's verdicts",
    async () => {
      const forged =
        'Authentication-Results: mx.test.example; dkim=pass header.d=bank.example; spf=pass smtp.mailfrom=ceo@bank.example';
      const r = await send([`storage.pg@${AGENTS}`], { headers: [forged] });
      assert.equal(r.code, 250, r.transcript);
      assert.ok(r.queueId);
      await waitFor('milter-discard in the Postfix log', () => postfix.log().includes(`${r.queueId}: milter-discard`));
      assert.deepEqual(await queuedFrom(r.from), []);

      assert.equal(r.bridgeCalls.length, 1);
      const req = r.bridgeCalls[0]!;
      assert.equal(req.method, 'POST');
      assert.equal(req.path, '/ingress/rspamd');
      const h = req.headers;
      assert.equal(h.authorization, `Bearer ${TOKEN}`);
      assert.equal(h['content-type'], 'message/rfc822');
      assert.equal(h['x-envelope-from'], r.from);
      assert.equal(h['x-envelope-to'], `storage.pg@${AGENTS}`);
      assert.equal(h['x-rspamd-queue-id'], r.queueId);
      assert.equal(h['x-rspamd-client-ip'], '1.2.3.4');
      assert.equal(h['x-rspamd-helo'], 'mail.sender.example');
      assert.equal(h['x-rspamd-user'], '');
      const auth = JSON.parse(String(h['x-rspamd-auth'])) as Record<string, { symbol?: string }> & { dkim: unknown };
      assert.deepEqual(auth.dkim, [{ result: 'allow', domain: 'sender.example', selector: 'sel1' }]);
      assert.equal(auth.spf?.symbol, 'R_SPF_ALLOW');
      assert.equal(auth.dmarc?.symbol, 'DMARC_POLICY_ALLOW');
      const ar = String(h['x-rspamd-authentication-results']);
      assert.match(ar, /dkim=pass header\.d=sender\.example header\.s=sel1/);
      assert.match(ar, /spf=pass .*smtp\.mailfrom=alice\+\d+@sender\.example/);
      // The sender's own Authentication-Results travels in the body, never as the verdict.
      assert.doesNotMatch(ar, /bank\.example/);
      const body = req.body.toString('utf8');
      assert.ok(body.includes('header.d=bank.example'), 'the forged header is part of the message');
      assert.match(body, /^DKIM-Signature: /m);
      assert.match(body, new RegExp(`^Subject: case ${n}\\r?$`, 'm'));
      assert.ok(
        !/^Received: .*mx\.test\.example/m.test(body),
        "Postfix's own Received header is not part of milter content",
      );
    },
  );

  await t.test(
    "the bridge's refusal: 554 5.7.1 with its smtp_message (its own code dropped: one code), made one safe ASCII line",
    async (c) => {
      await answering(
        {
          status: 422,
          json: {
            error: { code: 'policy', message: 'x' },
            smtp_message: '5.7.26 Agent mailbox policy:\r\nDKIM signature required \u2014 see docs',
          },
        },
        c,
      );
      const r = await send([`storage.pg@${AGENTS}`]);
      assert.equal(r.code, 554, r.transcript);
      assert.equal(r.text, '5.7.1 Agent mailbox policy: DKIM signature required ??? see docs');
      assert.equal(r.bridgeCalls.length, 1);
      assert.deepEqual(await queuedFrom(r.from), []);
    },
  );

  const tempfails: [string, BridgeAnswer][] = [
    [
      '503 from the bridge',
      { status: 503, json: { error: { code: 'storage', message: 'db down' }, smtp_message: 'storage unavailable' } },
    ],
    ['401 (wrong token): the admin must fix it, the sender must not bounce', { status: 401 }],
    // A permanent status is the bridge's verdict only with its JSON error body.
    ['404 with no body (a wrong path)', { status: 404 }],
    ["404 from a misrouted proxy (JSON, but not the bridge's error)", { status: 404, json: { message: 'Not Found' } }],
    ['422 with smtp_message but no error object', { status: 422, json: { smtp_message: '5.7.1 no' } }],
    ['connection refused', 'refuse'],
  ];
  for (const [name, answer] of tempfails) {
    await t.test(`${name}: 451 4.7.1, nothing queued`, async (c) => {
      await answering(answer, c);
      const r = await send([`storage.pg@${AGENTS}`]);
      assert.equal(r.code, 451, r.transcript);
      assert.equal(r.text, TEMPFAIL_TEXT);
      assert.deepEqual(await queuedFrom(r.from), []);
    });
  }

  await t.test('a bridge hanging past the plugin timeout (2 s): 451 4.7.1 after about 2 s', async (c) => {
    await answering('hang', c);
    const started = Date.now();
    const r = await send([`storage.pg@${AGENTS}`]);
    const took = Date.now() - started;
    assert.equal(r.code, 451, r.transcript);
    assert.equal(r.text, TEMPFAIL_TEXT);
    assert.equal(r.bridgeCalls.length, 1);
    assert.ok(took >= 1900 && took < 10_000, `took ${took} ms`);
  });

  await t.test('no agents recipient (agents.example.org is not configured): no bridge call, normal path', async () => {
    const r = await send(['bob@example.com', 'x@agents.example.org']);
    assert.equal(r.code, 250, r.transcript);
    assert.equal(r.bridgeCalls.length, 0);
    const [held] = await queuedFrom(r.from);
    assert.equal(held?.queue_name, 'hold');
    assert.deepEqual(held?.recipients.map((x) => x.address).sort(), ['bob@example.com', 'x@agents.example.org']);
  });

  await t.test(
    'mixed recipients, 2xx: only the agents recipient goes to the bridge and Postfix cancels only it',
    async () => {
      // Tagged addresses on both sides: rspamd's plus-alias rewriting must not reach the bridge or del_rcpt.
      const agent = `storage.pg+thread-7@${AGENTS}`;
      const r = await send([agent, 'bob+news@example.com']);
      assert.equal(r.code, 250, r.transcript);
      assert.equal(r.bridgeCalls.length, 1);
      assert.equal(r.bridgeCalls[0]!.headers['x-envelope-to'], agent);
      assert.equal(r.bridgeCalls[0]!.headers['x-envelope-from'], r.from);
      const [held] = await queuedFrom(r.from);
      assert.equal(held?.queue_id, r.queueId);
      assert.deepEqual(
        held?.recipients.map((x) => x.address),
        ['bob+news@example.com'],
      );
      const envelope = await postfix.postcat(r.queueId!);
      assert.ok(envelope.split('\n').includes(`canceled_recipient: ${agent}`), envelope);
      assert.ok(envelope.split('\n').includes('recipient: bob+news@example.com'), envelope);
    },
  );

  await t.test('mixed recipients, refused: the whole message is rejected, so the sender learns of it', async (c) => {
    await answering(
      {
        status: 404,
        json: { error: { code: 'unknown_recipient', message: 'x' }, smtp_message: '5.1.1 no such agent' },
      },
      c,
    );
    const r = await send([`ghost@${AGENTS}`, 'bob@example.com']);
    assert.equal(r.code, 554, r.transcript);
    assert.equal(r.text, '5.7.1 no such agent');
    assert.deepEqual(await queuedFrom(r.from), []);
  });

  await t.test('two agents recipients, domain in upper case: one call listing both, discarded', async () => {
    const r = await send([`a@${AGENTS}`, `b@${AGENTS.toUpperCase()}`]);
    assert.equal(r.code, 250, r.transcript);
    assert.equal(r.bridgeCalls.length, 1);
    assert.equal(r.bridgeCalls[0]!.headers['x-envelope-to'], `a@${AGENTS},b@${AGENTS.toUpperCase()}`);
    await waitFor('milter-discard', () => postfix.log().includes(`${r.queueId}: milter-discard`));
  });

  await t.test('an earlier prefilter accept: the bridge is still called and the message discarded', async () => {
    const r = await send([`storage.pg@${AGENTS}`], { headers: ['X-Test-Prefilter: accept'] });
    assert.equal(r.code, 250, r.transcript);
    assert.equal(r.bridgeCalls.length, 1);
    await waitFor('milter-discard', () => postfix.log().includes(`${r.queueId}: milter-discard`));
    assert.deepEqual(await queuedFrom(r.from), []);
  });

  await t.test("an earlier prefilter reject: no bridge call, the prefilter's 554 stands", async () => {
    const r = await send([`storage.pg@${AGENTS}`], { headers: ['X-Test-Prefilter: reject'] });
    assert.equal(r.code, 554, r.transcript);
    assert.equal(r.text, '5.7.1 blacklisted by test prefilter');
    assert.equal(r.bridgeCalls.length, 0);
    assert.match(rspamd.log(), /agents_bridge: not forwarding, test_prefilter already chose reject/);
  });

  await t.test('a bounce (null sender) reaches the bridge with an empty X-Envelope-From', async () => {
    const r = await send([`storage.pg@${AGENTS}`], { from: '' });
    assert.equal(r.code, 250, r.transcript);
    assert.equal(r.bridgeCalls.length, 1);
    assert.equal(r.bridgeCalls[0]!.headers['x-envelope-from'], '');
  });

  await t.test('a SASL-authenticated client: X-Rspamd-User carries the login', async () => {
    const r = await send([`storage.pg@${AGENTS}`], { login: 'alice@sender.example' });
    assert.equal(r.code, 250, r.transcript);
    assert.equal(r.bridgeCalls[0]?.headers['x-rspamd-user'], 'alice@sender.example');
  });
});
