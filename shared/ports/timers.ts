/**
 * Where due timers are found. A timer (delay end, signal timeout, retry
 * backoff) lives in its instance's snapshot (`Snapshot.dueAt` is the earliest);
 * this index lists instances with one due, for the reaper, and the journal
 * entries of control calls that may not be compacted yet.
 */
export interface DueInstance {
  readonly instanceId: string;
  readonly dueAt: number;
  /** Set when what is due is a watched journal entry (see `JournalEntry.watchAt`): its `seq`. */
  readonly watched?: number;
}

export interface TimerIndex {
  /** Instances whose earliest timer is due at or before `now`, earliest first. Eventually consistent. */
  due(now: number, limit: number): Promise<DueInstance[]>;
}
