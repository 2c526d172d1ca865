import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { EXAMPLE_WORKFLOWS_ENTRY } from './entries.ts';
import { SayiirEngine, type SayiirEngineProps } from './sayiir-engine.ts';

/** Props of {@link SayiirStack}. */
export interface SayiirStackProps extends StackProps {
  /**
   * The engine's props.
   * @default the example workflows (`workflows/index.ts`) on one 'default' pool
   */
  readonly engine?: Partial<SayiirEngineProps>;
}

/**
 * A stack holding one {@link SayiirEngine}, with the outputs a client needs:
 * the API URL, where the API key is, and the table names. Environment-agnostic
 * unless `env` is given, so it synthesizes without AWS credentials.
 *
 * @example
 * ```ts
 * new SayiirStack(new App(), 'SayiirStack');
 * ```
 */
export class SayiirStack extends Stack {
  readonly engine: SayiirEngine;

  constructor(scope: Construct, id: string, props: SayiirStackProps = {}) {
    super(scope, id, { description: 'Sayiir durable workflow engine', ...props });
    this.engine = new SayiirEngine(this, 'Sayiir', { workflowsEntry: EXAMPLE_WORKFLOWS_ENTRY, ...props.engine });
    new CfnOutput(this, 'ApiUrl', { value: this.engine.apiUrl, description: 'Base URL of the HTTP API' });
    if (this.engine.uiFunction) {
      new CfnOutput(this, 'UiUrl', {
        value: `${this.engine.apiUrl}ui`,
        description: 'The web UI: open it and paste the API key',
      });
    }
    new CfnOutput(this, 'ApiKeySecretArn', {
      value: this.engine.apiKeySecret.secretArn,
      description: 'Secret holding the API key (x-api-key)',
    });
    new CfnOutput(this, 'ApiKeySecretName', {
      value: this.engine.apiKeySecret.secretName,
      description: 'aws secretsmanager get-secret-value --secret-id <this> --query SecretString',
    });
    new CfnOutput(this, 'InstancesTableName', { value: this.engine.tables.instances.tableName });
    new CfnOutput(this, 'ClaimsTableName', { value: this.engine.tables.claims.tableName });
  }
}
