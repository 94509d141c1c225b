// Agents: list, create (credentials shown once), rotate the token or HMAC secret.
import { useEffect, useState } from 'preact/hooks';
import type { Agent, AgentCredentials, Whoami } from '../../../src/http/admin/schemas.js';
import { api } from '../api.js';
import { ErrorLine, Field, Section, when } from '../ui.js';

export function AgentsPage({ me }: { me: Whoami }) {
  const [agents, setAgents] = useState<Agent[]>([]);
  const [id, setId] = useState('');
  const [domain, setDomain] = useState('');
  const [issued, setIssued] = useState<AgentCredentials>();
  const [error, setError] = useState<unknown>();
  const load = () => api<Agent[]>('/agents').then(setAgents, setError);
  useEffect(() => void load(), []);
  const run = async (p: Promise<AgentCredentials>) => {
    setError(undefined);
    try {
      setIssued(await p);
      await load();
    } catch (err) {
      setError(err);
    }
  };
  const create = (e: Event) => {
    e.preventDefault();
    void run(api('/agents', { method: 'POST', body: { id, ...(domain ? { domain } : {}) } }));
  };
  const rotate = (agent: string, hmac: boolean) =>
    void run(api(`/agents/${agent}/rotate`, { method: 'POST', body: { hmac } }));
  return (
    <>
      <h1>Agents</h1>
      <ErrorLine error={error} />
      {issued && (
        <div class="issued" role="status">
          <p>
            Credentials for <strong>{issued.address}</strong>, shown once:
          </p>
          {issued.token && <pre>token: {issued.token}</pre>}
          {issued.hmac_secret && <pre>hmac secret: {issued.hmac_secret}</pre>}
        </div>
      )}
      <table>
        <thead>
          <tr>
            {['agent', 'status', 'created', 'inbox', 'credentials'].map((c) => (
              <th scope="col">{c}</th>
            ))}
          </tr>
        </thead>
        <tbody>
          {agents.map((a) => (
            <tr>
              <td>
                {a.id}@{a.domain}
              </td>
              <td>{a.status}</td>
              <td>{when(a.created_at)}</td>
              <td>
                <a href={`#/messages?agent=${encodeURIComponent(a.id)}`}>inbox of {a.id}</a>
              </td>
              <td>
                <button type="button" disabled={me.read_only} onClick={() => rotate(a.id, false)}>
                  Rotate token of {a.id}
                </button>{' '}
                <button type="button" disabled={me.read_only} onClick={() => rotate(a.id, true)}>
                  Rotate token and HMAC secret of {a.id}
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <Section title="Create an agent">
        <form class="filters" onSubmit={create} aria-label="create an agent">
          <Field label="Agent id" value={id} onInput={setId} required />
          <Field label="Domain (default: the first agents domain)" value={domain} onInput={setDomain} />
          <button type="submit" disabled={me.read_only}>
            Create agent
          </button>
        </form>
      </Section>
    </>
  );
}
