// Applies file edits inside the checkout so that a failure later in the same run can put
// every byte back: each file's previous content and mode are kept until commit. Writes go
// through a temporary file and rename(2), so a crash never leaves a half-written file.
import { chmod, chown, lstat, mkdir, readFile, rename, rmdir, stat, unlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { InstallError } from './install-error.js';
import type { FileEdit } from './plan.js';

/** Reads the managed files as UTF-8 text; refuses files that would not survive that unchanged. */
export async function readSnapshot(dir: string, paths: readonly string[]): Promise<Map<string, string | null>> {
  const out = new Map<string, string | null>();
  for (const p of paths) {
    let bytes: Buffer;
    try {
      bytes = await readFile(join(dir, p));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        out.set(p, null);
        continue;
      }
      throw err;
    }
    const text = bytes.toString('utf8');
    if (!Buffer.from(text, 'utf8').equals(bytes))
      throw new InstallError('not UTF-8 text; the installer will not edit it', p);
    out.set(p, text);
  }
  return out;
}

interface Undo {
  path: string;
  content: Buffer | null;
  mode: number;
  uid: number;
  gid: number;
}

export class FileTransaction {
  private readonly undo: Undo[] = [];
  private readonly madeDirs: string[] = [];

  constructor(private readonly dir: string) {}

  async apply(edits: readonly FileEdit[]): Promise<void> {
    for (const e of edits) await this.applyOne(e);
  }

  private async applyOne(e: FileEdit): Promise<void> {
    const abs = join(this.dir, e.path);
    const old = await lstat(abs).catch(() => null);
    if (old && !old.isFile())
      throw new InstallError('is not a regular file (a symlink?); the installer will not replace it', e.path);
    this.undo.push({
      path: abs,
      content: old ? await readFile(abs) : null,
      mode: old?.mode ?? 0,
      uid: old?.uid ?? -1,
      gid: old?.gid ?? -1,
    });
    if (e.after === null) {
      if (old) await unlink(abs);
      return;
    }
    await this.mkdirs(dirname(abs));
    await writeAtomic(
      abs,
      Buffer.from(e.after, 'utf8'),
      old ? old.mode & 0o7777 : e.mode,
      old ? { uid: old.uid, gid: old.gid } : null,
    );
  }

  private async mkdirs(d: string): Promise<void> {
    if (await stat(d).catch(() => null)) return;
    await this.mkdirs(dirname(d));
    await mkdir(d);
    this.madeDirs.push(d);
  }

  /** Puts back every file touched so far, newest first, then removes directories it made. */
  async rollback(): Promise<void> {
    for (const u of this.undo.reverse()) {
      if (u.content === null) await unlink(u.path).catch(() => undefined);
      else await writeAtomic(u.path, u.content, u.mode & 0o7777, { uid: u.uid, gid: u.gid });
    }
    this.undo.length = 0;
    for (const d of this.madeDirs.reverse()) await rmdir(d).catch(() => undefined);
    this.madeDirs.length = 0;
  }
}

async function writeAtomic(
  abs: string,
  bytes: Buffer,
  mode: number,
  owner: { uid: number; gid: number } | null,
): Promise<void> {
  const tmp = `${abs}.admp-tmp-${process.pid}`;
  await writeFile(tmp, bytes, { mode });
  try {
    await chmod(tmp, mode); // writeFile's mode is filtered by the umask
    if (owner && process.getuid?.() === 0) await chown(tmp, owner.uid, owner.gid);
    await rename(tmp, abs);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
}
