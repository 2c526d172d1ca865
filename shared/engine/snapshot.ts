import type { Ref } from './refs.ts';
import type { Priority } from './task.ts';

export type RunStatus = 'RUNNING' | 'PAUSED' | 'COMPLETED' | 'FAILED' | 'CANCELLED';

/** A finished run's status. */
export const FINAL_STATUSES: ReadonlySet<RunStatus> = new Set(['COMPLETED', 'FAILED', 'CANCELLED']);

/**
 * How many delivery ids a run remembers (see `Snapshot.deliveries`): a
 * signal retried with the same `Idempotency-Key` within the run's last 64
 * keyed deliveries is delivered once. Ids are 16-character digests, so the
 * list stays near 1 KB of the snapshot.
 */
export const MAX_RECENT_DELIVERIES = 64;

/** A task in the frontier: ready to dispatch, dispatched, or waiting out a retry backoff. */
export interface TaskActivity {
  readonly qid: string;
  /** Map indices, outermost first. */
  readonly idx: readonly number[];
  /** Loop iteration (loop bodies only). */
  readonly iter?: number;
  readonly input: Ref;
  readonly attempt: number;
  /**
   * `ready`: held (the run is paused); `dispatched`: handed to a queue;
   * `backoff`: due at `dueAt`; `failed`: out of attempts, the run failed on it
   * (a manual retry or skip reopens the run).
   */
  readonly state: 'ready' | 'dispatched' | 'backoff' | 'failed';
  /** First attempt of the current retry budget (a manual retry starts a fresh one). @default 1 */
  readonly budgetFrom?: number;
  /** Retry backoff end (state `backoff`). */
  readonly dueAt?: number;
  /** When it was last dispatched (state `dispatched`): the reaper re-dispatches it if it is still here much later. */
  readonly dispatchedAt?: number;
  /**
   * When the reaper last found it dispatched and left it be (a live claim,
   * a backlog in its queue): its next check is a redispatch period after
   * this (see `checkDueAt`). `dispatchedAt` stays the dispatch's own time.
   */
  readonly checkedAt?: number;
  /** Dispatch generation: 1 for the first dispatch of an attempt, +1 per re-dispatch. */
  readonly gen?: number;
  /**
   * The claim this dispatched task runs under, when it is not its own: a
   * worker that runs a same-pool successor inline keeps the claim it took
   * for the queued task it started the chain with (see `ChainStep`).
   */
  readonly claim?: string;
  /**
   * How many reservations of this attempt expired, their worker gone (see
   * `RESERVATION_LAPSES`): counted by `redispatch` with reason
   * `reservation-expired`, reset by each new attempt.
   */
  readonly lapses?: number;
}

/** A delay or a signal wait in the frontier. */
export interface WaitActivity {
  readonly kind: 'delay' | 'signal';
  readonly qid: string;
  readonly idx: readonly number[];
  readonly input: Ref;
  /** Delay end, or signal timeout. */
  readonly dueAt?: number;
  readonly signal?: string;
}

export interface ForkState {
  readonly remaining: number;
  readonly results: readonly (Ref | null)[];
  /**
   * Set when the branches run in lanes (each branch is tasks only): a
   * branch is not in the frontier while it goes well, and `remaining` and
   * `results` are not kept here: the fork's counter and the branches'
   * results, put by their ids, are. See {@link Lanes}.
   */
  readonly lanes?: Lanes;
}

export interface MapState {
  readonly count: number;
  /** Value id of the items array (the map task's output). @default outputId(map key) */
  readonly items?: string;
  /** Next item index to start. */
  readonly next: number;
  readonly done: number;
  /**
   * Value-id template of an item's result (`out:<key of the body's last
   * task>`, or of its last delay when the items run in lanes, with the item
   * index as `[]`), when the body ends with one: such results need no record
   * here.
   */
  readonly template?: string;
  /** Results of items that did not end as the template says, by index. */
  readonly except: Readonly<Record<string, Ref>>;
  /**
   * Set when the items run in lanes: `next` and `done` are not kept here,
   * the map's counter is. See {@link Lanes}.
   */
  readonly lanes?: Lanes;
}

