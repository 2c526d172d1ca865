import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type CfnElement, Stack } from 'aws-cdk-lib';
import type { Template } from 'aws-cdk-lib/assertions';
import type { CloudAssembly } from 'aws-cdk-lib/cx-api';
import type { IConstruct } from 'constructs';

/** Helpers shared by the infra tests: template queries, bundles, a Docker trap. */

type Json = unknown;
/** A template resource (every resource this engine declares has properties). */
export interface Resource {
  readonly Type: string;
  readonly Properties: Record<string, Json>;
  readonly Metadata?: Record<string, Json>;
}

/** Logical id of an L2 construct's CloudFormation resource. */
export function logicalIdOf(construct: IConstruct): string {
  return Stack.of(construct).getLogicalId(construct.node.defaultChild as CfnElement);
}

/** The resources of a type, by logical id. */
export function resourcesOf(template: Template, type: string): [string, Resource][] {
  const resources = (template.toJSON() as { Resources: Record<string, Resource> }).Resources;
  return Object.entries(resources).filter(([, r]) => r.Type === type);
}

/** One Allow statement of an identity policy, actions and resources normalised to arrays. */
export interface Statement {
  readonly actions: readonly string[];
  readonly resources: readonly Json[];
}

const array = <T>(value: T | readonly T[] | undefined): T[] =>
  value === undefined ? [] : Array.isArray(value) ? [...value] : [value as T];

/** Every Allow statement of every identity policy in the template (inline role policies included). */
export function allIdentityStatements(template: Template): Statement[] {
  const documents: Json[] = [
    ...resourcesOf(template, 'AWS::IAM::Policy').map(([, r]) => r.Properties.PolicyDocument),
    ...resourcesOf(template, 'AWS::IAM::ManagedPolicy').map(([, r]) => r.Properties.PolicyDocument),
    ...resourcesOf(template, 'AWS::IAM::Role').flatMap(([, r]) =>
      array(r.Properties.Policies as Json[] | undefined).map((p) => (p as { PolicyDocument: Json }).PolicyDocument),
    ),
  ];
  return documents.flatMap(statementsOf);
}

function statementsOf(document: Json): Statement[] {
  const statements = array((document as { Statement?: Json[] }).Statement);
  return statements
    .map((s) => s as { Effect: string; Action?: string | string[]; Resource?: Json })
    .filter((s) => s.Effect === 'Allow')
    .map((s) => ({ actions: array(s.Action), resources: array(s.Resource) }));
}

/** The Allow statements of the policies attached to a role (by the role's logical id). */
export function roleStatements(template: Template, roleLogicalId: string): Statement[] {
  const attached = resourcesOf(template, 'AWS::IAM::Policy').filter(([, r]) =>
    array(r.Properties.Roles as Json[] | undefined).some((role) => JSON.stringify(role).includes(`"${roleLogicalId}"`)),
  );
  const role = (template.toJSON() as { Resources: Record<string, Resource> }).Resources[roleLogicalId];
  const inline = array(role?.Properties.Policies as Json[] | undefined).map(
    (p) => (p as { PolicyDocument: Json }).PolicyDocument,
  );
  return [...attached.map(([, r]) => r.Properties.PolicyDocument), ...inline].flatMap(statementsOf);
}

/** IAM action pattern matching (`*` and `?` wildcards, case-insensitive like IAM). */
function actionMatches(pattern: string, action: string): boolean {
  const regex = new RegExp(
    `^${pattern
      .split('')
      .map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[.+^${}()|[\]\\]/g, '\\$&')))
      .join('')}$`,
    'i',
  );
  return regex.test(action);
}

/** Whether a resource entry designates the resource with this logical id (or everything). */
function resourceMatches(resource: Json, logicalId: string): boolean {
  if (resource === '*') return true;
  return JSON.stringify(resource).includes(`"${logicalId}"`);
}

/**
 * Whether the statements allow `action` on the resource with `logicalId`:
 * conservative, so that a wildcard action or a `*` resource counts as allowing.
 */
