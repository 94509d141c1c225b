// Agent keys in DNS: TXT records at `_agentkeys.<domain>`, one key per record, as a
// DKIM-style tag list (RFC 6376 §3.2): `kid=<kid>; x=<base64 raw public key>`, and
// optionally `agent=<local@domain>` to limit the key to one agent. Unknown tags are
// ignored so the format can grow; records without kid and x are not ours and skipped.
import { Resolver } from 'node:dns/promises';
import { KID, type AgentPublicKey } from '../core/signature.js';
import { tryParseAddress } from '../core/address.js';
import type { AgentKeyRow } from '../db/keys.js';
import type { KeySet } from './key-set-cache.js';

export const TXT_LABEL = '_agentkeys';

const X_B64 = /^[A-Za-z0-9+/]{43}=$/; // 32 bytes, standard base64 (RFC 4648 §4)

/** Parses one TXT record (its strings already joined); undefined when it is not a usable key. */
export function parseAgentKeyTxt(text: string, domain: string): AgentPublicKey | undefined {
  const tags = new Map<string, string>();
  for (const part of text.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0) tags.set(part.slice(0, eq).trim(), part.slice(eq + 1).replace(/\s+/g, ''));
  }
  const kid = tags.get('kid');
  const x = tags.get('x');
  if (!kid || !KID.test(kid) || !x || !X_B64.test(x)) return undefined;
  let agent: string | null = null;
  if (tags.has('agent')) {
    const a = tryParseAddress(tags.get('agent')!);
    if (a?.domain !== domain) return undefined;
    agent = a.address;
  }
  return { domain, kid, agent, publicKey: Buffer.from(x, 'base64'), source: 'dns' };
}

/** TXT record texts publishing our valid local keys (for `admp key dns`); one record per key. */
export function agentKeyTxtRecords(rows: readonly AgentKeyRow[]): { name: string; text: string }[] {
  return rows
    .filter((r) => r.source === 'local')
    .map((r) => ({
      name: `${TXT_LABEL}.${r.domain}`,
      text: `kid=${r.kid}; x=${r.publicKey.toString('base64')}; agent=${r.agent}`,
    }));
}

/** A DNS TXT query; the shape of `Resolver#resolveTxt`: one array of strings per record. */
export type ResolveTxt = (name: string) => Promise<string[][]>;

/** A resolver on the configured servers (config dnsServers; empty: the system's), bounded by dnsTimeoutMs. */
export function configuredResolver(o: { servers: readonly string[]; timeoutMs: number }): Resolver {
  const r = new Resolver({ timeout: o.timeoutMs, tries: 2 });
  if (o.servers.length > 0) r.setServers([...o.servers]);
  return r;
}

export function createTxtResolver(o: { servers: readonly string[]; timeoutMs: number }): ResolveTxt {
  const r = configuredResolver(o);
  return (name) => r.resolveTxt(name);
}

// No such name, or no TXT at it: the domain publishes no keys in DNS.
const ABSENT = new Set(['ENOTFOUND', 'ENODATA']);

export async function fetchDnsKeys(domain: string, resolveTxt: ResolveTxt): Promise<KeySet> {
  const name = `${TXT_LABEL}.${domain}`;
  try {
    const records = await resolveTxt(name);
    // A record longer than 255 bytes arrives as several strings (RFC 1035 §3.3.14): join them.
    return { status: 'ok', keys: records.flatMap((strings) => parseAgentKeyTxt(strings.join(''), domain) ?? []) };
  } catch (err) {
    const code = (err as { code?: string }).code ?? '';
    if (ABSENT.has(code)) return { status: 'absent' };
    return { status: 'unavailable', reason: `TXT ${name}: ${code || (err as Error).message}` };
  }
}
