// ApiServer: the handler chain of the Kubernetes-compatible API, callable
// in-process (handle(request) -> response, a stream for watches) and served
// over HTTP(S) by http/adapter.ts.
//
// Every request passes, in order: the per-client concurrency limit, the
// body limit (enforced by the adapter while reading), authentication,
// authorization, then routing; resource writes go on through mutating
// admission, strategy validation, validating admission and storage (see
// registry/registry.ts). Any error on the way is a StatusError, turned into a
// Kubernetes Status by the one catch in handle().
import YAML from 'yaml';
import { isKeelsonError, type Store } from '../store/store.ts';
import type { OpContext, FieldValidation, UserInfo } from './context.ts';
import { rfc3339 } from './context.ts';
import { systemPriorityClasses } from './admission/priority.ts';
import { rootCaConfigMapName } from './admission/service-account.ts';
import { Aggregator, type ProxyClientCert } from './aggregation/proxy.ts';
import { Discovery } from './discovery/discovery.ts';
import { errors, StatusError } from './errors.ts';
import { parseRequestInfo, type ApiRequest, type ApiResponse, type RequestInfo } from './http/request.ts';
import { decodeProtobuf } from './http/protobuf.ts';
import { ChunkStream } from './http/stream.ts';
import { negotiate, toTable, type IncludeObject, type Negotiated } from './http/tables.ts';
import { ApiMetrics } from './metrics.ts';
import { OpenApi } from './openapi/documents.ts';
import { unknownFieldPaths } from './openapi/schemas.ts';
import { list as listObjects, listBody, watch as watchObjects } from './registry/list.ts';
import { apiVersionOf, Registry, responseJson, type AdmissionHook, type AdmissionOp, type DeleteOptionsBody, type ValueTransformer } from './registry/registry.ts';
import * as patchLib from './patch/index.ts';
import type { PatchLib } from './registry/stand-ins.ts';
import { builtinResources } from './resources/index.ts';
import type { KObject, ResourceDef } from './resources/types.ts';

export interface Authenticator {
  authenticate(headers: ApiRequest['headers'], peerCertificate?: unknown): Promise<UserInfo | null>;
}
export interface RequestAttributes {
  user: UserInfo; verb: string; apiGroup: string; apiVersion: string; resource: string; subresource: string;
  namespace: string; name: string; resourceRequest: boolean; path: string;
}
export interface Authorizer { authorize(a: RequestAttributes): Promise<{ allowed: boolean; reason: string }> }

export interface GVR { group: string; version: string; resource: string }
export interface AdmissionContext {
  get(resource: GVR, namespace: string, name: string): Promise<any | null>;
  list(resource: GVR, namespace?: string): Promise<any[]>;
  create(resource: GVR, namespace: string, obj: any): Promise<any>;
}
export interface AdmissionAttributes {
  operation: 'CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT';
  kind: { group: string; version: string; kind: string };
  resource: GVR;
  subresource: string; namespace: string; name: string; object: any; oldObject: any; user: UserInfo; dryRun: boolean;
}
export interface AdmissionPlugin {
  name: string;
  admit?(a: AdmissionAttributes, ctx: AdmissionContext): Promise<void>;
  validate?(a: AdmissionAttributes, ctx: AdmissionContext): Promise<void>;
}

export interface ServiceAccountTokenIssuer {
  issueTokenRequest(sa: { namespace: string; name: string; uid: string }, spec: { audiences?: unknown; expirationSeconds?: unknown; boundObjectRef?: unknown }): Promise<{ token: string; expirationTimestamp: string }>;
  /** Service-account issuer discovery (/.well-known/openid-configuration and /openid/v1/jwks). */
  openidConfiguration?(jwksUri: string): Record<string, unknown>;
  jwks?(): Promise<unknown>;
}

/** Answers the review kinds that only the security layer can (kubectl auth can-i --list, kubectl auth whoami). */
export interface ReviewProvider {
  rules(user: UserInfo, namespace: string): Record<string, unknown>;
  /** Resolves Impersonate-* headers into the effective user (after checking the impersonate permission). */
  impersonate?(headers: ApiRequest['headers'], user: UserInfo): Promise<UserInfo>;
}

export interface ApiServerOptions {
  store: Store;
  /** null = no authentication: every request is the cluster admin (tests, in-process clients, loopback --insecure-port). */
  authenticator?: Authenticator | null;
  /** null = everything authenticated is allowed. */
  authorizer?: Authorizer | null;
  admissionPlugins?: AdmissionPlugin[];
  patch?: PatchLib;
  /** Encryption at rest, per resource. */
  transformerFor?: (group: string, resource: string) => ValueTransformer | null;
  tokenIssuer?: ServiceAccountTokenIssuer;
  /** Objects created at first start when absent (bootstrap RBAC). */
  bootstrapObjects?: KObject[];
  /** ms since epoch. */
  clock?: () => number;
  random?: () => number;
  /** Non-watch requests one client may have in flight before 429. */
  inflightPerClientMax?: number;
  /** Watch bookmarks every this many ms (0 = off). Default 10 s... Kubernetes sends them about once a minute. */
  bookmarkIntervalMs?: number;
  /** Longest watch, in seconds, when the client gives no timeoutSeconds. */
  watchTimeoutSecondsMax?: number;
  watchCache?: { eventWindowMax?: number; watcherBufferEventsMax?: number };
  version?: { major: string; minor: string; gitVersion: string };
  reviews?: ReviewProvider;
  /** How often service-backed APIServices are probed for their Available condition (0 = never). Default 10 s. */
  apiServiceCheckIntervalMs?: number;
  /** The client certificate presented to aggregated API backends. */
  proxyClientCert?: ProxyClientCert;
  /** Default service accounts and namespace cleanup, until the controller manager does them. Default true. */
  housekeeping?: boolean;
  /** The cluster CA (PEM), published as the kube-root-ca.crt ConfigMap in every namespace (with housekeeping). */
  rootCaBundle?: string;
}

const adminUser: UserInfo = { username: 'system:admin', groups: ['system:masters', 'system:authenticated'] };
const longRunningVerbs = new Set(['watch']);

function json(status: number, body: unknown, extraHeaders: Record<string, string | string[]> = {}, contentType = 'application/json'): ApiResponse {
  return { status, headers: { 'content-type': contentType, ...extraHeaders }, body: Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)) };
}

function statusResponse(e: StatusError): ApiResponse {
  const headers: Record<string, string> = {};
  if (e.details?.retryAfterSeconds) headers['retry-after'] = String(e.details.retryAfterSeconds);
  return json(e.code, e.toStatus(), headers);
}

function setPath(obj: KObject, path: string, v: unknown): void {
  const ps = path.split('.');
  let o: any = obj;
  for (const p of ps.slice(0, -1)) o = o[p] ??= {};
  o[ps[ps.length - 1]!] = v;
}
function getPath(obj: KObject, path: string): any {
  let o: any = obj;
  for (const p of path.split('.')) o = o?.[p];
  return o;
}

