// Tenants: the subdomains under a wildcard of ADMP_DOMAINS. Each tenant's agents with a
// link to each inbox (the messages page filtered by agent), and their address tokens;
// create and remove tenants, issue and revoke tokens.
import { useEffect, useState } from 'preact/hooks';
import type { AddressToken, Agent, Tenant, Whoami } from '../../../src/http/admin/schemas.js';
import { api } from '../api.js';
import { ErrorLine, Field, Section, when } from '../ui.js';

export function TenantsPage({ me, domain }: { me: Whoami; domain?: string }) {
  const [tenants, setTenants] = useState<Tenant[]>([]);
  const [agents, setAgents] = useState<Agent[]>([]);
  const [tokens, setTokens] = useState<AddressToken[]>([]);
  const [name, setName] = useState('');
  const [error, setError] = useState<unknown>();
  const load = async () => {
    try {
      setTenants(await api<Tenant[]>('/tenants'));
      setAgents(domain ? (await api<Agent[]>('/agents')).filter((a) => a.domain === domain) : []);
      setTokens(domain ? (await api<AddressToken[]>('/addresses')).filter((t) => t.agent.endsWith(`@${domain}`)) : []);
    } catch (err) {
      setError(err);
    }
  };
  useEffect(() => void load(), [domain]);
  const run = async (p: Promise<unknown>) => {
    setError(undefined);
    try {
      await p;
      await load();
    } catch (err) {
      setError(err);
    }
  };
  const create = (e: Event) => {
    e.preventDefault();
    void run(api('/tenants', { method: 'POST', body: { name } }));
  };
  return (
    <>
      <h1>{domain ? `Tenant ${domain}` : 'Tenants'}</h1>
      <ErrorLine error={error} />
      <table>
        <thead>
          <tr>
            {['tenant', 'agents', 'created', ''].map((c) => (
              <th scope="col">{c}</th>
            ))}
          </tr>
        </thead>
        <tbody>
          {tenants.map((t) => (
            <tr aria-current={t.domain === domain ? 'true' : undefined}>
              <td>
                <a href={`#/tenants/${encodeURIComponent(t.domain)}`}>{t.domain}</a>
              </td>
              <td>{t.agents}</td>
              <td>{when(t.created_at)}</td>
              <td>
                <button
                  type="button"
                  disabled={me.read_only || t.agents > 0}
                  onClick={() => void run(api(`/tenants/${encodeURIComponent(t.domain)}`, { method: 'DELETE' }))}
                >
                  Remove {t.domain}
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {domain && (
        <Section title={`Agents of ${domain}`}>
          <table>
            <thead>
              <tr>
                {['agent', 'status', 'inbox', 'address tokens'].map((c) => (
                  <th scope="col">{c}</th>
                ))}
              </tr>
            </thead>
            <tbody>
              {agents.map((a) => (
                <tr>
                  <td>{a.address}</td>
                  <td>{a.status}</td>
                  <td>
                    <a href={`#/messages?agent=${encodeURIComponent(a.id)}`}>inbox of {a.address}</a>
                  </td>
                  <td>
                    <ul>
                      {tokens
                        .filter((t) => t.agent === a.address)
                        .map((t) => (
                          <li>
                            {t.address} {t.revoked_at ? `(revoked ${when(t.revoked_at)})` : ''}
                            {!t.revoked_at && (
                              <button
                                type="button"
                                disabled={me.read_only}
                                onClick={() =>
                                  void run(api('/addresses/revoke', { method: 'POST', body: { address: t.address } }))
                                }
                              >
                                Revoke {t.address}
                              </button>
                            )}
                          </li>
                        ))}
                    </ul>
                    <button
                      type="button"
                      disabled={me.read_only}
                      onClick={() => void run(api('/addresses', { method: 'POST', body: { agent: a.address } }))}
                    >
                      New address token for {a.address}
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </Section>
      )}
      <Section title="Create a tenant">
        <form class="filters" onSubmit={create} aria-label="create a tenant">
          <Field label="Tenant (a label, or the whole subdomain)" value={name} onInput={setName} required />
          <button type="submit" disabled={me.read_only}>
            Create tenant
          </button>
        </form>
      </Section>
    </>
  );
}
