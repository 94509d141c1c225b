// Run-time policy rules (after the policy file's, first match wins) and the dry-run:
// would mail from X to Y of type T be allowed, and by which rule?
import { useEffect, useState } from 'preact/hooks';
import type { Decision, Rule, Whoami } from '../../../src/http/admin/schemas.js';
import { api } from '../api.js';
import { ErrorLine, Field, Section } from '../ui.js';

export function PolicyPage({ me }: { me: Whoami }) {
  const [rules, setRules] = useState<Rule[]>([]);
  const [error, setError] = useState<unknown>();
  const load = () => api<Rule[]>('/policy/rules').then(setRules, setError);
  useEffect(() => void load(), []);
  const remove = async (id: number) => {
    try {
      await api(`/policy/rules/${id}`, { method: 'DELETE' });
      await load();
    } catch (err) {
      setError(err);
    }
  };
  return (
    <>
      <h1>Policy</h1>
      <ErrorLine error={error} />
      <Section title="Run-time rules">
        {rules.length === 0 ? (
          <p class="hint">no run-time rules (the policy file's rules and the defaults apply)</p>
        ) : (
          <table>
            <thead>
              <tr>
                {['id', 'action', 'from', 'to', 'types', 'subject', 'max bytes', 'quota', ''].map((c) => (
                  <th scope="col">{c}</th>
                ))}
              </tr>
            </thead>
            <tbody>
              {rules.map((r) => (
                <tr>
                  <td>db:{r.id}</td>
                  <td>{r.action}</td>
                  <td>{r.from_glob}</td>
                  <td>{r.to_glob}</td>
                  <td>{r.types.join(', ')}</td>
                  <td>{r.subject}</td>
                  <td>{r.max_bytes}</td>
                  <td>
                    {r.quota_per
                      ? `${r.quota_limit}/${r.quota_window_sec}s${r.quota_burst !== null ? ` burst ${r.quota_burst}` : ''} per ${r.quota_per}`
                      : ''}
                  </td>
                  <td>
                    <button type="button" disabled={me.read_only} onClick={() => void remove(r.id)}>
                      Remove rule {r.id}
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Section>
      <AddRule disabled={me.read_only} onAdded={load} />
      <DryRunForm />
    </>
  );
}

function AddRule({ disabled, onAdded }: { disabled: boolean; onAdded: () => unknown }) {
  const [f, setF] = useState({ from: '', to: '', types: '', subject: '', max_bytes: '', action: 'allow' });
  const [error, setError] = useState<unknown>();
  const set = (k: keyof typeof f) => (v: string) => setF({ ...f, [k]: v });
  const submit = async (e: Event) => {
    e.preventDefault();
    setError(undefined);
    try {
      await api('/policy/rules', {
        method: 'POST',
        body: {
          from: f.from,
          to: f.to,
          action: f.action,
          types: f.types
            .split(',')
            .map((t) => t.trim())
            .filter(Boolean),
          ...(f.subject ? { subject: f.subject } : {}),
          ...(f.max_bytes ? { max_bytes: Number(f.max_bytes) } : {}),
        },
      });
      setF({ ...f, from: '', to: '', types: '', subject: '', max_bytes: '' });
      await onAdded();
    } catch (err) {
      setError(err);
    }
  };
  return (
    <Section title="Add a rule">
      <form class="filters" onSubmit={submit} aria-label="add a rule">
        <Field
          label="From (glob)"
          value={f.from}
          onInput={set('from')}
          placeholder="*@agents.partner.example"
          required
        />
        <Field label="To (glob)" value={f.to} onInput={set('to')} placeholder="*@agents.example" required />
        <Field label="Types (globs, comma separated)" value={f.types} onInput={set('types')} />
        <Field label="Subject (glob)" value={f.subject} onInput={set('subject')} />
        <Field label="Max bytes" type="number" value={f.max_bytes} onInput={set('max_bytes')} />
        <Field label="Action" value={f.action} onInput={set('action')} list={['allow', 'deny']} />
        <button type="submit" disabled={disabled}>
          Add rule
        </button>
      </form>
      <ErrorLine error={error} />
    </Section>
  );
}

function DryRunForm() {
  const [f, setF] = useState({ from: '', to: '', type: '', subject: '', bytes: '0' });
  const [result, setResult] = useState<Decision>();
  const [error, setError] = useState<unknown>();
  const set = (k: keyof typeof f) => (v: string) => setF({ ...f, [k]: v });
  const submit = async (e: Event) => {
    e.preventDefault();
    setError(undefined);
    try {
      setResult(
        await api<Decision>('/policy/dry-run', {
          method: 'POST',
          body: {
            from: f.from,
            to: f.to,
            type: f.type,
            bytes: Number(f.bytes || 0),
            ...(f.subject ? { subject: f.subject } : {}),
          },
        }),
      );
    } catch (err) {
      setError(err);
    }
  };
  return (
    <Section title="Dry run">
      <form class="filters" onSubmit={submit} aria-label="policy dry run">
        <Field label="Sender address" value={f.from} onInput={set('from')} required />
        <Field label="Recipient address" value={f.to} onInput={set('to')} required />
        <Field label="Message type" value={f.type} onInput={set('type')} required />
        <Field label="Message subject" value={f.subject} onInput={set('subject')} />
        <Field label="Size in bytes" type="number" value={f.bytes} onInput={set('bytes')} />
        <button type="submit">Dry run</button>
      </form>
      <ErrorLine error={error} />
      {result && (
        <p role="status" class={result.allow ? 'allowed' : 'denied'}>
          {result.allow ? `allowed by ${result.rule}` : `refused (${result.reason}): ${result.message}`}
        </p>
      )}
    </Section>
  );
}
