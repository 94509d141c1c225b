// Our agents domains (ADMP_DOMAINS): plain names (`agents.example.com`) and wildcards
// (`*.inbound.example.com`). Under a wildcard each tenant is one subdomain with agents of
// its own: `bob@acme.inbound.example.com` is tenant acme's bob. As in a TLS certificate
// (RFC 6125 §6.4.3), the `*` stands for exactly one label, so `a.b.inbound.example.com`
// is no tenant's. Whether a tenant exists is the database's to say (the tenant table).
import { asciiLower, isDomain } from './address.js';

/** Where a domain stands: one of our plain domains, a tenant's subdomain (`base` its wildcard's), or not ours. */
export type DomainKind = { kind: 'plain' } | { kind: 'tenant'; base: string } | undefined;

const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

export const isTenantLabel = (s: string): boolean => LABEL.test(s);

/** Whether an ADMP_DOMAINS entry is well formed: a DNS name, or `*.` and a DNS name. */
export function isDomainEntry(entry: string): boolean {
  return isDomain(entry.startsWith('*.') ? entry.slice(2) : entry);
}

/** The wildcard bases (`inbound.example.com` for `*.inbound.example.com`), in configured order. */
export const wildcardBases = (domains: readonly string[]): string[] =>
  domains.filter((d) => d.startsWith('*.')).map((d) => d.slice(2));

export function classifyDomain(domains: readonly string[], domain: string): DomainKind {
  const d = asciiLower(domain);
  if (domains.includes(d)) return { kind: 'plain' };
  const dot = d.indexOf('.');
  if (dot <= 0 || !isTenantLabel(d.slice(0, dot))) return undefined;
  const base = d.slice(dot + 1);
  return domains.includes(`*.${base}`) ? { kind: 'tenant', base } : undefined;
}

/**
 * Tenants are apart: an agent of one tenant is no local sender to another tenant's agents
 * (a policy rule may still admit it on the mail roads). Our plain domains and the tenants
 * reach each other.
 */
export function acrossTenants(domains: readonly string[], fromDomain: string, toDomain: string): boolean {
  const from = classifyDomain(domains, fromDomain);
  const to = classifyDomain(domains, toDomain);
  return from?.kind === 'tenant' && to?.kind === 'tenant' && asciiLower(fromDomain) !== asciiLower(toDomain);
}

/** Whether mail for `domain` is ours to take (a tenant's still has to exist). */
export const isOurDomain = (domains: readonly string[], domain: string): boolean =>
  classifyDomain(domains, domain) !== undefined;
