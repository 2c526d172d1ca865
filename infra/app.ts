import { App, Aspects } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { SayiirStack } from './sayiir-stack.ts';

/**
 * The CDK app (`cdk.json`: `npx tsx infra/app.ts`): the example workflows on
 * one pool. cdk-nag's AWS Solutions checks run on every synth, so a finding
 * without a written suppression fails `cdk synth`.
 */
const app = new App();
new SayiirStack(app, 'SayiirStack');
Aspects.of(app).add(new AwsSolutionsChecks());
