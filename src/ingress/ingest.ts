// The one entry every mail road calls (the Rspamd route, the LMTP server): it owns
// the time budget, turns a fault into a temporary answer for every recipient, and
// writes the summary log line. It never throws: roads only translate the results
// into their protocol's answers.
import { AdmpError, toAdmpError } from '../errors.js';
import type { Metrics } from '../metrics.js';
import { withSpan } from '../tracing.js';
import { everyRecipient, type IngestFacts, type MailDelivery, type RecipientResult } from './delivery.js';
import type { Pipeline } from './pipeline.js';
import { summarizeIngest, type SummaryLog } from './summary.js';
import type { StorageOutage } from '../storage-outage.js';

export type { MailDelivery, RecipientResult };

export interface IngestOptions {
  /** Store all recipients or none: any refusal or fault leaves nothing behind (the Rspamd road answers once per message). */
  readonly atomic: boolean;
  /** Where the summary line goes (a request's logger); default the process's. */
  readonly log?: SummaryLog;
}

export interface Ingest {
  ingest(d: MailDelivery, opts: IngestOptions): Promise<RecipientResult[]>;
  /** For a RCPT address: not our return path, a valid bounce tag, or the refusal (src/ingress/reports.ts). */
  checkReturnPath: Pipeline['checkReturnPath'];
}

export interface IngestDeps {
  readonly pipeline: Pipeline;
  /** A mail not decided within this many milliseconds is answered temporarily (the sender retries). */
  readonly budgetMs: number;
  readonly log: SummaryLog;
  readonly metrics?: Metrics;
  /** Storage faults are logged there once per outage; a stored mail ends one. */
  readonly outage?: StorageOutage;
  /** Keeps refused recipients for the operator (the console's recent refusals); never on the answer's path. */
  readonly recordRefusals?: (rows: RefusalRecord[]) => Promise<void>;
}

export interface RefusalRecord {
  readonly road: string;
  readonly sender: string | null;
  readonly recipient: string | null;
  readonly code: string;
  readonly reason: string;
}

export function createIngest(deps: IngestDeps): Ingest {
  async function decide(d: MailDelivery, atomic: boolean, facts: IngestFacts): Promise<RecipientResult[]> {
    let timer: NodeJS.Timeout | undefined;
    const budget = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new AdmpError('timeout', 'ingress took too long; try again later')),
        deps.budgetMs,
      );
    });
    try {
      // A message stored after the budget ran out is deduplicated when the sender retries.
      const results = await Promise.race([deps.pipeline.run(d, atomic, facts), budget]);
      if (results.some((r) => r.kind === 'stored')) deps.outage?.succeeded();
      return results;
    } catch (err) {
      deps.outage?.failed(err, d.road);
      return everyRecipient(d.recipients, toAdmpError(err));
    } finally {
      clearTimeout(timer);
    }
  }

  return {
    checkReturnPath: (address) => deps.pipeline.checkReturnPath(address),
    ingest(d, opts) {
      const attributes = {
        'admp.road': d.road,
        'admp.recipients': d.recipients.length,
        ...(d.queueId ? { 'admp.queue_id': d.queueId } : {}),
      };
      return withSpan('admp.ingest', attributes, async () => {
        const started = performance.now();
        const facts: IngestFacts = {};
        const results = await decide(d, opts.atomic, facts);
        summarizeIngest(opts.log ?? deps.log, deps.metrics, {
          road: d.road,
          queueId: d.queueId,
          facts,
          results,
          started,
        });
        const refused = results.flatMap((r) =>
          r.kind === 'refused'
            ? [
                {
                  road: d.road,
                  sender: facts.from ?? (d.envelopeFrom || null),
                  recipient: r.recipient,
                  code: r.error.code,
                  reason: r.error.message,
                },
              ]
            : [],
        );
        // After the answer is decided and without waiting: a lost log row must not delay or fail the mail.
        if (refused.length > 0 && deps.recordRefusals)
          deps
            .recordRefusals(refused)
            .catch((err) => (opts.log ?? deps.log).warn({ err, event: 'refusal_log' }, 'could not record refusals'));
        return results;
      });
    },
  };
}
