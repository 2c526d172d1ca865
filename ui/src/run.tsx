import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { SayiirClient } from '../../shared/client/client.ts';
import type { HistoryEntryView, InstanceView, LaneTimerView, WorkflowView } from '../../shared/client/index.ts';
import { Confirm, Dag, Json, Message, Status, Table, Time, usePoll } from './components.tsx';
import { failedKeys, laneBodies, qidOf, runState, STATE_TEXT, signalNodes } from './run-state.ts';
import { describeError } from './session.ts';

/** One run: its live DAG, tasks, timeline, output and error, and the operator's actions. */

const LIVE_MS = 1_000;
/** Most history entries read for one run (pages of 1,000). */
const MAX_HISTORY = 5_000;
const FINAL = new Set(['COMPLETED', 'FAILED', 'CANCELLED']);

function parseJson(text: string): { value: unknown } | { error: string } {
  try {
    return { value: text.trim() === '' ? null : JSON.parse(text) };
  } catch (e) {
    return { error: `not JSON: ${(e as Error).message}` };
  }
}

/** A task's values as `GET /v1/instances/{id}/tasks/{key}` answers (read defensively: fields are optional). */
interface TaskValues {
  readonly taskKey?: string;
  readonly input?: unknown;
  readonly inputOmitted?: { values: number; limit: number };
  readonly output?: unknown;
}

/** The input and output of one task key, fetched when the step is selected (offloaded values included). */
function TaskValuesPanel(props: { client: SayiirClient; instanceId: string; taskKey: string; version: number }) {
  const [values, setValues] = useState<TaskValues>();
  const [error, setError] = useState<string>();
  useEffect(() => {
    let gone = false;
    const path = `/instances/${encodeURIComponent(props.instanceId)}/tasks/${encodeURIComponent(props.taskKey)}`;
    props.client.request<TaskValues>('GET', path).then(
      (v) => {
        if (gone) return;
        setValues(v);
        setError(undefined);
      },
      (e) => {
        if (!gone) setError(describeError(e));
      },
    );
    return () => {
      gone = true;
    };
  }, [props.client, props.instanceId, props.taskKey, props.version]);
  if (error)
    return (
      <p class="hint">
        No values for {props.taskKey}: {error}
      </p>
    );
  if (!values) return <p class="hint">Loading the values of {props.taskKey}…</p>;
  return (
    <div class="task-values">
      <h3>Input of {props.taskKey}</h3>
      {'input' in values ? (
        <Json value={values.input} name={`${props.taskKey}-input`} />
      ) : values.inputOmitted ? (
        <p class="hint">Made of {values.inputOmitted.values} stored values: too many to show.</p>
      ) : (
        <p class="hint">Not kept once the task is done: it is the output of the step before.</p>
      )}
      <h3>Output of {props.taskKey}</h3>
      {'output' in values ? (
        <Json value={values.output} name={`${props.taskKey}-output`} />
      ) : (
        <p class="hint">None yet.</p>
      )}
    </div>
  );
}

const duration = (from?: string, to?: string) => {
  if (!from || !to) return '—';
  const ms = Date.parse(to) - Date.parse(from);
  return ms < 1_000 ? `${ms} ms` : `${(ms / 1_000).toFixed(1)} s`;
};

/** The run's input, read once. */
function RunInput(props: { client: SayiirClient; instanceId: string }) {
  const [input, setInput] = useState<{ input?: unknown }>();
  useEffect(() => {
    props.client
      .request<{ input?: unknown }>('GET', `/instances/${encodeURIComponent(props.instanceId)}/input`)
      .then(setInput, () => setInput(undefined));
  }, [props.client, props.instanceId]);
  if (!input || !('input' in input)) return null;
  return (
    <section aria-labelledby="input-title">
      <h2 id="input-title">Input</h2>
      <Json value={input.input} name={`${props.instanceId}-input`} />
    </section>
  );
}

/** Most lane timers read for one run (pages of 100). */
const MAX_LANE_TIMERS = 200;

