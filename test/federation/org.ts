// One organisation of the federation end-to-end test, built from real parts on
// loopback: its own database and ADMP core (HTTP API, JWKS, Rspamd ingress, LMTP),
// its own rspamd (DKIM signing for its agents domain, Mailcow's milter_headers, and
// the agents_bridge plugin when mail reaches ADMP by the Rspamd road) and its own
// Postfix, whose transport map routes the other organisation's domain to that
// organisation's Postfix.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SMTPServer } from 'smtp-server';
import { addRule } from '../../src/db/policy-rules.js';
import { listValidKeys } from '../../src/db/keys.js';
import { agentKeyTxtRecords } from '../../src/keys/dns.js';
import { createLmtpServer } from '../../src/lmtp/server.js';
import { createLogger } from '../../src/log.js';
import { startTestApi, type TestAgent, type TestApi } from '../helpers/api.js';
import { givePrivateKey } from '../helpers/agent-keys.js';
import type { DkimKey } from '../helpers/mail.js';
import { renderBridgeConfig, startRspamd, type TestRspamd } from '../helpers/rspamd.js';
import { startPostfix, type TestPostfix } from '../helpers/postfix.js';
import type { TestDns } from '../helpers/dns.js';
import { FIXTURE } from '../installer/checkout.js';
import { LOOPBACK_ALLOWED, loopbackLookup } from '../keys/loopback.js';

// Mailcow's own milter_headers (read-only fixture): it writes the Authentication-Results the LMTP road trusts.
const MAILCOW_MILTER_HEADERS = join(FIXTURE, 'data', 'conf', 'rspamd', 'local.d', 'milter_headers.conf');
export const TOKEN = 'federation-ingress-token-0123456789';

export interface OrgPorts {
  http: number;
  mx: number;
  submission: number;
  lmtp: number;
}

/** rspamd files: DKIM signing of mail from this organisation, DKIM checks of loopback mail too, Mailcow's milter_headers. */
export function rspamdFiles(dkim: DkimKey): Record<string, string> {
  return {
    'dkim/signing.key': dkim.privateKeyPem,
    'local.d/dkim_signing.conf': [
      // Loopback is "local" to rspamd: the ADMP worker's submissions are signed, as Mailcow signs its users' mail.
      'sign_local = true;',
      'sign_authenticated = true;',
      'use_esld = false;',
      'try_fallback = false;',
      `domain { "${dkim.domain}" { selector = "${dkim.selector}"; path = "$LOCAL_CONFDIR/dkim/signing.key"; } }`,
      '',
    ].join('\n'),
    // rspamd skips DKIM checks for local networks by default; here every MTA is on loopback.
    'local.d/dkim.conf': 'check_local = true;\ncheck_authed = true;\n',
    'local.d/milter_headers.conf': readFileSync(MAILCOW_MILTER_HEADERS, 'utf8'),
  };
}

export interface OrgSpec {
  readonly domain: string;
  readonly mtaHostname: string;
  readonly dkim: DkimKey;
  readonly ports: OrgPorts;
  /** The other organisation: its domain and ports. */
  readonly partner: { domain: string; ports: OrgPorts };
  /** How mail for our agents reaches ADMP. */
  readonly road: 'rspamd' | 'lmtp';
  /** How we find the partner's agent keys. */
  readonly discovery: 'jwks' | 'dns';
  readonly dns: TestDns;
  readonly keysDir: string;
  readonly env?: Record<string, string>;
}

export interface Org {
  readonly spec: OrgSpec;
  readonly api: TestApi;
  readonly rspamd: TestRspamd;
  readonly postfix: TestPostfix;
  readonly lmtp?: SMTPServer;
  agent(id: string): Promise<TestAgent & { kid: string }>;
  /** Puts the agent's currently valid keys into the loopback DNS, as `admp key dns` prints them. */
  publishKeys(agent: string): Promise<void>;
  stop(): Promise<void>;
}

/** Starts rspamd first (it is the slow part: about 10 s cold), so callers start both organisations' in parallel. */
export async function startOrgRspamd(spec: OrgSpec): Promise<TestRspamd> {
  return startRspamd({
    dns: spec.dns.server,
    pluginConfig:
      spec.road === 'rspamd'
        ? renderBridgeConfig({
            url: `http://127.0.0.1:${spec.ports.http}/ingress/rspamd`,
            token: TOKEN,
            domain: spec.domain,
            timeout: 5,
          })
        : null,
    extraLocal: rspamdFiles(spec.dkim),
  });
}

