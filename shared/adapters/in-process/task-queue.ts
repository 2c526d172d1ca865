/**
 * The embedded back end's task queue: SQS FIFO's semantics, as the worker
 * relies on them, in the memory of the process.
 *
 * ```
 * send ──dedup (5 min)──> <pool>/<priority> lane, in send order
 *                            │ receive: skip groups with a message in flight
 *                            v
 *                        in flight (visibility timeout) ──delete──> gone
 *                            │ timeout ends: visible again, receive count kept
 *                            └─ received maxReceiveCount times and visible again ──> dead letters (redrive)
 * ```
 *
 * Messages are hints (the store is the truth): they live in memory only, and
 * after a restart the reaper re-dispatches whatever was queued or in flight.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { Dispatch } from '../../engine/snapshot.ts';
import { PRIORITIES, type Priority } from '../../engine/task.ts';
import type { TaskQueue } from '../../ports/task-queue.ts';
import { DEFAULT_MAX_RECEIVE_COUNT } from '../../resources/queues.ts';
import { dispatchDeduplicationId, dispatchGroupId, encodeDispatch, MAX_DISPATCH_BODY_BYTES } from '../sqs/message.ts';

/** SQS FIFO's deduplication window. */
const DEDUP_WINDOW_MS = 5 * 60_000;

/** One message as the queue keeps it and hands it out. */
export interface QueuedMessage {
  readonly messageId: string;
  readonly body: string;
  readonly dispatch: Dispatch;
  readonly groupId: string;
  readonly deduplicationId: string;
  /** Position in its lane (SQS's `SequenceNumber`). */
  readonly sequence: number;
  readonly sentAt: number;
  /** Receives so far, this one included once received. */
  receiveCount: number;
  firstReceivedAt: number | undefined;
  /** Hidden until then (epoch ms); 0 when never received. */
  invisibleUntil: number;
  /** The handle of the latest receive; only it deletes the message. */
  receiptHandle: string | undefined;
}

/** Where messages go after too many receives (the DLQ's redrive). */
export interface RedriveTarget {
  moved(dispatch: Dispatch, receiveCount: number, sentAt: number): void;
}

/** Options of {@link InProcessTaskQueue}. */
export interface InProcessTaskQueueOptions {
  /** Receives of a message before it is moved to `deadLetters`. @default DEFAULT_MAX_RECEIVE_COUNT (5) */
  readonly maxReceiveCount?: number;
  /** Where a message goes after `maxReceiveCount` receives; without one it is dropped (the reaper re-dispatches). */
  readonly deadLetters?: RedriveTarget;
  /** Visibility timeout when the receiver names none (s). @default 900 */
  readonly visibilityTimeoutSeconds?: number;
  /** @default Date.now */
  readonly now?: () => number;
  /** Largest dispatch body (bytes). @default MAX_DISPATCH_BODY_BYTES */
  readonly maxBodyBytes?: number;
}

const laneKey = (pool: string, priority: Priority): string => `${pool}\u0000${priority}`;

/**
 * The {@link TaskQueue} port in process, with what the local event source
 * needs to read it: priority lanes per pool, FIFO message groups (a group
 * with a message in flight delivers nothing else), visibility timeouts,
 * redelivery with a receive count, a dead-letter move after
 * `maxReceiveCount` receives, and the SQS adapter's deduplication id and
 * group id, so a dispatch sent twice within five minutes is queued once.
 *
 * @example
 * ```ts
 * const queue = new InProcessTaskQueue({ deadLetters });
 * await queue.send([dispatch]);
 * const [message] = queue.receive('default', 'normal', 10, 30);
 * queue.delete('default', 'normal', [message.receiptHandle]);
 * ```
 */
export class InProcessTaskQueue implements TaskQueue {
  private readonly lanes = new Map<string, QueuedMessage[]>();
  private readonly dedup = new Map<string, number>();
  private readonly listeners = new Set<(pool: string, messages: number) => void>();
  private readonly now: () => number;
  private readonly maxReceiveCount: number;
  private readonly visibilityMs: number;
  private readonly maxBodyBytes: number;
  private readonly deadLetters: RedriveTarget | undefined;
  private sequence = 0;
  private lastPurge = 0;

  constructor(options: InProcessTaskQueueOptions = {}) {
    this.now = options.now ?? Date.now;
    this.maxReceiveCount = options.maxReceiveCount ?? DEFAULT_MAX_RECEIVE_COUNT;
    this.visibilityMs = (options.visibilityTimeoutSeconds ?? 900) * 1000;
    this.maxBodyBytes = options.maxBodyBytes ?? MAX_DISPATCH_BODY_BYTES;
    this.deadLetters = options.deadLetters;
  }

  private lane(pool: string, priority: Priority): QueuedMessage[] {
    const key = laneKey(pool, priority);
    let lane = this.lanes.get(key);
    if (!lane) {
      lane = [];
      this.lanes.set(key, lane);
    }
    return lane;
  }

