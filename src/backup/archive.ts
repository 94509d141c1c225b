// The backup archive: one tar holding a manifest, the database as pg_dump's custom format
// (restorable with pg_restore, table by table) and the agents' private keys. The manifest names
// every member with its sha256, so a damaged or foreign archive is refused before anything is
// restored.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { once } from 'node:events';
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';

export const MANIFEST = 'admp-backup.json';
export const DUMP = 'database.dump';
export const KEYS_DIR = 'keys/';

export interface Manifest {
  readonly format: 'admp-backup';
  readonly version: 1;
  readonly created: string;
  /** pg_dump --format=custom of the bridge's database. */
  readonly database: { readonly file: typeof DUMP; readonly bytes: number; readonly sha256: string };
  /** Private key files of the keys directory (ADMP_KEYS_DIR), by name. */
  readonly keys: readonly { readonly name: string; readonly sha256: string }[];
}

export interface KeyFile {
  readonly name: string;
  readonly content: Buffer;
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

async function fileSha256(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** Copies `from` into a tar entry (tar-stream's streams are streamx ones: write, drain, end). */
async function copyInto(from: AsyncIterable<unknown>, entry: ReturnType<tar.Pack['entry']>): Promise<void> {
  for await (const chunk of from) if (!entry.write(chunk as Buffer)) await once(entry as unknown as Writable, 'drain');
  const done = once(entry as unknown as Writable, 'finish');
  (entry as unknown as Writable).end();
  await done;
}

async function readAll(entry: AsyncIterable<unknown>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of entry) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

const SAFE_NAME = /^[A-Za-z0-9@._+-]+\.pem$/;

/** Writes the archive `out` from the dump file and the key files. */
export async function writeArchive(
  out: string,
  dumpFile: string,
  keys: readonly KeyFile[],
  now: Date,
): Promise<Manifest> {
  const manifest: Manifest = {
    format: 'admp-backup',
    version: 1,
    created: now.toISOString(),
    database: { file: DUMP, bytes: (await stat(dumpFile)).size, sha256: await fileSha256(dumpFile) },
    keys: keys.map((k) => ({ name: k.name, sha256: sha256(k.content) })),
  };
  const pack = tar.pack();
  const written = pipeline(Readable.from(pack), createWriteStream(out, { mode: 0o600 }));
  pack.entry({ name: MANIFEST, mode: 0o600 }, `${JSON.stringify(manifest, null, 2)}\n`);
  await copyInto(createReadStream(dumpFile), pack.entry({ name: DUMP, size: manifest.database.bytes, mode: 0o600 }));
  for (const k of keys) pack.entry({ name: `${KEYS_DIR}${k.name}`, mode: 0o600 }, k.content);
  pack.finalize();
  await written;
  return manifest;
}

/** Reads the archive: the manifest, the dump written to `dumpFile`, the key files; each checked against the manifest. */
export async function readArchive(path: string, dumpFile: string): Promise<{ manifest: Manifest; keys: KeyFile[] }> {
  const extract = tar.extract();
  let manifest: Manifest | undefined;
  let dumpSha: string | undefined;
  const keys: KeyFile[] = [];
  createReadStream(path).pipe(extract as unknown as Writable);
  for await (const entry of extract) {
    const name = entry.header.name;
    if (name === DUMP) {
      await pipeline(Readable.from(entry), createWriteStream(dumpFile, { mode: 0o600 }));
      dumpSha = await fileSha256(dumpFile);
      continue;
    }
    const body = await readAll(entry);
    if (name === MANIFEST) manifest = JSON.parse(body.toString('utf8')) as Manifest;
    else if (name.startsWith(KEYS_DIR) && SAFE_NAME.test(name.slice(KEYS_DIR.length)))
      keys.push({ name: name.slice(KEYS_DIR.length), content: body });
    else throw new Error(`${path}: unexpected member ${name}`);
  }
  if (manifest?.format !== 'admp-backup' || manifest.version !== 1)
    throw new Error(`${path}: not an admp backup (no ${MANIFEST} of version 1)`);
  if (dumpSha !== manifest.database.sha256) throw new Error(`${path}: ${DUMP} is missing or damaged (sha256 differs)`);
  const want = new Map(manifest.keys.map((k) => [k.name, k.sha256]));
  if (keys.length !== want.size || keys.some((k) => want.get(k.name) !== sha256(k.content)))
    throw new Error(`${path}: the key files differ from the manifest`);
  return { manifest, keys };
}

/** Key files out of a tar stream of the keys directory (as the Engine API's archive returns it). */
export async function keysFromTar(stream: NodeJS.ReadableStream): Promise<KeyFile[]> {
  const extract = tar.extract();
  stream.pipe(extract as unknown as Writable);
  const keys: KeyFile[] = [];
  for await (const entry of extract) {
    const base = entry.header.name.split('/').pop() ?? '';
    const body = await readAll(entry);
    if (entry.header.type === 'file' && SAFE_NAME.test(base)) keys.push({ name: base, content: body });
  }
  return keys.sort((a, b) => a.name.localeCompare(b.name));
}

/** A tar of `dir/` with the key files, owned by `uid` and readable by it alone. */
export async function keysToTar(dir: string, keys: readonly KeyFile[], uid: number): Promise<Buffer> {
  const pack = tar.pack();
  pack.entry({ name: `${dir}/`, type: 'directory', mode: 0o700, uid, gid: uid });
  for (const k of keys) pack.entry({ name: `${dir}/${k.name}`, mode: 0o600, uid, gid: uid }, k.content);
  pack.finalize();
  return readAll(pack);
}
