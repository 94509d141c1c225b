// "Connect an agent" with webhooks from the SDK, over a real listener: the agent
// registers its endpoint, a message sent to it arrives verified by standardwebhooks and
// is acked, the endpoint is listed and removed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { AdmpApiError, AdmpClient } from '../../src/sdk/index.js';
import { startSdkServer } from '../sdk/server.js';
import { startReceiver } from './receiver.js';

test('the SDK registers, lists and removes a webhook endpoint that receives signed pushes', async (t) => {
  const s = await startSdkServer({ ADMP_FETCH_ALLOW: '127.0.0.1' });
  const receiver = await startReceiver();
  t.after(async () => {
    await s.close();
    await receiver.close();
  });
  const [a, b] = [await s.api.agent('alice'), await s.api.agent('bob')];
  const alice = new AdmpClient({ baseUrl: s.url, credentials: { token: a.token } });
  const bob = new AdmpClient({ baseUrl: s.url, credentials: { token: b.token } });

  const ep = await bob.addWebhook({ url: `${receiver.url}/bob`, types: ['task.request'] });
  receiver.secret = ep.secret;
  const sent = await alice.send({ to: b.address, type: 'task.request', body: { ok: true } });
  for (let i = 0; i < 200 && (await bob.status(sent.id)).status !== 'acked'; i++) await sleep(25);
  assert.equal((await bob.status(sent.id)).status, 'acked');
  assert.deepEqual(
    receiver.received.map((r) => [r.id, r.payload.data.body]),
    [[sent.id, { ok: true }]],
  );

  assert.deepEqual(
    (await bob.webhooks()).map((e) => [e.id, e.url, e.types]),
    [[ep.id, `${receiver.url}/bob`, ['task.request']]],
  );
  await assert.rejects(bob.addWebhook({ url: 'http://10.0.0.1/x' }), (e: AdmpApiError) => e.code === 'bad_request');
  await assert.rejects(alice.removeWebhook(ep.id), (e: AdmpApiError) => e.code === 'not_found', "not alice's");
  // At most 10 endpoints per agent.
  for (let i = 2; i <= 10; i++) await bob.addWebhook({ url: `${receiver.url}/bob/${i}`, types: ['none'] });
  await assert.rejects(
    bob.addWebhook({ url: `${receiver.url}/bob/11` }),
    (e: AdmpApiError) => e.code === 'bad_request' && /at most 10/.test(e.message),
  );
  for (const e of await bob.webhooks()) await bob.removeWebhook(e.id);
  assert.deepEqual(await bob.webhooks(), []);
});
