// Automatic compaction policy: decides when the leader (or a single local
// member) should propose a compaction, in one of two modes:
//
// - 'revision': keep the last `retain` revisions (compact to rev - retain)
//   whenever at least `retain` new revisions have accumulated since the last
//   compaction (so compactions are not proposed for every write).
// - 'periodic': keep a retention window of `retainMs`. The policy samples
//   (time, revision) at most every retainMs / 10 and compacts to the newest
//   sampled revision that is older than the window, so everything written in
//   the last retainMs stays readable.
//
// It is a pure function of the samples and the injected clock, so tests drive
// it deterministically. Samples are bounded (at most 11 are kept).
export type AutoCompactMode = { mode: 'revision'; retain: number } | { mode: 'periodic'; retainMs: number };

export class AutoCompactor {
  private readonly policy: AutoCompactMode;
  private samples: { at: number; rev: number }[] = [];

  constructor(policy: AutoCompactMode) {
    if (policy.mode === 'revision' && (!Number.isSafeInteger(policy.retain) || policy.retain < 1)) throw new RangeError('retain must be a positive integer');
    if (policy.mode === 'periodic' && !(policy.retainMs > 0)) throw new RangeError('retainMs must be positive');
    this.policy = policy;
  }

  /** The revision to compact to now, or 0 for none. */
  next(now: number, revision: number, compactRevision: number): number {
    if (this.policy.mode === 'revision') {
      const target = revision - this.policy.retain;
      return target > compactRevision && target - compactRevision >= this.policy.retain ? target : 0;
    }
    const retainMs = this.policy.retainMs;
    const interval = retainMs / 10;
    const last = this.samples[this.samples.length - 1];
    if (last === undefined || now - last.at >= interval) {
      this.samples.push({ at: now, rev: revision });
      if (this.samples.length > 11) this.samples.shift();
    }
    let target = 0;
    for (const s of this.samples) if (now - s.at >= retainMs) target = s.rev;
    this.samples = this.samples.filter((s) => now - s.at < retainMs || s.rev === target);
    return target > compactRevision ? target : 0;
  }
}
