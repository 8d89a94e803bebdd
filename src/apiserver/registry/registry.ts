// The generic registry: create, get, list, watch, update, patch, delete and
// deletecollection of one resource over the Store, driven by the resource's
// strategy (src/apiserver/resources/).
//
// Layout: objects live at /registry/<prefix>/<namespace>/<name> (cluster-scoped:
// /registry/<prefix>/<name>), where prefix is the resource name unless the
// strategy names another (Kubernetes' own layout: /registry/pods/...,
// /registry/minions/... for nodes, /registry/services/specs/...), as JSON
// without metadata.resourceVersion: the resourceVersion of an object is the
// modRevision of its key, set when it is read.
//
// Every write is a txn guarded by the key's modRevision (or absence for a
// create), so concurrent writers never overwrite each other: a stale update
// is a 409 Conflict, a create of an existing name a 409 AlreadyExists.
// Read-modify-write operations (patch, status, scale, graceful delete) retry
// on a lost race, at most updateRetriesMax times.
import { randomUUID } from 'node:crypto';
import type { StatusCause } from 'kubernetes-types/meta/v1.js';
import type { Store } from '../../store/store.ts';
import { prefixEnd } from '../../store/store.ts';
import { rfc3339, type OpContext } from '../context.ts';
import { errors, StatusError } from '../errors.ts';
import { validateName } from '../resources/common.ts';
import { fieldCause, type KObject, type ResourceDef } from '../resources/types.ts';
import { cloneJson } from '../patch/json.ts';
import { WatchCache } from '../watchcache/cache.ts';

/** Attempts of a read-modify-write against concurrent writers before a 409. */
const updateRetriesMax = 8;
/** Annotations of one object, in bytes (Kubernetes' TotalAnnotationSizeLimitB). */
const annotationsBytesMax = 256 * 1024;

export type AdmissionOp = 'CREATE' | 'UPDATE' | 'DELETE';

export interface AdmissionHook {
  /** Runs mutating admission (may change obj), then is followed by strategy validation, then `validate`. */
  admit(op: AdmissionOp, def: ResourceDef, subresource: string, obj: KObject | null, old: KObject | null, ctx: OpContext): Promise<void>;
  validate(op: AdmissionOp, def: ResourceDef, subresource: string, obj: KObject | null, old: KObject | null, ctx: OpContext): Promise<void>;
}

/** Encrypts/decrypts stored values of one resource (Secrets at rest). */
export interface ValueTransformer {
  encrypt(plain: Buffer, context: string): Buffer;
  decrypt(stored: Buffer, context: string): Buffer;
}

export interface RegistryDeps {
  store: Store;
  admission: AdmissionHook;
  /** Unknown field paths of obj by its schema ([] when all are known). */
  unknownFields(def: ResourceDef, obj: KObject): string[];
  /** Updates managedFields for a non-apply write (the patch module's updateManagedFields). */
  trackManagedFields?(old: KObject | null, obj: KObject, def: ResourceDef, ctx: OpContext, subresource: string): KObject;
  transformer?: ValueTransformer | null;
  /** Random source for generateName suffixes (tests inject a seeded one). */
  random?: () => number;
  uid?: () => string;
  watchCache?: { eventWindowMax?: number; watcherBufferEventsMax?: number };
}

export interface DeleteOptionsBody {
  gracePeriodSeconds?: number;
  propagationPolicy?: 'Orphan' | 'Background' | 'Foreground';
  preconditions?: { uid?: string; resourceVersion?: string };
}

const suffixChars = 'bcdfghjklmnpqrstvwxz2456789';

export function apiVersionOf(def: { group: string; version: string }): string {
  return def.group ? `${def.group}/${def.version}` : def.version;
}

// Objects here are JSON values: a plain JSON copy is several times cheaper
// than structuredClone (which walks for every type it could meet), and it
// keeps a "__proto__" key an own property.
function clone<T>(o: T): T {
  return cloneJson(o);
}

// A write that changes nothing but resourceVersion and managedFields timestamps
// is not stored. Ownership itself is compared: a second manager taking a share
// of a field, or a reset of managedFields, is a real change.
function sameExceptVolatile(a: KObject, b: KObject): boolean {
  const strip = (o: KObject) => {
    const m = { ...o.metadata };
    delete m.resourceVersion;
    if (Array.isArray(m.managedFields)) {
      m.managedFields = m.managedFields.map((e: unknown) => {
        if (e === null || typeof e !== 'object') return e;
        const { time: _time, ...rest } = e as Record<string, unknown>;
        return rest;
      });
    }
    return JSON.stringify({ ...o, metadata: m });
  };
  return strip(a) === strip(b);
}

