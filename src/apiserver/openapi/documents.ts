// The /openapi/v2 and /openapi/v3 documents. v3 is what kubectl 1.32 uses
// for explain, for its field-validation check (it looks for the
// fieldValidation parameter on each kind's PATCH operation) and for
// client-side apply's merge keys; v2 is served for older tools. Both are
// built once and kept serialized.
import { createHash } from 'node:crypto';
import type { ResourceDef } from '../resources/types.ts';
import { definitions, type Schema } from './schemas.ts';

const info = { title: 'Kubernetes', version: 'v1.32.0' };

function rewriteRefs(v: unknown, prefix: string): unknown {
  if (Array.isArray(v)) return v.map((x) => rewriteRefs(x, prefix));
  if (v === null || typeof v !== 'object') return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) out[k] = k === '$ref' ? `${prefix}${x as string}` : rewriteRefs(x, prefix);
  return out;
}

/** Definitions reachable from the given roots. */
function closure(roots: string[]): Record<string, Schema> {
  const defs = definitions();
  const out: Record<string, Schema> = {};
  const stack = [...roots];
  while (stack.length) {
    const n = stack.pop()!;
    if (out[n] || !defs[n]) continue;
    out[n] = defs[n]!;
    JSON.stringify(defs[n], (k, v) => { if (k === '$ref') stack.push(v as string); return v; });
  }
  return out;
}

function queryParam(name: string, description: string): Record<string, unknown> {
  return { name, in: 'query', description, schema: { type: 'string' }, type: 'string', uniqueItems: true };
}

const writeParams = [
  queryParam('dryRun', 'When present, indicates that modifications should not be persisted.'),
  queryParam('fieldManager', 'fieldManager is a name associated with the actor or entity that is making these changes.'),
  queryParam('fieldValidation', 'fieldValidation instructs the server on how to handle objects in the request containing unknown or duplicate fields. Valid values are: Ignore, Warn, Strict.'),
];

function operations(d: ResourceDef, v3: boolean): Record<string, unknown> {
  const gvk = { group: d.group, version: d.version, kind: d.kind };
  const ref = v3 ? `#/components/schemas/${d.schemaName}` : `#/definitions/${d.schemaName}`;
  const body = v3 ? { requestBody: { content: { '*/*': { schema: { $ref: ref } } } } } : { parameters: [{ name: 'body', in: 'body', required: true, schema: { $ref: ref } }, ...writeParams] };
  const resp = v3 ? { responses: { 200: { description: 'OK', content: { 'application/json': { schema: { $ref: ref } } } } } } : { responses: { 200: { description: 'OK', schema: { $ref: ref } } } };
  const op = (verb: string, extra: Record<string, unknown> = {}) => ({
    operationId: `${verb}${d.kind}`, 'x-kubernetes-action': verb, 'x-kubernetes-group-version-kind': gvk, ...resp, ...extra,
  });
  const withWrite = (o: Record<string, unknown>) => (v3 ? { ...o, parameters: writeParams } : o);
  return {
    get: op('get'),
    put: withWrite(op('put', body)),
    patch: withWrite(op('patch', v3 ? { requestBody: { content: { 'application/json-patch+json': { schema: { type: 'object' } }, 'application/merge-patch+json': { schema: { type: 'object' } }, 'application/strategic-merge-patch+json': { schema: { type: 'object' } }, 'application/apply-patch+yaml': { schema: { type: 'object' } } } } } : { parameters: [{ name: 'body', in: 'body', required: true, schema: { type: 'object' } }, ...writeParams] })),
    delete: op('delete'),
  };
}

function collectionOps(d: ResourceDef, v3: boolean): Record<string, unknown> {
  const gvk = { group: d.group, version: d.version, kind: d.kind };
  const ref = v3 ? `#/components/schemas/${d.schemaName}` : `#/definitions/${d.schemaName}`;
  const body = v3 ? { requestBody: { content: { '*/*': { schema: { $ref: ref } } } }, parameters: writeParams } : { parameters: [{ name: 'body', in: 'body', required: true, schema: { $ref: ref } }, ...writeParams] };
  const ops: Record<string, unknown> = {
    post: { operationId: `create${d.kind}`, 'x-kubernetes-action': 'post', 'x-kubernetes-group-version-kind': gvk, ...body, responses: { 201: { description: 'Created' } } },
  };
  if (!d.virtual) ops.get = { operationId: `list${d.kind}`, 'x-kubernetes-action': 'list', 'x-kubernetes-group-version-kind': gvk, responses: { 200: { description: 'OK' } } };
  return ops;
}

function pathsFor(d: ResourceDef, v3: boolean): Record<string, unknown> {
  const base = d.group ? `/apis/${d.group}/${d.version}` : `/api/${d.version}`;
  const coll = d.namespaced ? `${base}/namespaces/{namespace}/${d.resource}` : `${base}/${d.resource}`;
  const out: Record<string, unknown> = { [coll]: collectionOps(d, v3) };
  if (!d.virtual) out[`${coll}/{name}`] = operations(d, v3);
  return out;
}

export class OpenApi {
  private v2: Buffer | null = null;
  private readonly v3 = new Map<string, { body: Buffer; hash: string }>();
  private v3Root: Buffer | null = null;

  constructor(private readonly defs: ResourceDef[]) {}

  private gvKey(d: ResourceDef): string {
    return d.group ? `apis/${d.group}/${d.version}` : `api/${d.version}`;
  }

  /** The swagger 2.0 document. */
  swagger(): Buffer {
    if (this.v2) return this.v2;
    const paths: Record<string, unknown> = {};
    for (const d of this.defs) Object.assign(paths, pathsFor(d, false));
    const defs = rewriteRefs(definitions(), '#/definitions/');
    this.v2 = Buffer.from(JSON.stringify({ swagger: '2.0', info, paths, definitions: defs }));
    return this.v2;
  }

  private buildV3(): void {
    if (this.v3Root) return;
    const groups = new Map<string, ResourceDef[]>();
    for (const d of this.defs) {
      const k = this.gvKey(d);
      if (!groups.has(k)) groups.set(k, []);
      groups.get(k)!.push(d);
    }
    const rootPaths: Record<string, unknown> = {};
    for (const [k, ds] of groups) {
      const paths: Record<string, unknown> = {};
      for (const d of ds) Object.assign(paths, pathsFor(d, true));
      const roots = [...ds.map((d) => d.schemaName), 'io.k8s.apimachinery.pkg.apis.meta.v1.Status', 'io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions'];
      if (ds.some((d) => d.scale)) roots.push('io.k8s.api.autoscaling.v1.Scale');
      const schemas = rewriteRefs(closure(roots), '#/components/schemas/');
      const body = Buffer.from(JSON.stringify({ openapi: '3.0.0', info, paths, components: { schemas } }));
      const hash = createHash('sha512').update(body).digest('hex').slice(0, 128).toUpperCase();
      this.v3.set(k, { body, hash });
      rootPaths[k] = { serverRelativeURL: `/openapi/v3/${k}?hash=${hash}` };
    }
    this.v3Root = Buffer.from(JSON.stringify({ paths: rootPaths }));
  }

  /** GET /openapi/v3: the index of group-version documents. */
  v3Index(): Buffer {
    this.buildV3();
    return this.v3Root!;
  }

  /** GET /openapi/v3/<api/v1 | apis/g/v>. */
  v3Doc(gv: string): Buffer | undefined {
    this.buildV3();
    return this.v3.get(gv)?.body;
  }
}
