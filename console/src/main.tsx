// The operator console: log in with an admin token, then the pages below, routed
// by the URL hash (#/messages?...), so every view has a link and the back button works.
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import type { Whoami } from '../../src/http/admin/schemas.js';
import { api, token } from './api.js';
import { Login } from './pages/login.js';
import { OverviewPage } from './pages/overview.js';
import { AgentsPage } from './pages/agents.js';
import { TenantsPage } from './pages/tenants.js';
import { MessagesPage } from './pages/messages.js';
import { MessagePage } from './pages/message.js';
import { DeadLettersPage } from './pages/dead-letters.js';
import { PolicyPage } from './pages/policy.js';

const PAGES = [
  ['overview', 'Overview'],
  ['agents', 'Agents'],
  ['tenants', 'Tenants'],
  ['messages', 'Messages'],
  ['dead-letters', 'Dead letters'],
  ['policy', 'Policy'],
] as const;

function useHash(): [string, URLSearchParams] {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const on = () => setHash(location.hash);
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  const [path = '', query = ''] = hash.replace(/^#\/?/, '').split('?');
  return [path, new URLSearchParams(query)];
}

function App() {
  const [me, setMe] = useState<Whoami | null | undefined>(undefined);
  const [path, params] = useHash();
  useEffect(() => {
    if (!token.get()) return setMe(null);
    api<Whoami>('/whoami').then(setMe, () => (token.clear(), setMe(null)));
  }, []);
  if (me === undefined) return <p>Loading…</p>;
  if (me === null) return <Login onLogin={setMe} />;
  const [page, arg] = path.split('/');
  return (
    <>
      <header>
        <strong>ADMP console</strong>
        <nav aria-label="pages">
          {PAGES.map(([p, name]) => (
            <a href={`#/${p}`} aria-current={(page || 'overview') === p ? 'page' : undefined}>
              {name}
            </a>
          ))}
        </nav>
        <span class="who">
          {me.name}
          {me.read_only ? ' (read-only)' : ''}
        </span>
        <button type="button" onClick={() => (token.clear(), setMe(null))}>
          Log out
        </button>
      </header>
      <main>
        {page === 'agents' ? (
          <AgentsPage me={me} />
        ) : page === 'tenants' ? (
          <TenantsPage me={me} domain={arg ? decodeURIComponent(arg) : undefined} />
        ) : page === 'messages' && arg ? (
          <MessagePage id={arg} me={me} />
        ) : page === 'messages' ? (
          <MessagesPage params={params} />
        ) : page === 'dead-letters' ? (
          <DeadLettersPage me={me} />
        ) : page === 'policy' ? (
          <PolicyPage me={me} />
        ) : (
          <OverviewPage />
        )}
      </main>
    </>
  );
}

render(<App />, document.getElementById('app')!);
