// Queue depth and oldest age by status, throughput per minute, recent refusals and
// outbound failures; kept current by the server's event stream.
import { useEffect, useState } from 'preact/hooks';
import type { OutboundFailure, Overview, Refusal } from '../../../src/http/admin/schemas.js';
import { api, subscribe } from '../api.js';
import { age, Bars, Columns, ErrorLine, Section, when } from '../ui.js';

export function OverviewPage() {
  const [overview, setOverview] = useState<Overview>();
  const [refusals, setRefusals] = useState<Refusal[]>([]);
  const [failures, setFailures] = useState<OutboundFailure[]>([]);
  const [error, setError] = useState<unknown>();
  useEffect(() => {
    api<Overview>('/overview').then(setOverview, setError);
    api<Refusal[]>('/refusals').then(setRefusals, setError);
    api<OutboundFailure[]>('/outbound-failures').then(setFailures, setError);
    return subscribe('/events', (type, data) => {
      if (type === 'overview') setOverview(data as Overview);
      if (type === 'refusals') setRefusals(data as Refusal[]);
    });
  }, []);
  return (
    <>
      <h1>Overview</h1>
      <ErrorLine error={error} />
      {overview && (
        <div class="grid">
          <Section title="Queue depth by status">
            <Bars label="messages by status" rows={overview.depth.map((d) => ({ name: d.status, value: d.count }))} />
          </Section>
          <Section title="Oldest message by status">
            <table>
              <thead>
                <tr>
                  <th scope="col">status</th>
                  <th scope="col">messages</th>
                  <th scope="col">oldest</th>
                </tr>
              </thead>
              <tbody>
                {overview.depth.map((d) => (
                  <tr>
                    <td>{d.status}</td>
                    <td>{d.count}</td>
                    <td>{age(d.oldest_at)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </Section>
          <Section title="Messages per minute, last hour">
            <Columns label="messages created per minute" values={overview.throughput.map((t) => t.count)} />
            <p class="hint">
              last minute: {overview.throughput.at(-1)?.count ?? 0}, peak:{' '}
              {Math.max(0, ...overview.throughput.map((t) => t.count))}
            </p>
          </Section>
        </div>
      )}
      <Section title="Recent refusals">
        <Table
          rows={refusals}
          empty="no refused mail"
          cols={['at', 'road', 'sender', 'recipient', 'code', 'reason']}
          cell={(r, c) => (c === 'at' ? when(r.at) : String(r[c as keyof Refusal] ?? ''))}
        />
      </Section>
      <Section title="Outbound failures">
        <Table
          rows={failures}
          empty="no failed outbound mail"
          cols={['created_at', 'from_agent', 'to', 'status', 'reason']}
          cell={(r, c) => (c === 'created_at' ? when(r.created_at) : String(r[c as keyof OutboundFailure] ?? ''))}
        />
      </Section>
    </>
  );
}

function Table<T>(p: { rows: T[]; cols: string[]; empty: string; cell: (row: T, col: string) => string }) {
  if (p.rows.length === 0) return <p class="hint">{p.empty}</p>;
  return (
    <table>
      <thead>
        <tr>
          {p.cols.map((c) => (
            <th scope="col">{c}</th>
          ))}
        </tr>
      </thead>
      <tbody>
        {p.rows.map((r) => (
          <tr>
            {p.cols.map((c) => (
              <td>{p.cell(r, c)}</td>
            ))}
          </tr>
        ))}
      </tbody>
    </table>
  );
}
