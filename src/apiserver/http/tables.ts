// Table output (Accept: application/json;as=Table;v=v1;g=meta.k8s.io), the
// form kubectl get prints: the resource's printer columns, one row per object,
// each row carrying the object's metadata (or the whole object, or nothing,
// per includeObject).
import { defaultTable } from '../resources/common.ts';
import type { KObject, ResourceDef } from '../resources/types.ts';

export type IncludeObject = 'None' | 'Metadata' | 'Object';

function rowObject(o: KObject, include: IncludeObject): unknown {
  if (include === 'None') return undefined;
  if (include === 'Object') return o;
  return { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: o.metadata };
}

export function toTable(def: ResourceDef, objs: KObject[], listMeta: Record<string, unknown>, include: IncludeObject, now: number, withColumns = true): unknown {
  const printer = def.table ?? defaultTable;
  const columnDefinitions = withColumns ? printer.columns.map((c) => ({ name: c.name, type: c.type, format: c.format ?? '', description: c.description ?? '', priority: c.priority ?? 0 })) : [];
  const rows = objs.map((o) => {
    const row: Record<string, unknown> = { cells: printer.row(o, now), object: rowObject(o, include) };
    if (row.object === undefined) delete row.object;
    return row;
  });
  return { kind: 'Table', apiVersion: 'meta.k8s.io/v1', metadata: listMeta, columnDefinitions, rows };
}

export interface Negotiated {
  /** 'object' = the plain JSON form. */
  as: 'object' | 'Table' | 'PartialObjectMetadata' | 'PartialObjectMetadataList';
  contentType: string;
}

/** Picks the response form from an Accept header; null = nothing acceptable (406). */
export function negotiate(accept: string | undefined): Negotiated | null {
  if (!accept) return { as: 'object', contentType: 'application/json' };
  for (const part of accept.split(',')) {
    const [typeRaw, ...ps] = part.split(';').map((x) => x.trim());
    const type = (typeRaw ?? '').toLowerCase();
    const params: Record<string, string> = {};
    for (const p of ps) { const i = p.indexOf('='); if (i > 0) params[p.slice(0, i)] = p.slice(i + 1); }
    if (type !== 'application/json' && type !== '*/*' && type !== 'application/*' && type !== 'application/yaml') continue;
    if (params.as === undefined) return { as: 'object', contentType: 'application/json' };
    if (params.as === 'Table' && params.g === 'meta.k8s.io' && (params.v === 'v1' || params.v === 'v1beta1')) return { as: 'Table', contentType: `application/json;as=Table;v=${params.v};g=meta.k8s.io` };
    if ((params.as === 'PartialObjectMetadata' || params.as === 'PartialObjectMetadataList') && params.g === 'meta.k8s.io' && (params.v === 'v1' || params.v === 'v1beta1')) {
      return { as: params.as, contentType: `application/json;as=${params.as};v=${params.v};g=meta.k8s.io` };
    }
  }
  return null;
}
