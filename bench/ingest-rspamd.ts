// The Rspamd road under load: autocannon (in this process) POSTs each pre-built mail
// to /ingress/rspamd with the headers rspamd/agents_bridge.lua sends: the bearer
// secret, the envelope, and Rspamd's own verdicts (X-Rspamd-Auth).
import { message, RECIPIENT_ADDRESS, RSPAMD_AUTH, PARTNER_DOMAIN, type MailSet } from './ingest-mail.js';
import { postLoad, type SendResult } from './send.js';

export async function rspamdIngest(
  url: string,
  token: string,
  set: MailSet,
  opts: { connections: number; seconds: number },
): Promise<SendResult> {
  let i = 0;
  const headers = {
    authorization: `Bearer ${token}`,
    'content-type': 'message/rfc822',
    'x-envelope-from': `worker@${PARTNER_DOMAIN}`,
    'x-envelope-to': RECIPIENT_ADDRESS,
    'x-rspamd-auth': RSPAMD_AUTH,
    'x-rspamd-client-ip': '127.0.0.1',
  };
  return postLoad(url, '/ingress/rspamd', opts, () => ({
    headers: { ...headers, 'x-rspamd-queue-id': `Q${i}` },
    body: message(set, i++),
  }));
}
