// A row for enqueue_message as the quota tests build it: message n from a@agents.test to
// one of three inboxes (bob0, bob1, bob2), delivered, with no dedupe key unless given.
import type { NewMessage } from '../../src/db/message-row.js';

export const newMessage = (n: number, extra: Partial<NewMessage> = {}): NewMessage => ({
  to_agent_id: `bob${n % 3}`,
  channel: 'http',
  from_agent: 'a@agents.test',
  subject: null,
  type: 't',
  body: { n },
  status: 'delivered',
  ttl_sec: 60,
  correlation_id: null,
  idempotency_key: null,
  source_fingerprint: null,
  ...extra,
});
