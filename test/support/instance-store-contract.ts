import { describe, expect, it } from 'vitest';
import { MemoryObjectStore } from '../../shared/adapters/memory/object-store.ts';
import type { HistoryEntry } from '../../shared/engine/history.ts';
import { ValueMissingError } from '../../shared/engine/refs.ts';
import type { Snapshot } from '../../shared/engine/snapshot.ts';
import {
  InstanceExistsError,
  InvalidCursorError,
  JournalConflictError,
  PayloadTooLargeError,
} from '../../shared/ports/errors.ts';
import { type InstanceStore, type JournalEntry, journalValueId } from '../../shared/ports/instance-store.ts';
import type { ObjectStore } from '../../shared/ports/object-store.ts';
import type { TimerIndex } from '../../shared/ports/timers.ts';

/** What the contract holds a store to: the instance store port and the due index it feeds. */
export type ContractStore = InstanceStore & TimerIndex;

/** Options of {@link describeInstanceStoreContract}. */
export interface InstanceStoreContractOptions {
  /**
   * The largest item the store accepts, in bytes: the payload-limit tests
   * run against it. Omitted for a store that enforces no limit, whose
   * payload-limit tests are then listed as todo.
   * @default undefined
   */
  readonly maxItemBytes?: number;
  /**
   * Opens a fresh store that offloads values over 16 KiB to `objects`: the
   * offload tests run against it. Omitted for a store that cannot offload
   * (the memory store), whose offload tests are then listed as todo.
   * @default undefined
   */
  readonly openWithObjects?: (
    objects: ObjectStore,
  ) => Promise<{ readonly store: ContractStore; readonly close: () => Promise<void> }>;
}

/**
 * A snapshot at version 0, as `create` receives it: workflow `orders`,
 * input id `input:<instanceId>-n1`.
 *
 * @example
 * ```ts
 * await store.create(snapshot('a', { dueAt: 100 }), { order: 1 }, []);
 * ```
 */
export function snapshot(instanceId: string, over: Partial<Snapshot> = {}): Snapshot {
  return {
    instanceId,
    workflow: 'orders',
    defHash: 'h1',
    inputId: `input:${instanceId}-n1`,
    status: 'RUNNING',
    redispatchAfterMs: 60_000,
    version: 0,
    createdAt: 1_000,
    updatedAt: 1_000,
    tasks: {},
    waits: {},
    forks: {},
    maps: {},
    signals: {},
    ...over,
  };
}

/** The snapshot after journal entry `version`, as a compaction stores it. */
const at = (s: Snapshot, version: number, over: Partial<Snapshot> = {}): Snapshot => ({
  ...s,
  version,
  updatedAt: s.createdAt + version,
  ...over,
});

/** One history line, tagged so that tests can tell entries apart. */
const line = (key: string, version: number): HistoryEntry => ({
  at: 1_000 + version,
  type: 'timer-fired',
  key,
  version,
});

/**
 * Journal entry `seq`: one event, one history line keyed `e<seq>`, and what `over` adds.
 *
 * @example
 * ```ts
 * await store.append('a', entry(1, { value: { data: 'out' }, watchAt: 50 }));
 * ```
 */
export function entry(seq: number, over: Partial<JournalEntry> = {}): JournalEntry {
  return {
    seq,
    at: 1_000 + seq,
    events: [{ type: 'timer-fired', key: `t${seq}` }],
    history: [line(`e${seq}`, seq)],
    ...over,
  };
}

const CREATION: readonly HistoryEntry[] = [
  { at: 1_000, type: 'run-started', version: 0 },
  { at: 1_000, type: 'task-completed', key: 'c1', attempt: 1, version: 0 },
];

/** Values every store must hand back as JSON would (`undefined` included), under every kind of id. */
const ROUND_TRIP: readonly (readonly [label: string, value: unknown])[] = [
  ['undefined', undefined],
  ['null', null],
  ['zero', 0],
  ['the empty string', ''],
  ['false', false],
  ['a nested object', { a: [1, { b: [null, 'x', { c: true }] }], d: { e: { f: -1.5e-7 } } }],
  ['unicode', 'héllo 世界 🚀 \u0000 \u{1F600} \u2028 "quotes" \\ back'],
  ['an array holding undefined', [undefined, 1, 'two']],
  ['an object with an undefined property', { kept: 1, dropped: undefined }],
];

/** What a value reads back as: the JSON round trip of it. */
const asJson = (value: unknown): unknown => JSON.parse(JSON.stringify({ v: value })).v;

async function thrown(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

/** Every page of an instance's history at `limit` entries a page. */
async function historyPages(store: ContractStore, instanceId: string, limit: number): Promise<HistoryEntry[][]> {
  const pages: HistoryEntry[][] = [];
  let cursor: string | undefined;
  do {
    const page = await store.readHistory(instanceId, { limit, ...(cursor === undefined ? {} : { cursor }) });
    pages.push([...page.entries]);
    cursor = page.cursor;
    if (pages.length > 1_000) throw new Error('readHistory never ends');
  } while (cursor !== undefined);
  return pages;
}

/** Instance ids of every page of a listing. */
async function listAll(
  store: ContractStore,
  query: { readonly workflow: string; readonly status?: Snapshot['status']; readonly limit: number },
): Promise<string[]> {
  const seen: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await store.list({ ...query, ...(cursor === undefined ? {} : { cursor }) });
    expect(page.items.length).toBeLessThanOrEqual(query.limit);
    seen.push(...page.items.map((i) => i.instanceId));
    cursor = page.cursor;
    if (seen.length > 10_000) throw new Error('list never ends');
  } while (cursor !== undefined);
  return seen;
}

/**
 * The contract of the instance store port (`shared/ports/instance-store.ts`)
 * and of the due index it feeds (`TimerIndex`), for one adapter: every
 * method's documented semantics, each conditional failure included. `open`
 * gives a fresh, empty store per test.
 *
 * @example
 * ```ts
 * describeInstanceStoreContract('MemoryInstanceStore', async () => ({
 *   store: new MemoryInstanceStore(),
 *   close: async () => {},
 * }));
 * ```
 */