export class ApiServer {
  readonly store: Store;
  readonly metrics = new ApiMetrics();
  readonly discovery: Discovery;
  private readonly openapi: OpenApi;
  private readonly registries = new Map<string, Registry>();
  private readonly defs: ResourceDef[];
  private readonly clock: () => number;
  private readonly inflight = new Map<string, number>();
  private readonly inflightPerClientMax: number;
  private readonly patch: PatchLib;
  private readonly admission: AdmissionHook;
  private readonly streams = new Set<ChunkStream>();
  private bookmarkTimer: NodeJS.Timeout | null = null;
  private availabilityTimer: NodeJS.Timeout | null = null;
  private checkingAvailability = false;
  private readonly aggregator: Aggregator;
  private started = false;

  constructor(private readonly opts: ApiServerOptions) {
    this.store = opts.store;
    this.clock = opts.clock ?? Date.now;
    this.inflightPerClientMax = opts.inflightPerClientMax ?? 400;
    this.patch = opts.patch ?? patchLib;
    this.defs = builtinResources;
    this.discovery = new Discovery(this.defs);
    this.openapi = new OpenApi(this.defs);
    const plugins = opts.admissionPlugins ?? [];
    const admissionCtx = this.admissionContext();
    const attrs = (op: AdmissionOp, def: ResourceDef, sub: string, obj: KObject | null, old: KObject | null, ctx: OpContext): AdmissionAttributes => ({
      operation: op, kind: { group: def.group, version: def.version, kind: def.kind }, resource: { group: def.group, version: def.version, resource: def.resource },
      subresource: sub, namespace: def.namespaced ? ((obj ?? old)?.metadata?.namespace ?? '') : '', name: (obj ?? old)?.metadata?.name ?? '',
      object: obj, oldObject: old, user: ctx.user, dryRun: ctx.dryRun,
    });
    this.admission = {
      async admit(op, def, sub, obj, old, ctx) {
        const a = attrs(op, def, sub, obj, old, ctx);
        for (const p of plugins) if (p.admit) await p.admit(a, admissionCtx);
      },
      async validate(op, def, sub, obj, old, ctx) {
        const a = attrs(op, def, sub, obj, old, ctx);
        for (const p of plugins) if (p.validate) await p.validate(a, admissionCtx);
      },
    };
    this.aggregator = new Aggregator({
      apiService: (g, v) => { const r = this.registry('apiregistration.k8s.io', 'apiservices')!; return r.cache.get(r.key('', `${v}.${g}`))?.obj; },
      apiServices: () => this.registry('apiregistration.k8s.io', 'apiservices')!.cache.list().map((c) => c.obj),
      endpoints: async (ns, name) => (await this.registry('', 'endpoints')!.read(ns, name))?.obj ?? null,
    }, opts.proxyClientCert);
    for (const d of this.defs) {
      if (d.virtual) continue;
      this.registries.set(`${d.group}/${d.resource}`, new Registry(d, {
        store: this.store,
        admission: this.admission,
        unknownFields: (def, obj) => unknownFieldPaths(def.schemaName, obj),
        trackManagedFields: (old, obj, def, ctx, subresource) => this.patch.updateManagedFields(old, obj, {
          // The registry hands over its own working copy, so managedFields are set on it in place.
          manager: ctx.fieldManager ?? 'unknown', operation: 'Update', kind: { group: def.group, version: def.version, kind: def.kind }, now: rfc3339(ctx.now), owned: true,
          ...(subresource ? { subresource } : {}),
        }) as KObject,
        transformer: opts.transformerFor?.(d.group, d.resource) ?? null,
        random: opts.random,
        watchCache: opts.watchCache,
      }));
    }
  }

  registry(group: string, resource: string): Registry | undefined {
    return this.registries.get(`${group}/${resource}`);
  }

  private admissionContext(): AdmissionContext {
    const reg = (r: GVR) => {
      const g = this.registry(r.group, r.resource);
      if (!g) throw errors.internal(`admission asked for unknown resource ${r.resource}.${r.group}`);
      return g;
    };
    return {
      // The cache may trail a write made a moment ago (a namespace created just before a pod in it): fall back to the store.
      get: async (r, ns, name) => reg(r).cache.get(reg(r).key(ns, name))?.obj ?? (await reg(r).read(ns, name))?.obj ?? null,
      list: async (r, ns) => reg(r).cache.list(ns).map((c) => c.obj),
      create: async (r, ns, obj) => reg(r).create(ns, obj, this.systemContext()),
    };
  }

  private systemContext(): OpContext {
    return { user: adminUser, now: this.clock(), dryRun: false, fieldValidation: 'Ignore', warnings: [], fieldManager: 'keelson-apiserver' };
  }

  /** Starts every watch cache and creates the default namespaces and bootstrap objects when absent. */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    await Promise.all([...this.registries.values()].map((r) => r.cache.start()));
    const ctx = this.systemContext();
    const ensure = async (group: string, resource: string, obj: KObject) => {
      const reg = this.registry(group, resource)!;
      try { await reg.create(obj.metadata?.namespace ?? '', obj, ctx); } catch (e) { if (!(e instanceof StatusError && e.reason === 'AlreadyExists')) throw e; }
    };
    for (const ns of ['default', 'kube-system', 'kube-public', 'kube-node-lease']) {
      await ensure('', 'namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
      if (this.housekeeping) await this.ensureDefaultServiceAccount(ns);
    }
    // Namespaces from before this start get (or get a refreshed) kube-root-ca.crt too: the CA may be new.
    if (this.housekeeping) {
      for (const c of this.registry('', 'namespaces')!.cache.list()) {
        if (!c.obj.metadata?.deletionTimestamp) await this.ensureRootCaConfigMap(c.name);
      }
    }
    // Every built-in group-version has a local APIService, as in Kubernetes (kubectl get apiservices lists them).
    const seen = new Set<string>();
    for (const d of this.defs) {
      const name = `${d.version}.${d.group}`;
      if (seen.has(name)) continue;
      seen.add(name);
      await ensure('apiregistration.k8s.io', 'apiservices', {
        apiVersion: 'apiregistration.k8s.io/v1', kind: 'APIService', metadata: { name, labels: { 'kube-aggregator.kubernetes.io/automanaged': 'onstart' } },
        spec: { group: d.group, version: d.version, groupPriorityMinimum: d.group === '' ? 18000 : 17000, versionPriority: 15 },
        status: { conditions: [{ type: 'Available', status: 'True', reason: 'Local', message: 'Local APIServices are always available', lastTransitionTime: rfc3339(ctx.now) }] },
      });
    }
    // The system PriorityClasses are stored objects in Kubernetes (kubectl get priorityclasses lists them).
    for (const pc of systemPriorityClasses()) await ensure('scheduling.k8s.io', 'priorityclasses', pc as KObject);
    for (const o of this.opts.bootstrapObjects ?? []) {
      const [g] = String(o.apiVersion).includes('/') ? String(o.apiVersion).split('/') : [''];
      const def = this.defs.find((d) => d.group === g && d.kind === o.kind);
      if (def) await ensure(def.group, def.resource, o);
    }
    const checkMs = this.opts.apiServiceCheckIntervalMs ?? 10_000;
    if (checkMs > 0) {
      this.availabilityTimer = setInterval(() => void this.checkApiServices(), checkMs);
      this.availabilityTimer.unref();
    }
    const interval = this.opts.bookmarkIntervalMs ?? 10_000;
    if (interval > 0) {
      this.bookmarkTimer = setInterval(() => {
        for (const r of this.registries.values()) r.cache.bookmark({ kind: r.def.kind, apiVersion: r.apiVersion });
      }, interval);
      this.bookmarkTimer.unref();
    }
  }

