// A step that only reads the mail (no database, no network): whatever it throws was caused
// by the mail's content, and the same mail would throw again on every retry. So it is a
// permanent refusal naming the problem (554 5.6.0), never the temporary "try again later"
// an unknown error gets, which would have the sender retry for days. Faults of ours stay
// temporary: steps that do I/O are not wrapped.
import { AdmpError } from '../errors.js';

export function fromContent<T>(what: string, step: () => T): T {
  try {
    return step();
  } catch (err) {
    if (err instanceof AdmpError) throw err;
    throw new AdmpError(
      'bad_request',
      `unreadable message (${what}): ${(err as Error)?.message ?? String(err)}`,
      undefined,
      err,
    );
  }
}
