import { describe, expect, it } from 'vitest';
import { describeFlow } from '../../../shared/engine/describe.ts';
import { branch, flow } from '../../../shared/index.ts';
import { dagModel, detailLines, formatMs, layoutDag } from '../../../ui/src/dag.ts';
import { dagSteps, laneBodies, qidOf, runState, signalNodes } from '../../../ui/src/run-state.ts';
import { fulfil } from '../../../workflows/order.ts';
import { batch, showcase } from '../../ui/workflows.ts';

describe('the DAG model of a workflow', () => {
  const model = dagModel(describeFlow(showcase));
  const ids = new Set(model.nodes.map((n) => n.id));

  it('keys every step by the qid its run keys reduce to, nested flows included', () => {
    for (const id of [
      'validate',
      'audit',
      'quota',
      'checked',
      'thumbnails',
      'thumbnails[]/fetch',
      'thumbnails[]/shrink',
    ])
      expect(ids).toContain(id);
    for (const id of ['size', 'zip', 'single', 'poll-cdn', 'settle', 'review', 'notify/render', 'notify/send'])
      expect(ids).toContain(id);
  });

  it('names every step as the DAG names its node, so the run page finds the node of each (dagSteps)', () => {
    for (const f of [showcase, batch, fulfil]) {
      const dag = describeFlow(f);
      const nodes = new Set(dagModel(dag).nodes.map((n) => n.id));
      const named = dagSteps(dag.steps).filter((x) => x.step.kind !== 'child');
      for (const { qid } of named) expect(nodes.has(qid), `${f.name}: ${qid}`).toBe(true);
      // And every node of a step is named: the rest are markers (start, end, a fork's split, a route's merge).
      const markers = [...nodes].filter((id) => !named.some((x) => x.qid === id));
      expect(
        markers.every((id) => /^(start|end|fork:|merge:)/.test(id)),
        markers.join(', '),
      ).toBe(true);
    }
    expect([...signalNodes(describeFlow(showcase))]).toEqual([['review', 'reviewed']]);
  });

  it('draws a fork as a split to each branch and a join, a route as labelled arms to a merge, a loop as a self-edge', () => {
    const edge = (from: string, to: string) => model.edges.find((e) => e.from === from && e.to === to);
    expect(edge('fork:checked', 'audit')).toBeDefined();
    expect(edge('quota', 'checked')).toBeDefined();
    expect(edge('size', 'zip')?.label).toBe('many');
    expect(edge('size', 'single')?.label).toBe('otherwise');
    expect(edge('zip', 'merge:size')).toBeDefined();
    expect(edge('poll-cdn', 'poll-cdn')?.label).toBe('again');
    expect(edge('thumbnails', 'thumbnails[]/fetch')?.label).toBe('for each');
  });

  it('puts map bodies and child flows in clusters, and shows pools and priorities', () => {
    expect(model.nodes.find((n) => n.id === 'thumbnails[]/shrink')?.parent).toBe('cluster:thumbnails[]');
    expect(model.nodes.find((n) => n.id === 'notify/send')?.parent).toBe('cluster:notify');
    expect(model.nodes.find((n) => n.id === 'zip')?.detail).toContain('pool media');
    expect(model.nodes.find((n) => n.id === 'validate')?.detail).toContain('high priority');
  });

  it('lays every node out inside the drawing, no two nodes on the same spot', () => {
    const laid = layoutDag(model);
    const spots = new Set<string>();
    for (const n of laid.nodes) {
      expect(n.x).toBeGreaterThanOrEqual(0);
      expect(n.y).toBeGreaterThanOrEqual(0);
      expect(n.x + n.width).toBeLessThanOrEqual(laid.width + 1);
      expect(n.y + n.height).toBeLessThanOrEqual(laid.height + 1);
      spots.add(`${Math.round(n.x)},${Math.round(n.y)}`);
    }
    expect(spots.size).toBe(laid.nodes.length);
    expect(laid.edges.every((e) => e.points.length >= 2)).toBe(true);
  });

  it("breaks a node's detail into at most two lines at its separators", () => {
    expect(detailLines('pool default · high priority · 4 attempts · timeout 30s', 30)).toEqual([
      'pool default · high priority',
      '4 attempts · timeout 30s',
    ]);
    expect(detailLines('a · b', 30)).toEqual(['a · b']);
    expect(detailLines('aaaa · bbbb · cccc', 4)).toEqual(['aaaa', 'bbbb · cccc']);
  });

  it('writes durations in their largest whole unit', () => {
    expect([formatMs(2_000), formatMs(172_800_000), formatMs(150), formatMs(1_500)]).toEqual([
      '2s',
      '2d',
      '150ms',
      '1.5s',
    ]);
  });
});

