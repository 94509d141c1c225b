// The agents page's webhook endpoints: where each agent's messages are pushed, which
// are disabled and why (a 410 answer, a refused address), enable again or remove.
import { useEffect, useState } from 'preact/hooks';
import type { Webhook, Whoami } from '../../../src/http/admin/schemas.js';
import { api } from '../api.js';
import { ErrorLine, Section, when } from '../ui.js';

export function WebhookEndpoints({ me }: { me: Whoami }) {
  const [endpoints, setEndpoints] = useState<Webhook[]>([]);
  const [error, setError] = useState<unknown>();
  const load = () => api<Webhook[]>('/webhooks').then(setEndpoints, setError);
  useEffect(() => void load(), []);
  const act = async (p: Promise<unknown>) => {
    setError(undefined);
    try {
      await p;
      await load();
    } catch (err) {
      setError(err);
    }
  };
  return (
    <Section title="Webhook endpoints">
      <ErrorLine error={error} />
      {endpoints.length === 0 ? (
        <p>No agent has a webhook endpoint (agents register them with POST /v1/webhooks).</p>
      ) : (
        <table aria-label="webhook endpoints">
          <thead>
            <tr>
              {['agent', 'URL', 'types', 'state', 'created', 'actions'].map((c) => (
                <th scope="col">{c}</th>
              ))}
            </tr>
          </thead>
          <tbody>
            {endpoints.map((e) => (
              <tr>
                <td>{e.agent_id}</td>
                <td>{e.url}</td>
                <td>{e.types?.join(', ') ?? 'all'}</td>
                <td>{e.disabled_at ? `disabled ${when(e.disabled_at)}: ${e.disabled_reason ?? ''}` : 'active'}</td>
                <td>{when(e.created_at)}</td>
                <td>
                  {e.disabled_at && (
                    <button
                      type="button"
                      disabled={me.read_only}
                      onClick={() => void act(api(`/webhooks/${e.id}/enable`, { method: 'POST' }))}
                    >
                      Enable webhook {e.url}
                    </button>
                  )}{' '}
                  <button
                    type="button"
                    disabled={me.read_only}
                    onClick={() => void act(api(`/webhooks/${e.id}`, { method: 'DELETE' }))}
                  >
                    Remove webhook {e.url}
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Section>
  );
}
