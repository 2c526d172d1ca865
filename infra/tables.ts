import { RemovalPolicy } from 'aws-cdk-lib';
import {
  type Attribute,
  type AttributeType,
  BillingMode,
  type GlobalSecondaryIndexProps,
  type ProjectionType,
  Table,
  TableEncryption,
  type TableProps,
} from 'aws-cdk-lib/aws-dynamodb';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';
import { type KeyAttribute, type TableDefinition, tables } from '../shared/resources/tables.ts';

/** The schema of a table in CDK terms: its key and TTL props, and its indexes. */
export interface TableSchema {
  readonly props: Pick<TableProps, 'partitionKey' | 'sortKey' | 'timeToLiveAttribute'>;
  readonly globalSecondaryIndexes: readonly GlobalSecondaryIndexProps[];
}

/**
 * The schema part of a table (keys, indexes, TTL attribute), converted from
 * the shared definition: the definition's literals are CDK's enum values
 * (`AttributeType`, `ProjectionType`) and its field names CDK's, so this is
 * a copy with casts, never a second schema.
 *
 * @example
 * ```ts
 * const { props, globalSecondaryIndexes } = tableSchema(claimsTable);
 * const table = new Table(this, 'Claims', { ...props, billingMode: BillingMode.PAY_PER_REQUEST });
 * for (const index of globalSecondaryIndexes) table.addGlobalSecondaryIndex(index);
 * ```
 */
export function tableSchema(def: TableDefinition): TableSchema {
  const attribute = (a: KeyAttribute): Attribute => ({ name: a.name, type: a.type as AttributeType });
  return {
    props: {
      partitionKey: attribute(def.partitionKey),
      ...(def.sortKey ? { sortKey: attribute(def.sortKey) } : {}),
      timeToLiveAttribute: def.timeToLiveAttribute,
    },
    globalSecondaryIndexes: def.globalSecondaryIndexes.map((index) => ({
      indexName: index.indexName,
      partitionKey: attribute(index.partitionKey),
      ...(index.sortKey ? { sortKey: attribute(index.sortKey) } : {}),
      projectionType: index.projectionType as ProjectionType,
      ...(index.nonKeyAttributes ? { nonKeyAttributes: [...index.nonKeyAttributes] } : {}),
    })),
  };
}

/** Props of {@link SayiirTables}. */
export interface SayiirTablesProps {
  /**
   * Customer-managed KMS key for both tables.
   * @default the AWS-managed key (`aws/dynamodb`)
   */
  readonly encryptionKey?: IKey;
  /**
   * What happens to the tables when they leave the stack.
   * @default RemovalPolicy.RETAIN (they hold the workflows' state)
   */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * Both engine tables, from `shared/resources/tables.ts`: on-demand billing,
 * point-in-time recovery, KMS encryption at rest, the retention TTL attribute
 * and the indexes the DynamoDB adapters query. Physical names are left to
 * CloudFormation; the functions get them through their environment.
 *
 * `Table` (AWS::DynamoDB::Table), not `TableV2`: a global table cannot render
 * a customer-managed key in an environment-agnostic stack, and the engine
 * lives in one region.
 */
export class SayiirTables extends Construct {
  /** Snapshots, task outputs, signals, history (see `instancesTable`). */
  readonly instances: Table;
  /** Two-phase claims with their fences (see `claimsTable`). */
  readonly claims: Table;

  constructor(scope: Construct, id: string, props: SayiirTablesProps = {}) {
    super(scope, id);
    const table = (def: TableDefinition) => {
      const schema = tableSchema(def);
      const created = new Table(this, def.id, {
        ...schema.props,
        billingMode: BillingMode.PAY_PER_REQUEST,
        pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
        ...(props.encryptionKey
          ? { encryption: TableEncryption.CUSTOMER_MANAGED, encryptionKey: props.encryptionKey }
          : { encryption: TableEncryption.AWS_MANAGED }),
        removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
      });
      for (const index of schema.globalSecondaryIndexes) created.addGlobalSecondaryIndex(index);
      return created;
    };
    this.instances = table(tables.instances);
    this.claims = table(tables.claims);
  }
}
