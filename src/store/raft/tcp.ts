// TcpTransport: the Transport between store members in separate processes.
//
// Shape. Every member listens on its peer URLs. For each peer it keeps one
// outbound connection that carries this member's messages to that peer; the
// peer's messages to us arrive on the peer's own outbound connection, so each
// pair of members uses two connections and neither side ever has to decide who
// dials whom. Inbound connections only ever send back small control frames
// (the handshake answer and snapshot acknowledgements).
//
// Wire format. After connecting, the dialer sends a HELLO frame naming the
// cluster id, its own member id and the member id it means to reach; the
// listener answers HELLO_ACK with a status and refuses (then closes) a
// connection meant for another cluster or another member, so a stale peer URL
// can never deliver messages into the wrong cluster. After that, every frame is
//   [u32 length of what follows][u8 kind][payload]
// with kinds MSGS (concatenated Raft messages, docs/native-format.md),
// SNAP_BEGIN / SNAP_CHUNK (a message batch carrying a MsgSnap, streamed in
// chunks of at most snapshotChunkBytes) and SNAP_ACK (the receiver got the
// whole snapshot batch and handed it to the driver).
//
// Member list. Instead of HELLO a dialer may send MEMBERS_REQ (magic,
// version, cluster id); the listener answers one MEMBERS frame (a status and
// the JSON member list of its store) and closes. A member joining an existing
// cluster uses it (fetchMemberList) before it starts: the other members' ids
// are random for any member that was added at run time, so they cannot be
// derived from the names and URLs the joiner was given.
//
// Batching. send() only queues; a flush concatenates every queued batch for a
// peer (messages are self-delimiting, so the concatenation is itself a valid
// batch) into one frame and one write. The driver calls flush() once per
// Ready, which holds all of that Ready's messages; anything else sent is
// flushed at the end of the event-loop turn. Once
// the socket's own buffer is past its high-water mark (write() returns false)
// we stop writing and let batches pile up in the queue, bounded in bytes,
// where they are coalesced into the next write on 'drain'. On the
// receiving side all MSGS frames parsed from one socket read are handed to the
// driver in one onMessages call, so the native seam is crossed once per read.
//
// Bounds and failure modes.
//  - Per-peer queue: peerQueueBytesMax. Past it the batch is dropped and the
//    peer reported unreachable; Raft retransmits what matters.
//  - While a peer is down (between a failed connection and the next attempt)
//    batches are dropped and the peer reported unreachable, rather than held
//    for a member that may never come back.
//  - Reconnect: exponential backoff from reconnectDelayMinMs to
//    reconnectDelayMaxMs with jitter; attempts continue for as long as the
//    peer is known (a member can be down for hours and then return).
//  - Frames: at most frameBytesMax for messages, snapshotBytesMax for a
//    snapshot batch; a bigger length prefix means a broken or hostile peer
//    and the connection is closed.
//  - Inbound connections: at most inboundConnectionsMax at once; a
//    connection must complete its handshake within handshakeTimeoutMs.
//  - Snapshots: one in flight per peer. Chunks are written only while the
//    socket accepts them (write() === true, else wait for 'drain'), so a
//    large snapshot never balloons the socket buffer. The outcome (SNAP_ACK,
//    a broken connection, or snapshotAckTimeoutMs) goes to onSnapshotStatus.
import net from 'node:net';
import tls from 'node:tls';
import fs from 'node:fs';
import type { Transport, TransportHandler } from './transport.ts';

export interface TcpTlsOptions {
  /** PEM files. With TLS on, both sides present certificates signed by caFile (mutual TLS). */
  certFile: string;
  keyFile: string;
  caFile: string;
}

export interface TcpTransportOptions {
  clusterId: number;
  memberId: number;
  /** URLs to listen on, e.g. http://127.0.0.1:2380 (port 0 picks a free port). */
  listenUrls: string[];
  /** Mutual TLS for peer traffic; off when absent. */
  tls?: TcpTlsOptions;
  peerQueueBytesMax?: number;
  inboundConnectionsMax?: number;
  frameBytesMax?: number;
  snapshotBytesMax?: number;
  snapshotChunkBytes?: number;
  snapshotAckTimeoutMs?: number;
  reconnectDelayMinMs?: number;
  reconnectDelayMaxMs?: number;
  handshakeTimeoutMs?: number;
  /** Jitter source for the backoff, in [0, 1). Injected for deterministic tests. */
  random?: () => number;
  /** Called with one line for noteworthy events (refused handshakes); silent by default. */
  log?: (line: string) => void;
}

