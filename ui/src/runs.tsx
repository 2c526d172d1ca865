import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { SayiirClient } from '../../shared/client/client.ts';
import type { InstanceSummaryView, InstanceView, WorkflowView } from '../../shared/client/index.ts';
import { Confirm, Message, Status, Table, Time, usePoll } from './components.tsx';
import { MergedRuns, PAGE_SIZE } from './merged-runs.ts';
import { failedKeys } from './run-state.ts';
import { describeError } from './session.ts';

/** Runs: every workflow's runs merged newest first, filtered, paged, refreshed live; bulk cancel and retry. */

export const RUN_STATUSES = ['RUNNING', 'PAUSED', 'COMPLETED', 'FAILED', 'CANCELLED'] as const;
const REFRESH_MS = 3_000;

export interface RunFilters {
  readonly workflow: string;
  readonly status: string;
  /** `datetime-local` values, in the viewer's zone. */
  readonly from: string;
  readonly to: string;
  readonly instanceId: string;
}

export const NO_FILTERS: RunFilters = { workflow: '', status: '', from: '', to: '', instanceId: '' };

const toMs = (local: string): number | undefined => (local ? new Date(local).getTime() : undefined);

export function RunsPage(props: {
  client: SayiirClient;
  workflows: readonly WorkflowView[];
  filters: RunFilters;
  onFilters: (f: RunFilters) => void;
  onUnauthorized: (e: unknown) => boolean;
}) {
  const { client, filters } = props;
  const [pages, setPages] = useState<InstanceSummaryView[][]>([]);
  const [pageIndex, setPageIndex] = useState(0);
  const [more, setMore] = useState(false);
  const [error, setError] = useState<string>();
  const [live, setLive] = useState(true);
  const [selected, setSelected] = useState<ReadonlySet<string>>(new Set());
  const [bulk, setBulk] = useState<'cancel' | 'retry'>();
  const [results, setResults] = useState<{ id: string; ok: boolean; text: string }[]>();
  const [loaded, setLoaded] = useState(false);
  const pager = useRef<MergedRuns | undefined>(undefined);

  const names = useMemo(
    () => (filters.workflow ? [filters.workflow] : props.workflows.map((w) => w.name)),
    [filters.workflow, props.workflows],
  );

  const loadFirst = async () => {
    try {
      if (filters.instanceId) {
        const view = await client
          .getHandle(filters.instanceId)
          .status()
          .catch((e) => {
            if ((e as { status?: number }).status === 404) return undefined;
            throw e;
          });
        setPages([view ? [view] : []]);
        setMore(false);
      } else {
        const p = new MergedRuns(client, names, filters.status, toMs(filters.from), toMs(filters.to));
        const first = await p.take(PAGE_SIZE);
        pager.current = p;
        setPages([first.items]);
        setMore(first.more);
      }
      setError(undefined);
      setLoaded(true);
    } catch (e) {
      if (!props.onUnauthorized(e)) setError(describeError(e));
    }
  };

  // A change of filters starts again from the first page.
  useEffect(() => {
    setPageIndex(0);
    setSelected(new Set());
    setLoaded(false);
  }, [filters, names]);
  usePoll(loadFirst, REFRESH_MS, live && pageIndex === 0, [filters, names]);

  const next = async () => {
    if (pages[pageIndex + 1]) return setPageIndex(pageIndex + 1);
    if (!pager.current) return;
    try {
      const got = await pager.current.take(PAGE_SIZE);
      setPages([...pages.slice(0, pageIndex + 1), got.items]);
      setMore(got.more);
      setPageIndex(pageIndex + 1);
    } catch (e) {
      if (!props.onUnauthorized(e)) setError(describeError(e));
    }
  };

  const rows = pages[pageIndex] ?? [];
  const toggle = (id: string) => {
    const s = new Set(selected);
    if (s.has(id)) s.delete(id);
    else s.add(id);
    setSelected(s);
  };
  const allOnPage = rows.length > 0 && rows.every((r) => selected.has(r.instanceId));

  const runBulk = async (kind: 'cancel' | 'retry') => {
    setBulk(undefined);
    const ids = [...selected];
    const out: { id: string; ok: boolean; text: string }[] = [];
    for (const id of ids) {
      try {
        const run = client.getHandle(id);
        if (kind === 'cancel') {
          out.push({ id, ok: true, text: `cancelled: now ${await run.cancel('bulk cancel from the UI')}` });
        } else {
          const view: InstanceView = await run.status();
          const keys = failedKeys(view);
          if (keys.length === 0) {
            out.push({ id, ok: false, text: `not retried: it is ${view.status} with no failed task` });
            continue;
          }
          let status = view.status as string;
          for (const key of keys) status = await run.retry(key);
          out.push({ id, ok: true, text: `retried ${keys.join(', ')}: now ${status}` });
        }
      } catch (e) {
        if (props.onUnauthorized(e)) return;
        out.push({ id, ok: false, text: describeError(e) });
      }
    }
    setResults(out);
    setSelected(new Set());
    await loadFirst();
  };

  const set = (patch: Partial<RunFilters>) => props.onFilters({ ...filters, ...patch });

  return (
    <section aria-labelledby="runs-title">
      <h1 id="runs-title">Runs</h1>
      <form class="filters" onSubmit={(e) => e.preventDefault()} aria-label="Filters">
        <label>
          Workflow
          <select value={filters.workflow} onChange={(e) => set({ workflow: e.currentTarget.value })}>
            <option value="">all</option>
            {props.workflows.map((w) => (
              <option key={w.name} value={w.name}>
                {w.name}
              </option>
            ))}
          </select>
        </label>
        <label>
          Status
          <select value={filters.status} onChange={(e) => set({ status: e.currentTarget.value })}>
            <option value="">any</option>
            {RUN_STATUSES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </label>
        <label>
          Started from
          <input type="datetime-local" value={filters.from} onChange={(e) => set({ from: e.currentTarget.value })} />
        </label>
        <label>
          to
          <input type="datetime-local" value={filters.to} onChange={(e) => set({ to: e.currentTarget.value })} />
        </label>
        <label>
          Instance id
          <input
            type="search"
            value={filters.instanceId}
            placeholder="exact id"
            onChange={(e) => set({ instanceId: e.currentTarget.value.trim() })}
          />
        </label>
        <label class="inline">
          <input type="checkbox" checked={live} onChange={(e) => setLive(e.currentTarget.checked)} /> Live refresh
        </label>
      </form>
      <Message error={error} />
      <div class="toolbar" role="toolbar" aria-label="Bulk actions">
        <span>{selected.size} selected</span>
        <button type="button" disabled={selected.size === 0} onClick={() => setBulk('cancel')}>
          Cancel selected…
        </button>
        <button type="button" disabled={selected.size === 0} onClick={() => setBulk('retry')}>
          Retry selected…
        </button>
      </div>
      {bulk && (
        <Confirm
          title={bulk === 'cancel' ? `Cancel ${selected.size} runs?` : `Retry ${selected.size} runs?`}
          confirmLabel={bulk === 'cancel' ? `Cancel ${selected.size} runs` : `Retry ${selected.size} runs`}
          onConfirm={() => void runBulk(bulk)}
          onCancel={() => setBulk(undefined)}
        >
          <p>
            {bulk === 'cancel'
              ? 'Each run stops where it is; running tasks see their abort signal. This cannot be undone.'
              : 'Each failed run retries the task it failed on, with a fresh attempt budget.'}
          </p>
          <ul class="ids">
            {[...selected].map((id) => (
              <li key={id}>{id}</li>
            ))}
          </ul>
        </Confirm>
      )}
      {results && (
        <section class="results" aria-label="Bulk results">
          <h2>Results</h2>
          <ul>
            {results.map((r) => (
              <li key={r.id} class={r.ok ? 'ok' : 'failed'} data-run={r.id}>
                <strong>{r.ok ? '✓ done' : '✕ failed'}</strong> <code>{r.id}</code>: {r.text}
              </li>
            ))}
          </ul>
          <button type="button" onClick={() => setResults(undefined)}>
            Dismiss
          </button>
        </section>
      )}
      <Table
        class="runs"
        caption="Runs, newest first"
        columns={[
          <input
            type="checkbox"
            aria-label="Select all runs on this page"
            checked={allOnPage}
            onChange={() => {
              const s = new Set(selected);
              for (const r of rows) {
                if (allOnPage) s.delete(r.instanceId);
                else s.add(r.instanceId);
              }
              setSelected(s);
            }}
          />,
          'Instance',
          'Workflow',
          'Status',
          'Started',
          'Updated',
        ]}
        items={rows}
        rowKey={(r) => r.instanceId}
        rowAttrs={(r) => ({ 'data-run': r.instanceId })}
        cells={(r) => [
          <input
            type="checkbox"
            aria-label={`Select ${r.instanceId}`}
            checked={selected.has(r.instanceId)}
            onChange={() => toggle(r.instanceId)}
          />,
          <a href={`#/runs/${encodeURIComponent(r.instanceId)}`}>{r.instanceId}</a>,
          r.workflow,
          <Status status={r.status} />,
          <Time iso={r.createdAt} />,
          <Time iso={r.updatedAt} />,
        ]}
      />
      {loaded && rows.length === 0 && <p class="empty">No runs match these filters.</p>}
      <nav class="pager" aria-label="Pages">
        <button type="button" disabled={pageIndex === 0} onClick={() => setPageIndex(pageIndex - 1)}>
          ← Newer
        </button>
        <span>Page {pageIndex + 1}</span>
        <button type="button" disabled={!more && !pages[pageIndex + 1]} onClick={() => void next()}>
          Older →
        </button>
      </nav>
    </section>
  );
}
