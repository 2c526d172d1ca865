/**
 * Where due timers are found. A timer (delay end, signal timeout, retry
 * backoff) lives in its instance's snapshot (`Snapshot.dueAt` is the earliest);
 * this index lists instances with one due, for the reaper, the journal
 * entries of control calls that may not be compacted yet, and the lane
 * timers (`LaneTimer`) that are due.
 */
export interface DueInstance {
  readonly instanceId: string;
  readonly dueAt: number;
  /** Set when what is due is a watched journal entry (see `JournalEntry.watchAt`): its `seq`. */
  readonly watched?: number;
  /** Set when what is due is a lane timer (see `LaneTimer`): its id. */
  readonly timer?: string;
}

export interface TimerIndex {
  /**
   * Instances with live work due at or before `now` (their earliest timer or
   * dispatch check), and watched journal entries, earliest first.
   * Eventually consistent. Finished runs waiting for their purge are not
   * among them: see {@link duePurges}.
   */
  due(now: number, limit: number): Promise<DueInstance[]>;
  /**
   * Finished runs whose retention ended at or before `now`, earliest first:
   * the reaper's purges, listed apart from live work so that a backlog of
   * purges never holds up a timer. Eventually consistent.
   */
  duePurges(now: number, limit: number): Promise<DueInstance[]>;
}
