// The operator's service: agents and their credentials, signing keys, policy rules,
// the schema. The CLI, `admp doctor` (and the admin API) call this; none of them
// touches the database directly.
import { mkdir, unlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type pg from 'pg';
import type { Config } from '../config.js';
import { AdmpError } from '../errors.js';
import {
  addressOfAgent,
  agentIdOf,
  asciiLower,
  isAddressToken,
  isAgentId,
  isDomain,
  parseAddress,
  type AgentAddress,
} from '../core/address.js';
import { classifyDomain, isOurDomain, isTenantLabel, wildcardBases } from '../core/domains.js';
import { addTenant, listTenants, removeTenant, type TenantRow } from '../db/tenants.js';
import {
  createAddressToken,
  listAddressTokens,
  revokeAddressToken,
  type AddressTokenRow,
} from '../db/address-tokens.js';
import { ruleProblem, type PolicyRule } from '../core/policy.js';
import {
  addAgent,
  findAgent,
  listAgents,
  purgeAgent,
  rotateCredentials,
  type AgentRow,
  type Credentials,
} from '../db/agents.js';
import {
  insertLocalKey,
  listAllKeys,
  listValidKeys,
  pinPartnerKey,
  retireOtherKeys,
  revokeAgentKeys,
  revokeKey,
  type AgentKeyRow,
  type KeyFilter,
} from '../db/keys.js';
import { migrate, pendingMigrations } from '../db/migrate.js';
import { databaseNotReady } from '../db/readiness.js';
import { CitusPlanError, distributeCitus, planCitus, type CitusPlan } from '../db/citus.js';
import { createAdminToken, listAdminTokens, revokeAdminToken, type AdminTokenRow } from '../db/admin-tokens.js';
import { addRule, listRules, removeRule, type RuleRow } from '../db/policy-rules.js';
import { anyMessageTo } from '../db/status.js';
import { addCertBinding, listCertBindings, removeCertBinding, type CertBindingRow } from '../db/client-certs.js';
import type { CertBinding } from '../core/client-cert.js';
import { keyFileName, keysDir } from '../keys/key-files.js';
import { createAgentKey } from '../keys/private-key.js';
import type { PolicySource } from '../policy/store.js';
import { createOperations, type Operations } from './operations.js';
import { createWebhookEndpoints, type WebhookEndpoints } from '../mailbox/webhook-endpoints.js';

export type { AddressTokenRow, AgentKeyRow, AgentRow, CertBindingRow, CitusPlan, Credentials, RuleRow, TenantRow };

// A rotation's old key must outlive partners' key caches (300 s) and the signature window (±300 s).
export const MIN_OVERLAP_SEC = 600;
/** How long a rotated-out key keeps verifying unless the operator says otherwise: a day. */
export const DEFAULT_OVERLAP_SEC = 86_400;

/** Subscribes to queue activity (mail stored, leases returned); returns the unsubscribe. */
export type QueueWatch = (fn: () => void) => () => void;

export interface Admin extends Operations {
  /** Any agent's webhook endpoints (the CLI; an agent manages its own through the API). */
  readonly webhooks: WebhookEndpoints;
  addAgent(id: string, domain?: string): Promise<AgentRow & Credentials>;
  listAgents(): Promise<(AgentRow & { address: string })[]>;
  /** New credentials of the given kinds (the old ones are revoked), with the agent they belong to. */
  rotateCredentials(id: string, kinds: ('token' | 'hmac')[]): Promise<AgentRow & Partial<Credentials>>;
  /** Removes an agent, its keys and its messages (only the doctor's probe agent is removed this way). */
  purgeAgent(id: string): Promise<void>;
  /** Requires the client certificate (besides the credential) on the agent's API calls; twice is a no-op. */
  bindClientCert(id: string, binding: CertBinding): Promise<void>;
  /** Removes a binding, or refuses with not_found. */
  unbindClientCert(id: string, binding: CertBinding): Promise<void>;
  clientCertBindings(id?: string): Promise<CertBindingRow[]>;

  /** `local` or `local@domain` of one of our domains (a tenant's included), or a clear refusal. */
  localAgent(arg: string): AgentAddress;
  /** The agent id (inbox key) of such an argument: the local part, or a tenant agent's whole address. */
  localAgentId(arg: string): string;

  /** Creates a tenant: `acme` (under the first wildcard of ADMP_DOMAINS) or its whole domain. */
  addTenant(name: string): Promise<TenantRow>;
  listTenants(): Promise<TenantRow[]>;
  /** Removes a tenant that has no agents left. */
  removeTenant(name: string): Promise<string>;

  /** A new address token for the agent (`t-…@<its domain>`). */
  createAddressToken(agentArg: string): Promise<AddressTokenRow>;
  /** Every address token, or one agent's. */
  listAddressTokens(agentArg?: string): Promise<AddressTokenRow[]>;
  /** Revokes `t-…@domain`; mail to it is refused from then on. */
  revokeAddressToken(address: string): Promise<void>;
  /** Writes the private key file (never overwriting one), then records the public key. */
  createKey(
    agentArg: string,
    o?: { out?: string; notAfter?: Date | null },
  ): Promise<{ row: AgentKeyRow; file: string }>;
  rotateKey(
    agentArg: string,
    overlapSec: number,
  ): Promise<{ row: AgentKeyRow; file: string; retired: string[]; until: Date }>;
  /** Records a key whose private half the caller holds (the doctor's probe). */
  recordLocalKey(agent: string, kid: string, publicKey: Uint8Array): Promise<AgentKeyRow>;
  pinPartnerKey(agentArg: string, kid: string, publicKey: Buffer, notAfter: Date | null): Promise<AgentKeyRow>;
  validKeys(filter: KeyFilter, at?: Date): Promise<AgentKeyRow[]>;
  allKeys(): Promise<AgentKeyRow[]>;
  /** Revokes one (domain, kid), or an agent's keys (all, or one kid). */
  revokeKeys(target: { domain: string; kid: string } | { agent: string; kid?: string }): Promise<string[]>;

  listRules(): Promise<RuleRow[]>;
  addRule(rule: Omit<PolicyRule, 'id'>): Promise<RuleRow>;
  removeRule(id: number): Promise<void>;

  /** A new admin token (shown once; stored hashed). */
  createAdminToken(name: string, readOnly: boolean): Promise<AdminTokenRow & { token: string }>;
  listAdminTokens(): Promise<AdminTokenRow[]>;
  revokeAdminToken(id: string): Promise<void>;

  migrate(): Promise<string[]>;
  pendingMigrations(): Promise<string[]>;
  /** Why the database is not ready for traffic (pending migrations, the message table locked); undefined when it is. */
  notReady(): Promise<string | undefined>;
  /** What `admp scale citus` would do and what stops it; with `apply`, does it (refusing on a problem). */
  scaleCitus(apply: boolean): Promise<CitusPlan>;
  /** The id of some message in an agent's inbox, if any. */
  anyMessageTo(agentId: string): Promise<string | undefined>;
  /**
   * Calls `fn` when the queue may have changed (the inbox wake-ups of `admp serve`; a one-shot
   * command has none and is never called). Acks, refusals and outbound failures are not among
   * them: a watcher polls slowly as well. Returns the unsubscribe.
   */
  watchQueue: QueueWatch;
}

export function createAdmin(
  pool: pg.Pool,
  config: Config,
  policy: PolicySource,
  watchQueue: QueueWatch = () => () => undefined,
): Admin {
  function localAgent(arg: string): AgentAddress {
    const agent = parseAddress(arg.includes('@') ? arg : `${arg}@${config.domains[0]}`, 'agent');
    if (!isOurDomain(config.domains, agent.domain))
      throw new AdmpError('bad_request', `${agent.domain} is not one of our domains (${config.domains.join(', ')})`);
    return agent;
  }

  /** The agent row behind an address of ours, or not_found saying how to add it. */
  async function agentRow(agent: AgentAddress): Promise<AgentRow> {
    const tenant = classifyDomain(config.domains, agent.domain)?.kind === 'tenant';
    const row = await findAgent(pool, agentIdOf(agent, tenant));
    if (!row || row.domain !== agent.domain)
      throw new AdmpError(
        'not_found',
        `no agent ${agent.address}: add it first (admp agent add ${agent.local}${tenant ? ` --domain ${agent.domain}` : ''})`,
      );
    return row;
  }

  function tenantDomain(name: string): string {
    const n = asciiLower(name);
    if (n.includes('.')) {
      if (classifyDomain(config.domains, n)?.kind !== 'tenant')
        throw new AdmpError('bad_request', `${n} is not a subdomain under a wildcard of ADMP_DOMAINS`);
      return n;
    }
    if (!isTenantLabel(n))
      throw new AdmpError('bad_request', `tenant "${name}": one DNS label (letters, digits, '-'; max 63)`);
    const base = wildcardBases(config.domains)[0];
    if (!base)
      throw new AdmpError(
        'bad_request',
        'ADMP_DOMAINS has no wildcard (e.g. *.inbound.example.com): tenants live under one',
      );
    return `${n}.${base}`;
  }

  function tokenAddress(address: string): { token: string; domain: string } {
    const a = parseAddress(address, 'address');
    if (!isAddressToken(a.local)) throw new AdmpError('bad_request', `${a.address} is not an address token (t-…@…)`);
    return { token: a.local, domain: a.domain };
  }

  async function createKey(
    agentArg: string,
    o: { out?: string; notAfter?: Date | null } = {},
  ): Promise<{ row: AgentKeyRow; file: string }> {
    const agent = localAgent(agentArg);
    // A key for an agent that does not exist would sign mail no inbox can answer.
    await agentRow(agent);
    const k = await createAgentKey();
    const file = o.out ?? join(keysDir(config), keyFileName(agent.address, k.kid));
    await mkdir(dirname(file), { recursive: true, mode: 0o700 });
    // 'wx': never overwrite an existing key file; 0600: only the owner may read the private key.
    await writeFile(file, k.privateKeyPem, { mode: 0o600, flag: 'wx' });
    try {
      const row = await insertLocalKey(pool, {
        agent: agent.address,
        kid: k.kid,
        publicKey: k.publicKey,
        notAfter: o.notAfter ?? null,
      });
      return { row, file };
    } catch (err) {
      await unlink(file).catch(() => undefined);
      throw err;
    }
  }

  return {
    ...createOperations(pool, config, policy),
    webhooks: createWebhookEndpoints(pool, config),
    async addAgent(idArg, domainArg) {
      // `bob@acme.inbound.example.com` names the domain too.
      const at = domainArg === undefined ? idArg.lastIndexOf('@') : -1;
      const id = at > 0 ? asciiLower(idArg.slice(0, at)) : idArg;
      const domain = asciiLower(at > 0 ? idArg.slice(at + 1) : (domainArg ?? config.domains[0]!));
      if (!isAgentId(id))
        throw new AdmpError(
          'bad_request',
          `agent id "${id}": use lower-case letters, digits, '.', '_' or '-' (max 64)`,
        );
      if (isAddressToken(id))
        throw new AdmpError('bad_request', `agent id "${id}": names of the form t-<32 hex> are address tokens`);
      if (!isDomain(domain)) throw new AdmpError('bad_request', `domain "${domain}" is not a DNS name`);
      // Mail for any other domain never reaches us: an agent there could never receive any.
      const where = classifyDomain(config.domains, domain);
      if (!where)
        throw new AdmpError(
          'bad_request',
          `domain "${domain}" is not one of ADMP_DOMAINS (${config.domains.join(', ')}); add it there first`,
        );
      // A tenant's agent is known by its whole address, so each tenant may have its own `bob`.
      return where.kind === 'tenant' ? addAgent(pool, `${id}@${domain}`, domain, true) : addAgent(pool, id, domain);
    },
    listAgents: async () => (await listAgents(pool)).map((a) => ({ ...a, address: addressOfAgent(a) })),
    bindClientCert: (id, binding) => addCertBinding(pool, id, binding),
    async unbindClientCert(id, binding) {
      if (!(await removeCertBinding(pool, id, binding)))
        throw new AdmpError('not_found', `agent ${id} has no binding ${binding.kind} ${binding.value}`);
    },
    clientCertBindings: (id) => listCertBindings(pool, id),
    async rotateCredentials(id, kinds) {
      const creds = await rotateCredentials(pool, id, kinds);
      return { ...(await findAgent(pool, id))!, ...creds };
    },
    async purgeAgent(id) {
      const agent = (await listAgents(pool)).find((a) => a.id === id);
      await purgeAgent(pool, id, agent ? addressOfAgent(agent) : `${id}@${config.domains[0]}`);
    },

    localAgent,
    localAgentId(arg) {
      const agent = localAgent(arg);
      return agentIdOf(agent, classifyDomain(config.domains, agent.domain)?.kind === 'tenant');
    },
    async addTenant(name) {
      const domain = tenantDomain(name);
      if (!(await addTenant(pool, domain))) throw new AdmpError('bad_request', `tenant ${domain} already exists`);
      return (await listTenants(pool)).find((t) => t.domain === domain)!;
    },
    listTenants: () => listTenants(pool),
    async removeTenant(name) {
      const domain = tenantDomain(name);
      await removeTenant(pool, domain);
      return domain;
    },
    async createAddressToken(agentArg) {
      return createAddressToken(pool, await agentRow(localAgent(agentArg)));
    },
    async listAddressTokens(agentArg) {
      return listAddressTokens(pool, agentArg === undefined ? undefined : (await agentRow(localAgent(agentArg))).id);
    },
    async revokeAddressToken(address) {
      const { token, domain } = tokenAddress(address);
      if (!(await revokeAddressToken(pool, token, domain)))
        throw new AdmpError('not_found', `no live address token ${token}@${domain}`);
    },
    createKey,
    async rotateKey(agentArg, overlapSec) {
      if (!Number.isInteger(overlapSec) || overlapSec < MIN_OVERLAP_SEC)
        throw new AdmpError('bad_request', `--overlap must be an integer of at least ${MIN_OVERLAP_SEC} seconds`);
      const { row, file } = await createKey(agentArg);
      const until = new Date(Date.now() + overlapSec * 1000);
      const retired = await retireOtherKeys(pool, row.agent, row.kid, until);
      return { row, file, retired, until };
    },
    recordLocalKey: (agent, kid, publicKey) => insertLocalKey(pool, { agent, kid, publicKey }),
    async pinPartnerKey(agentArg, kid, publicKey, notAfter) {
      const agent = parseAddress(agentArg, 'agent-address');
      if (isOurDomain(config.domains, agent.domain))
        throw new AdmpError('bad_request', `${agent.domain} is our domain: use \`admp key create\``);
      return pinPartnerKey(pool, { agent: agent.address, kid, publicKey, notAfter });
    },
    validKeys: (filter, at = new Date()) => listValidKeys(pool, filter, at),
    allKeys: () => listAllKeys(pool),
    async revokeKeys(target) {
      const now = new Date();
      if ('domain' in target) {
        if (!(await revokeKey(pool, target.domain, target.kid, now)))
          throw new AdmpError('not_found', `no live key ${target.kid} in ${target.domain}`);
        return [target.kid];
      }
      const agent = localAgent(target.agent);
      const revoked = await revokeAgentKeys(pool, agent.address, now, target.kid);
      if (revoked.length === 0)
        throw new AdmpError('not_found', `no live key${target.kid ? ` ${target.kid}` : ''} of ${agent.address}`);
      return revoked;
    },

    listRules: () => listRules(pool),
    async addRule(rule) {
      const problem = ruleProblem(rule);
      if (problem) throw new AdmpError('bad_request', problem);
      return addRule(pool, rule);
    },
    async removeRule(id) {
      if (!(await removeRule(pool, id))) throw new AdmpError('not_found', `no rule ${id}`);
    },

    async createAdminToken(name, readOnly) {
      if (!/^[A-Za-z0-9][A-Za-z0-9._ -]{0,63}$/.test(name))
        throw new AdmpError('bad_request', '--name: 1 to 64 letters, digits, ". _ -" or spaces');
      return createAdminToken(pool, name, readOnly);
    },
    listAdminTokens: () => listAdminTokens(pool),
    async revokeAdminToken(id) {
      if (!/^\d{1,18}$/.test(id)) throw new AdmpError('bad_request', `token id "${id}" is not a number`);
      if (!(await revokeAdminToken(pool, Number(id)))) throw new AdmpError('not_found', `no live admin token ${id}`);
    },

    migrate: () => migrate(pool),
    pendingMigrations: () => pendingMigrations(pool),
    notReady: () => databaseNotReady(pool),
    async scaleCitus(apply) {
      if (!apply) return planCitus(pool);
      try {
        return await distributeCitus(pool);
      } catch (err) {
        if (err instanceof CitusPlanError) throw new AdmpError('bad_request', err.message);
        throw err;
      }
    },
    anyMessageTo: (agentId) => anyMessageTo(pool, agentId),
    watchQueue,
  };
}
