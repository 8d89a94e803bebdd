// Field ownership: server-side apply and the managedFields bookkeeping of
// ordinary writes.
//
// Every object carries metadata.managedFields, one entry per (manager,
// operation, apiVersion for updates, subresource), each with the set of
// fields that manager owns (FieldsV1).
//
// Apply (applyServerSide): the applied configuration is merged into the live
// object; the applier's set becomes exactly the fields of the configuration;
// fields the applier owned before but no longer applies are removed from the
// object unless another manager owns them; then the change from the live
// object is compared against the other managers' sets: a field another
// manager owns that this apply changes is a conflict (409) unless `force`, in
// which case the other manager loses it. Applying a value equal to the live
// one is no conflict: both managers then share the field.
//
// Update (updateManagedFields): the fields an ordinary create, update or
// patch added or changed are given to its manager (operation Update) and
// taken from every other manager; removed fields are taken from everyone.
//
// Identity fields (apiVersion, kind, metadata.name/namespace/uid/
// resourceVersion/generation/creationTimestamp/selfLink/managedFields) are
// never owned by anyone. At most updateManagersMax Update entries are kept;
// older ones are folded into one "ancient-changes" entry per apiVersion.
import type { ManagedFieldsEntry, StatusCause } from 'kubernetes-types/meta/v1.js';
import { errors, StatusError } from '../errors.ts';
import { FieldSet, pathString } from './fieldset.ts';
import { canonicalJson, cloneJson, isObject, jsonEqual, type JsonObject } from './json.ts';
import { apiVersionOf, deducedSchema, schemaFor, type GroupVersionKind, type TypeNode } from './schema.ts';
import { addedFieldsV1, compareObjects, fieldSetOf, ListKeyError, mergeApplied, pruneFields, stripNulls } from './typed.ts';

/** Kubernetes keeps at most this many Update entries; the oldest are merged into one so that managedFields stay small. */
export const updateManagersMax = 10;
export const ancientChangesManager = 'ancient-changes';
/** Owner of every field of an object that had no managedFields when it was first applied to. */
export const beforeFirstApplyManager = 'before-first-apply';

/** metadata fields nobody owns: they identify the object or are set by the server. */
const untrackedMetadata = ['name', 'namespace', 'uid', 'resourceVersion', 'generation', 'creationTimestamp', 'selfLink', 'managedFields'];

export interface ApplyOptions {
  manager: string;
  force: boolean;
  kind: GroupVersionKind;
  /** RFC 3339 time recorded on the applier's entry. */
  now: string;
  /** Set for writes through a subresource ("status", "scale"); part of the entry's identity. */
  subresource?: string;
}

export interface UpdateOptions {
  manager: string;
  operation: 'Update';
  kind: GroupVersionKind;
  now: string;
  subresource?: string;
  /** The caller gives newObj away: its managedFields are set in place and it is returned, instead of a copy. */
  owned?: boolean;
}

interface Manager {
  manager: string;
  operation: 'Apply' | 'Update';
  apiVersion: string;
  time?: string;
  subresource?: string;
  set: FieldSet;
}

function identity(m: Pick<Manager, 'manager' | 'operation' | 'apiVersion' | 'subresource'>): string {
  // An applier is the same manager whatever apiVersion it applies with, so
  // that its next apply finds what it owned; updaters are told apart by version.
  return JSON.stringify([m.manager, m.operation, m.operation === 'Update' ? m.apiVersion : '', m.subresource ?? '']);
}

/** How a manager is named in a conflict, as Kubernetes names it. */
function describeManager(m: Manager): string {
  let s = JSON.stringify(m.manager);
  if (m.subresource) s += ` with subresource ${JSON.stringify(m.subresource)}`;
  if (m.operation === 'Update') s += ` using ${m.apiVersion}`;
  return s;
}

function schemaOf(kind: GroupVersionKind): TypeNode {
  return schemaFor(kind) ?? deducedSchema;
}

