// POST /mcp on the API listener: the mailbox tools over MCP's Streamable HTTP
// transport, stateless (one MCP server per request, JSON answers), for the agent
// whose bearer token or EdDSA JWT the request carries. The tools call the Mailbox
// service directly as that agent (src/mcp/backend.ts), under the agent's request limit.
import type { FastifyPluginAsync } from 'fastify';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { AdmpError } from '../errors.js';
import type { Authenticator } from '../http/auth.js';
import type { RequestLimit } from '../http/request-limit.js';
import type { Mailbox } from '../mailbox/mailbox.js';
import { mailboxBackend } from './backend.js';
import { createMcpServer } from './server.js';

export const MCP_PATH = '/mcp';

export const mcpRoutes =
  (auth: Authenticator, mailbox: Mailbox, limit?: RequestLimit): FastifyPluginAsync =>
  async (app) => {
    app.post(MCP_PATH, { schema: { hide: true } }, async (req, reply) => {
      if (!/^Bearer\s+\S+$/i.test(req.headers.authorization ?? ''))
        throw new AdmpError('unauthorized', '/mcp takes Authorization: Bearer <token or EdDSA JWT>');
      const caller = (req.caller = await auth.authenticate(req));
      const server = createMcpServer(mailboxBackend(mailbox, caller, limit, () => auth.recheck(req, caller)));
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
