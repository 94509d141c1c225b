// The merged override, together with Mailcow's docker-compose.yml, is a valid Compose file:
// both are interpolated from mailcow.conf (as Compose reads .env), merged the way Compose
// merges files, and validated against the Compose Specification JSON schema.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import { Ajv } from 'ajv';
import { parse } from 'yaml';
import { parseEnvFile } from '../../src/installer/mailcow-checkout.js';
import { OVERRIDE_FILE } from '../../src/installer/layout.js';
import { COMPOSE_SPEC, copyCheckout, fileDeps, install, read } from './checkout.js';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function interpolate(v: Json, env: ReadonlyMap<string, string>): Json {
  if (typeof v === 'string') {
    return v.replace(
      /\$\{([A-Z_][A-Z0-9_]*)(?::?-([^}]*))?\}/g,
      (_m, name: string, def?: string) => env.get(name) || def || '',
    );
  }
  if (Array.isArray(v)) return v.map((x) => interpolate(x, env));
  if (v && typeof v === 'object')
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, interpolate(x, env)]));
  return v;
}

/** Compose's merge for what these files use: mappings merge, sequences append. */
function merge(a: Json, b: Json): Json {
  if (Array.isArray(a) && Array.isArray(b)) return [...a, ...b];
  if (a && b && typeof a === 'object' && typeof b === 'object' && !Array.isArray(a) && !Array.isArray(b)) {
    const out: { [k: string]: Json } = { ...a };
    for (const [k, v] of Object.entries(b)) out[k] = k in out ? merge(out[k]!, v) : v;
    return out;
  }
  return b;
}

const ADMIN_OVERRIDE = 'services:\n  nginx-mailcow:\n    environment:\n      - EXTRA=1\n';

it("the merged override validates against compose-spec.json together with Mailcow's docker-compose.yml", async () => {
  const c = copyCheckout();
  try {
    writeFileSync(join(c.dir, OVERRIDE_FILE), ADMIN_OVERRIDE);
    await install(c.dir, fileDeps().deps);
    const env = parseEnvFile(read(c.dir, 'mailcow.conf'));
    const base = interpolate(parse(read(c.dir, 'docker-compose.yml')) as Json, env);
    const override = interpolate(parse(read(c.dir, OVERRIDE_FILE)) as Json, env);
    const merged = merge(base, override) as {
      services: Record<string, { networks?: Record<string, { aliases?: string[] }>; environment?: unknown }>;
      networks: Record<string, unknown>;
    };
    const ajv = new Ajv({ allErrors: true, strict: false, validateFormats: false });
    // Draft-07 is Ajv's default; the file names it with an https URL Ajv does not know.
    const { $schema: _draft, ...schema } = JSON.parse(readFileSync(COMPOSE_SPEC, 'utf8')) as Record<string, unknown>;
    const validate = ajv.compile(schema);
    assert.equal(
      validate({ services: { x: { ports: 'not-a-list', restart: ['no'] } } }),
      false,
      'the schema rejects what it should',
    );
    for (const [name, doc] of [
      ['override', override],
      ['merged', merged],
    ] as const) {
      assert.ok(validate(doc), `${name}: ${ajv.errorsText(validate.errors)}`);
    }
    assert.deepEqual(merged.services['admp-bridge-mailcow']!.networks, {
      'mailcow-network': { aliases: ['admp-bridge'] },
    });
    assert.deepEqual(Object.keys(merged.networks), ['mailcow-network'], 'no second network');
    assert.deepEqual(merged.services['nginx-mailcow']!.environment, [
      ...(parse(read(c.dir, 'docker-compose.yml')).services['nginx-mailcow'].environment as string[]).map((e) =>
        interpolate(e, env),
      ),
      'EXTRA=1',
    ]);
    const bridgeEnv = merged.services['admp-bridge-mailcow']!.environment as Record<string, string>;
    assert.equal(bridgeEnv.ADMP_LMTP_ALLOW, '172.22.1.0/24,fd4d:6169:6c63:6f77::/64');
    assert.equal(bridgeEnv.ADMP_MTA_HOSTNAME, 'mail.example.com');
  } finally {
    c.remove();
  }
});
