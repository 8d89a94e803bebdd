// API aggregation: an APIService with spec.service claims /apis/<group>/<version>.
// After the main server has authenticated and authorized a request for that
// group-version, it is proxied to the backend over HTTPS with the user in
// X-Remote-User / X-Remote-Group / X-Remote-Extra-* headers (the backend
// trusts them because it trusts this server), and the backend's resources
// are merged into discovery.
//
// The backend address comes from the Endpoints object of the service (its
// first ready address and the port named by spec.service.port, default 443):
// Keelson has no service proxy, so the cluster IP is not dialed. The
// backend's certificate is checked against spec.caBundle unless
// spec.insecureSkipTLSVerify is set. The aggregator presents its proxy client
// certificate (ApiServerOptions.proxyClientCert; `keelson apiserver` issues
// one with CN front-proxy-client from its CA), which backends check with the
// request-header authenticator before believing the X-Remote-* headers.
import https from 'node:https';
import { errors, StatusError } from '../errors.ts';
import type { ApiRequest, ApiResponse } from '../http/request.ts';
import { ChunkStream } from '../http/stream.ts';
import type { KObject } from '../resources/types.ts';
import type { UserInfo } from '../context.ts';

/** A proxied response body larger than this is cut off (watches are streamed, not buffered). */
const proxiedBodyBytesMax = 64 * 1024 * 1024;
/** Deadline for a discovery call to a backend. */
const discoveryTimeoutMs = 3000;
/** Chunks a proxied watch may queue for a slow client before it is cut off. */
const proxiedWatchChunksMax = 10_000;

export interface Backend {
  host: string;
  port: number;
  ca?: string;
  insecure: boolean;
}

export interface AggregationSource {
  apiService(group: string, version: string): KObject | undefined;
  apiServices(): KObject[];
  endpoints(namespace: string, name: string): Promise<KObject | null>;
}

/** The client certificate the aggregator presents to backends, so that they believe its X-Remote-* headers. */
export interface ProxyClientCert { certPem: string; keyPem: string }

export class Aggregator {
  constructor(private readonly src: AggregationSource, private readonly clientCert?: ProxyClientCert) {}

  /** The APIService claiming group/version with a backend service, if any. */
  claimed(group: string, version: string): KObject | undefined {
    const s = this.src.apiService(group, version);
    return s?.spec?.service ? s : undefined;
  }

  async backend(svc: KObject): Promise<Backend> {
    const ref = svc.spec.service;
    const ep = await this.src.endpoints(ref.namespace, ref.name);
    const wantPort = ref.port ?? 443;
    for (const subset of ep?.subsets ?? []) {
      const addr = subset.addresses?.[0]?.ip;
      const port = (subset.ports ?? []).find((p: KObject) => p.port === wantPort || p.name === 'https')?.port ?? subset.ports?.[0]?.port;
      if (addr && port) {
        return { host: addr, port, ca: svc.spec.caBundle ? Buffer.from(svc.spec.caBundle, 'base64').toString() : undefined, insecure: svc.spec.insecureSkipTLSVerify === true };
      }
    }
    throw errors.unavailable(`service ${ref.namespace}/${ref.name} of APIService ${svc.metadata?.name} has no endpoints`);
  }

  /** Proxies one request to the backend; watches come back as a stream. */
  async proxy(req: ApiRequest, svc: KObject, user: UserInfo): Promise<ApiResponse> {
    const b = await this.backend(svc);
    const headers: Record<string, string | string[]> = { 'x-remote-user': user.username, 'x-remote-group': user.groups };
    for (const [k, v] of Object.entries(user.extra ?? {})) headers[`x-remote-extra-${encodeURIComponent(k.toLowerCase())}`] = v;
    for (const h of ['content-type', 'accept', 'user-agent']) { const v = req.headers[h]; if (v !== undefined) headers[h] = v as string; }
    if (req.body) headers['content-length'] = String(req.body.length);
    return new Promise<ApiResponse>((resolve) => {
      const r = https.request({ host: b.host, port: b.port, method: req.method, path: req.url, headers, ca: b.ca, rejectUnauthorized: !b.insecure, servername: b.host.match(/^[\d.]+$/) ? undefined : b.host, cert: this.clientCert?.certPem, key: this.clientCert?.keyPem }, (res) => {
        const out: Record<string, string | string[]> = {};
        for (const h of ['content-type', 'warning', 'retry-after']) { const v = res.headers[h]; if (v !== undefined) out[h] = v; }
        const chunked = res.headers['transfer-encoding'] === 'chunked' && /[?&]watch=(true|1)/.test(req.url);
        if (chunked) {
          const stream = new ChunkStream(proxiedWatchChunksMax);
          res.on('data', (c: Buffer) => { if (!stream.push(c)) res.destroy(); });
          res.on('end', () => stream.end());
          res.on('error', () => stream.end());
          stream.onClose(() => res.destroy());
          resolve({ status: res.statusCode ?? 502, headers: out, stream });
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > proxiedBodyBytesMax) { res.destroy(); return; }
          chunks.push(c);
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 502, headers: out, body: Buffer.concat(chunks) }));
        res.on('error', (e) => resolve(failure(e)));
      });
      r.on('error', (e) => resolve(failure(e)));
      r.end(req.body);
    });
  }

  /** The backend's APIResourceList for group/version, or null when it does not answer. */
  async resourceList(svc: KObject): Promise<KObject | null> {
    try {
      const b = await this.backend(svc);
      const gv = `/apis/${svc.spec.group}/${svc.spec.version}`;
      return await new Promise<KObject | null>((resolve) => {
        const r = https.request({ host: b.host, port: b.port, path: gv, headers: { accept: 'application/json', 'x-remote-user': 'system:kube-aggregator', 'x-remote-group': ['system:masters'] }, ca: b.ca, rejectUnauthorized: !b.insecure, timeout: discoveryTimeoutMs, cert: this.clientCert?.certPem, key: this.clientCert?.keyPem }, (res) => {
          const cs: Buffer[] = [];
          res.on('data', (c: Buffer) => cs.push(c));
          res.on('end', () => { try { resolve(res.statusCode === 200 ? JSON.parse(Buffer.concat(cs).toString()) : null); } catch { resolve(null); } });
        });
        r.on('timeout', () => { r.destroy(); resolve(null); });
        r.on('error', () => resolve(null));
        r.end();
      });
    } catch {
      return null;
    }
  }

  /** Aggregated-discovery entries (apidiscovery v2) for a backend's resource list. */
  static toAggregated(group: string, version: string, list: KObject): unknown[] {
    const out: KObject[] = [];
    for (const r of list.resources ?? []) {
      const [name, sub] = String(r.name).split('/');
      if (sub) {
        const parent = out.find((x) => x.resource === name);
        if (parent) (parent.subresources ??= []).push({ subresource: sub, responseKind: { group: r.group ?? group, version: r.version ?? version, kind: r.kind }, verbs: r.verbs ?? [] });
        continue;
      }
      out.push({ resource: name, responseKind: { group, version, kind: r.kind }, scope: r.namespaced ? 'Namespaced' : 'Cluster', singularResource: r.singularName ?? '', verbs: r.verbs ?? [], ...(r.shortNames ? { shortNames: r.shortNames } : {}) });
    }
    return out;
  }
}

function failure(e: Error): ApiResponse {
  const s = new StatusError(503, 'ServiceUnavailable', `error trying to reach service: ${e.message}`);
  return { status: 503, headers: { 'content-type': 'application/json' }, body: Buffer.from(JSON.stringify(s.toStatus())) };
}
