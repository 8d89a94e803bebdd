// Test helper: a real etcd cluster (Debian's etcd-server, /usr/bin/etcd) on
// loopback ports, data in a temp dir, always stopped by stop() (and killed
// with the test process if that dies first).
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export const etcdBinary = process.env.KEELSON_ETCD_BIN ?? '/usr/bin/etcd';

export function etcdAvailable(): boolean {
  return fs.existsSync(etcdBinary);
}

/** A free loopback port (the kernel's pick; released again for the child to bind). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

export interface EtcdCluster {
  endpoints: string[];
  dir: string;
  /** Everything the members printed, for failure reports. */
  logs(): string;
  /** Stops member i (SIGKILL), leaving the others running. */
  kill(i: number): Promise<void>;
  stop(): Promise<void>;
}

export async function startEtcdCluster(size = 3): Promise<EtcdCluster> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keelson-etcd-'));
  const members = [];
  for (let i = 0; i < size; i++) members.push({ name: `m${i}`, client: await freePort(), peer: await freePort() });
  const initial = members.map((m) => `${m.name}=http://127.0.0.1:${m.peer}`).join(',');
  const procs: ChildProcess[] = [];
  let log = '';
  for (const m of members) {
    const p = spawn(etcdBinary, [
      '--name', m.name,
      '--data-dir', path.join(dir, m.name),
      '--listen-client-urls', `http://127.0.0.1:${m.client}`,
      '--advertise-client-urls', `http://127.0.0.1:${m.client}`,
      '--listen-peer-urls', `http://127.0.0.1:${m.peer}`,
      '--initial-advertise-peer-urls', `http://127.0.0.1:${m.peer}`,
      '--initial-cluster', initial,
      '--initial-cluster-state', 'new',
      '--initial-cluster-token', `keelson-test-${process.pid}-${path.basename(dir)}`,
      // A shared 2-core machine: generous timeouts keep elections rare.
      '--heartbeat-interval', '200',
      '--election-timeout', '2000',
      '--logger', 'zap',
      '--log-outputs', 'stderr',
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    p.stdout?.on('data', (d) => { log += d; });
    p.stderr?.on('data', (d) => { log += d; if (log.length > 1_000_000) log = log.slice(-500_000); });
    procs.push(p);
  }
  const kill = () => { for (const p of procs) p.kill('SIGKILL'); };
  process.once('exit', kill);
  return {
    endpoints: members.map((m) => `http://127.0.0.1:${m.client}`),
    dir,
    logs: () => log,
    async kill(i: number) {
      const p = procs[i];
      if (p.exitCode !== null || p.signalCode !== null) return;
      await new Promise<void>((resolve) => {
        p.once('exit', () => resolve());
        p.kill('SIGKILL');
      });
    },
    async stop() {
      process.off('exit', kill);
      await Promise.all(procs.map((p) => new Promise<void>((resolve) => {
        if (p.exitCode !== null || p.signalCode !== null) return resolve();
        const t = setTimeout(() => p.kill('SIGKILL'), 3000);
        p.once('exit', () => { clearTimeout(t); resolve(); });
        p.kill('SIGTERM');
      })));
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
