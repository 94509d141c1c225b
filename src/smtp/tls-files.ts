// STARTTLS certificate and key read from files, and read again when they change, so
// that a renewal (certbot replacing the files or the symlinks to them) takes effect
// without a restart. Checked when a client connects, at most once a second: no
// watcher to lose track of a replaced symlink, and no stale context once a file
// changed. A pair that does not load (a renewal caught half-written, a key that does
// not match) is logged and the previous one stays in use.
import { readFileSync, statSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import type { Logger } from '../log.js';

export interface TlsFiles {
  /** The current `{ key, cert }`, for smtp-server's options. */
  readonly current: { key: Buffer; cert: Buffer };
  /** Re-reads the files when their stamp changed; true when a new pair was taken. */
  refresh(): boolean;
}

const stamp = (path: string): string => {
  const st = statSync(path);
  return `${st.ino}:${st.size}:${st.mtimeMs}`;
};

function load(certPath: string, keyPath: string): { key: Buffer; cert: Buffer; stamp: string } {
  const before = `${stamp(certPath)}|${stamp(keyPath)}`;
  const pair = { cert: readFileSync(certPath), key: readFileSync(keyPath) };
  createSecureContext(pair); // throws when the key does not match the certificate, or either is not PEM
  return { ...pair, stamp: before };
}

/** Loads the pair now (throws when it does not load: a start with a broken certificate fails loudly). */
export function watchTlsFiles(certPath: string, keyPath: string, log: Logger, everyMs = 1000): TlsFiles {
  let pair = load(certPath, keyPath);
  let checkedAt = Date.now();
  return {
    get current() {
      return { key: pair.key, cert: pair.cert };
    },
    refresh() {
      if (Date.now() - checkedAt < everyMs) return false;
      checkedAt = Date.now();
      try {
        if (`${stamp(certPath)}|${stamp(keyPath)}` === pair.stamp) return false;
        pair = load(certPath, keyPath);
        log.info({ event: 'smtp_tls_reloaded', cert: certPath }, 'STARTTLS certificate reloaded');
        return true;
      } catch (err) {
        log.warn(
          { event: 'smtp_tls_reload_failed', cert: certPath, err: (err as Error).message },
          'STARTTLS certificate not reloaded; the previous one stays in use',
        );
        return false;
      }
    },
  };
}
