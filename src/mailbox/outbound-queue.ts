// The outbound mail worker's view of the queue: claim due `queued` rows, record each
// attempt's outcome (src/db/outbound.ts holds the SQL and its rules).
import type pg from 'pg';
import type { Config } from '../config.js';
import { claimDue, recordOutcome, type Outcome, type OutboundRow } from '../db/outbound.js';
import { listen, type Listener } from '../db/listen.js';
import { keysDir, loadSigningKey } from '../keys/key-files.js';
import type { SigningKey } from '../mail/signed-message.js';
import { bounceAddress } from '../core/bounce-tag.js';
import { parseAddress } from '../core/address.js';

export type { Listener, Outcome, OutboundRow, SigningKey };

export interface OutboundQueue {
  claimDue(max: number, holdSec: number): Promise<OutboundRow[]>;
  recordOutcome(row: Pick<OutboundRow, 'id' | 'to_agent_id' | 'lease_id'>, o: Outcome): Promise<boolean>;
  /** The sending agent's current private key (from the keys directory), if it has one. */
  signingKey(agent: string, at: Date): Promise<SigningKey | undefined>;
  /** Where the keys are looked for (for the log line when one is missing). */
  readonly keysDir: string;
  /** The tagged return path of `row` sent at `nowSec` (src/core/bounce-tag.ts). */
  returnPath(row: Pick<OutboundRow, 'id' | 'from_agent'>, nowSec: number): string;
  /**
   * Calls `wake` on every NOTIFY admp_outbound (enqueue_message sends one for each new
   * outbound row), and `onState` when that connection goes down or comes back.
   */
  onEnqueued(wake: () => void, onState: (up: boolean, err?: Error) => void): Listener;
}

export function createOutboundQueue(pool: pg.Pool, url: string, config: Config, bounceSecret: Buffer): OutboundQueue {
  const dir = keysDir(config);
  return {
    keysDir: dir,
    returnPath: (row, nowSec) =>
      bounceAddress(row.id, parseAddress(row.from_agent, 'from').domain, nowSec, bounceSecret),
    signingKey: (agent, at) => loadSigningKey(pool, dir, agent, at),
    onEnqueued: (wake, onState) => listen(url, 'admp_outbound', { onNotify: wake, onState }),
    claimDue: (max, holdSec) => claimDue(pool, max, holdSec),
    recordOutcome: (row, o) => recordOutcome(pool, row, o),
  };
}
