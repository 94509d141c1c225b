// A private certificate authority for TLS tests (openssl, in a temp dir): server
// certificates for a host name or IP address, valid for a chosen number of days (a
// negative number gives one that has already expired), and client certificates for a
// subject, signed by the CA whose certificate clients (swaks, Postfix, curl) trust.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface TestCa {
  readonly dir: string;
  /** The CA certificate (PEM file) clients verify against. */
  readonly caFile: string;
  /** A key and a certificate for `host`, signed by the CA, valid `days` days from now; files under dir. */
  issue(host: string, days?: number): Promise<{ cert: string; key: string }>;
  /** A client certificate (extendedKeyUsage clientAuth) for `subject`, e.g. `/O=Example/CN=alice`. */
  issueClient(subject: string, days?: number): Promise<{ cert: string; key: string }>;
  remove(): void;
}

// A new P-256 key at `key` and, with `-x509`, a self-signed certificate, else a signing request, at `out`.
const newKey = (key: string, out: string, subject: string, ...more: string[]) =>
  run('openssl', [
    'req',
    ...more,
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    key,
    '-out',
    out,
    '-subj',
    subject,
  ]);

export async function createTestCa(name = 'ADMP test CA'): Promise<TestCa> {
  const dir = mkdtempSync(join(tmpdir(), 'admp-ca-'));
  const caKey = join(dir, 'ca.key');
  const caFile = join(dir, 'ca.pem');
  await newKey(caKey, caFile, `/CN=${name}`, '-x509', '-days', '30');
  let n = 0;
  const sign = async (subject: string, extensions: string, days: number) => {
    const base = join(dir, `cert-${++n}`);
    const ext = `${base}.ext`;
    writeFileSync(ext, extensions);
    await newKey(`${base}.key`, `${base}.csr`, subject);
    await run('openssl', [
      'x509',
      '-req',
      '-in',
      `${base}.csr`,
      '-CA',
      caFile,
      '-CAkey',
      caKey,
      '-CAcreateserial',
      '-days',
      String(days),
      '-extfile',
      ext,
      '-out',
      `${base}.pem`,
    ]);
    return { cert: `${base}.pem`, key: `${base}.key` };
  };
  return {
    dir,
    caFile,
    issue: (host, days = 90) =>
      sign(`/CN=${host}`, `subjectAltName=${isIP(host) ? 'IP' : 'DNS'}:${host}\nextendedKeyUsage=serverAuth\n`, days),
    issueClient: (subject, days = 90) => sign(subject, 'extendedKeyUsage=clientAuth\n', days),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