const MAGIC = 0x4e534c4b; // 'KLSN' read little-endian
const VERSION = 1;

const KIND_MSGS = 1;
const KIND_SNAP_BEGIN = 2;
const KIND_SNAP_CHUNK = 3;
const KIND_SNAP_ACK = 4;
const KIND_HELLO = 0x10;
const KIND_HELLO_ACK = 0x11;
const KIND_MEMBERS_REQ = 0x12;
const KIND_MEMBERS = 0x13;

export const HelloStatus = {
  ok: 0,
  clusterMismatch: 1,
  wrongMember: 2,
  badVersion: 3,
  removedMember: 4,
  /** A member-list request reached a member whose store is not open yet. */
  notReady: 5,
} as const;

const helloStatusText: Record<number, string> = {
  1: 'cluster id mismatch',
  2: 'connection meant for another member',
  3: 'unsupported transport version',
  4: 'member was removed from the cluster',
  5: 'member is not ready',
};

const FRAME_HEADER_BYTES = 5;
/** Chunks a receiver accepts even when its own chunk size is smaller (peers may be configured differently). */
const snapshotChunkBytesAcceptedMax = 4 * 1024 * 1024;
const HELLO_PAYLOAD_BYTES = 4 + 1 + 8 + 8 + 8;
/** A HELLO_ACK carries a status and a short reason; anything longer is garbage. */
const HELLO_ACK_BYTES_MAX = 512;
const MEMBERS_REQ_PAYLOAD_BYTES = 4 + 1 + 8;
/** A member list answer: a status and JSON; thousands of members fit. */
const MEMBERS_ANSWER_BYTES_MAX = 4 * 1024 * 1024;

/** One member as a store reports it to a joining member. */
export interface PeerMemberInfo {
  id: number;
  name: string;
  peerUrls: string[];
  clientUrls: string[];
  isLearner: boolean;
}

type PeerState = 'idle' | 'connecting' | 'connected' | 'backoff' | 'closed';

interface PendingSnapshot {
  data: Buffer;
  seq: number;
}

interface Peer {
  id: number;
  urls: string[];
  urlIndex: number;
  state: PeerState;
  socket: net.Socket | null;
  queue: Buffer[];
  queuedBytes: number;
  flushScheduled: boolean;
  waitingDrain: boolean;
  backoffMs: number;
  timer: NodeJS.Timeout | null;
  /** Snapshot batches waiting to be streamed; at most one queued plus one in flight. */
  snapQueue: PendingSnapshot[];
  snapInFlight: PendingSnapshot | null;
  snapAckTimer: NodeJS.Timeout | null;
  snapSeq: number;
  /** Generation of the current connection, so callbacks of an old socket are ignored. */
  gen: number;
}

function frame(kind: number, payload: Buffer | null, payloadBytes = payload ? payload.length : 0): Buffer {
  const h = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
  h.writeUInt32LE(payloadBytes + 1, 0);
  h.writeUInt8(kind, 4);
  return h;
}

