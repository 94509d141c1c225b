// The MCP server through the MCP SDK's own client, over both transports: Streamable
// HTTP at /mcp on the API listener and `admp mcp` over stdio. Two agents exchange a
// task and its result through tools only; API errors come back as tool errors that
// carry the ADMP code.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { createAgentKey } from '../../src/keys/private-key.js';
import { insertLocalKey } from '../../src/db/keys.js';
import { AdmpClient } from '../../src/sdk/index.js';
import { rotateCredentials } from '../../src/db/agents.js';
import { startSdkServer } from '../sdk/server.js';

const TOOLS = [
  'ack_message',
  'check_inbox',
  'extend_or_release',
  'list_dead_letters',
  'message_status',
  'redrive',
  'reply',
  'send_message',
];

async function connect(transport: Transport): Promise<Client> {
  const client = new Client({ name: 'admp-test', version: '1.0.0' });
  await client.connect(transport);
  return client;
}
const overHttp = (url: string, bearer: string) =>
  connect(
    new StreamableHTTPClientTransport(new URL('/mcp', url), {
      requestInit: { headers: { authorization: `Bearer ${bearer}` } },
    }),
  );

/** Calls a tool; returns its structured result, or `{ error }` for a tool error. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function call(client: Client, name: string, args: Record<string, unknown>): Promise<any> {
  const r = await client.callTool({ name, arguments: args });
  const text = (r.content as { type: string; text: string }[])[0]!.text;
  if (r.isError) {
    assert.match(text, /^ADMP error [a-z_]+: /);
    return r.structuredContent;
  }
  assert.deepEqual(JSON.parse(text), r.structuredContent);
  return r.structuredContent;
}

test('over Streamable HTTP: one agent sends a task, another replies, through tools only', async (t) => {
  const s = await startSdkServer({ ADMP_MAX_ATTEMPTS: '1' });
  t.after(() => s.close());
  const [a, b] = [await s.api.agent('alice'), await s.api.agent('bob')];
  const alice = await overHttp(s.url, a.token);
  t.after(() => alice.close());
  // bob signs in with an EdDSA JWT minted from his key, as an agent runtime would.
  const key = await createAgentKey();
  await insertLocalKey(s.api.db.pool, { agent: b.address, kid: key.kid, publicKey: key.publicKey });
  const { SignJWT, importPKCS8 } = await import('jose');
  const jwt = await new SignJWT({})
    .setProtectedHeader({ alg: 'EdDSA', kid: key.kid })
    .setIssuer(b.address)
    .setAudience('agents.test')
    .setIssuedAt()
    .setExpirationTime('5m')
    .sign(await importPKCS8(key.privateKeyPem, 'EdDSA'));
  const bob = await overHttp(s.url, jwt);
  t.after(() => bob.close());

  const tools = await alice.listTools();
  assert.deepEqual(tools.tools.map((x) => x.name).sort(), TOOLS);
  for (const tool of tools.tools) {
    assert.ok((tool.description ?? '').length > 40, `${tool.name} is described for a model`);
    assert.equal(tool.inputSchema.type, 'object');
  }

  const waiting = call(bob, 'check_inbox', { max: 5, wait_sec: 10, lease_sec: 60 });
  const task1 = {
    to: b.address,
    type: 'task.request',
    subject: 'sum',
    body: { numbers: [1, 2, 3] },
    correlation_id: 'job-7',
    idempotency_key: 'task-1',
  };
  const sent = await call(alice, 'send_message', task1);
  assert.equal(sent.status, 'delivered');
  const again = await call(alice, 'send_message', task1);
  assert.equal(again.id, sent.id, 'a repeated call with the same idempotency key stores one message');
  assert.equal(again.duplicate, true);
  const other = await call(alice, 'send_message', { ...task1, body: 'something else' });
  assert.equal(other.error.code, 'idempotency_conflict');

  const inbox = await waiting;
  assert.equal(inbox.messages.length, 1);
  const task = inbox.messages[0];
  assert.equal(task.id, sent.id);
  assert.equal(task.from, a.address);
  assert.deepEqual(task.body, { numbers: [1, 2, 3] });
  assert.ok(task.lease_id && task.lease_until);
  assert.ok('auth' in task, 'the verification facts come with the message');

  const extended = await call(bob, 'extend_or_release', {
    message_id: task.id,
    lease_id: task.lease_id,
    action: 'extend',
    seconds: 120,
  });
  assert.equal(extended.status, 'leased');
  const numbers = task.body.numbers as number[];
  const replied = await call(bob, 'reply', {
    message_id: task.id,
    lease_id: task.lease_id,
    type: 'task.result',
    body: { sum: numbers.reduce((x, y) => x + y, 0) },
  });
  assert.equal(replied.status, 'delivered');

  const answer = (await call(alice, 'check_inbox', {})).messages[0];
  assert.equal(answer.in_reply_to, task.id);
  assert.equal(answer.correlation_id, 'job-7');
  assert.deepEqual(answer.body, { sum: 6 });
  assert.deepEqual(await call(alice, 'ack_message', { message_id: answer.id, lease_id: answer.lease_id }), {
    id: answer.id,
    status: 'acked',
  });
  const status = await call(alice, 'message_status', { message_id: task.id });
  assert.equal(status.status, 'acked', 'the reply with the lease acked the task');
  assert.equal(status.reply, replied.id);

  // Tool errors carry the ADMP code.
  assert.equal(
    (await call(alice, 'ack_message', { message_id: answer.id, lease_id: answer.lease_id })).error.code,
    'lease_conflict',
  );
  assert.equal((await call(alice, 'message_status', { message_id: crypto.randomUUID() })).error.code, 'not_found');
  assert.equal(
    (await call(alice, 'send_message', { to: 'nobody@agents.test', type: 't', body: 1 })).error.code,
    'unknown_recipient',
  );

  // A released message (one attempt allowed) is dead; list and redrive it.
  await call(alice, 'send_message', { to: b.address, type: 'task.request', body: 'fails' });
  const failing = (await call(bob, 'check_inbox', { max: 1 })).messages[0];
  const released = await call(bob, 'extend_or_release', {
    message_id: failing.id,
    lease_id: failing.lease_id,
    action: 'release',
  });
  assert.equal(released.status, 'dead');
  const dead = await call(bob, 'list_dead_letters', {});
  assert.deepEqual(
    dead.messages.map((m: { id: string }) => m.id),
    [failing.id],
  );
  assert.deepEqual(await call(bob, 'redrive', { all: true }), { redriven: [failing.id] });
  assert.equal((await call(bob, 'check_inbox', {})).messages[0].id, failing.id);
});

test('/mcp refuses a request without agent credentials', async (t) => {
  const s = await startSdkServer();
  t.after(() => s.close());
  const init = { jsonrpc: '2.0', id: 1, method: 'initialize', params: {} };
  for (const authorization of [undefined, 'Bearer admp_wrong', 'Basic YTpi']) {
    const r = await fetch(new URL('/mcp', s.url), {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        ...(authorization ? { authorization } : {}),
      },
      body: JSON.stringify(init),
    });
    assert.equal(r.status, 401);
    assert.equal(((await r.json()) as { error: { code: string } }).error.code, 'unauthorized');
  }
});

test('admp mcp over stdio: credentials from the environment, the same tools', async (t) => {
  const s = await startSdkServer();
  t.after(() => s.close());
  const [a, b] = [await s.api.agent('alice'), await s.api.agent('bob')];
  const root = new URL('../../', import.meta.url).pathname;
  const stdio = await connect(
    new StdioClientTransport({
      command: process.execPath,
      args: ['--import', 'tsx', 'src/cli/main.ts', 'mcp'],
      cwd: root,
      env: { PATH: process.env.PATH ?? '', ADMP_URL: s.url, ADMP_TOKEN: a.token },
      stderr: 'pipe',
    }),
  );
  t.after(() => stdio.close());
  assert.deepEqual((await stdio.listTools()).tools.map((x) => x.name).sort(), TOOLS);
  const sent = await call(stdio, 'send_message', { to: b.address, type: 'note', body: { hi: true } });
  const bob = new AdmpClient({ baseUrl: s.url, credentials: { token: b.token } });
  const [m] = (await bob.pull({ max: 1 })).messages;
  assert.equal(m!.id, sent.id);
  assert.equal(m!.from, a.address);
  const st = await call(stdio, 'message_status', { message_id: sent.id });
  assert.equal(st.status, 'leased');
  const notMine = await call(stdio, 'ack_message', { message_id: m!.id, lease_id: m!.lease_id });
  assert.equal(notMine.error.code, 'forbidden', "alice cannot ack bob's message");
});

test('/mcp calls the mailbox directly, each tool call counted against the agent request limit', async (t) => {
  const s = await startSdkServer({ ADMP_API_RATE_LIMIT: '3', ADMP_API_RATE_WINDOW_SEC: '60' });
  t.after(() => s.close());
  const a = await s.api.agent('alice');
  const alice = await overHttp(s.url, a.token);
  t.after(() => alice.close());
  for (let i = 0; i < 3; i++) assert.deepEqual(await call(alice, 'check_inbox', { max: 1 }), { messages: [] });
  const over = await call(alice, 'check_inbox', { max: 1 });
  assert.equal(over.error.code, 'rate_limited');
  assert.equal(typeof over.error.details.retry_after_sec, 'number');
  // The same limit as the HTTP routes: the agent's next API call is refused too.
  const http = await s.api.core.app.inject({ method: 'GET', url: '/v1/inbox', headers: a.auth });
  assert.equal(http.statusCode, 429);
});

test('/mcp: a check_inbox parked with wait_sec whose bearer token is revoked gets nothing when mail wakes it', async (t) => {
  const s = await startSdkServer({ ADMP_AUTH_CACHE_SEC: '1' });
  t.after(() => s.close());
  const [a, b] = [await s.api.agent('alice'), await s.api.agent('bob')];
  const bob = await overHttp(s.url, b.token);
  t.after(() => bob.close());
  const looks = async () =>
    (await s.api.core.metrics.pullSeconds.get()).values.find((v) => v.metricName === 'admp_pull_seconds_count')
      ?.value ?? 0;
  const parked = call(bob, 'check_inbox', { max: 1, wait_sec: 20 });
  for (const end = Date.now() + 30_000; (await looks()) < 1; await new Promise((r) => setTimeout(r, 50)))
    assert.ok(Date.now() < end, 'the poll did not park');

  await rotateCredentials(s.api.db.pool, 'bob', ['token']);
  await new Promise((r) => setTimeout(r, 1100)); // the token cache (1 s) has let the revocation through
  const sent = await s.api.core.app.inject({
    method: 'POST',
    url: '/v1/messages',
    headers: a.auth,
    payload: { to: b.address, type: 'note', body: { after: 'revocation' } },
  });
  assert.equal(sent.statusCode, 201, sent.body);
  const r = await parked;
  assert.equal(r.error?.code, 'unauthorized', JSON.stringify(r));
  const { rows } = await s.api.db.pool.query("SELECT status FROM message WHERE to_agent_id = 'bob'");
  assert.deepEqual(
    rows.map((x) => x.status),
    ['delivered'],
    'the message waits for a valid credential',
  );
});
