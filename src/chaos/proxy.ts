// The fault proxy: every member's peer URL points at a proxy in front of the
// member's real peer listener, and the proxy applies the state of each
// directed link (from member, to member) to the bytes it forwards.
//
// Directed links on connections. A connection that member X opens to Y's
// proxy carries X->Y bytes client-to-server and Y->X bytes server-to-client
// (Keelson's transport sends its messages client-to-server; etcd's streams
// carry the listener's messages back on the response). So each direction of a
// connection follows its own link: client-to-server obeys link (X, Y),
// server-to-client obeys link (Y, X). Which member X opened a connection is
// not in the TCP header; the proxy asks an identify() callback (the harness
// looks the client's port up in /proc: the member process that owns the
// socket), which works for any peer protocol. A connection whose source is
// unknown is forwarded untouched.
//
// What each link state means on a byte stream, where bytes cannot simply
// vanish without corrupting every later frame:
//  - cut: bytes in that direction are held, not delivered: a black hole, as
//    a pulled cable looks to TCP. New connections are accepted and stall the
//    same way (the dialer's handshake never gets through). When the cut heals,
//    held bytes are delivered in order, like TCP retransmissions after a heal.
//    Endpoints that time out meanwhile close the connection themselves.
//  - delay: every chunk is delivered delayMs (+ up to jitterMs) after it was
//    read, never reordered (a chunk waits for the one before it).
//  - loss: each chunk read is, with probability lossRate, dropped together
//    with the connection: both sides are reset, so everything in flight on it
//    (the chunk, the rest of the frame it belonged to, whatever the sender
//    had queued on the socket) is lost, and the receiver never sees a partial
//    frame followed by unrelated bytes. The sender reconnects; the messages
//    are lost, as with a lossy link below a transport that gives up.
// Bounds: per direction at most queueBytesMax bytes wait in the proxy; past
// that the proxy stops reading from the sender (TCP backpressure), so a long
// cut fills the sender's socket buffer as it would on a real network.
import net from 'node:net';
import fs from 'node:fs';

export interface LinkState {
  cut?: boolean;
  delayMs?: number;
  jitterMs?: number;
  /** Per chunk read, in [0, 1]. */
  lossRate?: number;
}

/** The state of every directed link, by member name. Proxies read it on every chunk and re-read it on change. */
export class LinkTable {
  private links = new Map<string, LinkState>();
  private listeners = new Set<() => void>();

  get(from: string, to: string): LinkState {
    return this.links.get(`${from}\u0000${to}`) ?? {};
  }

  set(from: string, to: string, state: LinkState): void {
    this.links.set(`${from}\u0000${to}`, state);
    for (const l of this.listeners) l();
  }

  /** Heals every link. */
  clear(): void {
    this.links.clear();
    for (const l of this.listeners) l();
  }

  /** Links not in the healthy state, for logs. */
  faulty(): string[] {
    return [...this.links].filter(([, s]) => s.cut || s.delayMs || s.lossRate).map(([k, s]) => `${k.replace('\u0000', '->')} ${JSON.stringify(s)}`);
  }

  onChange(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }
}

export interface FaultProxyOptions {
  /** The member behind this proxy. */
  member: string;
  target: { host: string; port: number };
  links: LinkTable;
  /** Which member opened this connection (undefined = unknown: forward untouched). */
  identify: (socket: net.Socket) => Promise<string | undefined>;
  /** In [0, 1); seeded by the harness so that loss and jitter replay. */
  random: () => number;
  /** Port to listen on (0 = any free port). */
  port?: number;
  queueBytesMax?: number;
  /** Called when the proxy resets a connection for loss. */
  onEvent?: (line: string) => void;
}

/** One direction of one proxied connection. */
class Pipe {
  private queue: { buf: Buffer; dueMs: number }[] = [];
  private queuedBytes = 0;
  private lastDueMs = 0;
  private timer: NodeJS.Timeout | null = null;
  private paused = false;

  constructor(
    private readonly input: net.Socket,
    private readonly output: net.Socket,
    private readonly state: () => LinkState,
    private readonly random: () => number,
    private readonly queueBytesMax: number,
    private readonly kill: (why: string) => void,
  ) {
    input.on('data', (d: Buffer) => this.push(d));
    output.on('drain', () => this.pump());
  }

  private push(buf: Buffer): void {
    const s = this.state();
    if (s.lossRate && this.random() < s.lossRate) { this.kill('loss'); return; }
    const now = Date.now();
    const delay = (s.delayMs ?? 0) + (s.jitterMs ? this.random() * s.jitterMs : 0);
    const due = Math.max(now + delay, this.lastDueMs);
    this.lastDueMs = due;
    this.queue.push({ buf, dueMs: due });
    this.queuedBytes += buf.length;
    if (this.queuedBytes > this.queueBytesMax && !this.paused) { this.paused = true; this.input.pause(); }
    this.pump();
  }

