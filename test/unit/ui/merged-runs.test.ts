import { describe, expect, it } from 'vitest';
import type { SayiirClient } from '../../../shared/client/client.ts';
import type { InstanceSummaryView } from '../../../shared/client/index.ts';
import { MergedRuns } from '../../../ui/src/merged-runs.ts';

/** A client whose listing pages come from arrays, two runs a page, and which counts its page reads. */
function fakeClient(runs: Record<string, InstanceSummaryView[]>) {
  const reads: string[] = [];
  const client = {
    async page(path: string, query: Record<string, string>) {
      const workflow = decodeURIComponent(path.split('/')[2] ?? '');
      reads.push(workflow);
      const all = (runs[workflow] ?? []).filter((r) => !query.status || r.status === query.status);
      const from = Number(query.cursor ?? 0);
      const items = all.slice(from, from + 2);
      return { items, ...(from + 2 < all.length ? { cursor: String(from + 2) } : {}) };
    },
  };
  return { client: client as unknown as SayiirClient, reads };
}

const at = (workflow: string, minute: number, status = 'COMPLETED'): InstanceSummaryView => ({
  instanceId: `${workflow}-${minute}`,
  workflow,
  status: status as InstanceSummaryView['status'],
  createdAt: new Date(Date.UTC(2026, 0, 1, 0, minute)).toISOString(),
  updatedAt: new Date(Date.UTC(2026, 0, 1, 0, minute)).toISOString(),
});

describe('runs of several workflows as one list', () => {
  const runs = {
    a: [at('a', 9), at('a', 5), at('a', 4, 'FAILED'), at('a', 1)],
    b: [at('b', 8, 'FAILED'), at('b', 7), at('b', 2)],
  };

  it('merges each workflow’s newest-first pages into one newest-first list, page after page', async () => {
    const { client } = fakeClient(runs);
    const merged = new MergedRuns(client, ['a', 'b'], '', undefined, undefined);
    const first = await merged.take(3);
    expect(first.items.map((r) => r.instanceId)).toEqual(['a-9', 'b-8', 'b-7']);
    expect(first.more).toBe(true);
    const rest = await merged.take(10);
    expect(rest.items.map((r) => r.instanceId)).toEqual(['a-5', 'a-4', 'b-2', 'a-1']);
    expect(rest.more).toBe(false);
  });

  it('passes the status filter to every listing', async () => {
    const { client } = fakeClient(runs);
    const failed = await new MergedRuns(client, ['a', 'b'], 'FAILED', undefined, undefined).take(10);
    expect(failed.items.map((r) => r.instanceId)).toEqual(['b-8', 'a-4']);
  });

  it('keeps the time range, and stops reading a listing once past its start', async () => {
    const { client, reads } = fakeClient(runs);
    const from = Date.UTC(2026, 0, 1, 0, 5);
    const to = Date.UTC(2026, 0, 1, 0, 8);
    const inRange = await new MergedRuns(client, ['a', 'b'], '', from, to).take(10);
    expect(inRange.items.map((r) => r.instanceId)).toEqual(['b-8', 'b-7', 'a-5']);
    expect(reads.filter((w) => w === 'a')).toHaveLength(2);
  });
});
