// Times a client sends (query filters, key expiry): one parser for every interface.
// RFC 3339 allows the years 0000–9999, and JavaScript's Date more; PostgreSQL's
// timestamptz has no year 0 and refuses `0000-01-01T00:00:00Z` with an error that would
// otherwise surface as a fault of ours. So a client time is an instant in the years
// 0001–9999 (UTC), and anything else is refused, saying which field and why.
import { AdmpError } from '../errors.js';

const FIRST = new Date('0001-01-01T00:00:00Z').getTime();
const LAST = new Date('9999-12-31T23:59:59.999Z').getTime();

/** The instant `s` names, or `bad_request` naming `field`. */
export function clientTime(s: string, field: string): Date {
  const t = Date.parse(s);
  if (Number.isNaN(t))
    throw new AdmpError('bad_request', `${field}: "${s.slice(0, 40)}" is not a date-time (RFC 3339)`);
  if (t < FIRST || t > LAST)
    throw new AdmpError('bad_request', `${field}: ${s.slice(0, 40)} is outside the years 0001–9999 (UTC)`);
  return new Date(t);
}
