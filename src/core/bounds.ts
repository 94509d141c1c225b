// Bounds on what a caller hands a service: each service checks its own inputs, whichever
// adapter passed them, with a refusal that names the field and the range.
import { AdmpError } from '../errors.js';

/** `items` when it holds from `min` to `max` of them; else `bad_request` naming `field`. */
export function boundedList<T>(items: readonly T[], field: string, min: number, max: number): readonly T[] {
  if (items.length < min || items.length > max)
    throw new AdmpError('bad_request', `${field} must hold from ${min} to ${max} items`, { field });
  return items;
}

/** `value` when it is an integer from `min` to `max`; else `bad_request` naming `field` and the range. */
export function bounded(value: number, field: string, min: number, max: number): number {
  if (!Number.isSafeInteger(value) || value < min || value > max)
    throw new AdmpError('bad_request', `${field} must be an integer from ${min} to ${max}`, { field });
  return value;
}