  /**
   * Queues dispatches; one whose deduplication id was sent within five
   * minutes is accepted and dropped, as SQS FIFO does.
   *
   * @throws PayloadTooLargeError before queuing anything, when a body is over the limit.
   */
  async send(dispatches: readonly Dispatch[]): Promise<void> {
    const bodies = dispatches.map((d) => encodeDispatch(d, this.maxBodyBytes));
    const now = this.now();
    this.purgeDedup(now);
    const pools = new Map<string, number>();
    for (const [i, dispatch] of dispatches.entries()) {
      const deduplicationId = dispatchDeduplicationId(dispatch);
      const seen = this.dedup.get(deduplicationId);
      if (seen !== undefined && seen > now) continue;
      this.dedup.set(deduplicationId, now + DEDUP_WINDOW_MS);
      const body = bodies[i] as string;
      this.lane(dispatch.pool, dispatch.priority).push({
        messageId: randomUUID(),
        body,
        dispatch,
        groupId: dispatchGroupId(dispatch),
        deduplicationId,
        sequence: ++this.sequence,
        sentAt: now,
        receiveCount: 0,
        firstReceivedAt: undefined,
        invisibleUntil: 0,
        receiptHandle: undefined,
      });
      pools.set(dispatch.pool, (pools.get(dispatch.pool) ?? 0) + 1);
    }
    for (const [pool, messages] of pools) for (const listener of this.listeners) listener(pool, messages);
  }

  /** Messages of a pool and priority that are visible now (not in flight). */
  async waiting(pool: string, priority: Priority): Promise<number> {
    const now = this.now();
    return (this.lanes.get(laneKey(pool, priority)) ?? []).filter((m) => m.invisibleUntil <= now).length;
  }

  /**
   * Up to `max` visible messages of a lane, in order, hidden for
   * `visibilityTimeoutSeconds`. A message whose group has an earlier message
   * in flight is not delivered; one received `maxReceiveCount` times that
   * became visible again is moved to the dead letters instead.
   */
  receive(pool: string, priority: Priority, max: number, visibilityTimeoutSeconds?: number): Readonly<QueuedMessage>[] {
    const lane = this.lanes.get(laneKey(pool, priority));
    if (!lane || lane.length === 0) return [];
    const now = this.now();
    const until = now + (visibilityTimeoutSeconds === undefined ? this.visibilityMs : visibilityTimeoutSeconds * 1000);
    const blocked = new Set<string>();
    const taken: QueuedMessage[] = [];
    const moved: QueuedMessage[] = [];
    for (const m of lane) {
      if (taken.length >= max) break;
      if (m.invisibleUntil > now) {
        blocked.add(m.groupId);
        continue;
      }
      if (blocked.has(m.groupId)) continue;
      if (m.receiveCount >= this.maxReceiveCount) {
        moved.push(m);
        continue;
      }
      m.receiveCount += 1;
      m.firstReceivedAt ??= now;
      m.invisibleUntil = until;
      m.receiptHandle = `${m.messageId}:${m.receiveCount}:${randomUUID()}`;
      // A copy: the caller's receipt handle must stay the one of this receive.
      taken.push({ ...m });
    }
    if (moved.length > 0) {
      const gone = new Set(moved);
      this.lanes.set(
        laneKey(pool, priority),
        lane.filter((m) => !gone.has(m)),
      );
      for (const m of moved) this.deadLetters?.moved(m.dispatch, m.receiveCount, m.sentAt);
    }
    return taken;
  }

  /** Deletes messages by the receipt handle of their latest receive; a stale handle deletes nothing. */
  delete(pool: string, priority: Priority, receiptHandles: readonly string[]): void {
    const lane = this.lanes.get(laneKey(pool, priority));
    if (!lane) return;
    const handles = new Set(receiptHandles);
    this.lanes.set(
      laneKey(pool, priority),
      lane.filter((m) => m.receiptHandle === undefined || !handles.has(m.receiptHandle)),
    );
  }

  /** Messages of a pool by priority: visible and in flight (tests, the start-up banner). */
  depth(pool: string): Record<Priority, { visible: number; inFlight: number }> {
    const now = this.now();
    const out = {} as Record<Priority, { visible: number; inFlight: number }>;
    for (const priority of PRIORITIES) {
      const lane = this.lanes.get(laneKey(pool, priority)) ?? [];
      const inFlight = lane.filter((m) => m.invisibleUntil > now).length;
      out[priority] = { visible: lane.length - inFlight, inFlight };
    }
    return out;
  }

  /** Calls `listener` with each pool a send queued messages for, and how many. @returns a function that removes it. */
  onSend(listener: (pool: string, messages: number) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private purgeDedup(now: number): void {
    if (now - this.lastPurge < DEDUP_WINDOW_MS) return;
    this.lastPurge = now;
    for (const [id, until] of this.dedup) if (until <= now) this.dedup.delete(id);
  }
}

/** The MD5 of a body, hex (SQS's `MD5OfBody`). */
export const md5Hex = (text: string): string => createHash('md5').update(text).digest('hex');
