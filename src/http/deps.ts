// What the HTTP adapter is built from: the services it calls and the config.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import type { Admin } from '../admin/admin.js';
import type { Mailbox } from '../mailbox/mailbox.js';
import type { WebhookEndpoints } from '../mailbox/webhook-endpoints.js';
import type { Ingest } from '../ingress/ingest.js';
import type { Metrics } from '../metrics.js';
import type { Authenticator } from './auth.js';
import type { TlsMaterial } from './tls.js';
import type { StorageOutage } from '../storage-outage.js';

export interface ApiDeps {
  config: Config;
  admin: Admin;
  log: Logger;
  mailbox: Mailbox;
  webhooks: WebhookEndpoints;
  auth: Authenticator;
  ingest: Ingest;
  metrics?: Metrics;
  /** Serve HTTPS with this material (ADMP_HTTP_TLS_*); absent: plain HTTP. */
  tls?: TlsMaterial;
  /** Logs storage faults once per outage (src/storage-outage.ts). */
  outage?: StorageOutage;
  /** Whether long-poll wake-ups arrive (the LISTEN connection is up); /readyz reports it. */
  listening?: () => boolean;
}

/** What a route or the error handler adds to the request's summary log line. */
export interface RequestSummary {
  message_id?: string;
  correlation_id?: string;
  channel?: 'http' | 'smtp';
  /** `ok` unless set: the error code of a failed request. */
  outcome?: string;
  pulled?: number;
  acked?: number;
}

declare module 'fastify' {
  interface FastifyRequest {
    summary?: RequestSummary;
  }
}

/** A module of agent API routes: `register` adds them to `app`, calling the services in `deps`. */
export const apiRoutes =
  (register: (app: Parameters<FastifyPluginAsyncTypebox>[0], deps: ApiDeps) => Promise<void>) =>
  (deps: ApiDeps): FastifyPluginAsyncTypebox =>
  (app) =>
    register(app, deps);