export async function startOrg(spec: OrgSpec, rspamd: TestRspamd): Promise<Org> {
  const api = await startTestApi(
    {
      ADMP_DOMAINS: spec.domain,
      ADMP_POLICY_FILE: '',
      ADMP_INGRESS_TOKEN: TOKEN,
      ADMP_MTA_HOSTNAME: spec.mtaHostname,
      ADMP_DNS_SERVERS: spec.dns.server,
      ADMP_DNS_TIMEOUT_MS: '500',
      ADMP_JWKS_SCHEME: 'http',
      ADMP_FETCH_ALLOW: LOOPBACK_ALLOWED,
      ADMP_JWKS_PORT: String(spec.partner.ports.http),
      ADMP_KEY_FETCH_TIMEOUT_MS: '1000',
      ADMP_RELAY_URL: `smtp://127.0.0.1:${spec.ports.submission}`,
      ADMP_RELAY_TIMEOUT_MS: '10000',
      ADMP_KEYS_DIR: spec.keysDir,
      ADMP_OUTBOUND_BACKOFF_MS: '200',
      ...spec.env,
      // JWKS fetches reach the partner's ADMP on loopback, or (DNS discovery) no name resolves at all.
    },
    {
      keyDeps: {
        lookup: loopbackLookup((host) => spec.discovery === 'jwks' && host.toLowerCase() === spec.partner.domain),
      },
    },
  );
  let lmtp: SMTPServer | undefined;
  const stopServers = async (): Promise<void> => {
    if (lmtp) await new Promise<void>((ok) => lmtp!.close(() => ok()));
    await api.close();
  };
  // The test stops the org once this returns. What started before a later step failed (its
  // Postfix, say) is stopped here, or its pool and listeners would keep the test file
  // running until its timeout.
  try {
    // The partner's agents may write to ours (`admp policy add --from '*@<partner>' --to '*@<us>'`).
    await addRule(api.db.pool, { from: `*@${spec.partner.domain}`, to: `*@${spec.domain}`, action: 'allow' });
    await api.core.app.listen({ host: '127.0.0.1', port: spec.ports.http });
    if (spec.road === 'lmtp') {
      const server = createLmtpServer({
        config: api.config,
        log: createLogger('silent'),
        ingest: api.core.ingest,
        directory: api.core.directory,
      });
      await new Promise<void>((ok, fail) => {
        server.once('error', fail);
        server.listen(spec.ports.lmtp, '127.0.0.1', () => ok());
      });
      lmtp = server;
    }
    const transport: Record<string, string> = { [spec.partner.domain]: `smtp:[127.0.0.1]:${spec.partner.ports.mx}` };
    if (spec.road === 'lmtp') transport[spec.domain] = `lmtp:inet:127.0.0.1:${spec.ports.lmtp}`;
    const restrictions = 'permit_mynetworks, reject_unauth_destination';
    const postfix = await startPostfix({
      milter: rspamd.milter,
      relayDomains: [spec.domain],
      transport,
      port: spec.ports.mx,
      main: {
        myhostname: spec.mtaHostname,
        mydomain: spec.mtaHostname.replace(/^[^.]+\./, ''),
        // The ADMP host (loopback here) may submit mail for other domains; anyone may send to ours.
        smtpd_relay_restrictions: restrictions,
        smtpd_recipient_restrictions: restrictions,
        // Only the transport map routes mail out; anything else waits, nothing leaves the machine.
        default_transport: 'relay',
        defer_transports: 'relay',
        // On the Rspamd road Postfix discards a message the bridge stored, which gives no success DSN;
        // without DSN in EHLO the sending MTA reports "relayed" on our 250 (docs/federation.md).
        ...(spec.road === 'rspamd' ? { smtpd_discard_ehlo_keywords: 'silent-discard, dsn' } : {}),
      },
      // The submission listener for ADMP's outbound worker announces DSN, so NOTIFY=SUCCESS reaches the next hop.
      master: [
        `127.0.0.1:${spec.ports.submission} inet  n  -  n  -  -  smtpd -o smtpd_discard_ehlo_keywords=silent-discard`,
      ],
    });
    return {
      spec,
      api,
      rspamd,
      postfix,
      lmtp,
      async agent(id) {
        const a = await api.agent(id, spec.domain);
        const { kid } = await givePrivateKey(api.db.pool, spec.keysDir, a.address);
        return { ...a, kid };
      },
      async publishKeys(agent) {
        const records = agentKeyTxtRecords(await listValidKeys(api.db.pool, { agent, source: 'local' }, new Date()));
        spec.dns.setTxt(records[0]!.name, ...records.map((r) => r.text));
      },
      async stop() {
        await postfix.stop();
        await stopServers();
      },
    };
  } catch (err) {
    await stopServers();
    throw err;
  }
}