/**
 * The children of a map (its items) or of a fork (its branches) run in
 * lanes when each child's sequence starts with a task (or with a delay, then
 * a task) and ends with a task (or with a task, then a delay; or with a
 * loop, or a route or fork run in the lane). A child in
 * its lane is not in the frontier: each of its tasks but the last puts its
 * output if absent and hands it to the next; its last step's output is the
 * child's result, put if absent under a deterministic id (a last delay's is
 * the task's before it, put when the delay ends; a last loop's or route's,
 * whose last output id varies, is put again under an id of its own, see
 * `laneResultTemplate`); the writer whose
 * put created it adds 1 to the parent's counter, and the add that reaches
 * the number of children commits `lanes-joined`, the parent's one journal
 * entry after its start. So parallel children never race for the run's
 * journal while they run tasks.
 *
 * A delay between two tasks of a child (or first, for a child started by
 * a count) is a lane timer, a record of its own outside the journal: the
 * child parks on it, and the reaper sends it on in its lane when it is due.
 *
 * A child joins the frontier, and goes on through the journal, with the
 * commit of its task before another step that is not a task (a signal
 * wait, a fork or map that does not run in the child's lane, a delay not
 * followed by a task, a
 * route with a branch that does not start and end with a task: a step that
 * needs the reducer; a nested child flow is its steps in place, see
 * `laneSequence`, a loop or another route runs in the lane, see
 * `runsInLane`, and a fork or map whose children run in lanes runs in
 * lanes of its own, see `laneFork` and `laneMap`), or of a step that fails or
 * that a pause holds. It goes back to its lane when a delay right after a
 * task (or first) ends in the frontier, and after any of its own tasks
 * that completes in the frontier and is followed by a task. So a child
 * costs the journal the entries of the steps that need the reducer (its
 * join, the signal, the task after a signal), not one per step, and
 * nothing for a delay. The protocol, with who writes what, is in
 * `runtime/lanes.ts`.
 */
export interface Lanes {
  /** The map's or fork's step and its map indices (where its children's dispatches are built from). */
  readonly qid: string;
  readonly idx: readonly number[];
  /**
   * What the children start from: a fork's input (every branch's), or a
   * map's items (item `i` starts from element `i`).
   */
  readonly input: Ref;
  /**
   * Children running at once (a map's `maxConcurrency`, a fork's branch
   * count): child `window + d - 1` starts when the counter reaches `d`.
   */
  readonly window: number;
  /** When the reaper looks at the progress next. */
  readonly checkAt: number;
  /** The counter as the last look saw it: a counter that did not move between two looks has stalled. */
  readonly seen: number;
  /**
   * When children were last sent (the parent's start, or the last look that
   * started children again): a backlog in their queue explains a child that
   * no worker took only for `maxQueueWaitMs` after this (see `checkLanes`).
   * Absent in snapshots written before it: no backlog is trusted then.
   */
  readonly sentAt?: number;
}

export interface RunError {
  readonly name: string;
  readonly message: string;
  /** The task whose failure failed the run. */
  readonly taskKey?: string;
  readonly attempts?: number;
}

/**
 * The state of one instance. Payloads are not in it: only references to
 * values stored beside it (see `refs.ts`), so it stays small.
 */
export interface Snapshot {
  readonly instanceId: string;
  readonly workflow: string;
  readonly defHash: string;
  /** Value id of the run input (unique per creation, so two racing creates never share an input). */
  readonly inputId: string;
  readonly status: RunStatus;
  /** A dispatched task still in the frontier this long after its dispatch is due for a check by the reaper. */
  readonly redispatchAfterMs: number;
  /**
   * The sequence number of the last journal entry this state includes: 0 at
   * creation, +1 per committed entry. The next entry is put at `version + 1`
   * on condition that none is there (see `InstanceStore.append`).
   */
  readonly version: number;
  /** Task completions and skips so far (progress, for views). */
  readonly steps?: number;
  readonly createdAt: number;
  readonly updatedAt: number;
  /**
   * W3C `traceparent` of the run's start, when tracing was on: the parent of
   * the spans of work the journal starts later (retries after a backoff,
   * timers, re-dispatches), so one run stays one trace.
   */
  readonly trace?: string;
  readonly tasks: Readonly<Record<string, TaskActivity>>;
  readonly waits: Readonly<Record<string, WaitActivity>>;
  readonly forks: Readonly<Record<string, ForkState>>;
  readonly maps: Readonly<Record<string, MapState>>;
  /** Signals received before anything waited for them, by name, oldest first (value ids). */
  readonly signals: Readonly<Record<string, readonly string[]>>;
  /**
   * Delivery ids of the run's last {@link MAX_RECENT_DELIVERIES} signals
   * sent with one, oldest first: a retried delivery is recognised and
   * changes nothing.
   */
  readonly deliveries?: readonly string[];
  /** Signal waits of children run in lanes (see {@link LaneSignals}); absent until a signal reaches one. */
  readonly laneSignals?: LaneSignals;
  readonly output?: Ref;
  readonly error?: RunError;
  /** The run fails with `DeadlineExceededError` if still unfinished at this time (from the flow's `deadline`). */
  readonly deadlineAt?: number;
  /**
   * How long the run's records are kept once it has finished (from the
   * time it finished): then the reaper purges them (see `purgeDue`). Set
   * at creation; absent: kept for good.
   */
  readonly retentionMs?: number;
  /**
   * Set by the `purge` entry that fences the journal before a purge: the
   * run is gone for every reader, and no event changes it any more. Its
   * records are being deleted (the snapshot last).
   */
  readonly purging?: true;
  /**
   * Earliest due time of any timer in the frontier, or of a dispatched task's
   * check (`dispatchedAt + redispatchAfterMs`); what the reaper indexes. For
   * a finished run with a retention: when its retention ends (its purge).
   */
  readonly dueAt?: number;
}

