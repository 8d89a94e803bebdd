// What the generic registry needs to know about one resource: its names in
// the API, where it lives in the store, and its strategy (defaulting,
// validation, which part is status, how it prints as a Table). Each resource
// is one small module in this folder exporting a ResourceDef; index.ts lists
// them all.
import type { StatusCause } from 'kubernetes-types/meta/v1.js';

/** Objects travel as plain JSON values; strategies narrow them with kubernetes-types where useful. */
export type KObject = Record<string, any> & { metadata?: Record<string, any> };

export interface GroupVersionKind { group: string; version: string; kind: string }
export interface GroupVersionResource { group: string; version: string; resource: string }

export interface TableColumn {
  name: string;
  type: 'string' | 'integer' | 'number' | 'boolean' | 'date';
  format?: string;
  description?: string;
  /** 0 = always shown; 1 = only with -o wide. */
  priority?: number;
}

export interface TablePrinter {
  columns: TableColumn[];
  /** Cells in column order; `now` (ms since epoch) is for ages. */
  row(obj: KObject, now: number): unknown[];
}

export interface ScaleSubresource {
  /** Dotted paths inside the object. */
  specReplicasPath: string;
  statusReplicasPath: string;
  /** Where a label-selector string for status.selector comes from (the object's spec.selector). */
  selectorPath?: string;
}

/** How object names are checked: DNS-1123 subdomain, DNS-1123 label, DNS-1035 label, or only path-safe. */
export type NameRule = 'subdomain' | 'label' | 'label1035' | 'path';

export interface StrategyContext {
  /** ms since epoch. */
  now: number;
}

export interface ResourceDef {
  group: string;
  version: string;
  /** Plural resource name ("pods"). */
  resource: string;
  kind: string;
  singular: string;
  shortNames?: string[];
  categories?: string[];
  namespaced: boolean;
  /** Path segment under /registry; defaults to the resource name. */
  storagePrefix?: string;
  /** Virtual resources (reviews) have no storage: only create, answered by `review`. */
  virtual?: boolean;
  /** The verbs served; default: the full set for stored resources. */
  verbs?: string[];
  /** True when status is a separate subresource (PUT on the main resource keeps the stored status). */
  hasStatus?: boolean;
  scale?: ScaleSubresource;
  /** Extra subresources served by custom handlers (pods/binding, pods/eviction, serviceaccounts/token). */
  extraSubresources?: string[];
  /** Default 'subdomain'. */
  nameRule?: NameRule;
  /** OpenAPI definition name of the kind, e.g. io.k8s.api.core.v1.Pod. */
  schemaName: string;
  /** Extra field-selector fields besides metadata.name and metadata.namespace. */
  fields?: Record<string, (obj: KObject) => string>;
  /** Fills defaults on create (and on update, for fields a client may omit). */
  defaults?(obj: KObject, ctx: StrategyContext): void;
  /** Called on create after defaulting, e.g. to clear status. */
  prepareForCreate?(obj: KObject, ctx: StrategyContext): void;
  /** Called on update before validation. */
  prepareForUpdate?(obj: KObject, old: KObject, ctx: StrategyContext): void;
  validate?(obj: KObject): StatusCause[];
  validateUpdate?(obj: KObject, old: KObject): StatusCause[];
  /** Seconds of graceful deletion for this object (pods); null or 0 = delete at once. */
  gracePeriodSeconds?(obj: KObject, requested: number | undefined): number | null;
  table?: TablePrinter;
  /** True while something other than metadata.finalizers holds a deleted object (a namespace's spec.finalizers). */
  holdsDeletion?(obj: KObject): boolean;
  /** Called when an object is marked for deletion (a namespace turns Terminating). */
  prepareForDelete?(obj: KObject): void;
}

export function fieldCause(field: string, message: string, reason = 'FieldValueInvalid'): StatusCause {
  return { reason, field, message };
}