  /** Ends every open watch and stops the caches (the store is the caller's to close). */
  async stop(): Promise<void> {
    if (this.bookmarkTimer) clearInterval(this.bookmarkTimer);
    if (this.availabilityTimer) clearInterval(this.availabilityTimer);
    for (const s of this.streams) s.end();
    await Promise.all([...this.registries.values()].map((r) => r.cache.stop()));
  }

  /** The handler chain. Never throws: every failure is a Status response. */
  async handle(req: ApiRequest): Promise<ApiResponse> {
    const started = performance.now();
    let info: RequestInfo | null = null;
    let clientKey = req.clientId ?? 'local';
    let counted = false;
    let res: ApiResponse;
    try {
      const url = new URL(req.url, 'http://keelson');
      info = parseRequestInfo(req.method, url.pathname, url.searchParams);
      let user = req.trustedUser ?? adminUser;
      if (this.opts.authenticator && !req.trustedUser) {
        const u = await this.opts.authenticator.authenticate(req.headers, req.peerCertificate);
        if (!u) throw errors.unauthorized();
        user = u;
      }
      if (this.opts.reviews?.impersonate && !req.trustedUser) user = await this.opts.reviews.impersonate(req.headers, user);
      clientKey = user.username;
      if (!longRunningVerbs.has(info.verb)) {
        const n = this.inflight.get(clientKey) ?? 0;
        if (n >= this.inflightPerClientMax) throw errors.tooManyRequests('Too many requests, please try again later.', 1);
        this.inflight.set(clientKey, n + 1);
        counted = true;
        this.metrics.inflight.inc();
      }
      if (this.opts.authorizer && !req.trustedUser && !isPublicPath(info)) {
        const attrs: RequestAttributes = {
          user, verb: info.verb, apiGroup: info.apiGroup, apiVersion: info.apiVersion, resource: info.resource, subresource: info.subresource,
          namespace: info.namespace, name: info.name, resourceRequest: info.resourceRequest, path: info.path,
        };
        const d = await this.opts.authorizer.authorize(attrs);
        if (!d.allowed) throw forbidden(attrs, d.reason);
      }
      res = await this.route(req, url, info, user);
    } catch (e) {
      res = statusResponse(toStatusError(e));
    } finally {
      if (counted) {
        const n = (this.inflight.get(clientKey) ?? 1) - 1;
        if (n <= 0) this.inflight.delete(clientKey); else this.inflight.set(clientKey, n);
        this.metrics.inflight.dec();
      }
    }
    const labels = { verb: info?.verb ?? req.method, group: info?.apiGroup ?? '', version: info?.apiVersion ?? '', resource: info?.resource ?? '', subresource: info?.subresource ?? '' };
    this.metrics.requests.inc({ ...labels, code: String(res.status) });
    if (!res.stream) this.metrics.latency.observe(labels, (performance.now() - started) / 1000);
    return res;
  }

