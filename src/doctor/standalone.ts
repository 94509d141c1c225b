// The checks of `admp doctor --standalone <host>` for a bare server (README "ADMP without
// Mailcow"): the SMTP edge answers on its port with a 220 banner and offers STARTTLS, its
// certificate is valid for the host and not about to expire, and the public DNS records
// partners need (MX, A, PTR, SPF, DMARC) are there, asked through ADMP_DNS_SERVERS.
import { Resolver } from 'node:dns/promises';
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect, type PeerCertificate } from 'node:tls';
import type { Config } from '../config.js';
import { fail, pass, type Check } from './report.js';

export interface StandaloneTargets {
  readonly config: Config;
  /** Agents domain whose MX should name `host`. */
  readonly domain: string;
  /** The edge's public host name (MX target, certificate name, banner). */
  readonly host: string;
  /** The edge's port (default 25); it is reached at the A record of `host` the configured DNS gives. */
  readonly port?: number;
  /** CA certificates (PEM) to trust instead of the system's, e.g. a private CA. */
  readonly ca?: string;
  /** Days a certificate must still be valid (14). */
  readonly minDays?: number;
}

const check = (name: string, run: Check['run']): Check => ({ name, run });
const MIN_DAYS = 14;

/** One SMTP exchange on a connected socket: the complete (multi-line) reply. */
function replyOf(socket: Socket, timeoutMs: number): Promise<string[]> {
  return new Promise((ok, bad) => {
    let buf = '';
    const timer = setTimeout(() => done(new Error(`no reply within ${timeoutMs} ms`)), timeoutMs);
    const onData = (d: Buffer) => {
      buf += d.toString('latin1');
      const lines = buf.split('\r\n');
      const last = lines.findIndex((l) => /^\d{3} /.test(l) || /^\d{3}$/.test(l));
      if (last >= 0) done(undefined, lines.slice(0, last + 1));
    };
    const onEnd = () => done(new Error(`connection closed${buf ? ` after "${buf.trim().slice(0, 200)}"` : ''}`));
    const done = (err?: Error, lines?: string[]) => {
      clearTimeout(timer);
      socket.removeListener('data', onData);
      socket.removeListener('close', onEnd);
      if (err) bad(err);
      else ok(lines!);
    };
    socket.on('data', onData);
    socket.once('close', onEnd);
  });
}

interface Probe {
  banner: string;
  starttls: boolean;
  cert?: PeerCertificate;
  authorizationError?: string;
}

/** Connects, reads the banner, EHLO, and when STARTTLS is offered, shakes hands and reads the certificate. */
async function probe(t: StandaloneTargets, resolver: Resolver): Promise<Probe> {
  const timeoutMs = t.config.smtpTimeoutMs;
  const [address = t.host] = await resolver.resolve4(t.host).catch(() => []);
  const socket = connect(t.port ?? 25, address);
  socket.on('error', () => undefined);
  try {
    await new Promise<void>((ok, bad) => {
      socket.once('connect', ok);
      socket.once('error', bad);
    });
    const [banner = ''] = (await replyOf(socket, timeoutMs)).slice(-1);
    if (!banner.startsWith('220')) return { banner, starttls: false };
    socket.write('EHLO admp-doctor.invalid\r\n');
    const ehlo = await replyOf(socket, timeoutMs);
    const starttls = ehlo.some((l) => /^250[- ]STARTTLS\b/i.test(l));
    if (!starttls) return { banner, starttls };
    socket.write('STARTTLS\r\n');
    const go = (await replyOf(socket, timeoutMs)).at(-1) ?? '';
    if (!go.startsWith('220')) return { banner, starttls: false };
    const secure = tlsConnect({
      socket,
      servername: t.host,
      rejectUnauthorized: false,
      ...(t.ca ? { ca: t.ca } : {}),
    });
    secure.on('error', () => undefined);
    await new Promise<void>((ok, bad) => {
      secure.once('secureConnect', ok);
      secure.once('error', bad);
    });
    const cert = secure.getPeerCertificate();
    const authorizationError = secure.authorized ? undefined : String(secure.authorizationError);
    secure.end('QUIT\r\n');
    return { banner, starttls, cert, ...(authorizationError ? { authorizationError } : {}) };
  } finally {
    socket.destroy();
  }
}