/** The stored JSON of an object (without metadata.resourceVersion), and where its metadata object ends. */
interface StoredText {
  json: string;
  /** Index of the closing brace of metadata in json; -1 without metadata. */
  metaEnd: number;
  metaEmpty: boolean;
}

/**
 * The JSON text JSON.stringify gives for the object without
 * metadata.resourceVersion (the stored form), built key by key so that the
 * place of metadata is known: the answer to the write is then that text
 * with the resourceVersion put in, not a second serialization.
 */
function storedText(obj: KObject): StoredText {
  let json = '{';
  let metaEnd = -1;
  let metaEmpty = true;
  for (const k of Object.keys(obj)) {
    let v: unknown = obj[k];
    if (k === 'metadata' && v !== null && typeof v === 'object') {
      const m = { ...(v as Record<string, unknown>) };
      delete m.resourceVersion;
      v = m;
    }
    const j = JSON.stringify(v);
    if (j === undefined) continue;
    if (json.length > 1) json += ',';
    json += `${JSON.stringify(k)}:`;
    if (k === 'metadata' && j[0] === '{') {
      metaEnd = json.length + j.length - 1;
      metaEmpty = j === '{}';
    }
    json += j;
  }
  return { json: json + '}', metaEnd, metaEmpty };
}

/** The JSON text of objects the registry just wrote, for the answer to that write (see responseJson). */
const writtenJson = new WeakMap<object, string>();

/** Sets the resourceVersion of a just-written object and remembers its JSON text, which is the stored text with the resourceVersion last in metadata (where the assignment puts it). */
function written(obj: KObject, text: StoredText, revision: number): KObject {
  const rv = String(revision);
  const m = obj.metadata!;
  if (m.resourceVersion !== rv) {
    delete m.resourceVersion;
    m.resourceVersion = rv;
  }
  if (text.metaEnd >= 0) writtenJson.set(obj, withResourceVersion(text, rv));
  return obj;
}

/** The stored text with "resourceVersion" as the last field of metadata: JSON.stringify of the object once its resourceVersion is set last. */
function withResourceVersion(text: StoredText, rv: string): string {
  if (text.metaEnd < 0) return text.json;
  return `${text.json.slice(0, text.metaEnd)}${text.metaEmpty ? '' : ','}"resourceVersion":${JSON.stringify(rv)}${text.json.slice(text.metaEnd)}`;
}

/**
 * JSON.stringify(obj) for an object a registry write returned, without
 * serializing it again, for the one answer to that write; undefined for any
 * other object (or a second call). Objects a write
 * returns are not changed afterwards (they go straight into the answer).
 */
export function responseJson(obj: object): string | undefined {
  const text = writtenJson.get(obj);
  // Taken once: the object lives on in the watch cache, its answer's text need not.
  if (text !== undefined) writtenJson.delete(obj);
  return text;
}

/**
 * Drops the metadata fields that are empty strings, maps or lists: Kubernetes
 * never stores them (its encoding omits empty values), so they must not show
 * up in the object or as owned fields (kubectl create configmap sends
 * generateName: "").
 */
function dropEmptyMeta(m: Record<string, any>): void {
  for (const f of ['generateName', 'name', 'namespace', 'uid', 'selfLink']) if (m[f] === '') delete m[f];
  for (const f of ['labels', 'annotations']) {
    const v = m[f];
    if (v !== null && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length === 0) delete m[f];
  }
  for (const f of ['finalizers', 'ownerReferences']) if (Array.isArray(m[f]) && m[f].length === 0) delete m[f];
}

export class Registry {
  readonly def: ResourceDef;
  readonly cache: WatchCache;
  readonly apiVersion: string;
  private readonly store: Store;
  private readonly prefix: string;
  private readonly random: () => number;
  private readonly newUid: () => string;
  readonly watcherBufferEventsMax?: number;

