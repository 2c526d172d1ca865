import type { Context } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { jsonLog } from '../../../shared/observability/log.ts';
import { powertoolsLog } from '../../../shared/observability/powertools-log.ts';
import { captureStdout } from '../../support/stdout.ts';

const context = {
  awsRequestId: 'req-42',
  functionName: 'sayiir-worker-default',
  functionVersion: '$LATEST',
  invokedFunctionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:sayiir-worker-default',
  memoryLimitInMB: '1024',
  getRemainingTimeInMillis: () => 900_000,
} as unknown as Context;

describe('the Lambda log (Powertools Logger)', () => {
  const stdout = captureStdout();

  it('writes the local log line shape, plus the invocation context once added', () => {
    const log = powertoolsLog({ level: 'INFO' });
    log.addContext?.(context);
    log.child({ pool: 'default' }).info('task completed', { workflow: 'w', taskKey: 'a', attempt: 1 });
    log.debug('not shown');
    const lines = stdout()
      .filter((l) => l.trim().startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      level: 'INFO',
      message: 'task completed',
      service: 'sayiir',
      function_request_id: 'req-42',
      function_name: 'sayiir-worker-default',
      workflow: 'w',
      taskKey: 'a',
      attempt: 1,
      pool: 'default',
    });
    const local: string[] = [];
    jsonLog({ level: 'INFO', write: (l) => local.push(l) }).info('task completed', { workflow: 'w' });
    const localKeys = Object.keys(JSON.parse(local[0] as string) as object);
    expect(Object.keys(lines[0] as object)).toEqual(expect.arrayContaining(localKeys));
  });
});
