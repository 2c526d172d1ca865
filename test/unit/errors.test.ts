import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { makeHandler } from '../../functions/api/handler.ts';
import { MemoryTaskQueue } from '../../shared/adapters/memory/task-queue.ts';
import { type ApiErrorCode, HttpError, toHttpError } from '../../shared/api/errors.ts';
import * as client from '../../shared/client/index.ts';
import { DefinitionMismatchError, TerminalError } from '../../shared/engine/errors.ts';
import { SayiirError } from '../../shared/errors.ts';
import * as entry from '../../shared/index.ts';
import { FakeClock, flow, MemoryInstanceStore, MemorySecrets } from '../../shared/index.ts';
import {
  ClaimLostError,
  InstanceExistsError,
  InstanceNotFoundError,
  InvalidCursorError,
  JournalConflictError,
  PayloadTooLargeError,
} from '../../shared/ports/errors.ts';
import { SignalBufferFullError, TaskAlreadyCompletedError, TaskStateError } from '../../shared/runtime/instances.ts';
import { WorkflowNotFoundError, WorkflowRegistry } from '../../shared/runtime/registry.ts';
import { httpEvent, KEY } from '../support/api-harness.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The classes a module exports whose name ends in `Error`. */
function errorClasses(module: Record<string, unknown>): [string, unknown][] {
  return Object.entries(module).filter(([name, value]) => /^[A-Z]\w*Error$/.test(name) && typeof value === 'function');
}

const isSayiirError = (cls: unknown): boolean =>
  cls === SayiirError || (cls as { prototype?: unknown }).prototype instanceof SayiirError;

describe('one error tree', () => {
  it.each([
    ['shared/index.ts', entry],
    ['shared/client/index.ts', client],
  ] as const)('every error class exported from %s extends SayiirError', (_path, module) => {
    const classes = errorClasses(module);
    expect(classes.length).toBeGreaterThan(3);
    expect(classes.filter(([, cls]) => !isSayiirError(cls)).map(([name]) => name)).toEqual([]);
    expect(Object.keys(module)).toContain('SayiirError');
  });

  it('every error class declared in the sources descends from SayiirError', () => {
    // Not every class is exported from an entry: follow `extends` in the sources, so a new
    // `class XError extends Error` anywhere fails here.
    const parents = new Map<string, { parent: string; file: string }>();
    const declared = /class (\w+Error) extends (\w+)/g;
    for (const file of sourceFiles(['shared', 'functions', 'local', 'infra', 'bin'])) {
      for (const [, name, parent] of readFileSync(file, 'utf8').matchAll(declared)) {
        parents.set(name as string, { parent: parent as string, file: relative(ROOT, file) });
      }
    }
    expect(parents.size).toBeGreaterThan(30);
    const rooted = (name: string, seen: number): boolean => {
      if (name === 'SayiirError') return true;
      const p = parents.get(name);
      return p !== undefined && seen < 10 && rooted(p.parent, seen + 1);
    };
    const strays = [...parents].filter(([name]) => !rooted(name, 0)).map(([name, { file }]) => `${file}: ${name}`);
    expect(strays).toEqual([]);
  });

  it('keeps each class its own name, so logs and serialized errors still tell them apart', () => {
    expect(new InstanceNotFoundError('o-1').name).toBe('InstanceNotFoundError');
    expect(new TerminalError('no').name).toBe('TerminalError');
    expect(new entry.TaskSchemaError('charge', 'input', new Error('bad')).name).toBe('TaskSchemaError');
    expect(new client.SayiirApiError(404, 'instance_not_found', 'gone').name).toBe('SayiirApiError');
  });

  it('passes a cause through Error options', () => {
    const cause = new Error('socket hang up');
    const e = new client.SayiirConnectionError('http://localhost:1', { cause });
    expect(e).toBeInstanceOf(SayiirError);
    expect(e.cause).toBe(cause);
  });
});

function sourceFiles(dirs: readonly string[]): string[] {
  return dirs.flatMap((dir) =>
    readdirSync(join(ROOT, dir), { recursive: true, withFileTypes: true })
      .filter((d) => d.isFile() && d.name.endsWith('.ts') && !d.name.endsWith('.d.ts'))
      .map((d) => join(d.parentPath, d.name)),
  );
}

/** What the API answers for each error a client can cause: the same table `toHttpError` had as `instanceof` checks. */
const MAPPED: readonly (readonly [SayiirError, number, ApiErrorCode])[] = [
  [new WorkflowNotFoundError('nope'), 404, 'workflow_not_found'],
  [new InvalidCursorError('cursor', 'malformed'), 400, 'invalid_request'],
  [new InstanceNotFoundError('o-1'), 404, 'instance_not_found'],
  [new InstanceExistsError('o-1'), 409, 'instance_exists'],
  [new PayloadTooLargeError('input', 500_000, 400_000), 413, 'payload_too_large'],
  [new DefinitionMismatchError('o-1', 'aaa', 'bbb'), 409, 'definition_mismatch'],
  [new JournalConflictError('o-1', 7), 409, 'conflict'],
  [new SignalBufferFullError('o-1', 'approve', 20), 429, 'signal_buffer_full'],
  [new TaskStateError('o-1', 'charge', 'is not pending in this run'), 409, 'invalid_task_state'],
  [new TaskAlreadyCompletedError('o-1', 'charge'), 409, 'task_completed'],
];

