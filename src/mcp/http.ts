// POST /mcp on the API listener: the mailbox tools over MCP's Streamable HTTP
// transport, stateless (one MCP server per request, JSON answers), for the agent
// whose bearer token or EdDSA JWT the request carries. The tools' calls go through
// the API's own routes in-process (app.inject): the same authentication, validation,
// service calls and answers as over the network, without a second connection.
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { AdmpClient } from '../sdk/index.js';
import { AdmpError } from '../errors.js';
import type { Authenticator } from '../http/auth.js';
import { createMcpServer } from './server.js';

export const MCP_PATH = '/mcp';

/** A fetch that answers from the app's own routes. */
export function injectFetch(app: FastifyInstance): typeof fetch {
  return async (input, init = {}) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    const res = await app.inject({
      method: (init.method ?? 'GET') as 'GET' | 'POST',
      url: url.pathname + url.search,
      headers: init.headers as Record<string, string>,
      ...(init.body ? { payload: Buffer.from(init.body as Uint8Array) } : {}),
    });
    const headers = new Headers();
    for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) headers.set(k, String(v));
    return new Response(new Uint8Array(res.rawPayload), { status: res.statusCode, headers });
  };
}

export const mcpRoutes =
  (auth: Authenticator): FastifyPluginAsync =>
  async (app) => {
    app.post(MCP_PATH, { schema: { hide: true } }, async (req, reply) => {
      const bearer = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
      if (!bearer) throw new AdmpError('unauthorized', '/mcp takes Authorization: Bearer <token or EdDSA JWT>');
      req.caller = await auth.authenticate(req);
      const client = new AdmpClient({
        baseUrl: 'http://admp.internal',
        credentials: { token: bearer },
        fetch: injectFetch(app),
        retry: { retries: 0 },
      });
      const server = createMcpServer(client);
      const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
      reply.hijack();
      reply.raw.on('close', () => {
        void transport.close();
        void server.close();
      });
      await server.connect(transport);
      await transport.handleRequest(req.raw, reply.raw, req.body);
    });
  };
