import { type DynamoDBClient, GetItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import type { Claim, ClaimStore } from '../../ports/claim-store.ts';
import { ClaimHeldError, ClaimLostError } from '../../ports/errors.ts';
import { INDEX, TTL_ATTRIBUTE } from '../../resources/tables.ts';
import {
  type Item,
  isConditionFailed,
  num,
  queryPages,
  readNum,
  readOptNum,
  readStr,
  shardKey,
  shardKeys,
  str,
} from './codec.ts';

/** Options of {@link DynamoClaimStore}. */
export interface DynamoClaimStoreOptions {
  /** The client; inject one pointed at dynalite for local runs and tests. */
  readonly client: DynamoDBClient;
  /** Physical name of the table defined by `claimsTable`. */
  readonly tableName: string;
  /**
   * How long after its last lease end a claim item may be deleted by the
   * table's TTL. Deleting it resets the fence counter, which is safe only
   * once no holder of an old fence can still be alive (Lambda runs at most
   * 15 minutes), hence days.
   * @default 7 days
   */
  readonly retentionMs?: number;
}

// Conditions, by name.
const absent = 'attribute_not_exists(pk)';
const released = '#state = :free';
const lapsed = 'expiresAt <= :now';
/** A live claim left by an earlier attempt (its worker died after that attempt's checkpoint) does not block a newer one. */
const superseded = 'attribute_not_exists(attempt) OR attempt < :attempt';
const reservable = `${absent} OR ${released} OR ${lapsed} OR ${superseded}`;
const fenced = 'fence = :fence AND #state <> :free';

/** Partition key value of the sparse live-lease index. */
/** Shards of the lease index (see `shardKey`): no partition key takes every claim write. */
export const LEASE_SHARDS = 8;
const leaseShard = (instanceId: string): string => shardKey('LEASE', instanceId, LEASE_SHARDS);
const FREE = 'free';

const claimPk = (instanceId: string, taskKey: string): string => `${instanceId}|${taskKey}`;

function claimOf(item: Item): Claim {
  const startedAt = readOptNum(item, 'startedAt');
  const lastHeartbeat = readOptNum(item, 'lastHeartbeat');
  return {
    instanceId: readStr(item, 'instanceId'),
    taskKey: readStr(item, 'taskKey'),
    attempt: readOptNum(item, 'attempt') ?? 1,
    workerId: readStr(item, 'workerId'),
    fence: readNum(item, 'fence'),
    state: readStr(item, 'state') as Claim['state'],
    expiresAt: readNum(item, 'expiresAt'),
    ...(startedAt !== undefined ? { startedAt } : {}),
    ...(lastHeartbeat !== undefined ? { lastHeartbeat } : {}),
  };
}

/**
 * The claim store on DynamoDB: one item per (instance, task key) whose
 * `fence` only ever grows. Each transition is one conditional UpdateItem:
 *
 * ```
 *  item:   absent | free | lapsed ──reserve──> reserved ──start──> executing ──heartbeat──> executing
 *  fence:              n                          n+1                 n+1                      n+1
 *  leasepk:  - | - | LEASE#s                  LEASE#s             LEASE#s                  LEASE#s
 *  release (fence n+1): state free, leasepk (shard s of the instance) removed (out of the reaper's index), fence kept
 * ```
 *
 * A lapsed claim is not rewritten when it expires: it stays "live-looking"
 * (and in `byExpiry`) until someone reserves it again or releases it, which is
 * exactly what the reaper's `expired` looks for.
 *
 * @example
 * ```ts
 * const claims = new DynamoClaimStore({ client, tableName: 'sayiir-claims' });
 * let claim = await claims.reserve(instanceId, 'charge', workerId, now, 10_000);
 * claim = await claims.start(claim, now, 60_000);
 * ```
 */
export class DynamoClaimStore implements ClaimStore {
  private readonly client: DynamoDBClient;
  private readonly table: string;
  private readonly retentionMs: number;

  constructor(options: DynamoClaimStoreOptions) {
    this.client = options.client;
    this.table = options.tableName;
    this.retentionMs = options.retentionMs ?? 7 * 24 * 3_600_000;
  }

  /** TTL (epoch seconds) for a claim whose lease ends at `expiresAt`. */
  private ttl(expiresAt: number) {
    return num(Math.ceil((expiresAt + this.retentionMs) / 1000));
  }

  async reserve(
    instanceId: string,
    taskKey: string,
    workerId: string,
    now: number,
    ttlMs: number,
    attempt = 1,
  ): Promise<Claim> {
    return this.take(instanceId, taskKey, workerId, now, ttlMs, 'reserved', attempt);
  }

  /** One conditional UpdateItem: a new fence and a claim in `state`, if nobody holds a live one. */
  private async take(
    instanceId: string,
    taskKey: string,
    workerId: string,
    now: number,
    ms: number,
    state: 'reserved' | 'executing',
    attempt: number,
  ): Promise<Claim> {
    const expiresAt = now + ms;
    const timing = state === 'executing' ? 'startedAt = :now, lastHeartbeat = :now' : '';
    try {
      const out = await this.client.send(
        new UpdateItemCommand({
          TableName: this.table,
          Key: { pk: str(claimPk(instanceId, taskKey)) },
          UpdateExpression:
            'SET instanceId = :instanceId, taskKey = :taskKey, attempt = :attempt, workerId = :workerId, ' +
            'fence = if_not_exists(fence, :zero) + :one, #state = :state, expiresAt = :expiresAt, ' +
            `leasepk = :lease, #ttl = :ttl${timing ? `, ${timing}` : ' REMOVE startedAt, lastHeartbeat'}`,
          ConditionExpression: reservable,
          ExpressionAttributeNames: { '#state': 'state', '#ttl': TTL_ATTRIBUTE },
          ExpressionAttributeValues: {
            ':instanceId': str(instanceId),
            ':taskKey': str(taskKey),
            ':attempt': num(attempt),
            ':workerId': str(workerId),
            ':zero': num(0),
            ':one': num(1),
            ':state': str(state),
            ':expiresAt': num(expiresAt),
            ':lease': str(leaseShard(instanceId)),
            ':ttl': this.ttl(expiresAt),
            ':free': str(FREE),
            ':now': num(now),
          },
          // The new fence is computed by the table: read it back from the write itself.
          ReturnValues: 'ALL_NEW',
        }),
      );
      if (!out.Attributes) throw new Error('UpdateItem with ALL_NEW returned no attributes');
      return claimOf(out.Attributes);
    } catch (err) {
      if (isConditionFailed(err)) throw new ClaimHeldError(instanceId, taskKey);
      throw err;
    }
  }

  async start(claim: Claim, now: number, leaseMs: number): Promise<Claim> {
    const next: Claim = { ...claim, state: 'executing', startedAt: now, lastHeartbeat: now, expiresAt: now + leaseMs };
    await this.fencedUpdate(
      claim,
      'SET #state = :executing, startedAt = :now, lastHeartbeat = :now, expiresAt = :expiresAt, #ttl = :ttl',
      {
        ':executing': str('executing'),
        ':now': num(now),
        ':expiresAt': num(next.expiresAt),
        ':ttl': this.ttl(next.expiresAt),
      },
      { '#ttl': TTL_ATTRIBUTE },
    );
    return next;
  }

  async heartbeat(claim: Claim, now: number, leaseMs: number): Promise<Claim> {
    const next: Claim = { ...claim, lastHeartbeat: now, expiresAt: now + leaseMs };
    await this.fencedUpdate(
      claim,
      'SET lastHeartbeat = :now, expiresAt = :expiresAt, #ttl = :ttl',
      { ':now': num(now), ':expiresAt': num(next.expiresAt), ':ttl': this.ttl(next.expiresAt) },
      { '#ttl': TTL_ATTRIBUTE },
    );
    return next;
  }

  async release(claim: Claim): Promise<void> {
    try {
      await this.fencedUpdate(claim, 'SET #state = :free REMOVE leasepk', {}, {});
    } catch (err) {
      // Someone else holds it now, or it was released already: nothing of ours to end.
      if (!(err instanceof ClaimLostError)) throw err;
    }
  }

  async revoke(instanceId: string, taskKey: string): Promise<void> {
    try {
      await this.client.send(
        new UpdateItemCommand({
          TableName: this.table,
          Key: { pk: str(claimPk(instanceId, taskKey)) },
          UpdateExpression: 'SET #state = :free, fence = fence + :one REMOVE leasepk',
          ConditionExpression: 'attribute_exists(pk) AND #state <> :free',
          ExpressionAttributeNames: { '#state': 'state' },
          ExpressionAttributeValues: { ':free': str(FREE), ':one': num(1) },
        }),
      );
    } catch (err) {
      if (!isConditionFailed(err)) throw err;
    }
  }

  async get(instanceId: string, taskKey: string): Promise<Claim | undefined> {
    const out = await this.client.send(
      new GetItemCommand({
        TableName: this.table,
        Key: { pk: str(claimPk(instanceId, taskKey)) },
        ConsistentRead: true,
      }),
    );
    // A released claim keeps its item (for the fence counter) but is no claim.
    return out.Item && readStr(out.Item, 'state') !== FREE ? claimOf(out.Item) : undefined;
  }

  async expired(now: number, limit: number): Promise<Claim[]> {
    const pages = await Promise.all(shardKeys('LEASE', LEASE_SHARDS).map((shard) => this.expiredIn(shard, now, limit)));
    return pages
      .flat()
      .sort((a, b) => a.expiresAt - b.expiresAt)
      .slice(0, limit);
  }

  private async expiredIn(shard: string, now: number, limit: number): Promise<Claim[]> {
    const claims: Claim[] = [];
    const query = {
      TableName: this.table,
      IndexName: INDEX.byExpiry,
      KeyConditionExpression: 'leasepk = :lease AND expiresAt <= :now',
      ExpressionAttributeValues: { ':lease': str(shard), ':now': num(now) },
      ScanIndexForward: true,
      Limit: limit,
    };
    for await (const items of queryPages(this.client, query)) {
      for (const item of items) claims.push(claimOf(item));
      if (claims.length >= limit) break;
    }
    return claims.slice(0, limit);
  }

  /**
   * An update on condition that `claim`'s fence is current and not released.
   *
   * @throws {ClaimLostError} it is not.
   */
  private async fencedUpdate(
    claim: Claim,
    updateExpression: string,
    values: Item,
    names: Record<string, string>,
  ): Promise<void> {
    try {
      await this.client.send(
        new UpdateItemCommand({
          TableName: this.table,
          Key: { pk: str(claimPk(claim.instanceId, claim.taskKey)) },
          UpdateExpression: updateExpression,
          ConditionExpression: fenced,
          ExpressionAttributeNames: { '#state': 'state', ...names },
          ExpressionAttributeValues: { ':fence': num(claim.fence), ':free': str(FREE), ...values },
        }),
      );
    } catch (err) {
      if (isConditionFailed(err)) throw new ClaimLostError(claim.instanceId, claim.taskKey, claim.fence);
      throw err;
    }
  }
}
