// The PROXY protocol header (HAProxy's proxy-protocol.txt, versions 1 and 2) a load
// balancer sends before the SMTP session: it names the real client, which then
// counts for the per-address limits, SPF and the logs. Read only from peers listed
// in ADMP_SMTP_PROXY; anyone else could name any address. Parsing is
// proxy-protocol-js's; this file only cuts the header off the socket.
import type { Socket } from 'node:net';
import pp from 'proxy-protocol-js';

export interface ProxiedClient {
  readonly address: string;
  readonly port: number;
}

// v2 starts with this 12-byte signature, then version/command, family, and a 16-bit length (§2.2).
const V2_SIGNATURE = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');
const V1_PREFIX = Buffer.from('PROXY ');
const V1_MAX = 107; // the longest v1 line, CRLF included (§2.1)

const ipv6 = (bytes: readonly number[]): string => {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  return groups.join(':');
};

/** The header's length once `buf` holds all of it, 0 while more is needed, -1 when it is no PROXY header. */
function headerLength(buf: Buffer): number {
  const n = Math.min(buf.length, V2_SIGNATURE.length);
  if (buf.subarray(0, n).equals(V2_SIGNATURE.subarray(0, n))) {
    return buf.length < 16 ? 0 : buf.length >= 16 + buf.readUInt16BE(14) ? 16 + buf.readUInt16BE(14) : 0;
  }
  const m = Math.min(buf.length, V1_PREFIX.length);
  if (!buf.subarray(0, m).equals(V1_PREFIX.subarray(0, m))) return -1;
  const lf = buf.indexOf(0x0a);
  if (lf < 0) return buf.length >= V1_MAX ? -1 : 0;
  return lf + 1 <= V1_MAX && buf[lf - 1] === 0x0d ? lf + 1 : -1;
}

/** The client a complete header names; undefined for v2 LOCAL or v1 UNKNOWN (the balancer's own connection). */
function parse(header: Buffer): ProxiedClient | undefined {
  if (header[0] === 0x0d) {
    const p = pp.V2ProxyProtocol.parse(header);
    const a = p.proxyAddress;
    if (p.command !== pp.Command.PROXY) return undefined;
    if (a instanceof pp.IPv4ProxyAddress) return { address: a.sourceAddress.address.join('.'), port: a.sourcePort };
    if (a instanceof pp.IPv6ProxyAddress) return { address: ipv6(a.sourceAddress.address), port: a.sourcePort };
    return undefined;
  }
  const line = header.toString('latin1');
  if (line.startsWith('PROXY UNKNOWN')) return undefined;
  const p = pp.V1ProxyProtocol.parse(line);
  return { address: p.source.ipAddress, port: p.source.port };
}

/**
 * Reads the header at the start of `socket` and leaves the bytes after it unread.
 * Rejects when the peer sends something else, or nothing within `timeoutMs`.
 */
export function readProxyHeader(socket: Socket, timeoutMs: number): Promise<ProxiedClient | undefined> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const done = (err: Error | undefined, client?: ProxiedClient, rest?: Buffer) => {
      clearTimeout(timer);
      socket.removeListener('data', onData);
      socket.removeListener('close', onClose);
      socket.pause();
      if (err) return reject(err);
      if (rest && rest.length > 0) socket.unshift(rest);
      resolve(client);
    };
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      const len = headerLength(buf);
      if (len < 0 || buf.length > 16 + 0xffff) return done(new Error('not a PROXY protocol header'));
      if (len === 0) return;
      try {
        done(undefined, parse(buf.subarray(0, len)), buf.subarray(len));
      } catch (err) {
        done(new Error(`bad PROXY protocol header: ${(err as { message?: string }).message ?? String(err)}`));
      }
    };
    const onClose = () => done(new Error('closed before the PROXY protocol header'));
    const timer = setTimeout(() => done(new Error('no PROXY protocol header in time')), timeoutMs);
    socket.on('data', onData);
    socket.once('close', onClose);
  });
}
