// The operator console in a real browser (Debian's chromium, headless) against a real
// server and database with real traffic: partner mail through /ingress/rspamd, agent
// sends over HTTP, a dead letter made by the sweeper. Writes the README's screenshots
// into docs/.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { buildConsole } from '../../console/build.js';
import { createAdminToken } from '../../src/db/admin-tokens.js';
import { startTestApi } from '../helpers/api.js';
import { agentMail, signer, trust } from '../helpers/agent-mail.js';
import { launchBrowser } from '../helpers/browser.js';
import { startDns } from '../helpers/dns.js';

const PARTNER = 'agents.partner.example';
const INGRESS = 'ingress-secret-for-console-tests-0123';
const DOCS = new URL('../../docs/', import.meta.url).pathname;

async function setup(t: { after(fn: () => Promise<void> | void): void }, env: Record<string, string> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'admp-console-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(
    join(dir, 'policy.yaml'),
    `rules:\n  - { from: "*@${PARTNER}", to: "*@agents.test", types: ["task.*"], action: allow }\n`,
  );
  const dns = await startDns();
  t.after(() => dns.stop());
  await buildConsole();
  const api = await startTestApi({
    ADMP_INGRESS_TOKEN: INGRESS,
    ADMP_POLICY_FILE: join(dir, 'policy.yaml'),
    ADMP_KEYS_DIR: join(dir, 'keys'),
    ADMP_DNS_SERVERS: dns.server,
    ADMP_MAX_ATTEMPTS: '1',
    ADMP_RECLAIM_INTERVAL_MS: '200',
    ...env,
  });
  t.after(() => api.close());
  const base = await api.core.app.listen({ host: '127.0.0.1', port: 0 });
  return { api, base };
}

/** Every form control has a label, every button a name: what a screen reader (and getByLabel) needs. */
async function assertLabelled(page: Page, where: string) {
  const unlabelled = await page.evaluate(() =>
    [...document.querySelectorAll('input, select, textarea, button')]
      .filter((el) => {
        const named = el.getAttribute('aria-label') || (el as HTMLInputElement).labels?.length;
        return el.tagName === 'BUTTON' ? !(el.textContent?.trim() || named) : !named;
      })
      .map((el) => el.outerHTML),
  );
  assert.deepEqual(unlabelled, [], `unlabelled controls on ${where}`);
}

