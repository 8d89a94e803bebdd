// OpenAPI definitions of the built-in kinds, derived at startup from the
// declaration files of the kubernetes-types package (generated from the
// Kubernetes OpenAPI document, so they carry every field, its doc comment,
// and which fields are required). The derivation reads the .d.ts text line by
// line; the files are machine-written and regular (one property per line,
// doc comments before each), and anything unexpected becomes a free-form
// object rather than a failure.
//
// Strategic-merge metadata (x-kubernetes-patch-strategy / -merge-key), which
// the declaration files do not carry, comes from the small table below: the
// lists kubectl apply merges by key.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

export interface Schema {
  type?: string;
  format?: string;
  description?: string;
  properties?: Record<string, Schema>;
  required?: string[];
  items?: Schema;
  additionalProperties?: Schema | boolean;
  $ref?: string;
  [ext: `x-${string}`]: unknown;
}

/** Source file (relative to kubernetes-types) -> OpenAPI package prefix. */
const packages: Record<string, string> = {
  'meta/v1': 'io.k8s.apimachinery.pkg.apis.meta.v1',
  'api/resource': 'io.k8s.apimachinery.pkg.api.resource',
  runtime: 'io.k8s.apimachinery.pkg.runtime',
  'core/v1': 'io.k8s.api.core.v1',
  'apps/v1': 'io.k8s.api.apps.v1',
  'coordination/v1': 'io.k8s.api.coordination.v1',
  'discovery/v1': 'io.k8s.api.discovery.v1',
  'scheduling/v1': 'io.k8s.api.scheduling.v1',
  'rbac/v1': 'io.k8s.api.rbac.v1',
  'authorization/v1': 'io.k8s.api.authorization.v1',
  'authentication/v1': 'io.k8s.api.authentication.v1',
  'autoscaling/v1': 'io.k8s.api.autoscaling.v1',
  'policy/v1': 'io.k8s.api.policy.v1',
};

/** (definition, field) -> merge key, for the lists strategic merge patch merges by key. */
const mergeKeys: Record<string, Record<string, string>> = {
  'io.k8s.api.core.v1.PodSpec': { containers: 'name', initContainers: 'name', ephemeralContainers: 'name', volumes: 'name', imagePullSecrets: 'name', hostAliases: 'ip', topologySpreadConstraints: 'topologyKey', resourceClaims: 'name' },
  'io.k8s.api.core.v1.Container': { env: 'name', ports: 'containerPort', volumeMounts: 'mountPath', volumeDevices: 'devicePath', resizePolicy: 'resourceName' },
  'io.k8s.api.core.v1.ServiceSpec': { ports: 'port' },
  'io.k8s.api.core.v1.PodStatus': { conditions: 'type', podIPs: 'ip' },
  'io.k8s.api.core.v1.NodeStatus': { conditions: 'type', addresses: 'type' },
  'io.k8s.api.apps.v1.DeploymentStatus': { conditions: 'type' },
  'io.k8s.api.apps.v1.ReplicaSetStatus': { conditions: 'type' },
  'io.k8s.api.apps.v1.DaemonSetStatus': { conditions: 'type' },
  'io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta': { ownerReferences: 'uid' },
};
const mergeSets: Record<string, string[]> = {
  'io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta': ['finalizers'],
};

const scalarAliases: Record<string, Schema> = {
  Time: { type: 'string', format: 'date-time' },
  MicroTime: { type: 'string', format: 'date-time' },
  Quantity: { type: 'string', 'x-kubernetes-int-or-string': true },
};

