// README "ADMP without Mailcow", its Steps run as written: compose/docker-compose.yml brought up
// with Compose v2 (`up -d --build`) on a private Docker engine in a network namespace of its
// own (the compose network and the published ports exist only there), in a copy of the
// repository's build inputs. The certificate comes from a stand-in for certbot's live/ folder
// (root-owned key, mode 0600, as certbot leaves it) and is copied by the README's own command;
// the README's `$EDITOR compose/.env` runs an editor script that sets the password. Then /readyz,
// the SMTP edge's banner on the published port 25, an agent added by the README's command, a
// send and a pull through the published API port, and the README's `down`.
//
// The engine in its namespace cannot reach the npm registry, so the image's `npm ci` steps must
// come from the build cache: it runs on the warm data root of test/helpers/images.ts (made once
// per lockfile by an engine on the host's network), used in place, under its lock (copying 1.7 GB
// would cost minutes; `down -v` leaves no container or volume behind).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it, type TestContext } from 'node:test';
import { IMAGE_CONTEXT } from '../../src/installer/run.js';
import { startDockerd, type TestDockerd } from '../helpers/dockerd.js';
import { lockDataRoot, warmDataRoot } from '../helpers/images.js';
import { readmeCommands } from '../helpers/readme-commands.js';
import { requireBinaries } from '../helpers/requires.js';
import { waitFor } from '../helpers/wait-for.js';
import { REPO } from './checkout.js';

const run = promisify(execFile);
const BINARIES = ['dockerd', 'containerd', 'runc', 'debootstrap', 'tar', 'ip', 'nsenter', 'docker', 'openssl', 'curl'];
const MX = 'mx.agents.example.com';
/** Where the README's commands find certbot's files. */
const README_LIVE = `/etc/letsencrypt/live/${MX}`;

/** The build inputs of compose/Dockerfile and compose/ itself, as a clone has them (no build output). */
function copyClone(dir: string): void {
  for (const f of [...IMAGE_CONTEXT, '.dockerignore', 'compose'])
    cpSync(join(REPO, f), join(dir, f), {
      recursive: true,
      filter: (src) =>
        !/\/(dist|node_modules)$/.test(src) && !src.endsWith('/compose/.env') && !src.includes('/compose/certs'),
    });
}

