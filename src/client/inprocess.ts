// An in-process client of the API server: requests go straight into the
// handler chain (ApiServer.handle) without sockets, with the same semantics
// as HTTP (authentication included, when the caller passes headers). Used by
// tests and by components that run in the API server's process.
import type { ApiServer } from '../apiserver/server.ts';

export interface ClientResponse<T = any> {
  status: number;
  headers: Record<string, string | string[]>;
  body: T;
}

export interface WatchEvent<T = any> {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: T;
}

export class InProcessClient {
  constructor(private readonly api: ApiServer, private readonly headers: Record<string, string> = {}) {}

  async request<T = any>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<ClientResponse<T>> {
    const raw = body === undefined ? undefined : Buffer.isBuffer(body) ? body : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
    const r = await this.api.handle({
      method, url: path, body: raw,
      headers: { 'content-type': 'application/json', accept: 'application/json', ...this.headers, ...headers },
    });
    if (r.stream) {
      r.stream.end();
      throw new Error(`${method} ${path} answered with a stream; use watch()`);
    }
    const text = r.body?.toString() ?? '';
    let parsed: unknown = text;
    if ((String(r.headers['content-type'] ?? '')).startsWith('application/json')) {
      try { parsed = JSON.parse(text); } catch { parsed = text; }
    }
    return { status: r.status, headers: r.headers, body: parsed as T };
  }

  get<T = any>(path: string): Promise<ClientResponse<T>> { return this.request('GET', path); }
  create<T = any>(path: string, obj: unknown): Promise<ClientResponse<T>> { return this.request('POST', path, obj); }
  update<T = any>(path: string, obj: unknown): Promise<ClientResponse<T>> { return this.request('PUT', path, obj); }
  delete<T = any>(path: string, opts?: unknown): Promise<ClientResponse<T>> { return this.request('DELETE', path, opts); }
  patch<T = any>(path: string, patch: unknown, type: 'merge' | 'json' | 'strategic' | 'apply' = 'merge'): Promise<ClientResponse<T>> {
    const ct = { merge: 'application/merge-patch+json', json: 'application/json-patch+json', strategic: 'application/strategic-merge-patch+json', apply: 'application/apply-patch+yaml' }[type];
    return this.request('PATCH', path, patch, { 'content-type': ct });
  }

  /**
   * Opens a watch (path with ?watch=true or a watch query); yields decoded
   * events until the server ends the stream or the consumer stops iterating
   * (which closes the watch on the server).
   */
  async *watch<T = any>(path: string): AsyncGenerator<WatchEvent<T>> {
    const r = await this.api.handle({ method: 'GET', url: path, headers: { accept: 'application/json', ...this.headers } });
    if (!r.stream) throw new Error(`watch ${path} failed with ${r.status}: ${r.body?.toString()}`);
    let rest = '';
    try {
      for await (const chunk of r.stream) {
        rest += chunk.toString();
        let i: number;
        while ((i = rest.indexOf('\n')) >= 0) {
          const line = rest.slice(0, i);
          rest = rest.slice(i + 1);
          if (line.trim()) yield JSON.parse(line) as WatchEvent<T>;
        }
      }
    } finally {
      r.stream.end();
    }
  }
}
