// TLS certificate, key (and, for mutual TLS, client CA) read from files, and read again
// when they change, so that a renewal (certbot replacing the files or the symlinks to
// them) takes effect without a restart. Used by the SMTP edge's STARTTLS (checked when
// a client connects) and the HTTPS agent API (checked on a timer). A stamp of each file
// is compared at most once per `everyMs`: no watcher to lose track of a replaced
// symlink, and no stale context once a file changed. A set that does not load (a
// renewal caught half-written, a key that does not match) is logged and the previous
// one stays in use.
import { readFileSync, statSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import type { Logger } from '../log.js';

export interface TlsPaths {
  readonly cert: string;
  readonly key: string;
  /** CA certificates that client certificates must chain to (mutual TLS). */
  readonly ca?: string;
}

export interface TlsPair {
  readonly key: Buffer;
  readonly cert: Buffer;
  readonly ca?: Buffer;
}

export interface TlsFiles {
  /** The current `{ key, cert, ca? }`, for the server's options or setSecureContext. */
  readonly current: TlsPair;
  /** Re-reads the files when their stamp changed; true when a new set was taken. */
  refresh(): boolean;
}

const pathsOf = (p: TlsPaths): string[] => [p.cert, p.key, ...(p.ca ? [p.ca] : [])];
const stamp = (paths: TlsPaths): string =>
  pathsOf(paths)
    .map((path) => {
      const st = statSync(path);
      return `${st.ino}:${st.size}:${st.mtimeMs}`;
    })
    .join('|');

function load(paths: TlsPaths): { pair: TlsPair; stamp: string } {
  const before = stamp(paths);
  const pair = {
    cert: readFileSync(paths.cert),
    key: readFileSync(paths.key),
    ...(paths.ca ? { ca: readFileSync(paths.ca) } : {}),
  };
  createSecureContext(pair); // throws when the key does not match the certificate, or a file is not PEM
  return { pair, stamp: before };
}

/**
 * Loads the set now (throws when it does not load: a start with a broken certificate
 * fails loudly). `name` prefixes the log events (`smtp_tls_reloaded`, `http_tls_reload_failed`).
 */
export function watchTlsFiles(paths: TlsPaths, log: Logger, name: string, everyMs = 1000): TlsFiles {
  let loaded = load(paths);
  let checkedAt = Date.now();
  return {
    get current() {
      return loaded.pair;
    },
    refresh() {
      if (Date.now() - checkedAt < everyMs) return false;
      checkedAt = Date.now();
      try {
        if (stamp(paths) === loaded.stamp) return false;
        loaded = load(paths);
        log.info({ event: `${name}_tls_reloaded`, cert: paths.cert }, `${name} TLS certificate reloaded`);
        return true;
      } catch (err) {
        log.warn(
          { event: `${name}_tls_reload_failed`, cert: paths.cert, err: (err as Error).message },
          `${name} TLS certificate not reloaded; the previous one stays in use`,
        );
        return false;
      }
    },
  };
}