describe('README "ADMP without Mailcow": compose/docker-compose.yml up, used, down', () => {
  let d: TestDockerd | undefined;
  let startError: unknown;
  let unlock: (() => void) | undefined;
  before(async () => {
    try {
      const started = Date.now();
      const root = await warmDataRoot();
      unlock = await lockDataRoot(root);
      d = await startDockerd({ netns: true, dataRoot: root });
      process.stdout.write(`# standalone engine ready in ${Math.round((Date.now() - started) / 1000)} s\n`);
    } catch (err) {
      startError = err;
    }
  });
  after(async () => {
    await d?.stop();
    unlock?.();
  });

  const engineOrSkip = (t: TestContext): TestDockerd | null => {
    if (!requireBinaries(t, BINARIES)) return null;
    if (!d) throw startError;
    return d;
  };

  it('the README Steps: certificate, settings, up --build, agent, send and pull through the published port, down', async (t) => {
    const engine = engineOrSkip(t);
    if (!engine) return;
    const clone = mkdtempSync(join(tmpdir(), 'admp-standalone-'));
    const live = join(clone, '..', `${clone.split('/').pop()}-le`);
    // Debian's dockerd 20.10 here: Compose builds with the engine's classic builder, whose
    // cache the warm data root holds (BuildKit would key the RUN steps by their network too).
    const env = { ...process.env, DOCKER_HOST: engine.host, DOCKER_BUILDKIT: '0', EDITOR: join(live, 'edit.sh') };
    const sh = (line: string) =>
      run('bash', ['-c', line.replaceAll(README_LIVE, live)], {
        cwd: clone,
        env,
        timeout: 900_000,
        maxBuffer: 64 << 20,
      }).catch((e: { stdout?: string; stderr?: string; message: string }) => {
        throw new Error(`${line} failed: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`);
      });
    /** A command inside the engine's network namespace, where the ports are published. */
    const inNetns = (cmd: string[]) =>
      run('nsenter', [`--net=/run/netns/${engine.netns}`, ...cmd], { timeout: 60_000, maxBuffer: 16 << 20 });
    const api = async (method: string, path: string, token: string, body?: unknown) => {
      const r = await inNetns([
        'curl',
        '-sS',
        '-X',
        method,
        '-H',
        `authorization: Bearer ${token}`,
        ...(body ? ['-H', 'content-type: application/json', '--data', JSON.stringify(body)] : []),
        '-w',
        '\n%{http_code}',
        `http://127.0.0.1:8080${path}`,
      ]);
      const i = r.stdout.lastIndexOf('\n');
      return { status: Number(r.stdout.slice(i + 1)), json: JSON.parse(r.stdout.slice(0, i) || 'null') };
    };
    const steps = readmeCommands('### Steps');
    const [certbot, copyCert, settings, up, addAgent, doctor, down, ...more] = steps;
    try {
      assert.deepEqual(more, [], 'the README steps as this test runs them');
      assert.match(certbot!, /^certbot certonly --standalone -d mx\.agents\.example\.com$/);
      assert.match(up!, /^docker compose -f compose\/docker-compose\.yml --env-file compose\/\.env up -d --build$/);
      copyClone(clone);
      // 1. What certbot leaves: live/<host>/{fullchain,privkey}.pem, the key root-owned and 0600.
      mkdirSync(live, { recursive: true });
      await run('openssl', [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-days',
        '30',
        '-subj',
        `/CN=${MX}`,
        '-addext',
        `subjectAltName=DNS:${MX}`,
        '-keyout',
        join(live, 'privkey.pem'),
        '-out',
        join(live, 'fullchain.pem'),
      ]);
      chmodSync(join(live, 'privkey.pem'), 0o600);
      await sh(copyCert!);
      // 2. The editor the README opens: a script that sets a password and the DNS servers.
      writeFileSync(
        join(live, 'edit.sh'),
        // DNS at the container's own loopback: refused at once (no DNS is reachable from here).
        '#!/bin/sh\nsed -i -e "s/^POSTGRES_PASSWORD=.*/POSTGRES_PASSWORD=standalone-test-$$/" -e "s/^ADMP_DNS_SERVERS=.*/ADMP_DNS_SERVERS=127.0.0.1/" "$1"\n',
        { mode: 0o755 },
      );
      await sh(settings!);
      assert.match(readFileSync(join(clone, 'compose/.env'), 'utf8'), /^POSTGRES_PASSWORD=standalone-test-\d+$/m);
      // 3. Up, building the image.
      const started = Date.now();
      await sh(up!);
      process.stdout.write(`# compose up --build: ${Math.round((Date.now() - started) / 1000)} s\n`);
      const ready = await waitFor('/readyz on the published port', 180, async () => {
        const r = await inNetns(['curl', '-sS', '-f', 'http://127.0.0.1:8080/readyz']);
        return JSON.parse(r.stdout) as unknown;
      });
      assert.ok(ready);
      const banner = await inNetns(['bash', '-c', 'exec 3<>/dev/tcp/127.0.0.1/25; head -1 <&3']);
      assert.match(banner.stdout, new RegExp(`^220 ${MX.replace(/\./g, '\\.')} `), 'the SMTP edge on port 25');
      // 4. An agent by the README's command; it sends to itself and pulls through the published port.
      const added = await sh(addAgent!);
      const token = /admp_[A-Za-z0-9_-]+/.exec(added.stdout)?.[0];
      assert.ok(token, added.stdout);
      const sent = await api('POST', '/v1/messages', token, {
        to: 'bob@agents.example.com',
        type: 'task.request',
        body: { n: 1 },
      });
      assert.equal(sent.status, 201, JSON.stringify(sent.json));
      const pulled = await api('POST', '/v1/inbox/pull', token, { max: 10 });
      assert.equal(pulled.status, 200, JSON.stringify(pulled.json));
      assert.deepEqual(
        (pulled.json as { messages: { id: string }[] }).messages.map((m) => m.id),
        [sent.json.id],
      );
      // The doctor answers (its DNS and certificate checks fail here: no DNS is reachable).
      const checked = await sh(doctor!).catch((e: Error) => ({ stdout: e.message }));
      for (const name of ['database reachable and migrated', 'bridge ready'])
        assert.match(checked.stdout, new RegExp(`^PASS  ${name}:`, 'm'), checked.stdout);
      // The bridge came up once and stayed up (a crash loop answers /readyz now and then too).
      const [bridge] = await engine.docker.listContainers({
        filters: JSON.stringify({ label: ['com.docker.compose.service=admp-bridge'] }),
      });
      assert.equal((await engine.docker.getContainer(bridge!.Id).inspect()).RestartCount, 0);
      // 5. Down: the containers go, the volumes (database, keys) stay.
      await sh(down!);
      const left = await engine.docker.listContainers({ all: true });
      assert.deepEqual(left, []);
      const volumes = (await engine.docker.listVolumes()).Volumes?.map((v) => v.Name).sort();
      assert.deepEqual(volumes, ['admp_admp-data', 'admp_admp-pg']);
    } finally {
      await sh('docker compose -f compose/docker-compose.yml --env-file compose/.env down -v').catch(() => undefined);
      rmSync(clone, { recursive: true, force: true });
      rmSync(live, { recursive: true, force: true });
    }
  });
});
