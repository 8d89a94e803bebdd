// The in-process request and response shapes of the handler chain, and the
// parsing of a URL path into Kubernetes request attributes (which group,
// version, resource, namespace, name, subresource and verb it addresses).
import type { IncomingHttpHeaders } from 'node:http';
import type { ChunkStream } from './stream.ts';

export interface ApiRequest {
  method: string;
  /** Path and query, as on the request line ("/api/v1/pods?limit=5"). */
  url: string;
  headers: IncomingHttpHeaders;
  /** The whole body (the HTTP adapter enforces the size limit while reading). */
  body?: Buffer;
  /** Identifies the client for concurrency limits when it is not authenticated (remote address). */
  clientId?: string;
  /** Set by a trusted listener (the loopback --insecure-port): the request runs as this user without authentication or authorization. */
  trustedUser?: { username: string; uid?: string; groups: string[]; extra?: Record<string, string[]> };
  /** The TLS peer certificate, when the adapter has one. */
  peerCertificate?: unknown;
}

export interface ApiResponse {
  status: number;
  headers: Record<string, string | string[]>;
  body?: Buffer;
  /** Streaming body (watch); ended by the server on timeout or shutdown, by the consumer on disconnect. */
  stream?: ChunkStream;
}

export interface RequestInfo {
  resourceRequest: boolean;
  path: string;
  verb: string;
  /** 'api' or 'apis' for resource requests. */
  prefix: string;
  apiGroup: string;
  apiVersion: string;
  namespace: string;
  resource: string;
  subresource: string;
  name: string;
  parts: string[];
}

const namespaceSubresources = new Set(['status', 'finalize']);

/** Splits /api/v1/namespaces/ns/pods/name/status and friends, as Kubernetes' RequestInfoFactory does. */
export function parseRequestInfo(method: string, path: string, query: URLSearchParams): RequestInfo {
  const parts = path.split('/').filter((p) => p !== '').map((p) => { try { return decodeURIComponent(p); } catch { return p; } });
  const info: RequestInfo = {
    resourceRequest: false, path, verb: method.toLowerCase(), prefix: '', apiGroup: '', apiVersion: '',
    namespace: '', resource: '', subresource: '', name: '', parts,
  };
  let rest: string[];
  if (parts[0] === 'api' && parts.length >= 2) {
    info.prefix = 'api';
    info.apiVersion = parts[1]!;
    rest = parts.slice(2);
  } else if (parts[0] === 'apis' && parts.length >= 3) {
    info.prefix = 'apis';
    info.apiGroup = parts[1]!;
    info.apiVersion = parts[2]!;
    rest = parts.slice(3);
  } else {
    return info;
  }
  if (rest.length === 0) return info; // discovery of a group version
  info.resourceRequest = true;
  let watchPath = false;
  if (rest[0] === 'watch') { watchPath = true; rest = rest.slice(1); }
  if (rest[0] === 'namespaces' && rest.length > 1) {
    info.namespace = rest[1]!;
    if (rest.length > 2 && !namespaceSubresources.has(rest[2]!)) rest = rest.slice(2);
  }
  info.resource = rest[0] ?? '';
  info.name = rest[1] ?? '';
  info.subresource = rest[2] ?? '';
  if (rest.length > 3) info.subresource = rest.slice(2).join('/');
  const watchParam = query.get('watch');
  const isWatch = watchPath || watchParam === 'true' || watchParam === '1';
  switch (method) {
    case 'GET': case 'HEAD':
      info.verb = info.name === '' || isWatch ? (isWatch ? 'watch' : 'list') : 'get';
      break;
    case 'POST': info.verb = 'create'; break;
    case 'PUT': info.verb = 'update'; break;
    case 'PATCH': info.verb = 'patch'; break;
    case 'DELETE': info.verb = info.name === '' ? 'deletecollection' : 'delete'; break;
    default: info.verb = method.toLowerCase();
  }
  // For a namespace object itself, the namespace is its name.
  if (info.resource === 'namespaces' && info.apiGroup === '') info.namespace = info.name;
  return info;
}

export interface MediaType { type: string; params: Record<string, string>; }

export function parseAccept(h: string | undefined): MediaType[] {
  if (!h) return [{ type: '*/*', params: {} }];
  return h.split(',').map((part) => {
    const [t, ...ps] = part.split(';').map((x) => x.trim());
    const params: Record<string, string> = {};
    for (const p of ps) { const i = p.indexOf('='); if (i > 0) params[p.slice(0, i).trim()] = p.slice(i + 1).trim(); }
    return { type: (t ?? '').toLowerCase(), params };
  }).filter((m) => m.type !== '');
}
