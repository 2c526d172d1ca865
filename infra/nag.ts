import { type CfnElement, Stack } from 'aws-cdk-lib';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import type { IBucket } from 'aws-cdk-lib/aws-s3';
import { NagSuppressions } from 'cdk-nag';
import type { Construct } from 'constructs';
import type { SayiirEngine } from './sayiir-engine.ts';

/*
 * Not part of the package a consumer imports (cdk-nag is a devDependency of
 * this repository): the repository's own app and tests apply these to an
 * engine; a user who runs cdk-nag can copy them, each reason written out.
 *
 * cdk-nag (AwsSolutions) findings on the engine that are accepted, each with
 * its reason. Everything else the pack checks is fixed in the constructs:
 * PITR on the tables, SSE and TLS-only policies and DLQs on the queues, access
 * logs on the API stage, an authorizer on every route, no managed policies
 * (each function has its own role).
 */

/** Options of {@link addEngineNagSuppressions}. */
export interface EngineNagSuppressionOptions {
  /** The engine's functions: the runtime finding is on them, the IAM ones on their roles. */
  readonly functions: readonly IFunction[];
  /** The tables use a customer-managed KMS key (its grants carry `kms:*` wildcards). */
  readonly customerManagedKey: boolean;
  /** The payload bucket: its object grant is `<bucket ARN>/*`. */
  readonly payloadBucket?: IBucket;
}

/** Matches a grant helper's `<table ARN>/index/*` resource, and nothing else. */
const TABLE_INDEXES = { regex: '/^Resource::<[A-Za-z0-9]+\\.Arn>\\/index\\/\\*$/g' };

/**
 * Adds the engine's suppressions to its functions and their roles (with
 * the roles' policies), nowhere else.
 *
 * @example
 * ```ts
 * addEngineNagSuppressions({ functions: [api, worker], customerManagedKey: false });
 * ```
 */
export function addEngineNagSuppressions(options: EngineNagSuppressionOptions): void {
  NagSuppressions.addResourceSuppressions(
    [...options.functions],
    [
      {
        id: 'AwsSolutions-L1',
        reason:
          'The engine pins Node.js 22 (DESIGN.md: Node 22 on Lambda): the handlers are bundled for and tested on node22, ' +
          'so moving to a newer runtime is a deliberate, tested change, not one a linter makes.',
      },
    ],
  );
  const roles = options.functions.flatMap((fn) => (fn.role ? [fn.role] : []));
  NagSuppressions.addResourceSuppressions(
    roles,
    [
      {
        id: 'AwsSolutions-IAM5',
        reason:
          'X-Ray tracing (xray:PutTraceSegments, xray:PutTelemetryRecords) supports no resource-level permission, ' +
          'so its resource is "*"; a test asserts that "*" resources carry X-Ray actions only.',
        appliesTo: ['Resource::*'],
      },
      {
        id: 'AwsSolutions-IAM5',
        reason:
          'The table grant covers the table and its own global secondary indexes (<table ARN>/index/*), ' +
          'which the adapters query (listing, due timers, expired claims); it reaches no other table.',
        appliesTo: [TABLE_INDEXES],
      },
      ...(options.payloadBucket
        ? [
            {
              id: 'AwsSolutions-IAM5',
              reason:
                'The payload grant covers the objects of the engine payload bucket (<bucket ARN>/*): keys are ' +
                'chosen at run time (<instance>/<value>), and the grant reaches no other bucket.',
              appliesTo: [`Resource::<${logicalIdOf(options.payloadBucket)}.Arn>/*`],
            },
          ]
        : []),
      ...(options.customerManagedKey
        ? [
            {
              id: 'AwsSolutions-IAM5',
              reason:
                'The table grant on a customer-managed key includes kms:ReEncrypt* and kms:GenerateDataKey*, ' +
                'scoped to that one key, as DynamoDB needs for encryption at rest.',
              appliesTo: ['Action::kms:ReEncrypt*', 'Action::kms:GenerateDataKey*'],
            },
          ]
        : []),
    ],
    true,
  );
}

/**
 * Suppressions on the payload bucket.
 *
 * @example
 * ```ts
 * addPayloadBucketNagSuppressions(engine.payloadBucket);
 * ```
 */
export function addPayloadBucketNagSuppressions(bucket: IBucket): void {
  NagSuppressions.addResourceSuppressions(bucket, [
    {
      id: 'AwsSolutions-S1',
      reason:
        'Only the engine functions read and write payloads, through their own roles; server access logs would ' +
        'add a log object per request to yet another bucket (which would need its own logging). Turn on ' +
        'CloudTrail S3 data events on this bucket for an audit trail of object access.',
    },
  ]);
}

/** Logical id of an L2 construct's CloudFormation resource, as cdk-nag names it in `appliesTo`. */
function logicalIdOf(construct: IBucket): string {
  return Stack.of(construct).getLogicalId(construct.node.defaultChild as CfnElement);
}

/**
 * Suppressions on the API key secret.
 *
 * @example
 * ```ts
 * addApiKeySecretNagSuppressions(engine.apiKeySecret);
 * ```
 */
export function addApiKeySecretNagSuppressions(secret: Construct): void {
  NagSuppressions.addResourceSuppressions(secret, [
    {
      id: 'AwsSolutions-SMG4',
      reason:
        'API keys are handed to clients out of band: an automatic rotation would break every client at once. ' +
        'Rotate by adding a key to the JSON array, moving clients over, then removing the old key ' +
        '(the api re-reads the secret within a minute).',
    },
  ]);
}

/**
 * Suppressions on the web UI's routes: they serve the static shell only, so
 * they are public; every data call the page makes goes to `/v1`, behind the
 * authorizer, with the key the user types in.
 *
 * @example
 * ```ts
 * addUiRouteNagSuppressions(httpApi.addRoutes({ path: '/ui', methods: [HttpMethod.GET], integration, authorizer: new HttpNoneAuthorizer() }));
 * ```
 */
export function addUiRouteNagSuppressions(routes: readonly Construct[]): void {
  NagSuppressions.addResourceSuppressions(
    [...routes],
    [
      {
        id: 'AwsSolutions-APIG4',
        reason:
          'The web UI routes serve public static files (HTML, script, stylesheet) holding no data; ' +
          'the page sends the API key the user types in on every /v1 call, and /v1 is behind the authorizer.',
      },
    ],
  );
}

/**
 * Every accepted finding of one engine: its functions and roles, the payload
 * bucket, the API key secret and the web UI's public routes.
 *
 * @example
 * ```ts
 * const engine = new SayiirEngine(stack, 'Sayiir', { workflowsEntry: 'workflows/index.ts' });
 * Aspects.of(app).add(new AwsSolutionsChecks());
 * addSayiirNagSuppressions(engine);
 * ```
 */
export function addSayiirNagSuppressions(engine: SayiirEngine): void {
  addEngineNagSuppressions({
    functions: [
      engine.apiFunction,
      engine.authorizerFunction,
      engine.reaperFunction,
      ...Object.values(engine.workerFunctions),
      ...(engine.uiFunction ? [engine.uiFunction] : []),
    ],
    customerManagedKey: engine.encryptionKey !== undefined,
    payloadBucket: engine.payloadBucket,
  });
  addPayloadBucketNagSuppressions(engine.payloadBucket);
  addApiKeySecretNagSuppressions(engine.apiKeySecret);
  if (engine.uiRoutes.length > 0) addUiRouteNagSuppressions(engine.uiRoutes);
}