/** Decodes managedFields; undefined when they are not well formed (the caller then starts over rather than failing the write). */
function decodeManagers(raw: unknown): Manager[] | undefined {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) return undefined;
  const byId = new Map<string, Manager>();
  for (const e of raw) {
    if (!isObject(e)) return undefined;
    const { manager, operation, apiVersion, time, fieldsType, fieldsV1, subresource } = e;
    if (typeof manager !== 'string' || (operation !== 'Apply' && operation !== 'Update')) return undefined;
    if (fieldsType !== undefined && fieldsType !== 'FieldsV1') return undefined;
    if (apiVersion !== undefined && typeof apiVersion !== 'string') return undefined;
    if (time !== undefined && time !== null && typeof time !== 'string') return undefined;
    if (subresource !== undefined && typeof subresource !== 'string') return undefined;
    let set: FieldSet;
    try {
      set = fieldsV1 === undefined || fieldsV1 === null ? new FieldSet() : FieldSet.fromFieldsV1(fieldsV1);
    } catch {
      return undefined;
    }
    const m: Manager = { manager, operation, apiVersion: apiVersion ?? '', time: (time as string | undefined) ?? undefined, subresource: subresource || undefined, set };
    const prev = byId.get(identity(m));
    if (prev) prev.set.addAll(set);
    else byId.set(identity(m), m);
  }
  return [...byId.values()];
}

/** An entry's time for ordering; a missing or unparsable time sorts first rather than upsetting the sort. */
function timeMs(t: string | undefined): number {
  const ms = t ? Date.parse(t) : 0;
  return Number.isNaN(ms) ? 0 : ms;
}

function encodeManagers(managers: Manager[]): ManagedFieldsEntry[] {
  const live = managers.filter((m) => !m.set.isEmpty());
  live.sort((a, b) => {
    if (a.operation !== b.operation) return a.operation < b.operation ? -1 : 1;
    const ta = timeMs(a.time);
    const tb = timeMs(b.time);
    if (ta !== tb) return ta - tb;
    if (a.manager !== b.manager) return a.manager < b.manager ? -1 : 1;
    if (a.apiVersion !== b.apiVersion) return a.apiVersion < b.apiVersion ? -1 : 1;
    return (a.subresource ?? '') < (b.subresource ?? '') ? -1 : (a.subresource ?? '') > (b.subresource ?? '') ? 1 : 0;
  });
  return live.map((m) => {
    const e: ManagedFieldsEntry = { manager: m.manager, operation: m.operation, apiVersion: m.apiVersion };
    if (m.time) e.time = m.time;
    e.fieldsType = 'FieldsV1';
    e.fieldsV1 = m.set.toFieldsV1();
    if (m.subresource) e.subresource = m.subresource;
    return e;
  });
}

/** Folds the oldest Update entries into "ancient-changes" until at most updateManagersMax remain. */
function capUpdateManagers(managers: Manager[]): Manager[] {
  const updaters = managers.filter((m) => m.operation === 'Update' && !m.set.isEmpty() && m.manager !== ancientChangesManager);
  let count = managers.filter((m) => m.operation === 'Update' && !m.set.isEmpty()).length;
  if (count <= updateManagersMax) return managers;
  updaters.sort((a, b) => timeMs(a.time) - timeMs(b.time));
  const out = [...managers];
  for (const m of updaters) {
    if (count <= updateManagersMax) break;
    let bucket = out.find((b) => b.manager === ancientChangesManager && b.operation === 'Update' && b.apiVersion === m.apiVersion && !b.subresource);
    out.splice(out.indexOf(m), 1);
    if (bucket) count--;
    else {
      bucket = { manager: ancientChangesManager, operation: 'Update', apiVersion: m.apiVersion, set: new FieldSet() };
      out.push(bucket);
    }
    bucket.set.addAll(m.set);
    if (m.time && (!bucket.time || timeMs(m.time) > timeMs(bucket.time))) bucket.time = m.time;
  }
  return out;
}

/** The object without the fields nobody owns (and without status where it is a reset field), for computing field sets. */
function trackable(obj: unknown, resetStatus = false): JsonObject {
  if (!isObject(obj)) return {};
  const out: JsonObject = { ...obj };
  delete out.apiVersion;
  delete out.kind;
  if (resetStatus) delete out.status;
  if (isObject(out.metadata)) {
    const meta: JsonObject = { ...out.metadata };
    for (const k of untrackedMetadata) delete meta[k];
    if (Object.keys(meta).length === 0) delete out.metadata;
    else out.metadata = meta;
  }
  return out;
}

function withoutManagedFields(obj: object): JsonObject {
  const out = cloneJson(obj) as JsonObject;
  if (isObject(out.metadata)) delete out.metadata.managedFields;
  return out;
}

function setManagedFields(obj: JsonObject, managers: Manager[]): JsonObject {
  const entries = encodeManagers(capUpdateManagers(managers));
  if (!isObject(obj.metadata)) {
    if (entries.length === 0) return obj;
    obj.metadata = {};
  }
  const meta = obj.metadata as JsonObject;
  if (entries.length > 0) meta.managedFields = entries;
  else delete meta.managedFields;
  return obj;
}

