/**
 * Sayiir for AWS, the CDK side: the engine as one construct to put in your
 * own stack (`sayiir-aws/cdk`).
 *
 * @example
 * ```ts
 * import { SayiirEngine } from 'sayiir-aws/cdk';
 * const engine = new SayiirEngine(this, 'Sayiir', { workflowsEntry: 'src/workflows.ts' });
 * engine.grantStartWorkflows(myFunction);
 * ```
 */

export { type ClaimTimings, EngineConfigError, type WorkerPoolProps } from './pools.ts';
export { SayiirEngine, type SayiirEngineProps, type SayiirMetrics, sayiirMetric } from './sayiir-engine.ts';
export { SayiirStack, type SayiirStackProps } from './sayiir-stack.ts';
