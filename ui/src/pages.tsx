import { useState } from 'preact/hooks';
import type { SayiirClient } from '../../shared/client/client.ts';
import { retentionText, type WorkflowView } from '../../shared/client/index.ts';
import { Confirm, Dag, Json, Message, Table, Time, usePoll } from './components.tsx';
import { describeError } from './session.ts';

/** The workflows with their DAGs, and the dead-letter queues. */

export function WorkflowsPage(props: { workflows: readonly WorkflowView[] }) {
  return (
    <section aria-labelledby="wf-title">
      <h1 id="wf-title">Workflows</h1>
      <Table
        class="workflows"
        columns={['Name', 'Description', 'Signals', 'Steps', 'Definition', 'Runs kept']}
        items={props.workflows}
        rowKey={(w) => w.name}
        cells={(w) => [
          <a href={`#/workflows/${encodeURIComponent(w.name)}`}>{w.name}</a>,
          w.description ?? '',
          w.signals.join(', ') || '—',
          w.dag.steps.length,
          <code title={w.definitionHash}>{w.definitionHash.slice(0, 12)}</code>,
          retentionText(w.retention),
        ]}
      />
    </section>
  );
}

export function WorkflowPage(props: {
  client: SayiirClient;
  workflow: WorkflowView | undefined;
  name: string;
  onUnauthorized: (e: unknown) => boolean;
}) {
  const [input, setInput] = useState('{}');
  const [id, setId] = useState('');
  const [error, setError] = useState<string>();
  const w = props.workflow;
  if (!w) return <Message error={`No workflow '${props.name}' (or this key may not see it).`} />;
  const start = async () => {
    let value: unknown;
    try {
      value = JSON.parse(input || 'null');
    } catch (e) {
      return setError(`Input is not JSON: ${(e as Error).message}`);
    }
    try {
      const run = await props.client.start(w.name, value, id ? { instanceId: id } : {});
      location.hash = `#/runs/${encodeURIComponent(run.instanceId)}`;
    } catch (e) {
      if (!props.onUnauthorized(e)) setError(describeError(e));
    }
  };
  return (
    <section aria-labelledby="wf-title">
      <p class="crumbs">
        <a href="#/workflows">Workflows</a> / {w.name}
      </p>
      <h1 id="wf-title">{w.name}</h1>
      {w.description && <p>{w.description}</p>}
      <p>
        <a href={`#/runs?workflow=${encodeURIComponent(w.name)}`}>Runs of {w.name}</a> · signals:{' '}
        {w.signals.join(', ') || 'none'} · input schema: {w.inputSchema ? 'yes' : 'no'}
      </p>
      <Dag flow={w.dag} />
      <form
        class="card"
        aria-label="Start a run"
        onSubmit={(e) => {
          e.preventDefault();
          void start();
        }}
      >
        <h2>Start a run</h2>
        <label>
          Input (JSON)
          <textarea rows={4} value={input} onInput={(e) => setInput(e.currentTarget.value)} />
        </label>
        <label>
          Instance id (optional)
          <input value={id} onInput={(e) => setId(e.currentTarget.value)} />
        </label>
        <button type="submit">Start</button>
        <Message error={error} />
      </form>
    </section>
  );
}

/** Every worker pool a workflow's tasks name. */
export function poolsOf(workflows: readonly WorkflowView[]): string[] {
  const pools = new Set<string>(['default']);
  const visit = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(visit);
    else if (v && typeof v === 'object') {
      const o = v as Record<string, unknown>;
      if (typeof o.pool === 'string' && 'retry' in o) pools.add(o.pool);
      Object.values(o).forEach(visit);
    }
  };
  for (const w of workflows) visit(w.dag);
  return [...pools].sort();
}

/** A dead letter as the UI reads it: every field optional, since the API's shape may grow. */
interface Letter {
  readonly messageId?: string;
  readonly origin?: string;
  readonly instanceId?: string;
  readonly workflow?: string;
  readonly taskKey?: string;
  readonly attempts?: number;
  readonly reason?: string;
  readonly error?: string;
  readonly failedAt?: string;
  readonly input?: unknown;
  readonly attemptHistory?: readonly { attempt?: number; at?: string; error?: { name?: string; message?: string } }[];
}

/** A count or list from a redrive answer, whichever it is. */
const countOf = (v: unknown): number => (Array.isArray(v) ? v.length : typeof v === 'number' ? v : 0);

