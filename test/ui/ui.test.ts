import { mkdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalStack, startLocalStack } from '../../local/stack.ts';
import { SayiirClient } from '../../shared/client/client.ts';
import { buildUi } from '../../ui/build.ts';
import { workflows as examples } from '../../workflows/index.ts';
import { launchChromium } from './support/browser.ts';
import { batch, downstream, flaky, showcase } from './workflows.ts';

/**
 * The web UI in a real headless Chromium, against the local stack: the same
 * API, gateway and workers as `npm start`. Screenshots go to a temporary
 * folder, or to `docs/ui` with SAYIIR_UI_SCREENSHOTS=docs/ui (what
 * `npm run docs:ui` does).
 */

const SHOTS = process.env.SAYIIR_UI_SCREENSHOTS ?? join(tmpdir(), 'sayiir-ui-shots');
/** How long a step of the UI may take to show what the test waits for (not a timing assertion). */
const SEEN_WITHIN = { timeout: 20_000 };

describe('the web UI in headless Chromium', () => {
  let dir: string;
  let stack: LocalStack;
  let browser: Browser;
  let context: BrowserContext;
  let api: SayiirClient;
  const consoleErrors: string[] = [];

  beforeAll(async () => {
    buildUi();
    mkdirSync(SHOTS, { recursive: true });
    browser = await launchChromium();
    dir = await mkdtemp(join(tmpdir(), 'sayiir-ui-'));
    stack = await startLocalStack({
      dataDir: dir,
      workflows: [...examples, flaky, showcase, batch],
      reaperIntervalMs: 200,
    });
    api = new SayiirClient({ url: stack.url, apiKey: stack.apiKey });
    context = await browser.newContext({ viewport: { width: 1280, height: 800 }, timezoneId: 'Asia/Tokyo' });
  });

  afterAll(async () => {
    await context?.close();
    await browser?.close();
    await stack?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** A page signed in with the stack's key (the key goes in through the form, as a user types it). */
  async function signedIn(hash = '#/runs'): Promise<Page> {
    const page = await context.newPage();
    page.on('console', (m) => {
      if (m.type() === 'error' && !/status of 4\d\d/.test(m.text())) consoleErrors.push(m.text());
    });
    await page.goto(`${stack.url}/ui${hash}`);
    await page.getByLabel('API key', { exact: true }).fill(stack.apiKey);
    await page.getByRole('button', { name: 'Open' }).click();
    await page.getByRole('navigation', { name: 'Main' }).waitFor();
    return page;
  }

  const shot = (page: Page, name: string, fullPage = false) =>
    page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage });

  const node = (page: Page, qid: string): Locator => page.locator(`g.node[data-node="${qid}"]`);

  it('a wrong key shows a clear message and no data', async () => {
    const page = await context.newPage();
    await page.goto(`${stack.url}/ui`);
    await page.getByLabel('API key', { exact: true }).fill('sk_not_a_key');
    await page.getByRole('button', { name: 'Open' }).click();
    await expect.poll(() => page.getByRole('alert').textContent(), SEEN_WITHIN).toContain('refused this key (401)');
    expect(await page.locator('table').count()).toBe(0);
    expect(await page.getByRole('navigation', { name: 'Main' }).count()).toBe(0);
    expect(await page.locator('body').textContent()).not.toContain('fulfil');
    expect(await page.evaluate("sessionStorage.getItem('sayiir.apiKey')")).toBeNull();
    await shot(page, 'wrong-key');
    await page.close();
  });

  it('lists the workflows with how long their finished runs are kept', async () => {
    const page = await signedIn('#/workflows');
    const row = page.locator('table.workflows tbody tr', { hasText: 'hello' });
    await row.waitFor(SEEN_WITHIN);
    expect(await row.locator('td').last().textContent()).toBe('90 days');
    await page.close();
  });

  it('draws a DAG with forks, joins, maps, routes, loops, child flows, delays, signals, pools and priorities', async () => {
    const page = await signedIn('#/workflows/showcase');
    await node(page, 'thumbnails').waitFor(SEEN_WITHIN);
    const texts = await page.locator('svg.dag').textContent();
    for (const expected of [
      'fork',
      'join',
      'map items',
      'each item of thumbnails',
      'route',
      'many',
      'otherwise',
      'loop ≤ 5×',
      'child flow notify',
      'delay 30s',
      "waits for signal 'reviewed'",
      'pool media',
      'high priority',
      'low priority',
    ]) {
      expect(texts).toContain(expected);
    }
    // Map bodies and child flows are keyed as the engine keys their tasks.
    expect(await node(page, 'thumbnails[]/shrink').count()).toBe(1);
    expect(await node(page, 'notify/send').count()).toBe(1);
    await shot(page, 'workflow-dag', true);
    await page.close();
  });

  it('starts fulfil, watches its DAG run then wait for the signal, sends the signal from the UI, sees it complete', async () => {
    const page = await signedIn('#/workflows/fulfil');
    // Three refusals of the payment provider keep the run busy for a while before the cool-off and the wait.
    await page.getByLabel('Input (JSON)').fill(
      JSON.stringify({
        orderId: 'o-ui-1',
        customer: 'ada',
        items: [{ sku: 'a', qty: 2, price: 5 }],
        flakyPayments: 3,
      }),
    );
    await page.getByLabel('Instance id (optional)').fill('order-ui-1');
    const historyReads: string[] = [];
    page.on('request', (r) => {
      if (r.url().includes('/instances/order-ui-1/history')) historyReads.push(r.url());
    });
    await page.getByRole('button', { name: 'Start' }).click();
    await page.waitForURL(/#\/runs\/order-ui-1$/);

    // While it runs: some step is running, retrying or on its timer, and the run waits for no signal yet.
    await page
      .locator('g.node.state-running, g.node.state-retrying, g.node.state-waiting-timer')
      .first()
      .waitFor(SEEN_WITHIN);
    expect(await page.locator('h1 .status').textContent()).toContain('RUNNING');
    expect(await node(page, 'approve').getAttribute('data-state')).toBe('pending');

    // Then it waits for the signal, and only for it.
    await page.locator('g.node[data-node="approve"][data-state="waiting-signal"]').waitFor(SEEN_WITHIN);
    expect(await node(page, 'charge').getAttribute('data-state')).toBe('completed');
    expect(await node(page, 'charge').textContent()).toContain('attempt 4');
    expect(await page.locator('.waiting-for').textContent()).toContain("'manager-approval'");
    // A step's values are read when it is selected: charge's output, and the run's input.
    await node(page, 'charge').click();
    await page.getByRole('heading', { name: 'Output of charge' }).waitFor(SEEN_WITHIN);
    await expect.poll(() => page.locator('.task-values').textContent(), SEEN_WITHIN).toContain('"chargeId": "ch_');
    expect(await page.getByRole('region', { name: 'Input' }).textContent()).toContain('"orderId": "o-ui-1"');
    await shot(page, 'run-waiting-for-signal', true);

    await page.getByLabel('Payload (JSON)').fill('{"ok": true}');
    await page.getByRole('button', { name: 'Send signal' }).click();
    await page.locator('h1 .status', { hasText: 'COMPLETED' }).waitFor(SEEN_WITHIN);
    await page.locator('g.node[data-node="close"][data-state="completed"]').waitFor(SEEN_WITHIN);
    expect(await page.getByRole('region', { name: 'Output' }).textContent()).toContain('"approved": true');
    expect(await page.locator('tr[data-event="signal-received"]').textContent()).toContain('manager-approval');
    expect((await api.getHandle('order-ui-1').status()).status).toBe('COMPLETED');
    // The page read the history once, then only what followed what it had: each line shown once.
    expect(historyReads.length).toBeGreaterThan(1);
    expect(historyReads[0]).not.toContain('after=');
    for (const url of historyReads.slice(1)) expect(url).toMatch(/[?&]after=\d+/);
    const lines: unknown[] = [];
    for await (const e of api.getHandle('order-ui-1').history()) lines.push(e);
    await expect.poll(() => page.locator('table.timeline tbody tr').count(), SEEN_WITHIN).toBe(lines.length);
    // A finished run says until when it is kept.
    expect(await page.locator('.purge-at').textContent()).toContain('retention ends');
    await shot(page, 'run-completed', true);
    await page.close();
  });

  it('shows a failed task with its attempts, lists its dead letter, retries it from the UI and sees the run complete', async () => {
    downstream.broken = true;
    await api.start('flaky', { n: 7 }, { instanceId: 'flaky-ui-1' });
    const page = await signedIn('#/runs/flaky-ui-1');
    await page.locator('h1 .status', { hasText: 'FAILED' }).waitFor(SEEN_WITHIN);
    expect(await node(page, 'call-downstream').getAttribute('data-state')).toBe('failed');
    const error = page.locator('.run-error');
    expect(await error.textContent()).toContain('downstream unavailable (503)');
    expect(await error.locator('tbody tr').count()).toBe(2);
    // The failed task's input, as the run holds it for a retry.
    await node(page, 'call-downstream').click();
    await expect.poll(() => page.locator('.task-values').textContent(), SEEN_WITHIN).toContain('"n": 7');
    await shot(page, 'run-failed', true);

    await page.getByRole('link', { name: 'Dead letters' }).click();
    await page.locator('table.dlq').getByRole('link', { name: 'flaky-ui-1' }).waitFor(SEEN_WITHIN);
    await shot(page, 'dead-letters');

    await page.goto(`${stack.url}/ui#/runs/flaky-ui-1`);
    downstream.broken = false;
    await page.getByRole('button', { name: 'Retry failed task call-downstream' }).click();
    await page.locator('h1 .status', { hasText: 'COMPLETED' }).waitFor(SEEN_WITHIN);
    expect(await node(page, 'call-downstream').getAttribute('data-state')).toBe('completed');
    expect(await page.locator('tr[data-event="task-retried"]').textContent()).toContain('call-downstream');
    expect((await api.getHandle('flaky-ui-1').status()).status).toBe('COMPLETED');
    await page.close();
  });

  it('redrives a dead letter from the dead-letters page, and the run completes', async () => {
    downstream.broken = true;
    await api.start('flaky', { n: 8 }, { instanceId: 'flaky-ui-2' });
    await expect.poll(async () => (await api.getHandle('flaky-ui-2').status()).status, SEEN_WITHIN).toBe('FAILED');
    const page = await signedIn('#/dead-letters');
    const row = page.locator('table.dlq tr', { has: page.getByRole('link', { name: 'flaky-ui-2' }) });
    await row.waitFor(SEEN_WITHIN);
    downstream.broken = false;
    await row.getByRole('button', { name: 'Redrive' }).click();
    await expect.poll(() => page.getByRole('status').textContent(), SEEN_WITHIN).toContain('1 redriven');
    await expect.poll(async () => (await api.getHandle('flaky-ui-2').status()).status, SEEN_WITHIN).toBe('COMPLETED');
    await page.close();
  });

  it('pauses and resumes a run from its page', async () => {
    await (
      await api.start(
        'fulfil',
        { orderId: 'p', customer: 'c', items: [{ sku: 'x', qty: 1, price: 1 }] },
        {
          instanceId: 'pause-ui-1',
        },
      )
    ).wait({ timeoutMs: 20_000 });
    const page = await signedIn('#/runs/pause-ui-1');
    await page.getByRole('button', { name: 'Pause' }).click();
    await page.locator('h1 .status', { hasText: 'PAUSED' }).waitFor(SEEN_WITHIN);
    expect((await api.getHandle('pause-ui-1').status()).status).toBe('PAUSED');
    await page.getByRole('button', { name: 'Resume' }).click();
    await page.locator('h1 .status', { hasText: 'RUNNING' }).waitFor(SEEN_WITHIN);
    expect((await api.getHandle('pause-ui-1').status()).status).toBe('RUNNING');
    expect(await page.locator('tr[data-event="paused"]').count()).toBe(1);
    await page.close();
  });

  it("shows what a map's items wait on in their lanes: delays, and retries with their failure", async () => {
    await api.start('batch', 4, { instanceId: 'lanes-ui-1' });
    const page = await signedIn('#/runs/lanes-ui-1');
    const rows = page.locator('table.lane-timers tbody tr');
    await rows.nth(3).waitFor(SEEN_WITHIN);
    expect(await rows.count()).toBe(4);
    expect(await page.locator('table.lane-timers tr[data-kind="delay"][data-state="waiting"]').count()).toBe(2);
    const retry = page.locator('table.lane-timers tr[data-kind="retry"]', { hasText: 'items #1' });
    expect(await retry.textContent()).toContain('retry items[1]/call, attempt 2');
    expect(await retry.textContent()).toContain('Error: item 1: rate limited (429)');
    // None of it is in the timeline: the items never touched the run's journal. The DAG says where they are.
    expect(await page.locator('table.timeline tr[data-event="task-failed"]').count()).toBe(0);
    for (const step of ['items[]/call', 'items[]/rest', 'items[]/store'])
      expect(await node(page, step).getAttribute('data-state'), step).toBe('in-lanes');
    await shot(page, 'run-lane-timers', true);
    await page.close();
  });

  it("shows a lapse in a lane (a worker died holding a step's reservation) as the same attempt sent again, and a fork's look", async () => {
    await api.start('batch', 4, { instanceId: 'lanes-ui-2' });
    // What the reaper records for an expired reservation of item 2's step (see `laneClaimExpired`).
    await stack.store.putTimer('lanes-ui-2', {
      id: 'items[2]/call#1~7',
      dueAt: Date.now() + 3_600_000,
      parent: 'items',
      item: 2,
      retry: {
        task: 'items[2]/call',
        attempt: 1,
        failedAt: Date.now(),
        worker: 'w-gone',
        error: {
          name: 'WorkerLostError',
          message: 'the worker holding this step stopped before renewing its reservation',
        },
        lapse: true,
        lostClaim: 'items[2]/call~7',
      },
    });
    // What a worker puts when item 3 reaches a fork that runs in its lane (see `startLaneFork`).
    await stack.store.putTimer('lanes-ui-2', {
      id: 'items[3]/fan~look~0',
      dueAt: Date.now() + 3_600_000,
      parent: 'items',
      item: 3,
      look: { group: 'items[3]/fan', n: 0, sentAt: Date.now() },
    });
    const page = await signedIn('#/runs/lanes-ui-2');
    const lapse = page.locator('table.lane-timers tr[data-kind="retry"]', { hasText: 'items #2' });
    await lapse.first().waitFor(SEEN_WITHIN);
    expect(await lapse.first().textContent()).toContain('again items[2]/call, attempt 1');
    const look = page.locator('table.lane-timers tr[data-kind="look"]', { hasText: 'items #3' });
    expect(await look.first().textContent()).toContain('fork items[3]/fan in its lane, look 0');
    await page.close();
  });

  it('filters the runs table by status and by workflow', async () => {
    for (const name of ['a', 'b']) {
      await (await api.start('hello', { name }, { instanceId: `hello-ui-${name}` })).result({ timeoutMs: 20_000 });
    }
    await api.start('fulfil', { orderId: 'f', customer: 'c', items: [] }, { instanceId: 'fulfil-ui-failing' });
    const page = await signedIn('#/runs');
    const rows = page.locator('table.runs tbody tr');
    await page.locator('tr[data-run="hello-ui-a"]').waitFor(SEEN_WITHIN);

    await page.getByRole('combobox', { name: /^Workflow/ }).selectOption('hello');
    await expect
      .poll(async () => new Set(await rows.locator('td:nth-child(3)').allTextContents()), SEEN_WITHIN)
      .toEqual(new Set(['hello']));
    expect(await page.locator('tr[data-run="order-ui-1"]').count()).toBe(0);

    await page.getByRole('combobox', { name: /^Workflow/ }).selectOption('');
    await page.getByRole('combobox', { name: /^Status/ }).selectOption('FAILED');
    await page.locator('tr[data-run="fulfil-ui-failing"]').waitFor(SEEN_WITHIN);
    await expect
      .poll(async () => new Set(await rows.locator('.status').allTextContents()), SEEN_WITHIN)
      .toEqual(new Set(['✕ FAILED']));
    expect(await page.locator('tr[data-run="hello-ui-a"]').count()).toBe(0);
    expect(page.url()).toContain('status=FAILED');

    // Times are the viewer's (Tokyo here), with UTC on hover.
    const time = rows.first().locator('time').first();
    expect(await time.getAttribute('title')).toMatch(/^UTC: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d/);
    await page.getByRole('combobox', { name: /^Status/ }).selectOption('');
    await page.locator('tr[data-run="hello-ui-a"]').waitFor(SEEN_WITHIN);
    await shot(page, 'runs');
    await page.close();
  });

  it('bulk-cancels three runs after a confirmation, with a result per run', async () => {
    const ids = ['bulk-1', 'bulk-2', 'bulk-3'];
    for (const id of ids) {
      const run = await api.start(
        'fulfil',
        { orderId: id, customer: 'c', items: [{ sku: 'x', qty: 1, price: 1 }] },
        {
          instanceId: id,
        },
      );
      await run.wait({ timeoutMs: 20_000 });
    }
    const page = await signedIn('#/runs?workflow=fulfil&status=RUNNING');
    for (const id of ids) {
      await page.locator(`tr[data-run="${id}"]`).waitFor(SEEN_WITHIN);
      await page.getByLabel(`Select ${id}`).check();
    }
    // Keyboard: the runs table moves between rows with the arrow keys.
    const boxes = await page
      .locator('table.runs tbody tr input[type=checkbox]')
      .evaluateAll((els) => els.map((e) => e.getAttribute('aria-label')));
    expect(boxes.length).toBeGreaterThanOrEqual(3);
    await page.getByLabel(boxes[0] ?? '', { exact: true }).focus();
    await page.keyboard.press('ArrowDown');
    expect(await page.evaluate("document.activeElement?.getAttribute('aria-label')")).toBe(boxes[1]);

    await page.getByRole('button', { name: 'Cancel selected…' }).click();
    const dialog = page.getByRole('dialog');
    for (const id of ids) expect(await dialog.textContent()).toContain(id);
    await shot(page, 'bulk-cancel-confirm');
    await dialog.getByRole('button', { name: 'Cancel 3 runs' }).click();
    const results = page.getByRole('region', { name: 'Bulk results' });
    await results.waitFor(SEEN_WITHIN);
    for (const id of ids) {
      expect(await results.locator(`li[data-run="${id}"]`).textContent()).toContain('cancelled: now CANCELLED');
      expect((await api.getHandle(id).status()).status).toBe('CANCELLED');
    }
    await shot(page, 'bulk-cancel-results');
    await page.close();
  });

  it('bulk-retries failed runs from their failed task, with a result per run', async () => {
    downstream.broken = true;
    const ids = ['retry-1', 'retry-2'];
    for (const id of ids) await api.start('flaky', { n: 1 }, { instanceId: id });
    for (const id of ids) {
      await expect.poll(async () => (await api.getHandle(id).status()).status, SEEN_WITHIN).toBe('FAILED');
    }
    const page = await signedIn('#/runs?workflow=flaky&status=FAILED');
    for (const id of ids) {
      await page.locator(`tr[data-run="${id}"]`).waitFor(SEEN_WITHIN);
      await page.getByLabel(`Select ${id}`).check();
    }
    downstream.broken = false;
    await page.getByRole('button', { name: 'Retry selected…' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Retry 2 runs' }).click();
    const results = page.getByRole('region', { name: 'Bulk results' });
    await results.waitFor(SEEN_WITHIN);
    for (const id of ids) {
      expect(await results.locator(`li[data-run="${id}"]`).textContent()).toContain('retried call-downstream');
      await expect.poll(async () => (await api.getHandle(id).status()).status, SEEN_WITHIN).toBe('COMPLETED');
    }
    await page.close();
  });

  it('logs no script error (a CSP violation included) on any page', () => {
    expect(consoleErrors).toEqual([]);
  });
});
