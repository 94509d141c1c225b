// Agent addresses: `local@domain`, compared lower-cased. The local part follows the
// agent.id rule of migrations/0001_core.sql; the domain is a DNS name (RFC 1035 §2.3.1).
//
// One rule for every road (docs/protocol.md §2): an agent address is ASCII. Case is folded
// for A–Z only, never by Unicode: String#toLowerCase maps U+212A KELVIN SIGN to "k" and
// U+0130 to "i̇", so "\u212Aim" would become "kim" and reach another agent's inbox.
// Anything that is not ASCII is not an agent address, and is refused as such.
import { AdmpError } from '../errors.js';

/** A–Z to a–z and nothing else (no Unicode case mapping). */
export const asciiLower = (s: string): string => s.replace(/[A-Z]+/g, (m) => m.toLowerCase());

export interface AgentAddress {
  readonly local: string;
  readonly domain: string;
  readonly address: string;
}

const LOCAL = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const DOMAIN = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$/;

const TOKEN = /^t-[0-9a-f]{32}$/;

/** An agent id: a local part (agents of a plain domain), or a whole address (a tenant's agents, src/core/domains.ts). */
export const isAgentId = (s: string): boolean => LOCAL.test(s);
/** A local part in the form of an address token (`t-<32 hex>`, migrations/0017_tenants.sql): never an agent's name. */
export const isAddressToken = (local: string): boolean => TOKEN.test(local);

/** The agent id (inbox key) of an address: its local part in a plain domain, the whole address in a tenant's. */
export const agentIdOf = (a: AgentAddress, inTenant: boolean): string => (inTenant ? a.address : a.local);

/** An agent's address from its row: a tenant agent's id is already its address. */
export const addressOfAgent = (a: { readonly id: string; readonly domain: string }): string =>
  a.id.includes('@') ? a.id : `${a.id}@${a.domain}`;
export const isDomain = (s: string): boolean => DOMAIN.test(s);

/** Parses an agent address; returns undefined when it is not one. */
export function tryParseAddress(input: string): AgentAddress | undefined {
  const at = input.lastIndexOf('@');
  if (at <= 0) return undefined;
  const local = asciiLower(input.slice(0, at));
  const domain = asciiLower(input.slice(at + 1)).replace(/\.$/, '');
  if (!LOCAL.test(local) || !DOMAIN.test(domain)) return undefined;
  return { local, domain, address: `${local}@${domain}` };
}

/** Parses an agent address or throws `bad_request` naming the field. */
export function parseAddress(input: string, field: string): AgentAddress {
  const a = tryParseAddress(input);
  if (!a)
    throw new AdmpError('bad_request', `${field}: "${input.slice(0, 100)}" is not an agent address (local@domain)`);
  return a;
}

export interface RecipientAddress {
  /** The agent's address, without the detail. */
  readonly agent: AgentAddress;
  /** The subaddress after `+` (RFC 5233), as given; undefined when there is none. */
  readonly detail?: string;
}

// RFC 5233 §1: the detail is what follows the first "+" of the local part. Kept to
// characters that are safe in logs, JSON and header fields.
const DETAIL = /^[A-Za-z0-9._=-]{1,64}$/;

/**
 * A recipient address, plus-addressed or not (RFC 5233: `bob+anything@domain` is
 * bob's): the agent address and the detail. Undefined when it is neither.
 */
export function tryParseRecipient(input: string): RecipientAddress | undefined {
  const at = input.lastIndexOf('@');
  const plus = input.indexOf('+');
  if (plus < 0 || plus > at) {
    const agent = tryParseAddress(input);
    return agent ? { agent } : undefined;
  }
  const detail = input.slice(plus + 1, at);
  const agent = tryParseAddress(`${input.slice(0, plus)}${input.slice(at)}`);
  return agent && DETAIL.test(detail) ? { agent, detail } : undefined;
}