function conflictError(conflicts: { manager: Manager; paths: string[][] }[]): StatusError {
  const causes: StatusCause[] = [];
  const lines: string[] = [];
  for (const { manager, paths } of conflicts) {
    const who = describeManager(manager);
    for (const p of paths) causes.push({ reason: 'FieldManagerConflict', message: `conflict with ${who}`, field: pathString(p) });
    lines.push(`conflicts with ${who}${paths.map((p) => `\n- ${pathString(p)}`).join('')}`);
  }
  lines.sort();
  const message = causes.length === 1
    ? `Apply failed with 1 conflict: ${causes[0]!.message}: ${causes[0]!.field}`
    : `Apply failed with ${causes.length} conflicts: ${lines.join('\n')}`;
  return new StatusError(409, 'Conflict', message, { causes });
}

function checkApplied(applied: unknown, opts: ApplyOptions): JsonObject {
  if (!isObject(applied)) throw errors.badRequest('an applied configuration must be an object');
  if (!opts.manager) throw errors.badRequest('PATCH with apply requires a fieldManager (the name of the applier)');
  const apiVersion = apiVersionOf(opts.kind);
  if (applied.apiVersion !== apiVersion) {
    throw errors.badRequest(applied.apiVersion === undefined
      ? 'the applied configuration must set apiVersion'
      : `the API version in the data (${String(applied.apiVersion)}) does not match the expected API version (${apiVersion})`);
  }
  if (applied.kind !== opts.kind.kind) {
    throw errors.badRequest(applied.kind === undefined
      ? 'the applied configuration must set kind'
      : `the kind in the data (${String(applied.kind)}) does not match the expected kind (${opts.kind.kind})`);
  }
  if (applied.metadata !== undefined && applied.metadata !== null && !isObject(applied.metadata)) {
    throw errors.badRequest('metadata of an applied configuration must be an object');
  }
  const mf = isObject(applied.metadata) ? applied.metadata.managedFields : undefined;
  if (mf !== undefined && mf !== null) throw errors.badRequest('metadata.managedFields must be nil in an applied configuration');
  return applied;
}

/**
 * Server-side apply of `applied` (already decoded from YAML/JSON) onto `live`
 * (null to create). Returns the new object, with managedFields; the caller
 * stores it (or, when it equals `live` apart from managedFields, may skip the
 * write). Throws 409 Conflict naming each conflicting field and its manager.
 */
export function applyServerSide(live: object | null, applied: object, opts: ApplyOptions): { object: object } {
  const schema = schemaOf(opts.kind);
  const config = writablePart(checkApplied(applied, opts), schema, opts.subresource);
  const apiVersion = apiVersionOf(opts.kind);
  const name = isObject(config.metadata) && typeof config.metadata.name === 'string' ? config.metadata.name : '';

  let configSet: FieldSet;
  try {
    // Nulls are not stored but are owned: applying `field: null` claims the field's removal.
    configSet = fieldSetOf(trackable(config), schema, true);
  } catch (e) {
    if (e instanceof ListKeyError) throw errors.invalid(opts.kind.group, opts.kind.kind, name, [e.statusCause]);
    throw e;
  }

  const liveObj = live === null ? null : withoutManagedFields(live);
  let managers: Manager[] = [];
  if (live !== null) {
    const rawMf = isObject((live as JsonObject).metadata) ? ((live as JsonObject).metadata as JsonObject).managedFields : undefined;
    managers = decodeManagers(rawMf) ?? [];
    if (managers.length === 0) {
      // An object written before anyone tracked ownership: whoever wrote it
      // owns everything, so a first apply cannot silently override it.
      const set = fieldSetOf(trackable(liveObj), schema, false);
      if (!set.isEmpty()) managers = [{ manager: beforeFirstApplyManager, operation: 'Update', apiVersion, set }];
    }
  }

  const merged = (liveObj === null ? stripNulls(cloneJson(config)) : mergeApplied(liveObj, config, schema)) as JsonObject;
  const self: Manager = { manager: opts.manager, operation: 'Apply', apiVersion, subresource: opts.subresource, set: configSet };
  const selfId = identity(self);
  const previous = managers.find((m) => identity(m) === selfId);
  const others = managers.filter((m) => identity(m) !== selfId);
  const result = cloneJson(merged);
  if (previous) {
    const keep = configSet.union(undefined);
    for (const m of others) keep.addAll(m.set);
    pruneFields(result, previous.set.difference(keep), keep, schema);
  }

  const cmp = compareObjects(trackable(liveObj ?? {}), trackable(result), schema);
  const changed = cmp.added.union(cmp.modified);
  const conflicts: { manager: Manager; paths: string[][]; set: FieldSet }[] = [];
  for (const m of others) {
    const c = m.set.intersection(changed);
    if (!c.isEmpty()) conflicts.push({ manager: m, paths: c.paths(), set: c });
  }
  if (conflicts.length > 0 && !opts.force) {
    // kubectl moving an object from client-side to server-side apply: fields
    // its last client-side apply set are taken over without conflict (the
    // documented upgrade path). Only for the manager kubectl uses by default,
    // so that other appliers still see every conflict.
    const allowed = opts.manager === kubectlManager ? lastAppliedFieldSet(liveObj, schema) : undefined;
    const remaining = allowed
      ? conflicts.map((c) => ({ ...c, set: c.set.difference(allowed) })).filter((c) => !c.set.isEmpty()).map((c) => ({ ...c, paths: c.set.paths() }))
      : conflicts;
    if (remaining.length > 0) throw conflictError(remaining);
  }
  for (const m of others) {
    const c = conflicts.find((x) => x.manager === m);
    m.set = m.set.difference(c?.set).difference(cmp.removed);
  }
  const unchanged = liveObj !== null && jsonEqual(liveObj, result);
  self.time = unchanged && previous?.time ? previous.time : opts.now;
  if (opts.manager === kubectlManager) syncLastApplied(result, config);
  return { object: setManagedFields(result, [...others, self]) };
}

