// pino JSON logs. Secrets never reach a log line: tokens, signatures, key material
// and authorization headers are redacted wherever they appear.
import pino from 'pino';

export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers["x-signature"]',
  'req.headers["x-agent-signature"]',
  'headers.authorization',
  '*.token',
  '*.secret',
  '*.hmac_secret',
  '*.private_key',
  '*.privateKey',
  '*.password',
  'token',
  'secret',
  'hmac_secret',
  'private_key',
  'privateKey',
  'password',
  'ingressToken',
  // Ed25519 seeds, private JWK members (RFC 8037 "d"), and config dumps (DATABASE_URL may carry a password).
  'seed',
  '*.seed',
  '*.jwk.d',
  '*.ingressToken',
  'databaseUrl',
  '*.databaseUrl',
  'req.headers.cookie',
];

export type Logger = pino.Logger;

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino({ level, redact: { paths: REDACT_PATHS, censor: '[redacted]' }, base: { service: 'admp' } }, destination);
}
