// HTTPS for the agent API: the files named by ADMP_HTTP_TLS_* (the same reloading
// reader as the SMTP edge's STARTTLS), checked every ADMP_HTTP_TLS_RELOAD_MS so a
// renewed certificate reaches new connections without a restart, and the optional
// client CA of mutual TLS.
import type { SecureContextOptions } from 'node:tls';
import type { Config } from '../config.js';
import { ConfigError } from '../errors.js';
import type { Logger } from '../log.js';
import { watchTlsFiles, type TlsFiles, type TlsPair } from '../net/tls-files.js';

/** The certificate material as the TLS server takes it at start. */
export interface TlsMaterial extends TlsPair {
  /** With a client CA the server asks for a certificate; routes decide what a missing or bad one means. */
  readonly requestCert: boolean;
}

/** Reads the files (a start with files that do not load stops, naming the setting); undefined: plain HTTP. */
export function loadHttpsFiles(config: Config, log: Logger): TlsFiles | undefined {
  if (!config.httpTlsCert) return undefined;
  const paths = {
    cert: config.httpTlsCert,
    key: config.httpTlsKey,
    ...(config.httpTlsClientCa ? { ca: config.httpTlsClientCa } : {}),
  };
  try {
    return watchTlsFiles(paths, log, 'http', config.httpTlsReloadMs);
  } catch (err) {
    throw new ConfigError('ADMP_HTTP_TLS_CERT', `certificate, key or client CA do not load: ${(err as Error).message}`);
  }
}

export const tlsMaterial = (files: TlsFiles): TlsMaterial => ({
  ...files.current,
  requestCert: files.current.ca !== undefined,
});

/** What reloading needs of the server: node's tls.Server and http2 secure server both have it. */
export interface SecureContextTarget {
  setSecureContext(options: SecureContextOptions): void;
}

/** Swaps the server's context when the files changed; a half-written set keeps the old one. */
export function reloadTls(server: SecureContextTarget, files: TlsFiles, everyMs: number): { close(): void } {
  const timer = setInterval(() => {
    if (files.refresh()) server.setSecureContext(files.current);
  }, everyMs);
  timer.unref();
  return { close: () => clearInterval(timer) };
}
