// A tiny in-process harness for the Raft core tests: a map of cores, a
// synchronous network with partitions, and "storage" that is just memory (a
// Ready counts as durable as soon as the harness has copied it).
import { RaftNode, messageTypes, type RaftConfig, type RaftNode as Core, type HardState, type Snapshot, type ReadState, type RaftRestoreState, type ConfState } from '../../src/native.ts';

export interface Entry {
  index: number;
  term: number;
  type: number;
  data: Buffer;
}

export function parseEntries(buf: Buffer | null): Entry[] {
  const out: Entry[] = [];
  if (!buf) return out;
  let off = 0;
  while (off < buf.length) {
    const index = Number(buf.readBigUInt64LE(off));
    const term = Number(buf.readBigUInt64LE(off + 8));
    const type = buf[off + 16];
    const len = buf.readUInt32LE(off + 17);
    out.push({ index, term, type, data: buf.subarray(off + 21, off + 21 + len) });
    off += 21 + len;
  }
  return out;
}

export function encodeEntries(entries: Entry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const h = Buffer.alloc(21);
    h.writeBigUInt64LE(BigInt(e.index), 0);
    h.writeBigUInt64LE(BigInt(e.term), 8);
    h[16] = e.type;
    h.writeUInt32LE(e.data.length, 17);
    parts.push(h, e.data);
  }
  return Buffer.concat(parts);
}

export interface Msg {
  type: number;
  typeName: string;
  reject: boolean;
  to: number;
  from: number;
  term: number;
  logTerm: number;
  index: number;
  commit: number;
  rejectHint: number;
  context: Buffer;
  entryCount: number;
  entries: Buffer;
  snapshot: Buffer;
  /** The message's own bytes. */
  raw: Buffer;
}

const typeNames = new Map(Object.entries(messageTypes).map(([k, v]) => [v, k]));

export function splitMessages(buf: Buffer): Msg[] {
  const out: Msg[] = [];
  let off = 0;
  while (off < buf.length) {
    const total = buf.readUInt32LE(off);
    const m = buf.subarray(off, off + total);
    const ctxLen = m.readUInt32LE(64);
    const entLen = m.readUInt32LE(72);
    out.push({
      type: m[4],
      typeName: typeNames.get(m[4]) ?? `type${m[4]}`,
      reject: m[5] === 1,
      to: Number(m.readBigUInt64LE(8)),
      from: Number(m.readBigUInt64LE(16)),
      term: Number(m.readBigUInt64LE(24)),
      logTerm: Number(m.readBigUInt64LE(32)),
      index: Number(m.readBigUInt64LE(40)),
      commit: Number(m.readBigUInt64LE(48)),
      rejectHint: Number(m.readBigUInt64LE(56)),
      context: m.subarray(80, 80 + ctxLen),
      entryCount: m.readUInt32LE(68),
      entries: m.subarray(80 + ctxLen, 80 + ctxLen + entLen),
      snapshot: m.subarray(80 + ctxLen + entLen),
      raw: m,
    });
    off += total;
  }
  return out;
}

export interface MsgFields {
  type: number;
  to: number;
  from: number;
  term?: number;
  logTerm?: number;
  index?: number;
  commit?: number;
  rejectHint?: number;
  reject?: boolean;
  context?: Buffer;
  entries?: Buffer;
  entryCount?: number;
}

export function encodeMessage(f: MsgFields): Buffer {
  const ctx = f.context ?? Buffer.alloc(0);
  const ents = f.entries ?? Buffer.alloc(0);
  const h = Buffer.alloc(80);
  h.writeUInt32LE(80 + ctx.length + ents.length, 0);
  h[4] = f.type;
  h[5] = f.reject ? 1 : 0;
  h.writeBigUInt64LE(BigInt(f.to), 8);
  h.writeBigUInt64LE(BigInt(f.from), 16);
  h.writeBigUInt64LE(BigInt(f.term ?? 0), 24);
  h.writeBigUInt64LE(BigInt(f.logTerm ?? 0), 32);
  h.writeBigUInt64LE(BigInt(f.index ?? 0), 40);
  h.writeBigUInt64LE(BigInt(f.commit ?? 0), 48);
  h.writeBigUInt64LE(BigInt(f.rejectHint ?? 0), 56);
  h.writeUInt32LE(ctx.length, 64);
  h.writeUInt32LE(f.entryCount ?? 0, 68);
  h.writeUInt32LE(ents.length, 72);
  return Buffer.concat([h, ctx, ents]);
}

export function baseConfig(id: number, voters: number[], over: Partial<RaftConfig> = {}): RaftConfig {
  return {
    id,
    voters,
    electionTicks: 10,
    heartbeatTicks: 1,
    preVote: true,
    checkQuorum: true,
    maxSizePerMsgBytes: 1 << 20,
    maxInflightMsgs: 256,
    maxInflightBytes: 0,
    maxUncommittedEntriesBytes: 1 << 30,
    seed: 42 + id,
    ...over,
  };
}

export interface Member {
  id: number;
  config: RaftConfig;
  node: Core;
  hardState?: HardState;
  snapshot?: Snapshot;
  /** Durable log after the snapshot, by index. */
  log: Map<number, Entry>;
  /** Entries applied, in order (data of normal entries). */
  applied: Entry[];
  appliedIndex: number;
  readStates: ReadState[];
  confStates: ConfState[];
  /** Messages this member sent, by type name, for assertions. */
  sent: Msg[];
  down: boolean;
}

