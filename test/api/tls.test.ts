// HTTPS on the agent API with a private test CA: HTTP/1.1 and HTTP/2 clients (undici,
// node:http2, curl), a certificate swapped while the server runs, an expired one refused
// by clients, and mutual TLS: a bound agent needs both certificate and credential.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execSync } from 'node:child_process';
import { connect as h2connect } from 'node:http2';
import { connect as tlsConnect } from 'node:tls';
import { connect as netConnect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Agent, request } from 'undici';
import { startTestApi, type TestApi } from '../helpers/api.js';
import { createTestCa, type TestCa } from '../helpers/test-ca.js';
import { addCertBinding } from '../../src/db/client-certs.js';
import { parseBinding } from '../../src/core/client-cert.js';
import { X509Certificate } from 'node:crypto';

const run = promisify(execFile);

interface Issued {
  readonly cert: string;
  readonly key: string;
  readonly certPem: string;
  readonly keyPem: string;
}
const withPem = async (files: Promise<{ cert: string; key: string }>): Promise<Issued> => {
  const f = await files;
  return { ...f, certPem: readFileSync(f.cert, 'utf8'), keyPem: readFileSync(f.key, 'utf8') };
};
const server = (ca: TestCa, days?: number) => withPem(ca.issue('127.0.0.1', days));
const client = (ca: TestCa, subject: string) => withPem(ca.issueClient(subject));

/**
 * A test CA, a server certificate from it (valid `days`, the helper's default when not
 * given) and the agent API serving it over HTTPS; all removed when the test ends.
 */
async function httpsWorld(
  t: TestContext,
  o: { days?: number; caName?: string; env?: (ca: TestCa) => Record<string, string> } = {},
): Promise<{ ca: TestCa; caPem: string; cert: Issued; api: TestApi; url: string }> {
  const ca = await createTestCa(o.caName);
  const cert = await server(ca, o.days);
  const { api, url } = await httpsApi(ca, cert, o.env?.(ca));
  t.after(async () => {
    await api.close();
    ca.remove();
  });
  return { ca, caPem: readFileSync(ca.caFile, 'utf8'), cert, api, url };
}

async function httpsApi(
  ca: TestCa,
  server: Issued,
  env: Record<string, string> = {},
): Promise<{ api: TestApi; url: string }> {
  // The server reads copies, so a test can replace them as a renewal would.
  const cert = join(ca.dir, 'live-cert.pem');
  const key = join(ca.dir, 'live-key.pem');
  copyFileSync(server.cert, cert);
  copyFileSync(server.key, key);
  const api = await startTestApi({
    ADMP_HTTP_TLS_CERT: cert,
    ADMP_HTTP_TLS_KEY: key,
    ADMP_HTTP_TLS_RELOAD_MS: '100',
    ADMP_AUTH_CACHE_SEC: '0',
    ...env,
  });
  const url = await api.core.app.listen({ host: '127.0.0.1', port: 0 });
  return { api, url };
}

/** GET over HTTP/1.1 with undici, trusting the test CA (and presenting a client certificate when given). */
async function get1(url: string, ca: string, headers: Record<string, string>, client?: Issued) {
  const dispatcher = new Agent({
    connect: { ca, ...(client ? { cert: client.certPem, key: client.keyPem } : {}) },
  });
  try {
    const res = await request(`${url}/v1/inbox`, { headers, dispatcher });
    return { status: res.statusCode, body: (await res.body.json()) as { error?: { code: string }; agent?: string } };
  } finally {
    await dispatcher.close();
  }
}

/** GET over HTTP/2 with node:http2; returns the status, body and the ALPN protocol negotiated. */
function get2(
  url: string,
  ca: string,
  headers: Record<string, string>,
): Promise<{ status: number; body: string; alpn: string }> {
  return new Promise((ok, fail) => {
    const session = h2connect(url, { ca });
    session.on('error', fail);
    const req = session.request({ ':path': '/v1/inbox', ...headers });
    let status = 0;
    let body = '';
    req.on('response', (h) => (status = Number(h[':status'])));
    req.setEncoding('utf8');
    req.on('data', (d: string) => (body += d));
    req.on('end', () => {
      const alpn = String(session.alpnProtocol);
      session.close();
      ok({ status, body, alpn });
    });
    req.on('error', fail);
    req.end();
  });
}

/** The serial number of the certificate the server presents to a new connection. */
function servedSerial(url: string, ca: string): Promise<string> {
  const { port } = new URL(url);
  return new Promise((ok, fail) => {
    const s = tlsConnect({ host: '127.0.0.1', port: Number(port), ca }, () => {
      const serial = s.getPeerX509Certificate()!.serialNumber;
      s.end();
      ok(serial);
    });
    s.on('error', fail);
  });
}

