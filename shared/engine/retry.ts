import { type Duration, toMillis } from './duration.ts';

/**
 * How a failed task is retried. Backoff is exponential, capped by `maxDelay`,
 * with jitter to spread retries of many runs over time.
 */
export interface RetryPolicy {
  /** Total attempts, the first included. `1` disables retries. @default 3 */
  readonly maxAttempts?: number;
  /** Delay before the second attempt (before jitter). @default '1s' */
  readonly initialDelay?: Duration;
  /** Factor applied to the delay after each failed attempt. @default 2 */
  readonly backoffMultiplier?: number;
  /** Upper bound of any delay. @default '5m' */
  readonly maxDelay?: Duration;
  /**
   * `full`: uniform in [0, d]; `equal`: uniform in [d/2, d]; `none`: exactly d.
   * @default 'full'
   */
  readonly jitter?: 'full' | 'equal' | 'none';
}

/** A retry policy with every field resolved to numbers. */
export interface ResolvedRetryPolicy {
  readonly maxAttempts: number;
  readonly initialDelayMs: number;
  readonly backoffMultiplier: number;
  readonly maxDelayMs: number;
  readonly jitter: 'full' | 'equal' | 'none';
}

export const DEFAULT_RETRY: ResolvedRetryPolicy = {
  maxAttempts: 3,
  initialDelayMs: 1_000,
  backoffMultiplier: 2,
  maxDelayMs: 300_000,
  jitter: 'full',
};

export function resolveRetry(policy: RetryPolicy | undefined): ResolvedRetryPolicy {
  return {
    maxAttempts: policy?.maxAttempts ?? DEFAULT_RETRY.maxAttempts,
    initialDelayMs: policy?.initialDelay === undefined ? DEFAULT_RETRY.initialDelayMs : toMillis(policy.initialDelay),
    backoffMultiplier: policy?.backoffMultiplier ?? DEFAULT_RETRY.backoffMultiplier,
    maxDelayMs: policy?.maxDelay === undefined ? DEFAULT_RETRY.maxDelayMs : toMillis(policy.maxDelay),
    jitter: policy?.jitter ?? DEFAULT_RETRY.jitter,
  };
}

/** The delay before `attempt + 1`, without jitter: `min(maxDelay, initial * multiplier^(attempt-1))`. */
export function baseDelay(policy: ResolvedRetryPolicy, failedAttempt: number): number {
  const raw = policy.initialDelayMs * policy.backoffMultiplier ** Math.max(0, failedAttempt - 1);
  return Math.min(policy.maxDelayMs, raw);
}

/**
 * The delay before the attempt after `failedAttempt`, jitter applied.
 *
 * `unit` is a number in [0, 1). The reducer derives it from a hash of the
 * instance, task key and attempt, so the engine stays pure and a replayed
 * decision is the same decision.
 */
export function backoffDelay(policy: ResolvedRetryPolicy, failedAttempt: number, unit: number): number {
  const d = baseDelay(policy, failedAttempt);
  switch (policy.jitter) {
    case 'none':
      return d;
    case 'equal':
      return Math.floor(d / 2 + unit * (d / 2));
    default:
      return Math.floor(unit * d);
  }
}

/** FNV-1a over a string, mapped to [0, 1). Deterministic pseudo-randomness for jitter. */
export function hashUnit(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  // One round of xorshift-multiply to spread nearby inputs.
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  return (h >>> 0) / 0x1_0000_0000;
}

/**
 * Whether the failure of attempt `attempt` of task `key` is retried, and
 * after how long: `undefined` when it is final (not retryable, or the
 * attempts of its budget, `used` with this one, are spent). The one rule of
 * the reducer (a task in the frontier) and of the worker (a task of a child
 * in its lane, whose retry waits on a lane timer). Deterministic: the
 * jitter comes from the instance, the key and the attempt.
 */
export function retryBackoff(
  policy: ResolvedRetryPolicy,
  failure: {
    readonly instanceId: string;
    readonly key: string;
    readonly attempt: number;
    readonly used: number;
    readonly retryable: boolean;
  },
): number | undefined {
  if (!failure.retryable || failure.used >= policy.maxAttempts) return undefined;
  return backoffDelay(policy, failure.attempt, hashUnit(`${failure.instanceId}|${failure.key}|${failure.attempt}`));
}
