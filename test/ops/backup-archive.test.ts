// The backup archive: what is written reads back byte for byte (dump and key files, owner-only
// modes), and an archive whose dump, keys or members differ from its manifest is refused before
// anything is restored.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, it } from 'node:test';
import { keysFromTar, keysToTar, readArchive, writeArchive } from '../../src/backup/archive.js';

const dir = mkdtempSync(join(tmpdir(), 'admp-archive-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const dump = join(dir, 'in.dump');
writeFileSync(dump, randomBytes(3 * 1024 * 1024 + 17)); // several tar blocks, not a multiple of 512
const keys = [
  {
    name: 'alice@agents.example.com.k1.pem',
    content: Buffer.from('-----BEGIN PRIVATE KEY-----\nA\n-----END PRIVATE KEY-----\n'),
  },
  {
    name: 'bob@agents.example.com.k2.pem',
    content: Buffer.from('-----BEGIN PRIVATE KEY-----\nB\n-----END PRIVATE KEY-----\n'),
  },
];

it('round trip: the dump and every key file come back byte for byte; the archive is owner-only', async () => {
  const out = join(dir, 'a.tar');
  const m = await writeArchive(out, dump, keys, new Date('2026-12-06T00:00:00Z'));
  assert.equal(statSync(out).mode & 0o777, 0o600);
  assert.equal(m.database.bytes, statSync(dump).size);
  const back = await readArchive(out, join(dir, 'back.dump'));
  assert.deepEqual(back.manifest, m);
  assert.ok(readFileSync(join(dir, 'back.dump')).equals(readFileSync(dump)));
  assert.deepEqual(back.keys, keys);
});

it('a damaged dump, a changed key file or a file that is no archive is refused', async () => {
  const out = join(dir, 'b.tar');
  await writeArchive(out, dump, keys, new Date());
  const bytes = readFileSync(out);
  const flip = (needle: string, at = 0) => {
    const copy = Buffer.from(bytes);
    // In bob's key file, after its tar header (the random dump may hold the same bytes).
    const i = copy.indexOf(needle, copy.indexOf('keys/bob@')) + at;
    copy[i] = copy[i]! ^ 0xff;
    const p = join(dir, `bad-${needle.length}-${at}.tar`);
    writeFileSync(p, copy);
    return p;
  };
  // A byte inside the dump's data (its header block is 512 bytes before it).
  const dumpAt = bytes.indexOf('database.dump') + 512 + 1000;
  const damaged = Buffer.from(bytes);
  damaged[dumpAt] = damaged[dumpAt]! ^ 0xff;
  writeFileSync(join(dir, 'dmg.tar'), damaged);
  await assert.rejects(readArchive(join(dir, 'dmg.tar'), join(dir, 'x.dump')), /database\.dump is missing or damaged/);
  await assert.rejects(readArchive(flip('\nB\n', 1), join(dir, 'y.dump')), /key files differ from the manifest/);
  await assert.rejects(readArchive(dump, join(dir, 'z.dump')), /./, 'not a tar at all');
});

it('key files travel into and out of a container as a tar of keys/', async () => {
  const t = await keysToTar('keys', keys, 1000);
  assert.deepEqual(await keysFromTar(Readable.from(t)), keys);
});
