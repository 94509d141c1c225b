// The relay domain for the agents subdomain, through Mailcow's API (openapi.yaml):
// GET first, so a second run changes nothing; errors come back as HTTP 200 with a JSON
// array whose `type` is "danger" or "error", so the type is checked, not the status.
import { request, type Dispatcher } from 'undici';
import { InstallError } from './install-error.js';

export interface RelayDomain {
  readonly domain: string;
  /** backupmx=1 and relay_all_recipients=1: Postfix relays any local part. */
  readonly relaysAll: boolean;
}

export interface MailcowApi {
  getDomain(domain: string): Promise<RelayDomain | null>;
  addRelayDomain(domain: string): Promise<void>;
  deleteDomain(domain: string): Promise<void>;
}

type Answer = Array<{ type?: string; msg?: unknown }> | Record<string, unknown>;

const truthy = (v: unknown): boolean => v === 1 || v === '1' || v === true;

export function mailcowApi(baseUrl: string, apiKey: string, dispatcher?: Dispatcher): MailcowApi {
  async function call(method: 'GET' | 'POST', path: string, body?: unknown): Promise<Answer> {
    const res = await request(new URL(path, baseUrl), {
      method,
      headers: {
        'x-api-key': apiKey,
        accept: 'application/json',
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      ...(dispatcher ? { dispatcher } : {}),
    }).catch((err: Error) => {
      throw new InstallError(`Mailcow API ${baseUrl} unreachable: ${err.message}`);
    });
    const text = await res.body.text();
    if (res.statusCode === 401 || res.statusCode === 403)
      throw new InstallError(
        `Mailcow API refused the key (HTTP ${res.statusCode}); it needs read-write access and an allow-list entry for this host`,
      );
    if (res.statusCode !== 200) throw new InstallError(`Mailcow API ${method} ${path}: HTTP ${res.statusCode}`);
    try {
      return JSON.parse(text) as Answer;
    } catch {
      throw new InstallError(`Mailcow API ${method} ${path}: answer is not JSON`);
    }
  }

  function requireSuccess(what: string, answer: Answer): void {
    const items = Array.isArray(answer) ? answer : [answer];
    const bad = items.find((i) => i.type !== 'success');
    if (bad) throw new InstallError(`Mailcow API ${what} failed: ${JSON.stringify(bad.msg ?? bad)}`);
  }

  return {
    async getDomain(domain) {
      const a = await call('GET', `/api/v1/get/domain/${encodeURIComponent(domain)}`);
      if (Array.isArray(a)) {
        if (a.some((i) => i.type === 'danger' || i.type === 'error')) requireSuccess('get domain', a);
        return null; // [] : no such domain
      }
      const name = typeof a.domain_name === 'string' ? a.domain_name.toLowerCase() : '';
      if (name !== domain) return null; // {} : no such domain
      return { domain, relaysAll: truthy(a.backupmx) && truthy(a.relay_all_recipients) };
    },
    async addRelayDomain(domain) {
      requireSuccess(
        'add domain',
        await call('POST', '/api/v1/add/domain', {
          domain,
          active: 1,
          backupmx: 1,
          relay_all_recipients: 1,
          relay_unknown_only: 0,
          mailboxes: 0,
          aliases: 0,
          description: 'ADMP agents (managed by admp install)',
        }),
      );
    },
    async deleteDomain(domain) {
      requireSuccess('delete domain', await call('POST', '/api/v1/delete/domain', [domain]));
    },
  };
}

/** The steps the admin follows in the Mailcow UI when no API key was given. */
export function manualRelaySteps(domain: string, hostname: string): string[] {
  return [
    `In the Mailcow UI (https://${hostname}/admin) open Email > Configuration > Domains > Add domain:`,
    `  Domain: ${domain}; Active: yes; Relay this domain: yes; Relay all recipients: yes; Relay non-existing mailboxes only: no; Max. mailboxes and aliases: 0.`,
    `  (Same through the API: POST /api/v1/add/domain {"domain":"${domain}","active":1,"backupmx":1,"relay_all_recipients":1,"relay_unknown_only":0,"mailboxes":0,"aliases":0})`,
    'Then run this command again: it checks that Postfix relays the domain.',
  ];
}
