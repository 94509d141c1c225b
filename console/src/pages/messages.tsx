// Message search: every filter the admin API documents, paged by cursor. The form's
// values live in the URL hash, so a search can be linked and survives a reload.
import { useEffect, useRef, useState } from 'preact/hooks';
import type { MessagePage as Page, MessageSummary } from '../../../src/http/admin/schemas.js';
import { MESSAGE_STATUSES } from '../../../src/core/status.js';
import { api, qs } from '../api.js';
import { ErrorLine, Field, when } from '../ui.js';

const FILTERS = ['agent', 'status', 'channel', 'sender', 'correlation_id', 'after', 'before'] as const;
type Filters = Record<(typeof FILTERS)[number], string>;

const toIso = (local: string): string | undefined => (local ? new Date(local).toISOString() : undefined);

export function MessagesPage({ params }: { params: URLSearchParams }) {
  const initial = Object.fromEntries(FILTERS.map((f) => [f, params.get(f) ?? ''])) as Filters;
  const [form, setForm] = useState<Filters>(initial);
  const [rows, setRows] = useState<MessageSummary[]>([]);
  const [next, setNext] = useState<string | null>(null);
  const [error, setError] = useState<unknown>();
  const set = (k: keyof Filters) => (v: string) => setForm({ ...form, [k]: v });
  // Only the latest request may fill the table: an older, slower answer is dropped.
  const latest = useRef(0);

  const load = async (f: Filters, cursor?: string) => {
    setError(undefined);
    const mine = ++latest.current;
    try {
      const page = await api<Page>(
        `/messages${qs({ ...f, after: toIso(f.after), before: toIso(f.before), cursor, limit: 50 })}`,
      );
      if (mine !== latest.current) return;
      setRows(cursor ? [...rows, ...page.messages] : page.messages);
      setNext(page.next_cursor);
    } catch (err) {
      setError(err);
    }
  };
  useEffect(() => void load(initial), [params.toString()]);

  const submit = (e: Event) => {
    e.preventDefault();
    location.hash = `#/messages${qs(form)}`;
  };
  return (
    <>
      <h1>Messages</h1>
      <form class="filters" onSubmit={submit} aria-label="search messages">
        <Field label="Agent (inbox)" value={form.agent} onInput={set('agent')} />
        <Field label="Status" value={form.status} onInput={set('status')} list={['', ...MESSAGE_STATUSES]} />
        <Field label="Channel" value={form.channel} onInput={set('channel')} list={['', 'http', 'smtp']} />
        <Field label="Sender" value={form.sender} onInput={set('sender')} placeholder="agent@domain" />
        <Field label="Correlation id" value={form.correlation_id} onInput={set('correlation_id')} />
        <Field label="Created after" type="datetime-local" value={form.after} onInput={set('after')} />
        <Field label="Created before" type="datetime-local" value={form.before} onInput={set('before')} />
        <button type="submit">Search</button>
      </form>
      <ErrorLine error={error} />
      <MessageTable rows={rows} />
      {next && (
        <button type="button" onClick={() => void load(initial, next)}>
          More
        </button>
      )}
    </>
  );
}

export function MessageTable({
  rows,
  selected,
  onSelect,
}: {
  rows: MessageSummary[];
  selected?: Set<string>;
  onSelect?: (id: string, on: boolean) => void;
}) {
  if (rows.length === 0) return <p class="hint">no messages</p>;
  return (
    <table>
      <thead>
        <tr>
          {onSelect && <th scope="col">select</th>}
          {['created', 'inbox', 'from', 'type', 'subject', 'correlation id', 'status', 'attempts'].map((c) => (
            <th scope="col">{c}</th>
          ))}
        </tr>
      </thead>
      <tbody>
        {rows.map((m) => (
          <tr>
            {onSelect && (
              <td>
                <input
                  type="checkbox"
                  aria-label={`select message ${m.id}`}
                  checked={selected?.has(m.id)}
                  onChange={(e) => onSelect(m.id, (e.target as HTMLInputElement).checked)}
                />
              </td>
            )}
            <td>
              <a href={`#/messages/${m.id}`}>{when(m.created_at)}</a>
            </td>
            <td>{m.to_agent_id}</td>
            <td>{m.from_agent}</td>
            <td>{m.type}</td>
            <td>{m.subject}</td>
            <td>{m.correlation_id}</td>
            <td>{m.status}</td>
            <td>{m.attempts}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
