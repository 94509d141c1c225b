// Refused ingress mail reaches the operator's list (GET /admin/v1/refusals) with the
// reason, and the list is pruned to its newest rows.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApi } from '../helpers/api.js';
import { agentMail, signer, trust } from '../helpers/agent-mail.js';
import { pruneRefusals, recordRefusals } from '../../src/db/refusals.js';

const TOKEN = 'ingress-secret-for-refusal-tests-0123';
const PARTNER = 'agents.partner.example';

test('a refused mail is listed with its road, sender, recipient and reason; the log is pruned', async (t) => {
  const api = await startTestApi({ ADMP_INGRESS_TOKEN: TOKEN });
  t.after(() => api.close());
  const bob = await api.agent('bob');
  const admin = await api.core.admin.createAdminToken('ops', true);
  const partner = signer(`worker@${PARTNER}`);
  await trust(api.db.pool, partner);
  const r = await api.core.app.inject({
    method: 'POST',
    url: '/ingress/rspamd',
    payload: await agentMail(partner, { to: bob.address, type: 'task.request', body: {} }),
    headers: {
      'content-type': 'message/rfc822',
      authorization: `Bearer ${TOKEN}`,
      'x-envelope-from': `worker@${PARTNER}`,
      'x-envelope-to': bob.address,
      'x-rspamd-auth': JSON.stringify({ dkim: [{ result: 'reject', domain: PARTNER }] }),
    },
  });
  assert.equal(r.statusCode, 422, r.body);

  let listed: { road: string; sender: string; recipient: string; code: string; reason: string }[] = [];
  for (let i = 0; i < 50 && listed.length === 0; i++) {
    await new Promise((ok) => setTimeout(ok, 50)); // recorded after the answer, without waiting
    listed = (
      await api.core.app.inject({ url: '/admin/v1/refusals', headers: { authorization: `Bearer ${admin.token}` } })
    ).json();
  }
  assert.equal(listed.length, 1);
  assert.deepEqual(
    [listed[0]!.road, listed[0]!.sender, listed[0]!.recipient, listed[0]!.code],
    ['rspamd', `worker@${PARTNER}`, bob.address, 'domain_auth_failed'],
  );
  assert.match(listed[0]!.reason, /no DKIM pass aligned/);

  await recordRefusals(
    api.db.pool,
    Array.from({ length: 30 }, (_, i) => ({ road: 'lmtp', sender: null, recipient: null, code: 'x', reason: `${i}` })),
  );
  await pruneRefusals(api.db.pool, 10, 7);
  const { rows } = await api.db.pool.query('SELECT count(*)::int AS n FROM ingress_refusal');
  assert.equal(rows[0].n, 10, 'the newest 10 are kept');
});
