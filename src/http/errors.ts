// The single HTTP error mapping: AdmpError → its status; fastify's own errors
// (validation, body size, content type, JSON) → the matching AdmpError code.
import type { FastifyError, FastifyInstance } from 'fastify';
import { AdmpError, httpErrorBody, toAdmpError } from '../errors.js';
import type { StorageOutage } from '../storage-outage.js';

function fromFastify(err: FastifyError): AdmpError | undefined {
  if (err.validation) {
    const v = err.validation[0];
    const where = err.validationContext ?? 'body';
    const field = v
      ? `${where}${v.instancePath.replace(/\//g, '.')}${v.keyword === 'required' ? `.${(v.params as { missingProperty?: string }).missingProperty}` : ''}`
      : where;
    const what =
      v?.keyword === 'additionalProperties'
        ? `unknown field "${(v.params as { additionalProperty?: string }).additionalProperty}"`
        : (v?.message ?? 'invalid');
    return new AdmpError('bad_request', `${field}: ${what}`, { field });
  }
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new AdmpError('payload_too_large', 'request body too large');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new AdmpError('unsupported_media_type', 'send application/json');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new AdmpError('invalid_json', 'empty JSON body');
    default:
      return undefined;
  }
}

/** `outage`: storage faults are logged there, once per outage; other unknown errors here, with their stack. */
export function installErrorHandler(app: FastifyInstance, outage?: StorageOutage): void {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    const known = error instanceof AdmpError ? error : fromFastify(error);
    const err = known ?? toAdmpError(error);
    if (err.code === 'timeout') outage?.failed(err, 'http');
    if (!known && !outage?.failed(error, 'http')) request.log.error({ err: error }, 'request failed');
    request.summary = { ...request.summary, outcome: err.code };
    const retryAfter = err.details?.retry_after_sec;
    // RFC 9110 §10.2.3 / RFC 6585 §4: when a 429 (or 503) may be retried.
    if (typeof retryAfter === 'number') void reply.header('retry-after', String(retryAfter));
    void reply.status(err.httpStatus).send(httpErrorBody(err));
  });
  app.setNotFoundHandler((request, reply) => {
    void reply
      .status(404)
      .send(httpErrorBody(new AdmpError('not_found', `no route ${request.method} ${request.url.split('?')[0]}`)));
  });
}