test('console: log in, find by correlation id, verdicts, redrive, policy dry-run, read-only, keyboard', async (t) => {
  const browser = await launchBrowser(t);
  if (!browser) return;
  const { api, base } = await setup(t);
  const [alice, bob, carol] = [await api.agent('alice'), await api.agent('bob'), await api.agent('carol')];
  const rw = await createAdminToken(api.db.pool, 'operator', false);
  const ro = await createAdminToken(api.db.pool, 'viewer', true);

  // Real traffic: signed partner mail through the Rspamd road, agent sends, a dead letter.
  const partner = signer(`worker@${PARTNER}`);
  await trust(api.db.pool, partner);
  const mail = await api.core.app.inject({
    method: 'POST',
    url: '/ingress/rspamd',
    payload: await agentMail(partner, {
      to: bob.address,
      type: 'task.request',
      subject: 'Quote for order 4711',
      body: { order: 4711 },
      correlation_id: 'order-4711',
    }),
    headers: {
      'content-type': 'message/rfc822',
      authorization: `Bearer ${INGRESS}`,
      'x-envelope-from': `worker@${PARTNER}`,
      'x-envelope-to': bob.address,
      'x-rspamd-queue-id': 'Q4711',
      'x-rspamd-auth': JSON.stringify({ dkim: [{ result: 'allow', domain: PARTNER, selector: 's1' }] }),
    },
  });
  assert.equal(mail.statusCode, 200, mail.body);
  const mailId = mail.json().stored[0].id as string;
  for (let i = 0; i < 5; i++)
    await api.core.app.inject({
      method: 'POST',
      url: '/v1/messages',
      headers: alice.auth,
      payload: { to: bob.address, type: 'task.request', body: { i }, correlation_id: `batch-${i}` },
    });
  const doomed = await api.core.app.inject({
    method: 'POST',
    url: '/v1/messages',
    headers: alice.auth,
    payload: { to: carol.address, type: 'task.request', subject: 'will die', body: {} },
  });
  const deadId = doomed.json().id as string;
  const pull = (visibility: number) =>
    api.core.app.inject({
      method: 'POST',
      url: '/v1/inbox/pull',
      headers: carol.auth,
      payload: { max: 1, visibility_timeout: visibility },
    });
  assert.equal((await pull(1)).json().messages.length, 1);
  // One attempt allowed: when the lease runs out, the sweeper makes it a dead letter.
  for (let i = 0; i < 50; i++) {
    const { rows } = await api.db.pool.query('SELECT status FROM message WHERE id = $1', [deadId]);
    if (rows[0].status === 'dead') break;
    await new Promise((ok) => setTimeout(ok, 100));
  }

  const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  // Script errors and CSP violations; a refused API call (the read-only check below) is expected.
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) pageErrors.push(m.text());
  });

  // Log in with the keyboard only: the token field takes focus by Tab, Enter submits.
  await page.goto(`${base}/console/`);
  await assertLabelled(page, 'login');
  await page.keyboard.press('Tab');
  assert.equal(
    await page.evaluate(() => document.activeElement?.id),
    await page.getByLabel('Admin token').getAttribute('id'),
  );
  await page.keyboard.type(rw.token);
  await page.keyboard.press('Enter');
  await page.getByRole('navigation', { name: 'pages' }).waitFor();
  await page.getByRole('heading', { name: 'Queue depth by status' }).waitFor();
  await page.getByRole('img', { name: 'messages by status' }).waitFor();
  await assertLabelled(page, 'overview');
  await page.screenshot({ path: join(DOCS, 'console-overview.png'), fullPage: true });

  // Find the partner's message by correlation id; open it; read its verdicts.
  await page.getByRole('link', { name: 'Messages' }).click();
  await assertLabelled(page, 'messages');
  await page.getByLabel('Correlation id').fill('order-4711');
  await page.getByLabel('Correlation id').press('Enter');
  await page.waitForURL(/correlation_id=order-4711/);
  const rows = page.locator('tbody tr');
  await page.waitForFunction(() => document.querySelectorAll('tbody tr').length === 1);
  assert.match(await rows.first().innerText(), /worker@agents\.partner\.example/);
  await rows.first().getByRole('link').click();
  await page.getByRole('heading', { name: `Message ${mailId}` }).waitFor();
  const verdicts = await page.getByLabel('verdicts', { exact: true }).innerText();
  assert.match(verdicts, new RegExp(`${PARTNER.replace(/\./g, '\\.')}: pass`), verdicts);
  assert.match(verdicts, new RegExp(`dkim:${PARTNER.replace(/\./g, '\\.')}`));
  assert.match(verdicts, new RegExp(partner.kid));
  assert.match(verdicts, /rule 1 \(\*@agents\.partner\.example -> \*@agents\.test\)/);
  assert.match(await page.locator('ol.timeline').innerText(), /delivered/);
  await page.screenshot({ path: join(DOCS, 'console-message.png'), fullPage: true });

  // Redrive the dead letter, then see carol pull it.
  await page.getByRole('link', { name: 'Dead letters' }).click();
  await page.getByLabel(`select message ${deadId}`).check();
  await assertLabelled(page, 'dead letters');
  await page.screenshot({ path: join(DOCS, 'console-dead-letters.png'), fullPage: true });
  await page.getByRole('button', { name: 'Redrive selected' }).click();
  await page.getByRole('status').filter({ hasText: 'redriven: 1' }).waitFor();
  const again = (await pull(30)).json().messages;
  assert.deepEqual(
    again.map((m: { id: string }) => m.id),
    [deadId],
    'the redriven message is pulled',
  );
  await page.goto(`${base}/console/#/messages/${deadId}`);
  await page.getByText('lease', { exact: false }).first().waitFor();
  assert.match(await page.locator('dl.facts').first().innerText(), /leased/);
  assert.match(await page.locator('ol.timeline').innerText(), /redriven/);

  // Add a policy rule and dry-run it.
  await page.getByRole('link', { name: 'Policy' }).click();
  await assertLabelled(page, 'policy');
  const add = page.getByRole('form', { name: 'add a rule' });
  await add.getByLabel('From (glob)').fill('*@agents.vendor.example');
  await add.getByLabel('To (glob)').fill('bob@agents.test');
  await add.getByLabel('Types (globs, comma separated)').fill('invoice.*');
  await add.getByRole('button', { name: 'Add rule' }).click();
  await page.getByRole('cell', { name: '*@agents.vendor.example' }).waitFor();
  const ruleId = (await api.db.pool.query('SELECT max(id) AS id FROM policy_rule')).rows[0].id;
  const dry = page.getByRole('form', { name: 'policy dry run' });
  await dry.getByLabel('Sender address').fill('billing@agents.vendor.example');
  await dry.getByLabel('Recipient address').fill('bob@agents.test');
  await dry.getByLabel('Message type').fill('invoice.issued');
  await dry.getByRole('button', { name: 'Dry run' }).click();
  await page
    .getByRole('status')
    .filter({ hasText: `allowed by db:${ruleId}` })
    .waitFor();
  await dry.getByLabel('Message type').fill('task.request');
  await dry.getByRole('button', { name: 'Dry run' }).click();
  await page.getByRole('status').filter({ hasText: 'refused (unknown_sender)' }).waitFor();
  await page.screenshot({ path: join(DOCS, 'console-policy.png'), fullPage: true });

  // Agents: rotate bob's signing key twice; the first key retires, both are listed, the record to publish is shown.
  await page.getByRole('link', { name: 'Agents' }).click();
  await assertLabelled(page, 'agents');
  const rotateKey = page.getByRole('button', { name: 'Rotate signing key of bob' });
  await rotateKey.click();
  await page.getByRole('status').filter({ hasText: 'It had no older key' }).waitFor();
  await rotateKey.click();
  const shown = page.getByRole('status').filter({ hasText: 'keep verifying until' });
  await shown.waitFor();
  const bobKeys = (
    await api.db.pool.query<{ kid: string; not_after: Date | null }>(
      "SELECT kid, not_after FROM agent_key WHERE agent = 'bob@agents.test' ORDER BY not_before, created_at",
    )
  ).rows;
  assert.equal(bobKeys.length, 2);
  assert.ok(bobKeys[0]!.not_after && bobKeys[1]!.not_after === null, 'the first key retires, the new one does not');
  assert.match(await shown.innerText(), new RegExp(`_agentkeys\\.agents\\.test TXT "kid=${bobKeys[1]!.kid}; x=`));
  const listedKeys = await page.getByRole('list', { name: 'signing keys of bob' }).innerText();
  for (const k of bobKeys) assert.ok(listedKeys.includes(k.kid), listedKeys);
  await page.screenshot({ path: join(DOCS, 'console-agents.png'), fullPage: true });

  // A read-only token: sees everything, its change controls are off, and the server refuses a change anyway.
  await page.getByRole('button', { name: 'Log out' }).click();
  await page.getByLabel('Admin token').fill(ro.token);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByText('viewer (read-only)').waitFor();
  await page.getByRole('link', { name: 'Policy' }).click();
  await page.getByRole('cell', { name: '*@agents.vendor.example' }).waitFor();
  assert.equal(await page.getByRole('button', { name: 'Add rule' }).isDisabled(), true);
  assert.equal(await page.getByRole('button', { name: `Remove rule ${ruleId}` }).isDisabled(), true);
  await page.getByRole('link', { name: 'Agents' }).click();
  assert.equal(await page.getByRole('button', { name: 'Rotate signing key of bob' }).isDisabled(), true);
  const refused = await page.evaluate(async () => {
    const r = await fetch('/admin/v1/policy/rules', {
      method: 'POST',
      headers: {
        authorization: `Bearer ${sessionStorage.getItem('admp-admin-token')}`,
        'content-type': 'application/json',
      },
      body: JSON.stringify({ from: '*', to: '*', action: 'allow' }),
    });
    return { status: r.status, body: await r.json() };
  });
  assert.equal(refused.status, 403);
  assert.equal(refused.body.error.code, 'forbidden');
  assert.equal((await api.db.pool.query('SELECT count(*)::int AS n FROM policy_rule')).rows[0].n, 1);

  // Keyboard: from a fresh load, Tab walks the page links, then the search form's labelled controls, in order.
  await page.goto(`${base}/console/#/messages`);
  await page.reload();
  await page.getByLabel('Agent (inbox)').waitFor();
  const focused: string[] = [];
  for (let i = 0; i < 10; i++) {
    await page.keyboard.press('Tab');
    focused.push(
      await page.evaluate(() => {
        const el = document.activeElement as HTMLInputElement | null;
        return el?.labels?.[0]?.textContent?.trim() || el?.textContent?.trim() || '';
      }),
    );
  }
  assert.deepEqual(focused, [
    'Overview',
    'Agents',
    'Tenants',
    'Messages',
    'Dead letters',
    'Policy',
    'Log out',
    'Agent (inbox)',
    'Status',
    'Channel',
  ]);
  assert.deepEqual(pageErrors, [], 'no script errors (a CSP violation would show here)');
});