/**
 * What the run's map items and fork branches that run in lanes wait on, or
 * waited on, outside the journal (and so outside the timeline): delays and
 * retries' backoffs, one line per child and timer. Read again every second
 * while the run is live (they move no version of the run).
 */
function LaneTimersPanel(props: { client: SayiirClient; instanceId: string; live: boolean }) {
  const run = useMemo(() => props.client.getHandle(props.instanceId), [props.client, props.instanceId]);
  const [timers, setTimers] = useState<LaneTimerView[]>([]);
  const load = async () => {
    const read: LaneTimerView[] = [];
    for await (const t of run.laneTimers({ pageSize: 100 })) {
      read.push(t);
      if (read.length >= MAX_LANE_TIMERS) break;
    }
    setTimers(read);
  };
  usePoll(load, LIVE_MS, props.live, [props.instanceId]);
  if (timers.length === 0) return null;
  const waiting = timers.filter((t) => t.firedAt === undefined).length;
  return (
    <section aria-labelledby="lane-timers-title">
      <h2 id="lane-timers-title">Waits in lanes</h2>
      <p class="hint">
        Map items and fork branches that run in lanes wait for their delays, retries, forks and signals here, outside
        the timeline: {waiting} waiting, {timers.length - waiting} done.
      </p>
      <Table
        class="lane-timers"
        columns={['Child', 'Wait', 'Due', 'State', 'Failure']}
        items={timers}
        rowKey={(t) => t.id}
        rowAttrs={(t) => ({ 'data-kind': t.kind, 'data-state': t.firedAt === undefined ? 'waiting' : 'fired' })}
        cells={(t) => [
          `${t.parent} #${t.child}`,
          t.retry
            ? `${t.retry.lapse ? 'again' : 'retry'} ${t.retry.task}, attempt ${t.retry.attempt}`
            : t.look
              ? `fork ${t.look.fork} in its lane, look ${t.look.n}`
              : t.signal
                ? `signal '${t.signal.name}' at ${t.id}`
                : `delay ${t.id}`,
          <Time iso={t.dueAt} />,
          t.firedAt === undefined ? (
            'waiting'
          ) : (
            <>
              done at <Time iso={t.firedAt} />
            </>
          ),
          t.retry ? `${t.retry.error.name}: ${t.retry.error.message}` : '',
        ]}
      />
      {timers.length >= MAX_LANE_TIMERS && <p>Showing the first {MAX_LANE_TIMERS}.</p>}
    </section>
  );
}

