/**
 * Seeded randomness for the chaos suite, two kinds:
 *
 * - {@link Prng}: a stream (mulberry32), for the plan: which workflows run,
 *   their inputs, when runs start and when the stack restarts;
 * - {@link FaultDice}: a decision per named event, `hash(seed, kind, event,
 *   occurrence)`, for faults. A fault therefore depends on *what* happens
 *   (kill task `t` of run `r` at phase `p`, the 2nd time it gets there), not
 *   on the order in which concurrent workers reach their decision points, so
 *   one seed injects the same faults into the same events from one run of the
 *   suite to the next, even though thread timing differs.
 */

/** A seeded pseudo-random stream (mulberry32). */
export class Prng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** A number in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 0x1_0000_0000;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** A number in [min, max). */
  between(min: number, max: number): number {
    return min + this.next() * (max - min);
  }
}

/** FNV-1a then a murmur3 finaliser, to [0, 1). */
export function hashUnit(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0) / 0x1_0000_0000;
}

/**
 * Decides faults: `roll(kind, event, p)` is true with probability `p`, as a
 * function of the seed, the kind, the event's name and how many times that
 * name was rolled before.
 *
 * @example
 * ```ts
 * const dice = new FaultDice(42);
 * if (dice.roll('kill', `executed|${instanceId}|${key}|${attempt}`, 0.05)) throw new WorkerKilledError('executed', key);
 * ```
 */
export class FaultDice {
  private readonly seen = new Map<string, number>();

  constructor(private readonly seed: number) {}

  roll(kind: string, event: string, p: number): boolean {
    if (p <= 0) return false;
    const id = `${kind}|${event}`;
    const n = this.seen.get(id) ?? 0;
    this.seen.set(id, n + 1);
    return hashUnit(`${this.seed}|${id}|${n}`) < p;
  }
}