test('console tenants: each tenant with its agents and their inboxes; address tokens issued and revoked', async (t) => {
  const browser = await launchBrowser(t);
  if (!browser) return;
  const { api, base } = await setup(t, { ADMP_DOMAINS: 'agents.test,*.tenants.test' });
  const acme = 'acme.tenants.test';
  await api.core.admin.addTenant('acme');
  await api.core.admin.addTenant('globex');
  await api.core.admin.addAgent('bob', acme);
  const alice = await api.agent('alice');
  const sent = await api.core.app.inject({
    method: 'POST',
    url: '/v1/messages',
    headers: alice.auth,
    payload: { to: `bob@${acme}`, type: 'note', subject: 'for acme', body: {} },
  });
  assert.equal(sent.statusCode, 201, sent.body);
  const rw = await createAdminToken(api.db.pool, 'operator', false);
  const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
  await page.goto(`${base}/console/`);
  await page.getByLabel('Admin token').fill(rw.token);
  await page.getByLabel('Admin token').press('Enter');
  await page.getByRole('link', { name: 'Tenants' }).click();
  await page.getByRole('link', { name: acme }).click();
  await page.getByRole('heading', { name: `Tenant ${acme}` }).waitFor();
  await assertLabelled(page, 'tenant');
  await page.getByRole('button', { name: `New address token for bob@${acme}` }).click();
  const item = page.getByRole('listitem').filter({ hasText: /t-[0-9a-f]{32}@acme/ });
  await item.waitFor();
  const address = /t-[0-9a-f]{32}@acme\.tenants\.test/.exec(await item.innerText())![0];
  await page.getByRole('button', { name: `Revoke ${address}` }).click();
  await page.getByRole('listitem').filter({ hasText: '(revoked' }).waitFor();
  assert.equal((await api.core.admin.listAddressTokens(`bob@${acme}`))[0]!.revoked_at !== null, true);
  // Remove is offered only for a tenant without agents.
  assert.equal(await page.getByRole('button', { name: `Remove ${acme}` }).isDisabled(), true);
  await page.getByRole('button', { name: 'Remove globex.tenants.test' }).click();
  await page.getByRole('link', { name: 'globex.tenants.test' }).waitFor({ state: 'detached' });
  // The tenant agent's inbox: the messages page filtered by its id.
  await page.getByRole('link', { name: `inbox of bob@${acme}` }).click();
  await page.waitForURL(/agent=bob%40acme\.tenants\.test/);
  await page.getByRole('cell', { name: 'for acme' }).waitFor();
});
