/**
 * The two DynamoDB tables, as plain data: the single definition that both the
 * local stack (`CreateTable` through {@link createTableInput}) and the CDK
 * stack read, so local and cloud never drift.
 *
 * Field names and literal values follow CDK's `TableV2Props`: `'S' | 'N' | 'B'`
 * are the values of `AttributeType`, `'ALL' | 'KEYS_ONLY' | 'INCLUDE'` those of
 * `ProjectionType`, so the CDK side converts with a cast, no mapping table.
 * No `aws-cdk-lib` import here: this module is bundled into the Lambdas.
 */
import type { CreateTableCommandInput } from '@aws-sdk/client-dynamodb';

/** A key attribute: its name and scalar type (CDK `Attribute`). */
export interface KeyAttribute {
  readonly name: string;
  readonly type: 'S' | 'N' | 'B';
}

/** A global secondary index (CDK `GlobalSecondaryIndexPropsV2`). */
export interface IndexDefinition {
  readonly indexName: string;
  readonly partitionKey: KeyAttribute;
  readonly sortKey?: KeyAttribute;
  readonly projectionType: 'ALL' | 'KEYS_ONLY' | 'INCLUDE';
  /** Only with `INCLUDE`: the non-key attributes copied into the index. */
  readonly nonKeyAttributes?: readonly string[];
}

/** A table, without its physical name (which each stack chooses). */
export interface TableDefinition {
  /** Logical id, e.g. for the CDK construct. */
  readonly id: string;
  readonly partitionKey: KeyAttribute;
  readonly sortKey?: KeyAttribute;
  readonly globalSecondaryIndexes: readonly IndexDefinition[];
  /**
   * Retention TTL attribute (epoch seconds). DynamoDB deletes expired items
   * eventually; dynalite never does. The engine never relies on the deletion.
   */
  readonly timeToLiveAttribute: string;
}

/** Name of the TTL attribute on both tables (epoch seconds). */
export const TTL_ATTRIBUTE = 'ttl';

/** Index names, shared by the definitions and the adapters that query them. */
export const INDEX = {
  byWorkflow: 'byWorkflow',
  byWorkflowStatus: 'byWorkflowStatus',
  byDue: 'byDue',
  byExpiry: 'byExpiry',
  byDeadLetterPool: 'byDeadLetterPool',
} as const;

/**
 * Instances: one partition per instance (`pk` = `I#<instanceId>`).
 *
 * - Snapshot item, `sk` = `S`: the compacted state (`snap`, the snapshot's
 *   JSON, and its `version`, the journal seq it includes), `workflow`,
 *   `status`, `createdAt`, `updatedAt`, the run input (`inp`) and the
 *   creation's history (`created`); listing keys `wfpk` = `W#<workflow>@<shard>`,
 *   `wfspk` = `W#<workflow>#<status>@<shard>` (sharded by a hash of the instance id), `wfsk` = `<createdAt, 15 digits>#<instanceId>`;
 *   and, only while the snapshot has a due time (`dueAt`), `dueAt` and
 *   `duepk` = `DUE#<shard>` (a sparse index for the reaper, sharded by a hash
 *   of the instance id so no partition key takes every timer write).
 * - Journal items, `sk` = `J#<seq, 10 digits>`: `e` (the entry's events and
 *   history as JSON), `val` (the payload committed with them), and, while a
 *   control call's entry is watched, `dueAt`, `duepk` and `watched`.
 * - Value items, `sk` = `V#<valueId>`: `val` (JSON text; `undefined` as the
 *   text `undefined`).
 * - Dead-letter items, `sk` = `D#<deadLetterId>` (or, for a DLQ message that
 *   is no dispatch, `pk` = `DLQ#<pool>`): `dl` (the record's JSON) and the
 *   keys of the sparse `byDeadLetterPool` index, `dlpk` =
 *   `DL#<pool>@<shard>` (sharded by a hash of the instance id) and `dlsk` =
 *   `<at, 15 digits>#<deadLetterId>`, read newest first.
 *
 * Projections: the listing indexes INCLUDE only what a summary shows, so the
 * snapshot JSON is not copied into every index on every compaction; `byDue`
 * is KEYS_ONLY: the instance id (from `pk`), the item (`sk`) and `dueAt` are
 * all the reaper needs, and it reloads the instance consistently anyway;
 * `byDeadLetterPool` is ALL: a record is small and a listing shows all of it.
 */
