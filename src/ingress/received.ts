// When our own MTA received a mail: the date of the Received field it prepended
// (RFC 5321 §4.4: every SMTP server that takes a message prepends one, its date after
// the last ";"). Only the topmost Received counts, and only when its `by` is our MTA:
// anything below it may have been written by the sender. Postfix adds it once, when
// the mail enters its queue, so queue retries (a deferred LMTP delivery) keep it.
import type { HeaderLine } from './authentication-results.js';

/** Unix seconds of our MTA's topmost Received field, if it is there and readable. */
export function receivedByUs(headers: readonly HeaderLine[], mtaHostname: string): number | undefined {
  if (!mtaHostname) return undefined;
  const top = headers.find((h) => h.name.toLowerCase() === 'received');
  if (!top) return undefined;
  const value = top.value.replace(/\r?\n[ \t]+/g, ' ');
  const by = /\bby\s+([^\s;()]+)/i.exec(value)?.[1]?.toLowerCase();
  if (by !== mtaHostname.toLowerCase()) return undefined;
  // The date-time of RFC 5322 §3.3, without its comments ("(UTC)").
  const ms = Date.parse(
    value
      .slice(value.lastIndexOf(';') + 1)
      .replace(/\([^)]*\)/g, ' ')
      .trim(),
  );
  return Number.isFinite(ms) ? Math.floor(ms / 1000) : undefined;
}
