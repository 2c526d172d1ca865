import type { ComponentChildren } from 'preact';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { FlowJson } from '../../shared/engine/describe.ts';
import { dagModel, detailLines, layoutDag } from './dag.ts';
import { type NodeRun, STATE_TEXT } from './run-state.ts';

/** A time in the viewer's zone, UTC on hover. */
export function Time({ iso }: { iso: string | undefined }) {
  if (!iso) return <span>—</span>;
  const d = new Date(iso);
  return (
    <time dateTime={iso} title={`UTC: ${d.toISOString().replace('T', ' ').replace('Z', '')}`}>
      {d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' })}
    </time>
  );
}

/** A run's status, as text with a glyph (colour only repeats it). */
export function Status({ status }: { status: string }) {
  const glyph: Record<string, string> = {
    RUNNING: '▶',
    PAUSED: '⏸',
    COMPLETED: '✓',
    FAILED: '✕',
    CANCELLED: '⊘',
  };
  return (
    <span class={`status status-${status.toLowerCase()}`}>
      <span aria-hidden="true">{glyph[status] ?? '•'} </span>
      {status}
    </span>
  );
}

/** Largest JSON shown in the page; longer text is cut, and offered in full as a download. */
export const MAX_SHOWN_JSON = 20_000;

/** A JSON value pretty-printed; a large one truncated with a download of the whole. */
export function Json({ value, name }: { value: unknown; name: string }) {
  const text = useMemo(() => JSON.stringify(value, null, 2) ?? 'undefined', [value]);
  const cut = text.length > MAX_SHOWN_JSON;
  const download = () => {
    const url = URL.createObjectURL(new Blob([text], { type: 'application/json' }));
    const a = document.createElement('a');
    a.href = url;
    a.download = `${name}.json`;
    a.click();
    setTimeout(() => URL.revokeObjectURL(url), 1_000);
  };
  return (
    <div class="json">
      <pre>{cut ? `${text.slice(0, MAX_SHOWN_JSON)}\n…` : text}</pre>
      {cut && (
        <p>
          Showing {MAX_SHOWN_JSON.toLocaleString()} of {text.length.toLocaleString()} characters.{' '}
          <button type="button" onClick={download}>
            Download {name}.json
          </button>
        </p>
      )}
    </div>
  );
}

/** A confirmation dialog: nothing happens until the user says yes. */
export function Confirm(props: {
  title: string;
  children: ComponentChildren;
  confirmLabel: string;
  onConfirm: () => void;
  onCancel: () => void;
}) {
  const ref = useRef<HTMLButtonElement>(null);
  useEffect(() => ref.current?.focus(), []);
  return (
    <div class="backdrop">
      <div
        class="dialog"
        role="dialog"
        aria-modal="true"
        aria-labelledby="confirm-title"
        onKeyDown={(e) => e.key === 'Escape' && props.onCancel()}
      >
        <h2 id="confirm-title">{props.title}</h2>
        {props.children}
        <div class="buttons">
          <button type="button" class="danger" onClick={props.onConfirm}>
            {props.confirmLabel}
          </button>
          <button type="button" ref={ref} onClick={props.onCancel}>
            Cancel
          </button>
        </div>
      </div>
    </div>
  );
}

/** A message line: errors are announced to screen readers. */
export function Message({ error, info }: { error?: string | undefined; info?: string | undefined }) {
  if (error) {
    return (
      <p class="error" role="alert">
        {error}
      </p>
    );
  }
  if (info) {
    return (
      <p class="info" role="status">
        {info}
      </p>
    );
  }
  return null;
}

/**
 * A data table: one header row of column titles, one row per item, with
 * arrow-key navigation between rows ({@link onTableKeys}). `cells` gives an
 * item's cells, one per column; `rowAttrs` adds attributes to its row (the
 * `data-*` hooks tests and styles use).
 */
export function Table<T>(props: {
  readonly class: string;
  /** Read by screen readers only. */
  readonly caption?: string;
  readonly columns: readonly ComponentChildren[];
  readonly items: readonly T[];
  readonly rowKey: (item: T, index: number) => string | number;
  readonly rowAttrs?: (item: T) => Readonly<Record<string, string>>;
  readonly cells: (item: T) => readonly ComponentChildren[];
}) {
  return (
    <table class={props.class} onKeyDown={onTableKeys}>
      {props.caption && <caption class="sr-only">{props.caption}</caption>}
      <thead>
        <tr>
          {props.columns.map((c, i) => (
            <th scope="col" key={i}>
              {c}
            </th>
          ))}
        </tr>
      </thead>
      <tbody>
        {props.items.map((item, i) => (
          <tr key={props.rowKey(item, i)} {...(props.rowAttrs?.(item) ?? {})}>
            {props.cells(item).map((c, j) => (
              <td key={j}>{c}</td>
            ))}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/**
 * Arrow-key navigation of a table: Up/Down move between rows' first
 * focusable cells, Home/End to the ends.
 */
function onTableKeys(e: KeyboardEvent) {
  const keys = ['ArrowDown', 'ArrowUp', 'Home', 'End'];
  if (!keys.includes(e.key)) return;
  const target = e.target as HTMLElement;
  const row = target.closest('tr');
  const body = row?.parentElement;
  if (!row || !body) return;
  const rows = [...body.querySelectorAll<HTMLTableRowElement>('tr')];
  const i = rows.indexOf(row);
  const next =
    e.key === 'ArrowDown' ? rows[i + 1] : e.key === 'ArrowUp' ? rows[i - 1] : e.key === 'Home' ? rows[0] : rows.at(-1);
  const focusable = next?.querySelector<HTMLElement>('a, button, input, [tabindex]');
  if (focusable) {
    e.preventDefault();
    focusable.focus();
  }
}

/**
 * A workflow's DAG as SVG: dagre's layout, each node a box with its name,
 * kind and options, and, for a run, its state in words.
 */
export function Dag(props: {
  flow: FlowJson;
  states?: ReadonlyMap<string, NodeRun>;
  selected?: string | undefined;
  onSelect?: (qid: string) => void;
}) {
  const laid = useMemo(() => layoutDag(dagModel(props.flow)), [props.flow]);
  const { states } = props;
  return (
    <figure class="dag-scroll">
      <figcaption class="sr-only">DAG of {props.flow.name}</figcaption>
      <svg class="dag" width={laid.width} height={laid.height} viewBox={`0 0 ${laid.width} ${laid.height}`}>
        <title>{`DAG of ${props.flow.name}: ${laid.nodes.length} nodes`}</title>
        <defs>
          <marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto">
            <path d="M0,0 L10,5 L0,10 z" class="arrowhead" />
          </marker>
        </defs>
        {laid.clusters.map((c) => (
          <g key={c.id} class="cluster">
            <rect x={c.x} y={c.y} width={c.width} height={c.height} rx="8" />
            <text x={c.x + 8} y={c.y + 15}>
              {c.label}
            </text>
          </g>
        ))}
        {laid.edges.map((e, i) => {
          const d = e.points.map((p, j) => `${j === 0 ? 'M' : 'L'}${p.x},${p.y}`).join(' ');
          const mid = e.from === e.to ? e.points[1] : e.points[Math.floor(e.points.length / 2)];
          return (
            <g key={i} class="edge">
              <path d={d} marker-end="url(#arrow)" />
              {e.label && mid && (
                <text x={mid.x + 4} y={mid.y - 4}>
                  {e.label}
                </text>
              )}
            </g>
          );
        })}
        {laid.nodes.map((n) => {
          const run = states?.get(n.id);
          const state = run?.state ?? (states ? 'pending' : undefined);
          const small = n.kind === 'start' || n.kind === 'end' || n.kind === 'fork' || n.kind === 'merge';
          const several = run && run.keys.length > 1;
          const stateText = state
            ? `${STATE_TEXT[state]}${several ? ` (${run.keys.length} runs)` : ''}${run && run.attempts > 1 ? ` · attempt ${run.attempts}` : ''}`
            : '';
          const selectable = props.onSelect && !small;
          return (
            <g
              key={n.id}
              class={`node kind-${n.kind}${state ? ` state-${state}` : ''}${props.selected === n.id ? ' selected' : ''}`}
              data-node={n.id}
              data-state={state}
              transform={`translate(${n.x},${n.y})`}
              {...(selectable
                ? {
                    tabIndex: 0,
                    role: 'button',
                    'aria-label': `${n.label}: ${n.kind}${state ? `, ${STATE_TEXT[state]}` : ''}`,
                    onClick: () => props.onSelect?.(n.id),
                    onKeyDown: (e: KeyboardEvent) => {
                      if (e.key === 'Enter' || e.key === ' ') {
                        e.preventDefault();
                        props.onSelect?.(n.id);
                      }
                    },
                  }
                : {})}
            >
              <rect width={n.width} height={n.height} rx={small ? 14 : 6} />
              {small ? (
                <text x={n.width / 2} y={n.height / 2 + 4} text-anchor="middle">
                  {n.label}
                </text>
              ) : (
                <>
                  <text x="8" y="17" class="label">
                    {clip(n.label, 30)} <tspan class="kind">{n.kind}</tspan>
                  </text>
                  {detailLines(n.detail).map((line, i) => (
                    <text key={line} x="8" y={33 + i * 14} class="detail">
                      {clip(line, 48)}
                      <title>{n.detail}</title>
                    </text>
                  ))}
                  {stateText && (
                    <text x="8" y="70" class="state-text">
                      {clip(stateText, 44)}
                    </text>
                  )}
                </>
              )}
            </g>
          );
        })}
      </svg>
    </figure>
  );
}

const clip = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

/** Polls `load` every `ms` while `active`, and once at once; returns a manual refresh. */
export function usePoll(load: () => Promise<void>, ms: number, active: boolean, deps: readonly unknown[]) {
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const round = async () => {
      await load().catch(() => undefined);
      if (!stopped && active) timer = setTimeout(round, ms);
    };
    void round();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, [...deps, active, tick]);
  return () => setTick((t) => t + 1);
}
