// Real processes at their edges: `admp serve` started before its database waits for it
// (and says so); a request on a kept-alive connection during the SIGTERM drain gets our
// error shape and `Connection: close`, not fastify's body or a reset; `npm start` stopped
// by SIGTERM or SIGKILL leaves no server and no embedded PostgreSQL behind, and one left
// behind by a SIGKILLed server is restarted by the next start, not silently joined.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createTestDatabase } from '../helpers/db.js';
import { freePort } from '../helpers/ports.js';
import { alive, ready, run, serve, until } from '../helpers/serve-process.js';

/** One HTTP/1.1 exchange on a socket kept open: the raw answer. */
function exchange(socket: Socket, request: string): Promise<string> {
  return new Promise((ok, fail) => {
    let got = '';
    const onData = (c: Buffer) => {
      got += c.toString();
      const [head, body = ''] = got.split('\r\n\r\n');
      const length = Number(/content-length: (\d+)/i.exec(head!)?.[1] ?? -1);
      if (length >= 0 && Buffer.byteLength(body) >= length) done(() => ok(got));
    };
    const onError = (err: Error) => done(() => fail(err));
    const onClose = () => done(() => fail(new Error(`closed without an answer: ${got}`)));
    const done = (f: () => void) => {
      socket.off('data', onData).off('error', onError).off('close', onClose);
      f();
    };
    socket.on('data', onData).on('error', onError).on('close', onClose);
    socket.write(request);
  });
}

test('SIGTERM: a request on a kept-alive connection gets 503 shutting_down in the error shape, not a reset', async (t) => {
  const db = await createTestDatabase();
  t.after(() => db.drop());
  const port = await freePort();
  const p = serve(
    {
      DATABASE_URL: db.url,
      ADMP_DOMAINS: 'agents.test',
      ADMP_HTTP_LISTEN: `127.0.0.1:${port}`,
      ADMP_LMTP_LISTEN: '',
      ADMP_SHUTDOWN_GRACE_MS: '4000',
    },
    t,
  );
  await until('ready', () => ready(port));
  const keptAlive = connect(port, '127.0.0.1');
  await new Promise((ok) => keptAlive.once('connect', ok));
  const get = 'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n';
  assert.match(await exchange(keptAlive, get), /^HTTP\/1\.1 200 /);
  // A request in flight (its body still coming) keeps the drain going.
  const slow = connect(port, '127.0.0.1');
  await new Promise((ok) => slow.once('connect', ok));
  slow.write(
    'POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 20\r\n\r\n{"to"',
  );
  await sleep(200);
  p.child.kill('SIGTERM');
  await sleep(300);
  const answer = await exchange(keptAlive, get);
  assert.match(answer, /^HTTP\/1\.1 503 /);
  assert.match(answer, /connection: close/i);
  const body = JSON.parse(answer.split('\r\n\r\n')[1]!) as { error: { code: string; message: string } };
  assert.equal(body.error.code, 'shutting_down');
  slow.destroy();
  keptAlive.destroy();
  assert.equal(await p.exited, 0, p.output());
});

test('npm start: SIGTERM and SIGKILL leave no server or PostgreSQL behind; an orphaned one is restarted', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'admp-npm-'));
  chmodSync(dir, 0o755); // PostgreSQL runs as its own user when we are root
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const port = await freePort();
  const env = {
    ADMP_DATA_DIR: join(dir, 'var'),
    ADMP_EMBEDDED_PG_PORT: '0',
    ADMP_HTTP_LISTEN: `127.0.0.1:${port}`,
    ADMP_LMTP_LISTEN: '',
    ADMP_DOMAINS: 'agents.test',
    DATABASE_URL: '',
  };
  const postmaster = () => Number(readFileSync(join(dir, 'var', 'pg', 'postmaster.pid'), 'utf8').split('\n')[0]);
  const npmStart = () => run('npm', ['start'], env, t);

  await t.test('SIGTERM to npm stops the server and its PostgreSQL', async () => {
    const npm = npmStart();
    await until('ready', () => ready(port), 120_000);
    const pg = postmaster();
    npm.child.kill('SIGTERM');
    await npm.exited;
    await until('the server gone', async () => !(await ready(port)) && !alive(pg), 30_000);
    assert.match(npm.output(), /"event":"stopped"/);
  });

  await t.test('SIGKILL to npm: the server notices and stops, PostgreSQL with it', async () => {
    const npm = npmStart();
    await until('ready', () => ready(port));
    const pg = postmaster();
    npm.child.kill('SIGKILL');
    await until(
      'the server and PostgreSQL gone',
      async () => !(await ready(port)) && !alive(pg) && !existsSync(join(dir, 'var', 'pg.owner')),
      30_000,
    );
  });

  await t.test('a server SIGKILLed leaves PostgreSQL running: the next start restarts it and says so', async () => {
    const first = npmStart();
    await until('ready', () => ready(port));
    const pg = postmaster();
    const server = Number(readFileSync(join(dir, 'var', 'pg.owner'), 'utf8'));
    process.kill(server, 'SIGKILL');
    await first.exited;
    await sleep(500);
    assert.ok(alive(pg), 'PostgreSQL outlived the server');
    const next = npmStart();
    await until('ready', () => ready(port));
    assert.match(next.output(), /left running by a process that is gone: restarting it/);
    assert.ok(!alive(pg), 'the orphan was stopped');
    assert.notEqual(postmaster(), pg);
    const pg2 = postmaster();
    next.child.kill('SIGTERM');
    await next.exited;
    await until('PostgreSQL stopped', () => !alive(pg2), 30_000);
  });
});