function parseUrl(u: string): { host: string; port: number; secure: boolean } {
  let url: URL;
  try {
    url = new URL(u);
  } catch {
    throw new Error(`invalid peer URL "${u}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:' && url.protocol !== 'tcp:') {
    throw new Error(`invalid peer URL "${u}": scheme must be http, https or tcp`);
  }
  const port = url.port === '' ? 2380 : Number(url.port);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  return { host, port, secure: url.protocol === 'https:' };
}

/**
 * Reassembles frames from a byte stream. Holds at most one partial frame;
 * the length prefix is checked against a bound before anything is buffered.
 */
class FrameReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  constructor(private readonly maxFrameBytes: (kind: number) => number) {}

  /** Feeds bytes; returns the complete frames, or an error string for a bad stream. */
  push(data: Buffer): { frames: Array<{ kind: number; payload: Buffer }> } | { error: string } {
    this.chunks.push(data);
    this.buffered += data.length;
    const frames: Array<{ kind: number; payload: Buffer }> = [];
    for (;;) {
      if (this.buffered < FRAME_HEADER_BYTES) break;
      const head = this.peek(FRAME_HEADER_BYTES);
      const len = head.readUInt32LE(0);
      const kind = head.readUInt8(4);
      if (len < 1) return { error: 'empty frame' };
      if (len - 1 > this.maxFrameBytes(kind)) return { error: `frame of kind ${kind} with ${len - 1} bytes is over its bound` };
      if (this.buffered < 4 + len) break;
      const whole = this.take(4 + len);
      frames.push({ kind, payload: whole.subarray(FRAME_HEADER_BYTES) });
    }
    return { frames };
  }

  private peek(n: number): Buffer {
    if (this.chunks[0]!.length >= n) return this.chunks[0]!;
    const joined = Buffer.concat(this.chunks);
    this.chunks = [joined];
    return joined;
  }

  private take(n: number): Buffer {
    const first = this.chunks[0]!;
    if (first.length === n) {
      this.chunks.shift();
      this.buffered -= n;
      return first;
    }
    if (first.length > n) {
      this.chunks[0] = first.subarray(n);
      this.buffered -= n;
      return first.subarray(0, n);
    }
    const joined = Buffer.concat(this.chunks);
    this.chunks = joined.length > n ? [joined.subarray(n)] : [];
    this.buffered -= n;
    return joined.subarray(0, n);
  }
}

export class TcpTransport implements Transport {
  readonly clusterId: number;
  readonly memberId: number;
  private readonly opts: Required<Omit<TcpTransportOptions, 'tls' | 'log'>> & Pick<TcpTransportOptions, 'tls' | 'log'>;
  private handler: TransportHandler | null = null;
  private readonly peers = new Map<number, Peer>();
  private readonly removed = new Set<number>();
  private readonly servers: net.Server[] = [];
  private readonly inbound = new Set<net.Socket>();
  private tlsContext: { cert: Buffer; key: Buffer; ca: Buffer } | null = null;
  private closed = false;
  private boundUrls: string[] = [];
  private memberListSource: (() => Promise<PeerMemberInfo[]>) | null = null;

  constructor(options: TcpTransportOptions) {
    this.clusterId = options.clusterId;
    this.memberId = options.memberId;
    this.opts = {
      peerQueueBytesMax: 64 * 1024 * 1024,
      // Each member keeps one connection to us; the rest allows reconnects
      // racing the close of the old connection.
      inboundConnectionsMax: 1024,
      frameBytesMax: 64 * 1024 * 1024,
      snapshotBytesMax: 4 * 1024 * 1024 * 1024 - 1,
      snapshotChunkBytes: 1024 * 1024,
      snapshotAckTimeoutMs: 120_000,
      reconnectDelayMinMs: 50,
      reconnectDelayMaxMs: 2000,
      handshakeTimeoutMs: 5000,
      random: Math.random,
      ...options,
    };
    if (this.opts.tls) {
      const t = this.opts.tls;
      this.tlsContext = { cert: fs.readFileSync(t.certFile), key: fs.readFileSync(t.keyFile), ca: fs.readFileSync(t.caFile) };
    }
  }

  /** Opens the listeners. Resolves with the URLs actually bound (port 0 resolved). */
  async listen(): Promise<string[]> {
    const urls: string[] = [];
    for (const u of this.opts.listenUrls) {
      const { host, port, secure } = parseUrl(u);
      if (secure !== (this.tlsContext !== null)) {
        throw new Error(`peer URL "${u}": use https:// exactly when peer TLS is configured`);
      }
      const server = this.tlsContext
        ? tls.createServer({ ...this.tlsContext, requestCert: true, rejectUnauthorized: true }, (s) => this.accept(s))
        : net.createServer((s) => this.accept(s));
      server.on('error', (e) => this.opts.log?.(`peer listener ${u}: ${e.message}`));
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve();
        });
      });
      this.servers.push(server);
      const addr = server.address() as net.AddressInfo;
      const h = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
      urls.push(`${secure ? 'https' : 'http'}://${h}:${addr.port}`);
    }
    this.boundUrls = urls;
    return urls;
  }

  /** The URLs bound by listen(). */
  addresses(): string[] {
    return this.boundUrls.slice();
  }

  /** Answers member-list requests (MEMBERS_REQ) from joining members with this list. */
  serveMemberList(source: () => Promise<PeerMemberInfo[]>): void {
    this.memberListSource = source;
  }

  start(handler: TransportHandler): void {
    if (this.handler) throw new Error('TcpTransport.start called twice');
    this.handler = handler;
  }

  addPeer(id: number, urls: string[]): void {
    if (this.closed || id === this.memberId) return;
    for (const u of urls) parseUrl(u);
    this.removed.delete(id);
    const existing = this.peers.get(id);
    if (existing) {
      const same = existing.urls.length === urls.length && existing.urls.every((u, i) => u === urls[i]);
      if (!same) {
        existing.urls = urls.slice();
        existing.urlIndex = 0;
        // A changed address: drop the old connection and dial the new one.
        if (existing.state === 'connected' || existing.state === 'connecting') this.dropConnection(existing, 'peer URLs changed');
      }
      return;
    }
    const peer: Peer = {
      id,
      urls: urls.slice(),
      urlIndex: 0,
      state: 'idle',
      socket: null,
      queue: [],
      queuedBytes: 0,
      flushScheduled: false,
      waitingDrain: false,
      backoffMs: this.opts.reconnectDelayMinMs,
      timer: null,
      snapQueue: [],
      snapInFlight: null,
      snapAckTimer: null,
      snapSeq: 0,
      gen: 0,
    };
    this.peers.set(id, peer);
    if (urls.length > 0) this.connect(peer);
  }

  removePeer(id: number): void {
    const peer = this.peers.get(id);
    this.removed.add(id);
    if (!peer) return;
    this.peers.delete(id);
    peer.state = 'closed';
    if (peer.timer) clearTimeout(peer.timer);
    peer.timer = null;
    this.failSnapshots(peer);
    peer.socket?.destroy();
    peer.socket = null;
    peer.queue = [];
    peer.queuedBytes = 0;
    for (const s of this.inbound) if ((s as SocketWithPeer).keelsonPeer === id) s.destroy();
  }

  send(to: number, data: Buffer, hasSnapshot = false): void {
    if (this.closed) return;
    const peer = this.peers.get(to);
    if (!peer || peer.state === 'backoff' || peer.state === 'idle' || peer.state === 'closed') {
      if (hasSnapshot) this.handler?.onSnapshotStatus(to, false);
      this.handler?.onUnreachable(to);
      return;
    }
    if (hasSnapshot) {
      if (data.length > this.opts.snapshotBytesMax || peer.snapQueue.length >= 1) {
        // One snapshot waits behind the one in flight; a third means the
        // peer is far behind and a newer snapshot will be sent later anyway.
        this.handler?.onSnapshotStatus(to, false);
        return;
      }
      peer.snapQueue.push({ data, seq: ++peer.snapSeq });
      if (peer.state === 'connected') this.pumpSnapshot(peer);
      return;
    }
    if (peer.queuedBytes + data.length > this.opts.peerQueueBytesMax || data.length > this.opts.frameBytesMax) {
      this.handler?.onUnreachable(to);
      return;
    }
    peer.queue.push(data);
    peer.queuedBytes += data.length;
    this.scheduleFlush(peer);
  }

  /** Bytes queued for a peer and not yet handed to its socket (for tests and metrics). */
  queuedBytes(id: number): number {
    return this.peers.get(id)?.queuedBytes ?? 0;
  }

  /** Whether the outbound connection to a peer is up (handshake done). */
  isConnected(id: number): boolean {
    return this.peers.get(id)?.state === 'connected';
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const peer of this.peers.values()) {
      peer.state = 'closed';
      if (peer.timer) clearTimeout(peer.timer);
      this.failSnapshots(peer);
      peer.socket?.destroy();
      peer.socket = null;
      peer.queue = [];
      peer.queuedBytes = 0;
    }
    this.peers.clear();
    for (const s of this.inbound) s.destroy();
    this.inbound.clear();
    await Promise.all(this.servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    this.servers.length = 0;
  }

  // ---- outbound ----

  private connect(peer: Peer): void {
    if (this.closed || peer.state === 'closed') return;
    peer.state = 'connecting';
    const gen = ++peer.gen;
    const url = peer.urls[peer.urlIndex % peer.urls.length]!;
    let target: { host: string; port: number; secure: boolean };
    try {
      target = parseUrl(url);
    } catch {
      this.connectionFailed(peer, gen);
      return;
    }
    const socket = this.tlsContext
      ? tls.connect({ host: target.host, port: target.port, ...this.tlsContext, servername: target.host === '127.0.0.1' || net.isIP(target.host) ? undefined : target.host, checkServerIdentity: () => undefined })
      : net.connect({ host: target.host, port: target.port });
    socket.setNoDelay(true);
    peer.socket = socket;
    const connectEvent = this.tlsContext ? 'secureConnect' : 'connect';
    const handshakeTimer = setTimeout(() => socket.destroy(new Error('handshake timed out')), this.opts.handshakeTimeoutMs);
    socket.once(connectEvent, () => {
      const hello = Buffer.allocUnsafe(HELLO_PAYLOAD_BYTES);
      hello.writeUInt32LE(MAGIC, 0);
      hello.writeUInt8(VERSION, 4);
      hello.writeBigUInt64LE(BigInt(this.clusterId), 5);
      hello.writeBigUInt64LE(BigInt(this.memberId), 13);
      hello.writeBigUInt64LE(BigInt(peer.id), 21);
      socket.write(Buffer.concat([frame(KIND_HELLO, hello), hello]));
    });
    let acked = false;
    const reader = new FrameReader((kind) => (kind === KIND_HELLO_ACK ? HELLO_ACK_BYTES_MAX : 16));
    socket.on('data', (d: Buffer) => {
      if (gen !== peer.gen) return;
      const r = reader.push(d);
      if ('error' in r) {
        socket.destroy(new Error(r.error));
        return;
      }
      for (const f of r.frames) {
        if (!acked) {
          if (f.kind !== KIND_HELLO_ACK || f.payload.length < 1) {
            socket.destroy(new Error('peer did not answer the handshake'));
            return;
          }
          const status = f.payload.readUInt8(0);
          if (status !== HelloStatus.ok) {
            const reason = helloStatusText[status] ?? `status ${status}`;
            this.opts.log?.(`peer ${peer.id.toString(16)} at ${url} refused the connection: ${reason}`);
            socket.destroy(new Error(reason));
            return;
          }
          acked = true;
          clearTimeout(handshakeTimer);
          peer.state = 'connected';
          peer.backoffMs = this.opts.reconnectDelayMinMs;
          this.scheduleFlush(peer);
          this.pumpSnapshot(peer);
        } else if (f.kind === KIND_SNAP_ACK && f.payload.length >= 5) {
          this.snapshotAcked(peer, f.payload.readUInt32LE(0), f.payload.readUInt8(4) === 1);
        } else {
          socket.destroy(new Error(`unexpected frame kind ${f.kind} from peer`));
          return;
        }
      }
    });
    socket.on('drain', () => {
      if (gen !== peer.gen) return;
      peer.waitingDrain = false;
      this.scheduleFlush(peer);
    });
    socket.on('error', () => {
      // 'close' follows; the reason matters only to the backoff.
    });
    socket.on('close', () => {
      clearTimeout(handshakeTimer);
      this.connectionFailed(peer, gen);
    });
  }

  private connectionFailed(peer: Peer, gen: number): void {
    if (gen !== peer.gen || peer.state === 'closed' || this.closed) return;
    const wasConnected = peer.state === 'connected';
    peer.socket = null;
    peer.waitingDrain = false;
    peer.state = 'backoff';
    peer.urlIndex++;
    const dropped = peer.queue.length > 0;
    peer.queue = [];
    peer.queuedBytes = 0;
    this.failSnapshots(peer);
    if (dropped || wasConnected) this.handler?.onUnreachable(peer.id);
    const jitter = 0.5 + this.opts.random() * 0.5;
    const delay = Math.round(peer.backoffMs * jitter);
    peer.backoffMs = Math.min(this.opts.reconnectDelayMaxMs, peer.backoffMs * 2);
    peer.timer = setTimeout(() => {
      peer.timer = null;
      this.connect(peer);
    }, delay);
  }

  private dropConnection(peer: Peer, reason: string): void {
    const s = peer.socket;
    if (s) s.destroy(new Error(reason));
  }

  /** Writes every queued batch now instead of at the end of the event-loop turn. */
  flush(): void {
    if (this.closed) return;
    for (const peer of this.peers.values()) if (peer.flushScheduled) this.flushPeer(peer);
  }

  private scheduleFlush(peer: Peer): void {
    if (peer.flushScheduled) return;
    peer.flushScheduled = true;
    // setImmediate rather than a microtask: every send() of the current
    // event-loop turn (one Ready's messages, several Readys in a burst) lands
    // in the same write.
    setImmediate(() => this.flushPeer(peer));
  }

  private flushPeer(peer: Peer): void {
    peer.flushScheduled = false;
    const socket = peer.socket;
    if (peer.state !== 'connected' || !socket || peer.waitingDrain || peer.queue.length === 0) return;
    // Coalesce up to frameBytesMax per frame; keep writing frames while the
    // socket buffer has room, then wait for 'drain'.
    while (peer.queue.length > 0 && !peer.waitingDrain) {
      let bytes = 0;
      let n = 0;
      while (n < peer.queue.length && (n === 0 || bytes + peer.queue[n]!.length <= this.opts.frameBytesMax)) {
        bytes += peer.queue[n]!.length;
        n++;
      }
      const parts = peer.queue.splice(0, n);
      peer.queuedBytes -= bytes;
      const ok = socket.write(Buffer.concat([frame(KIND_MSGS, null, bytes), ...parts], bytes + FRAME_HEADER_BYTES));
      if (!ok) peer.waitingDrain = true;
    }
  }

  private pumpSnapshot(peer: Peer): void {
    if (peer.state !== 'connected' || peer.snapInFlight || peer.snapQueue.length === 0) return;
    const snap = peer.snapQueue.shift()!;
    peer.snapInFlight = snap;
    const socket = peer.socket!;
    const gen = peer.gen;
    const begin = Buffer.allocUnsafe(12);
    begin.writeUInt32LE(snap.seq, 0);
    begin.writeBigUInt64LE(BigInt(snap.data.length), 4);
    socket.write(Buffer.concat([frame(KIND_SNAP_BEGIN, begin), begin]));
    let offset = 0;
    const writeChunks = (): void => {
      if (gen !== peer.gen || peer.snapInFlight !== snap) return;
      while (offset < snap.data.length) {
        const end = Math.min(snap.data.length, offset + this.opts.snapshotChunkBytes);
        const chunk = snap.data.subarray(offset, end);
        offset = end;
        socket.write(frame(KIND_SNAP_CHUNK, chunk));
        if (!socket.write(chunk)) {
          // Backpressure: resume when the kernel has taken what we gave it.
          socket.once('drain', writeChunks);
          return;
        }
      }
      peer.snapAckTimer = setTimeout(() => {
        peer.snapAckTimer = null;
        if (peer.snapInFlight === snap) {
          peer.snapInFlight = null;
          this.handler?.onSnapshotStatus(peer.id, false);
          this.pumpSnapshot(peer);
        }
      }, this.opts.snapshotAckTimeoutMs);
    };
    writeChunks();
  }

  private snapshotAcked(peer: Peer, seq: number, ok: boolean): void {
    const snap = peer.snapInFlight;
    if (!snap || snap.seq !== seq) return;
    peer.snapInFlight = null;
    if (peer.snapAckTimer) clearTimeout(peer.snapAckTimer);
    peer.snapAckTimer = null;
    this.handler?.onSnapshotStatus(peer.id, ok);
    this.pumpSnapshot(peer);
  }

  private failSnapshots(peer: Peer): void {
    if (peer.snapAckTimer) clearTimeout(peer.snapAckTimer);
    peer.snapAckTimer = null;
    const failed = (peer.snapInFlight ? 1 : 0) + peer.snapQueue.length;
    peer.snapInFlight = null;
    peer.snapQueue = [];
    for (let i = 0; i < failed; i++) this.handler?.onSnapshotStatus(peer.id, false);
  }

  // ---- inbound ----

  private accept(socket: net.Socket): void {
    if (this.closed || this.inbound.size >= this.opts.inboundConnectionsMax) {
      socket.destroy();
      return;
    }
    this.inbound.add(socket);
    socket.setNoDelay(true);
    let from = 0;
    let snap: { seq: number; buf: Buffer; filled: number } | null = null;
    const handshakeTimer = setTimeout(() => socket.destroy(), this.opts.handshakeTimeoutMs);
    const reader = new FrameReader((kind) => {
      if (from === 0) return kind === KIND_HELLO ? HELLO_PAYLOAD_BYTES : kind === KIND_MEMBERS_REQ ? MEMBERS_REQ_PAYLOAD_BYTES : 0;
      if (kind === KIND_SNAP_CHUNK) return Math.max(this.opts.snapshotChunkBytes, snapshotChunkBytesAcceptedMax);
      return this.opts.frameBytesMax;
    });
    const refuse = (status: number, why: string): void => {
      this.opts.log?.(`refused a peer connection from ${socket.remoteAddress}: ${why}`);
      const reason = Buffer.from(why.slice(0, 200));
      const payload = Buffer.concat([Buffer.from([status]), reason]);
      socket.end(Buffer.concat([frame(KIND_HELLO_ACK, payload), payload]));
      setTimeout(() => socket.destroy(), 1000).unref();
    };
    socket.on('data', (d: Buffer) => {
      const r = reader.push(d);
      if ('error' in r) {
        socket.destroy();
        return;
      }
      const delivered: Buffer[] = [];
      for (const f of r.frames) {
        if (from === 0 && f.kind === KIND_MEMBERS_REQ) {
          clearTimeout(handshakeTimer);
          this.answerMembers(socket, f.payload);
          return;
        }
        if (from === 0) {
          if (f.kind !== KIND_HELLO || f.payload.length !== HELLO_PAYLOAD_BYTES || f.payload.readUInt32LE(0) !== MAGIC) {
            socket.destroy();
            return;
          }
          clearTimeout(handshakeTimer);
          const version = f.payload.readUInt8(4);
          const cluster = Number(f.payload.readBigUInt64LE(5));
          const sender = Number(f.payload.readBigUInt64LE(13));
          const target = Number(f.payload.readBigUInt64LE(21));
          if (version !== VERSION) return refuse(HelloStatus.badVersion, `transport version ${version}, want ${VERSION}`);
          if (cluster !== this.clusterId) return refuse(HelloStatus.clusterMismatch, `cluster id ${cluster.toString(16)}, this is ${this.clusterId.toString(16)}`);
          if (target !== this.memberId) return refuse(HelloStatus.wrongMember, `meant for member ${target.toString(16)}, this is ${this.memberId.toString(16)}`);
          if (this.removed.has(sender)) return refuse(HelloStatus.removedMember, `member ${sender.toString(16)} was removed`);
          if (sender === 0) return refuse(HelloStatus.wrongMember, 'sender id 0');
          from = sender;
          (socket as SocketWithPeer).keelsonPeer = from;
          const ack = Buffer.from([HelloStatus.ok]);
          socket.write(Buffer.concat([frame(KIND_HELLO_ACK, ack), ack]));
          continue;
        }
        switch (f.kind) {
          case KIND_MSGS:
            delivered.push(f.payload);
            break;
          case KIND_SNAP_BEGIN: {
            if (f.payload.length !== 12) return void socket.destroy();
            const size = Number(f.payload.readBigUInt64LE(4));
            if (size > this.opts.snapshotBytesMax) return void socket.destroy();
            snap = { seq: f.payload.readUInt32LE(0), buf: Buffer.allocUnsafe(size), filled: 0 };
            if (size === 0) snap = this.finishSnapshot(socket, from, snap, delivered);
            break;
          }
          case KIND_SNAP_CHUNK: {
            if (!snap || snap.filled + f.payload.length > snap.buf.length) return void socket.destroy();
            f.payload.copy(snap.buf, snap.filled);
            snap.filled += f.payload.length;
            if (snap.filled === snap.buf.length) snap = this.finishSnapshot(socket, from, snap, delivered);
            break;
          }
          default:
            socket.destroy();
            return;
        }
      }
      if (delivered.length > 0) this.deliver(from, delivered.length === 1 ? delivered[0]! : Buffer.concat(delivered));
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(handshakeTimer);
      this.inbound.delete(socket);
    });
  }

  private answerMembers(socket: net.Socket, req: Buffer): void {
    const answer = (status: number, body: string): void => {
      const payload = Buffer.concat([Buffer.from([status]), Buffer.from(body)]);
      socket.end(Buffer.concat([frame(KIND_MEMBERS, payload), payload]));
      setTimeout(() => socket.destroy(), 1000).unref();
    };
    if (req.length !== MEMBERS_REQ_PAYLOAD_BYTES || req.readUInt32LE(0) !== MAGIC) return void socket.destroy();
    const version = req.readUInt8(4);
    const cluster = Number(req.readBigUInt64LE(5));
    if (version !== VERSION) return answer(HelloStatus.badVersion, `transport version ${version}, want ${VERSION}`);
    if (cluster !== this.clusterId) return answer(HelloStatus.clusterMismatch, `cluster id ${cluster.toString(16)}, this is ${this.clusterId.toString(16)}`);
    const source = this.memberListSource;
    if (!source) return answer(HelloStatus.notReady, 'store not open');
    source().then(
      (members) => {
        const body = JSON.stringify(members);
        if (Buffer.byteLength(body) + 1 > MEMBERS_ANSWER_BYTES_MAX) return answer(HelloStatus.notReady, 'member list over its bound');
        answer(HelloStatus.ok, body);
      },
      (e: unknown) => answer(HelloStatus.notReady, String((e as Error)?.message ?? e).slice(0, 200)),
    );
  }

  private finishSnapshot(socket: net.Socket, from: number, snap: { seq: number; buf: Buffer }, delivered: Buffer[]): null {
    // Hand over what came before the snapshot first, to keep the order.
    if (delivered.length > 0) this.deliver(from, Buffer.concat(delivered.splice(0)));
    this.deliver(from, snap.buf);
    const ack = Buffer.allocUnsafe(5);
    ack.writeUInt32LE(snap.seq, 0);
    ack.writeUInt8(this.handler ? 1 : 0, 4);
    socket.write(Buffer.concat([frame(KIND_SNAP_ACK, ack), ack]));
    return null;
  }

  private deliver(from: number, data: Buffer): void {
    // Before start() there is no driver; Raft retransmits what it needs.
    this.handler?.onMessages(from, data);
  }
}

