import { createHash, randomUUID } from 'node:crypto';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  DeleteMessageCommand,
  type Message,
  type SendMessageBatchRequestEntry,
  SendMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { Dispatch } from '../../shared/engine/snapshot.ts';
import { WorkerKilledError, type WorkerPhase } from '../../shared/runtime/worker.ts';
import { FaultDice, hashUnit } from './prng.ts';

/**
 * The faults the chaos suite injects into a running local stack, and what it
 * observes there. Nothing here touches the engine's code: faults enter
 * through the stack's two hooks, `workerFaults` (kill a worker at a phase)
 * and `instrument` (AWS SDK middleware on the DynamoDB and SQS clients).
 *
 * Middleware placement (the SDK's steps run initialize → serialize → build →
 * finalizeRequest → deserialize, and its retry loop is the `retryMiddleware`
 * at finalizeRequest, priority high):
 *
 * ```
 * initialize   high   observe (DynamoDB: output commits, snapshots) / edit (SQS: lose, duplicate, visibility)
 * initialize   low    throttle-surfaced   before the retry loop: the engine gets the error
 * finalizeRequest low throttle-absorbed   inside the retry loop: the SDK retries it (the DynamoDB client makes
 *                                        4 attempts, waiting a random [0, 1 s × 2^n) before retry n+1 of a throttle)
 * ```
 */

