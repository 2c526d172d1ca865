import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Duration, RemovalPolicy } from 'aws-cdk-lib';
import { Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import {
  ApplicationLogLevel,
  Architecture,
  LoggingFormat,
  Runtime,
  SystemLogLevel,
  Tracing,
} from 'aws-cdk-lib/aws-lambda';
import { type ICommandHooks, LogLevel, NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import type { LogLevel as SayiirLogLevel } from '../shared/observability/log.ts';
import { OTEL_SDK_MODULES } from '../shared/observability/otlp.ts';
import { LOCK_FILES } from './entries.ts';
import { EngineConfigError } from './pools.ts';

/** The Lambda runtime of every engine function (Node 20 is deprecated on Lambda). */
export const ENGINE_RUNTIME = Runtime.NODEJS_22_X;

/**
 * An ESM bundle needs `require` for the CommonJS modules it inlines that
 * require Node built-ins; esbuild's shim calls it when it exists.
 */
const REQUIRE_BANNER =
  "import { createRequire as __sayiirCreateRequire } from 'node:module'; const require = __sayiirCreateRequire(import.meta.url);";

/**
 * The lock file at the root of a bundling project.
 *
 * @throws EngineConfigError when the folder has none.
 */
export function lockFileOf(projectRoot: string): string {
  for (const name of LOCK_FILES) {
    const file = path.join(projectRoot, name);
    if (existsSync(file)) return file;
  }
  throw new EngineConfigError(`no lock file (${LOCK_FILES.join(', ')}) in projectRoot ${projectRoot}`);
}

/** Props of {@link engineFunction}. */
export interface EngineFunctionProps {
  /** The entry module (exports `handler`); must be inside `projectRoot`. */
  readonly entry: string;
  /** Bundling project root: its `node_modules` holds esbuild and the dependencies. */
  readonly projectRoot: string;
  readonly description: string;
  readonly memorySize: number;
  readonly timeout: Duration;
  readonly environment: Readonly<Record<string, string>>;
  readonly logRetention: RetentionDays;
  /** Removal policy of the function's log group. */
  readonly logRemovalPolicy: RemovalPolicy;
  /** Level of the application's log lines (`LOG_LEVEL`, and Lambda's application log level). @default 'INFO' */
  readonly logLevel?: Exclude<SayiirLogLevel, 'SILENT'>;
  /**
   * OTLP/HTTP endpoint to export traces to (e.g. a collector's
   * `http://collector:4318`). When set, the OpenTelemetry SDK and exporter
   * are installed next to the bundle and loaded at the first invocation.
   * @default no trace export (only `@opentelemetry/api`, a no-op, is bundled)
   */
  readonly otlpEndpoint?: string;
  /** Shell commands run around bundling (the UI function copies its static files in). @default none */
  readonly commandHooks?: ICommandHooks;
}

const LAMBDA_LOG_LEVEL: Record<NonNullable<EngineFunctionProps['logLevel']>, ApplicationLogLevel> = {
  DEBUG: ApplicationLogLevel.DEBUG,
  INFO: ApplicationLogLevel.INFO,
  WARN: ApplicationLogLevel.WARN,
  ERROR: ApplicationLogLevel.ERROR,
};

/**
 * One engine Lambda with the settings they all share: Node.js 22 on ARM64,
 * bundled by the locally installed esbuild (never Docker) into one minified
 * ESM file with a source map, the AWS SDK bundled too (the versions tested are
 * the versions deployed), active X-Ray tracing, its own log group with a
 * retention, Lambda's JSON log format with the log level given (Powertools
 * reads it as `LOG_LEVEL`), and its own role that starts with no permission but writing to
 * that log group (no AWS managed policy): every other right is granted by the
 * engine, resource by resource.
 *
 * @example
 * ```ts
 * const fn = engineFunction(this, 'Api', { entry, projectRoot, description: 'HTTP API', memorySize: 512, timeout: Duration.seconds(10), environment: {}, logRetention: RetentionDays.ONE_MONTH, logRemovalPolicy: RemovalPolicy.RETAIN });
 * table.grantReadWriteData(fn);
 * ```
 */
export function engineFunction(scope: Construct, id: string, props: EngineFunctionProps): NodejsFunction {
  const logGroup = new LogGroup(scope, `${id}Logs`, {
    retention: props.logRetention,
    removalPolicy: props.logRemovalPolicy,
  });
  const role = new Role(scope, `${id}Role`, {
    assumedBy: new ServicePrincipal('lambda.amazonaws.com'),
    description: `Sayiir ${id}: ${props.description}`,
  });
  logGroup.grantWrite(role);
  const logLevel = props.logLevel ?? 'INFO';
  const tracing: Record<string, string> =
    props.otlpEndpoint === undefined ? {} : { OTEL_EXPORTER_OTLP_ENDPOINT: props.otlpEndpoint };
  return new NodejsFunction(scope, id, {
    entry: props.entry,
    projectRoot: props.projectRoot,
    depsLockFilePath: lockFileOf(props.projectRoot),
    handler: 'handler',
    description: props.description,
    runtime: ENGINE_RUNTIME,
    architecture: Architecture.ARM_64,
    memorySize: props.memorySize,
    timeout: props.timeout,
    tracing: Tracing.ACTIVE,
    role,
    logGroup,
    loggingFormat: LoggingFormat.JSON,
    applicationLogLevelV2: LAMBDA_LOG_LEVEL[logLevel],
    // INFO keeps the platform's START, END and REPORT lines (billed duration, memory used).
    systemLogLevelV2: SystemLogLevel.INFO,
    environment: {
      ...props.environment,
      NODE_OPTIONS: '--enable-source-maps',
      LOG_LEVEL: logLevel,
      OTEL_SERVICE_NAME: `sayiir-${id.toLowerCase()}`,
      ...tracing,
    },
    bundling: {
      // The SDK is imported by computed names (never bundled): installed beside the bundle only when tracing is on.
      ...(props.otlpEndpoint === undefined ? {} : { nodeModules: [...OTEL_SDK_MODULES] }),
      forceDockerBundling: false,
      format: OutputFormat.ESM,
      mainFields: ['module', 'main'],
      banner: REQUIRE_BANNER,
      bundleAwsSDK: true,
      minify: true,
      keepNames: true,
      sourceMap: true,
      sourcesContent: false,
      target: 'node22',
      logLevel: LogLevel.WARNING,
      ...(props.commandHooks ? { commandHooks: props.commandHooks } : {}),
    },
  });
}
