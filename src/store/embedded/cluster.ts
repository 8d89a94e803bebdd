// An N-member cluster in one process over a MemoryNetwork, for tests,
// benchmarks and embedders that want replication without sockets. Members
// can be stopped and restarted (from their data dirs) and the network can be
// cut, so tests can exercise failover, catch-up and partitions.
import path from 'node:path';
import { EmbeddedStore, type EmbeddedStoreOptions } from '../embedded.ts';
import { MemoryNetwork } from '../raft/memory.ts';
import { memberIdOf, type InitialMember } from './ids.ts';

export interface StartClusterOptions extends Omit<EmbeddedStoreOptions, 'dataDir' | 'name' | 'memberId' | 'initialCluster' | 'transport' | 'peerStore' | 'initialClusterState'> {
  /** Members to start (1, 3, 5, ...). */
  size: number;
  /** Parent directory; member i lives in `<dir>/m<i>`. */
  dir: string;
  network?: MemoryNetwork;
}

export class EmbeddedCluster {
  readonly network: MemoryNetwork;
  readonly initial: InitialMember[];
  /** By position; null while a member is stopped. */
  readonly members: (EmbeddedStore | null)[];
  readonly ids: number[];
  private readonly opts: StartClusterOptions;
  private readonly extra = new Map<number, EmbeddedStore>();

  constructor(opts: StartClusterOptions) {
    this.opts = opts;
    this.network = opts.network ?? new MemoryNetwork();
    this.initial = Array.from({ length: opts.size }, (_, i) => ({ name: `m${i}`, peerUrls: [`memory://m${i}`] }));
    const token = opts.clusterToken ?? 'keelson-cluster';
    this.ids = this.initial.map((m) => memberIdOf(m, token));
    this.members = this.initial.map((_, i) => this.open(i));
  }

  private storeOptions(i: number): EmbeddedStoreOptions {
    const { size: _s, dir, network: _n, ...rest } = this.opts;
    return {
      ...rest,
      dataDir: path.join(dir, `m${i}`),
      name: `m${i}`,
      initialCluster: this.initial,
      transport: this.network.transport(this.ids[i]),
      peerStore: (id) => this.byId(id),
    };
  }

  private open(i: number): EmbeddedStore {
    return new EmbeddedStore(this.storeOptions(i));
  }

  /** The running member with this id (initial or added). */
  byId(id: number): EmbeddedStore | undefined {
    const i = this.ids.indexOf(id);
    if (i >= 0) return this.members[i] ?? undefined;
    return this.extra.get(id);
  }

  running(): EmbeddedStore[] {
    return [...this.members.filter((m): m is EmbeddedStore => m !== null), ...this.extra.values()];
  }

  /** Waits until the running members agree on one leader; returns it. */
  async waitForLeader(timeoutMs = 15_000): Promise<EmbeddedStore> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const running = this.running();
      const leads = new Set(running.map((m) => m.leaderId()));
      if (leads.size === 1) {
        const lead = [...leads][0];
        const l = this.byId(lead);
        if (lead !== 0 && l && l.driver.isLeader()) return l;
      }
      if (performance.now() > deadline) throw new Error(`no agreed leader within ${timeoutMs} ms (members see ${running.map((m) => m.leaderId()).join(', ')})`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** A running member that is not the leader. */
  async follower(): Promise<EmbeddedStore> {
    const l = await this.waitForLeader();
    const f = this.running().find((m) => m !== l && !m.isRemoved());
    if (!f) throw new Error('no follower running');
    return f;
  }

  async stop(i: number): Promise<void> {
    const m = this.members[i];
    this.members[i] = null;
    await m?.close();
  }

  restart(i: number): EmbeddedStore {
    if (this.members[i]) throw new Error(`member ${i} is running`);
    const m = this.open(i);
    this.members[i] = m;
    return m;
  }

  /**
   * Starts a member that was added with memberAdd (initialClusterState
   * 'existing'), in `<dir>/<name>`.
   */
  join(id: number, name: string, peerUrls: string[]): EmbeddedStore {
    const { size: _s, dir, network: _n, ...rest } = this.opts;
    const m = new EmbeddedStore({
      ...rest,
      dataDir: path.join(dir, name),
      name,
      memberId: id,
      clusterId: this.running()[0]?.clusterId,
      initialCluster: [...this.initial, { id, name, peerUrls }],
      initialClusterState: 'existing',
      transport: this.network.transport(id),
      peerStore: (x) => this.byId(x),
    });
    this.extra.set(id, m);
    return m;
  }

  async close(): Promise<void> {
    await Promise.all(this.running().map((m) => m.close()));
    for (let i = 0; i < this.members.length; i++) this.members[i] = null;
    this.extra.clear();
  }
}

/** Starts an N-member in-process cluster and waits for its first leader. */
export async function startCluster(opts: StartClusterOptions): Promise<EmbeddedCluster> {
  const c = new EmbeddedCluster(opts);
  try {
    await c.waitForLeader();
  } catch (e) {
    await c.close();
    throw e;
  }
  return c;
}
