import { ScanCommand } from '@aws-sdk/client-dynamodb';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LEASE_SHARDS } from '../../shared/adapters/dynamodb/claim-store.ts';
import { DynamoClaimStore } from '../../shared/adapters/dynamodb/index.ts';
import { describeClaimStoreContract } from '../support/claim-store-contract.ts';
import { type Dynalite, startDynalite } from '../support/dynalite.ts';

describeClaimStoreContract('DynamoClaimStore on dynalite', async () => {
  const db = await startDynalite();
  return { claims: new DynamoClaimStore({ client: db.client, tableName: db.tables.claims }), close: () => db.close() };
});

describe('DynamoClaimStore on dynalite', () => {
  let db: Dynalite;
  let claims: DynamoClaimStore;

  beforeEach(async () => {
    db = await startDynalite();
    claims = new DynamoClaimStore({ client: db.client, tableName: db.tables.claims });
  });
  afterEach(async () => {
    await db.close();
  });

  it('spreads live claims over the lease shards and lists the earliest expired across all of them', async () => {
    const ids = Array.from({ length: 64 }, (_, i) => `inst-${i}`);
    for (const [i, id] of ids.entries()) await claims.reserve(id, 't', 'w', 0, 100 + i);
    const out = await db.client.send(new ScanCommand({ TableName: db.tables.claims, ProjectionExpression: 'leasepk' }));
    const shards = new Set((out.Items ?? []).map((item) => item.leasepk?.S));
    expect(shards.size).toBe(LEASE_SHARDS);
    const firstTen = await claims.expired(10_000, 10);
    expect(firstTen.map((c) => c.instanceId)).toEqual(ids.slice(0, 10));
    expect(await claims.expired(10_000, 100)).toHaveLength(64);
  });
});
