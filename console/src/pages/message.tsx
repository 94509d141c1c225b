// One message with every verdict recorded at ingress: DKIM domain and result, the
// agent signature's key id, the policy rule that admitted it; the delivery_log
// timeline; the raw headers and body.
import { useEffect, useState } from 'preact/hooks';
import type { MessageDetail, Whoami } from '../../../src/http/admin/schemas.js';
import { api } from '../api.js';
import { ErrorLine, Section, when } from '../ui.js';

// The shape src/ingress records in message.auth (absent on HTTP sends).
type Verdicts = {
  domain?: { method?: string; dkim?: { domain?: string; result?: string }[] };
  signature?: { kid?: string; agent?: string; key_source?: string };
  policy?: string;
};

export function MessagePage({ id, me }: { id: string; me: Whoami }) {
  const [m, setM] = useState<MessageDetail>();
  const [error, setError] = useState<unknown>();
  const load = () => api<MessageDetail>(`/messages/${id}`).then(setM, setError);
  useEffect(() => void load(), [id]);
  if (!m) return <ErrorLine error={error} />;
  const auth = (m.auth ?? {}) as Verdicts;
  const redrive = async () => {
    try {
      await api('/dead-letters/redrive', { method: 'POST', body: { messages: [{ id: m.id, agent: m.to_agent_id }] } });
      await load();
    } catch (err) {
      setError(err);
    }
  };
  return (
    <>
      <h1>Message {m.id}</h1>
      <ErrorLine error={error} />
      <dl class="facts">
        <dt>status</dt>
        <dd>{m.status}</dd>
        <dt>inbox</dt>
        <dd>{m.to_agent_id}</dd>
        <dt>from</dt>
        <dd>{m.from_agent}</dd>
        <dt>channel</dt>
        <dd>{m.channel}</dd>
        <dt>type</dt>
        <dd>{m.type}</dd>
        <dt>subject</dt>
        <dd>{m.subject}</dd>
        <dt>correlation id</dt>
        <dd>{m.correlation_id}</dd>
        <dt>created</dt>
        <dd>{when(m.created_at)}</dd>
        <dt>attempts</dt>
        <dd>{m.attempts}</dd>
      </dl>
      {m.status === 'dead' && !me.read_only && (
        <button type="button" onClick={redrive}>
          Redrive
        </button>
      )}
      <Section title="Verdicts">
        <dl class="facts" aria-label="verdicts">
          <dt>DKIM</dt>
          <dd>
            {auth.domain
              ? (auth.domain.dkim ?? []).map((v) => `${v.domain ?? '?'}: ${v.result ?? '?'}`).join(', ') ||
                'no DKIM signature'
              : 'not mail (HTTP send)'}
          </dd>
          <dt>admitted by</dt>
          <dd>{auth.domain?.method ?? '–'}</dd>
          <dt>agent signature key id</dt>
          <dd>{auth.signature?.kid ?? '–'}</dd>
          <dt>policy rule</dt>
          <dd>{auth.policy ?? '–'}</dd>
        </dl>
        <details>
          <summary>all recorded verdicts</summary>
          <pre>{JSON.stringify(m.auth, null, 2)}</pre>
        </details>
      </Section>
      <Section title="Delivery log">
        <ol class="timeline">
          {m.delivery_log.map((e) => (
            <li>
              <time>{when(String(e.at))}</time> <strong>{String(e.event)}</strong>{' '}
              {Object.entries(e)
                .filter(([k]) => k !== 'at' && k !== 'event')
                .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
                .join(' ')}
            </li>
          ))}
        </ol>
      </Section>
      <Section title="Headers">
        <pre>{JSON.stringify(m.headers, null, 2)}</pre>
      </Section>
      <Section title="Body">
        <pre>{JSON.stringify(m.body, null, 2)}</pre>
      </Section>
    </>
  );
}
