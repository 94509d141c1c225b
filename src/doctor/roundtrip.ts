// The end-to-end check of `admp doctor`: a throw-away agent sends itself a signed
// agent mail through the real path (SMTP into the MTA, Rspamd or LMTP, the bridge,
// the queue), the doctor waits for the row, then removes the message, the agent and
// its key again, whatever happened.
import { randomBytes } from 'node:crypto';
import nodemailer from 'nodemailer';
import { publicKeyFromSeed } from '../core/signature.js';
import { buildSignedMessage } from '../mail/signed-message.js';
import { dkimSignatureField } from '../mail/dkim-sign.js';
import { fail, pass, type Check } from './report.js';
import type { DoctorTargets } from './checks.js';

export interface DkimKey {
  readonly selector: string;
  readonly privateKeyPem: string;
}

export interface RoundTripOptions {
  readonly smtp: { readonly host: string; readonly port: number };
  /** The agents domain's DKIM key: the receiving side wants an aligned DKIM pass. */
  readonly dkim?: DkimKey;
  readonly timeoutMs: number;
}

export function roundTripCheck(t: DoctorTargets, o: RoundTripOptions): Check {
  return {
    name: 'a signed test message goes through the real path and is removed again',
    async run() {
      const id = `admp-doctor-${randomBytes(4).toString('hex')}`;
      const address = `${id}@${t.domain}`;
      const seed = randomBytes(32);
      const kid = `doctor-${randomBytes(4).toString('hex')}`;
      const cleanup = async () => {
        await t.admin.purgeAgent(id);
      };
      try {
        await t.admin.addAgent(id, t.domain);
        await t.admin.recordLocalKey(address, kid, publicKeyFromSeed(seed));
        const signed = await buildSignedMessage(
          { to: address, type: 'admp.doctor', body: { probe: id } },
          { agent: address, kid, seed },
        );
        const raw = o.dkim
          ? Buffer.concat([
              Buffer.from(await dkimSignatureField(signed.eml, { domain: t.domain, ...o.dkim })),
              signed.eml,
            ])
          : signed.eml;
        const started = Date.now();
        const transport = nodemailer.createTransport({
          host: o.smtp.host,
          port: o.smtp.port,
          secure: false,
          ignoreTLS: true,
          connectionTimeout: 10_000,
        });
        let response: string;
        try {
          response = (await transport.sendMail({ envelope: { from: address, to: [address] }, raw })).response;
        } catch (err) {
          const e = err as { responseCode?: number; response?: string; message: string };
          return fail(
            `the MTA at ${o.smtp.host}:${o.smtp.port} refused the test message: ${e.response ?? e.message}`,
            e.responseCode && e.responseCode >= 500
              ? "the reply names the refusal: without --dkim-key (or Mailcow's key via --mailcow-dir) the bridge refuses unsigned domain mail (5.7.26)"
              : 'check that the MTA runs and accepts mail for the agents domain (--smtp host:port)',
          );
        }
        for (;;) {
          const stored = await t.admin.anyMessageTo(id);
          if (stored)
            return pass(`${response.trim()}; stored as ${stored} after ${Date.now() - started} ms, then removed`);
          if (Date.now() - started > o.timeoutMs) {
            return fail(
              `accepted by the MTA (${response.trim()}) but not stored within ${o.timeoutMs / 1000} s`,
              'follow the queue id in the Postfix log and the bridge log (`event: "ingest"`): a tempfail or refusal names its code',
            );
          }
          await new Promise((r) => setTimeout(r, 250));
        }
      } finally {
        await cleanup();
      }
    },
  };
}
