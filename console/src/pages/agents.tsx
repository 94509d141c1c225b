// Agents: list, create (credentials shown once), rotate the token or HMAC secret, and
// rotate the signing key (a new key; the others keep verifying for a day, then retire).
import { useEffect, useState } from 'preact/hooks';
import type { Agent, AgentCredentials, Key, RotatedKey, Whoami } from '../../../src/http/admin/schemas.js';
import { api } from '../api.js';
import { ErrorLine, Field, Section, when } from '../ui.js';
import { WebhookEndpoints } from './webhooks.js';

export function AgentsPage({ me }: { me: Whoami }) {
  const [agents, setAgents] = useState<Agent[]>([]);
  const [id, setId] = useState('');
  const [domain, setDomain] = useState('');
  const [keys, setKeys] = useState<Key[]>([]);
  const [issued, setIssued] = useState<AgentCredentials>();
  const [rotated, setRotated] = useState<RotatedKey>();
  const [error, setError] = useState<unknown>();
  const load = () =>
    Promise.all([api<Agent[]>('/agents').then(setAgents), api<Key[]>('/keys').then(setKeys)]).catch(setError);
  useEffect(() => void load(), []);
  const run = async (p: Promise<void>) => {
    setError(undefined);
    setIssued(undefined);
    setRotated(undefined);
    try {
      await p;
      await load();
    } catch (err) {
      setError(err);
    }
  };
  const create = (e: Event) => {
    e.preventDefault();
    void run(
      api<AgentCredentials>('/agents', { method: 'POST', body: { id, ...(domain ? { domain } : {}) } }).then(setIssued),
    );
  };
  const rotate = (agent: string, hmac: boolean) =>
    void run(
      api<AgentCredentials>(`/agents/${encodeURIComponent(agent)}/rotate`, { method: 'POST', body: { hmac } }).then(
        setIssued,
      ),
    );
  const rotateKey = (address: string) =>
    void run(api<RotatedKey>('/keys/rotate', { method: 'POST', body: { agent: address } }).then(setRotated));
  const now = Date.now();
  /** The agent's own keys that still verify: the one it signs with and those retiring. */
  const liveKeys = (address: string) =>
    keys.filter(
      (k) =>
        k.source === 'local' && k.agent === address && !k.revoked_at && (!k.not_after || Date.parse(k.not_after) > now),
    );
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
      {rotated && (
        <div class="issued" role="status">
          <p>
            New signing key <strong>{rotated.key.kid}</strong> for <strong>{rotated.key.agent}</strong>.{' '}
            {rotated.retiring.length > 0
              ? `Its older keys ${rotated.retiring.join(', ')} keep verifying until ${when(rotated.retiring_at)}.`
              : 'It had no older key.'}
          </p>
          <p>Publish this DNS record (partners may also read the key from the JWKS URL):</p>
          {rotated.dns.map((r) => (
            <pre>
              {r.name} TXT "{r.text}"
            </pre>
          ))}
        </div>
      )}
      <table>
        <thead>
          <tr>
            {['agent', 'status', 'created', 'inbox', 'credentials', 'signing keys'].map((c) => (
              <th scope="col">{c}</th>
            ))}
          </tr>
        </thead>
        <tbody>
          {agents.map((a) => (
            <tr>
              <td>{a.address}</td>
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
              <td>
                <ul class="keys" aria-label={`signing keys of ${a.id}`}>
                  {liveKeys(a.address).map((k) => (
                    <li>
                      <code>{k.kid}</code>
                      {k.not_after && ` (until ${when(k.not_after)})`}
                    </li>
                  ))}
                </ul>
                <button type="button" disabled={me.read_only} onClick={() => rotateKey(a.address)}>
                  Rotate signing key of {a.id}
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
      <WebhookEndpoints me={me} />
    </>
  );
}
