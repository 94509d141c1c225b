// The SDK over HTTPS with a private CA and mutual TLS: the client takes a `fetch` whose
// dispatcher trusts the CA and presents the agent's client certificate (undici), and
// every credential kind works with the certificate binding; without the certificate
// the SDK surfaces the API's precise refusal.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { Agent, fetch as undiciFetch } from 'undici';
import { AdmpApiError, AdmpClient, type Credentials } from '../../src/sdk/index.js';
import { addCertBinding } from '../../src/db/client-certs.js';
import { spkiPin } from '../../src/core/client-cert.js';
import { startTestApi } from '../helpers/api.js';
import { createTestCa } from '../helpers/test-ca.js';

test('the SDK over HTTPS with a private CA and a client certificate', async (t) => {
  const ca = await createTestCa();
  const server = await ca.issue('127.0.0.1');
  const api = await startTestApi({
    ADMP_HTTP_TLS_CERT: server.cert,
    ADMP_HTTP_TLS_KEY: server.key,
    ADMP_HTTP_TLS_CLIENT_CA: ca.caFile,
  });
  const url = await api.core.app.listen({ host: '127.0.0.1', port: 0 });
  const dispatchers: Agent[] = [];
  t.after(async () => {
    await Promise.all(dispatchers.map((d) => d.close()));
    await api.close();
    ca.remove();
  });
  const [alice, bob] = [await api.agent('alice'), await api.agent('bob')];
  const cert = await ca.issueClient('/O=Example/CN=alice');
  await addCertBinding(api.db.pool, 'alice', {
    kind: 'spki',
    value: spkiPin(new X509Certificate(readFileSync(cert.cert))),
  });
  const fetchWith = (tls: { cert?: string; key?: string }): typeof fetch => {
    const dispatcher = new Agent({ connect: { ca: readFileSync(ca.caFile), ...tls } });
    dispatchers.push(dispatcher);
    return ((input: string, init?: object) => undiciFetch(input, { ...init, dispatcher })) as unknown as typeof fetch;
  };
  const withCert = fetchWith({ cert: readFileSync(cert.cert, 'utf8'), key: readFileSync(cert.key, 'utf8') });
  const client = (credentials: Credentials, f: typeof fetch) =>
    new AdmpClient({ baseUrl: url, credentials, fetch: f, retry: { retries: 0 } });

  for (const credentials of [
    { token: alice.token },
    { agentId: alice.id, hmacSecret: alice.hmac_secret },
  ] as Credentials[]) {
    const sent = await client(credentials, withCert).send({ to: bob.address, type: 'task.request', body: { n: 1 } });
    assert.equal(sent.status, 'delivered');
  }
  const pulled = await client({ token: bob.token }, fetchWith({})).pull({ max: 10 });
  assert.equal(pulled.messages.length, 2, 'bob (unbound) needs no certificate');
  const refused = await client({ token: alice.token }, fetchWith({}))
    .send({ to: bob.address, type: 'task.request', body: {} })
    .then(
      () => assert.fail('alice without her certificate'),
      (e: unknown) => e,
    );
  assert.ok(refused instanceof AdmpApiError);
  assert.equal(refused.status, 401);
  assert.equal(refused.code, 'client_certificate_required');
});
