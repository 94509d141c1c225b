// The relay domain through the Mailcow API (a loopback stand-in for the Mailcow server,
// answering as openapi.yaml documents: errors are HTTP 200 with type "danger"): created once,
// found on the next run, removed on uninstall; a refusal rolls back every file of the run.
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { mailcowApi } from '../../src/installer/mailcow-api.js';
import { copyCheckout, fileDeps, install, treeBytes, uninstall } from './checkout.js';

interface Call {
  method: string;
  path: string;
  key: string | undefined;
  body: unknown;
}

/** Mailcow's domain endpoints over a map of domains; `refuseAdd` answers the add with danger. */
function fakeMailcow(): {
  server: Server;
  calls: Call[];
  domains: Map<string, Record<string, unknown>>;
  refuseAdd: { on: boolean };
} {
  const calls: Call[] = [];
  const domains = new Map<string, Record<string, unknown>>();
  const refuseAdd = { on: false };
  const body = async (req: IncomingMessage): Promise<unknown> => {
    let s = '';
    for await (const chunk of req) s += chunk;
    return s ? JSON.parse(s) : undefined;
  };
  const server = createServer(async (req, res) => {
    const b = await body(req);
    const path = req.url ?? '';
    calls.push({ method: req.method ?? '', path, key: req.headers['x-api-key'] as string | undefined, body: b });
    res.setHeader('content-type', 'application/json');
    if (req.headers['x-api-key'] !== 'rw-key')
      return res.writeHead(401).end('{"type":"error","msg":"authentication failed"}');
    const get = /^\/api\/v1\/get\/domain\/(.+)$/.exec(path);
    if (req.method === 'GET' && get) {
      const d = domains.get(decodeURIComponent(get[1]!));
      return res.end(JSON.stringify(d ?? {}));
    }
    if (req.method === 'POST' && path === '/api/v1/add/domain') {
      const x = b as Record<string, unknown>;
      if (refuseAdd.on)
        return res.end(
          JSON.stringify([{ type: 'danger', log: ['mailbox', 'add', 'domain'], msg: ['domain_exists', x.domain] }]),
        );
      domains.set(String(x.domain), {
        domain_name: x.domain,
        backupmx: x.backupmx,
        relay_all_recipients: x.relay_all_recipients,
      });
      return res.end(JSON.stringify([{ type: 'success', msg: ['domain_added', x.domain] }]));
    }
    if (req.method === 'POST' && path === '/api/v1/delete/domain') {
      for (const d of b as string[]) domains.delete(d);
      return res.end(JSON.stringify([{ type: 'success', msg: ['domain_removed', b] }]));
    }
    res.writeHead(404).end('{}');
  });
  return { server, calls, domains, refuseAdd };
}

describe('relay domain through the Mailcow API', () => {
  const fake = fakeMailcow();
  let base = '';
  before(async () => {
    await new Promise<void>((ok) => fake.server.listen(0, '127.0.0.1', ok));
    base = `http://127.0.0.1:${(fake.server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((ok) => fake.server.close(() => ok())));

  it('creates it once (GET first), keeps it on the next run, deletes it on uninstall', async () => {
    const c = copyCheckout();
    try {
      fake.calls.length = 0;
      const api = mailcowApi(base, 'rw-key');
      await install(c.dir, fileDeps(api).deps);
      assert.deepEqual(
        fake.calls.map((x) => `${x.method} ${x.path}`),
        ['GET /api/v1/get/domain/agents.example.com', 'POST /api/v1/add/domain'],
      );
      assert.deepEqual(fake.calls[1]!.body, {
        domain: 'agents.example.com',
        active: 1,
        backupmx: 1,
        relay_all_recipients: 1,
        relay_unknown_only: 0,
        mailboxes: 0,
        aliases: 0,
        description: 'ADMP agents (managed by admp install)',
      });
      fake.calls.length = 0;
      const second = await install(c.dir, fileDeps(api).deps);
      assert.deepEqual(
        fake.calls.map((x) => `${x.method} ${x.path}`),
        ['GET /api/v1/get/domain/agents.example.com'],
      );
      assert.deepEqual(second.pending, []);
      fake.calls.length = 0;
      await uninstall(c.dir, fileDeps(api).deps);
      assert.deepEqual(
        fake.calls.map((x) => `${x.method} ${x.path} ${JSON.stringify(x.body ?? '')}`),
        ['POST /api/v1/delete/domain ["agents.example.com"]'],
      );
      assert.equal(fake.domains.size, 0);
    } finally {
      c.remove();
    }
  });

  it('an API refusal (HTTP 200, type danger) rolls back every file of the run', async () => {
    const c = copyCheckout();
    try {
      const pristine = treeBytes(c.dir);
      fake.refuseAdd.on = true;
      const r = fileDeps(mailcowApi(base, 'rw-key'));
      await assert.rejects(
        install(c.dir, r.deps),
        /Mailcow API add domain failed: \["domain_exists","agents\.example\.com"\]/,
      );
      assert.deepEqual(treeBytes(c.dir), pristine);
      assert.ok(r.lines.includes('rolling back: restoring files'));
    } finally {
      fake.refuseAdd.on = false;
      c.remove();
    }
  });

  it('a wrong key is a clear error before anything changes', async () => {
    const c = copyCheckout();
    try {
      const pristine = treeBytes(c.dir);
      await assert.rejects(
        install(c.dir, fileDeps(mailcowApi(base, 'wrong')).deps),
        /Mailcow API refused the key \(HTTP 401\)/,
      );
      assert.deepEqual(treeBytes(c.dir), pristine);
    } finally {
      c.remove();
    }
  });

  it('without a key it prints the steps and leaves the relay domain pending', async () => {
    const c = copyCheckout();
    try {
      const r = fileDeps(null);
      const out = await install(c.dir, r.deps);
      assert.deepEqual(out.pending, ['relay domain agents.example.com']);
      assert.ok(r.lines.some((l) => l.includes('Relay this domain: yes; Relay all recipients: yes')));
    } finally {
      c.remove();
    }
  });
});
