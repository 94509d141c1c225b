// The operator commands' two ways to the same operations: on the server, the Admin
// service over the database; from anywhere, a running server's admin
// API (ADMP_URL with ADMP_ADMIN_TOKEN). Both answer in the admin API's JSON shapes, so
// a command prints the same whichever way it went.
import type { Static } from '@sinclair/typebox';
import { loadConfig, type Config } from '../config.js';
import { AdmpError, ConfigError, type ErrorCode, ERROR_KINDS } from '../errors.js';
import { withAdmin } from '../app/open.js';
import * as S from '../http/admin/schemas.js';
import { checkAgainst } from '../http/admin/validation.js';
import { wire } from '../http/admin/wire.js';
import { clientTime } from '../core/time.js';
import { presentAddressToken } from '../http/admin/present.js';
import { addressOfAgent } from '../core/address.js';

type Refs = Static<typeof S.MessageRefs>['messages'];

export interface Operator {
  listAgents(): Promise<S.Agent[]>;
  addAgent(id: string, domain?: string): Promise<S.AgentCredentials>;
  rotate(id: string, hmac: boolean): Promise<S.AgentCredentials>;
  listRules(): Promise<S.Rule[]>;
  addRule(rule: S.NewRule): Promise<S.Rule>;
  removeRule(id: number): Promise<void>;
  dryRun(d: S.DryRun): Promise<S.Decision>;
  /** Filters as text or numbers, checked against the search schema on either path. */
  search(q: Record<string, string | number>): Promise<S.MessagePage>;
  redrive(refs: Refs): Promise<string[]>;
  deleteDead(refs: Refs): Promise<string[]>;
  listTenants(): Promise<S.Tenant[]>;
  addTenant(name: string): Promise<S.Tenant>;
  removeTenant(name: string): Promise<string>;
  listAddresses(agent?: string): Promise<S.AddressToken[]>;
  createAddress(agent: string): Promise<S.AddressToken>;
  revokeAddress(address: string): Promise<void>;
}

/** Runs fn with the remote admin API when ADMP_URL is set, else with the local database. */
export async function withOperator<T>(fn: (op: Operator) => Promise<T>, config: Config = loadConfig()): Promise<T> {
  if (config.adminUrl) return fn(remoteOperator(config.adminUrl, config.adminToken));
  return withAdmin((admin) =>
    fn({
      listAgents: async () => wire(await admin.listAgents()),
      async addAgent(id, domain) {
        const a = await admin.addAgent(id, domain);
        return { id: a.id, address: addressOfAgent(a), token: a.token, hmac_secret: a.hmac_secret };
      },
      async rotate(id, hmac) {
        const a = await admin.rotateCredentials(id, hmac ? ['token', 'hmac'] : ['token']);
        return {
          id: a.id,
          address: addressOfAgent(a),
          ...(a.token ? { token: a.token } : {}),
          ...(a.hmac_secret ? { hmac_secret: a.hmac_secret } : {}),
        };
      },
      listRules: () => admin.listRules(),
      addRule: (r) => admin.addRule(r),
      removeRule: (id) => admin.removeRule(id),
      dryRun: (d) => admin.dryRun(checkAgainst<S.DryRun>(S.DryRun, d, 'dry-run')),
      async search(query) {
        const q = checkAgainst<S.SearchQuery>(S.SearchQuery, query, 'search');
        const { rows, next } = await admin.search({
          ...q,
          after: q.after ? clientTime(q.after, 'after') : undefined,
          before: q.before ? clientTime(q.before, 'before') : undefined,
        });
        return { messages: wire(rows).map(({ micros: _, ...m }) => m), next_cursor: next };
      },
      redrive: (refs) => admin.redrive(checkAgainst<S.MessageRefs>(S.MessageRefs, { messages: refs }, 'ids').messages),
      deleteDead: (refs) =>
        admin.deleteDead(checkAgainst<S.MessageRefs>(S.MessageRefs, { messages: refs }, 'ids').messages),
      listTenants: async () => wire(await admin.listTenants()),
      addTenant: async (name) => wire(await admin.addTenant(name)),
      removeTenant: (name) => admin.removeTenant(name),
      listAddresses: async (agent) => (await admin.listAddressTokens(agent)).map(presentAddressToken),
      createAddress: async (agent) => presentAddressToken(await admin.createAddressToken(agent)),
      revokeAddress: (address) => admin.revokeAddressToken(address),
    }),
  );
}

function remoteOperator(base: string, token: string): Operator {
  let root: URL;
  try {
    root = new URL('admin/v1/', base.endsWith('/') ? base : `${base}/`);
  } catch {
    throw new ConfigError('ADMP_URL', `not a URL: ${base}`);
  }
  if (root.protocol !== 'https:' && root.protocol !== 'http:')
    throw new ConfigError('ADMP_URL', 'use an http:// or https:// URL');
  if (!token) throw new ConfigError('ADMP_ADMIN_TOKEN', 'ADMP_URL is set: give an admin token too');

  async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
    let res: Response;
    try {
      res = await fetch(new URL(path, root), {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        body: body !== undefined ? JSON.stringify(body) : undefined,
        signal: AbortSignal.timeout(30_000),
      });
    } catch (err) {
      throw new AdmpError('storage_unavailable', `cannot reach ${root.origin}: ${(err as Error).message}`);
    }
    const data = (await res.json().catch(() => undefined)) as { error?: { code?: string; message?: string } };
    if (!res.ok) {
      const code = (data?.error?.code ?? '') in ERROR_KINDS ? (data!.error!.code as ErrorCode) : 'internal';
      throw new AdmpError(code, data?.error?.message ?? `${res.status} from ${root.origin}`);
    }
    return data as T;
  }
  const qs = (q: Record<string, unknown>) =>
    new URLSearchParams(
      Object.entries(q).flatMap(([k, v]) => (v === undefined || v === '' ? [] : [[k, String(v)]])),
    ).toString();

  return {
    listAgents: () => call('GET', 'agents'),
    addAgent: (id, domain) => call('POST', 'agents', { id, ...(domain ? { domain } : {}) }),
    rotate: (id, hmac) => call('POST', `agents/${encodeURIComponent(id)}/rotate`, { hmac }),
    listRules: () => call('GET', 'policy/rules'),
    addRule: (r) => call('POST', 'policy/rules', r),
    removeRule: async (id) => void (await call('DELETE', `policy/rules/${id}`)),
    dryRun: (d) => call('POST', 'policy/dry-run', d),
    search: (q) => call('GET', `messages?${qs(q)}`),
    redrive: async (refs) => (await call<{ ids: string[] }>('POST', 'dead-letters/redrive', { messages: refs })).ids,
    deleteDead: async (refs) => (await call<{ ids: string[] }>('POST', 'dead-letters/delete', { messages: refs })).ids,
    listTenants: () => call('GET', 'tenants'),
    addTenant: (name) => call('POST', 'tenants', { name }),
    removeTenant: async (name) =>
      (await call<{ removed: string }>('DELETE', `tenants/${encodeURIComponent(name)}`)).removed,
    listAddresses: (agent) => call('GET', `addresses${agent ? `?${qs({ agent })}` : ''}`),
    createAddress: (agent) => call('POST', 'addresses', { agent }),
    revokeAddress: async (address) => void (await call('POST', 'addresses/revoke', { address })),
  };
}
