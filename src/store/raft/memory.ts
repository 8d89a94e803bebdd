// An in-process network for clusters whose members share one process (tests,
// embedders that want 3 or 5 replicas in one process, benchmarks).
//
// Delivery is asynchronous (a batch handed to send() reaches the peer's
// driver on a later event-loop turn, never inside send()), because the driver
// steps inbound messages into its core and must not be re-entered from inside
// its own Ready handling. Links can be cut in one direction or both to make
// partitions; a batch on a cut link is dropped, as a real network would.
//
// Bound: each directed link queues at most linkQueueBytesMax bytes waiting
// for delivery; beyond it the batch is dropped and the peer reported
// unreachable, so a stalled receiver never grows the sender's memory.
import type { Transport, TransportHandler } from './transport.ts';

export interface MemoryNetworkOptions {
  /** Bytes queued per directed link before batches are dropped. Default 64 MiB. */
  linkQueueBytesMax?: number;
}

interface Link {
  queue: { data: Buffer; hasSnapshot: boolean }[];
  bytes: number;
  scheduled: boolean;
}

export class MemoryNetwork {
  private readonly handlers = new Map<number, TransportHandler>();
  private readonly links = new Map<string, Link>();
  /** Directed cuts "from>to". */
  private readonly cuts = new Set<string>();
  readonly linkQueueBytesMax: number;
  /** Batches dropped because a link was cut or full (tests). */
  dropped = 0;

  constructor(opts: MemoryNetworkOptions = {}) {
    this.linkQueueBytesMax = opts.linkQueueBytesMax ?? 64 * 1024 * 1024;
  }

  /** The transport of member `id` on this network. */
  transport(id: number): MemoryTransport {
    return new MemoryTransport(this, id);
  }

  /** Cuts the link from `a` to `b` (and back unless oneWay). */
  cut(a: number, b: number, oneWay = false): void {
    this.cuts.add(`${a}>${b}`);
    if (!oneWay) this.cuts.add(`${b}>${a}`);
  }

  /** Cuts every link between `id` and anyone else. */
  isolate(id: number): void {
    for (const other of this.handlers.keys()) if (other !== id) this.cut(id, other);
  }

  /** Restores every link. */
  heal(): void {
    this.cuts.clear();
  }

  isCut(from: number, to: number): boolean {
    return this.cuts.has(`${from}>${to}`);
  }

  /** @internal */
  register(id: number, h: TransportHandler): void {
    this.handlers.set(id, h);
  }

  /** @internal */
  unregister(id: number): void {
    this.handlers.delete(id);
  }

  /** @internal */
  send(from: number, to: number, data: Buffer, hasSnapshot: boolean): void {
    const fromHandler = this.handlers.get(from);
    if (this.cuts.has(`${from}>${to}`) || !this.handlers.has(to)) {
      this.dropped++;
      if (fromHandler) queueMicrotask(() => {
        fromHandler.onUnreachable(to);
        if (hasSnapshot) fromHandler.onSnapshotStatus(to, false);
      });
      return;
    }
    const key = `${from}>${to}`;
    let link = this.links.get(key);
    if (!link) {
      link = { queue: [], bytes: 0, scheduled: false };
      this.links.set(key, link);
    }
    if (link.bytes + data.length > this.linkQueueBytesMax && link.queue.length > 0) {
      this.dropped++;
      if (fromHandler) queueMicrotask(() => {
        fromHandler.onUnreachable(to);
        if (hasSnapshot) fromHandler.onSnapshotStatus(to, false);
      });
      return;
    }
    link.queue.push({ data, hasSnapshot });
    link.bytes += data.length;
    if (!link.scheduled) {
      link.scheduled = true;
      const l = link;
      setImmediate(() => this.deliver(from, to, l));
    }
  }

  private deliver(from: number, to: number, link: Link): void {
    link.scheduled = false;
    const batches = link.queue;
    link.queue = [];
    link.bytes = 0;
    const h = this.handlers.get(to);
    const fromHandler = this.handlers.get(from);
    for (const b of batches) {
      // A link cut while the batch was queued loses it, like an in-flight packet.
      if (!h || this.cuts.has(`${from}>${to}`)) {
        this.dropped++;
        if (b.hasSnapshot) fromHandler?.onSnapshotStatus(to, false);
        continue;
      }
      h.onMessages(from, b.data);
      if (b.hasSnapshot) fromHandler?.onSnapshotStatus(to, true);
    }
  }
}

/** One member's end of a MemoryNetwork. */
export class MemoryTransport implements Transport {
  private readonly net: MemoryNetwork;
  readonly id: number;
  private started = false;

  constructor(net: MemoryNetwork, id: number) {
    this.net = net;
    this.id = id;
  }

  start(handler: TransportHandler): void {
    this.started = true;
    this.net.register(this.id, handler);
  }

  send(to: number, data: Buffer, hasSnapshot = false): void {
    if (!this.started) return;
    this.net.send(this.id, to, data, hasSnapshot);
  }

  addPeer(_id: number, _urls: string[]): void {
    // Every member of the network is reachable by id.
  }

  removePeer(_id: number): void {}

  async close(): Promise<void> {
    this.started = false;
    this.net.unregister(this.id);
  }
}
