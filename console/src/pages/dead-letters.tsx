// Dead letters: redrive or delete one, some (the checked rows) or the whole page.
import { useEffect, useState } from 'preact/hooks';
import type { MessagePage as Page, MessageSummary, Whoami } from '../../../src/http/admin/schemas.js';
import { api, qs } from '../api.js';
import { ErrorLine, Field } from '../ui.js';
import { MessageTable } from './messages.js';

export function DeadLettersPage({ me }: { me: Whoami }) {
  const [agent, setAgent] = useState('');
  const [rows, setRows] = useState<MessageSummary[]>([]);
  const [selected, setSelected] = useState(new Set<string>());
  const [note, setNote] = useState('');
  const [error, setError] = useState<unknown>();
  const load = async () => {
    try {
      const page = await api<Page>(`/messages${qs({ status: 'dead', agent, limit: 200 })}`);
      setRows(page.messages);
      setSelected(new Set());
    } catch (err) {
      setError(err);
    }
  };
  useEffect(() => void load(), []);
  const act = async (what: 'redrive' | 'delete') => {
    const chosen = rows.filter((r) => selected.has(r.id));
    if (chosen.length === 0) return setNote('select messages first');
    if (what === 'delete' && !confirm(`Delete ${chosen.length} dead letter(s) for good?`)) return;
    setError(undefined);
    try {
      const res = await api<{ ids: string[] }>(`/dead-letters/${what}`, {
        method: 'POST',
        body: { messages: chosen.map((r) => ({ id: r.id, agent: r.to_agent_id })) },
      });
      setNote(`${what === 'redrive' ? 'redriven' : 'deleted'}: ${res.ids.length}`);
      await load();
    } catch (err) {
      setError(err);
    }
  };
  const toggle = (id: string, on: boolean) => {
    const s = new Set(selected);
    if (on) s.add(id);
    else s.delete(id);
    setSelected(s);
  };
  return (
    <>
      <h1>Dead letters</h1>
      <form
        class="filters"
        aria-label="filter dead letters"
        onSubmit={(e) => {
          e.preventDefault();
          void load();
        }}
      >
        <Field label="Agent (inbox)" value={agent} onInput={setAgent} />
        <button type="submit">Show</button>
      </form>
      <div class="actions">
        <button type="button" onClick={() => setSelected(new Set(rows.map((r) => r.id)))}>
          Select all
        </button>
        <button type="button" disabled={me.read_only} onClick={() => void act('redrive')}>
          Redrive selected
        </button>
        <button type="button" disabled={me.read_only} onClick={() => void act('delete')}>
          Delete selected
        </button>
        <span role="status">{note}</span>
      </div>
      <ErrorLine error={error} />
      <MessageTable rows={rows} selected={selected} onSelect={toggle} />
    </>
  );
}
