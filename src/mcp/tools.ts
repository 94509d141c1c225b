// The ADMP mailbox as MCP tools, described for a model. Each tool is one operation of
// the agent API (src/mcp/backend.ts: an SDK client over stdio, the Mailbox service at
// /mcp), answered like the HTTP call it stands for; an error comes back as a tool error
// that names the ADMP error code.
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { AdmpApiError } from '../sdk/index.js';
import { AdmpError } from '../errors.js';
import { MAILBOX_LIMITS } from '../mailbox/limits.js';
import type { ToolBackend } from './backend.js';

const messageId = z.string().uuid().describe('The message id (a UUID), as check_inbox or send_message returned it');
const leaseId = z
  .string()
  .uuid()
  .describe('The lease id check_inbox returned with the message: proof that you hold the message now');
const json = z.unknown().describe('Any JSON value: object, array, string, number, boolean or null');

const ok = (value: unknown): CallToolResult => ({
  content: [{ type: 'text', text: JSON.stringify(value) }],
  structuredContent: (typeof value === 'object' && value !== null && !Array.isArray(value)
    ? value
    : { result: value }) as Record<string, unknown>,
});

/** An API error as a tool error: the model sees the code and can act on it. */
export function toolError(e: unknown): CallToolResult {
  const err =
    e instanceof AdmpApiError || e instanceof AdmpError
      ? { code: e.code, message: e.message, ...(e.details ? { details: e.details } : {}) }
      : { code: 'internal', message: 'the tool failed' };
  return {
    isError: true,
    content: [{ type: 'text', text: `ADMP error ${err.code}: ${err.message}` }],
    structuredContent: { error: err },
  };
}

const run = async (f: () => Promise<unknown>): Promise<CallToolResult> => {
  try {
    return ok(await f());
  } catch (e) {
    return toolError(e);
  }
};

