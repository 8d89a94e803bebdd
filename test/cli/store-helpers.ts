// Helpers for the `keelson store` process tests: free loopback ports, a
// cluster of `keelson store serve` processes, and running etcdctl / the
// keelson CLI. Every process started here is killed at exit, also on failure.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const keelsonBin = path.join(root, 'bin', 'keelson');
export const etcdctlBin = '/usr/bin/etcdctl';

const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export interface Member {
  name: string;
  clientPort: number;
  peerPort: number;
  dataDir: string;
  proc: ChildProcess | null;
  log: string;
  endpoint: string;
  peerUrl: string;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function run(cmd: string, args: string[], opts: { input?: string; timeoutMs?: number; env?: Record<string, string> } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { timeout: opts.timeoutMs ?? 20_000, env: { ...process.env, ETCDCTL_API: '3', ...opts.env }, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
    if (opts.input !== undefined) child.stdin!.end(opts.input);
  });
}

export function etcdctl(endpoints: string, ...args: string[]): Promise<RunResult> {
  return run(etcdctlBin, [`--endpoints=${endpoints}`, '--command-timeout=10s', ...args]);
}

export function keelson(...args: string[]): Promise<RunResult> {
  return run(process.execPath, [keelsonBin, ...args]);
}

export class Cluster {
  members: Member[] = [];
  constructor(readonly dir: string, readonly token = 'keelson-test') {}

  static async create(dir: string, names: string[], token?: string): Promise<Cluster> {
    const c = new Cluster(dir, token);
    for (const name of names) await c.define(name);
    return c;
  }

  async define(name: string): Promise<Member> {
    const clientPort = await freePort();
    const peerPort = await freePort();
    const m: Member = {
      name, clientPort, peerPort, dataDir: path.join(this.dir, name), proc: null, log: '',
      endpoint: `127.0.0.1:${clientPort}`, peerUrl: `http://127.0.0.1:${peerPort}`,
    };
    this.members.push(m);
    return m;
  }

  initialCluster(members = this.members): string {
    return members.map((m) => `${m.name}=${m.peerUrl}`).join(',');
  }

  endpoints(members = this.members.filter((m) => m.proc)): string {
    return members.map((m) => m.endpoint).join(',');
  }

  member(name: string): Member {
    const m = this.members.find((x) => x.name === name);
    if (!m) throw new Error(`no member ${name}`);
    return m;
  }

  /** Starts a member process and resolves once it printed its ready line. */
  start(m: Member, extra: string[] = [], initial = this.initialCluster(), clientScheme: 'http' | 'https' = 'http'): Promise<void> {
    const args = [
      keelsonBin, 'store', 'serve', `--name=${m.name}`, `--data-dir=${m.dataDir}`,
      `--listen-client-urls=${clientScheme}://127.0.0.1:${m.clientPort}`, `--advertise-client-urls=${clientScheme}://127.0.0.1:${m.clientPort}`,
      `--listen-peer-urls=${m.peerUrl}`, `--initial-advertise-peer-urls=${m.peerUrl}`,
      `--initial-cluster=${initial}`, `--initial-cluster-token=${this.token}`,
      '--heartbeat-interval=50', '--election-timeout=500', ...extra,
    ];
    const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(proc);
    m.proc = proc;
    m.log = '';
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`member ${m.name} not ready after 30 s:\n${m.log}`)), 30_000);
      const onData = (d: Buffer): void => {
        m.log += d.toString();
        if (m.log.includes(' ready; ')) {
          clearTimeout(timer);
          resolve();
        }
      };
      proc.stdout!.on('data', onData);
      proc.stderr!.on('data', (d: Buffer) => (m.log += d.toString()));
      proc.on('exit', (code, sig) => {
        children.delete(proc);
        if (m.proc === proc) m.proc = null;
        clearTimeout(timer);
        reject(new Error(`member ${m.name} exited (${code ?? sig}) before ready:\n${m.log}`));
      });
    });
  }

  async startAll(): Promise<void> {
    await Promise.all(this.members.map((m) => this.start(m)));
  }

  /** SIGKILL: a crash, nothing flushed beyond what the member already made durable. */
  async kill(m: Member, signal: NodeJS.Signals = 'SIGKILL'): Promise<number | null> {
    const p = m.proc;
    if (!p) return null;
    const exited = new Promise<number | null>((r) => p.once('exit', (code) => r(code)));
    p.kill(signal);
    const code = await exited;
    m.proc = null;
    return code;
  }

  async stopAll(): Promise<void> {
    await Promise.all(this.members.map((m) => this.kill(m, 'SIGKILL')));
  }
}

export async function until<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v as T;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Runs `keelson <args>` in this process (no tsx start-up per command, which
 * costs seconds on a loaded machine), capturing what it writes.
 */
export async function keelsonInProcess(...args: string[]): Promise<RunResult> {
  const { main } = await import('../../src/cli/main.ts');
  let stdout = '';
  let stderr = '';
  const outWrite = process.stdout.write.bind(process.stdout);
  const errWrite = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((chunk: string | Uint8Array) => ((stdout += chunk.toString()), true)) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string | Uint8Array) => ((stderr += chunk.toString()), true)) as typeof process.stderr.write;
  try {
    const code = await main(args);
    return { code, stdout, stderr };
  } finally {
    process.stdout.write = outWrite;
    process.stderr.write = errWrite;
  }
}
