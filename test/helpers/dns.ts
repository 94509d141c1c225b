// An authoritative-only DNS server on 127.0.0.1 (UDP + TCP, same port) for tests: it serves the
// TXT records it is given (DKIM keys, _agentkeys.<domain>, SPF, DMARC) and answers NXDOMAIN for
// every other name at once, so nothing (rspamd, Postfix, mailauth) waits on a timeout or asks the
// internet. In-process dns2 rather than dnsmasq: records change per test without a restart.
import { Resolver } from 'node:dns/promises';
import type { Socket } from 'node:net';
import dns2 from 'dns2';

const { Packet } = dns2;
const NXDOMAIN = 3; // RFC 1035 4.1.1 (dns2's Packet.RCODE is missing from its typings)

export interface TestDns {
  readonly port: number;
  /** `127.0.0.1:port`, the form rspamd's `nameserver` and Node's Resolver.setServers take. */
  readonly server: string;
  /** Replaces the TXT record set of `name`; no values removes the name (NXDOMAIN again). */
  setTxt(name: string, ...values: string[]): void;
  /** Sets the MX of `name` (priority 10); no exchange removes it. */
  setMx(name: string, exchange?: string): void;
  /** Sets the A record of `name`; no address removes it. */
  setA(name: string, address?: string): void;
  /** Sets the PTR of IPv4 `address` (at its in-addr.arpa name); no name removes it. */
  setPtr(address: string, name?: string): void;
  /** Asks this server (a Node Resolver pointed at it): the resolver mailauth's options take. */
  resolve(name: string, rrtype: string): Promise<string[][]>;
  /** Names and types asked so far, e.g. `TXT sel1._domainkey.sender.example`. */
  readonly queries: readonly string[];
  stop(): Promise<void>;
}

const canonical = (name: string): string => name.toLowerCase().replace(/\.$/, '');

// RFC 1035 3.3.14: a TXT record is a sequence of <character-string>s of at most 255 octets;
// dns2 writes each string's length in one octet without splitting, so long values are split here.
const chunks = (value: string): string[] =>
  Buffer.from(value, 'utf8')
    .toString('latin1')
    .match(/[\s\S]{1,255}/g)
    ?.map((c) => Buffer.from(c, 'latin1').toString('utf8')) ?? [''];

export async function startDns(
  options: {
    txt?: Record<string, string | string[]>;
    /** Where to listen instead of a free loopback port (the mini-Mailcow's resolver in a container). */
    listen?: { host: string; port: number };
  } = {},
): Promise<TestDns> {
  const txt = new Map<string, string[]>();
  const mx = new Map<string, string>();
  const a = new Map<string, string>();
  const ptr = new Map<string, string>();
  const queries: string[] = [];
  const setTxt = (name: string, ...values: string[]): void => {
    if (values.length === 0) txt.delete(canonical(name));
    else txt.set(canonical(name), values);
  };
  for (const [name, v] of Object.entries(options.txt ?? {})) setTxt(name, ...(Array.isArray(v) ? v : [v]));

  const handle: dns2.DnsHandler = (request, send) => {
    const response = Packet.createResponseFromRequest(request);
    response.header.aa = 1;
    const question = request.questions[0];
    if (question) {
      const name = canonical(question.name);
      queries.push(`${typeName(question.type)} ${name}`);
      const values = txt.get(name);
      const exchange = mx.get(name);
      const address = a.get(name);
      const pointer = ptr.get(name);
      if (!values && !exchange && !address && !pointer) response.header.rcode = NXDOMAIN;
      else if (question.type === Packet.TYPE.A && address)
        response.answers.push(
          Packet.createResourceFromQuestion(question, { type: Packet.TYPE.A, class: Packet.CLASS.IN, ttl: 0, address }),
        );
      else if (question.type === Packet.TYPE.PTR && pointer)
        response.answers.push(
          Packet.createResourceFromQuestion(question, {
            type: Packet.TYPE.PTR,
            class: Packet.CLASS.IN,
            ttl: 0,
            domain: pointer,
          }),
        );
      else if (question.type === Packet.TYPE.TXT) {
        for (const value of values ?? []) {
          response.answers.push(
            Packet.createResourceFromQuestion(question, {
              type: Packet.TYPE.TXT,
              class: Packet.CLASS.IN,
              ttl: 0,
              data: chunks(value),
            }),
          );
        }
      } else if (question.type === Packet.TYPE.MX && exchange) {
        response.answers.push(
          Packet.createResourceFromQuestion(question, {
            type: Packet.TYPE.MX,
            class: Packet.CLASS.IN,
            ttl: 0,
            exchange,
            priority: 10,
          }),
        );
      }
      // A known name asked for another type: NOERROR with no answers (RFC 2308 NODATA).
    }
    void send(response);
  };
  const { udp, tcp, port } = await listenOnFreePort(handle, options.listen);
  const tcpClients = new Set<Socket>();
  tcp.on('connection', (s: Socket) => {
    tcpClients.add(s);
    s.on('close', () => tcpClients.delete(s));
  });
  const resolver = new Resolver();
  resolver.setServers([`127.0.0.1:${port}`]);
  return {
    port,
    server: `127.0.0.1:${port}`,
    resolve: (name, rrtype) => resolver.resolve(name, rrtype) as Promise<string[][]>,
    setTxt,
    setMx: (name, exchange) => void (exchange ? mx.set(canonical(name), exchange) : mx.delete(canonical(name))),
    setA: (name, address) => void (address ? a.set(canonical(name), address) : a.delete(canonical(name))),
    setPtr(address, name) {
      const arpa = `${address.split('.').reverse().join('.')}.in-addr.arpa`;
      if (name) ptr.set(arpa, name);
      else ptr.delete(arpa);
    },
    queries,
    async stop() {
      // close() alone waits for idle TCP clients (dns2 keeps them 10 s, RFC 7766 6.2.3).
      for (const s of tcpClients) s.destroy();
      await Promise.all([
        new Promise<void>((ok) => udp.close(() => ok())),
        new Promise<void>((ok) => tcp.close(() => ok())),
      ]);
    },
  };
}

const typeName = (type: number): string => Object.entries(Packet.TYPE).find(([, n]) => n === type)?.[0] ?? String(type);

// UDP and TCP share the port number (RFC 7766: a client retries a truncated answer over TCP);
// retry when the number UDP got is already taken for TCP.
async function listenOnFreePort(
  handle: dns2.DnsHandler,
  at: { host: string; port: number } = { host: '127.0.0.1', port: 0 },
): Promise<{ udp: dns2.UDPServer; tcp: dns2.TCPServer; port: number }> {
  for (let attempt = 0; ; attempt++) {
    const udp = dns2.createUDPServer(handle);
    await udp.listen(at.port, at.host);
    const port = udp.address().port;
    const tcp = dns2.createTCPServer(handle);
    try {
      await new Promise<void>((ok, fail) => {
        tcp.once('error', fail);
        tcp.listen(port, at.host);
        tcp.once('listening', () => ok());
      });
      return { udp, tcp, port };
    } catch (err) {
      udp.close();
      if (attempt >= 5 || at.port !== 0) throw err;
    }
  }
}
