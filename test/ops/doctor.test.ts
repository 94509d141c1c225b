// `admp doctor` against the real local components of the ingress tests: a running
// bridge, a private Postfix with the private Rspamd as its milter and the shipped
// plugin, and a loopback DNS server that plays the public zone of the agents domain.
// Only public DNS itself is not exercised.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { requireBinaries } from '../helpers/requires.js';
import { startDns } from '../helpers/dns.js';
import { dkimKey } from '../helpers/mail.js';
import { renderBridgeConfig, startRspamd } from '../helpers/rspamd.js';
import { startPostfix } from '../helpers/postfix.js';
import { createTestDatabase } from '../helpers/db.js';
import { freePort } from '../helpers/ports.js';
import { signer } from '../helpers/agent-mail.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { startServer } from '../../src/app/server.js';
import { addAgent } from '../../src/db/agents.js';
import { insertLocalKey, listValidKeys } from '../../src/db/keys.js';
import { agentKeyTxtRecords } from '../../src/keys/dns.js';
import { doctor, type DoctorFlags } from '../../src/doctor/doctor.js';

const run = promisify(execFile);
const REPO = join(import.meta.dirname, '..', '..');
const DOMAIN = 'agents.test';
const TOKEN = 'doctor-ingress-token-0123456789';

test('admp doctor passes on a working installation and names what breaks', async (t) => {
  if (!requireBinaries(t, ['rspamd', 'rspamc', 'postfix', 'postconf', 'postmap'])) return;
  const db = await createTestDatabase();
  t.after(() => db.drop());
  // Our agents' published keys: one agent with a key, in DNS and in the bridge's JWKS.
  await addAgent(db.pool, 'alice', DOMAIN);
  await insertLocalKey(db.pool, {
    agent: `alice@${DOMAIN}`,
    kid: 'alice-1',
    publicKey: signer(`alice@${DOMAIN}`).publicKey,
  });
  const dkim = dkimKey(DOMAIN, 'dkim');
  const dns = await startDns({ txt: { [dkim.dnsName]: dkim.txt } });
  t.after(() => dns.stop());
  dns.setMx(DOMAIN, 'mx.test.example');
  const txt = agentKeyTxtRecords(await listValidKeys(db.pool, { source: 'local' }, new Date()));
  dns.setTxt(txt[0]!.name, ...txt.map((r) => r.text));

  const [httpPort, lmtpPort] = [await freePort(), await freePort()];
  const env = {
    DATABASE_URL: db.url,
    ADMP_DOMAINS: DOMAIN,
    ADMP_HTTP_LISTEN: `127.0.0.1:${httpPort}`,
    ADMP_LMTP_LISTEN: `127.0.0.1:${lmtpPort}`,
    ADMP_METRICS_LISTEN: '',
    ADMP_INGRESS_TOKEN: TOKEN,
    ADMP_DNS_SERVERS: dns.server,
    ADMP_JWKS_SCHEME: 'http',
    ADMP_JWKS_PORT: String(httpPort),
    ADMP_LOG_LEVEL: 'silent',
    ADMP_POLICY_FILE: '',
  };
  const config = loadConfig(env);
  const bridge = await startServer(config, createLogger('silent'));
  t.after(() => bridge.stop());
  const rspamd = await startRspamd({
    dns: dns.server,
    pluginConfig: renderBridgeConfig({
      url: `${bridge.httpUrl}/ingress/rspamd`,
      token: TOKEN,
      domain: DOMAIN,
      timeout: 5,
    }),
  });
  t.after(() => rspamd.stop());
  const postfix = await startPostfix({
    milter: rspamd.milter,
    relayDomains: [DOMAIN],
    transport: { [DOMAIN]: `lmtp:inet:127.0.0.1:${lmtpPort}` },
  });
  t.after(() => postfix.stop());
  const keyDir = mkdtempSync(join(tmpdir(), 'admp-doctor-'));
  t.after(() => rmSync(keyDir, { recursive: true, force: true }));
  const keyFile = join(keyDir, 'dkim.pem');
  writeFileSync(keyFile, dkim.privateKeyPem);

  const flags: DoctorFlags = {
    bridgeUrl: bridge.httpUrl,
    postfixConfigDir: join(postfix.dir, 'etc'),
    rspamdController: `127.0.0.1:${rspamd.ports.controller}`,
    smtp: `127.0.0.1:${postfix.port}`,
    dkimKey: keyFile,
    dkimSelector: 'dkim',
    jwksAddress: '127.0.0.1',
    timeout: '20',
  };
  const results = await doctor(config, flags);
  for (const r of results)
    assert.ok(r.ok, `${r.name}: ${r.detail}\n${r.fix ?? ''}\n${postfix.log().split('\n').slice(-10).join('\n')}`);
  assert.equal(results.length, 8);
  assert.match(results.find((r) => r.name.startsWith('a signed test message'))!.detail, /stored as [0-9a-f-]{36}/);
  assert.match(
    results.find((r) => r.name.startsWith('Postfix'))!.detail,
    new RegExp(`lmtp:inet:127\\.0\\.0\\.1:${lmtpPort}`),
  );
  const left = await db.pool.query(
    "SELECT (SELECT count(*)::int FROM message) AS messages, (SELECT count(*)::int FROM message_search) AS entries, (SELECT count(*)::int FROM agent WHERE id LIKE 'admp-doctor-%') AS agents, (SELECT count(*)::int FROM agent_key WHERE agent LIKE 'admp-doctor-%') AS keys",
  );
  assert.deepEqual(
    left.rows[0],
    { messages: 0, entries: 0, agents: 0, keys: 0 },
    'the test message, its search entry, agent and key are removed again',
  );

  // The command itself: a key missing from DNS and a plugin that is not there fail, with a fix, exit 1, --json.
  dns.setTxt(txt[0]!.name);
  const argv = [
    '--import',
    'tsx',
    join(REPO, 'src', 'cli', 'main.ts'),
    'doctor',
    '--json',
    '--bridge-url',
    bridge.httpUrl,
    '--postfix-config-dir',
    flags.postfixConfigDir!,
    '--rspamd-controller',
    flags.rspamdController!,
    '--rspamd-symbol',
    'NO_SUCH_SYMBOL',
    '--smtp',
    flags.smtp!,
    '--dkim-key',
    keyFile,
    '--jwks-address',
    '127.0.0.1',
    '--timeout',
    '20',
  ];
  const out = await run(process.execPath, argv, { cwd: REPO, env: { ...process.env, ...env } }).then(
    (r) => ({ code: 0, stdout: r.stdout }),
    (e: { code: number; stdout: string }) => ({ code: e.code, stdout: e.stdout }),
  );
  assert.equal(out.code, 1, out.stdout);
  const report = JSON.parse(out.stdout) as { ok: boolean; checks: { name: string; ok: boolean; fix?: string }[] };
  assert.equal(report.ok, false);
  const failed = report.checks.filter((c) => !c.ok);
  assert.deepEqual(
    failed.map((c) => c.name),
    ['Rspamd has the agents_bridge plugin loaded', 'DNS _agentkeys TXT serves our current keys'],
  );
  assert.ok(
    failed.every((c) => c.fix),
    'every failure says what to do',
  );
  assert.equal(report.checks.filter((c) => c.ok).length, 6);
});
