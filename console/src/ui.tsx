// Small shared pieces: labelled fields, the error line, the bar chart, time formats.
import type { ComponentChildren } from 'preact';
import { useState } from 'preact/hooks';
import { ApiError } from './api.js';

let nextId = 0;
/** A labelled input: every control has a <label for>, so screen readers and tests find it by name. */
export function Field(props: {
  label: string;
  value: string;
  onInput: (v: string) => void;
  type?: 'text' | 'password' | 'number' | 'datetime-local';
  placeholder?: string;
  required?: boolean;
  list?: readonly string[];
}) {
  const [id] = useState(() => `f${++nextId}`);
  return (
    <div class="field">
      <label for={id}>{props.label}</label>
      {props.list ? (
        <select id={id} value={props.value} onChange={(e) => props.onInput((e.target as HTMLSelectElement).value)}>
          {props.list.map((o) => (
            <option value={o}>{o === '' ? '(any)' : o}</option>
          ))}
        </select>
      ) : (
        <input
          id={id}
          type={(props.type ?? 'text') as 'text'}
          value={props.value}
          placeholder={props.placeholder}
          required={props.required}
          onInput={(e) => props.onInput((e.target as HTMLInputElement).value)}
        />
      )}
    </div>
  );
}

export function ErrorLine({ error }: { error: unknown }) {
  if (!error) return null;
  const text = error instanceof ApiError ? `${error.status} ${error.code}: ${error.message}` : String(error);
  return (
    <p class="error" role="alert">
      {text}
    </p>
  );
}

export function Section({ title, children }: { title: string; children: ComponentChildren }) {
  return (
    <section aria-label={title}>
      <h2>{title}</h2>
      {children}
    </section>
  );
}

/** A horizontal bar chart in SVG (no chart library: a few bars do not need one). */
export function Bars({ label, rows }: { label: string; rows: { name: string; value: number }[] }) {
  const max = Math.max(1, ...rows.map((r) => r.value));
  const h = 22;
  return (
    <svg class="chart" role="img" aria-label={label} viewBox={`0 0 400 ${rows.length * h}`} width="100%">
      {rows.map((r, i) => (
        <g transform={`translate(0 ${i * h})`}>
          <text x="0" y="15">
            {r.name}
          </text>
          <rect x="90" y="4" height="14" width={Math.max(1, (r.value / max) * 250)} class="bar" />
          <text x={96 + (r.value / max) * 250} y="15">
            {r.value}
          </text>
        </g>
      ))}
    </svg>
  );
}

/** Columns over time (throughput per minute). */
export function Columns({ label, values }: { label: string; values: number[] }) {
  const max = Math.max(1, ...values);
  const w = 400 / Math.max(1, values.length);
  return (
    <svg class="chart" role="img" aria-label={label} viewBox="0 0 400 100" width="100%">
      {values.map((v, i) => (
        <rect x={i * w} y={100 - (v / max) * 100} width={Math.max(1, w - 1)} height={(v / max) * 100} class="bar" />
      ))}
    </svg>
  );
}

export const when = (iso: string | null | undefined): string => (iso ? new Date(iso).toLocaleString() : '');
export const age = (iso: string | null | undefined): string => {
  if (!iso) return '–';
  const s = Math.max(0, Math.round((Date.now() - new Date(iso).getTime()) / 1000));
  return s < 120 ? `${s} s` : s < 7200 ? `${Math.round(s / 60)} min` : `${Math.round(s / 3600)} h`;
};
