// admp mcp: the mailbox tools for a desktop MCP client, over stdio. The agent's
// credentials come from the environment, one of: ADMP_TOKEN; ADMP_AGENT + ADMP_KID +
// ADMP_KEY_FILE (EdDSA JWTs from the agent's private key); ADMP_AGENT_ID +
// ADMP_HMAC_SECRET. ADMP_URL is the API (default http://127.0.0.1:8080). Nothing but
// MCP may be written to stdout.
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { AdmpClient, type Credentials } from '../sdk/index.js';
import { AdmpError } from '../errors.js';
import { createMcpServer } from '../mcp/server.js';

export function credentialsFromEnv(env: NodeJS.ProcessEnv): Credentials {
  if (env.ADMP_TOKEN) return { token: env.ADMP_TOKEN };
  if (env.ADMP_AGENT && env.ADMP_KID && env.ADMP_KEY_FILE)
    return { agent: env.ADMP_AGENT, kid: env.ADMP_KID, privateKey: readFileSync(env.ADMP_KEY_FILE, 'utf8') };
  if (env.ADMP_AGENT_ID && env.ADMP_HMAC_SECRET)
    return { agentId: env.ADMP_AGENT_ID, hmacSecret: env.ADMP_HMAC_SECRET };
  throw new AdmpError(
    'bad_request',
    'admp mcp needs ADMP_TOKEN, or ADMP_AGENT + ADMP_KID + ADMP_KEY_FILE, or ADMP_AGENT_ID + ADMP_HMAC_SECRET',
  );
}

export function registerMcp(program: Command): void {
  program
    .command('mcp')
    .description('serve the mailbox tools to an MCP client over stdio (credentials from the environment)')
    .action(async () => {
      const client = new AdmpClient({
        baseUrl: process.env.ADMP_URL ?? 'http://127.0.0.1:8080',
        credentials: credentialsFromEnv(process.env),
      });
      await createMcpServer(client).connect(new StdioServerTransport());
    });
}
