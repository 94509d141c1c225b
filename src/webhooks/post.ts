// One webhook POST through the SSRF guard (src/net/guarded-fetch.ts): the address
// actually connected to must not be ours unless ADMP_FETCH_ALLOW names it. undici's
// request() follows no redirect, so a 3xx is an answer like any other: a receiver
// cannot point our request at another host. The whole exchange has one deadline.
import { request, type Dispatcher } from 'undici';
import type { PushAnswer } from './next-step.js';

/** How much of an answer's body is read (and then dropped): receivers answer with little. */
const MAX_ANSWER_BYTES = 64 * 1024;

function refusal(err: unknown): string | undefined {
  for (let e = err as { code?: string; message?: string; cause?: unknown } | undefined; e; e = e.cause as typeof e)
    if (e.code === 'ADMP_REFUSED_ADDRESS') return e.message;
  return undefined;
}

export async function postWebhook(
  dispatcher: Dispatcher,
  url: string,
  headers: Record<string, string>,
  body: string,
  timeoutMs: number,
): Promise<PushAnswer> {
  // A timer cleared with the answer, not AbortSignal.timeout: that one's timer and signal
  // would outlive every delivery by the whole timeout (thousands of them at full speed).
  const deadline = new AbortController();
  const timer = setTimeout(
    () => deadline.abort(new DOMException(`no answer within ${timeoutMs} ms`, 'TimeoutError')),
    timeoutMs,
  );
  try {
    const res = await request(url, {
      method: 'POST',
      dispatcher,
      headers: { 'content-type': 'application/json', 'user-agent': 'ADMP-Webhooks/1', ...headers },
      body,
      signal: deadline.signal,
    });
    await res.body.dump({ limit: MAX_ANSWER_BYTES });
    const status = res.statusCode;
    if (status >= 200 && status < 300) return { kind: 'accepted', status };
    if (status === 410) return { kind: 'gone' };
    if (status >= 300 && status < 400) {
      const location = String(res.headers.location ?? '').slice(0, 200);
      return { kind: 'failed', status, error: `redirect not followed (Location: ${location})` };
    }
    return { kind: 'failed', status, error: `HTTP ${status}` };
  } catch (err) {
    const refused = refusal(err);
    if (refused) return { kind: 'refused', reason: refused };
    const e = err as Error;
    if (e.name === 'TimeoutError' || e.name === 'AbortError')
      return { kind: 'failed', error: `no answer within ${timeoutMs} ms` };
    return { kind: 'failed', error: e.message.slice(0, 300) };
  } finally {
    clearTimeout(timer);
  }
}