  /** Delivers what is due, unless the link is cut or the receiver is slow. */
  pump(): void {
    if (this.timer) { clearTimeout(this.timer); this.timer = null; }
    if (this.output.destroyed) return;
    if (this.state().cut) return; // held until the table changes
    const now = Date.now();
    while (this.queue.length > 0 && this.queue[0]!.dueMs <= now) {
      const { buf } = this.queue.shift()!;
      this.queuedBytes -= buf.length;
      if (!this.output.write(buf)) break; // 'drain' pumps again
    }
    if (this.paused && this.queuedBytes <= this.queueBytesMax / 2) { this.paused = false; this.input.resume(); }
    if (this.queue.length > 0 && this.output.writableLength === 0) {
      this.timer = setTimeout(() => this.pump(), Math.max(0, this.queue[0]!.dueMs - now));
    }
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.queue = [];
  }
}

export class FaultProxy {
  private server: net.Server | null = null;
  private conns = new Set<{ client: net.Socket; upstream: net.Socket; pipes: Pipe[] }>();
  private unsubscribe: (() => void) | null = null;
  port = 0;

  constructor(private readonly opts: FaultProxyOptions) {}

  async listen(): Promise<number> {
    const server = net.createServer((client) => this.accept(client));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.opts.port ?? 0, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as net.AddressInfo).port;
    this.unsubscribe = this.opts.links.onChange(() => { for (const c of this.conns) for (const p of c.pipes) p.pump(); });
    return this.port;
  }

  private accept(client: net.Socket): void {
    client.pause();
    client.setNoDelay(true);
    client.on('error', () => {});
    this.opts.identify(client).then((from) => {
      if (client.destroyed) return;
      const upstream = net.connect({ host: this.opts.target.host, port: this.opts.target.port });
      upstream.setNoDelay(true);
      upstream.on('error', () => {});
      const to = this.opts.member;
      const conn = { client, upstream, pipes: [] as Pipe[] };
      const kill = (why: string) => {
        if (why === 'loss' && (!client.destroyed || !upstream.destroyed)) this.opts.onEvent?.(`proxy ${from ?? '?'}->${to}: connection reset (${why})`);
        for (const p of conn.pipes) p.stop();
        client.destroy();
        upstream.destroy();
        this.conns.delete(conn);
      };
      const healthy = () => ({});
      const max = this.opts.queueBytesMax ?? 1024 * 1024;
      conn.pipes.push(new Pipe(client, upstream, from ? () => this.opts.links.get(from, to) : healthy, this.opts.random, max, kill));
      conn.pipes.push(new Pipe(upstream, client, from ? () => this.opts.links.get(to, from) : healthy, this.opts.random, max, kill));
      client.on('close', () => kill('client closed'));
      upstream.on('close', () => kill('member closed'));
      this.conns.add(conn);
      client.resume();
    }, () => client.destroy());
  }

  /** Resets every open connection (the harness uses it when a member dies, as the kernel would). */
  resetAll(): void {
    for (const c of [...this.conns]) { c.client.destroy(); c.upstream.destroy(); }
    this.conns.clear();
  }

  async close(): Promise<void> {
    this.unsubscribe?.();
    this.resetAll();
    const s = this.server;
    this.server = null;
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}

/**
 * identify() for processes on this machine: finds the process that owns the
 * client end of an accepted loopback connection through /proc (Linux), and
 * maps its pid to a member name. Returns undefined when it cannot tell.
 */
export function procIdentifier(pidToMember: () => Map<number, string>): (socket: net.Socket) => Promise<string | undefined> {
  return async (socket) => {
    const clientPort = socket.remotePort;
    const serverPort = socket.localPort;
    if (!clientPort || !serverPort) return undefined;
    const hex = (p: number) => p.toString(16).toUpperCase().padStart(4, '0');
    let inode: string | undefined;
    for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
      let text: string;
      try { text = await fs.promises.readFile(f, 'utf8'); } catch { continue; }
      for (const line of text.split('\n')) {
        const cols = line.trim().split(/\s+/);
        if (cols.length < 10) continue;
        if (cols[1]!.endsWith(`:${hex(clientPort)}`) && cols[2]!.endsWith(`:${hex(serverPort)}`)) { inode = cols[9]; break; }
      }
      if (inode) break;
    }
    if (!inode || inode === '0') return undefined;
    const want = `socket:[${inode}]`;
    for (const [pid, name] of pidToMember()) {
      let fds: string[];
      try { fds = await fs.promises.readdir(`/proc/${pid}/fd`); } catch { continue; }
      for (const fd of fds) {
        try { if ((await fs.promises.readlink(`/proc/${pid}/fd/${fd}`)) === want) return name; } catch { /* fd closed meanwhile */ }
      }
    }
    return undefined;
  };
}
