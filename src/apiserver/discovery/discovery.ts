// Discovery documents: the legacy forms (/api, /apis, /apis/<g>, per
// group-version APIResourceList) and the aggregated form (APIGroupDiscoveryList,
// apidiscovery.k8s.io/v2, which kubectl 1.32 asks for first). Built once from
// the resource table, plus what aggregated API servers contribute.
import { createHash } from 'node:crypto';
import type { ResourceDef } from '../resources/types.ts';

const fullVerbs = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];

export function verbsOf(d: ResourceDef): string[] {
  return d.verbs ?? fullVerbs;
}

function subresourcesOf(d: ResourceDef): { name: string; kind: string; group?: string; version?: string; verbs: string[] }[] {
  const out: { name: string; kind: string; group?: string; version?: string; verbs: string[] }[] = [];
  if (d.hasStatus) out.push({ name: 'status', kind: d.kind, verbs: ['get', 'patch', 'update'] });
  if (d.scale) out.push({ name: 'scale', kind: 'Scale', group: 'autoscaling', version: 'v1', verbs: ['get', 'patch', 'update'] });
  for (const s of d.extraSubresources ?? []) {
    if (s === 'binding') out.push({ name: 'binding', kind: 'Binding', verbs: ['create'] });
    if (s === 'eviction') out.push({ name: 'eviction', kind: 'Eviction', group: 'policy', version: 'v1', verbs: ['create'] });
    if (s === 'finalize') out.push({ name: 'finalize', kind: d.kind, verbs: ['update'] });
    if (s === 'token') out.push({ name: 'token', kind: 'TokenRequest', group: 'authentication.k8s.io', version: 'v1', verbs: ['create'] });
  }
  return out;
}

export interface GroupVersion { group: string; version: string; }

export interface AggregatedGroup {
  /** Aggregated discovery entries contributed by an APIService backend (already in v2 form). */
  group: string;
  versions: { version: string; resources: unknown[] }[];
}

export class Discovery {
  private readonly byGv = new Map<string, ResourceDef[]>();
  private readonly groupOrder: string[] = [];
  /** Groups served by APIService backends (aggregation), by name. */
  readonly aggregated = new Map<string, { version: string; resources: unknown[]; legacy: unknown[] }[]>();

  constructor(defs: ResourceDef[]) {
    for (const d of defs) {
      const gv = `${d.group}/${d.version}`;
      if (!this.byGv.has(gv)) this.byGv.set(gv, []);
      this.byGv.get(gv)!.push(d);
      if (d.group !== '' && !this.groupOrder.includes(d.group)) this.groupOrder.push(d.group);
    }
  }

  resources(group: string, version: string): ResourceDef[] | undefined {
    return this.byGv.get(`${group}/${version}`);
  }

  find(group: string, version: string, resource: string): ResourceDef | undefined {
    return this.byGv.get(`${group}/${version}`)?.find((d) => d.resource === resource);
  }

  versionsOf(group: string): string[] {
    const out: string[] = [];
    for (const k of this.byGv.keys()) { const [g, v] = k.split('/'); if (g === group) out.push(v!); }
    return out;
  }

  coreVersions(): unknown {
    return { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: '' }] };
  }

  groupList(): unknown {
    const groups = this.groupOrder.map((g) => this.group(g));
    for (const [g, vs] of this.aggregated) {
      if (this.groupOrder.includes(g)) continue;
      const versions = vs.map((v) => ({ groupVersion: `${g}/${v.version}`, version: v.version }));
      groups.push({ name: g, versions, preferredVersion: versions[0] });
    }
    return { kind: 'APIGroupList', apiVersion: 'v1', groups };
  }

  group(g: string): { name: string; versions: unknown[]; preferredVersion: unknown; kind?: string; apiVersion?: string } {
    const versions = this.versionsOf(g).map((v) => ({ groupVersion: `${g}/${v}`, version: v }));
    return { name: g, versions, preferredVersion: versions[0] };
  }

  resourceList(group: string, version: string): unknown | undefined {
    const defs = this.byGv.get(`${group}/${version}`);
    if (!defs) return undefined;
    const resources: unknown[] = [];
    for (const d of defs) {
      const r: Record<string, unknown> = { name: d.resource, singularName: d.singular, namespaced: d.namespaced, kind: d.kind, verbs: verbsOf(d) };
      if (d.shortNames) r.shortNames = d.shortNames;
      if (d.categories) r.categories = d.categories;
      if (!d.virtual) r.storageVersionHash = createHash('sha256').update(`${d.group}/${d.version}/${d.kind}`).digest('base64').slice(0, 11);
      resources.push(r);
      for (const s of subresourcesOf(d)) {
        const sr: Record<string, unknown> = { name: `${d.resource}/${s.name}`, singularName: '', namespaced: d.namespaced, kind: s.kind, verbs: s.verbs };
        if (s.group) { sr.group = s.group; sr.version = s.version; }
        resources.push(sr);
      }
    }
    return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: group ? `${group}/${version}` : version, resources };
  }

  private aggregatedResource(d: ResourceDef): unknown {
    const r: Record<string, unknown> = {
      resource: d.resource, responseKind: { group: d.group, version: d.version, kind: d.kind },
      scope: d.namespaced ? 'Namespaced' : 'Cluster', singularResource: d.singular, verbs: verbsOf(d),
    };
    if (d.shortNames) r.shortNames = d.shortNames;
    if (d.categories) r.categories = d.categories;
    const subs = subresourcesOf(d);
    if (subs.length) {
      r.subresources = subs.map((s) => ({ subresource: s.name, responseKind: { group: s.group ?? d.group, version: s.version ?? d.version, kind: s.kind }, verbs: s.verbs }));
    }
    return r;
  }

  /** The aggregated discovery document of /api (core = true) or /apis. */
  aggregatedList(core: boolean, apiVersion: 'v2' | 'v2beta1'): unknown {
    const items: unknown[] = [];
    const groups = core ? [''] : this.groupOrder;
    for (const g of groups) {
      const versions = this.versionsOf(g).map((v) => ({ version: v, resources: this.byGv.get(`${g}/${v}`)!.map((d) => this.aggregatedResource(d)), freshness: 'Current' }));
      items.push({ metadata: { name: g, creationTimestamp: null }, versions });
    }
    if (!core) {
      for (const [g, vs] of this.aggregated) {
        items.push({ metadata: { name: g, creationTimestamp: null }, versions: vs.map((v) => ({ version: v.version, resources: v.resources, freshness: 'Current' })) });
      }
    }
    return { kind: 'APIGroupDiscoveryList', apiVersion: `apidiscovery.k8s.io/${apiVersion}`, metadata: {}, items };
  }
}
