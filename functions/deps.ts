/** Placeholder until the DynamoDB/SQS/Secrets Manager adapters are wired; to be replaced. */
export function defaultApiDeps(): never {
  throw new Error('not wired yet');
}
