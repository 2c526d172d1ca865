import { describe, expect, it } from 'vitest';
import {
  branch,
  FakeClock,
  flow,
  MemoryInstanceStore,
  runWorkflow,
  startWorkflow,
  TerminalError,
} from '../../../shared/index.ts';
import { drive } from './drive.ts';
import { entries, events, range } from './lanes-support.ts';

/**
 * A child flow (`thenFlow`) nested in a map item or a fork branch is its
 * steps in place: the flow keeps no state of its own, so a child whose
 * steps, child flows opened, start and end as a lane asks runs in its lane
 * through them. What the run's journal holds per child is counted here.
 */

const inner = flow<number>('inner')
  .then('b', (x: number) => x * 2)
  .then('c', (x: number) => x + 3)
  .build();

describe('map items with a nested child flow', () => {
  it('run through the child flow in their lanes: the journal holds the map start and its end, nothing per item', async () => {
    const store = new MemoryInstanceStore();
    const mapped = flow<number>('mapped')
      .map(
        'items',
        range,
        flow<number>('item')
          .then('a', (x: number) => x + 1)
          .thenFlow(inner)
          .then('d', (x: number) => x * 10)
          .build(),
        { maxConcurrency: 3 },
      )
      .build();
    const r = await runWorkflow(mapped, 7, { store });
    expect(r.status).toBe('COMPLETED');
    expect(r.output).toEqual(range(7).map((i) => ((i + 1) * 2 + 3) * 10));
    expect(entries(await events(store, r.instanceId))).toEqual(['task-completed items', 'lanes-joined items']);
    // Each task of the child flow put its output by its id, once.
    for (let i = 0; i < 7; i++) {
      for (const step of ['a', 'inner/b', 'inner/c', 'd'])
        expect(store.commits.get(`${r.instanceId}|out:items[${i}]/${step}`)).toBe(1);
    }
  });

  it('a body that starts and ends inside child flows runs in lanes, its result the last flow step output', async () => {
    const store = new MemoryInstanceStore();
    const outer = flow<number>('outer').thenFlow(inner, { id: 'one' }).thenFlow(inner, { id: 'two' }).build();
    const mapped = flow<number>('flows-only').map('items', range, outer).build();
    const r = await runWorkflow(mapped, 4, { store });
    expect(r.output).toEqual(range(4).map((i) => (i * 2 + 3) * 2 + 3));
    expect(entries(await events(store, r.instanceId))).toEqual(['task-completed items', 'lanes-joined items']);
    expect(store.commits.get(`${r.instanceId}|out:items[3]/two/c`)).toBe(1);
  });

  it('a delay inside the child flow parks the item on a lane timer; a last one ends the item', async () => {
    const clock = new FakeClock(0);
    const store = new MemoryInstanceStore();
    const resting = flow<number>('resting')
      .then('b', (x: number) => x * 2)
      .delay('rest', '1h')
      .then('c', (x: number) => x + 3)
      .delay('cool', '1h')
      .build();
    const mapped = flow<number>('parked-flows')
      .map(
        'items',
        range,
        flow<number>('item')
          .then('a', (x: number) => x + 1)
          .thenFlow(resting)
          .build(),
        {
          maxConcurrency: 2,
        },
      )
      .build();
    const h = startWorkflow(mapped, 4, { clock, store });
    const r = await drive(h, clock);
    expect(r.output).toEqual(range(4).map((i) => (i + 1) * 2 + 3));
    const es = await events(store, h.instanceId);
    expect(entries(es)).toEqual(['task-completed items', 'lanes-joined items']);
    const timers = await store.listTimers(h.instanceId, '');
    expect(timers.map((t) => t.id).sort()).toEqual(
      range(4)
        .flatMap((i) => [`items[${i}]/resting/cool`, `items[${i}]/resting/rest`])
        .sort(),
    );
    expect(timers.every((t) => t.firedAt !== undefined)).toBe(true);
    // The item's result is its last task's output, put under the last delay's id.
    expect(store.commits.get(`${h.instanceId}|out:items[3]/resting/cool`)).toBe(1);
  });

  it('a task of the child flow retried by an operator goes on in the frontier, then back to its lane after the flow', async () => {
    const clock = new FakeClock(0);
    const store = new MemoryInstanceStore();
    let failing = true;
    const fragile = flow<number>('fragile')
      .then('b', (x: number) => x * 2)
      .then('c', (x: number) => {
        if (x === 4 && failing) throw new TerminalError('down');
        return x + 3;
      })
      .build();
    const ran: string[] = [];
    const mapped = flow<number>('retried')
      .map(
        'items',
        range,
        flow<number>('item')
          .then('a', (x: number) => x + 1)
          .thenFlow(fragile)
          .then('d', (x: number, ctx) => {
            ran.push(ctx.taskKey);
            return x * 10;
          })
          .build(),
        { maxConcurrency: 3 },
      )
      .build();
    const h = startWorkflow(mapped, 3, { clock, store });
    const failed = await drive(h, clock);
    expect(failed.status).toBe('FAILED');
    failing = false;
    await h.retryTask('items[1]/fragile/c');
    const r = await drive(h, clock);
    expect(r.status).toBe('COMPLETED');
    expect(r.output).toEqual([50, 70, 90]);
    // The retried task completed in the frontier; the step after the child flow ran in the item's lane.
    const completed = (await events(store, h.instanceId)).flatMap((e) => (e.type === 'task-completed' ? [e.key] : []));
    expect(completed).toEqual(['items', 'items[1]/fragile/c']);
    expect(ran.filter((k) => k === 'items[1]/d')).toHaveLength(1);
    expect(store.commits.get(`${h.instanceId}|out:items[1]/d`)).toBe(1);
  });
});

describe('fork branches with a nested child flow', () => {
  it('run in their lanes through the flow', async () => {
    const store = new MemoryInstanceStore();
    const forked = flow<number>('forked')
      .fork([
        branch('l', flow<number>('left').thenFlow(inner).build()),
        branch(
          'r',
          flow<number>('right')
            .then('x', (n: number) => n - 1)
            .thenFlow(inner)
            .build(),
        ),
      ])
      .join('j', ([l, r]: [number, number]) => l * 1000 + r)
      .build();
    const r = await runWorkflow(forked, 5, { store });
    expect(r.output).toBe(13 * 1000 + 11);
    expect(entries(await events(store, r.instanceId))).toEqual(['lanes-joined j', 'task-completed j']);
  });
});
