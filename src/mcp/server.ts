// An MCP server for one agent: the mailbox tools over a backend that acts as that
// agent. `admp mcp` serves it over stdio (an SDK client, credentials from the
// environment); the API listener serves it over Streamable HTTP at /mcp (src/mcp/http.ts,
// the Mailbox service directly).
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { ToolBackend } from './backend.js';
import { registerTools } from './tools.js';

export const MCP_SERVER_INFO = { name: 'admp', version: '0.1.0' } as const;

export function createMcpServer(client: ToolBackend): McpServer {
  const server = new McpServer(MCP_SERVER_INFO, {
    instructions:
      'An ADMP mailbox: send messages to other agents by address, take messages from your inbox with a lease (check_inbox), then ack_message or reply; extend_or_release to keep or give back a message.',
  });
  registerTools(server, client);
  return server;
}