test('HTTPS: HTTP/1.1 (undici, curl) and HTTP/2 (node:http2, curl) with a private CA; a client not trusting the CA refuses', async (t) => {
  const { ca, caPem, api, url } = await httpsWorld(t);
  assert.match(url, /^https:\/\/127\.0\.0\.1:\d+$/);
  const alice = await api.agent('alice');
  const one = await get1(url, caPem, alice.auth);
  assert.equal(one.status, 200);
  assert.equal(one.body.agent, alice.address);
  const two = await get2(url, caPem, alice.auth);
  assert.equal(two.alpn, 'h2');
  assert.equal(two.status, 200);
  assert.equal(JSON.parse(two.body).agent, alice.address);
  for (const [flag, version] of [
    ['--http1.1', '1.1'],
    ['--http2', '2'],
  ] as const) {
    const { stdout } = await run('curl', [
      '-sS',
      flag,
      '--cacert',
      ca.caFile,
      '-H',
      `Authorization: Bearer ${alice.token}`,
      '-w',
      '\n%{http_version} %{http_code}',
      `${url}/v1/inbox`,
    ]);
    const [body, tail] = stdout.split('\n');
    assert.equal(tail, `${version} 200`, `curl ${flag}`);
    assert.equal(JSON.parse(body!).agent, alice.address);
  }
  // A client that does not trust the CA is refused by its own TLS stack.
  await assert.rejects(get1(url, (await server(ca)).certPem, alice.auth), /self.signed|unable to (get|verify)/i);
});

test('HTTPS: clients that reset a handshake, or abandon an HTTP/1.1 request or an HTTP/2 stream halfway, end only their own connection', async (t) => {
  const { caPem, api, url } = await httpsWorld(t);
  const alice = await api.agent('alice');
  const { port } = new URL(url);
  const opened = <T extends { once(e: string, f: () => void): unknown; on(e: string, f: () => void): unknown }>(
    s: T,
    event: string,
  ) => {
    s.on('error', () => undefined);
    return new Promise<T>((ok) => s.once(event, () => ok(s)));
  };
  const half = `POST /v1/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${alice.token}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"to":`;
  for (let i = 0; i < 3; i++) {
    // A TCP reset halfway through the TLS handshake (a ClientHello's first bytes).
    const raw = await opened(netConnect(Number(port), '127.0.0.1'), 'connect');
    raw.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]));
    await sleep(20);
    raw.resetAndDestroy();
    // Plain HTTP on the TLS port.
    const plain = await opened(netConnect(Number(port), '127.0.0.1'), 'connect');
    plain.write('GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n');
    await sleep(20);
    plain.resetAndDestroy();
    // HTTP/1.1 over TLS: half a request body, then the connection closed.
    const one = await opened(
      tlsConnect({ host: '127.0.0.1', port: Number(port), ca: caPem, ALPNProtocols: ['http/1.1'] }),
      'secureConnect',
    );
    one.write(half);
    await sleep(20);
    one.destroy();
    // HTTP/2: a stream with half its body, then the session destroyed.
    const h2 = await opened(h2connect(url, { ca: caPem }), 'connect');
    const stream = h2.request({
      ':method': 'POST',
      ':path': '/v1/messages',
      authorization: `Bearer ${alice.token}`,
      'content-type': 'application/json',
      'content-length': '1000',
    });
    stream.on('error', () => undefined);
    stream.write('{"to":');
    await sleep(20);
    h2.destroy();
  }
  const after = await get1(url, caPem, alice.auth);
  assert.equal(after.status, 200, 'the server still answers');
  const { rows } = await api.db.pool.query('SELECT count(*)::int AS n FROM message');
  assert.equal(rows[0].n, 0, 'no half request stored anything');
});

test('HTTPS: a certificate replaced on disk is served to new connections without a restart; a broken pair is not taken', async (t) => {
  const { ca, caPem, cert: first, api, url } = await httpsWorld(t);
  const alice = await api.agent('alice');
  const serial = (i: Issued) => new X509Certificate(i.certPem).serialNumber;
  assert.equal(await servedSerial(url, caPem), serial(first));

  const second = await server(ca);
  // Key first, then certificate, as a renewal script may: the half-written pair fails to
  // load and the old context stays until the certificate follows.
  copyFileSync(second.key, join(ca.dir, 'live-key.pem'));
  await new Promise((r) => setTimeout(r, 400));
  assert.equal(await servedSerial(url, caPem), serial(first), 'mismatched key and certificate: old pair kept');
  assert.equal((await get1(url, caPem, alice.auth)).status, 200);
  copyFileSync(second.cert, join(ca.dir, 'live-cert.pem'));
  const deadline = Date.now() + 5000;
  while ((await servedSerial(url, caPem)) !== serial(second) && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 100));
  assert.equal(await servedSerial(url, caPem), serial(second), 'the new certificate is served');
  assert.equal((await get1(url, caPem, alice.auth)).status, 200);
  assert.equal((await get2(url, caPem, alice.auth)).status, 200);
});

