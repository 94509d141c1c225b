import { useState } from 'preact/hooks';
import type { Whoami } from '../../../src/http/admin/schemas.js';
import { api, token } from '../api.js';
import { ErrorLine, Field } from '../ui.js';

export function Login({ onLogin }: { onLogin: (me: Whoami) => void }) {
  const [value, setValue] = useState('');
  const [error, setError] = useState<unknown>();
  const submit = async (e: Event) => {
    e.preventDefault();
    token.set(value.trim());
    try {
      onLogin(await api<Whoami>('/whoami'));
    } catch (err) {
      token.clear();
      setError(err);
    }
  };
  return (
    <main class="login">
      <h1>ADMP console</h1>
      <form onSubmit={submit} aria-label="log in">
        <Field label="Admin token" type="password" value={value} onInput={setValue} required />
        <p class="hint">
          Create one on the server: <code>admp admin token create</code> (add <code>--read-only</code> for a token that
          can change nothing).
        </p>
        <button type="submit">Log in</button>
        <ErrorLine error={error} />
      </form>
    </main>
  );
}
