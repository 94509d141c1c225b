// The agents page's webhook endpoints in a real browser: listed with their state, a
// disabled one with the reason, enabled again and removed by an operator.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildConsole } from '../../console/build.js';
import { createAdminToken } from '../../src/db/admin-tokens.js';
import { startTestApi } from '../helpers/api.js';
import { launchBrowser } from '../helpers/browser.js';

test('console: webhook endpoints on the agents page, disabled with why, enabled again, removed', async (t) => {
  const browser = await launchBrowser(t);
  if (!browser) return;
  await buildConsole();
  const api = await startTestApi({ ADMP_WEBHOOKS: 'false' });
  t.after(() => api.close());
  const base = await api.core.app.listen({ host: '127.0.0.1', port: 0 });
  await api.agent('bob');
  const url = 'https://hooks.example.com/bob';
  const ep = await api.core.admin.webhooks.register('bob', { url, types: ['task.request'] });
  await api.core.admin.webhooks.disable(ep.id, 'the endpoint answered 410 Gone');
  const rw = await createAdminToken(api.db.pool, 'operator', false);

  const page = await browser.newPage();
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(`${base}/console/`);
  await page.getByLabel('Admin token').fill(rw.token);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('link', { name: 'Agents' }).click();
  const table = page.getByRole('table', { name: 'webhook endpoints' });
  await table.getByRole('cell', { name: url, exact: true }).waitFor();
  assert.match(
    await table.innerText(),
    /bob\s+https:\/\/hooks\.example\.com\/bob\s+task\.request\s+disabled .*410 Gone/,
  );

  await page.getByRole('button', { name: `Enable webhook ${url}` }).click();
  await table.getByRole('cell', { name: 'active', exact: true }).waitFor();
  assert.equal((await api.core.admin.webhooks.list('bob'))[0]!.disabled_at, null);

  await page.getByRole('button', { name: `Remove webhook ${url}` }).click();
  await page.getByText('No agent has a webhook endpoint').waitFor();
  assert.deepEqual(await api.core.admin.webhooks.list(), []);
  assert.deepEqual(pageErrors, []);
});
