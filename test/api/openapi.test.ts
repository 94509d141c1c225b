// The OpenAPI document: valid OpenAPI 3.1, equal to the committed docs/openapi.json,
// covering every route and every error code, and true: real answers of the server,
// successes and errors, validate against the schemas it declares for them.
// `npm run openapi` rewrites docs/openapi.json (and the SDK's generated types) from the routes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { Validator } from '@seriousme/openapi-schema-validator';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { startTestApi, type TestAgent } from '../helpers/api.js';
import { ERROR_KINDS } from '../../src/errors.js';

const DOC_PATH = new URL('../../docs/openapi.json', import.meta.url);

interface Operation {
  responses: Record<string, { content?: Record<string, { schema: object }> }>;
}
type Doc = { paths: Record<string, Record<string, Operation>>; components: { schemas: Record<string, object> } };

test('the served document is valid OpenAPI 3.1, equal to docs/openapi.json, and the answers match it', async (t) => {
  const api = await startTestApi();
  t.after(() => api.close());
  const served = await api.core.app.inject({ url: '/openapi.json' });
  assert.equal(served.statusCode, 200);
  const doc = served.json() as Doc;

  const validator = new Validator();
  const result = await validator.validate(structuredClone(doc));
  assert.ok(result.valid, JSON.stringify(result.errors, null, 2));
  assert.equal(validator.version, '3.1');

  if (process.env.ADMP_WRITE_OPENAPI === '1') writeFileSync(DOC_PATH, `${JSON.stringify(doc, null, 2)}\n`);
  assert.deepEqual(
    JSON.parse(readFileSync(DOC_PATH, 'utf8')),
    doc,
    'docs/openapi.json is stale: run `npm run openapi` and commit the result',
  );

  // Every operation declares its success and error answers with a JSON schema.
  for (const [path, methods] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      const statuses = Object.keys(op.responses);
      assert.ok(
        statuses.some((s) => s.startsWith('2')),
        `${method} ${path} declares a success response`,
      );
      for (const s of statuses)
        assert.ok(op.responses[s]!.content?.['application/json'], `${method} ${path} ${s} has a JSON schema`);
    }
  }
  for (const p of ['/v1/messages', '/v1/messages/{id}', '/v1/inbox/pull', '/v1/dead/redrive', '/ingress/rspamd'])
    assert.ok(doc.paths[p], `${p} is documented`);
  // Every error code of ERROR_KINDS appears, under its HTTP status.
  for (const [code, kind] of Object.entries(ERROR_KINDS)) {
    const schema = doc.components.schemas[`AdmpError${kind.http}`] as {
      properties: { error: { properties: { code: { enum: string[] } } } };
    };
    assert.ok(schema?.properties.error.properties.code.enum.includes(code), `${code} documented under ${kind.http}`);
  }

  // Real answers validate against the schema the document gives for (path, method, status).
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats.default(ajv);
  ajv.addSchema({ $id: 'doc', components: doc.components });
  const conforms = (path: string, method: string, status: number, body: unknown) => {
    const schema = doc.paths[path]?.[method]?.responses[String(status)]?.content?.['application/json']?.schema;
    assert.ok(schema, `the document has ${method} ${path} ${status}`);
    const validate = ajv.compile(
      JSON.parse(JSON.stringify(schema).replace(/"#\/components\//g, '"doc#/components/')) as object,
    );
    assert.ok(
      validate(body),
      `${method} ${path} ${status}: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(body)}`,
    );
  };
  const call = async (who: TestAgent | undefined, method: string, url: string, path: string, payload?: object) => {
    const r = await api.core.app.inject({
      method: method.toUpperCase() as 'GET',
      url,
      headers: who?.auth ?? {},
      ...(payload ? { payload } : {}),
    });
    conforms(path, method, r.statusCode, r.json());
    return r;
  };
  const [a, b] = [await api.agent('alice'), await api.agent('bob')];
  const sent = await call(a, 'post', '/v1/messages', '/v1/messages', { to: b.address, type: 't', body: { n: 1 } });
  assert.equal(sent.statusCode, 201);
  const id = sent.json().id as string;
  await call(a, 'get', `/v1/messages/${id}`, '/v1/messages/{id}');
  await call(b, 'get', '/v1/inbox', '/v1/inbox');
  const pulled = await call(b, 'post', '/v1/inbox/pull', '/v1/inbox/pull', { max: 1, visibility_timeout: 30 });
  const lease = pulled.json().messages[0].lease_id as string;
  await call(b, 'post', `/v1/messages/${id}/nack`, '/v1/messages/{id}/nack', { lease_id: lease, extend_sec: 10 });
  await call(b, 'post', `/v1/messages/${id}/reply`, '/v1/messages/{id}/reply', { type: 'r', body: 'ok' });
  await call(b, 'post', '/v1/messages/ack', '/v1/messages/ack', { items: [{ id, lease_id: lease }] });
  const ack = await call(b, 'post', `/v1/messages/${id}/ack`, '/v1/messages/{id}/ack', { lease_id: lease });
  assert.equal(ack.statusCode, 409);
  await call(b, 'get', '/v1/dead', '/v1/dead');
  await call(b, 'post', '/v1/dead/redrive', '/v1/dead/redrive', { all: true });
  assert.equal((await call(undefined, 'get', '/v1/inbox', '/v1/inbox')).statusCode, 401);
  assert.equal((await call(a, 'post', '/v1/messages', '/v1/messages', { to: b.address })).statusCode, 400);
  const unknown = await call(a, 'post', '/v1/messages', '/v1/messages', { to: 'x@agents.test', type: 't', body: 1 });
  assert.equal(unknown.json().error.code, 'unknown_recipient');
  assert.equal((await call(a, 'get', `/v1/messages/${id}`, '/v1/messages/{id}')).statusCode, 200);
  await call(undefined, 'get', '/healthz', '/healthz');
  await call(undefined, 'get', '/readyz', '/readyz');
  await call(undefined, 'get', '/.well-known/agent-keys.json', '/.well-known/agent-keys.json');
});
