// A user's own CDK app with the engine in it; synthesized through node, offline.
import { App, CfnOutput, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { SayiirEngine } from 'sayiir-aws/cdk';
import { workflows } from './workflows.mjs';

const app = new App({ outdir: process.env.CDK_OUTDIR ?? 'cdk.out' });
const stack = new Stack(app, 'ShopStack');
const engine = new SayiirEngine(stack, 'Sayiir', {
  workflowsEntry: process.env.WORKFLOWS_ENTRY ?? 'workflows.mjs',
  workflows,
  removalPolicy: RemovalPolicy.DESTROY,
  webUi: process.env.WEB_UI !== 'false',
});
const caller = new Role(stack, 'Caller', { assumedBy: new ServicePrincipal('lambda.amazonaws.com') });
engine.grantStartWorkflows(caller);
new CfnOutput(stack, 'ApiUrl', { value: engine.apiUrl });
app.synth();
