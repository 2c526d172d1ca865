import type { SayiirClient } from '../../shared/client/client.ts';
import type { InstanceSummaryView } from '../../shared/client/index.ts';

/** Runs shown per page of the runs table. */
export const PAGE_SIZE = 20;

/**
 * The runs of several workflows as one list, newest first: each workflow's
 * listing is read page by page (the API lists per workflow, newest first),
 * and the heads merged. Runs outside the time range are dropped; past the
 * range's start a workflow's listing is done.
 */
export class MergedRuns {
  private readonly sources: { workflow: string; items: InstanceSummaryView[]; cursor?: string; done: boolean }[];

  constructor(
    private readonly client: SayiirClient,
    workflows: readonly string[],
    private readonly status: string,
    private readonly from: number | undefined,
    private readonly to: number | undefined,
  ) {
    this.sources = workflows.map((workflow) => ({ workflow, items: [], done: false }));
  }

  private async fill(s: MergedRuns['sources'][number]): Promise<void> {
    while (!s.done && s.items.length === 0) {
      const page = await this.client.page<InstanceSummaryView>(
        `/workflows/${encodeURIComponent(s.workflow)}/instances`,
        {
          limit: String(PAGE_SIZE),
          ...(this.status ? { status: this.status } : {}),
          ...(s.cursor ? { cursor: s.cursor } : {}),
        },
      );
      for (const item of page.items) {
        const at = Date.parse(item.createdAt);
        if (this.from !== undefined && at < this.from) {
          s.done = true;
          break;
        }
        if (this.to === undefined || at <= this.to) s.items.push(item);
      }
      if (page.cursor) s.cursor = page.cursor;
      else s.done = true;
    }
  }

  /** The next `n` runs (fewer at the end); `more` tells whether any are left. */
  async take(n: number): Promise<{ items: InstanceSummaryView[]; more: boolean }> {
    const items: InstanceSummaryView[] = [];
    while (items.length < n) {
      await Promise.all(this.sources.map((s) => this.fill(s)));
      let best: (typeof this.sources)[number] | undefined;
      for (const s of this.sources) {
        const head = s.items[0];
        if (head && (!best?.items[0] || head.createdAt > best.items[0].createdAt)) best = s;
      }
      const next = best?.items.shift();
      if (!next) break;
      items.push(next);
    }
    await Promise.all(this.sources.map((s) => this.fill(s)));
    return { items, more: this.sources.some((s) => s.items.length > 0) };
  }
}
