// A store cluster on loopback for the harness: every member a separate
// process (Keelson's `keelson store serve` or etcd, same flag names), every
// member's advertised peer URL a fault proxy in front of its real peer
// listener. The cluster can kill, pause, resume and restart members, find the
// leader, and wipe a member and bring it back through member remove + add.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { EndpointClient } from './client.ts';
import { FaultProxy, LinkTable, procIdentifier } from './proxy.ts';

export type Target = 'keelson' | 'etcd';

export interface ClusterOptions {
  target: Target;
  members: number;
  dir: string;
  /** Seed-derived token, so two runs never join each other's clusters. */
  token: string;
  random: () => number;
  heartbeatMs?: number;
  electionMs?: number;
  etcdBinary?: string;
  log?: (line: string) => void;
}

export interface MemberProc {
  name: string;
  /** The member id as a decimal string (from the member list), once known. */
  id?: string;
  clientUrl: string;
  peerUrl: string; // advertised: the proxy
  realPeerPort: number;
  dataDir: string;
  proc: ChildProcess | null;
  state: 'running' | 'stopped' | 'paused' | 'removed';
  client: EndpointClient;
  proxy: FaultProxy;
  /** Bumped when the member is wiped and re-added: a new data dir. */
  generation: number;
}

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r, j) => { s.once('error', j); s.listen(0, '127.0.0.1', () => r()); });
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class LocalCluster {
  readonly links = new LinkTable();
  /** Members that died without the harness killing them (a crash is a finding; the report lists them). */
  readonly unexpectedExits: string[] = [];
  private readonly expectedExits = new Set<ChildProcess>();
  /** Proxied connections reset to model loss, for the fault's description. */
  lossResets = 0;
  /** Proxied connections whose source member was not found (forwarded untouched; a member dying while it dials). */
  unidentified = 0;
  readonly members: MemberProc[] = [];
  private readonly heartbeatMs: number;
  private readonly electionMs: number;

  constructor(private readonly opts: ClusterOptions) {
    this.heartbeatMs = opts.heartbeatMs ?? 100;
    this.electionMs = opts.electionMs ?? 1000;
  }

  private log(line: string) { this.opts.log?.(line); }

  endpoints(): string[] { return this.members.filter((m) => m.state !== 'removed').map((m) => m.clientUrl); }

  async start(): Promise<void> {
    fs.mkdirSync(this.opts.dir, { recursive: true });
    const identify = procIdentifier(() => {
      const m = new Map<number, string>();
      for (const x of this.members) if (x.proc?.pid && x.state !== 'stopped') m.set(x.proc.pid, x.name);
      return m;
    });
    for (let i = 1; i <= this.opts.members; i++) {
      const name = `m${i}`;
      const clientPort = await freePort();
      const realPeerPort = await freePort();
      const proxy = new FaultProxy({
        member: name, target: { host: '127.0.0.1', port: realPeerPort }, links: this.links, 
        identify: async (s) => { const who = await identify(s); if (!who) this.unidentified++; return who; }, random: this.opts.random,
        onEvent: () => { this.lossResets++; },
      });
      const proxyPort = await proxy.listen();
      const clientUrl = `http://127.0.0.1:${clientPort}`;
      this.members.push({
        name, clientUrl, peerUrl: `http://127.0.0.1:${proxyPort}`, realPeerPort, dataDir: path.join(this.opts.dir, `${name}.data`),
        proc: null, state: 'stopped', client: new EndpointClient(clientUrl), proxy, generation: 0,
      });
    }
    const initial = this.members.map((m) => `${m.name}=${m.peerUrl}`).join(',');
    for (const m of this.members) this.spawn(m, initial, 'new');
    await this.waitHealthy(60_000);
    await this.refreshIds();
  }

  private spawn(m: MemberProc, initialCluster: string, state: 'new' | 'existing', extra: string[] = []): void {
    const flags = [...extra,
      `--name=${m.name}`, `--data-dir=${m.dataDir}`,
      `--listen-client-urls=${m.clientUrl}`, `--advertise-client-urls=${m.clientUrl}`,
      `--listen-peer-urls=http://127.0.0.1:${m.realPeerPort}`, `--initial-advertise-peer-urls=${m.peerUrl}`,
      `--initial-cluster=${initialCluster}`, `--initial-cluster-state=${state}`, `--initial-cluster-token=${this.opts.token}`,
      `--heartbeat-interval=${this.heartbeatMs}`, `--election-timeout=${this.electionMs}`,
    ];
    const logFile = fs.openSync(path.join(this.opts.dir, `${m.name}.log`), 'a');
    const [cmd, args] = this.opts.target === 'etcd'
      ? [this.opts.etcdBinary ?? '/usr/bin/etcd', [...flags, '--logger=zap', '--log-outputs=stderr']]
      : [process.execPath, [path.join(repoRoot, 'bin', 'keelson'), 'store', 'serve', ...flags]];
    const proc = spawn(cmd, args, { stdio: ['ignore', logFile, logFile], env: { ...process.env, ETCD_UNSUPPORTED_ARCH: process.env.ETCD_UNSUPPORTED_ARCH ?? '' } });
    fs.closeSync(logFile);
    m.proc = proc;
    m.state = 'running';
    proc.on('exit', (code, signal) => {
      if (m.proc === proc) {
        m.proc = null;
        if (!this.expectedExits.delete(proc)) {
          const line = `${m.name} exited by itself (${signal ?? `code ${code}`}); see ${m.name}.log`;
          this.unexpectedExits.push(line);
          this.log(line);
        }
        if (m.state !== 'removed') m.state = 'stopped';
      }
    });
  }

  member(name: string): MemberProc {
    const m = this.members.find((x) => x.name === name);
    if (!m) throw new Error(`no member ${name}`);
    return m;
  }

  running(): MemberProc[] { return this.members.filter((m) => m.state === 'running'); }

  async refreshIds(): Promise<void> {
    for (const m of this.running()) {
      try {
        const r = await m.client.memberList(2000);
        for (const x of r.members) {
          const mem = this.members.find((y) => x.peerURLs.includes(y.peerUrl));
          if (mem) mem.id = String(x.ID);
        }
        return;
      } catch { /* try the next member */ }
    }
  }

  /** The leader's name, asking members in turn; undefined when none answers with one. */
  async leader(timeoutMs = 1000): Promise<string | undefined> {
    for (const m of this.running()) {
      try {
        const s = await m.client.status(timeoutMs);
        const id = String(s.leader);
        if (id === '0') continue;
        const l = this.members.find((x) => x.id === id);
        if (l) return l.name;
      } catch { /* next */ }
    }
    return undefined;
  }

  /** Waits until a leader exists and every running member answers status. */
  async waitHealthy(timeoutMs: number): Promise<void> {
    const end = Date.now() + timeoutMs;
    let lastErr = '';
    while (Date.now() < end) {
      if (this.members.every((m) => m.state === 'stopped' || m.state === 'removed')) {
        // Nothing left to wait for: say why the first member died.
        const m = this.members[0]!;
        let tail = '';
        try { tail = fs.readFileSync(path.join(this.opts.dir, `${m.name}.log`), 'utf8').trim().split('\n').slice(-3).join(' | '); } catch { /* no log */ }
        throw new Error(`every member has exited (${m.name}.log: ${tail.slice(0, 500)})`);
      }
      let ok = true;
      for (const m of this.running()) {
        try {
          const s = await m.client.status(1000);
          if (String(s.leader) === '0') { ok = false; lastErr = `${m.name}: no leader`; }
        } catch (e) { ok = false; lastErr = `${m.name}: ${(e as Error).message}`; }
      }
      if (ok && this.running().length > 0) return;
      await sleep(200);
    }
    throw new Error(`cluster not healthy after ${timeoutMs} ms (${lastErr})`);
  }

  kill(name: string): Promise<void> { return this.signal(name, 'SIGKILL'); }

  private async signal(name: string, sig: NodeJS.Signals): Promise<void> {
    const m = this.member(name);
    const p = m.proc;
    if (!p || p.exitCode !== null) return;
    if (m.state === 'paused') p.kill('SIGCONT');
    const exited = new Promise<void>((r) => p.once('exit', () => r()));
    this.expectedExits.add(p);
    p.kill(sig);
    await Promise.race([exited, sleep(10_000)]);
    m.state = 'stopped';
  }

  pause(name: string): void {
    const m = this.member(name);
    if (m.proc && m.state === 'running') { m.proc.kill('SIGSTOP'); m.state = 'paused'; }
  }

  resume(name: string): void {
    const m = this.member(name);
    if (m.proc && m.state === 'paused') { m.proc.kill('SIGCONT'); m.state = 'running'; }
  }

  /** Starts a stopped member again on its data dir. */
  restart(name: string): void {
    const m = this.member(name);
    if (m.state !== 'stopped') return;
    const initial = this.members.filter((x) => x.state !== 'removed' || x === m).map((x) => `${x.name}=${x.peerUrl}`).join(',');
    this.spawn(m, initial, 'new');
  }

  /**
   * Wipes a member: remove it from the cluster, kill it, delete its data,
   * add it back (same name and URLs, a new id) and start it empty with
   * --initial-cluster-state=existing, so it catches up from the others.
   */
  async wipe(name: string, timeoutMs: number): Promise<void> {
    const m = this.member(name);
    await this.refreshIds();
    if (!m.id) throw new Error(`wipe ${name}: member id unknown`);
    const via = () => this.running().filter((x) => x !== m);
    const call = async <T>(what: string, fn: (c: EndpointClient) => Promise<T>): Promise<T> => {
      const end = Date.now() + timeoutMs;
      let last: unknown;
      while (Date.now() < end) {
        for (const x of via()) {
          try { return await fn(x.client); } catch (e) { last = e; }
        }
        await sleep(200);
      }
      throw new Error(`wipe ${name}: ${what} failed: ${(last as Error)?.message ?? 'no member to ask'}`);
    };
    await call('member remove', (c) => c.memberRemove(m.id!, 3000));
    m.state = 'removed';
    await this.signal(name, 'SIGKILL');
    m.state = 'removed';
    fs.rmSync(m.dataDir, { recursive: true, force: true });
    m.generation++;
    const added = await call('member add', (c) => c.memberAdd([m.peerUrl], 3000));
    m.id = String(added.member.ID);
    const initial: string[] = [];
    for (const x of added.members) {
      const mem = this.members.find((y) => x.peerURLs.includes(y.peerUrl));
      if (mem) initial.push(`${mem.name}=${mem.peerUrl}`);
    }
    m.state = 'stopped';
    // Keelson takes the new member's and the cluster's ids from the add (etcd derives them itself).
    const ids = this.opts.target === 'keelson'
      ? [`--member-id=${BigInt(m.id).toString(16)}`, `--cluster-id=${BigInt(String(added.header.cluster_id)).toString(16)}`]
      : [];
    this.spawn(m, initial.join(','), 'existing', ids);
  }

  async stop(): Promise<void> {
    for (const m of this.members) {
      if (m.proc && m.proc.exitCode === null) {
        if (m.state === 'paused') m.proc.kill('SIGCONT');
        const p = m.proc;
        const exited = new Promise<void>((r) => p.once('exit', () => r()));
        this.expectedExits.add(p);
        p.kill('SIGKILL');
        await Promise.race([exited, sleep(5000)]);
      }
      m.client.close();
      await m.proxy.close();
    }
  }
}