export function describeInstanceStoreContract(
  name: string,
  open: () => Promise<{ readonly store: ContractStore; readonly close: () => Promise<void> }>,
  options: InstanceStoreContractOptions = {},
): void {
  async function withStore(body: (store: ContractStore) => Promise<void>): Promise<void> {
    const { store, close } = await open();
    try {
      await body(store);
    } finally {
      await close();
    }
  }

  describe(`${name} instance store contract`, () => {
    describe('create, load and get', () => {
      it('create then load returns the snapshot, an empty tail and the input under its id', async () => {
        await withStore(async (store) => {
          const s = snapshot('a', {
            tasks: {
              charge: {
                qid: 'charge',
                idx: [0, 2],
                input: { v: 'input:a-n1', at: ['x', 0] },
                attempt: 2,
                state: 'backoff',
                dueAt: 5,
              },
            },
            waits: { approve: { kind: 'signal', qid: 'approve', idx: [], input: { c: null }, signal: 'ok' } },
            forks: { f: { remaining: 1, results: [{ v: 'out:x' }, null] } },
            signals: { ok: ['sig:1', 'sig:2'] },
            error: { name: 'E', message: 'ü 世界' },
            dueAt: 5,
          });
          await store.create(s, { order: 42 }, CREATION);

          const loaded = await store.load('a');
          expect(loaded?.snapshot).toEqual(s);
          expect(loaded?.tail).toEqual([]);
          expect(loaded?.values).toEqual(new Map([['input:a-n1', { order: 42 }]]));
          expect(await store.get('a')).toEqual(s);
          expect(await store.getValues('a', ['input:a-n1'])).toEqual(new Map([['input:a-n1', { order: 42 }]]));
          expect((await store.readHistory('a')).entries).toEqual(CREATION);
        });
      });

      it('load, get, readJournal and readHistory of an unknown instance find nothing', async () => {
        await withStore(async (store) => {
          await store.create(snapshot('a'), null, CREATION);
          await store.append('a', entry(1));
          expect(await store.load('nope')).toBeUndefined();
          expect(await store.get('nope')).toBeUndefined();
          expect(await store.readJournal('nope', 0)).toEqual([]);
          expect((await store.readHistory('nope')).entries).toEqual([]);
        });
      });

      it('a second create with the same id throws InstanceExistsError and leaves the first untouched', async () => {
        await withStore(async (store) => {
          const first = snapshot('a', { defHash: 'first' });
          await store.create(first, 'first input', CREATION);
          await store.append('a', entry(1, { value: { data: 'out 1' } }));

          const second = snapshot('a', { defHash: 'second', inputId: 'input:a-n2', createdAt: 2_000, dueAt: 10 });
          const err = await thrown(store.create(second, 'second input', [line('second', 0)]));
          expect(err).toBeInstanceOf(InstanceExistsError);
          expect((err as InstanceExistsError).instanceId).toBe('a');

          const loaded = await store.load('a');
          expect(loaded?.snapshot).toEqual(first);
          expect(loaded?.tail).toEqual([entry(1, { value: { data: 'out 1' } })]);
          expect(await store.getValues('a', ['input:a-n1'])).toEqual(new Map([['input:a-n1', 'first input']]));
          await expect(store.getValues('a', ['input:a-n2'])).rejects.toBeInstanceOf(ValueMissingError);
          expect((await store.readHistory('a')).entries).toEqual([...CREATION, line('e1', 1)]);
          const page = await store.list({ workflow: 'orders' });
          expect(page.items.map((i) => [i.instanceId, i.createdAt])).toEqual([['a', 1_000]]);
          expect(await store.due(1_000, 10)).toEqual([]);
        });
      });

      it('of two creates racing for one id, exactly one wins', async () => {
        await withStore(async (store) => {
          const contenders = [1, 2, 3].map((n) => snapshot('a', { defHash: `h${n}`, inputId: `input:a-n${n}` }));
          const results = await Promise.allSettled(contenders.map((s, n) => store.create(s, `input ${n}`, [])));

          const won = results.flatMap((r, n) => (r.status === 'fulfilled' ? [n] : []));
          expect(won).toHaveLength(1);
          for (const r of results) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(InstanceExistsError);
          const winner = contenders[won[0]!]!;
          expect(await store.get('a')).toEqual(winner);
          expect(await store.getValues('a', [winner.inputId])).toEqual(new Map([[winner.inputId, `input ${won[0]}`]]));
        });
      });

      it('get returns the compacted snapshot only, not the journal after it', async () => {
        await withStore(async (store) => {
          const s = snapshot('a');
          await store.create(s, null, []);
          for (let seq = 1; seq <= 3; seq++) await store.append('a', entry(seq));
          expect(await store.get('a')).toEqual(s);

          const v2 = at(s, 2, { status: 'PAUSED' });
          expect(await store.compact(v2)).toBe(true);
          expect(await store.get('a')).toEqual(v2);
          expect((await store.load('a'))?.tail).toEqual([entry(3)]);
        });
      });
    });

    describe('append, load and readJournal', () => {
      it('append at a taken seq throws JournalConflictError and changes nothing', async () => {
        await withStore(async (store) => {
          await store.create(snapshot('a'), null, CREATION);
          const kept = entry(1, { value: { data: 'kept' } });
          await store.append('a', kept);

          const loser = entry(1, {
            events: [{ type: 'pause' }],
            value: { data: 'lost' },
            history: [line('lost', 1)],
            watchAt: 50,
          });
          const err = await thrown(store.append('a', loser));
          expect(err).toBeInstanceOf(JournalConflictError);
          expect((err as JournalConflictError).instanceId).toBe('a');
          expect((err as JournalConflictError).seq).toBe(1);

          expect(await store.readJournal('a', 0)).toEqual([kept]);
          expect(await store.getValues('a', [journalValueId(1)])).toEqual(new Map([['j:1', 'kept']]));
          expect((await store.readHistory('a')).entries).toEqual([...CREATION, line('e1', 1)]);
          expect(await store.due(1_000, 10)).toEqual([]);
        });
      });

      it('of appends racing for the same seq, exactly one wins and the journal holds it', async () => {
        await withStore(async (store) => {
          await store.create(snapshot('a'), null, []);
          const contenders = [1, 2, 3, 4, 5].map((n) =>
            entry(1, {
              value: { data: n },
              history: [line(`w${n}`, 1)],
              events: [{ type: 'timer-fired', key: `w${n}` }],
            }),
          );
          const results = await Promise.allSettled(contenders.map((e) => store.append('a', e)));

          const won = results.flatMap((r, n) => (r.status === 'fulfilled' ? [n] : []));
          expect(won).toHaveLength(1);
          for (const r of results) {
            if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(JournalConflictError);
          }
          const winner = contenders[won[0]!]!;
          expect(await store.readJournal('a', 0)).toEqual([winner]);
          expect((await store.getValues('a', ['j:1'])).get('j:1')).toBe(won[0]! + 1);
          expect((await store.readHistory('a')).entries).toEqual(winner.history);
        });
      });

      it('load returns the compacted snapshot, the entries after it in order, and their payloads in values', async () => {
        await withStore(async (store) => {
          const s = snapshot('a');
          await store.create(s, { order: 1 }, []);
          const entries = [
            entry(1, { value: { data: 'one' } }),
            entry(2, { value: { data: 'two' } }),
            entry(3),
            entry(4, { value: { data: { four: [4] } } }),
            entry(5),
            entry(6, { value: { data: undefined } }),
            entry(7, { watchAt: 5_000, history: [], events: [{ type: 'pause' }, { type: 'resume' }] }),
          ];
          for (const e of entries) await store.append('a', e);
          const v2 = at(s, 2);
          expect(await store.compact(v2)).toBe(true);

          const loaded = await store.load('a');
          expect(loaded?.snapshot).toEqual(v2);
          expect(loaded?.tail).toEqual(entries.slice(2));
          // The input and the tail's payloads; not entries 3, 5 and 7, which carry none.
          expect(loaded?.values).toEqual(
            new Map<string, unknown>([
              ['input:a-n1', { order: 1 }],
              ['j:4', { four: [4] }],
              ['j:6', undefined],
            ]),
          );
          expect(loaded?.values.has('j:6')).toBe(true);
          for (const id of ['j:3', 'j:5', 'j:7']) expect(loaded?.values.has(id)).toBe(false);
        });
      });

      it('load reads a tail longer than one page: 30 entries after the snapshot, and 30 with no compaction', async () => {
        await withStore(async (store) => {
          const compacted = snapshot('a');
          await store.create(compacted, null, []);
          const entries = Array.from({ length: 35 }, (_, i) => entry(i + 1, { value: { data: `out ${i + 1}` } }));
          for (const e of entries) await store.append('a', e);
          await store.compact(at(compacted, 5));

          const loaded = await store.load('a');
          expect(loaded?.snapshot.version).toBe(5);
          expect(loaded?.tail).toEqual(entries.slice(5));
          expect(loaded?.tail.map((e) => e.seq)).toEqual(Array.from({ length: 30 }, (_, i) => i + 6));
          for (let seq = 6; seq <= 35; seq++) expect(loaded?.values.get(journalValueId(seq))).toBe(`out ${seq}`);
          expect(loaded?.values.size).toBe(31);

          await store.create(snapshot('b'), null, []);
          for (const e of entries.slice(0, 30)) await store.append('b', e);
          expect((await store.load('b'))?.tail).toEqual(entries.slice(0, 30));
        });
      });

      it('readJournal returns the entries after a seq, in order, whatever the compaction', async () => {
        await withStore(async (store) => {
          const s = snapshot('a');
          await store.create(s, null, []);
          const entries = Array.from({ length: 6 }, (_, i) =>
            entry(i + 1, i % 2 === 0 ? { value: { data: [i] } } : { watchAt: 9_000 + i }),
          );
          for (const e of entries) await store.append('a', e);
          await store.compact(at(s, 4));

          expect(await store.readJournal('a', 0)).toEqual(entries);
          expect(await store.readJournal('a', 2)).toEqual(entries.slice(2));
          expect(await store.readJournal('a', 5)).toEqual(entries.slice(5));
          expect(await store.readJournal('a', 6)).toEqual([]);
          expect(await store.readJournal('a', 10)).toEqual([]);
        });
      });

      it('journals are per instance: the same seq commits once in each', async () => {
        await withStore(async (store) => {
          await store.create(snapshot('a'), null, []);
          await store.create(snapshot('b'), null, []);
          await store.append('a', entry(1, { value: { data: 'a' } }));
          await store.append('b', entry(1, { value: { data: 'b' } }));
          expect(await store.readJournal('a', 0)).toEqual([entry(1, { value: { data: 'a' } })]);
          expect(await store.readJournal('b', 0)).toEqual([entry(1, { value: { data: 'b' } })]);
        });
      });
    });

    describe('compact', () => {
      it('replaces only an older compaction: the same or an older version returns false and keeps the stored one', async () => {
        await withStore(async (store) => {
          const s = snapshot('a');
          await store.create(s, 'input', CREATION);
          const v3 = at(s, 3, { status: 'PAUSED' });
          expect(await store.compact(v3)).toBe(true);
          expect(await store.get('a')).toEqual(v3);

          expect(await store.compact(at(s, 3, { status: 'CANCELLED' }))).toBe(false);
          expect(await store.compact(at(s, 2, { status: 'FAILED' }))).toBe(false);
          expect(await store.compact(at(s, 0, { status: 'FAILED' }))).toBe(false);
          expect(await store.get('a')).toEqual(v3);
          expect((await store.list({ workflow: 'orders' })).items.map((i) => i.status)).toEqual(['PAUSED']);

          const v5 = at(s, 5, { status: 'COMPLETED' });
          expect(await store.compact(v5)).toBe(true);
          expect(await store.get('a')).toEqual(v5);
          // The input and the creation's history are not the compaction's to change.
          expect(await store.getValues('a', ['input:a-n1'])).toEqual(new Map([['input:a-n1', 'input']]));
          expect((await store.readHistory('a')).entries).toEqual(CREATION);
        });
      });

      it('of compactions racing, the newest version stays, and of two at one version exactly one is written', async () => {
        await withStore(async (store) => {
          const s = snapshot('a');
          await store.create(s, null, []);
          const results = await Promise.all([2, 4, 3, 1].map((v) => store.compact(at(s, v))));
          expect(results[1]).toBe(true);
          expect((await store.get('a'))?.version).toBe(4);

          const twins = [at(s, 6, { status: 'PAUSED' }), at(s, 6, { status: 'CANCELLED' })];
          const written = await Promise.all(twins.map((t) => store.compact(t)));
          expect(written.filter(Boolean)).toHaveLength(1);
          expect(await store.get('a')).toEqual(twins[written.indexOf(true)]);
        });
      });

      it('compact of an unknown instance creates nothing', async () => {
        await withStore(async (store) => {
          await store.compact(at(snapshot('ghost'), 1, { dueAt: 10 }));
          expect(await store.get('ghost')).toBeUndefined();
          expect(await store.load('ghost')).toBeUndefined();
          expect((await store.list({ workflow: 'orders' })).items).toEqual([]);
          expect(await store.due(1_000, 10)).toEqual([]);
        });
      });

      it("compact moves list's status and updatedAt, and due's due time; appends alone move neither", async () => {
        await withStore(async (store) => {
          const s = snapshot('a', { dueAt: 100 });
          await store.create(s, null, []);
          await store.append('a', entry(1, { events: [{ type: 'pause' }] }));
          // The journal moved on; the listing and the due index are as of the last compaction.
          expect((await store.list({ workflow: 'orders', status: 'RUNNING' })).items.map((i) => i.instanceId)).toEqual([
            'a',
          ]);
          expect(await store.due(100, 10)).toEqual([{ instanceId: 'a', dueAt: 100 }]);

          expect(await store.compact(at(s, 1, { status: 'PAUSED', updatedAt: 1_500, dueAt: 500 }))).toBe(true);
          expect((await store.list({ workflow: 'orders', status: 'RUNNING' })).items).toEqual([]);
          expect((await store.list({ workflow: 'orders', status: 'PAUSED' })).items).toEqual([
            { instanceId: 'a', workflow: 'orders', status: 'PAUSED', createdAt: 1_000, updatedAt: 1_500 },
          ]);
          expect((await store.list({ workflow: 'orders' })).items).toEqual([
            { instanceId: 'a', workflow: 'orders', status: 'PAUSED', createdAt: 1_000, updatedAt: 1_500 },
          ]);
          expect(await store.due(499, 10)).toEqual([]);
          expect(await store.due(500, 10)).toEqual([{ instanceId: 'a', dueAt: 500 }]);

          // The timer fired: the compacted snapshot has no due time, so the index drops it.
          const { dueAt: _fired, ...fired } = at(s, 2, { status: 'RUNNING' });
          expect(await store.compact(fired)).toBe(true);
          expect(await store.due(Number.MAX_SAFE_INTEGER, 10)).toEqual([]);
          expect((await store.list({ workflow: 'orders', status: 'RUNNING' })).items.map((i) => i.instanceId)).toEqual([
            'a',
          ]);
          expect((await store.list({ workflow: 'orders', status: 'PAUSED' })).items).toEqual([]);

          // Finished, due for its purge: listed by duePurges, never with live work; and back to live work if reopened.
          expect(await store.compact(at(s, 3, { status: 'COMPLETED', dueAt: 9_000 }))).toBe(true);
          expect(await store.due(Number.MAX_SAFE_INTEGER, 10)).toEqual([]);
          expect(await store.duePurges(8_999, 10)).toEqual([]);
          expect(await store.duePurges(9_000, 10)).toEqual([{ instanceId: 'a', dueAt: 9_000 }]);
          expect(await store.compact(at(s, 4, { status: 'RUNNING', dueAt: 700 }))).toBe(true);
          expect(await store.duePurges(Number.MAX_SAFE_INTEGER, 10)).toEqual([]);
          expect(await store.due(700, 10)).toEqual([{ instanceId: 'a', dueAt: 700 }]);
        });
      });
    });

    describe('values', () => {
      it('values round-trip as the run input, as journal payloads and as put values', async () => {
        await withStore(async (store) => {
          for (const [n, [label, value]] of ROUND_TRIP.entries()) {
            const id = `rt-${n}`;
            const expected = asJson(value);
            await store.create(snapshot(id), value, []);
            await store.append(id, entry(1, { value: { data: value } }));
            expect(await store.putValue(id, 'out:v', value)).toBe('created');

            const loaded = await store.load(id);
            const read = await store.getValues(id, [`input:${id}-n1`, 'j:1', 'out:v']);
            const journal = await store.readJournal(id, 0);
            const where = `${label}: `;
            expect([...(loaded?.values.keys() ?? [])].sort(), where).toEqual([`input:${id}-n1`, 'j:1'].sort());
            expect(loaded?.values.get(`input:${id}-n1`), `${where}input by load`).toEqual(expected);
            expect(loaded?.values.get('j:1'), `${where}payload by load`).toEqual(expected);
            expect(loaded?.tail[0]?.value, `${where}tail entry`).toEqual({ data: expected });
            expect(journal[0]?.value, `${where}readJournal entry`).toEqual({ data: expected });
            expect([...read.keys()].sort(), where).toEqual([`input:${id}-n1`, 'j:1', 'out:v'].sort());
            for (const [vid, got] of read) expect(got, `${where}${vid} by getValues`).toEqual(expected);
          }
          // Strings come back exactly, not merely equal after normalization.
          const unicode = ROUND_TRIP.findIndex(([label]) => label === 'unicode');
          expect((await store.getValues(`rt-${unicode}`, ['out:v'])).get('out:v')).toBe(ROUND_TRIP[unicode]![1]);
        });
      });

      it('putValue: the first writer wins, a later one gets exists and changes nothing', async () => {
        await withStore(async (store) => {
          expect(await store.putValue('a', 'out:charge', { paid: 1 })).toBe('created');
          expect(await store.putValue('a', 'out:charge', { paid: 2 })).toBe('exists');
          expect(await store.putValue('a', 'out:charge', undefined)).toBe('exists');
          expect(await store.getValues('a', ['out:charge'])).toEqual(new Map([['out:charge', { paid: 1 }]]));
          // The id is the instance's: another instance has its own.
          expect(await store.putValue('b', 'out:charge', { paid: 3 })).toBe('created');
          expect(await store.getValues('b', ['out:charge'])).toEqual(new Map([['out:charge', { paid: 3 }]]));
        });
      });

      it('putValue of an undefined value is stored: a later writer still gets exists', async () => {
        await withStore(async (store) => {
          expect(await store.putValue('a', 'out:none', undefined)).toBe('created');
          expect(await store.putValue('a', 'out:none', 'late')).toBe('exists');
          const read = await store.getValues('a', ['out:none']);
          expect(read.has('out:none')).toBe(true);
          expect(read.get('out:none')).toBeUndefined();
        });
      });

      it('concurrent putValue of one id: exactly one created, and its value is the stored one', async () => {
        await withStore(async (store) => {
          const results = await Promise.all([1, 2, 3, 4, 5].map((n) => store.putValue('a', 'out:t', n)));
          expect(results.filter((r) => r === 'created')).toHaveLength(1);
          const stored = (await store.getValues('a', ['out:t'])).get('out:t') as number;
          expect(results[stored - 1]).toBe('created');
        });
      });

      it('getValues reads more than 100 ids of every kind in one call and tolerates duplicates', async () => {
        await withStore(async (store) => {
          await store.create(snapshot('a'), 'the input', []);
          for (let seq = 1; seq <= 3; seq++) await store.append('a', entry(seq, { value: { data: seq * 10 } }));
          const ids = Array.from({ length: 230 }, (_, i) => `out:t${i}`);
          await Promise.all(ids.map((id, i) => store.putValue('a', id, { i })));

          const read = await store.getValues('a', [
            ...ids,
            'out:t5',
            'out:t5',
            'input:a-n1',
            'j:2',
            'j:2',
            'input:a-n1',
            'j:1',
          ]);
          expect(read).toEqual(
            new Map<string, unknown>([
              ...ids.map((id, i): [string, unknown] => [id, { i }]),
              ['input:a-n1', 'the input'],
              ['j:1', 10],
              ['j:2', 20],
            ]),
          );
          expect(read.size).toBe(233);
          expect(await store.getValues('a', [])).toEqual(new Map());
          // Also from a generator: any iterable will do.
          const gen = function* () {
            yield 'out:t1';
            yield 'j:3';
          };
          expect(await store.getValues('a', gen())).toEqual(
            new Map<string, unknown>([
              ['out:t1', { i: 1 }],
              ['j:3', 30],
            ]),
          );
        });
      });

      it('getValues reads journal payloads whether or not a compaction covers them', async () => {
        await withStore(async (store) => {
          const s = snapshot('a');
          await store.create(s, null, []);
          for (let seq = 1; seq <= 4; seq++) await store.append('a', entry(seq, { value: { data: `v${seq}` } }));
          await store.compact(at(s, 3));
          expect(await store.getValues('a', ['j:1', 'j:3', 'j:4'])).toEqual(
            new Map([
              ['j:1', 'v1'],
              ['j:3', 'v3'],
              ['j:4', 'v4'],
            ]),
          );
        });
      });

      it('getValues is scoped to the instance: an input, a payload or a value of another is missing', async () => {
        await withStore(async (store) => {
          await store.create(snapshot('a'), 'a input', []);
          await store.create(snapshot('b'), 'b input', []);
          await store.append('b', entry(1, { value: { data: 'b payload' } }));
          await store.putValue('b', 'out:other', 'b only');

          for (const id of ['out:other', 'input:b-n1', 'j:1']) {
            const err = await thrown(store.getValues('a', [id]));
            expect(err, id).toBeInstanceOf(ValueMissingError);
            expect((err as ValueMissingError).valueId).toBe(id);
          }
          expect(await store.getValues('b', ['out:other', 'input:b-n1', 'j:1'])).toEqual(
            new Map([
              ['out:other', 'b only'],
              ['input:b-n1', 'b input'],
              ['j:1', 'b payload'],
            ]),
          );
        });
      });

      it('getValues throws ValueMissingError naming the missing id', async () => {
        await withStore(async (store) => {
          await store.create(snapshot('a'), null, []);
          await store.append('a', entry(1, { value: { data: 'one' } }));
          await store.append('a', entry(2));
          await store.putValue('a', 'out:x', 1);

          const missing = [
            ['a value never put', 'out:missing'],
            ['the payload of an entry that has none', 'j:2'],
            ['the payload of an entry not committed', 'j:3'],
            ['an input of another creation', 'input:a-n2'],
          ] as const;
          for (const [label, id] of missing) {
            const err = await thrown(store.getValues('a', ['out:x', 'j:1', id, 'input:a-n1']));
            expect(err, label).toBeInstanceOf(ValueMissingError);
            expect((err as ValueMissingError).valueId, label).toBe(id);
          }
          const err = await thrown(store.getValues('nope', ['input:nope-n1']));
          expect(err).toBeInstanceOf(ValueMissingError);
          expect((err as ValueMissingError).valueId).toBe('input:nope-n1');
        });
      });
    });

    describe('due', () => {
      it('lists snapshots whose dueAt is at or before now, earliest first, up to limit', async () => {
        await withStore(async (store) => {
          // Enough instances to land in every partition a store may spread them over.
          const order = [13, 2, 19, 7, 0, 11, 5, 17, 3, 9, 15, 1, 18, 6, 12, 4, 16, 8, 10, 14];
          for (const [i, rank] of order.entries()) {
            await store.create(snapshot(`d${i}`, { dueAt: 100 + rank * 10 }), null, []);
          }
          await store.create(snapshot('later', { dueAt: 10_000 }), null, []);
          await store.create(snapshot('none'), null, []);
          const byTime = order
            .map((rank, i) => ({ instanceId: `d${i}`, dueAt: 100 + rank * 10 }))
            .sort((a, b) => a.dueAt - b.dueAt);

          expect(await store.due(99, 50)).toEqual([]);
          expect(await store.due(100, 50)).toEqual(byTime.slice(0, 1));
          expect(await store.due(140, 50)).toEqual(byTime.slice(0, 5));
          expect(await store.due(1_000, 50)).toEqual(byTime);
          expect(await store.due(1_000, 3)).toEqual(byTime.slice(0, 3));
          expect(await store.due(20_000, 50)).toEqual([...byTime, { instanceId: 'later', dueAt: 10_000 }]);
        });
      });

      it('lists watched entries, with their seq, until unwatch', async () => {
        await withStore(async (store) => {
          await store.create(snapshot('a', { dueAt: 200 }), null, []);
          await store.create(snapshot('b'), null, []);
          const watched = entry(1, { watchAt: 150, events: [{ type: 'pause' }] });
          await store.append('a', watched);
          await store.append('a', entry(2));
          await store.append('a', entry(3, { watchAt: 250, events: [{ type: 'resume' }] }));
          await store.append('b', entry(1, { watchAt: 120, events: [{ type: 'cancel' }] }));

          expect(await store.due(100, 10)).toEqual([]);
          expect(await store.due(300, 10)).toEqual([
            { instanceId: 'b', dueAt: 120, watched: 1 },
            { instanceId: 'a', dueAt: 150, watched: 1 },
            { instanceId: 'a', dueAt: 200 },
            { instanceId: 'a', dueAt: 250, watched: 3 },
          ]);

          await store.unwatch('a', 1);
          await store.unwatch('b', 1);
          expect(await store.due(300, 10)).toEqual([
            { instanceId: 'a', dueAt: 200 },
            { instanceId: 'a', dueAt: 250, watched: 3 },
          ]);
          // Unwatching takes the entry off the index, not out of the journal: entries are never rewritten.
          expect((await store.readJournal('a', 0))[0]).toEqual(watched);

          await store.unwatch('a', 3);
          expect(await store.due(300, 10)).toEqual([{ instanceId: 'a', dueAt: 200 }]);
        });
      });

      it('unwatch of an entry not watched, not committed, or of an unknown instance changes nothing', async () => {
        await withStore(async (store) => {
          await store.create(snapshot('a'), null, []);
          await store.append('a', entry(1));
          await store.append('a', entry(2, { watchAt: 50 }));
          await store.unwatch('a', 1);
          await store.unwatch('a', 9);
          await store.unwatch('nope', 1);
          expect(await store.due(100, 10)).toEqual([{ instanceId: 'a', dueAt: 50, watched: 2 }]);
          expect(await store.readJournal('a', 0)).toEqual([entry(1), entry(2, { watchAt: 50 })]);
          expect(await store.load('nope')).toBeUndefined();
        });
      });

      it('a compaction neither lists nor unlists a watched entry', async () => {
        await withStore(async (store) => {
          const s = snapshot('a');
          await store.create(s, null, []);
          await store.append('a', entry(1, { watchAt: 50 }));
          await store.compact(at(s, 1));
          expect(await store.due(100, 10)).toEqual([{ instanceId: 'a', dueAt: 50, watched: 1 }]);
        });
      });
    });

    describe('lane timers', () => {
      const timer = (id: string, dueAt: number, item = 0) => ({ id, dueAt, parent: 'm', item });

      it('putTimer: the first writer wins; the timer is due until fired, then kept with its firing time', async () => {
        await withStore(async (store) => {
          await store.create(snapshot('a'), null, []);
          expect(await store.putTimer('a', timer('d[0]', 100, 0))).toBe('created');
          expect(await store.putTimer('a', timer('d[0]', 900, 5))).toBe('exists');
          expect(await store.putTimer('a', timer('d[1]', 300, 1))).toBe('created');
          expect(await store.due(99, 10)).toEqual([]);
          expect(await store.due(300, 10)).toEqual([
            { instanceId: 'a', dueAt: 100, timer: 'd[0]' },
            { instanceId: 'a', dueAt: 300, timer: 'd[1]' },
          ]);

          await store.fireTimer('a', 'd[0]', 150);
          await store.fireTimer('a', 'd[0]', 999); // fired once: the first firing time stays
          await store.fireTimer('a', 'nope', 150);
          await store.fireTimer('nope', 'd[0]', 150);
          expect(await store.due(1_000, 10)).toEqual([{ instanceId: 'a', dueAt: 300, timer: 'd[1]' }]);
          expect(await store.listTimers('a', 'd[')).toEqual([
            { ...timer('d[0]', 100, 0), firedAt: 150 },
            timer('d[1]', 300, 1),
          ]);
          // A fired timer still exists: a second put changes nothing.
          expect(await store.putTimer('a', timer('d[0]', 5, 0))).toBe('exists');
          expect(await store.due(1_000, 10)).toEqual([{ instanceId: 'a', dueAt: 300, timer: 'd[1]' }]);
        });
      });

      it('listTimers reads a page after an id: at most the limit, by id, never past the prefix', async () => {
        await withStore(async (store) => {
          await store.create(snapshot('a'), null, []);
          for (let i = 0; i < 7; i++) await store.putTimer('a', timer(`x[${i}]`, 1_000 + i, i));
          await store.putTimer('a', timer('y[0]', 50));
          await store.putValue('a', 'z', 1);
          const ids = async (prefix: string, page: { after?: string; limit?: number }) =>
            (await store.listTimers('a', prefix, page)).map((t) => t.id);
          expect(await ids('x[', { limit: 3 })).toEqual(['x[0]', 'x[1]', 'x[2]']);
          expect(await ids('x[', { after: 'x[2]', limit: 3 })).toEqual(['x[3]', 'x[4]', 'x[5]']);
          // The last page stops at the prefix's end, before the other timers and the instance's other records.
          expect(await ids('x[', { after: 'x[5]', limit: 3 })).toEqual(['x[6]']);
          expect(await ids('x[', { after: 'x[6]', limit: 3 })).toEqual([]);
          // An id that is not a timer's, or sorts before the prefix, is a place in the order all the same.
          expect(await ids('x[', { after: 'x[3]zz', limit: 2 })).toEqual(['x[4]', 'x[5]']);
          expect(await ids('x[', { after: 'a', limit: 2 })).toEqual(['x[0]', 'x[1]']);
          expect(await ids('', { after: 'x[6]' })).toEqual(['y[0]']);
          expect(await ids('', { after: 'y[0]' })).toEqual([]);
        });
      });

      it('listTimers reads by prefix, per instance; due lists timers with snapshots and watched entries', async () => {
        await withStore(async (store) => {
          await store.create(snapshot('a', { dueAt: 200 }), null, []);
          await store.create(snapshot('ab'), null, []);
          // Enough timers to land in every partition a store may spread them over.
          for (let i = 0; i < 20; i++) await store.putTimer('a', timer(`x[${i}]`, 1_000 + i, i));
          await store.putTimer('a', timer('y[0]', 50));
          await store.putTimer('ab', timer('x[0]', 60));
          expect((await store.listTimers('a', 'x[')).map((t) => t.id)).toEqual(
            Array.from({ length: 20 }, (_, i) => `x[${i}]`).sort(),
          );
          expect(await store.listTimers('a', 'y')).toEqual([timer('y[0]', 50)]);
          expect(await store.listTimers('ab', '')).toEqual([timer('x[0]', 60)]);
          expect(await store.listTimers('nope', '')).toEqual([]);
          expect(await store.due(1_005, 5)).toEqual([
            { instanceId: 'a', dueAt: 50, timer: 'y[0]' },
            { instanceId: 'ab', dueAt: 60, timer: 'x[0]' },
            { instanceId: 'a', dueAt: 200 },
            { instanceId: 'a', dueAt: 1_000, timer: 'x[0]' },
            { instanceId: 'a', dueAt: 1_001, timer: 'x[1]' },
          ]);
          // Not among the purges: a timer is live work.
          expect(await store.duePurges(5_000, 50)).toEqual([]);
        });
      });

      it("a retry's timer keeps the task, the attempt and the failure before it", async () => {
        await withStore(async (store) => {
          await store.create(snapshot('a'), null, []);
          const retry = {
            task: 'items[3]/call',
            attempt: 2,
            failedAt: 90,
            worker: 'w1',
            error: { name: 'Error', message: 'rate limited: ü' },
          };
          const t = { id: 'items[3]/call#2', dueAt: 100, parent: 'items', item: 3, retry };
          expect(await store.putTimer('a', t)).toBe('created');
          expect(await store.listTimers('a', 'items[3]/call#')).toEqual([t]);
          await store.fireTimer('a', t.id, 120);
          expect(await store.listTimers('a', 'items[3]/')).toEqual([{ ...t, firedAt: 120 }]);
        });
      });

      it('getTimers reads timers by id, fired or not, sorted by id; unknown ids and other instances are left out', async () => {
        await withStore(async (store) => {
          await store.create(snapshot('a'), null, []);
          for (let i = 0; i < 120; i++) await store.putTimer('a', timer(`d[${i}]`, 100 + i, i));
          await store.putTimer('b', timer('d[0]', 5));
          await store.fireTimer('a', 'd[7]', 300);
          const ids = Array.from({ length: 120 }, (_, i) => `d[${i}]`);
          const all = await store.getTimers('a', [...ids, 'd[7]', 'nope']);
          expect(all.map((t) => t.id)).toEqual([...ids].sort());
          expect(all.find((t) => t.id === 'd[7]')).toEqual({ ...timer('d[7]', 107, 7), firedAt: 300 });
          expect(await store.getTimers('a', ['d[3]'])).toEqual([timer('d[3]', 103, 3)]);
          expect(await store.getTimers('a', [])).toEqual([]);
          expect(await store.getTimers('nope', ['d[0]'])).toEqual([]);
        });
      });

      it('of puts racing for one timer, exactly one is created', async () => {
        await withStore(async (store) => {
          await store.create(snapshot('a'), null, []);
          const outcomes = await Promise.all(
            Array.from({ length: 8 }, (_, i) => store.putTimer('a', timer('d[0]', 100 + i))),
          );
          expect(outcomes.filter((o) => o === 'created')).toHaveLength(1);
          expect(await store.listTimers('a', '')).toHaveLength(1);
        });
      });
    });

    describe('list', () => {
      it('pages through every instance exactly once, newest first, and filters by status', async () => {
        await withStore(async (store) => {
          const times = [5, 1, 7, 3, 6, 2, 4];
          for (const t of times) {
            await store.create(snapshot(`i${t}`, { createdAt: t * 1_000, updatedAt: t * 1_000 }), t, []);
          }
          await store.create(snapshot('other', { workflow: 'invoices', createdAt: 9_000 }), null, []);
          for (const t of [2, 5, 7]) {
            const s = (await store.get(`i${t}`))!;
            expect(await store.compact(at(s, 1, { status: 'COMPLETED', updatedAt: s.updatedAt + 10 }))).toBe(true);
          }

          expect(await listAll(store, { workflow: 'orders', limit: 3 })).toEqual([
            'i7',
            'i6',
            'i5',
            'i4',
            'i3',
            'i2',
            'i1',
          ]);
          expect(await listAll(store, { workflow: 'orders', limit: 1 })).toHaveLength(7);
          expect((await store.list({ workflow: 'orders', status: 'COMPLETED' })).items).toEqual([
            { instanceId: 'i7', workflow: 'orders', status: 'COMPLETED', createdAt: 7_000, updatedAt: 7_010 },
            { instanceId: 'i5', workflow: 'orders', status: 'COMPLETED', createdAt: 5_000, updatedAt: 5_010 },
            { instanceId: 'i2', workflow: 'orders', status: 'COMPLETED', createdAt: 2_000, updatedAt: 2_010 },
          ]);
          expect(await listAll(store, { workflow: 'orders', status: 'RUNNING', limit: 2 })).toEqual([
            'i6',
            'i4',
            'i3',
            'i1',
          ]);
          expect((await store.list({ workflow: 'orders', status: 'FAILED' })).items).toEqual([]);
          expect((await store.list({ workflow: 'invoices' })).items.map((i) => i.instanceId)).toEqual(['other']);
          expect((await store.list({ workflow: 'nothing' })).items).toEqual([]);
        });
      });

      it('returns at most 50 instances when no limit is given', async () => {
        await withStore(async (store) => {
          for (let i = 0; i < 52; i++) await store.create(snapshot(`i${i}`, { createdAt: 1_000 + i }), null, []);
          const first = await store.list({ workflow: 'orders' });
          expect(first.items).toHaveLength(50);
          expect(first.items[0]?.instanceId).toBe('i51');
          expect(first.cursor).toBeTypeOf('string');
          const rest = await store.list({ workflow: 'orders', cursor: first.cursor as string });
          expect(rest.items.map((i) => i.instanceId)).toEqual(['i1', 'i0']);
        });
      });
    });

    describe('readHistory', () => {
      /** Instance `a`: its creation, then entries with no history line, three, and one; compacted at `compactedAt`. */
      const threeEntries = async (store: InstanceStore, compactedAt: number) => {
        const s = snapshot('a');
        await store.create(s, null, CREATION);
        await store.append('a', entry(1, { history: [] }));
        await store.append('a', entry(2, { history: [line('2a', 2), line('2b', 2), line('2c', 2)] }));
        await store.append('a', entry(3));
        await store.compact(at(s, compactedAt));
      };

      it("returns the creation's entries, then each journal entry's history in seq order", async () => {
        await withStore(async (store) => {
          await threeEntries(store, 2);

          expect((await store.readHistory('a')).entries).toEqual([
            ...CREATION,
            line('2a', 2),
            line('2b', 2),
            line('2c', 2),
            line('e3', 3),
          ]);
        });
      });

      it('pages with the cursor at every page size, including boundaries inside one entry history', async () => {
        await withStore(async (store) => {
          await store.create(snapshot('a'), null, CREATION);
          const all: HistoryEntry[] = [...CREATION];
          for (let seq = 1; seq <= 6; seq++) {
            // 0, 1, 2, 3, 0, 1 lines: empty entries, and lists longer than a small page.
            const history = Array.from({ length: (seq - 1) % 4 }, (_, i) => line(`e${seq}.${i}`, seq));
            await store.append('a', entry(seq, { history }));
            all.push(...history);
          }
          expect(all).toHaveLength(2 + 0 + 1 + 2 + 3 + 0 + 1);

          for (let limit = 1; limit <= all.length + 1; limit++) {
            const pages = await historyPages(store, 'a', limit);
            expect(pages.flat(), `limit ${limit}`).toEqual(all);
            for (const page of pages.slice(0, -1)) expect(page, `limit ${limit}`).toHaveLength(limit);
            expect(pages.at(-1)!.length, `limit ${limit}`).toBeLessThanOrEqual(limit);
          }
        });
      });

      it('starts after a journal entry (afterSeq): only what followed it, paged as from the start', async () => {
        await withStore(async (store) => {
          await threeEntries(store, 1);
          const keys = async (afterSeq: number, limit?: number) => {
            const seen: (string | undefined)[] = [];
            let page = await store.readHistory('a', { afterSeq, ...(limit ? { limit } : {}) });
            seen.push(...page.entries.map((e) => e.key));
            while (page.cursor !== undefined) {
              page = await store.readHistory('a', { cursor: page.cursor, ...(limit ? { limit } : {}) });
              seen.push(...page.entries.map((e) => e.key));
            }
            return seen;
          };
          expect(await keys(0)).toEqual(['2a', '2b', '2c', 'e3']);
          expect(await keys(1)).toEqual(['2a', '2b', '2c', 'e3']);
          expect(await keys(1, 2)).toEqual(['2a', '2b', '2c', 'e3']);
          expect(await keys(2)).toEqual(['e3']);
          expect(await keys(3)).toEqual([]);
          expect(await keys(99)).toEqual([]);
        });
      });

      it('reads a long history in one call and refuses a cursor it did not hand out', async () => {
        await withStore(async (store) => {
          await store.create(snapshot('a'), null, CREATION);
          for (let seq = 1; seq <= 130; seq++) await store.append('a', entry(seq));
          const read = await store.readHistory('a');
          expect(read.entries).toHaveLength(132);
          expect(read.entries.slice(2).map((e) => e.key)).toEqual(Array.from({ length: 130 }, (_, i) => `e${i + 1}`));
          await expect(store.readHistory('a', { cursor: 'garbage' })).rejects.toBeInstanceOf(InvalidCursorError);
        });
      });

      it('an entry is in the history if and only if it is in the journal', async () => {
        await withStore(async (store) => {
          await store.create(snapshot('a'), null, CREATION);
          // A race at every seq: only the winners' lines show up, once each.
          for (let seq = 1; seq <= 4; seq++) {
            await Promise.allSettled(
              ['x', 'y', 'z'].map((w) => store.append('a', entry(seq, { history: [line(`${w}${seq}`, seq)] }))),
            );
          }
          await store.append('a', entry(5, { history: [line('a5', 5), line('b5', 5)] }));
          await expect(store.append('a', entry(5, { history: [line('late5', 5)] }))).rejects.toBeInstanceOf(
            JournalConflictError,
          );

          const journal = await store.readJournal('a', 0);
          expect(journal.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5]);
          const pages = await historyPages(store, 'a', 3);
          expect(pages.flat()).toEqual([...CREATION, ...journal.flatMap((e) => e.history)]);
          expect(pages.flat().map((e) => e.key)).not.toContain('late5');
        });
      });
    });

    describe('purge', () => {
      /** An instance with every kind of record: a compacted snapshot with a due time, 30 entries (one watched), values, counters, lane timers (one fired). */
      async function fill(store: ContractStore, id: string): Promise<void> {
        await store.create(snapshot(id, { dueAt: 500 }), { input: id }, CREATION);
        for (let seq = 1; seq <= 30; seq++) {
          await store.append(
            id,
            entry(seq, { value: { data: `${id} out ${seq}` }, ...(seq === 30 ? { watchAt: 600 } : {}) }),
          );
        }
        expect(await store.compact(at((await store.get(id))!, 20, { status: 'COMPLETED', dueAt: 500 }))).toBe(true);
        for (let n = 0; n < 3; n++) expect(await store.putValue(id, `out:m[${n}]`, `${id} item ${n}`)).toBe('created');
        expect(await store.addToCounter(id, 'done', 3)).toBe(3);
        expect(await store.addToCounter(id, 'other', 1)).toBe(1);
        expect(await store.putTimer(id, { id: 'd[0]', dueAt: 700, parent: 'm', item: 0 })).toBe('created');
        expect(await store.putTimer(id, { id: 'd[1]', dueAt: 100, parent: 'm', item: 1 })).toBe('created');
        await store.fireTimer(id, 'd[1]', 150);
      }

      /** Everything the port reads back of an instance. */
      async function everything(store: ContractStore, id: string) {
        return {
          loaded: await store.load(id),
          journal: await store.readJournal(id, 0),
          values: await store.getValues(id, [`input:${id}-n1`, 'j:1', 'j:30', 'out:m[0]', 'out:m[2]']),
          valueIds: await store.listValueIds(id, 'out:'),
          counters: [await store.getCounter(id, 'done'), await store.getCounter(id, 'other')],
          timers: await store.listTimers(id, ''),
          history: (await store.readHistory(id)).entries,
        };
      }

      it('deletes the journal, values, counters, lane timers and snapshot of the instance, and of no other', async () => {
        await withStore(async (store) => {
          await fill(store, 'a');
          await fill(store, 'b');
          const before = await everything(store, 'b');
          expect(before.journal).toHaveLength(30);
          expect(before.history).toHaveLength(CREATION.length + 30);

          await store.purge('a');

          expect(await store.load('a')).toBeUndefined();
          expect(await store.get('a')).toBeUndefined();
          expect(await store.readJournal('a', 0)).toEqual([]);
          for (const id of ['input:a-n1', 'j:1', 'j:30', 'out:m[0]']) {
            const err = await thrown(store.getValues('a', [id]));
            expect(err, id).toBeInstanceOf(ValueMissingError);
          }
          expect(await store.listValueIds('a', '')).toEqual([]);
          expect(await store.getCounter('a', 'done')).toBe(0);
          expect(await store.getCounter('a', 'other')).toBe(0);
          expect(await store.listTimers('a', '')).toEqual([]);
          expect(await store.readHistory('a')).toEqual({ entries: [] });
          expect(await listAll(store, { workflow: 'orders', limit: 10 })).toEqual(['b']);
          expect(await listAll(store, { workflow: 'orders', status: 'COMPLETED', limit: 10 })).toEqual(['b']);
          // b's watched entry and its timer are live work; its finished snapshot's due time is its purge.
          expect((await store.due(1_000, 10)).map((d) => d.timer ?? d.watched)).toEqual([30, 'd[0]']);
          expect(new Set((await store.due(1_000, 10)).map((d) => d.instanceId))).toEqual(new Set(['b']));
          expect((await store.duePurges(1_000, 10)).map((d) => d.instanceId)).toEqual(['b']);

          expect(await everything(store, 'b')).toEqual(before);
        });
      });

      it('is idempotent: purging an unknown instance, or one twice, resolves and changes nothing else', async () => {
        await withStore(async (store) => {
          await fill(store, 'a');
          await fill(store, 'b');
          const before = await everything(store, 'b');
          await expect(store.purge('nope')).resolves.toBeUndefined();
          await store.purge('a');
          await expect(store.purge('a')).resolves.toBeUndefined();
          expect(await store.get('a')).toBeUndefined();
          expect(await everything(store, 'b')).toEqual(before);
        });
      });

      it('an instance whose id extends another is not purged with it', async () => {
        await withStore(async (store) => {
          await fill(store, 'a');
          await fill(store, 'a1');
          const before = await everything(store, 'a1');
          await store.purge('a');
          expect(await store.get('a')).toBeUndefined();
          expect(await everything(store, 'a1')).toEqual(before);
        });
      });
    });

    describe('payload limits', () => {
      const max = options.maxItemBytes;
      if (max === undefined) {
        it.todo(`${name} enforces no item size limit: the payload-limit tests do not apply yet`);
        return;
      }
      // Two-byte characters: under the limit in characters, over it in UTF-8 bytes.
      const oversized = 'é'.repeat(Math.ceil(max / 2) + 10_000);

      function expectTooLarge(err: unknown): void {
        expect(err).toBeInstanceOf(PayloadTooLargeError);
        expect((err as PayloadTooLargeError).limit).toBe(max);
        expect((err as PayloadTooLargeError).bytes).toBeGreaterThan(max as number);
      }

      it('an oversized input fails create with PayloadTooLargeError and creates nothing', async () => {
        await withStore(async (store) => {
          const s = snapshot('a', { dueAt: 10 });
          expectTooLarge(await thrown(store.create(s, { blob: oversized }, CREATION)));
          expect(await store.load('a')).toBeUndefined();
          expect(await store.get('a')).toBeUndefined();
          await expect(store.getValues('a', [s.inputId])).rejects.toBeInstanceOf(ValueMissingError);
          expect((await store.list({ workflow: 'orders' })).items).toEqual([]);
          expect((await store.readHistory('a')).entries).toEqual([]);
          expect(await store.due(1_000, 10)).toEqual([]);
          // The id is still free.
          await store.create(s, 'small', CREATION);
          expect((await store.load('a'))?.values.get(s.inputId)).toBe('small');
        });
      });

      it('an oversized journal payload fails append with PayloadTooLargeError and writes nothing', async () => {
        await withStore(async (store) => {
          await store.create(snapshot('a'), null, CREATION);
          expectTooLarge(await thrown(store.append('a', entry(1, { value: { data: oversized }, watchAt: 5 }))));
          expect(await store.readJournal('a', 0)).toEqual([]);
          expect((await store.readHistory('a')).entries).toEqual(CREATION);
          await expect(store.getValues('a', ['j:1'])).rejects.toBeInstanceOf(ValueMissingError);
          expect(await store.due(1_000, 10)).toEqual([]);
          // The seq is still free.
          await store.append('a', entry(1, { value: { data: 'small' } }));
          expect((await store.load('a'))?.tail).toEqual([entry(1, { value: { data: 'small' } })]);
        });
      });

      it('an oversized value fails putValue with PayloadTooLargeError and writes nothing; just under fits', async () => {
        await withStore(async (store) => {
          expectTooLarge(await thrown(store.putValue('a', 'out:big', oversized)));
          await expect(store.getValues('a', ['out:big'])).rejects.toBeInstanceOf(ValueMissingError);
          expect(await store.putValue('a', 'out:big', 'small')).toBe('created');

          const fits = 'x'.repeat(max - 1_000);
          expect(await store.putValue('a', 'out:fits', fits)).toBe('created');
          expect((await store.getValues('a', ['out:fits'])).get('out:fits')).toBe(fits);
        });
      });
    });

    describe('payload offload', () => {
      const openWithObjects = options.openWithObjects;
      if (openWithObjects === undefined) {
        it.todo(`${name} cannot offload payloads to an object store`);
        return;
      }
      const big = (tag: string) => ({ tag, blob: 'x'.repeat(40_000) });

      const opener = openWithObjects;
      async function withObjects(body: (store: ContractStore, objects: MemoryObjectStore) => Promise<void>) {
        const objects = new MemoryObjectStore();
        const { store, close } = await opener(objects);
        try {
          await body(store, objects);
        } finally {
          await close();
        }
      }

      it('a value over 16 KiB goes to the object store under the instance, and reads back by getValues', async () => {
        await withObjects(async (store, objects) => {
          await store.create(snapshot('a'), big('input'), CREATION);
          await store.append('a', entry(1, { value: { data: big('j1') } }));
          expect(await store.putValue('a', 'out:x', big('x'))).toBe('created');
          await store.append('a', entry(2, { value: { data: 'small' } }));
          const keys = objects.keys();
          expect(keys).toHaveLength(3);
          for (const key of keys) expect(key.startsWith('a/')).toBe(true);
          expect(await store.getValues('a', ['input:a-n1', 'j:1', 'out:x', 'j:2'])).toEqual(
            new Map<string, unknown>([
              ['input:a-n1', big('input')],
              ['j:1', big('j1')],
              ['out:x', big('x')],
              ['j:2', 'small'],
            ]),
          );
          // An inline payload comes with the load; an offloaded one may be left to getValues.
          const loaded = await store.load('a');
          expect(loaded?.values.get('j:2')).toBe('small');
          expect(loaded?.tail.map((e) => e.seq)).toEqual([1, 2]);
        });
      });

      it('of two appends racing for one seq with offloaded payloads, the committed reference reads the winner', async () => {
        await withObjects(async (store, objects) => {
          await store.create(snapshot('a'), null, CREATION);
          const results = await Promise.allSettled(
            ['first', 'second', 'third'].map((tag) => store.append('a', entry(1, { value: { data: big(tag) } }))),
          );
          const won = results.flatMap((r, n) => (r.status === 'fulfilled' ? [n] : []));
          expect(won).toHaveLength(1);
          // Every writer uploaded before its conditional write (a crash between the two leaves an orphan, never a mix).
          expect(objects.keys()).toHaveLength(3);
          const winner = ['first', 'second', 'third'][won[0]!] as string;
          expect((await store.getValues('a', ['j:1'])).get('j:1')).toEqual(big(winner));
        });
      });

      it("purge deletes the instance's offloaded objects, and no other instance's", async () => {
        await withObjects(async (store, objects) => {
          for (const id of ['a', 'a1']) {
            await store.create(snapshot(id), big(`${id} input`), CREATION);
            await store.append(id, entry(1, { value: { data: big(`${id} j1`) } }));
            expect(await store.putValue(id, 'out:x', big(`${id} x`))).toBe('created');
          }
          expect(objects.keys()).toHaveLength(6);
          await store.purge('a');
          expect(objects.keys()).toHaveLength(3);
          for (const key of objects.keys()) expect(key.startsWith('a1/')).toBe(true);
          expect(await store.get('a')).toBeUndefined();
          expect((await store.getValues('a1', ['input:a1-n1', 'j:1', 'out:x'])).get('out:x')).toEqual(big('a1 x'));
          await store.purge('a');
          expect(objects.keys()).toHaveLength(3);
        });
      });

      it('a purge cut short before the snapshot leaves the instance on the due index, and the next purge finishes it', async () => {
        const objects = new MemoryObjectStore();
        let failures = 1;
        const flaky: ObjectStore = {
          put: (key, body) => objects.put(key, body),
          get: (key) => objects.get(key),
          delete: (key) => objects.delete(key),
          deleteFolder: async (segment) => {
            if (failures-- > 0) throw new Error('throttled');
            return objects.deleteFolder(segment);
          },
        };
        const { store, close } = await opener(flaky);
        try {
          const s = snapshot('a');
          await store.create(s, big('input'), CREATION);
          await store.append('a', entry(1, { value: { data: big('j1') } }));
          // Finished, its retention ended at 500: the reaper's purge finds it there.
          expect(await store.compact(at(s, 1, { status: 'COMPLETED', dueAt: 500 }))).toBe(true);
          await expect(store.purge('a')).rejects.toThrow('throttled');
          expect((await store.get('a'))?.instanceId).toBe('a');
          expect(await store.duePurges(1_000, 10)).toEqual([{ instanceId: 'a', dueAt: 500 }]);
          expect(objects.keys()).toHaveLength(2);

          await store.purge('a');
          expect(await store.get('a')).toBeUndefined();
          expect(await store.duePurges(1_000, 10)).toEqual([]);
          expect(objects.keys()).toEqual([]);
        } finally {
          await close();
        }
      });

      it('putValue racing with offloaded values: the first writer wins, a later one gets exists and reads the first', async () => {
        await withObjects(async (store) => {
          expect(await store.putValue('a', 'out:m[0]', big('one'))).toBe('created');
          expect(await store.putValue('a', 'out:m[0]', big('two'))).toBe('exists');
          expect((await store.getValues('a', ['out:m[0]'])).get('out:m[0]')).toEqual(big('one'));
        });
      });
    });
  });
}