  constructor(def: ResourceDef, private readonly deps: RegistryDeps) {
    this.def = def;
    this.store = deps.store;
    this.apiVersion = apiVersionOf(def);
    this.prefix = `/registry/${def.storagePrefix ?? def.resource}/`;
    this.random = deps.random ?? Math.random;
    this.newUid = deps.uid ?? randomUUID;
    this.watcherBufferEventsMax = deps.watchCache?.watcherBufferEventsMax;
    this.cache = new WatchCache(this.store, this.prefix, (k, v, rev) => this.decode(k, v, rev), deps.watchCache);
  }

  key(namespace: string, name: string): string {
    return this.def.namespaced ? `${this.prefix}${namespace}/${name}` : `${this.prefix}${name}`;
  }

  // The storage key is the transformer's context (bound into AES-GCM as associated data), so a value copied to another key does not decrypt.
  private decode(key: string, value: Buffer, modRevision: number): KObject {
    const plain = this.deps.transformer ? this.deps.transformer.decrypt(value, key) : value;
    const obj = JSON.parse(plain.toString()) as KObject;
    (obj.metadata ??= {}).resourceVersion = String(modRevision);
    return obj;
  }

  private encode(key: Buffer, obj: KObject): { value: Buffer; text: StoredText } {
    const text = storedText(obj);
    const plain = Buffer.from(text.json);
    return { value: this.deps.transformer ? this.deps.transformer.encrypt(plain, key.toString()) : plain, text };
  }

  /**
   * Encodes obj for a put at key, and tells the watch cache about the write
   * so that its event is not decoded again: the cache takes obj itself, with
   * the event's revision as its resourceVersion (the one written() sets on
   * it too). obj is then shared by the cache and the answer, which is why
   * nothing changes an object a registry write returned. Every object written
   * here is the registry's own (a copy of the body, or the mutate result of a
   * copy), so nothing else holds it.
   */
  private encodeWrite(key: Buffer, obj: KObject): { value: Buffer; text: StoredText; done(ok: boolean): void } {
    const enc = this.encode(key, obj);
    const k = key.toString();
    this.cache.noteWritten(k, {
      value: enc.value,
      object: (rev) => {
        const m = obj.metadata!;
        const rv = String(rev);
        if (m.resourceVersion !== rv) {
          delete m.resourceVersion;
          m.resourceVersion = rv;
        }
        // No JSON text: kept for every cached object it costs more collector time than the lazy jsonOf does.
        return { obj };
      },
    });
    return { ...enc, done: (ok) => { if (!ok) this.cache.dropWritten(k, enc.value); } };
  }

  /** Reads one object from the store (linearizable), or null. */
  async read(namespace: string, name: string): Promise<{ obj: KObject; modRevision: number } | null> {
    const r = await this.store.range(Buffer.from(this.key(namespace, name)));
    const kv = r.kvs[0];
    if (!kv) return null;
    return { obj: this.decode(kv.key.toString(), kv.value, kv.modRevision), modRevision: kv.modRevision };
  }

  async get(namespace: string, name: string): Promise<KObject> {
    const cur = await this.read(namespace, name);
    if (!cur) throw errors.notFound(this.def.group, this.def.resource, name);
    return cur.obj;
  }

  private notFound(name: string): StatusError {
    return errors.notFound(this.def.group, this.def.resource, name);
  }

