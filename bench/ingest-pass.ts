// One ingest figure on a database that holds other data (the growth step): 5 KB partner
// mail POSTed to /ingress/rspamd trusting Rspamd's verdicts, as the ingest step's
// "trusting Rspamd, 5 KB" case, on the server the caller started with `env`.
import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import { addAgent } from '../src/db/agents.js';
import { pinPartnerKey } from '../src/db/keys.js';
import { addRule } from '../src/db/policy-rules.js';
import { startDns } from '../test/helpers/dns.js';
import { INGEST_RECIPIENT, mailSet, PARTNER_DOMAIN, partner, type Partner } from './ingest-mail.js';
import { rspamdIngest } from './ingest-rspamd.js';
import type { SendResult } from './send.js';
import { DOMAIN } from './workload.js';

const BYTES = 5_000;
// Distinct messages per second of warm-up, and the least per second of the window
// (a set that runs out would measure the duplicate answer instead).
const WARM_RATE = 5000;
const HEADROOM = 1.5;

export interface IngestFixture {
  /** The server's environment for the Rspamd road (the bearer secret, DKIM trusted, the loopback DNS). */
  readonly env: Record<string, string>;
  readonly partner: Partner;
  readonly token: string;
  stop(): Promise<void>;
}

/** The recipient, the partner's pinned key, a rule that lets it in, and a DNS server for its records. */
export async function prepareIngest(pool: pg.Pool): Promise<IngestFixture> {
  await addAgent(pool, INGEST_RECIPIENT, DOMAIN);
  const p = partner();
  await pinPartnerKey(pool, { agent: p.signer.agent, kid: p.signer.kid, publicKey: p.signer.publicKey });
  await addRule(pool, { from: `*@${PARTNER_DOMAIN}`, to: `*@${DOMAIN}`, action: 'allow' });
  const dns = await startDns({
    txt: {
      [p.dkim.dnsName]: p.dkim.txt,
      [PARTNER_DOMAIN]: 'v=spf1 ip4:127.0.0.1 -all',
      [`_dmarc.${PARTNER_DOMAIN}`]: 'v=DMARC1; p=reject',
    },
  });
  const token = randomBytes(24).toString('base64url');
  return {
    env: { ADMP_INGRESS_TOKEN: token, ADMP_DKIM_MODE: 'trust', ADMP_DNS_SERVERS: dns.server },
    partner: p,
    token,
    stop: () => dns.stop(),
  };
}

/** A warm-up, then the measured window with a set of distinct messages sized from the warm-up's rate. */
export async function ingestPass(
  serverUrl: string,
  f: IngestFixture,
  s: { seconds: number; warmupSeconds: number; connections: number },
): Promise<SendResult> {
  const warm = await mailSet(f.partner, { bytes: BYTES, count: WARM_RATE * s.warmupSeconds });
  const warmed = await rspamdIngest(serverUrl, f.token, warm, { connections: s.connections, seconds: s.warmupSeconds });
  const count = Math.ceil(Math.max(WARM_RATE, warmed.perSec * HEADROOM) * s.seconds) + s.connections;
  const set = await mailSet(f.partner, { bytes: BYTES, count });
  return rspamdIngest(serverUrl, f.token, set, { connections: s.connections, seconds: s.seconds });
}