export const instancesTable: TableDefinition = {
  id: 'Instances',
  partitionKey: { name: 'pk', type: 'S' },
  sortKey: { name: 'sk', type: 'S' },
  globalSecondaryIndexes: [
    {
      indexName: INDEX.byWorkflow,
      partitionKey: { name: 'wfpk', type: 'S' },
      sortKey: { name: 'wfsk', type: 'S' },
      projectionType: 'INCLUDE',
      nonKeyAttributes: ['workflow', 'status', 'createdAt', 'updatedAt'],
    },
    {
      indexName: INDEX.byWorkflowStatus,
      partitionKey: { name: 'wfspk', type: 'S' },
      sortKey: { name: 'wfsk', type: 'S' },
      projectionType: 'INCLUDE',
      nonKeyAttributes: ['workflow', 'status', 'createdAt', 'updatedAt'],
    },
    {
      indexName: INDEX.byDue,
      partitionKey: { name: 'duepk', type: 'S' },
      sortKey: { name: 'dueAt', type: 'N' },
      projectionType: 'KEYS_ONLY',
    },
    {
      indexName: INDEX.byDeadLetterPool,
      partitionKey: { name: 'dlpk', type: 'S' },
      sortKey: { name: 'dlsk', type: 'S' },
      projectionType: 'ALL',
    },
  ],
  timeToLiveAttribute: TTL_ATTRIBUTE,
};

/**
 * Claims: one lease item per (instance, task key), `pk` =
 * `<instanceId>|<taskKey>`, with `instanceId`, `taskKey`, `workerId`, `fence`,
 * `state` (`reserved` | `executing` | `free`), `expiresAt`, `startedAt`,
 * `lastHeartbeat`, and, only while the claim is live, `leasepk` =
 * `LEASE#<shard>` (the sparse `byExpiry` index for the reaper, sharded by a
 * hash of the instance id).
 *
 * Projection ALL: a claim item is a few hundred bytes and the reaper needs
 * every field of it to re-dispatch, so copying it costs less than reading back.
 */
export const claimsTable: TableDefinition = {
  id: 'Claims',
  partitionKey: { name: 'pk', type: 'S' },
  globalSecondaryIndexes: [
    {
      indexName: INDEX.byExpiry,
      partitionKey: { name: 'leasepk', type: 'S' },
      sortKey: { name: 'expiresAt', type: 'N' },
      projectionType: 'ALL',
    },
  ],
  timeToLiveAttribute: TTL_ATTRIBUTE,
};

/** Both tables, by role. */
export const tables = { instances: instancesTable, claims: claimsTable } as const;

/**
 * The `CreateTable` request for a definition, on-demand (`PAY_PER_REQUEST`).
 * TTL is not part of `CreateTable` (it is a separate `UpdateTimeToLive` call,
 * which dynalite does not implement), so it is left to the caller.
 *
 * @example
 * ```ts
 * await client.send(new CreateTableCommand(createTableInput(instancesTable, 'sayiir-instances')));
 * ```
 */
export function createTableInput(def: TableDefinition, tableName: string): CreateTableCommandInput {
  const attributes = new Map<string, KeyAttribute['type']>();
  const key = (partitionKey: KeyAttribute, sortKey: KeyAttribute | undefined) => {
    for (const a of sortKey ? [partitionKey, sortKey] : [partitionKey]) attributes.set(a.name, a.type);
    return [
      { AttributeName: partitionKey.name, KeyType: 'HASH' as const },
      ...(sortKey ? [{ AttributeName: sortKey.name, KeyType: 'RANGE' as const }] : []),
    ];
  };
  const keySchema = key(def.partitionKey, def.sortKey);
  const indexes = def.globalSecondaryIndexes.map((index) => ({
    IndexName: index.indexName,
    KeySchema: key(index.partitionKey, index.sortKey),
    Projection: {
      ProjectionType: index.projectionType,
      ...(index.projectionType === 'INCLUDE' ? { NonKeyAttributes: [...(index.nonKeyAttributes ?? [])] } : {}),
    },
  }));
  return {
    TableName: tableName,
    BillingMode: 'PAY_PER_REQUEST',
    KeySchema: keySchema,
    AttributeDefinitions: [...attributes].map(([AttributeName, AttributeType]) => ({ AttributeName, AttributeType })),
    ...(indexes.length > 0 ? { GlobalSecondaryIndexes: indexes } : {}),
  };
}
