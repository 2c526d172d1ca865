import { App, Aspects } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { workflows } from '../workflows/index.ts';
import { addSayiirNagSuppressions } from './nag.ts';
import { SayiirStack } from './sayiir-stack.ts';

/**
 * The CDK app (`cdk.json`: `npx tsx infra/app.ts`): the example workflows on
 * one pool. The workflows are imported here too, so the synth fails if one
 * names a pool the stack does not deploy. cdk-nag's AWS Solutions checks run
 * on every synth, so a finding without a written suppression fails
 * `cdk synth`. The suppressions (each with its reason) are applied here, not in
 * the construct: cdk-nag is this repository's tool, not a dependency of the package.
 */
const app = new App();
const stack = new SayiirStack(app, 'SayiirStack', { engine: { workflows } });
addSayiirNagSuppressions(stack.engine);
Aspects.of(app).add(new AwsSolutionsChecks());