/** The manager name kubectl applies with unless told otherwise. */
const kubectlManager = 'kubectl';
export const lastAppliedAnnotation = 'kubectl.kubernetes.io/last-applied-configuration';

function lastAppliedOf(obj: JsonObject | null): JsonObject | undefined {
  const ann = isObject(obj?.metadata) ? (obj!.metadata as JsonObject).annotations : undefined;
  const text = isObject(ann) ? ann[lastAppliedAnnotation] : undefined;
  if (typeof text !== 'string' || text === '') return undefined;
  try {
    const v: unknown = JSON.parse(text);
    return isObject(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

function lastAppliedFieldSet(live: JsonObject | null, schema: TypeNode): FieldSet | undefined {
  const la = lastAppliedOf(live);
  return la ? fieldSetOf(trackable(la), schema, false) : undefined;
}

/**
 * Keeps the client-side apply annotation, where there is one, equal to what
 * kubectl last applied server-side, so that a later client-side apply still
 * computes the right deletions.
 */
function syncLastApplied(result: JsonObject, config: JsonObject): void {
  if (!lastAppliedOf(result)) return;
  const applied = cloneJson(config);
  if (isObject(applied.metadata) && isObject(applied.metadata.annotations)) {
    delete applied.metadata.annotations[lastAppliedAnnotation];
    if (Object.keys(applied.metadata.annotations).length === 0) delete applied.metadata.annotations;
  }
  ((result.metadata as JsonObject).annotations as JsonObject)[lastAppliedAnnotation] = canonicalJson(applied);
}

/**
 * Whether status is a reset field of a write through this endpoint: the main
 * resource of a kind with status does not write it (the strategy resets or
 * keeps it), so nobody comes to own it through such a write.
 */
function statusIsReset(schema: TypeNode, subresource: string | undefined): boolean {
  return !subresource && schema.fields?.status !== undefined;
}

/**
 * The part of an applied configuration a write through this endpoint can
 * change: the main resource does not write the status of kinds that have a
 * status subresource, and /status writes only status. The rest is dropped
 * before merging (the engine would reset it anyway), so the applier neither
 * owns it nor conflicts over it.
 */
function writablePart(config: JsonObject, schema: TypeNode, subresource: string | undefined): JsonObject {
  if (subresource === 'status') {
    const out: JsonObject = { apiVersion: config.apiVersion, kind: config.kind };
    if (isObject(config.metadata)) {
      const meta: JsonObject = {};
      for (const k of ['name', 'namespace']) if (config.metadata[k] !== undefined) meta[k] = config.metadata[k];
      out.metadata = meta;
    }
    if (config.status !== undefined) out.status = config.status;
    return out;
  }
  if (statusIsReset(schema, subresource) && config.status !== undefined) {
    const out = { ...config };
    delete out.status;
    return out;
  }
  return config;
}

/**
 * updateManagedFields for a create that brings no managedFields (the common
 * case): the one entry is every field of the object, given to the writer.
 * Same result as the general path (oldObj {}), without the FieldSet tree.
 */
function createdManagedFields(out: JsonObject, opts: UpdateOptions): JsonObject {
  const schema = schemaOf(opts.kind);
  const fields = addedFieldsV1(trackable(out, statusIsReset(schema, opts.subresource)), schema);
  if (fields === undefined) {
    if (isObject(out.metadata)) delete out.metadata.managedFields;
    return out;
  }
  const e: ManagedFieldsEntry = { manager: opts.manager, operation: 'Update', apiVersion: apiVersionOf(opts.kind) };
  if (opts.now) e.time = opts.now;
  e.fieldsType = 'FieldsV1';
  e.fieldsV1 = fields;
  if (opts.subresource) e.subresource = opts.subresource;
  if (!isObject(out.metadata)) out.metadata = {};
  (out.metadata as JsonObject).managedFields = [e] as unknown as JsonObject[];
  return out;
}

function isResetRequest(mf: unknown): boolean {
  return Array.isArray(mf) && mf.length > 0 && mf.every((e) => isObject(e) && Object.keys(e).length === 0);
}

/**
 * managedFields for an ordinary write of `newObj` over `oldObj` (null on
 * create). Returns a copy of `newObj` with metadata.managedFields set.
 *
 * A client may rewrite managedFields itself: a well-formed new value is taken
 * as the starting point (and its owners keep the changed fields it names),
 * `[{}]` clears them (the documented way to reset ownership), and anything
 * else (absent, empty, unchanged, malformed) keeps the stored ones, so that
 * clients unaware of managedFields cannot lose them.
 */
export function updateManagedFields(oldObj: object | null, newObj: object, opts: UpdateOptions): object {
  if (opts.operation !== 'Update') throw errors.internal(`updateManagedFields: unexpected operation ${String(opts.operation)}`);
  const out = (opts.owned ? newObj : cloneJson(newObj)) as JsonObject;
  if (out.metadata !== undefined && !isObject(out.metadata)) return out;
  const newMf = isObject(out.metadata) ? out.metadata.managedFields : undefined;
  const oldMf = oldObj !== null && isObject((oldObj as JsonObject).metadata) ? ((oldObj as JsonObject).metadata as JsonObject).managedFields : undefined;
  if (isResetRequest(newMf)) {
    delete (out.metadata as JsonObject).managedFields;
    return out;
  }
  if (oldObj === null && (newMf === undefined || (Array.isArray(newMf) && newMf.length === 0))) return createdManagedFields(out, opts);
  let managers: Manager[] | undefined;
  if (Array.isArray(newMf) && newMf.length > 0 && !jsonEqual(newMf, oldMf)) managers = decodeManagers(newMf);
  const written = managers !== undefined;
  managers ??= decodeManagers(oldMf) ?? [];

  const schema = schemaOf(opts.kind);
  const apiVersion = apiVersionOf(opts.kind);
  const resetStatus = statusIsReset(schema, opts.subresource);
  const cmp = compareObjects(trackable(oldObj ?? {}, resetStatus), trackable(out, resetStatus), schema);
  // cmp is ours alone: a create (nothing modified) hands its added set over instead of copying it.
  let changed = cmp.modified.isEmpty() ? cmp.added : cmp.added.union(cmp.modified);
  if (written) {
    // managedFields written with the object declare who owns what, and that
    // declaration stands for the fields it names: the writer gets only the
    // changed fields nobody is declared to own. (This is also what makes the
    // result of applyServerSide safe to pass through here again.)
    const declared = new FieldSet();
    for (const m of managers) declared.addAll(m.set);
    changed = changed.difference(declared);
  }
  const removed = cmp.removed.isEmpty() ? undefined : cmp.removed;
  for (const m of managers) {
    m.set = m.set.difference(changed);
    if (removed) m.set = m.set.difference(removed);
  }
  if (!changed.isEmpty()) {
    const id = identity({ manager: opts.manager, operation: 'Update', apiVersion, subresource: opts.subresource });
    let self = managers.find((m) => identity(m) === id);
    if (self) self.set.addAll(changed);
    else {
      // changed is not used after this, so a new entry takes it as its set.
      self = { manager: opts.manager, operation: 'Update', apiVersion, subresource: opts.subresource, set: changed };
      managers.push(self);
    }
    self.apiVersion = apiVersion;
    self.time = opts.now;
  }
  return setManagedFields(out, managers);
}