/** The kinds of fault, as counted in the report. */
export const FAULT_KINDS = [
  'kill-reserved',
  'kill-executed',
  'kill-stored',
  'kill-checkpointed',
  'kill-dispatched',
  'duplicate',
  'lost-send',
  'lost-receive',
  'throttle-absorbed',
  'throttle-surfaced',
  'restart',
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/** Probability of each fault at each chance it gets. */
export interface FaultProbabilities {
  /**
   * A worker dies at a phase, per chance: per phase a worker reaches with a
   * task. Only a queue message's first task reaches `reserved` (a chain runs
   * its same-pool successors under that one claim), while every task run
   * reaches the others, hence the higher chance there; only a task whose
   * output is put by its id before its commit (a map item's result read by
   * template, a task of a child in lanes that joins the frontier, or that
   * ends its child there) reaches `stored`, hence a much higher chance there
   * (`chaos-gate` has two such tasks per run).
   * @default { reserved: 0.1, executed: 0.06, stored: 0.5, checkpointed: 0.06, dispatched: 0.06 }
   */
  readonly kill: number | Readonly<Partial<Record<WorkerPhase, number>>>;
  /** A sent message is delivered a second time (same body, new deduplication id), per message. @default 0.08 */
  readonly duplicate: number;
  /** A message is acknowledged by "SQS" but never enqueued, per message. @default 0.06 */
  readonly lostSend: number;
  /** A message vanishes from the queue when received (deleted out of band), per received message. @default 0.04 */
  readonly lostReceive: number;
  /** A request attempt fails with a throttling error that the SDK's retry absorbs, per attempt. @default 0.03 */
  readonly throttleAbsorbed: number;
  /** A request fails with a throttling error the engine sees, per request. @default 0.01 */
  readonly throttleSurfaced: number;
}

export const DEFAULT_PROBABILITIES: FaultProbabilities = {
  kill: { reserved: 0.1, executed: 0.06, stored: 0.5, checkpointed: 0.06, dispatched: 0.06 },
  duplicate: 0.08,
  lostSend: 0.06,
  lostReceive: 0.04,
  throttleAbsorbed: 0.03,
  throttleSurfaced: 0.01,
};

/** An injected fault, with what it may have held up. */
export interface FaultRecord {
  readonly kind: FaultKind;
  readonly at: number;
  readonly instanceId?: string;
  /**
   * Work of the instance the fault may hold up: tasks (key and attempt) that
   * were in flight (state `dispatched`) when it struck and that it concerns.
   * Empty when the fault held nothing up (a message of a task already done).
   */
  readonly blocked: readonly (readonly [key: string, attempt: number])[];
  readonly detail?: string;
}

/** What the suite saw of one snapshot write (a successful PutItem of sk `S`), or of an API read. */
export interface SnapshotSeen {
  readonly at: number;
  readonly version: number;
  readonly status: string;
  /** Tasks in flight: key → attempt. */
  readonly dispatched: ReadonlyMap<string, number>;
  /** Names of the signals waited for. */
  readonly waitingFor: readonly string[];
}

const FINAL = new Set(['COMPLETED', 'FAILED', 'CANCELLED']);

interface SdkArgs {
  input: Record<string, unknown>;
  request?: unknown;
}
type SdkNext = (args: SdkArgs) => Promise<{ output: Record<string, unknown>; response: unknown }>;
type SdkMiddleware = (next: SdkNext, context: { commandName?: string }) => (args: SdkArgs) => ReturnType<SdkNext>;
interface MiddlewareStackLike {
  add(
    middleware: SdkMiddleware,
    options: { step: 'initialize' | 'finalizeRequest'; name: string; priority?: 'high' | 'normal' | 'low' },
  ): void;
}
const stackOf = (client: { middlewareStack: unknown }): MiddlewareStackLike =>
  client.middlewareStack as MiddlewareStackLike;

/** An error shaped as the SDK builds a throttling error from a service response. */
export function throttlingError(service: 'dynamodb' | 'sqs', command: string): Error {
  const error = new Error(`Rate exceeded (chaos, ${command})`);
  error.name = service === 'dynamodb' ? 'ProvisionedThroughputExceededException' : 'ThrottlingException';
  return Object.assign(error, {
    $fault: 'client',
    $metadata: { httpStatusCode: 400, attempts: 1, totalRetryDelay: 0 },
    $retryable: { throttling: true },
  });
}

const attr = (item: unknown, name: string): string | undefined => {
  const v = (item as Record<string, { S?: string } | undefined> | undefined)?.[name];
  return v?.S;
};

/** The tasks a journal item commits (completions and skips), from its events. */
function completedKeys(item: unknown): string[] {
  const sk = attr(item, 'sk');
  if (!sk?.startsWith('J#')) return [];
  const entry = JSON.parse(attr(item, 'e') ?? '{}') as { events?: { type: string; key?: string }[] };
  return (entry.events ?? []).flatMap((e) =>
    (e.type === 'task-completed' || e.type === 'skip') && e.key !== undefined ? [e.key] : [],
  );
}

/** The dispatch a message body carries, or undefined when it is not one. */
function dispatchOf(body: string | undefined): Dispatch | undefined {
  try {
    const d = JSON.parse(body ?? '') as Partial<Dispatch>;
    return typeof d.instanceId === 'string' && typeof d.key === 'string' && typeof d.attempt === 'number'
      ? (d as Dispatch)
      : undefined;
  } catch {
    return undefined;
  }
}

/** (instance, task key) a DynamoDB request is about, when its key says. */
function dynamoTarget(input: Record<string, unknown>): { instanceId?: string; key?: string } {
  const item = (input.Item ?? input.Key) as unknown;
  const pk = attr(item, 'pk');
  if (!pk) return {};
  if (pk.startsWith('I#')) {
    const sk = attr(item, 'sk');
    const key = sk?.startsWith('V#out:') ? sk.slice('V#out:'.length) : completedKeys(item)[0];
    return { instanceId: pk.slice(2), ...(key === undefined ? {} : { key }) };
  }
  // A claim: `<instanceId>|<taskKey>`.
  const bar = pk.indexOf('|');
  return bar > 0 ? { instanceId: pk.slice(0, bar), key: pk.slice(bar + 1) } : {};
}

/** A short stable name of a request, for the dice. */
function requestName(command: string, input: Record<string, unknown>): string {
  const item = (input.Item ?? input.Key) as unknown;
  const parts = [command, String(input.TableName ?? input.QueueUrl ?? ''), String(input.IndexName ?? '')];
  const pk = attr(item, 'pk');
  if (pk) parts.push(pk, attr(item, 'sk') ?? '');
  const entries = input.Entries as SendMessageBatchRequestEntry[] | undefined;
  if (entries?.[0]?.MessageDeduplicationId) parts.push(entries[0].MessageDeduplicationId);
  return parts.join('|');
}

/**
 * Injects faults and observes the stack. One instance lives for a whole
 * chaos run, across restarts of the stack: `instrument` is called again with
 * the new clients at each start.
 */
export class ChaosFaults {
  /** Faults are injected only while this is true (off while the stack starts, and at the end). */
  enabled = false;
  /** Set while the stack stops: every worker dies at its next phase, as in a crash. */
  stopping = false;

  readonly counts = new Map<FaultKind, number>(FAULT_KINDS.map((k) => [k, 0]));
  /** Throttles by command name, for the report. */
  readonly throttledCommands = new Map<string, number>();
  readonly records: FaultRecord[] = [];
  /** Workers killed by a restart (not counted as faults of their own). */
  restartKills = 0;
  private readonly restartsOf = new Map<string, number>();
  /** Requests whose absorbable throttles outlasted the SDK's retries, so that the engine saw one. */
  absorbedEscaped = 0;
  /** Successful conditional puts of output items, by `pk|sk`. */
  readonly commits = new Map<string, number>();
  /** Snapshot writes (and API reads) seen, per instance, in time order. */
  readonly snapshots = new Map<string, SnapshotSeen[]>();
  /** Snapshot writes of an instance after it was seen final, with another status. */
  readonly finalStateChanges: { instanceId: string; from: string; to: string; version: number }[] = [];

  private readonly dice: FaultDice;
  private readonly p: FaultProbabilities;
  /** Requests the suite makes itself (duplicates, out-of-band deletes): never faulted. */
  private readonly own = new WeakSet<object>();
  private readonly killsPerTask = new Map<string, number>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private generation = 0;
  private inFlightCount = 0;

  constructor(
    seed: number,
    probabilities: Partial<FaultProbabilities> = {},
    private readonly options: {
      /** Visibility timeout the pollers' receives ask for (s); unset keeps the queue's. */
      readonly visibilityTimeoutSeconds?: number;
      /**
       * Most kills of one task (instance and key). A dead worker's attempt
       * counts against the task's retry budget, so more kills than the budget
       * has room for would fail a run that must complete.
       * @default () => 3
       */
      readonly killBudget?: (d: Dispatch) => number;
      /** Called on every snapshot seen. */
      readonly onSnapshot?: (instanceId: string, seen: SnapshotSeen) => void;
    } = {},
  ) {
    this.dice = new FaultDice(seed);
    this.p = { ...DEFAULT_PROBABILITIES, ...probabilities };
  }

  /** The stack's `workerFaults` hook. */
  readonly workerFault = (phase: WorkerPhase, d: Dispatch): void => {
    if (this.stopping) {
      this.restartKills++;
      throw new WorkerKilledError(phase, d.key);
    }
    if (!this.enabled) return;
    const task = `${d.instanceId}|${d.key}`;
    if ((this.killsPerTask.get(task) ?? 0) >= (this.options.killBudget?.(d) ?? 3)) return;
    const p = typeof this.p.kill === 'number' ? this.p.kill : (this.p.kill[phase] ?? 0);
    if (!this.dice.roll('kill', `${phase}|${task}|${d.attempt}|${d.gen}`, p)) return;
    this.killsPerTask.set(task, (this.killsPerTask.get(task) ?? 0) + 1);
    const before = phase === 'reserved' || phase === 'executed' || phase === 'stored';
    this.record({
      kind: `kill-${phase}`,
      at: Date.now(),
      instanceId: d.instanceId,
      // Before the commit the task itself is held up; after it, the work it dispatched.
      blocked: before ? this.inFlight(d.instanceId, d.key, d.attempt) : this.inFlightExcept(d.instanceId, d.key),
      detail: d.key,
    });
    throw new WorkerKilledError(phase, d.key);
  };

  /** The stack's `instrument` hook: adds the middlewares to a new pair of clients. */
  readonly instrument = (clients: { readonly dynamo: DynamoDBClient; readonly sqs: SQSClient }): void => {
    const generation = ++this.generation;
    this.gate(clients.dynamo);
    this.gate(clients.sqs);
    this.observeDynamo(clients.dynamo);
    this.editSqs(clients.sqs, generation);
    for (const [client, service] of [
      [clients.dynamo, 'dynamodb'],
      [clients.sqs, 'sqs'],
    ] as const) {
      this.throttle(client, service, 'throttle-surfaced');
      this.throttle(client, service, 'throttle-absorbed');
    }
  };

  /** Requests in flight on the stack's clients. */
  get inFlightRequests(): number {
    return this.inFlightCount;
  }

  /**
   * While the stack stops, its process is dead: it sends no new request.
   * (dynalite crashes the process when a request is still being served as
   * its database closes, so the runner also waits for these to drain.)
   */
  private gate(client: { middlewareStack: unknown }): void {
    stackOf(client).add(
      (next) => async (args) => {
        if (this.stopping) throw Object.assign(new Error('chaos: the process is stopped'), { code: 'ECONNREFUSED' });
        this.inFlightCount++;
        try {
          return await next(args);
        } finally {
          this.inFlightCount--;
        }
      },
      { step: 'initialize', name: 'chaosGate', priority: 'high' },
    );
  }

  /** Records a restart: one fault per instance not final, holding up its tasks in flight. */
  recordRestart(at: number): number {
    let running = 0;
    for (const [instanceId, seen] of this.snapshots) {
      const last = seen.at(-1);
      if (!last || FINAL.has(last.status)) continue;
      running++;
      this.restartsOf.set(instanceId, (this.restartsOf.get(instanceId) ?? 0) + 1);
      this.records.push({ kind: 'restart', at, instanceId, blocked: [...last.dispatched] });
    }
    this.counts.set('restart', (this.counts.get('restart') ?? 0) + 1);
    return running;
  }

  /** How many restarts struck while the run was in flight (each may have cost its tasks an attempt). */
  restartsStruck(instanceId: string): number {
    return this.restartsOf.get(instanceId) ?? 0;
  }

  /** Adds a snapshot seen through the API (the fallback when a write's response was lost). */
  seeSnapshot(instanceId: string, seen: SnapshotSeen): void {
    const list = this.snapshots.get(instanceId) ?? [];
    const last = list.at(-1);
    // An older version, seen late (a read or a response overtaken by a newer write).
    if (last && seen.version < last.version) return;
    if (last && FINAL.has(last.status) && seen.status !== last.status) {
      this.finalStateChanges.push({ instanceId, from: last.status, to: seen.status, version: seen.version });
    }
    list.push(seen);
    this.snapshots.set(instanceId, list);
    this.options.onSnapshot?.(instanceId, seen);
  }

  /** Cancels scheduled duplicates. */
  dispose(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  private record(r: FaultRecord): void {
    this.records.push(r);
    this.counts.set(r.kind, (this.counts.get(r.kind) ?? 0) + 1);
  }

  private latest(instanceId: string): SnapshotSeen | undefined {
    return this.snapshots.get(instanceId)?.at(-1);
  }

  /** `[[key, attempt]]` when that task is in flight at that attempt, else nothing. */
  private inFlight(instanceId: string, key: string, attempt?: number): [string, number][] {
    const last = this.latest(instanceId);
    const a = last?.dispatched.get(key);
    if (!last || FINAL.has(last.status) || a === undefined || (attempt !== undefined && a !== attempt)) return [];
    return [[key, a]];
  }

  private inFlightExcept(instanceId: string, key?: string): [string, number][] {
    const last = this.latest(instanceId);
    if (!last || FINAL.has(last.status)) return [];
    return [...last.dispatched].filter(([k]) => k !== key);
  }

  /** Output commits and snapshot writes, seen at the outermost layer (after every retry). */
  private observeDynamo(dynamo: DynamoDBClient): void {
    stackOf(dynamo).add(
      (next, context) => async (args) => {
        const result = await next(args);
        const compaction = context.commandName === 'UpdateItemCommand' && attr(args.input.Key, 'sk') === 'S';
        if (context.commandName !== 'PutItemCommand' && !compaction) return result;
        const item = args.input.Item;
        const sk = compaction ? 'S' : attr(item, 'sk');
        const pk = attr(compaction ? args.input.Key : item, 'pk') ?? '';
        if (sk?.startsWith('J#') && args.input.ConditionExpression) {
          // A task's commit is the journal entry that completes it: count per task.
          for (const key of completedKeys(item)) {
            this.commits.set(`${pk}|${key}`, (this.commits.get(`${pk}|${key}`) ?? 0) + 1);
          }
        } else if (sk?.startsWith('V#out:') && args.input.ConditionExpression) {
          // A map item's result, put if absent: a map item in its lane is committed by this put alone.
          this.commits.set(`${pk}|${sk}`, (this.commits.get(`${pk}|${sk}`) ?? 0) + 1);
        } else if (sk === 'S') {
          const text = compaction ? attr(args.input.ExpressionAttributeValues, ':snap') : attr(item, 'snap');
          const snap = JSON.parse(text ?? '{}') as {
            instanceId: string;
            version: number;
            status: string;
            tasks?: Record<string, { state: string; attempt: number }>;
            waits?: Record<string, { kind: string; signal?: string }>;
          };
          this.seeSnapshot(snap.instanceId, {
            at: Date.now(),
            version: snap.version,
            status: snap.status,
            dispatched: new Map(
              Object.entries(snap.tasks ?? {})
                .filter(([, t]) => t.state === 'dispatched')
                .map(([k, t]) => [k, t.attempt]),
            ),
            waitingFor: Object.values(snap.waits ?? {}).flatMap((w) =>
              w.kind === 'signal' && w.signal ? [w.signal] : [],
            ),
          });
        }
        return result;
      },
      { step: 'initialize', name: 'chaosObserve', priority: 'high' },
    );
  }

  /** Lost and duplicated messages, and the receive's visibility timeout. */
  private editSqs(sqs: SQSClient, generation: number): void {
    stackOf(sqs).add(
      (next, context) => async (args) => {
        if (this.own.has(args.input)) return next(args);
        if (context.commandName === 'ReceiveMessageCommand') {
          const visibility = this.options.visibilityTimeoutSeconds;
          const result = await next(
            visibility === undefined ? args : { ...args, input: { ...args.input, VisibilityTimeout: visibility } },
          );
          return this.enabled ? this.loseReceived(sqs, String(args.input.QueueUrl), result) : result;
        }
        if (context.commandName !== 'SendMessageBatchCommand' || !this.enabled) return next(args);
        const entries = (args.input.Entries ?? []) as SendMessageBatchRequestEntry[];
        const kept: SendMessageBatchRequestEntry[] = [];
        const dropped: SendMessageBatchRequestEntry[] = [];
        for (const e of entries) {
          const d = dispatchOf(e.MessageBody);
          const name = d ? `${d.instanceId}|${d.key}|${d.attempt}|${d.gen}` : String(e.MessageDeduplicationId);
          (this.dice.roll('lost-send', name, this.p.lostSend) ? dropped : kept).push(e);
        }
        const result =
          kept.length > 0
            ? await next({ ...args, input: { ...args.input, Entries: kept } })
            : { output: { Successful: [], Failed: [], $metadata: { httpStatusCode: 200 } }, response: {} };
        const output = result.output as {
          Successful?: { Id?: string; MessageId?: string; MD5OfMessageBody?: string }[];
        };
        const now = Date.now();
        for (const e of dropped) {
          // SQS says yes, and forgets it.
          output.Successful = [
            ...(output.Successful ?? []),
            { Id: e.Id, MessageId: randomUUID(), MD5OfMessageBody: md5(e.MessageBody ?? '') },
          ];
          const d = dispatchOf(e.MessageBody);
          this.record({
            kind: 'lost-send',
            at: now,
            ...(d
              ? { instanceId: d.instanceId, blocked: this.inFlight(d.instanceId, d.key, d.attempt) }
              : { blocked: [] }),
            ...(d ? { detail: d.key } : {}),
          });
        }
        const sent = new Set((output.Successful ?? []).map((s) => s.Id));
        for (const e of kept) {
          if (!sent.has(e.Id)) continue;
          const d = dispatchOf(e.MessageBody);
          const name = d ? `${d.instanceId}|${d.key}|${d.attempt}|${d.gen}` : String(e.MessageDeduplicationId);
          if (this.dice.roll('duplicate', name, this.p.duplicate)) {
            this.scheduleDuplicate(sqs, generation, String(args.input.QueueUrl), e, hashUnit(name));
          }
        }
        return result;
      },
      { step: 'initialize', name: 'chaosEditSqs', priority: 'high' },
    );
  }

  /** Removes messages from a receive's result, deleting them from the queue: lost for good. */
  private async loseReceived(
    sqs: SQSClient,
    queueUrl: string,
    result: Awaited<ReturnType<SdkNext>>,
  ): Promise<Awaited<ReturnType<SdkNext>>> {
    const messages = (result.output.Messages ?? []) as Message[];
    if (messages.length === 0) return result;
    const keep: Message[] = [];
    for (const m of messages) {
      const d = dispatchOf(m.Body);
      const name = `${d ? `${d.instanceId}|${d.key}|${d.attempt}|${d.gen}` : m.MessageId}|${m.MessageId}`;
      if (!this.dice.roll('lost-receive', name, this.p.lostReceive)) {
        keep.push(m);
        continue;
      }
      const input = { QueueUrl: queueUrl, ReceiptHandle: m.ReceiptHandle };
      this.own.add(input);
      try {
        await sqs.send(new DeleteMessageCommand(input));
      } catch {
        // Not deleted: it comes back after its visibility timeout, merely late.
      }
      this.record({
        kind: 'lost-receive',
        at: Date.now(),
        ...(d ? { instanceId: d.instanceId, blocked: this.inFlight(d.instanceId, d.key, d.attempt) } : { blocked: [] }),
        ...(d ? { detail: d.key } : {}),
      });
    }
    return keep.length === messages.length ? result : { ...result, output: { ...result.output, Messages: keep } };
  }

  /**
   * Sends the same body again after a short delay with a new deduplication
   * id (SQS FIFO would drop a copy with the same id): half the time in the
   * same message group (delivered after the original), half in another (so
   * the copy may run at the same time as the original).
   */
  private scheduleDuplicate(
    sqs: SQSClient,
    generation: number,
    queueUrl: string,
    e: SendMessageBatchRequestEntry,
    unit: number,
  ): void {
    const delay = Math.floor(unit * 1_500);
    const sameGroup = unit < 0.5;
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      if (generation !== this.generation || !this.enabled) return; // that stack is gone
      const input = {
        QueueUrl: queueUrl,
        MessageBody: e.MessageBody,
        MessageDeduplicationId: `dup-${randomUUID()}`,
        MessageGroupId: sameGroup ? e.MessageGroupId : `dup-${e.MessageGroupId ?? ''}`.slice(0, 128),
      };
      this.own.add(input);
      sqs.send(new SendMessageCommand(input)).then(
        () => {
          const d = dispatchOf(e.MessageBody);
          // A copy holds nothing up by design; it is counted, not timed.
          this.record({
            kind: 'duplicate',
            at: Date.now(),
            ...(d ? { instanceId: d.instanceId, detail: d.key } : {}),
            blocked: [],
          });
        },
        () => undefined,
      );
    }, delay);
    this.timers.add(timer);
  }

  private throttle(
    client: { middlewareStack: unknown },
    service: 'dynamodb' | 'sqs',
    kind: 'throttle-surfaced' | 'throttle-absorbed',
  ): void {
    const p = kind === 'throttle-surfaced' ? this.p.throttleSurfaced : this.p.throttleAbsorbed;
    stackOf(client).add(
      (next, context) => async (args) => {
        if (!this.enabled || this.own.has(args.input)) return next(args);
        const command = context.commandName ?? 'unknown';
        if (!this.dice.roll(kind, requestName(command, args.input), p)) {
          if (kind === 'throttle-absorbed') return next(args);
          // Outside the retry loop: see whether absorbable throttles got through it.
          try {
            return await next(args);
          } catch (e) {
            if ((e as { chaosKind?: string } | null)?.chaosKind === 'throttle-absorbed') this.absorbedEscaped++;
            throw e;
          }
        }
        this.throttledCommands.set(`${kind} ${command}`, (this.throttledCommands.get(`${kind} ${command}`) ?? 0) + 1);
        let blocked: [string, number][] = [];
        let instanceId: string | undefined;
        if (kind === 'throttle-surfaced') {
          // What the failed request was about, when it names it.
          const target =
            service === 'dynamodb'
              ? dynamoTarget(args.input)
              : (() => {
                  const first = (args.input.Entries as SendMessageBatchRequestEntry[] | undefined)?.[0];
                  const d = dispatchOf(first?.MessageBody);
                  return d ? { instanceId: d.instanceId, key: d.key } : {};
                })();
          instanceId = target.instanceId;
          if (instanceId) {
            blocked = target.key ? this.inFlight(instanceId, target.key) : this.inFlightExcept(instanceId);
          }
        }
        this.record({ kind, at: Date.now(), ...(instanceId ? { instanceId } : {}), blocked, detail: command });
        throw Object.assign(throttlingError(service, command), { chaosKind: kind });
      },
      kind === 'throttle-surfaced'
        ? { step: 'initialize', name: 'chaosThrottleSurfaced', priority: 'low' }
        : { step: 'finalizeRequest', name: 'chaosThrottleAbsorbed', priority: 'low' },
    );
  }
}

function md5(text: string): string {
  return createHash('md5').update(text, 'utf8').digest('hex');
}
