// Test helpers: an API server on a LocalKeyspaceStore in a temp dir, served
// on a random loopback port, with a kubeconfig for /usr/bin/kubectl.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { LocalKeyspaceStore } from '../../src/store/local.ts';
import { serve, type Served } from '../../src/apiserver/http/adapter.ts';
import { ApiServer, type ApiServerOptions } from '../../src/apiserver/server.ts';

export interface TestServer {
  api: ApiServer;
  store: LocalKeyspaceStore;
  served: Served;
  url: string;
  dir: string;
  kubeconfig: string;
  stop(): Promise<void>;
}

export async function startServer(opts: Partial<ApiServerOptions> = {}): Promise<TestServer> {
  const dir = mkdtempSync(path.join(tmpdir(), 'keelson-api-'));
  const store = new LocalKeyspaceStore({ dir: path.join(dir, 'store'), leaseTickMs: 0 });
  const api = new ApiServer({ store, bookmarkIntervalMs: 0, apiServiceCheckIntervalMs: 0, ...opts });
  await api.start();
  const served = await serve(api, { port: 0 });
  const kubeconfig = path.join(dir, 'kubeconfig');
  writeFileSync(kubeconfig, [
    'apiVersion: v1', 'kind: Config',
    `clusters: [{name: t, cluster: {server: "${served.url}"}}]`,
    'users: [{name: t, user: {token: test}}]',
    'contexts: [{name: t, context: {cluster: t, user: t, namespace: default}}]',
    'current-context: t', '',
  ].join('\n'));
  return {
    api, store, served, url: served.url, dir, kubeconfig,
    async stop() {
      await served.close();
      await api.stop();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface RunResult { code: number; stdout: string; stderr: string }

/** Runs kubectl asynchronously (the server lives in this process, so the event loop must keep running). */
export function kubectl(kubeconfig: string, args: string[], input?: string, timeoutMs = 30_000): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn('/usr/bin/kubectl', args, { env: { ...process.env, KUBECONFIG: kubeconfig, HOME: path.dirname(kubeconfig), KUBECACHEDIR: path.join(path.dirname(kubeconfig), 'cache') } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => { clearTimeout(timer); resolve({ code: code ?? -1, stdout, stderr }); });
    if (input !== undefined) child.stdin.end(input);
    else child.stdin.end();
  });
}

export async function ok(kubeconfig: string, args: string[], input?: string): Promise<string> {
  const r = await kubectl(kubeconfig, args, input);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed (${r.code}): ${r.stderr}${r.stdout}`);
  return r.stdout;
}

/** Plain HTTP request against the server. */
export async function request(url: string, method: string, path: string, body?: string | Buffer, headers: Record<string, string> = {}): Promise<{ status: number; json: any; text: string; headers: Headers }> {
  const r = await fetch(url + path, { method, body: body as BodyInit | undefined, headers: { 'content-type': 'application/json', ...headers } });
  const text = await r.text();
  let json: any;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: r.status, json, text, headers: r.headers };
}