export class Cluster {
  members = new Map<number, Member>();
  /** Pairs "from-to" whose messages are dropped. */
  cut = new Set<string>();
  /** Messages in flight. */
  queue: Array<{ from: number; to: number; data: Buffer }> = [];
  /** When set, returns false to drop a message. */
  filter?: (m: Msg) => boolean;
  recordSent = false;

  constructor(ids: number[], over: Partial<RaftConfig> | ((id: number) => Partial<RaftConfig>) = {}, voters = ids) {
    for (const id of ids) this.add(id, baseConfig(id, voters, typeof over === 'function' ? over(id) : over));
  }

  add(id: number, config: RaftConfig, restore?: RaftRestoreState): Member {
    const m: Member = {
      id,
      config,
      node: new RaftNode(config, restore),
      log: new Map(),
      applied: [],
      appliedIndex: config.applied ?? 0,
      readStates: [],
      confStates: [],
      sent: [],
      down: false,
    };
    this.members.set(id, m);
    return m;
  }

  get(id: number): Member {
    const m = this.members.get(id);
    if (!m) throw new Error(`no member ${id}`);
    return m;
  }

  node(id: number): Core {
    return this.get(id).node;
  }

  leader(): number {
    let lead = 0;
    for (const m of this.members.values()) if (!m.down && m.node.status().role === 'leader') lead = Math.max(lead, m.id);
    return lead;
  }

  isolate(id: number): void {
    for (const other of this.members.keys()) {
      if (other === id) continue;
      this.cut.add(`${id}-${other}`);
      this.cut.add(`${other}-${id}`);
    }
  }

  heal(): void {
    this.cut.clear();
  }

  /** Drains one member's Ready: persist, apply, queue messages, advance. */
  processReady(m: Member): boolean {
    if (m.down || !m.node.hasReady()) return false;
    const rd = m.node.ready();
    if (rd.hardState) m.hardState = rd.hardState;
    if (rd.snapshot) {
      m.snapshot = rd.snapshot;
      m.log.clear();
      m.appliedIndex = rd.snapshot.index;
      m.confStates.push(rd.snapshot.confState);
    }
    const ents = parseEntries(rd.entries);
    if (ents.length) {
      for (const k of [...m.log.keys()]) if (k >= ents[0].index) m.log.delete(k);
      for (const e of ents) m.log.set(e.index, { ...e, data: Buffer.from(e.data) });
    }
    for (const e of parseEntries(rd.committed)) {
      if (e.index !== m.appliedIndex + 1) throw new Error(`member ${m.id}: applying ${e.index} after ${m.appliedIndex}`);
      m.appliedIndex = e.index;
      const copy = { ...e, data: Buffer.from(e.data) };
      m.applied.push(copy);
      if (e.type === 1) {
        try {
          m.confStates.push(m.node.applyConfChange(copy.data));
        } catch {
          // a refused change leaves the configuration as it was
        }
      }
    }
    m.readStates.push(...rd.readStates);
    for (const { to, data } of rd.messages) {
      if (this.recordSent) m.sent.push(...splitMessages(data));
      this.queue.push({ from: m.id, to, data });
    }
    m.node.advance();
    return true;
  }

  deliver(): boolean {
    const q = this.queue;
    this.queue = [];
    for (const { from, to, data } of q) {
      const dst = this.members.get(to);
      if (!dst || dst.down || this.cut.has(`${from}-${to}`)) continue;
      if (this.filter) {
        const kept = splitMessages(data).filter(this.filter);
        if (kept.length === 0) continue;
        dst.node.step(Buffer.concat(kept.map((k) => k.raw)));
        continue;
      }
      dst.node.step(data);
    }
    return q.length > 0;
  }

  /** Runs Ready/deliver rounds until nothing moves (bounded). */
  stabilize(maxRounds = 1000): void {
    for (let i = 0; i < maxRounds; i++) {
      let moved = false;
      for (const m of this.members.values()) moved = this.processReady(m) || moved;
      moved = this.deliver() || moved;
      if (!moved) return;
    }
    throw new Error('cluster did not stabilize');
  }

  tick(n = 1, ids?: number[]): void {
    for (let i = 0; i < n; i++) {
      for (const m of this.members.values()) if (!m.down && (!ids || ids.includes(m.id))) m.node.tick();
      this.stabilize();
    }
  }

  /** Ticks until some member leads (bounded). */
  elect(maxTicks = 200): number {
    for (let i = 0; i < maxTicks; i++) {
      const l = this.leader();
      if (l) return l;
      this.tick();
    }
    throw new Error('no leader elected');
  }

  /** Restarts a member from what it persisted. */
  restart(id: number, over: Partial<RaftConfig> = {}): Member {
    const old = this.get(id);
    const entries = [...old.log.values()].sort((a, b) => a.index - b.index);
    const restore: RaftRestoreState = { hardState: old.hardState, snapshot: old.snapshot, entries: encodeEntries(entries) };
    const config = { ...old.config, applied: old.appliedIndex, ...over };
    const m = this.add(id, config, restore);
    m.hardState = old.hardState;
    m.snapshot = old.snapshot;
    m.log = new Map(old.log);
    m.applied = old.applied;
    m.appliedIndex = old.appliedIndex;
    return m;
  }
}

export function appliedData(m: Member): string[] {
  return m.applied.filter((e) => e.type === 0 && e.data.length > 0).map((e) => e.data.toString());
}

export function batch(payloads: Buffer[]): Buffer {
  const parts: Buffer[] = [];
  for (const p of payloads) {
    const h = Buffer.alloc(4);
    h.writeUInt32LE(p.length, 0);
    parts.push(h, p);
  }
  return Buffer.concat(parts);
}
