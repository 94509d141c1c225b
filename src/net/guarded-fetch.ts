// Outbound HTTP to addresses that senders choose (a partner's JWKS, webhook URLs) must not
// reach our own network: loopback, private (RFC 1918, RFC 6598), link-local (RFC 3927,
// RFC 4291 §2.5.6), unique-local (RFC 4193), multicast and reserved addresses are refused
// unless an explicit allow-list names them. The check is made on the address the socket
// actually connected to, after name resolution, so a name that resolves to a public
// address once and to 127.0.0.1 the next time (DNS rebinding) gains nothing. Resolved
// addresses are also filtered before connecting, so no packet goes to a refused address.
import { BlockList, isIP, type LookupFunction, type Socket } from 'node:net';
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { Agent, buildConnector } from 'undici';

// IANA special-purpose registries (RFC 6890 and updates): everything not globally reachable.
const REFUSED_V4 = [
  ['0.0.0.0', 8], // "this network"
  ['10.0.0.0', 8],
  ['100.64.0.0', 10], // shared address space (carrier-grade NAT)
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.0.2.0', 24], // documentation
  ['192.88.99.0', 24], // 6to4 relay anycast (deprecated)
  ['192.168.0.0', 16],
  ['198.18.0.0', 15], // benchmarking
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, and 255.255.255.255
] as const;
const REFUSED_V6 = [
  ['::', 128],
  ['::1', 128],
  ['64:ff9b:1::', 48], // local-use NAT64
  ['100::', 64], // discard-only
  ['2001:db8::', 32], // documentation
  ['fc00::', 7], // unique-local
  ['fe80::', 10], // link-local
  ['fec0::', 10], // site-local (deprecated, still routed by some stacks)
  ['ff00::', 8], // multicast
] as const;

const refused = new BlockList();
for (const [net, bits] of REFUSED_V4) refused.addSubnet(net, bits, 'ipv4');
for (const [net, bits] of REFUSED_V6) refused.addSubnet(net, bits, 'ipv6');

/** An IPv4 address embedded in IPv6 (mapped ::ffff:a.b.c.d, NAT64 64:ff9b::/96) is judged as IPv4. */
function embeddedV4(address: string): string | undefined {
  const m = /^(?:::ffff:|64:ff9b::)(?:(\d+\.\d+\.\d+\.\d+)|([0-9a-f]{1,4}):([0-9a-f]{1,4}))$/i.exec(address);
  if (!m) return undefined;
  if (m[1]) return m[1];
  const hi = parseInt(m[2]!, 16);
  const lo = parseInt(m[3]!, 16);
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

/** The allow-list setting (CIDRs or single addresses) as a BlockList; throws on a malformed entry. */
export function parseAllowList(entries: readonly string[]): BlockList {
  const list = new BlockList();
  for (const entry of entries) {
    const [net, bits, extra] = entry.trim().split('/');
    const family = isIP(net ?? '');
    const max = family === 6 ? 128 : 32;
    const prefix = bits === undefined ? max : Number(bits);
    if (family === 0 || extra !== undefined || !Number.isInteger(prefix) || prefix < 0 || prefix > max)
      throw new TypeError(`expected an address or CIDR, got "${entry}"`);
    list.addSubnet(net!, prefix, family === 6 ? 'ipv6' : 'ipv4');
  }
  return list;
}

/** Why an address may not be connected to, or undefined when it may. */
export function refusalOf(address: string, allow: BlockList): string | undefined {
  const family = isIP(address);
  if (family === 0) return `"${address}" is not an IP address`;
  const v4 = family === 6 ? embeddedV4(address) : address;
  const [a, type] = v4 ? [v4, 'ipv4' as const] : [address, 'ipv6' as const];
  if (allow.check(address, family === 6 ? 'ipv6' : 'ipv4') || allow.check(a, type)) return undefined;
  return refused.check(a, type)
    ? `${address} is a loopback, private, link-local, multicast or reserved address`
    : undefined;
}

export class RefusedAddressError extends Error {
  readonly code = 'ADMP_REFUSED_ADDRESS';
  constructor(host: string, reason: string) {
    super(`refused to connect to ${host}: ${reason}`);
  }
}

export interface GuardedDispatcherOptions {
  /** CIDRs that may be reached although refused by default (the allow-list setting). */
  readonly allow: readonly string[];
  /** Name resolution (default: the system resolver); tests map partner names to loopback. */
  readonly lookup?: LookupFunction;
}

/**
 * An undici dispatcher for requests to sender-chosen hosts. Host literals are checked
 * before connecting, resolved addresses are filtered, and the socket's remote address is
 * checked once connected (before any byte of the request, or of TLS, is written by us:
 * the TLS handshake starts only after this check, see connect below).
 */
export function guardedDispatcher(o: GuardedDispatcherOptions): Agent {
  const allow = parseAllowList(o.allow);
  const resolve = o.lookup ?? (dnsLookup as unknown as LookupFunction);
  const lookup: LookupFunction = (hostname, options, callback) => {
    resolve(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, '', 4);
      const all = (Array.isArray(addresses) ? addresses : [{ address: addresses, family: 4 }]) as LookupAddress[];
      const usable = all.filter((a) => refusalOf(a.address, allow) === undefined);
      if (usable.length === 0) {
        const reason = all.map((a) => refusalOf(a.address, allow)).join('; ') || 'no address';
        return callback(new RefusedAddressError(hostname, reason), '', 4);
      }
      if (options.all) (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, usable);
      else callback(null, usable[0]!.address, usable[0]!.family);
    });
  };
  const tcp = buildConnector({ lookup });
  const tls = buildConnector({});
  return new Agent({
    connect(opts, callback) {
      const host = opts.hostname.replace(/^\[|\]$/g, '');
      if (isIP(host)) {
        const reason = refusalOf(host, allow);
        if (reason) return callback(new RefusedAddressError(host, reason), null);
      }
      // Plain TCP first (no TLS), so the remote address is checked before anything is sent;
      // TLS is then layered on the checked socket (undici's connector accepts an existing socket).
      tcp({ ...opts, protocol: 'http:' }, (err, socket) => {
        if (err) return callback(err, null);
        const reason = refusalOf((socket as Socket).remoteAddress ?? '', allow);
        if (reason) {
          socket!.destroy();
          return callback(new RefusedAddressError(host, reason), null);
        }
        if (opts.protocol !== 'https:') return callback(null, socket!);
        tls({ ...opts, httpSocket: socket as Socket }, callback);
      });
    },
  });
}
