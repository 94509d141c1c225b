// The Node version the README and package.json name is the floor every installed package
// declares: no `npm ci` engine warning on it (cookie@2 through fastify needs 22, watskeburt 22.13).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import semver from 'semver';
import { REPO } from '../installer/checkout.js';

const json = (f: string) => JSON.parse(readFileSync(join(REPO, f), 'utf8'));

it("package.json's engines floor satisfies every locked package's engines.node, and the README and install.sh say it", () => {
  const floor = semver.minVersion(json('package.json').engines.node as string)!;
  const lock = json('package-lock.json') as { packages: Record<string, { engines?: { node?: string } }> };
  const unmet = Object.entries(lock.packages)
    .filter(([, p]) => typeof p.engines?.node === 'string')
    .filter(([, p]) => !semver.satisfies(floor, p.engines!.node!, { includePrerelease: true }))
    .map(([name, p]) => `${name} (${p.engines!.node})`);
  assert.deepEqual(unmet, [], `Node ${floor} is below what these declare`);
  const short = `${floor.major}.${floor.minor}`;
  assert.match(readFileSync(join(REPO, 'README.md'), 'utf8'), new RegExp(`Node\\.js ${short} or later`));
  assert.match(readFileSync(join(REPO, 'install.sh'), 'utf8'), new RegExp(`${short} or newer is needed`));
});