/**
 * The run's side of signal waits of children run in lanes (see
 * `runtime/lane-signals.ts`). A child that reaches such a wait parks in its
 * lane: it takes a ticket from the signal's waiter counter and puts a record
 * of it, and nothing is committed to the journal. Signals are still events
 * of the run's journal (a delivery is one commit, as for a wait of the
 * frontier), and that journal decides, one entry at a time, which wait gets
 * which signal: the frontier's oldest wait first, then the lane waiters in
 * the order of their tickets.
 */
export interface LaneSignals {
  /** Per signal name, how many tickets of its lane waiters were served (given a signal, or passed over as gone). */
  readonly served: Readonly<Record<string, number>>;
  /**
   * Signals given to lane waits, by the wait's key (its step at the child's
   * map indices): the value id, or `null` for a timeout that goes on. A
   * wait's output is put under its id from this (put if absent, so only
   * this value is ever put there); an entry stays until a later signal
   * event lists the key as put (`bound`), so a wait is given at most one.
   */
  readonly given: Readonly<Record<string, string | null>>;
}

/** The lane waiter a signal is given to, if the run's lane waiters are still served up to `from` (see {@link LaneSignals}). */
export interface LaneSignalTarget {
  /** The queue's head the deliverer read: the event applies only if it still is. */
  readonly head: number;
  /** The head after it: the tickets from `head` to `served - 1` are served, the last one by `wait`. */
  readonly served: number;
  /** The wait's key. */
  readonly wait: string;
}

/** A task handed to a worker. */
export interface Dispatch {
  readonly instanceId: string;
  readonly workflow: string;
  readonly key: string;
  readonly qid: string;
  readonly input: Ref;
  readonly attempt: number;
  /** Dispatch generation (see `TaskActivity.gen`); part of the queue's deduplication id. */
  readonly gen: number;
  readonly priority: Priority;
  readonly pool: string;
  /** Set for a step of a child in its lane (see {@link Lanes}): the parent's key (a map's, a fork's), the child's index. */
  readonly lane?: { readonly parent: string; readonly item: number };
  /** W3C `traceparent` of the step that sent it, when tracing is on (an SQS message attribute on the wire). */
  readonly trace?: string;
  /** When it was sent (epoch ms), for the queue-wait metric (SQS's `SentTimestamp` on the wire). */
  readonly sentAt?: number;
}

export type Effect =
  | { readonly type: 'dispatch'; readonly dispatch: Dispatch }
  | { readonly type: 'timer'; readonly key: string; readonly dueAt: number }
  | { readonly type: 'complete'; readonly output: Ref }
  | { readonly type: 'fail'; readonly error: RunError }
  /**
   * Running tasks to abort (cancellation), and the claims they run under
   * (a task run inline in a chain holds the chain's claim).
   */
  | { readonly type: 'abort'; readonly keys: readonly string[]; readonly claims: readonly string[] };

/** What a finished task tells the reducer about its output, beyond its existence. */
export interface Control {
  /** route: the chosen key. */
  readonly routeKey?: string;
  /** map: number of items. */
  readonly count?: number;
  /** loop: whether to go again. */
  readonly loop?: 'again' | 'done';
}

/**
 * A worker that commits a task and runs one of the successors this commit
 * dispatches inline, under the claim it already holds: recorded with the
 * commit, so the reaper checks that claim, not the successor's own.
 */
export interface ChainStep {
  /** The successor run inline. */
  readonly key: string;
  /** The claim it runs under (the task key the chain's queue message was for). */
  readonly claim: string;
}

/** A step of a child run in a lane (see {@link Lanes}), as it joins the frontier. */
export interface LaneItem {
  /** The map's or fork's key. */
  readonly parent: string;
  readonly qid: string;
  readonly idx: readonly number[];
  readonly input: Ref;
}

