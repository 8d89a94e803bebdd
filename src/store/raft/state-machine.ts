// The seam between the Raft driver and what it replicates. The driver hands
// committed entries, in log order, to a StateMachine; the MVCC keyspace is the
// main implementation.

/** One committed log entry as the state machine sees it. */
export interface CommittedEntry {
  index: number;
  term: number;
  /** The proposer's opaque payload; empty for the leader's no-op entry of a new term. */
  data: Buffer;
}

export interface StateMachine {
  /**
   * Index of the last entry whose effects are stored. Invariant: the effects
   * of entry i and the applied index i are written in one atomic storage
   * transaction, so after a crash the driver replays exactly the entries
   * after appliedIndex() (none skipped, none applied twice).
   */
  appliedIndex(): number;
  /**
   * Apply committed entries in order. Every entry's index is exactly
   * appliedIndex() + 1 at the time it is applied. Empty entries only advance
   * the applied index. Resolves when the results are visible to reads.
   */
  apply(entries: CommittedEntry[]): Promise<void>;
  /** A snapshot of the whole state at appliedIndex(), opaque to the driver. */
  snapshot(): Promise<{ index: number; data: Buffer }>;
  /** Replace the whole state with a snapshot taken at `index`. */
  restore(index: number, data: Buffer): Promise<void>;
}
