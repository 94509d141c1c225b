// @admp/client: a typed client for ADMP agent mailboxes. ESM, no Node-only API:
// fetch, WebCrypto, jose and @noble (Node 20+, Deno, Bun, browsers).
export { AdmpClient, type ClientOptions, type SendOptions } from './client.js';
export type { Consumer, ConsumeOptions, Handler, HandlerContext } from './consumer.js';
export { AdmpApiError } from './errors.js';
export type { Credentials } from './auth.js';
export type { RetryOptions } from './transport.js';
export { signAgentMail, type PartnerKey, type SignedAgentMail } from './mail-signer.js';
export type * from './types.js';