export function DeadLettersPage(props: {
  client: SayiirClient;
  workflows: readonly WorkflowView[];
  onUnauthorized: (e: unknown) => boolean;
}) {
  const pools = poolsOf(props.workflows);
  const [pool, setPool] = useState(pools[0] ?? 'default');
  const [letters, setLetters] = useState<Letter[]>();
  const [cursor, setCursor] = useState<string>();
  const [error, setError] = useState<string>();
  const [info, setInfo] = useState<string>();
  const [confirmAll, setConfirmAll] = useState(false);

  const load = async (from?: string) => {
    try {
      const page = await props.client.page<Letter>(`/dlq/${encodeURIComponent(pool)}`, from ? { cursor: from } : {});
      setLetters(Array.isArray(page?.items) ? page.items : []);
      setCursor(typeof page?.cursor === 'string' ? page.cursor : undefined);
      setError(undefined);
    } catch (e) {
      if (!props.onUnauthorized(e)) setError(describeError(e));
    }
  };
  const refresh = usePoll(() => load(), 10_000, false, [pool]);

  const redrive = async (body: Record<string, string>, what: string) => {
    try {
      const r = await props.client.request<Record<string, unknown>>(
        'POST',
        `/dlq/${encodeURIComponent(pool)}/redrive`,
        body,
      );
      const more =
        r?.more === true || typeof r?.cursor === 'string' || (typeof r?.remaining === 'number' && r.remaining > 0);
      setInfo(
        `${what}: ${countOf(r?.redriven)} redriven, ${countOf(r?.skipped)} skipped${more ? '; more remain, redrive again' : ''}.`,
      );
      setError(undefined);
    } catch (e) {
      if (!props.onUnauthorized(e)) setError(`${what}: ${describeError(e)}`);
    }
    refresh();
  };

  return (
    <section aria-labelledby="dlq-title">
      <h1 id="dlq-title">Dead letters</h1>
      <div class="toolbar">
        <label>
          Pool
          <select value={pool} onChange={(e) => setPool(e.currentTarget.value)}>
            {pools.map((p) => (
              <option key={p} value={p}>
                {p}
              </option>
            ))}
          </select>
        </label>
        <button type="button" onClick={() => refresh()}>
          Refresh
        </button>
        <button type="button" disabled={!letters?.length} onClick={() => setConfirmAll(true)}>
          Redrive all…
        </button>
      </div>
      <Message error={error} info={info} />
      {confirmAll && (
        <Confirm
          title={`Redrive the dead letters of pool '${pool}'?`}
          confirmLabel="Redrive"
          onCancel={() => setConfirmAll(false)}
          onConfirm={() => {
            setConfirmAll(false);
            void redrive({}, 'Redrive all');
          }}
        >
          <p>Each failed task is retried with a fresh attempt budget; its run is RUNNING again.</p>
        </Confirm>
      )}
      {letters && letters.length === 0 && <p class="empty">No dead letters in pool '{pool}'.</p>}
      {letters && letters.length > 0 && (
        <Table
          class="dlq"
          columns={['Run', 'Task', 'Attempts', 'Failed', 'Reason', 'Input', 'Action']}
          items={letters}
          rowKey={(l, i) => l.messageId ?? i}
          cells={(l) => [
            <>
              {l.instanceId ? (
                <a href={`#/runs/${encodeURIComponent(l.instanceId)}`}>{l.instanceId}</a>
              ) : (
                <span>{l.origin ?? 'malformed'}</span>
              )}
              {l.workflow ? ` (${l.workflow})` : ''}
            </>,
            l.taskKey ?? '—',
            l.attempts ?? '—',
            <Time iso={l.failedAt} />,
            <>
              {l.reason ?? l.error ?? ''}
              {(l.attemptHistory ?? []).length > 0 && (
                <details>
                  <summary>{l.attemptHistory?.length} failed attempts</summary>
                  <ul>
                    {l.attemptHistory?.map((a) => (
                      <li key={`${a.attempt}-${a.at}`}>
                        attempt {a.attempt ?? '?'} at <Time iso={a.at} />: {a.error?.name}: {a.error?.message}
                      </li>
                    ))}
                  </ul>
                </details>
              )}
            </>,
            'input' in l && (
              <details>
                <summary>input</summary>
                <Json value={l.input} name={`${l.instanceId ?? 'letter'}-input`} />
              </details>
            ),
            l.instanceId && l.taskKey && (
              <button
                type="button"
                onClick={() =>
                  void redrive({ instanceId: l.instanceId ?? '', taskKey: l.taskKey ?? '' }, `Redrive ${l.instanceId}`)
                }
              >
                Redrive
              </button>
            ),
          ]}
        />
      )}
      {cursor && (
        <button type="button" onClick={() => void load(cursor)}>
          More →
        </button>
      )}
    </section>
  );
}
