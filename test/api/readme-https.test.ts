// The README's "HTTPS and mutual TLS" walk-through, run as written: its openssl commands
// make the private CA, the server certificate and alice's client certificate; its curl
// commands reach the API over HTTPS (HTTP/1.1 and --http2) trusting only that CA; its
// `admp agent cert add` binds alice, after which curl needs her certificate as well. The
// server listens on a free port instead of 8080 and trusts the client CA from the start
// (an agent without a binding needs no certificate, so the first curls are unchanged).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startTestApi } from '../helpers/api.js';
import { requireBinaries } from '../helpers/requires.js';

const run = promisify(execFile);
const ROOT = new URL('../../', import.meta.url).pathname;
const MAIN = join(ROOT, 'src/cli/main.ts');

/** The sh blocks of the README section `title`. */
function shBlocks(title: string): string[] {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf(`\n### ${title}\n`);
  assert.ok(start >= 0, `README has a section "${title}"`);
  const end = readme.indexOf('\n### ', start + 1);
  const section = readme.slice(start, end < 0 ? undefined : end);
  return [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

/** The commands of a block up to and including its `cd ..` (making files), and the rest. */
function split(block: string): { make: string; rest: string[] } {
  const lines = block.split('\n');
  const cut = lines.indexOf('cd ..');
  assert.ok(cut > 0, 'the block makes its files in tls/ and returns');
  return {
    make: lines.slice(0, cut + 1).join('\n'),
    rest: lines.slice(cut + 1).filter((l) => l.trim() && !l.startsWith('#')),
  };
}

test('README HTTPS walk-through: openssl, curl over HTTPS with a private CA, agent cert add, mutual TLS', async (t) => {
  if (!requireBinaries(t, ['openssl', 'curl', 'bash'])) return;
  const dir = mkdtempSync(join(tmpdir(), 'admp-readme-https-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const sh = (script: string, env: Record<string, string> = {}) =>
    run('bash', ['-eo', 'pipefail', '-c', script], { cwd: dir, env: { PATH: process.env.PATH ?? '', ...env } });
  const [serverBlock, clientBlock] = shBlocks('HTTPS and mutual TLS');
  assert.ok(serverBlock && clientBlock, 'two sh blocks: the server certificate, then mutual TLS');

  const server = split(serverBlock);
  await sh(server.make);
  const api = await startTestApi({
    ADMP_HTTP_TLS_CERT: join(dir, 'tls/server.pem'),
    ADMP_HTTP_TLS_KEY: join(dir, 'tls/server.key'),
    ADMP_HTTP_TLS_CLIENT_CA: join(dir, 'tls/ca.pem'),
    ADMP_AUTH_CACHE_SEC: '0',
  });
  t.after(() => api.close());
  await api.core.app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = api.core.app.server.address() as { port: number };
  const alice = await api.agent('alice');
  const env = { A: alice.token };
  const here = (line: string) => line.replaceAll('https://localhost:8080', `https://localhost:${port}`);

  const curls = server.rest.filter((l) => l.startsWith('curl '));
  assert.equal(curls.length, 2, 'HTTP/1.1 and HTTP/2');
  for (const c of curls) {
    const { stdout } = await sh(here(c), env);
    assert.equal(JSON.parse(stdout).agent, alice.address, c);
  }
  await assert.rejects(
    sh(here(curls[0]!).replace('--cacert tls/ca.pem ', '')),
    'without the private CA curl refuses the server',
  );

  const client = split(clientBlock);
  await sh(client.make);
  const bind = client.rest.find((l) => l.startsWith('npx admp agent cert add'));
  assert.ok(bind, 'the block binds alice with admp agent cert add');
  // npx admp, from this checkout (the block runs in the temp directory).
  await sh(bind.replace('npx admp', `${process.execPath} --import ${import.meta.resolve('tsx')} ${MAIN}`), {
    DATABASE_URL: api.db.url,
    ADMP_DOMAINS: api.config.domains.join(','),
    ADMP_MIGRATE_ON_START: 'false',
  });
  const withCert = client.rest.find((l) => l.startsWith('curl ') && l.includes('--cert tls/alice.pem'));
  assert.ok(withCert, 'the block calls the API with alice certificate');
  assert.equal(JSON.parse((await sh(here(withCert), env)).stdout).agent, alice.address, 'certificate and credential');
  const without = JSON.parse((await sh(here(curls[0]!), env)).stdout);
  assert.equal(without.error.code, 'client_certificate_required', 'bound: the credential alone is refused');
});