function typeToSchema(t: string, resolve: (name: string) => string): Schema {
  t = t.trim();
  if (t === 'string' || /^"[^"]*"$/.test(t)) return { type: 'string' };
  if (t === 'number') return { type: 'integer' };
  if (t === 'boolean') return { type: 'boolean' };
  if (t === 'number | string' || t === 'string | number') return { type: 'string', format: 'int-or-string', 'x-kubernetes-int-or-string': true };
  let m = /^Array<(.+)>$/.exec(t);
  if (m) return { type: 'array', items: typeToSchema(m[1]!, resolve) };
  m = /^\{\s*\[name: string\]: (.+);\s*\}$/.exec(t);
  if (m) return { type: 'object', additionalProperties: typeToSchema(m[1]!, resolve) };
  if (/^[A-Za-z0-9]+$/.test(t)) {
    if (scalarAliases[t]) return { ...scalarAliases[t] };
    return { $ref: resolve(t) };
  }
  return { type: 'object', 'x-kubernetes-preserve-unknown-fields': true };
}

function parseFile(rel: string, pkg: string, root: string, defs: Record<string, Schema>): void {
  const text = readFileSync(path.join(root, `${rel}.d.ts`), 'utf8');
  const lines = text.split('\n');
  const imports = new Map<string, string>();
  for (const l of lines) {
    const m = /^import \{ (.+) \} from "\.\.?\/(.+)";$/.exec(l);
    if (!m) continue;
    let from = m[2]!;
    if (from.startsWith('../')) from = from.slice(3);
    else if (from === 'v1' || !from.includes('/')) from = path.posix.join(path.posix.dirname(rel), from);
    const p = packages[from.replace(/^\.\//, '')] ?? packages[from];
    for (const n of m[1]!.split(',').map((s) => s.trim())) if (p) imports.set(n, `${p}.${n}`);
  }
  const resolve = (n: string) => imports.get(n) ?? `${pkg}.${n}`;
  let doc: string[] = [];
  let inDoc = false;
  let cur: { name: string; schema: Schema } | null = null;
  let pendingProp: { name: string; optional: boolean; doc: string; typeLines: string[] } | null = null;
  const finishProp = (name: string, optional: boolean, description: string, type: string) => {
    if (!cur) return;
    const s = typeToSchema(type, resolve);
    const withDoc: Schema = s.$ref ? (description ? { allOf: [s], description } as Schema : s) : { ...s, ...(description ? { description } : {}) };
    const mk = mergeKeys[cur.name]?.[name];
    if (mk) { withDoc['x-kubernetes-patch-strategy'] = 'merge'; withDoc['x-kubernetes-patch-merge-key'] = mk; }
    if (mergeSets[cur.name]?.includes(name)) withDoc['x-kubernetes-patch-strategy'] = 'merge';
    (cur.schema.properties ??= {})[name] = withDoc;
    if (!optional) (cur.schema.required ??= []).push(name);
  };
  for (const line of lines) {
    const t = line.trim();
    if (pendingProp) {
      pendingProp.typeLines.push(t);
      if (/^\};?$/.test(t) && line.startsWith('    }')) {
        finishProp(pendingProp.name, pendingProp.optional, pendingProp.doc, pendingProp.typeLines.join(' ').replace(/;\s*$/, ''));
        pendingProp = null;
      }
      continue;
    }
    if (inDoc) {
      if (t === '*/') { inDoc = false; continue; }
      doc.push(t.replace(/^\* ?/, ''));
      continue;
    }
    if (t.startsWith('/**')) {
      if (t.endsWith('*/')) doc = [t.slice(3, -2).trim()];
      else { doc = []; inDoc = true; }
      continue;
    }
    let m = /^export interface ([A-Za-z0-9]+) \{(\s*\})?$/.exec(line);
    if (m) {
      cur = { name: `${pkg}.${m[1]}`, schema: { type: 'object', description: doc.join('\n').trim() || undefined } };
      defs[cur.name] = cur.schema;
      doc = [];
      if (m[2]) { cur.schema['x-kubernetes-preserve-unknown-fields'] = true; cur = null; }
      continue;
    }
    if (line === '}') {
      if (cur && !cur.schema.properties) cur.schema['x-kubernetes-preserve-unknown-fields'] = true;
      cur = null;
      continue;
    }
    m = /^ {4}(?:readonly )?"?([A-Za-z0-9_$-]+)"?(\?)?: (.*)$/.exec(line);
    if (m && cur) {
      const description = doc.join('\n').trim();
      doc = [];
      const rest = m[3]!;
      if (rest.endsWith('{')) { pendingProp = { name: m[1]!, optional: !!m[2], doc: description, typeLines: [rest] }; continue; }
      finishProp(m[1]!, !!m[2], description, rest.replace(/;\s*$/, ''));
    }
  }
}

/** Adds the group-version-kind extension to the definitions of top-level kinds (those with apiVersion and kind literals). */
function addGvk(defs: Record<string, Schema>, root: string): void {
  for (const rel of Object.keys(packages)) {
    const text = readFileSync(path.join(root, `${rel}.d.ts`), 'utf8');
    for (const block of text.split(/^export interface /m).slice(1)) {
      const name = /^([A-Za-z0-9]+)/.exec(block)?.[1];
      const body = block.slice(0, block.indexOf('\n}'));
      const av = /\n {4}apiVersion\?: "([^"]+)";/.exec(body)?.[1];
      const kind = /\n {4}kind\?: "([^"]+)";/.exec(body)?.[1];
      if (!name || !av || kind !== name) continue;
      const [g, v] = av.includes('/') ? av.split('/') : ['', av];
      const def = defs[`${packages[rel]}.${name}`];
      if (def) def['x-kubernetes-group-version-kind'] = [{ group: g, version: v, kind }];
    }
  }
}