  /** Checks apiVersion/kind of a body against this resource (filling them in when absent). */
  checkTypeMeta(obj: KObject, kind = this.def.kind, apiVersion = this.apiVersion): void {
    if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) throw errors.badRequest('the request body must be a JSON object');
    if (obj.kind === undefined || obj.kind === '') obj.kind = kind;
    if (obj.apiVersion === undefined || obj.apiVersion === '') obj.apiVersion = apiVersion;
    if (obj.kind !== kind || obj.apiVersion !== apiVersion) {
      throw errors.badRequest(`the API version in the data (${obj.apiVersion}) does not match the expected API version (${apiVersion}) or kind (${obj.kind}) does not match ${kind}`);
    }
    if (obj.metadata !== undefined && (obj.metadata === null || typeof obj.metadata !== 'object' || Array.isArray(obj.metadata))) throw errors.badRequest('metadata must be an object');
    obj.metadata ??= {};
  }

  private checkFields(obj: KObject, ctx: OpContext): void {
    if (ctx.fieldValidation === 'Ignore') return;
    const unknown = this.deps.unknownFields(this.def, obj);
    if (unknown.length === 0) return;
    if (ctx.fieldValidation === 'Strict') {
      throw errors.badRequest(`strict decoding error: ${unknown.map((f) => `unknown field "${f}"`).join(', ')}`);
    }
    for (const f of unknown) ctx.warnings.push(`unknown field "${f}"`);
  }

  private checkNamespace(obj: KObject, namespace: string): void {
    const m = obj.metadata!;
    if (this.def.namespaced) {
      if (m.namespace !== undefined && m.namespace !== '' && m.namespace !== namespace) {
        throw errors.badRequest('the namespace of the provided object does not match the namespace sent on the request');
      }
      m.namespace = namespace;
    } else {
      delete m.namespace;
    }
  }

  private validateMeta(obj: KObject, causes: StatusCause[]): void {
    const m = obj.metadata!;
    const nameErr = typeof m.name === 'string' ? validateName(m.name, this.def.nameRule ?? 'subdomain') : 'must be a string';
    if (nameErr) causes.push(fieldCause('metadata.name', `Invalid value: ${JSON.stringify(m.name)}: ${nameErr}`));
    for (const [k, v] of Object.entries(m.labels ?? {})) {
      if (!/^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/.test(k) || k.length > 316) {
        causes.push(fieldCause('metadata.labels', `Invalid value: "${k}": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character`));
      }
      if (typeof v !== 'string' || v.length > 63 || !/^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/.test(v)) {
        causes.push(fieldCause(`metadata.labels`, `Invalid value: ${JSON.stringify(v)}: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character`));
      }
    }
    let size = 0;
    for (const [k, v] of Object.entries(m.annotations ?? {})) {
      if (typeof v !== 'string') causes.push(fieldCause(`metadata.annotations`, `Invalid value: annotation "${k}" must be a string`));
      size += k.length + String(v).length;
    }
    if (size > annotationsBytesMax) causes.push(fieldCause('metadata.annotations', `Too long: must have at most ${annotationsBytesMax} bytes`, 'FieldValueTooLong'));
  }

  private invalid(name: string, causes: StatusCause[]): StatusError {
    return errors.invalid(this.def.group, this.def.kind, name, causes);
  }

  private generateName(base: string): string {
    let s = '';
    for (let i = 0; i < 5; i++) s += suffixChars[Math.floor(this.random() * suffixChars.length)];
    return `${base}${s}`;
  }

  /** bodyOwned: the caller gives body away (a request body it just decoded), so it is used as the new object instead of a copy. */
  async create(namespace: string, body: KObject, ctx: OpContext, subresource = '', opts: { bodyOwned?: boolean } = {}): Promise<KObject> {
    this.checkTypeMeta(body);
    this.checkFields(body, ctx);
    let obj = opts.bodyOwned ? body : clone(body);
    const m = obj.metadata!;
    this.checkNamespace(obj, namespace);
    dropEmptyMeta(m);
    if (!m.name) {
      if (m.generateName) m.name = this.generateName(String(m.generateName));
      else throw this.invalid('', [fieldCause('metadata.name', 'Required value: name or generateName is required', 'FieldValueRequired')]);
    }
    // Fields the server owns: whatever the client sent is replaced.
    delete m.resourceVersion;
    delete m.deletionTimestamp;
    delete m.deletionGracePeriodSeconds;
    delete m.selfLink;
    m.uid = this.newUid();
    m.creationTimestamp = rfc3339(ctx.now);
    if (obj.spec !== undefined || this.def.hasStatus) m.generation = 1;
    else delete m.generation;
    const sctx = { now: ctx.now };
    this.def.defaults?.(obj, sctx);
    // As in Kubernetes, the writer owns the fields of the object it sent,
    // defaulted: tracked before the strategy resets status or allocates
    // (a Service's clusterIP) and before mutating admission adds its fields
    // (a pod's service-account volume, tolerations, priority).
    if (this.deps.trackManagedFields && !ctx.skipManagedFields) obj = this.deps.trackManagedFields(null, obj, this.def, ctx, subresource);
    this.def.prepareForCreate?.(obj, sctx);
    await this.deps.admission.admit('CREATE', this.def, subresource, obj, null, ctx);
    const causes: StatusCause[] = [];
    this.validateMeta(obj, causes);
    causes.push(...(this.def.validate?.(obj) ?? []));
    if (causes.length) throw this.invalid(m.name, causes);
    await this.deps.admission.validate('CREATE', this.def, subresource, obj, null, ctx);
    if (ctx.dryRun) return obj;
    const key = Buffer.from(this.key(namespace, m.name));
    const enc = this.encodeWrite(key, obj);
    const r = await this.store.txn({
      compare: [{ key, target: 'version', result: 'equal', number: 0 }],
      success: [{ op: 'put', key, value: enc.value }],
      failure: [],
    }).catch((e: unknown) => { enc.done(false); throw e; });
    enc.done(r.succeeded);
    if (!r.succeeded) throw errors.alreadyExists(this.def.group, this.def.resource, m.name);
    return written(obj, enc.text, r.header.revision);
  }

  /**
   * Writes `next` over the stored version `cur` (modRevision guard). Returns
   * the stored object, or null when the guard failed (a concurrent write).
   * An object with a deletionTimestamp and no finalizers left is deleted.
   */
  private async commit(namespace: string, cur: { obj: KObject; modRevision: number }, next: KObject, ctx: OpContext): Promise<KObject | null> {
    const name = next.metadata!.name;
    const key = Buffer.from(this.key(namespace, name));
    const finishing = next.metadata!.deletionTimestamp && !(next.metadata!.finalizers?.length) && !this.def.holdsDeletion?.(next);
    if (ctx.dryRun) return next;
    if (finishing) {
      const r = await this.store.txn({
        compare: [{ key, target: 'mod', result: 'equal', number: cur.modRevision }],
        success: [{ op: 'deleteRange', key }],
        failure: [],
      });
      if (!r.succeeded) return null;
      next.metadata!.resourceVersion = String(r.header.revision);
      return next;
    }
    if (sameExceptVolatile(next, cur.obj)) return cur.obj; // a no-op write is not written (no new revision)
    const enc = this.encodeWrite(key, next);
    const r = await this.store.txn({
      compare: [{ key, target: 'mod', result: 'equal', number: cur.modRevision }],
      success: [{ op: 'put', key, value: enc.value }],
      failure: [],
    }).catch((e: unknown) => { enc.done(false); throw e; });
    enc.done(r.succeeded);
    if (!r.succeeded) return null;
    return written(next, enc.text, r.header.revision);
  }

  /** Builds the next version from a client's full object (PUT) for the main resource or the status subresource. */
  private async prepareUpdate(namespace: string, name: string, cur: KObject, body: KObject, ctx: OpContext, subresource: '' | 'status', skipUpdateRules = false): Promise<KObject> {
    let next: KObject;
    if (subresource === 'status') {
      // Only status changes through /status; metadata labels and annotations too, as Kubernetes allows.
      next = clone(cur);
      next.status = clone(body.status);
      if (body.metadata?.labels !== undefined) next.metadata!.labels = clone(body.metadata.labels);
      if (body.metadata?.annotations !== undefined) next.metadata!.annotations = clone(body.metadata.annotations);
    } else {
      next = clone(body);
      this.checkNamespace(next, namespace);
      if (next.metadata!.name !== name) throw errors.badRequest(`the name of the object (${next.metadata!.name}) does not match the name on the URL (${name})`);
      const m = next.metadata!;
      dropEmptyMeta(m);
      const om = cur.metadata!;
      if (m.uid !== undefined && m.uid !== om.uid) {
        throw errors.conflict(this.def.group, this.def.resource, name, `Precondition failed: UID in precondition: ${m.uid}, UID in object meta: ${om.uid}`);
      }
      m.uid = om.uid;
      m.creationTimestamp = om.creationTimestamp;
      if (om.deletionTimestamp) { m.deletionTimestamp = om.deletionTimestamp; m.deletionGracePeriodSeconds = om.deletionGracePeriodSeconds; }
      else { delete m.deletionTimestamp; delete m.deletionGracePeriodSeconds; }
      delete m.selfLink;
      if (this.def.hasStatus) {
        if (cur.status === undefined) delete next.status;
        else next.status = clone(cur.status);
      }
      if (om.generation !== undefined) {
        m.generation = JSON.stringify(next.spec) !== JSON.stringify(cur.spec) ? om.generation + 1 : om.generation;
      }
      const sctx = { now: ctx.now };
      this.def.defaults?.(next, sctx);
      this.def.prepareForUpdate?.(next, cur, sctx);
    }
    next.metadata!.resourceVersion = cur.metadata!.resourceVersion;
    await this.deps.admission.admit('UPDATE', this.def, subresource, next, cur, ctx);
    const causes: StatusCause[] = [];
    this.validateMeta(next, causes);
    if (om(next).namespace !== om(cur).namespace) causes.push(fieldCause('metadata.namespace', 'field is immutable'));
    causes.push(...(this.def.validate?.(next) ?? []));
    if (subresource === '' && !skipUpdateRules) causes.push(...(this.def.validateUpdate?.(next, cur) ?? []));
    if (cur.metadata!.deletionTimestamp && (next.metadata!.finalizers ?? []).some((f: string) => !(cur.metadata!.finalizers ?? []).includes(f))) {
      causes.push(fieldCause('metadata.finalizers', 'Forbidden: no new finalizers can be added if the object is being deleted', 'FieldValueForbidden'));
    }
    if (causes.length) throw this.invalid(name, causes);
    await this.deps.admission.validate('UPDATE', this.def, subresource, next, cur, ctx);
    return this.deps.trackManagedFields && !ctx.skipManagedFields ? this.deps.trackManagedFields(cur, next, this.def, ctx, subresource) : next;
  }

  /** PUT: full replacement with optimistic concurrency on metadata.resourceVersion. */
  async update(namespace: string, name: string, body: KObject, ctx: OpContext, subresource: '' | 'status' = ''): Promise<KObject> {
    this.checkTypeMeta(body);
    this.checkFields(body, ctx);
    const wantRv = body.metadata?.resourceVersion as string | undefined;
    for (let attempt = 0; attempt < updateRetriesMax; attempt++) {
      const cur = await this.read(namespace, name);
      if (!cur) throw this.notFound(name);
      if (wantRv !== undefined && wantRv !== '' && wantRv !== String(cur.modRevision)) {
        throw errors.conflict(this.def.group, this.def.resource, name, 'the object has been modified; please apply your changes to the latest version and try again');
      }
      const next = await this.prepareUpdate(namespace, name, cur.obj, body, ctx, subresource);
      const out = await this.commit(namespace, cur, next, ctx);
      if (out) return out;
      if (wantRv) break;
    }
    throw errors.conflict(this.def.group, this.def.resource, name, 'the object has been modified; please apply your changes to the latest version and try again');
  }

  /**
   * Read-modify-write: `mutate` gets a copy of the current object (null if
   * absent, when allowCreate) and returns the next full object. Used by PATCH,
   * apply, scale and binding.
   */
  async guaranteedUpdate(namespace: string, name: string, ctx: OpContext, subresource: '' | 'status',
    mutate: (cur: KObject | null) => Promise<KObject> | KObject, opts: { allowCreate?: boolean; skipUpdateRules?: boolean; finalize?: boolean } = {}): Promise<{ obj: KObject; created: boolean }> {
    for (let attempt = 0; attempt < updateRetriesMax; attempt++) {
      const cur = await this.read(namespace, name);
      if (!cur) {
        if (!opts.allowCreate) throw this.notFound(name);
        const body = await mutate(null);
        try {
          return { obj: await this.create(namespace, body, ctx), created: true };
        } catch (e) {
          if (e instanceof StatusError && e.reason === 'AlreadyExists') continue;
          throw e;
        }
      }
      const next = await mutate(clone(cur.obj));
      this.checkTypeMeta(next);
      this.checkFields(next, ctx);
      const wantRv = next.metadata?.resourceVersion;
      if (wantRv !== undefined && wantRv !== '' && wantRv !== String(cur.modRevision)) {
        throw errors.conflict(this.def.group, this.def.resource, name, 'the object has been modified; please apply your changes to the latest version and try again');
      }
      const prepared = opts.finalize ? next : await this.prepareUpdate(namespace, name, cur.obj, next, ctx, subresource, opts.skipUpdateRules);
      const out = await this.commit(namespace, cur, prepared, ctx);
      if (out) return { obj: out, created: false };
    }
    throw errors.conflict(this.def.group, this.def.resource, name, 'the object has been modified; please apply your changes to the latest version and try again');
  }

  /**
   * DELETE: immediate when nothing holds the object; otherwise marks it with
   * deletionTimestamp (finalizers, or graceful deletion of a pod on a node)
   * and the last finalizer removal (or the grace-0 delete) removes it.
   * Returns the object and whether it is gone.
   */
  async delete(namespace: string, name: string, opts: DeleteOptionsBody, ctx: OpContext): Promise<{ obj: KObject; deleted: boolean }> {
    for (let attempt = 0; attempt < updateRetriesMax; attempt++) {
      const cur = await this.read(namespace, name);
      if (!cur) throw this.notFound(name);
      const obj = cur.obj;
      const m = obj.metadata!;
      if (opts.preconditions?.uid && opts.preconditions.uid !== m.uid) {
        throw errors.conflict(this.def.group, this.def.resource, name, `Precondition failed: UID in precondition: ${opts.preconditions.uid}, UID in object meta: ${m.uid}`);
      }
      if (opts.preconditions?.resourceVersion && opts.preconditions.resourceVersion !== m.resourceVersion) {
        throw errors.conflict(this.def.group, this.def.resource, name, `Precondition failed: ResourceVersion in precondition: ${opts.preconditions.resourceVersion}, ResourceVersion in object meta: ${m.resourceVersion}`);
      }
      await this.deps.admission.admit('DELETE', this.def, '', null, obj, ctx);
      await this.deps.admission.validate('DELETE', this.def, '', null, obj, ctx);
      const grace = this.def.gracePeriodSeconds?.(obj, opts.gracePeriodSeconds) ?? 0;
      const finalizers: string[] = [...(m.finalizers ?? [])];
      if (!m.deletionTimestamp) {
        if (opts.propagationPolicy === 'Foreground' && !finalizers.includes('foregroundDeletion')) finalizers.push('foregroundDeletion');
        if (opts.propagationPolicy === 'Orphan' && !finalizers.includes('orphan')) finalizers.push('orphan');
      }
      const key = Buffer.from(this.key(namespace, name));
      const held = this.def.holdsDeletion?.(obj) ?? false;
      if (finalizers.length === 0 && !held && (grace === 0 || (m.deletionTimestamp && opts.gracePeriodSeconds === 0))) {
        if (ctx.dryRun) return { obj, deleted: true };
        const r = await this.store.txn({
          compare: [{ key, target: 'mod', result: 'equal', number: cur.modRevision }],
          success: [{ op: 'deleteRange', key }],
          failure: [],
        });
        if (!r.succeeded) continue;
        m.resourceVersion = String(r.header.revision);
        return { obj, deleted: true };
      }
      if (m.deletionTimestamp && (m.deletionGracePeriodSeconds ?? 0) <= grace) return { obj, deleted: false }; // already being deleted
      const next = clone(obj);
      next.metadata!.deletionTimestamp = m.deletionTimestamp ?? rfc3339(ctx.now + grace * 1000);
      next.metadata!.deletionGracePeriodSeconds = grace;
      next.metadata!.finalizers = finalizers.length ? finalizers : undefined;
      if (!finalizers.length) delete next.metadata!.finalizers;
      this.def.prepareForDelete?.(next);
      if (ctx.dryRun) return { obj: next, deleted: false };
      const r = await this.store.txn({
        compare: [{ key, target: 'mod', result: 'equal', number: cur.modRevision }],
        success: [{ op: 'put', key, value: this.encode(key, next).value }],
        failure: [],
      });
      if (!r.succeeded) continue;
      next.metadata!.resourceVersion = String(r.header.revision);
      return { obj: next, deleted: false };
    }
    throw errors.conflict(this.def.group, this.def.resource, name, 'the object has been modified; please apply your changes to the latest version and try again');
  }

  /** The store's key range for a namespace (or everything). */
  range(namespace?: string): { key: Buffer; rangeEnd: Buffer } {
    const key = Buffer.from(namespace !== undefined && this.def.namespaced ? `${this.prefix}${namespace}/` : this.prefix);
    return { key, rangeEnd: prefixEnd(key) };
  }

  /** Decodes a raw store kv (paged lists read the store directly). */
  decodeKv(key: Buffer, value: Buffer, modRevision: number): KObject {
    return this.decode(key.toString(), value, modRevision);
  }
}

function om(o: KObject): Record<string, any> {
  return o.metadata ?? {};
}
