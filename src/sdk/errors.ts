// The one error type of the SDK: an API answer that is not 2xx, or a request that
// never got an answer (network error, timeout), after retries.
import type { ErrorCode } from './types.js';

export class AdmpApiError extends Error {
  override readonly name = 'AdmpApiError';
  constructor(
    /** The ADMP error code, or `network` when no answer arrived. */
    readonly code: ErrorCode | 'network',
    message: string,
    /** HTTP status; 0 for `network`. */
    readonly status: number,
    readonly details?: Record<string, unknown>,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