let cached: Record<string, Schema> | null = null;

/** Every definition, by OpenAPI name (io.k8s.api.core.v1.Pod), with refs as "#/definitions/<name>". */
export function definitions(): Record<string, Schema> {
  if (cached) return cached;
  const require = createRequire(import.meta.url);
  const root = path.dirname(require.resolve('kubernetes-types/package.json'));
  const defs: Record<string, Schema> = {};
  for (const [rel, pkg] of Object.entries(packages)) parseFile(rel, pkg, root, defs);
  // IntOrString is inline in the declarations; Kubernetes names it, and some tools look it up.
  defs['io.k8s.apimachinery.pkg.util.intstr.IntOrString'] = { type: 'string', format: 'int-or-string', 'x-kubernetes-int-or-string': true };
  addGvk(defs, root);
  cached = defs;
  return defs;
}

const refPrefix = 'io.k8s.';

function refName(s: Schema): string | undefined {
  if (s.$ref) return s.$ref;
  const all = (s as { allOf?: Schema[] }).allOf;
  return all?.[0]?.$ref;
}

/**
 * Paths of fields in obj that its schema does not know, as Kubernetes
 * reports them for fieldValidation=Strict ("spec.containers[0].imagee").
 */
export function unknownFieldPaths(defName: string, obj: unknown, pathsMax = 100): string[] {
  const defs = definitions();
  const out: string[] = [];
  const walk = (schema: Schema | undefined, v: unknown, p: string, depth: number) => {
    if (!schema || out.length >= pathsMax || depth > 64) return;
    const ref = refName(schema);
    if (ref) { walk(defs[ref], v, p, depth + 1); return; }
    if (schema['x-kubernetes-preserve-unknown-fields']) return;
    if (Array.isArray(v)) {
      if (schema.items) v.forEach((x, i) => walk(schema.items, x, `${p}[${i}]`, depth + 1));
      return;
    }
    if (v === null || typeof v !== 'object') return;
    if (schema.properties) {
      for (const [k, x] of Object.entries(v)) {
        const sub = schema.properties[k];
        if (!sub) { out.push(p ? `${p}.${k}` : k); continue; }
        walk(sub, x, p ? `${p}.${k}` : k, depth + 1);
      }
    } else if (schema.additionalProperties && typeof schema.additionalProperties === 'object') {
      for (const [k, x] of Object.entries(v)) walk(schema.additionalProperties, x, `${p}.${k}`, depth + 1);
    }
  };
  if (!defs[defName]) return [];
  walk(defs[defName], obj, '', 0);
  void refPrefix;
  return out;
}
