// The return path of our outbound mail carries a tag only we can make, and that expires
// (in the manner of BATV, draft-levine-smtp-batv): a delivery report is acted on only when
// it is addressed to such a tag, and only for the one outbound message the tag names.
//
//   admp-bounce+<message id, 32 hex>.<day>.<mac, 12 hex>@<our agents domain>
//
// <day> is the day of sending (Unix days, UTC); <mac> is the first 48 bits of
// HMAC-SHA256(server secret, "<id>.<day>"). Lower-case hex throughout, since MTAs may
// change the case of a local part. The local part is 63 octets, within RFC 5321's 64.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { asciiLower } from './address.js';
import { isOurDomain } from './domains.js';

export const BOUNCE_PREFIX = 'admp-bounce+';
const TAG = /^admp-bounce\+([0-9a-f]{32})\.(\d{1,6})\.([0-9a-f]{12})@([^@]+)$/i;
const DAY_SEC = 86_400;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
// Relays retry for up to 5 days (RFC 5321 §4.5.4.1 suggests at least 4–5) after our own
// retries stop, so a report may come that long after our last attempt.
const RELAY_RETRY_SEC = 7 * DAY_SEC;

/** How long after sending a report is still taken (readBounceAddress's maxAgeSec): our retry deadline plus the relays'. */
export const returnPathMaxAgeSec = (outboundDeadlineSec: number): number => outboundDeadlineSec + RELAY_RETRY_SEC;

/**
 * A tag made at s is refused from s + this on (readBounceAddress counts whole days and
 * allows one more): until then a report may still name its message, so retention keeps it.
 */
export const bounceTagLifetimeSec = (maxAgeSec: number): number => maxAgeSec + 2 * DAY_SEC;

const mac = (secret: Buffer, hexId: string, day: number): Buffer =>
  createHmac('sha256', secret).update(`${hexId}.${day}`).digest().subarray(0, 6);

/** The tagged return path for outbound message `messageId` (a UUID) sent from `domain` at `nowSec`. */
export function bounceAddress(messageId: string, domain: string, nowSec: number, secret: Buffer): string {
  if (!UUID.test(messageId)) throw new TypeError(`not a message id: ${messageId}`);
  const hexId = messageId.replace(/-/g, '').toLowerCase();
  const day = Math.floor(nowSec / DAY_SEC);
  return `${BOUNCE_PREFIX}${hexId}.${day}.${mac(secret, hexId, day).toString('hex')}@${domain}`;
}

/** True for any address in the form of our return path, valid or not (it must never be taken as agent mail). */
export const looksLikeBounceAddress = (address: string): boolean => asciiLower(address).startsWith(BOUNCE_PREFIX);

export type BounceTag =
  | { readonly valid: true; readonly messageId: string }
  | { readonly valid: false; readonly reason: 'malformed' | 'foreign_domain' | 'bad_mac' | 'expired' };

/**
 * Reads a return-path address back. Valid only when it is well formed, at one of our
 * agents `domains`, carries our MAC, and was made at most `maxAgeSec` ago (one day of
 * slack ahead for clocks).
 */
export function readBounceAddress(
  address: string,
  o: { domains: readonly string[]; nowSec: number; maxAgeSec: number; secret: Buffer },
): BounceTag {
  const m = TAG.exec(address);
  if (!m) return { valid: false, reason: 'malformed' };
  const [, hex, dayText, given, domain] = m as unknown as [string, string, string, string, string];
  if (!isOurDomain(o.domains, domain)) return { valid: false, reason: 'foreign_domain' };
  const hexId = hex.toLowerCase();
  const day = Number(dayText);
  if (!timingSafeEqual(Buffer.from(given.toLowerCase(), 'hex'), mac(o.secret, hexId, day)))
    return { valid: false, reason: 'bad_mac' };
  const today = Math.floor(o.nowSec / DAY_SEC);
  if (day > today + 1 || (today - day) * DAY_SEC > o.maxAgeSec + DAY_SEC) return { valid: false, reason: 'expired' };
  const id = `${hexId.slice(0, 8)}-${hexId.slice(8, 12)}-${hexId.slice(12, 16)}-${hexId.slice(16, 20)}-${hexId.slice(20)}`;
  return { valid: true, messageId: id };
}
