// HTTP send load from wrk (Debian's `wrk`, C with a LuaJIT request generator). The
// send is compared with pgbench, a C client; a Node load generator (autocannon) spent
// 37 µs of CPU per request here, wrk about 10, and on two cores that CPU is taken
// from the server and PostgreSQL being measured.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LoadOptions, SendResult } from './send.js';
import { sendRecipient, sendRequest } from './workload.js';

const WRK = process.env.BENCH_WRK ?? 'wrk';

// Placeholders that sendRequest's JSON carries verbatim; the Lua script fills them per request.
const MARK = { rcpt: 'RCPT0MARK', seq: 987654321987, cid: 'CID0MARK' };

/** A Lua string literal (long brackets: no escapes to get wrong). */
const lua = (s: string) => `[==[${s}]==]`;

/**
 * The request generator: the request bodies sendRequest writes (bench/workload.ts),
 * each with a random recipient, its own seq, correlation id and Idempotency-Key.
 */
function sendScript(token: string, recipients: number): string {
  const parts = sendRequest(MARK.rcpt, MARK.seq, MARK.cid).split(new RegExp(`(${MARK.rcpt}|${MARK.seq}|${MARK.cid})`));
  const pieces = parts.map((p) =>
    p === MARK.rcpt ? 'rcpt' : p === String(MARK.seq) ? 'seq' : p === MARK.cid ? 'cid' : lua(p),
  );
  const names = Array.from({ length: recipients }, (_, i) => lua(sendRecipient(i)));
  return `local rcpts = {${names.join(',')}}
local auth = ${lua(`Bearer ${token}`)}
local threads, n = 0, 0
-- setup() runs in the main Lua state, once per thread; tid is a global of each thread's own state.
function setup(thread) thread:set("tid", threads); threads = threads + 1 end
function init() math.randomseed(os.time() * 1000 + tid) end
local function uuid()
  return string.format("%08x-%04x-4%03x-%04x-%012x", math.random(0, 0x7fffffff), tid, math.random(0, 0xfff), 0x8000 + math.random(0, 0x3fff), n)
end
function request()
  n = n + 1
  local rcpt, seq, cid = rcpts[math.random(1, #rcpts)], n, uuid()
  local body = ${pieces.join(' .. ')}
  return wrk.format("POST", "/v1/messages", { ["Authorization"] = auth, ["Content-Type"] = "application/json", ["Idempotency-Key"] = uuid() }, body)
end
`;
}

const UNIT_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000 };

function latencyMs(out: string, pct: number): number {
  const m = new RegExp(`^\\s*${pct}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, 'm').exec(out);
  if (!m) throw new Error(`cannot read the ${pct}% latency from wrk's output:\n${out}`);
  return Number(m[1]) * UNIT_MS[m[2]!]!;
}

/** wrk's summary as the report needs it: only 2xx count. */
function parseWrk(out: string): SendResult {
  const total = /(\d+) requests in ([\d.]+)(us|ms|s|m),/.exec(out);
  if (!total) throw new Error(`cannot read wrk's output:\n${out}`);
  const seconds = (Number(total[2]) * UNIT_MS[total[3]!]!) / 1000;
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const [connect, read, write, timeouts] = socket ? socket.slice(1).map(Number) : [0, 0, 0, 0];
  const ok = Number(total[1]) - non2xx;
  return {
    perSec: ok / seconds,
    ok,
    non2xx,
    errors: connect! + read! + write!,
    timeouts: timeouts!,
    p50Ms: latencyMs(out, 50),
    p99Ms: latencyMs(out, 99),
    seconds,
    statusCodes: { '2xx': ok, 'non-2xx': non2xx },
  };
}

/** POST /v1/messages from `connections` keep-alive connections for `seconds`, one request each at a time. */
export async function wrkSend(
  url: string,
  token: string,
  opts: LoadOptions & { recipients: number },
): Promise<SendResult> {
  const dir = mkdtempSync(join(tmpdir(), 'admp-bench-wrk-'));
  try {
    writeFileSync(join(dir, 'send.lua'), sendScript(token, opts.recipients));
    const child = spawn(
      WRK,
      [
        '-t',
        String(Math.min(opts.connections, 2)),
        '-c',
        String(opts.connections),
        '-d',
        `${opts.seconds}s`,
        '--timeout',
        '10s',
        '--latency',
        '-s',
        join(dir, 'send.lua'),
        url,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c));
    child.stderr.on('data', (c: Buffer) => (out += c));
    const code = await new Promise<number | null>((ok, fail) => {
      child.once('error', (err: NodeJS.ErrnoException) =>
        fail(
          err.code === 'ENOENT'
            ? new Error(`${WRK} not found: install Debian's wrk (apt-get install wrk) or set BENCH_WRK`)
            : err,
        ),
      );
      child.once('exit', ok);
    });
    if (code !== 0) throw new Error(`wrk exited with ${code}:\n${out}`);
    return parseWrk(out);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