export function RunPage(props: {
  client: SayiirClient;
  instanceId: string;
  workflows: readonly WorkflowView[];
  onUnauthorized: (e: unknown) => boolean;
}) {
  const { client, instanceId } = props;
  const run = useMemo(() => client.getHandle(instanceId), [client, instanceId]);
  const [view, setView] = useState<InstanceView>();
  const [history, setHistory] = useState<HistoryEntryView[]>([]);
  const [error, setError] = useState<string>();
  const [info, setInfo] = useState<string>();
  const [selected, setSelected] = useState<string>();
  const [confirmCancel, setConfirmCancel] = useState(false);
  const workflow = props.workflows.find((w) => w.name === view?.workflow);
  const [signal, setSignal] = useState('');
  const [payload, setPayload] = useState('{}');
  const [skipKey, setSkipKey] = useState('');
  const [skipOutput, setSkipOutput] = useState('null');

  // The history read so far for this run, and the version it covers (a
  // commit may leave no history line): each look reads only what followed.
  type Read = { instanceId: string; upTo: number | undefined; entries: HistoryEntryView[] };
  const read = useRef<Read>({ instanceId, upTo: undefined, entries: [] });
  const load = async () => {
    try {
      const v = await run.status();
      if (read.current.instanceId !== instanceId) read.current = { instanceId, upTo: undefined, entries: [] };
      const { upTo, entries: had } = read.current;
      if (had.length < MAX_HISTORY && (upTo === undefined || v.version > upTo)) {
        const more: HistoryEntryView[] = [];
        for await (const e of run.history({ pageSize: 1_000, ...(upTo === undefined ? {} : { after: upTo }) })) {
          more.push(e);
          if (had.length + more.length >= MAX_HISTORY) break;
        }
        // Read after the status, so it holds every line up to the status's version, and maybe lines past it.
        read.current = { instanceId, upTo: Math.max(v.version, more.at(-1)?.version ?? 0), entries: [...had, ...more] };
      }
      setView(v);
      setHistory(read.current.entries);
      setError(undefined);
    } catch (e) {
      if (!props.onUnauthorized(e)) setError(describeError(e));
    }
  };
  const final = view !== undefined && FINAL.has(view.status);
  const refresh = usePoll(load, LIVE_MS, !final, [instanceId]);

  const act = async (what: string, call: () => Promise<unknown>) => {
    setInfo(undefined);
    try {
      const status = await call();
      setInfo(`${what}: done${typeof status === 'string' ? `, the run is ${status}` : ''}.`);
      setError(undefined);
    } catch (e) {
      if (!props.onUnauthorized(e)) setError(`${what}: ${describeError(e)}`);
    }
    refresh();
  };

  const states = useMemo(
    () => (view && workflow ? runState(view, history, signalNodes(workflow.dag), laneBodies(workflow.dag)) : undefined),
    [view, history, workflow],
  );

  if (!view) {
    return (
      <section>
        <h1>Run {instanceId}</h1>
        <Message error={error} info={error ? undefined : 'Loading…'} />
      </section>
    );
  }

  const failed = failedKeys(view);
  const signals = workflow?.signals ?? [];
  const chosenSignal = signal || view.waitingFor?.[0] || signals[0] || '';
  const skippable = view.tasks.map((t) => t.key);
  const chosenSkip = skipKey || skippable[0] || '';
  const node = selected ? states?.get(selected) : undefined;
  const nodeKeys = new Set(node?.keys ?? []);
  const failures = history.filter((e) => e.type === 'task-failed');
  const running = view.status === 'RUNNING' || view.status === 'PAUSED';

  return (
    <section aria-labelledby="run-title">
      <p class="crumbs">
        <a href="#/runs">Runs</a> / {view.workflow}
      </p>
      <h1 id="run-title">
        Run <code>{view.instanceId}</code> <Status status={view.status} />
      </h1>
      <dl class="facts">
        <dt>Workflow</dt>
        <dd>
          <a href={`#/workflows/${encodeURIComponent(view.workflow)}`}>{view.workflow}</a>
        </dd>
        <dt>Started</dt>
        <dd>
          <Time iso={view.createdAt} />
        </dd>
        <dt>Updated</dt>
        <dd>
          <Time iso={view.updatedAt} />
        </dd>
        <dt>Steps done</dt>
        <dd>{view.stepsDone}</dd>
        {view.parallel && view.parallel.length > 0 && (
          <>
            <dt>Maps and forks</dt>
            <dd class="parallel">
              {view.parallel
                .map((p) => `${p.key}: ${p.done} of ${p.count} ${p.kind === 'map' ? 'items' : 'branches'} done`)
                .join('; ')}
            </dd>
          </>
        )}
        {view.waitingFor && (
          <>
            <dt>Waiting for</dt>
            <dd class="waiting-for">signal {view.waitingFor.map((s) => `'${s}'`).join(', ')}</dd>
          </>
        )}
        <dt>Updates</dt>
        <dd>{final ? 'final: no more updates' : 'live, every second'}</dd>
        {view.purgeAt && (
          <>
            <dt>Kept until</dt>
            <dd class="purge-at">
              <Time iso={view.purgeAt} /> (then deleted: its retention ends)
            </dd>
          </>
        )}
      </dl>
      <Message error={error} info={info} />

      <div class="actions" role="toolbar" aria-label="Run actions">
        {running && (
          <button type="button" class="danger" onClick={() => setConfirmCancel(true)}>
            Cancel run…
          </button>
        )}
        {view.status === 'RUNNING' && (
          <button type="button" onClick={() => void act('Pause', () => run.pause())}>
            Pause
          </button>
        )}
        {view.status === 'PAUSED' && (
          <button type="button" onClick={() => void act('Resume', () => run.resume())}>
            Resume
          </button>
        )}
        {failed.map((key) => (
          <button type="button" key={key} onClick={() => void act(`Retry ${key}`, () => run.retry(key))}>
            Retry failed task {key}
          </button>
        ))}
      </div>
      {confirmCancel && (
        <Confirm
          title={`Cancel run ${view.instanceId}?`}
          confirmLabel="Cancel the run"
          onCancel={() => setConfirmCancel(false)}
          onConfirm={() => {
            setConfirmCancel(false);
            void act('Cancel', () => run.cancel('cancelled from the UI'));
          }}
        >
          <p>The run stops where it is; this cannot be undone.</p>
        </Confirm>
      )}

      <div class="columns">
        <div class="main">
          <h2>DAG</h2>
          {workflow ? (
            <Dag flow={workflow.dag} states={states} selected={selected} onSelect={setSelected} />
          ) : (
            <p>The workflow '{view.workflow}' is not registered here: no DAG to draw.</p>
          )}
          <p class="hint">Select a step for its attempts and timings.</p>
        </div>
        <aside class="side" aria-label="Selected step">
          {selected ? (
            <>
              <h2>
                Step <code>{selected}</code>
              </h2>
              {node ? (
                <dl class="facts">
                  <dt>State</dt>
                  <dd class="node-state">{STATE_TEXT[node.state]}</dd>
                  <dt>Keys</dt>
                  <dd>{node.keys.join(', ')}</dd>
                  <dt>Attempts</dt>
                  <dd>{node.attempts || '—'}</dd>
                  <dt>Started</dt>
                  <dd>
                    <Time iso={node.startedAt} />
                  </dd>
                  <dt>Finished</dt>
                  <dd>
                    <Time iso={node.finishedAt} />
                  </dd>
                  <dt>Took</dt>
                  <dd>{duration(node.startedAt, node.finishedAt)}</dd>
                  {node.dueAt && (
                    <>
                      <dt>Due</dt>
                      <dd>
                        <Time iso={node.dueAt} />
                      </dd>
                    </>
                  )}
                </dl>
              ) : (
                <p>Not reached yet (pending).</p>
              )}
              {node?.keys[0] && (
                <TaskValuesPanel
                  client={client}
                  instanceId={view.instanceId}
                  taskKey={node.keys[node.keys.length - 1] ?? node.keys[0]}
                  version={view.version}
                />
              )}
              {failures.filter((f) => f.key && nodeKeys.has(f.key)).length > 0 && (
                <>
                  <h3>Failed attempts</h3>
                  <ul class="attempts">
                    {failures
                      .filter((f) => f.key && nodeKeys.has(f.key))
                      .map((f) => (
                        <li key={`${f.key}-${f.attempt}-${f.at}`}>
                          attempt {f.attempt ?? '?'} at <Time iso={f.at} />: {f.error?.name}: {f.error?.message}
                        </li>
                      ))}
                  </ul>
                </>
              )}
            </>
          ) : (
            <p>No step selected.</p>
          )}
        </aside>
      </div>

      {view.error && (
        <section class="run-error" aria-labelledby="error-title">
          <h2 id="error-title">Error</h2>
          <p>
            <strong>{view.error.name}</strong>: {view.error.message}
          </p>
          {view.error.taskKey && (
            <p>
              On task <code>{view.error.taskKey}</code>
              {view.error.attempts ? ` after ${view.error.attempts} attempts` : ''}.
            </p>
          )}
          <h3>Attempt history</h3>
          <Table
            class="attempt-history"
            columns={['Task', 'Attempt', 'At', 'Worker', 'Error']}
            items={failures.filter((f) => !view.error?.taskKey || qidOf(f.key ?? '') === qidOf(view.error.taskKey))}
            rowKey={(f) => `${f.key}-${f.attempt}-${f.at}`}
            cells={(f) => [
              f.key,
              f.attempt ?? '—',
              <Time iso={f.at} />,
              f.worker ?? '—',
              <>
                {f.error?.name}: {f.error?.message}
              </>,
            ]}
          />
        </section>
      )}

      {running && (
        <div class="forms">
          <form
            class="card"
            aria-label="Send a signal"
            onSubmit={(e) => {
              e.preventDefault();
              const parsed = parseJson(payload);
              if ('error' in parsed) return setError(`Signal payload: ${parsed.error}`);
              void act(`Signal '${chosenSignal}'`, () => run.signal(chosenSignal, parsed.value));
            }}
          >
            <h2>Send a signal</h2>
            {signals.length === 0 ? (
              <p>This workflow waits for no signal.</p>
            ) : (
              <>
                <label>
                  Signal
                  <select value={chosenSignal} onChange={(e) => setSignal(e.currentTarget.value)}>
                    {signals.map((s) => (
                      <option key={s} value={s}>
                        {s}
                      </option>
                    ))}
                  </select>
                </label>
                <label>
                  Payload (JSON)
                  <textarea rows={4} value={payload} onInput={(e) => setPayload(e.currentTarget.value)} />
                </label>
                <button type="submit">Send signal</button>
              </>
            )}
          </form>
          <form
            class="card"
            aria-label="Skip a task"
            onSubmit={(e) => {
              e.preventDefault();
              const parsed = parseJson(skipOutput);
              if ('error' in parsed) return setError(`Skip output: ${parsed.error}`);
              void act(`Skip ${chosenSkip}`, () => run.skip(chosenSkip, parsed.value));
            }}
          >
            <h2>Skip a task with an output</h2>
            {skippable.length === 0 ? (
              <p>No task to skip right now.</p>
            ) : (
              <>
                <label>
                  Task
                  <select value={chosenSkip} onChange={(e) => setSkipKey(e.currentTarget.value)}>
                    {skippable.map((k) => (
                      <option key={k} value={k}>
                        {k}
                      </option>
                    ))}
                  </select>
                </label>
                <label>
                  Output (JSON)
                  <textarea rows={3} value={skipOutput} onInput={(e) => setSkipOutput(e.currentTarget.value)} />
                </label>
                <button type="submit">Skip task (admin)</button>
              </>
            )}
          </form>
        </div>
      )}

      <LaneTimersPanel client={client} instanceId={view.instanceId} live={!final} />
      <RunInput client={client} instanceId={view.instanceId} />
      {'output' in view && (
        <section aria-labelledby="output-title">
          <h2 id="output-title">Output</h2>
          <Json value={view.output} name={`${view.instanceId}-output`} />
        </section>
      )}
      {view.outputOmitted && (
        <p>
          Output not shown: it is made of {view.outputOmitted.values} stored values, over the view's limit of{' '}
          {view.outputOmitted.limit}.
        </p>
      )}

      <section aria-labelledby="timeline-title">
        <h2 id="timeline-title">Timeline</h2>
        <Table
          class="timeline"
          columns={['At', 'Event', 'Task', 'Attempt', 'By', 'Detail']}
          items={history}
          rowKey={(_, i) => i}
          rowAttrs={(e) => ({ 'data-event': e.type })}
          cells={(e) => [
            <Time iso={e.at} />,
            e.type,
            e.key ?? '',
            e.attempt ?? '',
            e.actor ?? e.worker ?? '',
            <>
              {e.error ? `${e.error.name}: ${e.error.message}` : (e.detail ?? '')}
              {e.startedAt ? ` (took ${duration(e.startedAt, e.at)})` : ''}
            </>,
          ]}
        />
        {history.length >= MAX_HISTORY && <p>Showing the first {MAX_HISTORY} entries.</p>}
      </section>
    </section>
  );
}