export function standaloneChecks(t: StandaloneTargets): Check[] {
  const where = `${t.host}:${t.port ?? 25}`;
  const resolver = new Resolver({ timeout: t.config.dnsTimeoutMs, tries: 2 });
  if (t.config.dnsServers.length > 0) resolver.setServers([...t.config.dnsServers]);
  let probed: Promise<Probe> | undefined;
  const probeOnce = () => (probed ??= probe(t, resolver));
  const dnsFail = (what: string, err: unknown, fix: string) =>
    fail(`${what}: ${(err as { code?: string }).code ?? (err as Error).message}`, fix);
  const txt = async (name: string, prefix: RegExp): Promise<string[]> =>
    (await resolver.resolveTxt(name)).map((chunks) => chunks.join('')).filter((v) => prefix.test(v));

  return [
    check(`SMTP edge answers on ${where} with 220 and offers STARTTLS`, async () => {
      let p: Probe;
      try {
        p = await probeOnce();
      } catch (err) {
        return fail(
          `${where}: ${(err as Error).message}`,
          'set ADMP_SMTP_LISTEN (compose: publish port 25), open port 25 in the firewall, and check that no other MTA holds it',
        );
      }
      if (!p.banner.startsWith('220'))
        return fail(`banner: ${p.banner}`, 'the edge refuses this address; see its log (event smtp_refused)');
      if (!p.starttls)
        return fail(
          `${p.banner}; STARTTLS is not offered`,
          'set ADMP_SMTP_TLS_CERT and ADMP_SMTP_TLS_KEY (partners send in the clear otherwise)',
        );
      return pass(`${p.banner}; STARTTLS offered`);
    }),
    check(`certificate valid for ${t.host} for at least ${t.minDays ?? MIN_DAYS} days`, async () => {
      const p = await probeOnce().catch(() => undefined);
      if (!p?.cert?.valid_to) return fail('no certificate seen (no STARTTLS)', 'fix the check above first');
      const days = Math.floor((Date.parse(p.cert.valid_to) - Date.now()) / 86_400_000);
      const renew = 'renew it (certbot renew) and copy it where ADMP_SMTP_TLS_CERT points: the edge re-reads it';
      if (p.authorizationError) return fail(`not trusted: ${p.authorizationError}`, renew);
      const names = (p.cert.subjectaltname ?? '').split(/,\s*/).map((n) => n.replace(/^DNS:/, '').toLowerCase());
      if (!names.includes(t.host.toLowerCase()))
        return fail(`issued for ${names.join(', ') || p.cert.subject?.CN}, not ${t.host}`, renew);
      if (days < (t.minDays ?? MIN_DAYS)) return fail(`expires ${p.cert.valid_to} (in ${days} days)`, renew);
      return pass(`issued by ${p.cert.issuer?.CN ?? '?'}, expires ${p.cert.valid_to} (in ${days} days)`);
    }),
    check(`DNS: MX of ${t.domain} names ${t.host}`, async () => {
      try {
        const mx = (await resolver.resolveMx(t.domain)).map((m) => m.exchange.toLowerCase().replace(/\.$/, ''));
        return mx.includes(t.host.toLowerCase())
          ? pass(mx.join(', '))
          : fail(`MX: ${mx.join(', ') || 'none'}`, `publish "${t.domain}. MX 10 ${t.host}."`);
      } catch (err) {
        return dnsFail(`MX ${t.domain}`, err, `publish "${t.domain}. MX 10 ${t.host}."`);
      }
    }),
    check(`DNS: A of ${t.host}, and its PTR back to ${t.host}`, async () => {
      let addresses: string[];
      try {
        addresses = await resolver.resolve4(t.host);
      } catch (err) {
        return dnsFail(`A ${t.host}`, err, `publish "${t.host}. A <the server's address>"`);
      }
      const fix = (ip: string) => `ask your hosting provider for a PTR of ${ip} to ${t.host}`;
      for (const ip of addresses) {
        try {
          // resolvePtr asks DNS only; reverse() would answer from /etc/hosts first.
          const arpa = `${ip.split('.').reverse().join('.')}.in-addr.arpa`;
          const names = (await resolver.resolvePtr(arpa)).map((n) => n.toLowerCase().replace(/\.$/, ''));
          if (!names.includes(t.host.toLowerCase())) return fail(`PTR ${ip}: ${names.join(', ')}`, fix(ip));
        } catch (err) {
          return dnsFail(`PTR ${ip}`, err, fix(ip));
        }
      }
      return pass(`${addresses.join(', ')}, PTR ${t.host}`);
    }),
    check(`DNS: SPF and DMARC of ${t.domain}`, async () => {
      const spfFix = `publish "${t.domain}. TXT \\"v=spf1 mx -all\\""`;
      const dmarcFix = `publish "_dmarc.${t.domain}. TXT \\"v=DMARC1; p=reject; adkim=s\\""`;
      const spf = await txt(t.domain, /^v=spf1(\s|$)/i).catch((err: unknown) => err);
      const dmarc = await txt(`_dmarc.${t.domain}`, /^v=DMARC1\s*;/i).catch((err: unknown) => err);
      const problem = (what: string, found: unknown, fix: string) =>
        !Array.isArray(found)
          ? dnsFail(what, found, fix)
          : found.length !== 1 // RFC 7208 §4.5, RFC 7489 §6.6.3: none, or more than one, is no policy
            ? fail(`${what}: ${found.length} records`, fix)
            : undefined;
      const bad = [problem(`SPF ${t.domain}`, spf, spfFix), problem(`DMARC _dmarc.${t.domain}`, dmarc, dmarcFix)];
      const failed = bad.filter((b) => b !== undefined);
      if (failed.length > 0) return fail(failed.map((f) => f.detail).join('; '), failed.map((f) => f.fix).join('; '));
      const [spfText] = spf as string[];
      const [dmarcText] = dmarc as string[];
      return pass(`${spfText} / ${dmarcText}`);
    }),
  ];
}
