// ChunkStream: the body of a streaming response (watch). The producer pushes
// pre-serialized chunks; the consumer (the HTTP adapter or the in-process
// client) iterates them. The queue is bounded: a consumer that falls
// chunksMax behind is cut off (the stream ends with `overflowed` set) rather
// than allowed to grow memory, and the producer is told so by push() = false.
export class ChunkStream implements AsyncIterable<Buffer> {
  private readonly queue: Buffer[] = [];
  private waiter: ((v: void) => void) | null = null;
  private ended = false;
  private closeHandlers: (() => void)[] = [];
  overflowed = false;

  constructor(private readonly chunksMax: number) {}

  get closed(): boolean { return this.ended; }

  /** Queues a chunk; false when the stream is closed or this chunk overflowed it (which closes it). */
  push(chunk: Buffer): boolean {
    if (this.ended) return false;
    if (this.queue.length >= this.chunksMax) {
      this.overflowed = true;
      this.end();
      return false;
    }
    this.queue.push(chunk);
    this.wake();
    return true;
  }

  /** Ends the stream after the queued chunks; runs the close handlers once. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.wake();
    const hs = this.closeHandlers;
    this.closeHandlers = [];
    for (const h of hs) h();
  }

  /** Runs when the stream ends for any reason (producer end, consumer gone, overflow). */
  onClose(h: () => void): void {
    if (this.ended) h();
    else this.closeHandlers.push(h);
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  /** Takes every queued chunk at once (the HTTP adapter writes them in one go). */
  drain(): Buffer[] {
    return this.queue.splice(0, this.queue.length);
  }

  /** Resolves when a chunk is queued or the stream ended. */
  ready(): Promise<void> {
    if (this.queue.length > 0 || this.ended) return Promise.resolve();
    return new Promise((r) => { this.waiter = r; });
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Buffer> {
    try {
      for (;;) {
        await this.ready();
        const chunks = this.drain();
        for (const c of chunks) yield c;
        if (chunks.length === 0 && this.ended) return;
      }
    } finally {
      this.end();
    }
  }
}