const context = {
  functionName: 'api',
  awsRequestId: 'aws-req-1',
  getRemainingTimeInMillis: () => 30_000,
} as Context;

const bodyOf = (r: APIGatewayProxyStructuredResultV2) => JSON.parse(r.body ?? 'null');

/** A route whose key task the client may skip with any output. */
const picker = flow<number>('picker')
  .route((n) => (n > 0 ? 'up' : 'down'), ['up', 'down'] as const, { id: 'pick' })
  .branch('up', (n: number) => n + 1)
  .branch('down', (n: number) => n - 1)
  .done()
  .build();

/** The API Lambda over memory adapters, whose store fails every load with `error` when given one. */
function api(error?: unknown) {
  const store = new MemoryInstanceStore();
  if (error !== undefined) {
    store.load = async () => {
      throw error;
    };
  }
  return makeHandler({
    store,
    queue: new MemoryTaskQueue(),
    registry: new WorkflowRegistry([picker]),
    secrets: new MemorySecrets({ 'sayiir/api-keys': JSON.stringify([KEY]) }),
    clock: new FakeClock(0),
  });
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('the HTTP answer is a property of the error', () => {
  it.each(MAPPED.map(([error, status, code]) => [error.name, status, code, error] as const))(
    '%s answers %i %s with its message',
    async (_name, status, code, error) => {
      expect([error.httpStatus, error.code]).toEqual([status, code]);
      const res = await api(error)(httpEvent('GET', '/v1/instances/o-1'), context);
      expect(res.statusCode).toBe(status);
      expect(bodyOf(res)).toEqual({ error: { code, message: error.message } });
    },
  );

  it('answers a generic 500 to a Sayiir error that declares no status, hiding its message', async () => {
    const logged = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const error = new ClaimLostError('o-1', 'charge', 3);
    expect(error.httpStatus).toBeUndefined();
    expect(toHttpError(error)).toBeUndefined();
    const res = await api(error)(httpEvent('GET', '/v1/instances/o-1'), context);
    expect(res.statusCode).toBe(500);
    expect(bodyOf(res)).toEqual({ error: { code: 'internal_error', message: 'internal error' } });
    expect(logged).toHaveBeenCalledWith(error);
  });

  it('maps any Sayiir error by its declared status, not by its class', () => {
    class QuotaSpentError extends SayiirError {
      override readonly name = 'QuotaSpentError';
      override readonly httpStatus = 429;
      override readonly code: ApiErrorCode = 'signal_buffer_full';
    }
    const http = toHttpError(new QuotaSpentError('quota spent'));
    expect([http?.statusCode, http?.code, http?.message]).toEqual([429, 'signal_buffer_full', 'quota spent']);
  });

  it('passes an HttpError through as it is, and never shows a 5xx message', async () => {
    const teapot = new HttpError(404, 'pool_not_found', 'no such pool', { 'x-why': 'test' });
    expect(teapot).toBeInstanceOf(SayiirError);
    expect(toHttpError(teapot)).toBe(teapot);
    vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const res = await api(new HttpError(503, 'internal_error', 'table throttled'))(
      httpEvent('GET', '/v1/instances/o-1'),
      context,
    );
    expect(res.statusCode).toBe(503);
    expect(bodyOf(res)).toEqual({ error: { code: 'internal_error', message: 'internal error' } });
  });

  it('answers 400 invalid_output to a skip whose output the step refuses (a TerminalError)', async () => {
    const handler = api();
    const started = await handler(
      httpEvent('POST', '/v1/workflows/picker/instances', { body: { input: 1, instanceId: 'p-1' } }),
      context,
    );
    expect(started.statusCode).toBe(201);
    const res = await handler(
      httpEvent('POST', '/v1/instances/p-1/tasks/pick/skip', { body: { output: 42 } }),
      context,
    );
    expect(res.statusCode).toBe(400);
    expect(bodyOf(res).error).toEqual({
      code: 'invalid_output',
      message: "route 'pick' key function returned number, expected a string",
    });
  });

  it('answers a 500 to a TerminalError outside a skip: "do not retry" is not a client error', async () => {
    vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const res = await api(new TerminalError('declined'))(httpEvent('GET', '/v1/instances/o-1'), context);
    expect(res.statusCode).toBe(500);
    expect(bodyOf(res).error.code).toBe('internal_error');
  });
});
