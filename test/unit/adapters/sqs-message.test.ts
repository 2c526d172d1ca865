import { describe, expect, it } from 'vitest';
import { DispatchParseError } from '../../../shared/adapters/sqs/errors.ts';
import { encodeDispatch, parseDispatch } from '../../../shared/adapters/sqs/message.ts';
import type { Dispatch } from '../../../shared/engine/snapshot.ts';

const item: Dispatch = {
  instanceId: 'i-1',
  workflow: 'w',
  key: 'cube[4]',
  qid: 'cube[]',
  input: { v: 'j:1', at: [4] },
  attempt: 1,
  gen: 1,
  priority: 'normal',
  pool: 'default',
  lane: { parent: 'cube', item: 4 },
};

describe('dispatch messages', () => {
  it("carry a lane (a map item's, a fork branch's) through the queue, and no lane for other tasks", () => {
    expect(parseDispatch(encodeDispatch(item))).toEqual(item);
    const { lane: _lane, ...plain } = item;
    const parsed = parseDispatch(encodeDispatch(plain));
    expect(parsed).toEqual(plain);
    expect(parsed).not.toHaveProperty('lane');
  });

  it('refuse a lane that is not { parent, item }', () => {
    for (const lane of [
      { parent: 'cube' },
      { parent: 1, item: 2 },
      { parent: 'cube', item: -1 },
      { map: 'cube', item: 4 },
      'cube',
    ]) {
      const body = JSON.stringify({ ...item, lane });
      expect(() => parseDispatch(body), JSON.stringify(lane)).toThrow(DispatchParseError);
    }
  });
});
