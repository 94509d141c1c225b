// Graceful shutdown of a real `admp serve` process on SIGTERM: new connections are
// refused, a long poll in flight is answered, an LMTP transaction in DATA finishes
// within the grace period and is stored, one that stalls past it gets 421 (not a
// dropped connection), an idle LMTP client gets 421 at once, and the process exits 0.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { createTestDatabase } from '../helpers/db.js';
import { freePort, isListening } from '../helpers/ports.js';
import { LineReader } from '../helpers/lmtp-client.js';
import { agentMail, signer, trust } from '../helpers/agent-mail.js';
import { addAgent } from '../../src/db/agents.js';

const REPO = join(import.meta.dirname, '..', '..');
const MTA = 'mx.agents.test';
const PARTNER = 'agents.partner.example';
const GRACE_MS = 2000;

/** An LMTP session driven one step at a time. */
async function lmtpSession(port: number) {
  const socket: Socket = connect(port, '127.0.0.1');
  const r = new LineReader(socket);
  const closed = new Promise<void>((ok) => socket.once('close', () => ok()));
  const cmd = async (line: string) => {
    socket.write(`${line}\r\n`);
    return r.reply();
  };
  assert.match(await r.reply(), /^220 /);
  assert.match(await cmd('LHLO client.test'), /^250 /);
  return { socket, reply: () => r.reply(), cmd, closed };
}

async function waitFor(what: string, check: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('SIGTERM drains HTTP and LMTP within the grace period, then exits 0', async (t) => {
  const db = await createTestDatabase();
  t.after(() => db.drop());
  const bob = await addAgent(db.pool, 'bob', 'agents.test');
  await db.pool.query(
    `INSERT INTO policy_rule (from_glob, to_glob, action) VALUES ('*@${PARTNER}', '*@agents.test', 'allow')`,
  );
  const partner = signer(`w@${PARTNER}`);
  await trust(db.pool, partner);
  const mail = async (n: number) =>
    Buffer.concat([
      Buffer.from(`Authentication-Results: ${MTA}; dkim=pass header.d=${PARTNER} header.s=s1\r\n`),
      await agentMail(partner, { to: 'bob@agents.test', type: 'task.request', body: { n } }),
    ])
      .toString('latin1')
      .replace(/\r?\n/g, '\r\n');

  const [httpPort, lmtpPort] = [await freePort(), await freePort()];
  const child = spawn(process.execPath, ['--import', 'tsx', join(REPO, 'src', 'cli', 'main.ts'), 'serve'], {
    cwd: REPO,
    env: {
      ...process.env,
      DATABASE_URL: db.url,
      ADMP_DOMAINS: 'agents.test',
      ADMP_MTA_HOSTNAME: MTA,
      ADMP_POLICY_FILE: '',
      ADMP_HTTP_LISTEN: `127.0.0.1:${httpPort}`,
      ADMP_LMTP_LISTEN: `127.0.0.1:${lmtpPort}`,
      ADMP_METRICS_LISTEN: '',
      ADMP_SHUTDOWN_GRACE_MS: String(GRACE_MS),
      ADMP_LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (c: Buffer) => {
    output += c.toString();
  });
  child.stderr.on('data', (c: Buffer) => {
    output += c.toString();
  });
  const exited = new Promise<number | null>((ok) => child.once('exit', (code) => ok(code)));
  t.after(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  await waitFor(
    'readyz',
    async () => (await fetch(`http://127.0.0.1:${httpPort}/readyz`).catch(() => undefined))?.status === 200,
  );
  assert.ok(await isListening(lmtpPort));

  // In flight when SIGTERM arrives: two LMTP transactions in DATA, an idle LMTP client, a long poll.
  const finishing = await lmtpSession(lmtpPort);
  const stalling = await lmtpSession(lmtpPort);
  for (const s of [finishing, stalling]) {
    assert.match(await s.cmd(`MAIL FROM:<w@${PARTNER}>`), /^250 /);
    assert.match(await s.cmd('RCPT TO:<bob@agents.test>'), /^250 /);
    assert.match(await s.cmd('DATA'), /^354 /);
  }
  const [first, second] = [await mail(1), await mail(2)];
  finishing.socket.write(first.slice(0, 200));
  stalling.socket.write(second.slice(0, 200));
  const idle = await lmtpSession(lmtpPort);
  const longPoll = fetch(`http://127.0.0.1:${httpPort}/v1/inbox/pull`, {
    method: 'POST',
    headers: { authorization: `Bearer ${bob.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ max: 5, wait: 20 }),
  });
  await new Promise((r) => setTimeout(r, 300)); // the long poll is waiting

  const termAt = Date.now();
  child.kill('SIGTERM');
  assert.match(await idle.reply(), /^421 /, 'an idle LMTP client is told at once');
  const polled = await longPoll;
  assert.equal(polled.status, 200, 'the long poll in flight is answered');
  assert.deepEqual((await polled.json()).messages, []);
  assert.ok(Date.now() - termAt < GRACE_MS, 'without waiting for its 20 s');
  await waitFor('the HTTP listener to close', async () => !(await isListening(httpPort)), GRACE_MS);

  // The transaction that goes on within the grace period completes and is stored.
  finishing.socket.write(`${first.slice(200)}\r\n.\r\n`);
  assert.match(await finishing.reply(), /^250 2\.6\.0 <bob@agents\.test> stored as /);
  assert.match(
    await finishing.cmd('MAIL FROM:<w@agents.partner.example>'),
    /^421 /,
    'no new transaction after shutdown began',
  );
  // The one that stalls gets 421 when the grace period ends, and the connection is closed.
  assert.match(await stalling.reply(), /^421 /);
  assert.ok(Date.now() - termAt >= GRACE_MS - 100, 'not before the grace period ended');
  await stalling.closed;

  assert.equal(await exited, 0, output);
  assert.ok(!(await isListening(lmtpPort)));
  const stored = await db.pool.query<{ body: { n: number } }>('SELECT body FROM message');
  assert.deepEqual(
    stored.rows.map((r) => r.body.n),
    [1],
    'the finished transaction was committed, the cut one was not',
  );
  const events = output
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { event?: string });
  assert.ok(events.some((e) => e.event === 'shutdown'));
  assert.ok(
    events.some((e) => e.event === 'stopped'),
    'the pool was closed after the drain',
  );
});
