// What every measurement sends: one ~530-byte JSON task body (the size research/perf.md
// used), the same agents, the same domain. The pgbench row and the pg-boss job carry
// the same body, so the three stores write comparable bytes.

export const DOMAIN = 'agents.bench';
export const SENDER = 'sender';
export const SENDER_ADDRESS = `${SENDER}@${DOMAIN}`;
export const TYPE = 'task.request';
export const SUBJECT = 'bench';
export const TTL_SEC = 604800;

/** Recipients of the send test (random per request). */
export const sendRecipient = (i: number): string => `rcpt-${String(i).padStart(3, '0')}`;
/** Inboxes the pull+ack consumers drain. */
export const pullInbox = (i: number): string => `inbox-${String(i).padStart(2, '0')}`;

const TASK = {
  task: 'summarize',
  priority: 'normal',
  input: {
    document_url: 'https://docs.example.org/reports/2026/q3/operations-review.pdf',
    language: 'en',
    max_words: 200,
    audience: 'engineering leadership',
  },
  constraints: { deadline: '2026-11-24T12:00:00Z', cite_sources: true, format: 'markdown' },
  context:
    'Quarterly operations review. Focus on incidents, capacity headroom and the migration plan; ' +
    'leave out staffing. Flag any number that changed by more than ten percent against the last quarter.',
  reply_to: 'planner@agents.bench',
};

// JSON text up to the varying field, so pgbench can append `seq` in SQL (bench/pgbench.ts).
export const BODY_PREFIX = `${JSON.stringify(TASK).slice(0, -1)},"seq":`;

export const body = (seq: number): unknown => ({ ...TASK, seq });

/** The POST /v1/messages request body, as an agent would send it. */
export function sendRequest(to: string, seq: number, correlationId: string): string {
  return JSON.stringify({
    to: `${to}@${DOMAIN}`,
    type: TYPE,
    subject: SUBJECT,
    body: body(seq),
    correlation_id: correlationId,
  });
}
