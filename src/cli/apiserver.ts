// `keelson apiserver`: serve the Kubernetes API on a store: the embedded one
// (--data-dir) or a remote Keelson/etcd cluster (--store-endpoints).
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Standalone } from '../apiserver/standalone.ts';
import type { Store } from '../store/store.ts';
import type { Command } from './command.ts';
import { UsageError } from './command.ts';

export interface ApiFlags {
  dataDir: string;
  port: number;
  bindAddress: string;
  storeEndpoints?: string[];
  tokenFile?: string;
  encryptionConfig?: string;
  insecurePort?: number;
}

const loopback = new Set(['127.0.0.1', '::1', 'localhost']);

/** Parses --name=value / --name value flags; unknown ones are usage errors. */
export function parseApiFlags(args: string[], allowed: string[], defaults: { port: number }): ApiFlags {
  const values = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (!a.startsWith('--')) throw new UsageError(`unexpected argument "${a}"`);
    const eq = a.indexOf('=');
    const name = eq > 0 ? a.slice(2, eq) : a.slice(2);
    if (!allowed.includes(name)) throw new UsageError(`unknown option --${name}`);
    const value = eq > 0 ? a.slice(eq + 1) : args[++i];
    if (value === undefined || value === '') throw new UsageError(`--${name} needs a value`);
    values.set(name, value);
  }
  const port = (name: string, v: string | undefined, d?: number): number | undefined => {
    if (v === undefined) return d;
    if (!/^\d+$/.test(v) || Number(v) > 65535) throw new UsageError(`--${name} must be a port number (0-65535), got "${v}"`);
    return Number(v);
  };
  const bind = values.get('bind-address') ?? '127.0.0.1';
  const insecure = values.get('insecure-port');
  const insecureBind = values.get('insecure-bind-address') ?? '127.0.0.1';
  if (insecure !== undefined && !loopback.has(insecureBind)) throw new UsageError('--insecure-port serves without authentication and binds to loopback only');
  return {
    dataDir: path.resolve(values.get('data-dir') ?? 'keelson-data'),
    port: port('port', values.get('port'), defaults.port)!,
    bindAddress: bind,
    storeEndpoints: values.get('store-endpoints')?.split(',').map((s) => s.trim()).filter(Boolean),
    tokenFile: values.get('token-file'),
    encryptionConfig: values.get('encryption-config'),
    insecurePort: port('insecure-port', insecure),
  };
}

export interface Running {
  server: Standalone;
  store: Store;
  stop(): Promise<void>;
}

/** Opens the store (embedded or remote) and starts the API server on it. */
export async function runApiServer(f: ApiFlags): Promise<Running> {
  mkdirSync(f.dataDir, { recursive: true });
  // Loaded here, not at the top: every `keelson` command imports this module.
  const { startStandalone } = await import('../apiserver/standalone.ts');
  let store: Store;
  if (f.storeEndpoints?.length) {
    const { RemoteStore } = await import('../store/client/remote.ts');
    store = new RemoteStore({ endpoints: f.storeEndpoints });
  } else {
    const { EmbeddedStore } = await import('../store/embedded.ts');
    const embedded = new EmbeddedStore({ dataDir: path.join(f.dataDir, 'store') });
    await embedded.waitForLeader();
    store = embedded;
  }
  let server: Standalone;
  try {
    server = await startStandalone({
      store, dataDir: f.dataDir, bindAddress: f.bindAddress, port: f.port, tokenFile: f.tokenFile,
      encryptionConfig: f.encryptionConfig, insecurePort: f.insecurePort,
    });
  } catch (e) {
    await store.close();
    throw e;
  }
  return {
    server, store,
    async stop() {
      await server.close();
      await store.close();
    },
  };
}

/** Resolves on the first SIGINT or SIGTERM. */
export function untilSignal(): Promise<string> {
  return new Promise((resolve) => {
    const on = (sig: string) => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      resolve(sig);
    };
    const onInt = () => on('SIGINT');
    const onTerm = () => on('SIGTERM');
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
  });
}

export const apiserverUsage = `Usage: keelson apiserver [options]

Serves the Kubernetes API (HTTPS, RBAC, admission) on a Keelson store.

Options:
  --data-dir DIR            TLS material, admin.kubeconfig and (without --store-endpoints)
                            the embedded store (default ./keelson-data)
  --store-endpoints URLS    comma-separated client URLs of a Keelson store cluster or etcd
  --port N                  HTTPS port (default 6443; 0 = any free port)
  --bind-address ADDR       HTTPS listen address (default 127.0.0.1)
  --token-file FILE         static bearer tokens (token,user,uid,"group1,group2")
  --encryption-config FILE  EncryptionConfiguration for encryption at rest
  --insecure-port N         also serve plain HTTP on 127.0.0.1, without authentication`;

export const apiserverCommand: Command = {
  name: 'apiserver',
  summary: 'serve the Kubernetes API on a store',
  usage: apiserverUsage,
  async run(args) {
    const f = parseApiFlags(args, ['data-dir', 'store-endpoints', 'port', 'bind-address', 'token-file', 'encryption-config', 'insecure-port', 'insecure-bind-address'], { port: 6443 });
    const r = await runApiServer(f);
    console.log(`keelson apiserver: serving ${r.server.url}${r.server.insecureUrl ? ` (and ${r.server.insecureUrl} without authentication)` : ''}`);
    console.log(`admin kubeconfig: ${r.server.kubeconfig}`);
    const sig = await untilSignal();
    console.log(`keelson apiserver: ${sig}, stopping`);
    await r.stop();
    return 0;
  },
};
