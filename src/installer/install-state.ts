// The record of one installation, kept in the checkout (STATE_FILE, gitignored) so that
// uninstall undoes exactly what install did: files it created are deleted, files it
// patched get their original bytes back while nobody changed them since.
import { createHash } from 'node:crypto';
import { InstallError } from './install-error.js';
import { STATE_FILE } from './layout.js';

/**
 * Which roads the install sets up. There is no postfilter-only mode: its fallback route had
 * to be a transport that defers (retry:), and Postfix resolves the transport at RCPT time,
 * so smtpd answered 450 4.3.0 before the message, and the Rspamd plugin, ever saw it.
 */
export type Mode = 'lmtp' | 'both';

export interface FileRecord {
  /** The installer created the file (uninstall deletes it). */
  readonly created: boolean;
  /** Original bytes of a patched file, base64. */
  readonly before?: string;
  /** A newline was added after the admin's unterminated last line before our block. */
  readonly addedNewline?: boolean;
  /** Top-level YAML keys the installer added to the override. */
  readonly createdKeys?: readonly string[];
  /** sha256 of what the installer wrote last; a different file was changed by someone else. */
  readonly after: string;
}

export interface InstallState {
  readonly version: 1;
  readonly domain: string;
  readonly mode: Mode;
  readonly secrets: { readonly ingressToken: string; readonly postgresPassword: string };
  /** The relay domain was created through the Mailcow API by this installer. */
  readonly relayDomainCreated: boolean;
  readonly files: Readonly<Record<string, FileRecord>>;
}

export const sha256 = (text: string): string => createHash('sha256').update(text, 'utf8').digest('hex');
export const encodeBytes = (text: string): string => Buffer.from(text, 'utf8').toString('base64');
export const decodeBytes = (b64: string): string => Buffer.from(b64, 'base64').toString('utf8');

export function serializeState(state: InstallState): string {
  return `${JSON.stringify(state, null, 2)}\n`;
}

export function parseState(text: string | null): InstallState | null {
  if (text === null) return null;
  let s: Partial<InstallState>;
  try {
    s = JSON.parse(text) as Partial<InstallState>;
  } catch {
    throw new InstallError(
      'not valid JSON; restore it from a backup or remove the installation by hand (README "Rollback")',
      STATE_FILE,
    );
  }
  if (s.version !== 1 || typeof s.domain !== 'string' || typeof s.files !== 'object' || !s.secrets) {
    throw new InstallError('not a state file this installer wrote (version 1)', STATE_FILE);
  }
  return s as InstallState;
}