  private async route(req: ApiRequest, url: URL, info: RequestInfo, user: UserInfo): Promise<ApiResponse> {
    const p = info.path.replace(/\/+$/, '') || '/';
    if (info.prefix === 'apis' && !this.discovery.resources(info.apiGroup, info.apiVersion)) {
      const svc = this.aggregator.claimed(info.apiGroup, info.apiVersion);
      if (svc) return this.aggregator.proxy(req, svc, user);
    }
    if (info.parts[0] === 'apis' && info.parts.length === 2 && !this.discovery.versionsOf(info.parts[1]!).length) {
      const versions = this.aggregatedGroups().get(info.parts[1]!);
      if (versions) {
        const vs = versions.map((v) => ({ groupVersion: `${info.parts[1]}/${v}`, version: v }));
        return json(200, { kind: 'APIGroup', apiVersion: 'v1', name: info.parts[1], versions: vs, preferredVersion: vs[0] });
      }
    }
    if (p === '/apis') await this.refreshAggregatedDiscovery();
    if (!info.resourceRequest) return this.nonResource(req, p, info);
    const def = this.discovery.find(info.apiGroup, info.apiVersion, info.resource);
    if (!def) throw new StatusError(404, 'NotFound', 'the server could not find the requested resource');
    const q = url.searchParams;
    const ctx = this.opContext(user, q, header(req, 'user-agent'));
    if (def.virtual) return this.virtual(req, def, info, user);
    const reg = this.registry(def.group, def.resource)!;
    const ns = def.namespaced ? info.namespace : '';
    if (def.namespaced && !ns && info.name) throw new StatusError(404, 'NotFound', 'the server could not find the requested resource');
    if (!def.namespaced && info.namespace && def.resource !== 'namespaces') throw new StatusError(404, 'NotFound', 'the server could not find the requested resource');
    const sub = info.subresource;
    if (sub && !this.subresourceAllowed(def, sub)) throw new StatusError(404, 'NotFound', 'the server could not find the requested resource');
    const neg = negotiate(header(req, 'accept'));
    if (!neg) throw errors.notAcceptable('only the following media types are accepted: application/json, application/yaml, application/json;as=Table;v=v1;g=meta.k8s.io');
    const warn = (r: ApiResponse) => {
      if (ctx.warnings.length) r.headers['warning'] = ctx.warnings.map((w) => `299 - ${JSON.stringify(w)}`);
      return r;
    };
    switch (info.verb) {
      case 'get': {
        const obj = await reg.get(ns, info.name);
        if (sub === 'scale') return json(200, this.scaleOf(def, obj));
        return this.respondObject(200, def, obj, neg, q);
      }
      case 'list': {
        const r = await listObjects(reg, this.store, def.namespaced && info.namespace ? info.namespace : undefined, {
          labelSelector: q.get('labelSelector'), fieldSelector: q.get('fieldSelector'), limit: q.get('limit'), continue: q.get('continue'),
          resourceVersion: q.get('resourceVersion'), resourceVersionMatch: q.get('resourceVersionMatch'),
        });
        const meta: Record<string, unknown> = { resourceVersion: String(r.rev) };
        if (r.continueToken) meta.continue = r.continueToken;
        if (r.remainingItemCount !== undefined) meta.remainingItemCount = r.remainingItemCount;
        if (neg.as === 'Table') return json(200, toTable(def, r.items.map((c) => c.obj), meta, includeObject(q), this.clock()), {}, neg.contentType);
        if (neg.as === 'PartialObjectMetadata' || neg.as === 'PartialObjectMetadataList') {
          return json(200, { kind: 'PartialObjectMetadataList', apiVersion: 'meta.k8s.io/v1', metadata: meta, items: r.items.map((c) => ({ kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: c.obj.metadata })) }, {}, neg.contentType);
        }
        return json(200, listBody(reg, r));
      }
      case 'watch': return this.watch(reg, def, info, q, neg);
      case 'create': {
        const body = this.decodeBody(req);
        if (sub === 'binding') return json(201, await this.bind(reg, ns, info.name, body as KObject, ctx));
        if (sub === 'eviction') { await reg.delete(ns, info.name, (body as KObject)?.deleteOptions ?? {}, ctx); return json(201, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success' }); }
        if (sub === 'token') return json(201, await this.token(reg, ns, info.name, body as KObject));
        if (sub) throw errors.methodNotAllowed(`${info.resource}/${sub} does not support create`);
        if (info.name) throw errors.methodNotAllowed('POST to a named object is not allowed: use PUT to update it');
        const created = await reg.create(ns, body as KObject, ctx, '', { bodyOwned: true });
        if (def.resource === 'namespaces' && def.group === '' && !ctx.dryRun && this.housekeeping) await this.ensureDefaultServiceAccount(created.metadata!.name);
        return warn(await this.respondObject(201, def, created, neg, q));
      }
      case 'update': {
        const body = this.decodeBody(req) as KObject;
        if (sub === 'scale') return json(200, this.scaleOf(def, (await this.scaleUpdate(reg, ns, info.name, ctx, () => body)).obj));
        if (sub === 'finalize') {
          const fin = body.spec?.finalizers ?? [];
          if (!Array.isArray(fin)) throw errors.badRequest('spec.finalizers must be a list');
          const r = await reg.guaranteedUpdate(ns, info.name, ctx, '', (cur) => { cur!.spec = { ...(cur!.spec ?? {}), finalizers: fin }; return cur!; }, { finalize: true });
          return json(200, r.obj);
        }
        if (sub !== '' && sub !== 'status') throw errors.methodNotAllowed(`${info.resource}/${sub} does not support update`);
        return warn(await this.respondObject(200, def, await reg.update(ns, info.name, body, ctx, sub), neg, q));
      }
      case 'patch': return warn(await this.patchObject(req, reg, def, ns, info, ctx, q, neg));
      case 'delete': {
        if (sub) throw errors.methodNotAllowed(`${info.resource}/${sub} does not support delete`);
        const opts = this.deleteOptions(req, q);
        const r = await reg.delete(ns, info.name, opts, ctx);
        if (def.resource === 'namespaces' && def.group === '' && !r.deleted && !ctx.dryRun && this.housekeeping) void this.finalizeNamespace(info.name);
        // As Kubernetes: a finished deletion answers a Status (pods and services answer the deleted object);
        // a pending one answers the object, with 202 only when the client asked to cascade in the foreground.
        if (r.deleted && def.resource !== 'pods' && def.resource !== 'services' && neg.as === 'object') {
          return json(200, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details: { name: info.name, group: def.group, kind: def.resource, uid: r.obj.metadata?.uid } });
        }
        return this.respondObject(!r.deleted && opts.propagationPolicy === 'Foreground' ? 202 : 200, def, r.obj, neg, q);
      }
      case 'deletecollection': {
        const opts = this.deleteOptions(req, q);
        const r = await listObjects(reg, this.store, def.namespaced && info.namespace ? info.namespace : undefined, { labelSelector: q.get('labelSelector'), fieldSelector: q.get('fieldSelector') });
        const items: KObject[] = [];
        for (const c of r.items) {
          try { items.push((await reg.delete(c.namespace, c.name, opts, ctx)).obj); } catch (e) { if (!(e instanceof StatusError && e.code === 404)) throw e; }
        }
        return json(200, { kind: `${def.kind}List`, apiVersion: reg.apiVersion, metadata: { resourceVersion: String(r.rev) }, items });
      }
      default:
        throw errors.methodNotAllowed(`the server does not allow this method on the requested resource`);
    }
  }

  /**
   * Housekeeping that Kubernetes leaves to its controller manager, done here
   * until Keelson's controllers exist (ApiServerOptions.housekeeping): every
   * namespace gets a "default" service account, and a deleted namespace is
   * emptied and then finalized.
   */
  private get housekeeping(): boolean {
    return this.opts.housekeeping ?? true;
  }

  private async ensureDefaultServiceAccount(ns: string): Promise<void> {
    const reg = this.registry('', 'serviceaccounts')!;
    try {
      await reg.create(ns, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'default' } }, this.systemContext());
    } catch (e) {
      if (!(e instanceof StatusError && (e.reason === 'AlreadyExists' || e.code === 404 || e.code === 403))) throw e;
    }
    await this.ensureRootCaConfigMap(ns);
  }

  /**
   * Publishes the cluster CA as the kube-root-ca.crt ConfigMap, as Kubernetes'
   * root-CA publisher does: the projected token volumes that service-account
   * admission injects into pods mount it. A stale bundle (the CA was replaced)
   * is overwritten.
   */
  private async ensureRootCaConfigMap(ns: string): Promise<void> {
    const ca = this.opts.rootCaBundle;
    if (!ca) return;
    const reg = this.registry('', 'configmaps')!;
    const ctx = this.systemContext();
    const want = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: rootCaConfigMapName, annotations: { 'kubernetes.io/description': 'Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.' } }, data: { 'ca.crt': ca } };
    try {
      await reg.create(ns, want, ctx);
    } catch (e) {
      if (!(e instanceof StatusError && (e.reason === 'AlreadyExists' || e.code === 404 || e.code === 403))) throw e;
      if (e.reason !== 'AlreadyExists') return;
      try {
        await reg.guaranteedUpdate(ns, rootCaConfigMapName, ctx, '', (cur) => {
          if (cur!.data?.['ca.crt'] !== ca) cur!.data = { ...(cur!.data ?? {}), 'ca.crt': ca };
          return cur!;
        });
      } catch (e2) {
        if (!(e2 instanceof StatusError && (e2.code === 404 || e2.code === 403))) throw e2;
      }
    }
  }

  /** Deletes everything in a terminating namespace, then removes its "kubernetes" finalizer. */
  private async finalizeNamespace(name: string): Promise<void> {
    const ctx = this.systemContext();
    try {
      for (const reg of this.registries.values()) {
        if (!reg.def.namespaced) continue;
        for (const c of reg.cache.list(name)) {
          try { await reg.delete(name, c.name, { gracePeriodSeconds: 0 }, ctx); } catch (e) { if (!(e instanceof StatusError && e.code === 404)) throw e; }
        }
      }
      const nsReg = this.registry('', 'namespaces')!;
      await nsReg.guaranteedUpdate('', name, ctx, '', (cur) => {
        cur!.spec = { ...(cur!.spec ?? {}), finalizers: (cur!.spec?.finalizers ?? []).filter((f: string) => f !== 'kubernetes') };
        return cur!;
      }, { skipUpdateRules: true, finalize: true });
    } catch {
      // Retried on the next delete of the namespace; a failure here leaves it Terminating, as Kubernetes would.
    }
  }

  /** Group -> versions claimed by APIServices with a backend. */
  private aggregatedGroups(): Map<string, string[]> {
    const m = new Map<string, string[]>();
    for (const a of this.registry('apiregistration.k8s.io', 'apiservices')!.cache.list()) {
      const spec = a.obj.spec;
      if (!spec?.service || !spec.group || this.discovery.versionsOf(spec.group).length) continue;
      if (!m.has(spec.group)) m.set(spec.group, []);
      m.get(spec.group)!.push(spec.version);
    }
    return m;
  }

  /**
   * Probes each service-backed APIService (its discovery document) and records
   * the result in its Available condition, writing only when it changed. One
   * probe round at a time; each probe has the aggregator's discovery deadline.
   */
  async checkApiServices(): Promise<void> {
    if (this.checkingAvailability) return;
    this.checkingAvailability = true;
    try {
      const reg = this.registry('apiregistration.k8s.io', 'apiservices')!;
      for (const c of reg.cache.list()) {
        const svc = c.obj;
        if (!svc.spec?.service) continue;
        let status = 'True', reason = 'Passed', message = 'all checks passed';
        try {
          await this.aggregator.backend(svc);
          if (!(await this.aggregator.resourceList(svc))) { status = 'False'; reason = 'FailedDiscoveryCheck'; message = `failing or missing response from the backend of ${svc.metadata!.name}`; }
        } catch (e) {
          status = 'False'; reason = 'MissingEndpoints'; message = e instanceof Error ? e.message : String(e);
        }
        const cur = (svc.status?.conditions ?? []).find((x: KObject) => x.type === 'Available');
        if (cur && cur.status === status && cur.reason === reason) continue;
        const ctx = this.systemContext();
        await reg.guaranteedUpdate('', svc.metadata!.name, ctx, 'status', (o) => {
          const others = (o!.status?.conditions ?? []).filter((x: KObject) => x.type !== 'Available');
          o!.status = { ...(o!.status ?? {}), conditions: [...others, { type: 'Available', status, reason, message, lastTransitionTime: rfc3339(ctx.now) }] };
          return o!;
        }).catch(() => {});
      }
    } finally {
      this.checkingAvailability = false;
    }
  }

  /** Asks each APIService backend for its resources, for the merged discovery documents. */
  private async refreshAggregatedDiscovery(): Promise<void> {
    const groups = this.aggregatedGroups();
    const next = new Map<string, { version: string; resources: unknown[]; legacy: unknown[] }[]>();
    await Promise.all([...groups].map(async ([g, vs]) => {
      const entries: { version: string; resources: unknown[]; legacy: unknown[] }[] = [];
      for (const v of vs) {
        const svc = this.aggregator.claimed(g, v);
        const list = svc ? await this.aggregator.resourceList(svc) : null;
        entries.push({ version: v, resources: list ? Aggregator.toAggregated(g, v, list) : [], legacy: list?.resources ?? [] });
      }
      next.set(g, entries);
    }));
    this.discovery.aggregated.clear();
    for (const [g, e] of next) this.discovery.aggregated.set(g, e);
  }

  private subresourceAllowed(def: ResourceDef, sub: string): boolean {
    if (sub === 'status') return !!def.hasStatus;
    if (sub === 'scale') return !!def.scale;
    return (def.extraSubresources ?? []).includes(sub);
  }

  private opContext(user: UserInfo, q: URLSearchParams, userAgent: string | undefined): OpContext {
    const dryRun = q.getAll('dryRun');
    for (const d of dryRun) if (d !== 'All') throw errors.badRequest(`dryRun: Unsupported value: "${d}": supported values: "All"`);
    const fv = q.get('fieldValidation') ?? 'Warn';
    if (!['Strict', 'Warn', 'Ignore'].includes(fv)) throw errors.badRequest(`fieldValidation: Unsupported value: "${fv}": supported values: "Ignore", "Strict", "Warn"`);
    // Without fieldManager, the manager is named after the client's user agent, as Kubernetes does.
    const fm = q.get('fieldManager') ?? (userAgent ? userAgent.split('/')[0]!.slice(0, 128) : undefined);
    if (fm !== undefined && fm.length > 128) throw errors.badRequest('fieldManager: Too long: may not be more than 128 bytes');
    return { user, now: this.clock(), dryRun: dryRun.length > 0, fieldManager: fm, fieldValidation: fv as FieldValidation, warnings: [] };
  }

  private decodeBody(req: ApiRequest): unknown {
    const ct = (header(req, 'content-type') ?? 'application/json').split(';')[0]!.trim().toLowerCase();
    if (!req.body || req.body.length === 0) throw errors.badRequest('the request body is empty');
    if (ct === 'application/vnd.kubernetes.protobuf') return decodeProtobuf(req.body);
    const text = req.body.toString();
    if (ct === 'application/json' || ct === '') {
      // Parsed first: a body of only white space is the one parse failure that gets the "empty" message (no copy of every body to trim it).
      try { return JSON.parse(text); } catch (e) {
        if (text.trim() === '') throw errors.badRequest('the request body is empty');
        throw errors.badRequest(`couldn't get version/kind; json parse error: ${(e as Error).message}`);
      }
    }
    if (text.trim() === '') throw errors.badRequest('the request body is empty');
    if (ct === 'application/yaml' || ct === 'application/x-yaml' || ct === 'text/yaml') {
      try { return YAML.parse(text, { maxAliasCount: 100 }); } catch (e) { throw errors.badRequest(`error converting YAML to JSON: ${(e as Error).message}`); }
    }
    throw errors.unsupportedMediaType(`the body of the request was in an unknown format - accepted media types include: application/json, application/yaml`);
  }

  private deleteOptions(req: ApiRequest, q: URLSearchParams): DeleteOptionsBody {
    let o: DeleteOptionsBody = {};
    if (req.body && req.body.length > 0 && req.body.toString().trim() !== '') o = this.decodeBody(req) as DeleteOptionsBody;
    if (o === null || typeof o !== 'object') throw errors.badRequest('DeleteOptions must be an object');
    const g = q.get('gracePeriodSeconds');
    if (g !== null) {
      if (!/^-?\d+$/.test(g)) throw errors.badRequest(`invalid gracePeriodSeconds "${g}"`);
      o.gracePeriodSeconds = Number(g);
    }
    const pp = q.get('propagationPolicy') ?? o.propagationPolicy;
    if (pp !== undefined && pp !== null) {
      if (!['Orphan', 'Background', 'Foreground'].includes(pp)) throw errors.badRequest(`propagationPolicy: Unsupported value: "${pp}"`);
      o.propagationPolicy = pp as DeleteOptionsBody['propagationPolicy'];
    }
    if (o.gracePeriodSeconds !== undefined && o.gracePeriodSeconds < 0) o.gracePeriodSeconds = 1;
    return o;
  }

  private async respondObject(status: number, def: ResourceDef, obj: KObject, neg: Negotiated, q: URLSearchParams): Promise<ApiResponse> {
    if (neg.as === 'Table') return json(status, toTable(def, [obj], { resourceVersion: obj.metadata?.resourceVersion }, includeObject(q), this.clock()), {}, neg.contentType);
    if (neg.as === 'PartialObjectMetadata') return json(status, { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: obj.metadata }, {}, neg.contentType);
    return json(status, responseJson(obj) ?? obj);
  }

  private async patchObject(req: ApiRequest, reg: Registry, def: ResourceDef, ns: string, info: RequestInfo, ctx: OpContext, q: URLSearchParams, neg: Negotiated): Promise<ApiResponse> {
    const ct = (header(req, 'content-type') ?? '').split(';')[0]!.trim().toLowerCase();
    const text = (req.body ?? Buffer.alloc(0)).toString();
    const gvk = { group: def.group, version: def.version, kind: def.kind };
    const sub = info.subresource;
    let patchBody: unknown;
    if (ct === 'application/apply-patch+yaml') {
      try { patchBody = YAML.parse(text, { maxAliasCount: 100 }); } catch (e) { throw errors.badRequest(`error decoding YAML: ${(e as Error).message}`); }
    } else if (['application/json-patch+json', 'application/merge-patch+json', 'application/strategic-merge-patch+json'].includes(ct)) {
      try { patchBody = JSON.parse(text); } catch (e) { throw errors.badRequest(`error decoding patch: ${(e as Error).message}`); }
    } else {
      throw errors.unsupportedMediaType(`the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json`);
    }
    if (ct === 'application/apply-patch+yaml') {
      if (!ctx.fieldManager) throw errors.badRequest('PATCH, application/apply-patch+yaml requires fieldManager to be set');
      const force = q.get('force') === 'true';
      if (patchBody === null || typeof patchBody !== 'object' || Array.isArray(patchBody)) throw errors.badRequest('the apply configuration must be an object');
      reg.checkTypeMeta(patchBody as KObject);
      const applied = patchBody as KObject;
      if (applied.metadata?.name !== undefined && applied.metadata.name !== info.name) throw errors.badRequest(`the name of the object (${applied.metadata.name}) does not match the name on the URL (${info.name})`);
      const r = await reg.guaranteedUpdate(ns, info.name, { ...ctx, skipManagedFields: true }, sub === 'status' ? 'status' : '', (cur) => {
        const out = this.patch.applyServerSide(cur, { ...applied, metadata: { ...applied.metadata, name: info.name, ...(def.namespaced ? { namespace: ns } : {}) } }, { manager: ctx.fieldManager!, force, kind: gvk, now: rfc3339(ctx.now), subresource: sub || undefined }).object as KObject;
        return out;
      }, { allowCreate: sub === '' });
      if (r.created && def.resource === 'namespaces' && def.group === '' && !ctx.dryRun && this.housekeeping) await this.ensureDefaultServiceAccount(info.name);
      return this.respondObject(r.created ? 201 : 200, def, r.obj, neg, q);
    }
    const apply = (cur: KObject): KObject => {
      switch (ct) {
        case 'application/json-patch+json': return this.patch.applyJsonPatch(cur, patchBody) as KObject;
        case 'application/merge-patch+json': return this.patch.applyMergePatch(cur, patchBody) as KObject;
        default: return this.patch.applyStrategicMergePatch(cur, patchBody, gvk) as KObject;
      }
    };
    if (sub === 'scale') {
      const r = await this.scaleUpdate(reg, ns, info.name, ctx, (scale) => apply(scale));
      return json(200, this.scaleOf(def, r.obj));
    }
    if (sub !== '' && sub !== 'status') throw errors.methodNotAllowed(`${info.resource}/${sub} does not support patch`);
    const r = await reg.guaranteedUpdate(ns, info.name, ctx, sub as '' | 'status', (cur) => {
      const rv = cur!.metadata?.resourceVersion;
      const next = apply(cur!);
      // A patch that does not mention resourceVersion is unconditional: keep the current one so the guard passes.
      if (next.metadata && next.metadata.resourceVersion === undefined) next.metadata.resourceVersion = rv;
      return next;
    });
    return this.respondObject(200, def, r.obj, neg, q);
  }

  private scaleOf(def: ResourceDef, obj: KObject): KObject {
    const s = def.scale!;
    const sel = s.selectorPath ? getPath(obj, s.selectorPath) : undefined;
    const selStr = sel ? Object.entries(sel.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`).join(',') : undefined;
    return {
      kind: 'Scale', apiVersion: 'autoscaling/v1',
      metadata: { name: obj.metadata?.name, namespace: obj.metadata?.namespace, uid: obj.metadata?.uid, resourceVersion: obj.metadata?.resourceVersion, creationTimestamp: obj.metadata?.creationTimestamp },
      spec: { replicas: getPath(obj, s.specReplicasPath) ?? 0 },
      status: { replicas: getPath(obj, s.statusReplicasPath) ?? 0, ...(selStr ? { selector: selStr } : {}) },
    };
  }

  private scaleUpdate(reg: Registry, ns: string, name: string, ctx: OpContext, next: (scale: KObject) => KObject): Promise<{ obj: KObject }> {
    const def = reg.def;
    return reg.guaranteedUpdate(ns, name, ctx, '', (cur) => {
      const scale = next(this.scaleOf(def, cur!));
      if (!scale || typeof scale !== 'object') throw errors.badRequest('the body must be a Scale object');
      const replicas = scale.spec?.replicas;
      if (!Number.isInteger(replicas) || replicas < 0) throw errors.invalid('autoscaling', 'Scale', name, [{ reason: 'FieldValueInvalid', field: 'spec.replicas', message: `Invalid value: ${JSON.stringify(replicas)}: must be greater than or equal to 0` }]);
      const rv = scale.metadata?.resourceVersion;
      if (rv && rv !== cur!.metadata?.resourceVersion) throw errors.conflict(def.group, def.resource, name, 'the object has been modified; please apply your changes to the latest version and try again');
      setPath(cur!, def.scale!.specReplicasPath, replicas);
      return cur!;
    });
  }

  private async bind(reg: Registry, ns: string, name: string, body: KObject, ctx: OpContext): Promise<KObject> {
    const target = body?.target;
    if (!target?.name) throw errors.invalid('', 'Binding', name, [{ reason: 'FieldValueRequired', field: 'target.name', message: 'Required value' }]);
    // Binding is the one write that may set spec.nodeName on a live pod, so the pod update rules are skipped for it.
    await reg.guaranteedUpdate(ns, name, ctx, '', (cur) => {
      if (cur!.metadata?.deletionTimestamp) throw errors.conflict('', 'pods', name, 'pod is being deleted, cannot be assigned to a host');
      if (cur!.spec?.nodeName) throw errors.conflict('', 'pods', name, `pod ${name} is already assigned to node "${cur!.spec.nodeName}"`);
      cur!.spec.nodeName = target.name;
      return cur!;
    }, { skipUpdateRules: true });
    return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', code: 201 };
  }

  private async token(reg: Registry, ns: string, name: string, body: KObject): Promise<KObject> {
    const sa = await reg.get(ns, name);
    if (!this.opts.tokenIssuer) throw errors.unavailable('service account token issuing is not configured on this server');
    const spec = body?.spec ?? {};
    const t = await this.opts.tokenIssuer.issueTokenRequest({ namespace: ns, name, uid: sa.metadata!.uid }, spec);
    return { kind: 'TokenRequest', apiVersion: 'authentication.k8s.io/v1', metadata: { name, namespace: ns, creationTimestamp: null }, spec, status: { token: t.token, expirationTimestamp: t.expirationTimestamp } };
  }

  private async virtual(req: ApiRequest, def: ResourceDef, info: RequestInfo, user: UserInfo): Promise<ApiResponse> {
    if (info.verb !== 'create') throw errors.methodNotAllowed(`${def.resource} only supports create`);
    const body = this.decodeBody(req) as KObject;
    if (!body || typeof body !== 'object') throw errors.badRequest('the request body must be an object');
    if (def.resource === 'selfsubjectaccessreviews') {
      const ra = body.spec?.resourceAttributes;
      const nra = body.spec?.nonResourceAttributes;
      if (!ra && !nra) throw errors.invalid(def.group, def.kind, '', [{ reason: 'FieldValueRequired', field: 'spec.resourceAttributes', message: 'Required value: exactly one of nonResourceAttributes or resourceAttributes must be specified' }]);
      let decision = { allowed: true, reason: '' };
      if (this.opts.authorizer) {
        decision = await this.opts.authorizer.authorize(ra ? {
          user, verb: ra.verb ?? '', apiGroup: ra.group ?? '', apiVersion: ra.version ?? '', resource: ra.resource ?? '', subresource: ra.subresource ?? '',
          namespace: ra.namespace ?? '', name: ra.name ?? '', resourceRequest: true, path: '',
        } : { user, verb: nra.verb ?? '', apiGroup: '', apiVersion: '', resource: '', subresource: '', namespace: '', name: '', resourceRequest: false, path: nra.path ?? '' });
      }
      return json(201, { kind: def.kind, apiVersion: apiVersionOf(def), metadata: { creationTimestamp: null }, spec: body.spec, status: { allowed: decision.allowed, ...(decision.reason ? { reason: decision.reason } : {}) } });
    }
    if (def.resource === 'selfsubjectreviews') {
      return json(201, { kind: 'SelfSubjectReview', apiVersion: 'authentication.k8s.io/v1', metadata: { creationTimestamp: null }, status: { userInfo: { username: user.username, ...(user.uid ? { uid: user.uid } : {}), groups: [...user.groups], ...(user.extra ? { extra: user.extra } : {}) } } });
    }
    if (def.resource === 'selfsubjectrulesreviews') {
      const ns = body.spec?.namespace;
      if (typeof ns !== 'string') throw errors.invalid(def.group, def.kind, '', [{ reason: 'FieldValueRequired', field: 'spec.namespace', message: 'Required value' }]);
      if (this.opts.reviews) return json(201, this.opts.reviews.rules(user, ns));
      // Without an authorizer everything is allowed.
      return json(201, { kind: def.kind, apiVersion: apiVersionOf(def), metadata: { creationTimestamp: null }, spec: { namespace: ns }, status: { resourceRules: [{ verbs: ['*'], apiGroups: ['*'], resources: ['*'] }], nonResourceRules: [{ verbs: ['*'], nonResourceURLs: ['*'] }], incomplete: false } });
    }
    throw new StatusError(404, 'NotFound', 'the server could not find the requested resource');
  }

  private async watch(reg: Registry, def: ResourceDef, info: RequestInfo, q: URLSearchParams, neg: Negotiated): Promise<ApiResponse> {
    const inner = await watchObjects(reg, def.namespaced && info.namespace ? info.namespace : undefined, {
      labelSelector: q.get('labelSelector'), fieldSelector: info.name ? `metadata.name=${info.name}` : q.get('fieldSelector'),
      resourceVersion: q.get('resourceVersion'), resourceVersionMatch: q.get('resourceVersionMatch'),
      allowWatchBookmarks: q.get('allowWatchBookmarks'), sendInitialEvents: q.get('sendInitialEvents'),
    });
    let stream = inner;
    if (neg.as === 'Table') stream = this.tableStream(def, inner, includeObject(q));
    const t = q.get('timeoutSeconds');
    const maxS = this.opts.watchTimeoutSecondsMax ?? 1800;
    let timeoutS = maxS;
    if (t !== null) {
      if (!/^\d+$/.test(t)) throw errors.badRequest(`invalid timeoutSeconds "${t}"`);
      timeoutS = Math.min(Number(t), maxS);
    }
    const timer = setTimeout(() => stream.end(), timeoutS * 1000);
    timer.unref();
    this.streams.add(stream);
    const gauge = { group: def.group, version: def.version, resource: def.resource };
    this.metrics.watchers.inc(gauge);
    stream.onClose(() => { clearTimeout(timer); this.streams.delete(stream); inner.end(); this.metrics.watchers.dec(gauge); });
    return { status: 200, headers: { 'content-type': neg.as === 'Table' ? neg.contentType : 'application/json', 'transfer-encoding': 'chunked' }, stream };
  }

  /** Re-encodes a watch's events as one-row Tables (kubectl get -w asks for that). */
  private tableStream(def: ResourceDef, inner: ChunkStream, include: IncludeObject): ChunkStream {
    const out = new ChunkStream(10_000);
    let first = true;
    void (async () => {
      for await (const chunk of inner) {
        const ev = JSON.parse(chunk.toString());
        if (ev.type === 'ERROR' || ev.type === 'BOOKMARK') { if (!out.push(chunk)) break; continue; }
        const table = toTable(def, [ev.object], { resourceVersion: ev.object?.metadata?.resourceVersion }, include, this.clock(), first);
        first = false;
        if (!out.push(Buffer.from(`{"type":"${ev.type}","object":${JSON.stringify(table)}}\n`))) break;
      }
      out.end();
    })();
    out.onClose(() => inner.end());
    return out;
  }

  private async nonResource(req: ApiRequest, p: string, info: RequestInfo): Promise<ApiResponse> {
    if (req.method !== 'GET' && req.method !== 'HEAD') throw errors.methodNotAllowed(`${req.method} is not allowed on ${p}`);
    const accept = header(req, 'accept') ?? '';
    const aggregated = /as=APIGroupDiscoveryList/.test(accept) ? (/v=v2(;|,|$)/.test(accept.replace(/\s/g, '')) || /v=v2;/.test(accept) ? 'v2' : /v=v2beta1/.test(accept) ? 'v2beta1' : null) : null;
    if (p === '/healthz' || p === '/livez' || p === '/readyz' || p.startsWith('/healthz/') || p.startsWith('/livez/') || p.startsWith('/readyz/')) {
      if (p.startsWith('/readyz')) {
        try { await this.store.status(); } catch { return { status: 500, headers: { 'content-type': 'text/plain' }, body: Buffer.from('[-]etcd failed: store not reachable\nreadyz check failed\n') }; }
      }
      return { status: 200, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: Buffer.from('ok') };
    }
    if (p === '/version') {
      const v = this.opts.version ?? { major: '1', minor: '32', gitVersion: 'v1.32.0-keelson' };
      return json(200, { ...v, gitCommit: '', gitTreeState: 'clean', buildDate: '1970-01-01T00:00:00Z', goVersion: 'n/a', compiler: 'keelson', platform: `${process.platform}/${process.arch}` });
    }
    if (p === '/metrics') {
      for (const r of this.registries.values()) {
        this.metrics.cacheObjects.set({ group: r.def.group, resource: r.def.resource }, r.cache.size);
        this.metrics.cacheRevision.set({ group: r.def.group, resource: r.def.resource }, r.cache.rev);
      }
      return { status: 200, headers: { 'content-type': this.metrics.registry.contentType }, body: Buffer.from(await this.metrics.registry.metrics()) };
    }
    if (p === '/.well-known/openid-configuration' && this.opts.tokenIssuer?.openidConfiguration) {
      const host = header(req, 'host') ?? 'localhost';
      return json(200, this.opts.tokenIssuer.openidConfiguration(`https://${host}/openid/v1/jwks`));
    }
    if (p === '/openid/v1/jwks' && this.opts.tokenIssuer?.jwks) return json(200, await this.opts.tokenIssuer.jwks(), {}, 'application/jwk-set+json');
    if (p === '/api') {
      if (aggregated) return json(200, this.discovery.aggregatedList(true, aggregated), {}, `application/json;g=apidiscovery.k8s.io;v=${aggregated};as=APIGroupDiscoveryList`);
      return json(200, this.discovery.coreVersions());
    }
    if (p === '/apis') {
      if (aggregated) return json(200, this.discovery.aggregatedList(false, aggregated), {}, `application/json;g=apidiscovery.k8s.io;v=${aggregated};as=APIGroupDiscoveryList`);
      return json(200, this.discovery.groupList());
    }
    if (p === '/openapi/v2') {
      if (accept && !/application\/json|\*\/\*/.test(accept)) throw errors.notAcceptable('only application/json is served for /openapi/v2');
      return { status: 200, headers: { 'content-type': 'application/json' }, body: this.openapi.swagger() };
    }
    if (p === '/openapi/v3') return { status: 200, headers: { 'content-type': 'application/json' }, body: this.openapi.v3Index() };
    if (p.startsWith('/openapi/v3/')) {
      const doc = this.openapi.v3Doc(p.slice('/openapi/v3/'.length));
      if (!doc) throw new StatusError(404, 'NotFound', 'the server could not find the requested resource');
      return { status: 200, headers: { 'content-type': 'application/json', 'cache-control': 'public, immutable' }, body: doc };
    }
    if (info.prefix === 'api' && info.parts.length === 2) {
      const l = this.discovery.resourceList('', info.apiVersion);
      if (l) return json(200, l);
    }
    if (info.parts[0] === 'apis' && info.parts.length === 2) {
      const g = info.parts[1]!;
      if (this.discovery.versionsOf(g).length) return json(200, { kind: 'APIGroup', apiVersion: 'v1', ...this.discovery.group(g) });
    }
    if (info.prefix === 'apis' && info.parts.length === 3) {
      const l = this.discovery.resourceList(info.apiGroup, info.apiVersion);
      if (l) return json(200, l);
    }
    if (p === '/') {
      return json(200, { paths: ['/api', '/api/v1', '/apis', ...[...new Set(this.defs.filter((d) => d.group).map((d) => `/apis/${d.group}/${d.version}`))], '/healthz', '/livez', '/readyz', '/metrics', '/openapi/v2', '/openapi/v3', '/version'] });
    }
    throw new StatusError(404, 'NotFound', 'the server could not find the requested resource');
  }
}

