// Operator commands that would leave something that can never work are refused with what
// to do: an agent in a domain we do not receive mail for, a key for an agent that does not exist.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApi } from '../helpers/api.js';

test('agent add outside ADMP_DOMAINS and key create for an unknown agent are refused', async (t) => {
  const api = await startTestApi();
  t.after(() => api.close());
  const { admin } = api.core;
  await assert.rejects(admin.addAgent('dave', 'agents.elsewhere.test'), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'bad_request');
    assert.match(err.message, /not one of ADMP_DOMAINS \(agents\.test, agents\.other\.test\)/);
    return true;
  });
  assert.equal((await admin.addAgent('dave', 'AGENTS.OTHER.TEST')).domain, 'agents.other.test');
  await assert.rejects(admin.createKey('ghost'), /no agent ghost@agents\.test: add it first/);
  // dave exists, but in the other domain: a key for dave@agents.test is refused too.
  await assert.rejects(admin.createKey('dave@agents.test'), /no agent dave@agents\.test/);
  const { rows } = await api.db.pool.query('SELECT count(*)::int AS n FROM agent_key');
  assert.equal(rows[0].n, 0);
});