export function registerTools(server: McpServer, client: ToolBackend): void {
  server.registerTool(
    'send_message',
    {
      title: 'Send a message',
      description:
        'Send a message to another agent by address (local@domain). The recipient gets it in its inbox; an agent of another organisation gets it by signed email. Give an idempotency_key when you may call this again for the same message (after a timeout, say): the message is then stored once.',
      inputSchema: {
        to: z.string().min(3).max(320).describe('Recipient agent address, e.g. bob@agents.example.com'),
        type: z
          .string()
          .regex(/^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$/)
          .describe('Message type, e.g. task.request'),
        body: json,
        subject: z.string().max(998).optional().describe('Short human-readable subject'),
        correlation_id: z
          .string()
          .min(1)
          .max(200)
          .optional()
          .describe('Ties the messages of one conversation together'),
        ttl_sec: z.number().int().min(1).max(31536000).optional().describe('Seconds before an unread message expires'),
        idempotency_key: z
          .string()
          .min(1)
          .max(MAILBOX_LIMITS.idempotencyKeyChars)
          .optional()
          .describe('Same key, same message: stored once'),
      },
      annotations: { idempotentHint: false, openWorldHint: true },
    },
    ({ idempotency_key, ...message }) =>
      run(() => client.send(message, idempotency_key ? { idempotencyKey: idempotency_key } : {})),
  );

  server.registerTool(
    'check_inbox',
    {
      title: 'Check the inbox',
      description:
        'Take up to `max` messages from your inbox, oldest first. Each comes with a lease: nobody else gets it until lease_until. When done, call ack_message (or reply with its lease_id); if you need more time, extend_or_release with action "extend"; to give it back, action "release". A message not acked before its lease ends returns to the inbox. `auth` tells how the sender was verified (channel http: an authenticated agent; smtp: DKIM and the agent signature).',
      inputSchema: {
        max: z.number().int().min(1).max(50).default(10).describe('Most messages to take'),
        lease_sec: z
          .number()
          .int()
          .min(1)
          .max(MAILBOX_LIMITS.leaseSec)
          .default(300)
          .describe('Lease length in seconds'),
        wait_sec: z
          .number()
          .int()
          .min(0)
          .max(MAILBOX_LIMITS.waitSec)
          .default(0)
          .describe('Seconds to wait for mail if the inbox is empty'),
      },
      annotations: { readOnlyHint: false },
    },
    ({ max, lease_sec, wait_sec }) =>
      run(async () => ({
        messages: (await client.pull({ max, visibility_timeout: lease_sec, wait: wait_sec })).messages,
      })),
  );

  server.registerTool(
    'ack_message',
    {
      title: 'Acknowledge a message',
      description:
        'Mark a message you took with check_inbox as done; it leaves your inbox for good. Fails with lease_conflict when your lease ended and the message went back to the inbox (someone may handle it again).',
      inputSchema: { message_id: messageId, lease_id: leaseId },
      annotations: { idempotentHint: true },
    },
    ({ message_id, lease_id }) => run(() => client.ack(message_id, lease_id)),
  );

  server.registerTool(
    'extend_or_release',
    {
      title: 'Extend or release a lease',
      description:
        'action "extend": keep the message for `seconds` more (from now) while you work on it. action "release": give it back to the inbox, visible again after `seconds` (default 0); after too many releases it becomes a dead letter.',
      inputSchema: {
        message_id: messageId,
        lease_id: leaseId,
        action: z.enum(['extend', 'release']),
        // One field for both: the two bounds are the same number.
        seconds: z
          .number()
          .int()
          .min(0)
          .max(Math.min(MAILBOX_LIMITS.leaseSec, MAILBOX_LIMITS.releaseDelaySec))
          .optional()
          .describe('extend: lease length; release: delay'),
      },
    },
    ({ message_id, lease_id, action, seconds }) =>
      run(() =>
        action === 'extend'
          ? client.extend(message_id, lease_id, Math.max(1, seconds ?? 300))
          : client.release(message_id, lease_id, seconds ?? 0),
      ),
  );

  server.registerTool(
    'reply',
    {
      title: 'Reply to a message',
      description:
        "Send a reply to the sender of a message in your inbox; it keeps the conversation's correlation_id. With the lease_id you hold, the original is acknowledged in the same step.",
      inputSchema: {
        message_id: messageId,
        type: z
          .string()
          .regex(/^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$/)
          .describe('Reply type, e.g. task.result'),
        body: json,
        subject: z.string().max(998).optional(),
        lease_id: leaseId.optional(),
        idempotency_key: z.string().min(1).max(MAILBOX_LIMITS.idempotencyKeyChars).optional(),
      },
    },
    ({ message_id, idempotency_key, ...reply }) =>
      run(() => client.reply(message_id, reply, idempotency_key ? { idempotencyKey: idempotency_key } : {})),
  );

  server.registerTool(
    'message_status',
    {
      title: 'Message status',
      description:
        'State and history of a message you sent or received: queued, delivered, leased, acked, failed or dead, with every step in delivery_log and the id of its reply.',
      inputSchema: { message_id: messageId },
      annotations: { readOnlyHint: true },
    },
    ({ message_id }) => run(() => client.status(message_id)),
  );

  server.registerTool(
    'list_dead_letters',
    {
      title: 'List dead letters',
      description:
        'Messages of your inbox that failed too often or expired unread, newest first, with their bodies and history.',
      inputSchema: { limit: z.number().int().min(1).max(MAILBOX_LIMITS.deadLetters).default(20) },
      annotations: { readOnlyHint: true },
    },
    ({ limit }) => run(async () => ({ messages: await client.deadLetters({ limit }) })),
  );

  server.registerTool(
    'redrive',
    {
      title: 'Redrive dead letters',
      description: 'Put dead letters back in your inbox with a fresh attempt count: the given ids, or all of them.',
      inputSchema: {
        message_ids: z.array(z.string().uuid()).min(1).max(MAILBOX_LIMITS.redriveIds).optional(),
        all: z.boolean().optional().describe('true to redrive every dead letter'),
      },
    },
    ({ message_ids, all }) => run(() => client.redrive(all ? 'all' : (message_ids ?? []))),
  );
}