test('HTTPS: an expired server certificate is refused by clients (undici, curl)', async (t) => {
  const { ca, caPem, api, url } = await httpsWorld(t, { days: -1 });
  const alice = await api.agent('alice');
  await assert.rejects(get1(url, caPem, alice.auth), /certificate has expired|CERT_HAS_EXPIRED/);
  const curl = await run('curl', ['-sS', '--cacert', ca.caFile, `${url}/v1/inbox`]).then(
    () => undefined,
    (e: { code: number; stderr: string }) => e,
  );
  assert.equal(curl?.code, 60, 'curl: peer certificate cannot be authenticated');
  assert.match(curl!.stderr, /expired/);
});

test('mutual TLS: a bound agent needs its certificate and its credential; refusals are 401/403 with codes', async (t) => {
  const { ca, caPem, api, url } = await httpsWorld(t, {
    caName: 'ADMP Client CA',
    env: (ca) => ({ ADMP_HTTP_TLS_CLIENT_CA: ca.caFile }),
  });
  const stranger = await createTestCa('Someone Else');
  t.after(() => stranger.remove());
  const [alice, bob, carol] = [await api.agent('alice'), await api.agent('bob'), await api.agent('carol')];
  const aliceCert = await client(ca, '/O=Example/CN=alice');
  const carolCert = await client(ca, '/O=Example/CN=carol');
  const otherCert = await client(ca, '/O=Example/CN=mallory');
  const foreign = await client(stranger, '/O=Example/CN=alice');
  // The pin as the README computes it, with openssl alone.
  const pin = (i: Issued) =>
    execSync(
      `openssl x509 -pubkey -noout -in ${i.cert} | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64`,
      {
        encoding: 'utf8',
      },
    ).trim();
  await addCertBinding(api.db.pool, 'alice', parseBinding('spki', pin(aliceCert)));
  await addCertBinding(api.db.pool, 'carol', parseBinding('subject', 'CN=carol, O=Example'));

  const code = (r: { body: { error?: { code: string } } }) => r.body.error?.code;
  assert.equal((await get1(url, caPem, alice.auth, aliceCert)).status, 200, 'certificate and credential');
  assert.equal((await get1(url, caPem, carol.auth, carolCert)).status, 200, 'bound by subject');
  const none = await get1(url, caPem, alice.auth);
  assert.deepEqual([none.status, code(none)], [401, 'client_certificate_required']);
  const wrong = await get1(url, caPem, alice.auth, otherCert);
  assert.deepEqual([wrong.status, code(wrong)], [403, 'client_certificate_mismatch']);
  const carolWithAlice = await get1(url, caPem, carol.auth, aliceCert);
  assert.deepEqual([carolWithAlice.status, code(carolWithAlice)], [403, 'client_certificate_mismatch']);
  // Same subject as alice's, issued by another CA: the handshake completes, the API refuses.
  const untrusted = await get1(url, caPem, alice.auth, foreign);
  assert.deepEqual([untrusted.status, code(untrusted)], [401, 'client_certificate_rejected']);
  const noCredential = await get1(url, caPem, {}, aliceCert);
  assert.deepEqual([noCredential.status, code(noCredential)], [401, 'unauthorized']);
  const bobsToken = await get1(url, caPem, bob.auth, aliceCert);
  assert.equal(bobsToken.status, 200, "an unbound agent's credential works with any trusted certificate");
  assert.equal(bobsToken.body.agent, bob.address, 'the certificate does not choose the agent');
  assert.equal((await get1(url, caPem, bob.auth)).status, 200, 'unbound agents need no certificate');
  const bobForeign = await get1(url, caPem, bob.auth, foreign);
  assert.deepEqual([bobForeign.status, code(bobForeign)], [401, 'client_certificate_rejected']);
  // HTTP/2 carries the certificate of the connection too.
  const h2 = await new Promise<number>((ok, fail) => {
    const s = h2connect(url, { ca: caPem, cert: aliceCert.certPem, key: aliceCert.keyPem });
    s.on('error', fail);
    const r = s.request({ ':path': '/v1/inbox', ...alice.auth });
    r.on('response', (h) => ok(Number(h[':status'])));
    r.resume();
    r.on('end', () => s.close());
    r.on('error', fail);
    r.end();
  });
  assert.equal(h2, 200);
  // Without TLS (in-process) a bound agent cannot present a certificate at all.
  const plain = await api.core.app.inject({ url: '/v1/inbox', headers: alice.auth });
  assert.deepEqual([plain.statusCode, plain.json().error.code], [401, 'client_certificate_required']);
});