export type RunEvent =
  | { readonly type: 'start' }
  | {
      readonly type: 'task-completed';
      readonly key: string;
      readonly attempt: number;
      readonly control?: Control;
      /** Where the output is stored. @default outputId(key) */
      readonly valueId?: string;
      readonly chain?: ChainStep;
      /** A step of a child in its lane whose next step is not a task: the child joins the frontier (see `Lanes`). */
      readonly lane?: LaneItem;
      /** For the history: who ran it and when the attempt started. */
      readonly worker?: string;
      readonly startedAt?: number;
    }
  | {
      readonly type: 'task-failed';
      readonly key: string;
      readonly attempt: number;
      readonly error: { readonly name: string; readonly message: string; readonly retryable: boolean };
      readonly worker?: string;
      readonly startedAt?: number;
      /** A step of a child in its lane: it joins the frontier with this failure. */
      readonly lane?: LaneItem;
    }
  | { readonly type: 'timer-fired'; readonly key: string }
  /**
   * Dispatch a dispatched task again, if it is still at `attempt`:
   * - `lost` (default): no live claim long after its dispatch (a message lost
   *   before or after the queue): same attempt, new generation;
   * - `reservation-expired`: its worker died holding a reservation it never
   *   started (before running, or while running a chain of short tasks): same
   *   attempt, at once; the `RESERVATION_LAPSES`-th lapse of an attempt
   *   fails it instead (`WorkerLostError`), and the retry policy decides what follows;
   * - `lease-expired`: its worker died mid-attempt: that attempt failed
   *   (`WorkerLostError`) and the retry policy decides what follows;
   * - `redrive`: an operator redrove a dispatch the queue gave up on.
   */
  | {
      readonly type: 'redispatch';
      readonly key: string;
      readonly attempt?: number;
      readonly reason?: 'lost' | 'reservation-expired' | 'lease-expired' | 'redrive';
    }
  /** The reaper saw a live claim on a long-running dispatched task: check again later. */
  | { readonly type: 'dispatch-checked'; readonly key: string }
  /** A worker got a task of a paused run: hold it until `resume`. */
  | { readonly type: 'task-held'; readonly key: string; readonly attempt: number; readonly lane?: LaneItem }
  /**
   * The last child of a map or fork run in lanes was counted: the parent is
   * done (a map's successor starts, a fork's join is dispatched).
   */
  | { readonly type: 'lanes-joined'; readonly key: string; readonly chain?: ChainStep }
  /** The reaper looked at a map or fork run in lanes and saw its counter at `done`. */
  | {
      readonly type: 'lanes-checked';
      readonly key: string;
      readonly done: number;
      /** The look started children again (see `Lanes.sentAt`). */
      readonly restarted?: boolean;
    }
  /**
   * Child `item` of a map or fork run in lanes starts, and its first step
   * is a delay: the delay waits in the frontier (a child whose first step is
   * a task starts from a dispatch, with no entry).
   */
  | { readonly type: 'lanes-started'; readonly key: string; readonly items: readonly number[] }
  | {
      readonly type: 'signal';
      readonly name: string;
      readonly valueId: string;
      /**
       * The client's delivery id (a digest of its `Idempotency-Key`): a
       * delivery whose id is among the run's recent ones changes nothing.
       */
      readonly deliveryId?: string;
      /** The lane waiter to give it to when nothing in the frontier waits for it (see {@link LaneSignalTarget}). */
      readonly toLane?: LaneSignalTarget;
      /** Keys of {@link LaneSignals.given} whose outputs the deliverer read put: their entries go. */
      readonly bound?: readonly string[];
    }
  /**
   * Serves the lane waiters of signal `name` from ticket `head` (the
   * queue's head, else nothing changes) to `served - 1`: the last one,
   * `wait`, takes the oldest buffered signal; the others are gone (their
   * child went on, or waits under a later ticket). Without `wait`, only
   * passes over them.
   */
  | {
      readonly type: 'signal-taken';
      readonly name: string;
      readonly head: number;
      readonly served: number;
      readonly wait?: string;
      readonly bound?: readonly string[];
    }
  /** The timeout of the lane wait `key` for signal `name` passed before any signal was given to it. */
  | {
      readonly type: 'signal-timed-out';
      readonly name: string;
      readonly key: string;
      readonly bound?: readonly string[];
    }
  | { readonly type: 'cancel'; readonly reason?: string }
  /**
   * Manual retry of a task the run failed on: the run is RUNNING again, the
   * task gets a fresh attempt budget, and every task that was in flight when
   * it failed is dispatched again.
   */
  | { readonly type: 'retry'; readonly key: string }
  /**
   * Skip a task with an output the operator supplied (already stored as the
   * task's output value): it counts as completed; a run that had failed on
   * it is RUNNING again.
   */
  | {
      readonly type: 'skip';
      readonly key: string;
      readonly control?: Control;
      /** Where the supplied output is stored. @default outputId(key) */
      readonly valueId?: string;
    }
  | { readonly type: 'pause' }
  | { readonly type: 'resume' }
  /**
   * A finished run's retention ended: the reaper fences the journal with
   * this entry (nothing commits after it), then deletes the run's records.
   */
  | { readonly type: 'purge' };

export interface Reduction {
  readonly snapshot: Snapshot;
  readonly effects: readonly Effect[];
  /** False when the event changed nothing (a duplicate or a stale event). */
  readonly changed: boolean;
}
