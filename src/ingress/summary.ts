// The one summary log line and the ingress metrics for each mail, whichever road
// it came by (written by src/ingress/ingest.ts): what an admin greps for first when
// agent mail does not arrive. A temporary failure carries its cause.
import type { LogFn } from 'pino';
import type { Metrics } from '../metrics.js';
import type { IngestFacts, RecipientResult, Road } from './delivery.js';

export interface IngestSummary {
  readonly road: Road;
  readonly queueId?: string;
  readonly facts: IngestFacts;
  readonly results: readonly RecipientResult[];
  /** performance.now() when the mail was handed to the pipeline. */
  readonly started: number;
}

/** The answer for the mail as a whole: the worst of its recipients' outcomes. */
export function overallOutcome(results: readonly RecipientResult[]): RecipientResult['kind'] {
  for (const kind of ['tempfail', 'refused', 'stored'] as const) if (results.some((r) => r.kind === kind)) return kind;
  return 'report';
}

/** A pino logger: the process's, or a request's (`req.log`). */
export interface SummaryLog {
  info: LogFn;
  warn: LogFn;
}

/** What was thrown underneath a temporary failure (a database error, a bug), for the log line. */
function causeOf(e: Error): { cause?: string; cause_code?: string } {
  const c = e.cause as { message?: unknown; code?: unknown } | undefined;
  if (c === undefined || c === null) return {};
  return {
    cause: String(c.message ?? c),
    ...(typeof c.code === 'string' ? { cause_code: c.code } : {}),
  };
}

export function summarizeIngest(log: SummaryLog, metrics: Metrics | undefined, s: IngestSummary): void {
  const seconds = (performance.now() - s.started) / 1000;
  const ids = s.results.flatMap((r) => ('id' in r && r.id ? [r.id] : []));
  metrics?.ingestSeconds.observe({ road: s.road }, seconds);
  for (const r of s.results)
    metrics?.ingress.inc({ road: s.road, outcome: r.kind, code: 'error' in r ? r.error.code : 'none' });
  const outcome = overallOutcome(s.results);
  const line = {
    event: 'ingest',
    channel: 'smtp',
    road: s.road,
    outcome,
    queue_id: s.queueId,
    // The stored row when there is one (the usual single-recipient mail); every row is in `results`.
    message_id: ids.length === 1 ? ids[0] : undefined,
    mail_message_id: s.facts.messageId,
    correlation_id: s.facts.correlationId,
    from: s.facts.from,
    results: s.results.map((r) => ({
      recipient: r.recipient,
      outcome: r.kind,
      id: 'id' in r ? r.id : undefined,
      code: 'error' in r ? r.error.code : undefined,
      ...(r.kind === 'tempfail' ? { reason: r.error.message, ...causeOf(r.error) } : {}),
      // A rate quota's refusal names its rule, key and window (docs/policy.md).
      ...('error' in r && r.error.code === 'rate_limited' ? { quota: r.error.details } : {}),
      ...('duplicate' in r && r.duplicate ? { duplicate: true } : {}),
    })),
    ms: Math.round(seconds * 1000),
  };
  if (outcome === 'tempfail') log.warn(line, 'ingest');
  else log.info(line, 'ingest');
}