export function allows(statements: readonly Statement[], action: string, logicalId: string): boolean {
  return statements.some(
    (s) => s.actions.some((a) => actionMatches(a, action)) && s.resources.some((r) => resourceMatches(r, logicalId)),
  );
}

/** Whether the statements allow `action` on some resource whose rendering contains `fragment`. */
export function allowsOn(statements: readonly Statement[], action: string, fragment: string): boolean {
  return statements.some(
    (s) =>
      s.actions.some((a) => actionMatches(a, action)) && s.resources.some((r) => JSON.stringify(r).includes(fragment)),
  );
}

/**
 * Makes any Docker use fail loudly and leave a mark: `CDK_DOCKER` and a
 * `docker` first on `PATH` point at a script that records its arguments and
 * exits 1. Call before the stacks are built (bundling happens at construction).
 *
 * @returns the file the script writes when it is run.
 */
export function trapDocker(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'sayiir-no-docker-'));
  const marker = path.join(dir, 'docker-was-called');
  const script = path.join(dir, 'docker');
  writeFileSync(script, `#!/bin/sh\necho "$@" >> '${marker}'\nexit 1\n`);
  chmodSync(script, 0o755);
  process.env.CDK_DOCKER = script;
  process.env.PATH = `${dir}${path.delimiter}${process.env.PATH ?? ''}`;
  return marker;
}

/** Whether the Docker trap was sprung. */
export function dockerWasCalled(marker: string): boolean {
  return existsSync(marker);
}

/** Path of the bundled `index.mjs` of a Lambda function (by logical id) in a synthesized assembly. */
export function bundleOf(assembly: CloudAssembly, stack: Stack, template: Template, functionLogicalId: string): string {
  const fn = (template.toJSON() as { Resources: Record<string, Resource> }).Resources[functionLogicalId];
  const key = (fn?.Properties.Code as { S3Key?: string } | undefined)?.S3Key;
  if (!key) throw new Error(`function ${functionLogicalId} has no S3Key`);
  const manifest = JSON.parse(
    readFileSync(path.join(assembly.directory, `${stack.artifactId}.assets.json`), 'utf8'),
  ) as { files: Record<string, { source: { path: string } }> };
  const hash = key.replace(/\.zip$/, '');
  const source = manifest.files[hash]?.source.path;
  if (!source) throw new Error(`no asset ${hash} in the manifest`);
  return path.join(assembly.directory, source, 'index.mjs');
}

/** Docker image assets in a synthesized stack's asset manifest. */
export function dockerImageAssets(assembly: CloudAssembly, stack: Stack): number {
  const manifest = JSON.parse(
    readFileSync(path.join(assembly.directory, `${stack.artifactId}.assets.json`), 'utf8'),
  ) as {
    dockerImages?: Record<string, unknown>;
  };
  return Object.keys(manifest.dockerImages ?? {}).length;
}

/** The result of invoking a bundled handler in a fresh Node process. */
export interface Invocation {
  readonly ok: boolean;
  /** The handler's result (JSON), or the error's `name: message`. */
  readonly output: string;
}

/**
 * Imports a bundle in a child Node process and calls its `handler` once, with
 * only the given environment (plus PATH): proves the bundle loads and runs
 * outside the repository's module graph.
 */
export function invokeBundle(bundle: string, event: unknown, env: Record<string, string>): Invocation {
  const script = `
    const { handler } = await import(${JSON.stringify(`file://${bundle}`)});
    const context = { getRemainingTimeInMillis: () => 5000 };
    try {
      const result = await handler(${JSON.stringify(event)}, context);
      process.stdout.write(JSON.stringify({ ok: true, output: JSON.stringify(result) }));
    } catch (e) {
      process.stdout.write(JSON.stringify({ ok: false, output: e.name + ': ' + e.message }));
    }`;
  const child = spawnSync(process.execPath, ['--no-warnings', '--input-type=module', '-e', script], {
    env: { PATH: process.env.PATH ?? '', AWS_REGION: 'us-east-1', ...env },
    encoding: 'utf8',
    timeout: 20_000,
  });
  if (child.status !== 0) throw new Error(`bundle ${bundle} crashed: ${child.stderr}`);
  return JSON.parse(child.stdout) as Invocation;
}
