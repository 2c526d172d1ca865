import { branch, flow, LoopResult, task } from '../../shared/index.ts';

/** Workflows the browser tests add to the examples. */

/** Whether `flaky`'s task fails; the test mends it before retrying from the UI. */
export const downstream = { broken: true };

/** One task that fails while {@link downstream} is broken (two attempts, then the run fails). */
export const flaky = flow<{ n: number }>('flaky', { description: 'Calls a downstream service that may be down.' })
  .then(
    'call-downstream',
    (input: { n: number }) => {
      if (downstream.broken) throw new Error('downstream unavailable (503)');
      return { called: true, n: input.n };
    },
    { retry: { maxAttempts: 2, initialDelay: '100ms', maxDelay: '100ms' } },
  )
  .build();

const resize = flow<string>('resize-one')
  .then('fetch', (url: string) => ({ url, bytes: 1024 }))
  .then('shrink', (img: { url: string; bytes: number }) => ({ url: img.url, bytes: img.bytes / 4 }), { pool: 'media' })
  .build();

const notify = flow<{ ok: boolean }>('notify')
  .then('render', () => ({ body: 'done' }))
  .then('send', (m: { body: string }) => ({ sent: m.body }), { priority: 'low' })
  .build();

/** Every kind of step, for the DAG page: fork/join, map over a flow, route, loop, child flow, delay, signal, pools, priorities. */
export const showcase = flow<{ urls: string[]; vip: boolean }>('showcase', {
  description: 'Every kind of step, to show how the UI draws them.',
})
  .then('validate', (o: { urls: string[]; vip: boolean }) => o, { priority: 'high' })
  .fork([branch('audit', (o: unknown) => ({ audited: o !== null })), branch('quota', () => ({ ok: true }))])
  .join('checked', ([a, q]) => ({ ok: a.audited && q.ok, urls: ['a', 'b'] }))
  .map('thumbnails', (c: { urls: string[] }) => c.urls, resize, { maxConcurrency: 4 })
  .route((r: unknown[]) => (r.length > 1 ? 'many' : 'one'), ['many', 'one'] as const, { id: 'size' })
  .branch(
    'many',
    task('zip', () => ({ zipped: true }), { pool: 'media' }),
  )
  .defaultBranch('single', () => ({ zipped: false }))
  .done()
  .loop((n: unknown) => LoopResult.done(n), { id: 'poll-cdn', maxIterations: 5 })
  .delay('settle', '30s')
  .waitForSignal<{ ok: boolean }>('review', 'reviewed', { timeout: '24h' })
  .thenFlow(notify)
  .build();

/**
 * A map whose items run in lanes: an even item rests an hour between two
 * tasks (a lane timer), an odd item's first call fails once and is retried
 * in its lane an hour later (a lane timer holding the failure).
 */
export const batch = flow<number>('batch', { description: 'Items that wait in their lanes: delays and retries.' })
  .map(
    'items',
    (n: number) => Array.from({ length: n }, (_, i) => i),
    flow<number>('batch-item')
      .then(
        task(
          'call',
          (x: number, ctx) => {
            if (x % 2 === 1 && ctx.attempt === 1) throw new Error(`item ${x}: rate limited (429)`);
            return x;
          },
          { retry: { maxAttempts: 3, initialDelay: '1h', jitter: 'none' } },
        ),
      )
      .delay('rest', '1h')
      .then('store', (x: number) => x)
      .build(),
  )
  .build();