describe("a run's node states", () => {
  const base = {
    instanceId: 'i',
    workflow: 'fulfil',
    version: 1,
    createdAt: '2026-01-01T00:00:00.000Z',
    updatedAt: '2026-01-01T00:00:00.000Z',
    stepsDone: 0,
  };

  it('reduces map items and loop iterations to their step', () => {
    expect(qidOf('resize[3]/upload@2')).toBe('resize[]/upload');
  });

  it('reads completions and failures from history and the frontier from the view, the worst state winning', () => {
    const states = runState(
      {
        ...base,
        status: 'RUNNING',
        tasks: [{ key: 'm[1]', attempt: 2, state: 'backoff', dueAt: '2026-01-01T00:01:00.000Z' }],
        waits: [{ key: 'cool-off', kind: 'delay' }],
      },
      [
        {
          at: '2026-01-01T00:00:01.000Z',
          type: 'task-completed',
          key: 'charge',
          attempt: 3,
          version: 2,
          startedAt: undefined,
          retryAt: undefined,
        },
        {
          at: '2026-01-01T00:00:02.000Z',
          type: 'task-completed',
          key: 'm[0]',
          attempt: 1,
          version: 3,
          startedAt: undefined,
          retryAt: undefined,
        },
        {
          at: '2026-01-01T00:00:03.000Z',
          type: 'task-failed',
          key: 'm[1]',
          attempt: 1,
          version: 4,
          startedAt: undefined,
          retryAt: undefined,
        },
      ],
    );
    expect(states.get('charge')).toMatchObject({ state: 'completed', attempts: 3 });
    expect(states.get('m[]')).toMatchObject({
      state: 'retrying',
      keys: ['m[0]', 'm[1]'],
      counts: { completed: 1, retrying: 1 },
    });
    expect(states.get('cool-off')?.state).toBe('waiting-timer');
  });

  it('marks a signal wait done once its signal came and nothing waits any more', () => {
    const states = runState(
      { ...base, status: 'COMPLETED', tasks: [], waits: [] },
      [
        {
          at: '2026-01-01T00:00:01.000Z',
          type: 'signal-received',
          detail: 'manager-approval',
          version: 2,
          startedAt: undefined,
          retryAt: undefined,
        },
      ],
      new Map([['approve', 'manager-approval']]),
    );
    expect(states.get('approve')?.state).toBe('completed');
  });

  it('names the nodes of children run in lanes, per map or fork, as the DAG names them', () => {
    const sub = flow<number>('sub')
      .then('s1', (x: number) => x)
      .build();
    const nested = flow<number>('nested')
      .fork([branch('l', (x: number) => x), branch('r', sub)])
      .join('j', ([a]: [number, number]) => [a])
      .map(
        'm',
        (xs: number[]) => xs,
        flow<number>('item')
          .then('a', (x: number) => x)
          .thenFlow(sub)
          .build(),
      )
      .build();
    const bodies = laneBodies(describeFlow(nested));
    expect(bodies).toEqual(
      new Map([
        ['j', ['l', 'r/s1']],
        ['m', ['m[]/a', 'm[]/sub/s1']],
      ]),
    );
    const ids = new Set(dagModel(describeFlow(nested)).nodes.map((n) => n.id));
    for (const qid of [...bodies.values()].flat()) expect(ids.has(qid), qid).toBe(true);
    // The showcase's map runs its items in lanes; its fork's branches are one task each, in lanes too.
    expect([...laneBodies(describeFlow(showcase)).keys()].sort()).toEqual(['checked', 'thumbnails']);
  });

  it('shows the steps of children in lanes as in lanes once their map started, pending before', () => {
    const lanes = laneBodies(describeFlow(batch));
    const started = {
      at: '2026-01-01T00:00:01.000Z',
      type: 'task-completed',
      key: 'items',
      attempt: 1,
      version: 2,
      startedAt: undefined,
      retryAt: undefined,
    } as const;
    const running = { ...base, workflow: 'batch', status: 'RUNNING' as const, tasks: [], waits: [] };
    const before = runState(running, [], new Map(), lanes);
    expect(before.get('items[]/call')).toBeUndefined();
    const during = runState(
      { ...running, parallel: [{ key: 'items', kind: 'map', done: 1, count: 4, lanes: true }] },
      [started],
      new Map(),
      lanes,
    );
    expect(['items[]/call', 'items[]/rest', 'items[]/store'].map((q) => during.get(q)?.state)).toEqual([
      'in-lanes',
      'in-lanes',
      'in-lanes',
    ]);
    // A step one item ran in the frontier keeps what its key says.
    const joined = runState(
      { ...running, tasks: [{ key: 'items[2]/store', attempt: 1, state: 'dispatched' }] },
      [started],
      new Map(),
      lanes,
    );
    expect(joined.get('items[]/store')?.state).toBe('running');
    expect(joined.get('items[]/call')?.state).toBe('in-lanes');
  });

  it('draws the example workflow without error', () => {
    expect(layoutDag(dagModel(describeFlow(fulfil))).nodes.length).toBeGreaterThan(5);
  });
});