export interface FetchMemberListOptions {
  clusterId: number;
  tls?: TcpTlsOptions;
  /** For connecting and the answer together. */
  timeoutMs?: number;
}

/**
 * Asks the member listening on a peer URL for its member list (MEMBERS_REQ).
 * Rejects with the reason when it cannot be reached, belongs to another
 * cluster, or answers anything but a well-formed list.
 */
export function fetchMemberList(url: string, opts: FetchMemberListOptions): Promise<PeerMemberInfo[]> {
  const target = parseUrl(url);
  const tlsContext = opts.tls ? { cert: fs.readFileSync(opts.tls.certFile), key: fs.readFileSync(opts.tls.keyFile), ca: fs.readFileSync(opts.tls.caFile) } : null;
  return new Promise<PeerMemberInfo[]>((resolve, reject) => {
    let done = false;
    const finish = (err: Error | null, members?: PeerMemberInfo[]): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(members!);
    };
    const socket = tlsContext
      ? tls.connect({ host: target.host, port: target.port, ...tlsContext, servername: net.isIP(target.host) ? undefined : target.host, checkServerIdentity: () => undefined })
      : net.connect({ host: target.host, port: target.port });
    const timer = setTimeout(() => finish(new Error('timed out')), opts.timeoutMs ?? 5000);
    socket.once(tlsContext ? 'secureConnect' : 'connect', () => {
      const req = Buffer.allocUnsafe(MEMBERS_REQ_PAYLOAD_BYTES);
      req.writeUInt32LE(MAGIC, 0);
      req.writeUInt8(VERSION, 4);
      req.writeBigUInt64LE(BigInt(opts.clusterId), 5);
      socket.write(Buffer.concat([frame(KIND_MEMBERS_REQ, req), req]));
    });
    const reader = new FrameReader((kind) => (kind === KIND_MEMBERS ? MEMBERS_ANSWER_BYTES_MAX : kind === KIND_HELLO_ACK ? HELLO_ACK_BYTES_MAX : 0));
    socket.on('data', (d: Buffer) => {
      const r = reader.push(d);
      if ('error' in r) return finish(new Error(r.error));
      const f = r.frames[0];
      if (!f) return;
      if (f.kind !== KIND_MEMBERS || f.payload.length < 1) return finish(new Error('peer does not answer member-list requests'));
      const status = f.payload.readUInt8(0);
      const body = f.payload.subarray(1).toString('utf8');
      if (status !== HelloStatus.ok) return finish(new Error(`${helloStatusText[status] ?? `status ${status}`}: ${body}`));
      let members: unknown;
      try {
        members = JSON.parse(body);
      } catch {
        return finish(new Error('malformed member list'));
      }
      if (!Array.isArray(members) || !members.every(isPeerMemberInfo)) return finish(new Error('malformed member list'));
      finish(null, members);
    });
    socket.on('error', (e) => finish(e));
    socket.on('close', () => finish(new Error('connection closed before the member list arrived')));
  });
}

function isPeerMemberInfo(m: unknown): m is PeerMemberInfo {
  const x = m as PeerMemberInfo;
  const strings = (a: unknown): boolean => Array.isArray(a) && a.every((u) => typeof u === 'string');
  return typeof x === 'object' && x !== null && Number.isSafeInteger(x.id) && x.id > 0 && typeof x.name === 'string' && strings(x.peerUrls) && strings(x.clientUrls) && typeof x.isLearner === 'boolean';
}

interface SocketWithPeer extends net.Socket {
  keelsonPeer?: number;
}