function header(req: ApiRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(',') : v;
}

function includeObject(q: URLSearchParams): IncludeObject {
  const v = q.get('includeObject');
  if (v === 'None' || v === 'Object' || v === 'Metadata') return v;
  return 'Metadata';
}

/** Paths any authenticated user may read without RBAC (health and version), as the bootstrap roles grant anyway. */
function isPublicPath(info: RequestInfo): boolean {
  return !info.resourceRequest && /^\/(healthz|livez|readyz|version)(\/|$)/.test(info.path);
}

function forbidden(a: RequestAttributes, reason: string): StatusError {
  const user = a.user.username;
  if (!a.resourceRequest) return new StatusError(403, 'Forbidden', `forbidden: User "${user}" cannot ${a.verb} path "${a.path}"${reason ? `: ${reason}` : ''}`);
  const res = a.subresource ? `${a.resource}/${a.subresource}` : a.resource;
  const scope = a.namespace ? `in the namespace "${a.namespace}"` : 'at the cluster scope';
  return errors.forbidden(a.apiGroup, a.resource, a.name, `User "${user}" cannot ${a.verb} resource "${res}" in API group "${a.apiGroup}" ${scope}${reason ? `: ${reason}` : ''}`);
}

function toStatusError(e: unknown): StatusError {
  if (e instanceof StatusError) return e;
  if (isKeelsonError(e)) {
    const code = (e as { code: string }).code;
    if (code === 'compacted') return new StatusError(410, 'Expired', (e as Error).message);
    if (code === 'closed' || code === 'no leader' || code === 'timeout') return errors.unavailable(`storage is unavailable: ${(e as Error).message}`);
    if (code === 'request too large') return errors.tooLarge(`etcdserver: ${(e as Error).message}`);
    return errors.internal((e as Error).message);
  }
  return errors.internal(e instanceof Error ? e.message : String(e));
}
