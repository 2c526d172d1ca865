import { describe, expect, it } from 'vitest';
import { InProcessTaskQueue } from '../../../shared/adapters/in-process/task-queue.ts';
import type { Dispatch } from '../../../shared/engine/snapshot.ts';
import { PayloadTooLargeError } from '../../../shared/ports/errors.ts';

const dispatch = (over: Partial<Dispatch> = {}): Dispatch => ({
  instanceId: 'i1',
  workflow: 'orders',
  key: 'charge',
  qid: 'charge',
  input: { c: null },
  attempt: 1,
  gen: 1,
  priority: 'normal',
  pool: 'default',
  ...over,
});

describe('InProcessTaskQueue', () => {
  it('queues a dispatch sent twice within five minutes once, and again after the window', async () => {
    let now = 0;
    const queue = new InProcessTaskQueue({ now: () => now });
    await queue.send([dispatch(), dispatch()]);
    await queue.send([dispatch()]);
    expect(await queue.waiting('default', 'normal')).toBe(1);
    // A new attempt or generation is a new message.
    await queue.send([dispatch({ attempt: 2 }), dispatch({ gen: 2 })]);
    expect(await queue.waiting('default', 'normal')).toBe(3);
    now += 5 * 60_000 + 1;
    await queue.send([dispatch()]);
    expect(await queue.waiting('default', 'normal')).toBe(4);
  });

  it('keeps pools and priorities apart, and counts only visible messages as waiting', async () => {
    const queue = new InProcessTaskQueue();
    await queue.send([
      dispatch({ key: 'a' }),
      dispatch({ key: 'b', priority: 'high' }),
      dispatch({ key: 'c', pool: 'gpu' }),
    ]);
    expect(queue.receive('default', 'normal', 10, 30).map((m) => m.dispatch.key)).toEqual(['a']);
    expect(await queue.waiting('default', 'normal')).toBe(0);
    expect(await queue.waiting('default', 'high')).toBe(1);
    expect(await queue.waiting('gpu', 'normal')).toBe(1);
    expect(queue.depth('default')).toEqual({
      high: { visible: 1, inFlight: 0 },
      normal: { visible: 0, inFlight: 1 },
      low: { visible: 0, inFlight: 0 },
    });
  });

  it('delivers nothing more of a group while one of its messages is in flight, then the next in order', async () => {
    let now = 0;
    const queue = new InProcessTaskQueue({ now: () => now });
    await queue.send([dispatch({ attempt: 1 }), dispatch({ key: 'other' }), dispatch({ attempt: 2 })]);
    const first = queue.receive('default', 'normal', 1, 10);
    expect(first.map((m) => m.dispatch.attempt)).toEqual([1]);
    expect(queue.receive('default', 'normal', 10, 10).map((m) => m.dispatch.key)).toEqual(['other']);
    expect(queue.receive('default', 'normal', 10, 10)).toEqual([]);
    queue.delete('default', 'normal', [first[0]?.receiptHandle as string]);
    expect(queue.receive('default', 'normal', 10, 10).map((m) => [m.dispatch.key, m.dispatch.attempt])).toEqual([
      ['charge', 2],
    ]);
    // Visibility ends: 'other' and attempt 2 come back, counted twice.
    now += 10_000;
    expect(queue.receive('default', 'normal', 10, 10).map((m) => m.receiveCount)).toEqual([2, 2]);
  });

  it('a stale receipt handle deletes nothing; after maxReceiveCount receives the message moves to the dead letters', async () => {
    let now = 0;
    const moved: [string, number][] = [];
    const queue = new InProcessTaskQueue({
      now: () => now,
      maxReceiveCount: 2,
      deadLetters: { moved: (d, count) => moved.push([d.key, count]) },
    });
    await queue.send([dispatch()]);
    const [first] = queue.receive('default', 'normal', 1, 1);
    now += 1_000;
    const [second] = queue.receive('default', 'normal', 1, 1);
    queue.delete('default', 'normal', [first?.receiptHandle as string]);
    expect(queue.depth('default').normal).toEqual({ visible: 0, inFlight: 1 });
    expect(second?.receiveCount).toBe(2);
    now += 1_000;
    expect(queue.receive('default', 'normal', 1, 1)).toEqual([]);
    expect(moved).toEqual([['charge', 2]]);
    expect(queue.depth('default').normal).toEqual({ visible: 0, inFlight: 0 });
  });

  it('refuses a dispatch over the body limit before queuing any of the batch', async () => {
    const queue = new InProcessTaskQueue({ maxBodyBytes: 300 });
    const big = dispatch({ key: 'x'.repeat(400) });
    await expect(queue.send([dispatch(), big])).rejects.toBeInstanceOf(PayloadTooLargeError);
    expect(await queue.waiting('default', 'normal')).toBe(0);
  });

  it('tells send listeners the pools that got messages', async () => {
    const queue = new InProcessTaskQueue();
    const pools: string[] = [];
    const off = queue.onSend((pool) => pools.push(pool));
    await queue.send([dispatch({ pool: 'a' }), dispatch({ pool: 'b', key: 'k' })]);
    off();
    await queue.send([dispatch({ pool: 'c' })]);
    expect(pools).toEqual(['a', 'b']);
  });
});
