// LIST and WATCH of one resource: query parameters to a filter, the
// resourceVersion rules, paging with continue tokens, and the serialized
// list body (the cached per-object JSON concatenated, so a list costs no
// per-object stringify once objects are cached).
//
// resourceVersion semantics (Kubernetes API concepts, "Resource versions"):
//   unset   -> consistent: the cache first catches up with the store's current revision
//   "0"     -> any: whatever the cache holds now
//   N       -> not older than N (resourceVersionMatch NotOlderThan or unset): waits for N
//   N Exact -> exactly N: read from the store at revision N
// A continue token carries the revision of the first page and the next key;
// later pages read the store at that revision, and once it is compacted the
// token has expired (410).
import { isKeelsonError } from '../../store/store.ts';
import type { Store } from '../../store/store.ts';
import { errors, StatusError } from '../errors.ts';
import { ChunkStream } from '../http/stream.ts';
import type { KObject } from '../resources/types.ts';
import { matchFields, matchLabels, parseFieldSelector, parseLabelSelector, pinnedField } from '../selectors.ts';
import { jsonOf, WatchTooOld, type CachedObject, type WatchFilter } from '../watchcache/cache.ts';
import type { Registry } from './registry.ts';

/** Items one store read fetches while filling a page from a continue token. */
const pageReadKeysMax = 1000;
/** Largest page a client may ask for; bigger limits are capped. */
const listLimitMax = 100_000;

export interface ListQuery {
  labelSelector?: string | null;
  fieldSelector?: string | null;
  limit?: string | null;
  continue?: string | null;
  resourceVersion?: string | null;
  resourceVersionMatch?: string | null;
}

function metadataFields(reg: Registry): Set<string> {
  return new Set(['metadata.name', 'metadata.namespace', ...Object.keys(reg.def.fields ?? {})]);
}

export function buildFilter(reg: Registry, namespace: string | undefined, q: ListQuery): WatchFilter {
  const labels = parseLabelSelector(q.labelSelector);
  const fields = parseFieldSelector(q.fieldSelector, metadataFields(reg), reg.def.kind);
  const fieldFns = reg.def.fields ?? {};
  const ns = namespace ?? (reg.def.namespaced ? pinnedField(fields, 'metadata.namespace') : undefined);
  const fieldsOf = (o: CachedObject) => (f: string) =>
    f === 'metadata.name' ? o.name : f === 'metadata.namespace' ? o.namespace : fieldFns[f]!(o.obj);
  return {
    namespace: reg.def.namespaced ? ns : undefined,
    matches: (o) => (labels.length === 0 || matchLabels(labels, o.obj.metadata?.labels)) && (fields.length === 0 || matchFields(fields, fieldsOf(o))),
  };
}

function parseRv(s: string, what = 'resourceVersion'): number {
  if (!/^\d+$/.test(s)) throw errors.badRequest(`invalid ${what}: "${s}"`);
  return Number(s);
}

interface ContinueToken { rv: number; start: string }

function encodeContinue(t: ContinueToken): string {
  return Buffer.from(JSON.stringify({ v: 'keelson/1', rv: t.rv, start: t.start })).toString('base64url');
}

function decodeContinue(s: string): ContinueToken {
  try {
    const t = JSON.parse(Buffer.from(s, 'base64url').toString());
    if (t.v !== 'keelson/1' || !Number.isInteger(t.rv) || typeof t.start !== 'string') throw new Error('bad');
    return { rv: t.rv, start: t.start };
  } catch {
    throw errors.badRequest('continue key is not valid: malformed continue token');
  }
}

const expiredContinue = () => new StatusError(410, 'Expired', 'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.');

export interface ListResult {
  rev: number;
  items: CachedObject[];
  continueToken?: string;
  remainingItemCount?: number;
}

async function waitCache(reg: Registry, fn: () => Promise<unknown>): Promise<void> {
  try {
    await fn();
  } catch (e) {
    if (e instanceof StatusError) throw e;
    throw new StatusError(504, 'Timeout', `Too large resource version: the watch cache of ${reg.def.resource} did not catch up in time`, { retryAfterSeconds: 1 });
  }
}

/** Reads a page from the store at `rev` starting at key `start` (inclusive). */
async function storePage(store: Store, reg: Registry, ns: string | undefined, rev: number, start: string, limit: number, filter: WatchFilter): Promise<ListResult> {
  const { rangeEnd } = reg.range(ns);
  const items: CachedObject[] = [];
  let from = Buffer.from(start);
  for (;;) {
    let r;
    try {
      r = await store.range(from, { rangeEnd, revision: rev, limit: pageReadKeysMax });
    } catch (e) {
      if (isKeelsonError(e) && (e as { code: string }).code === 'compacted') throw expiredContinue();
      throw e;
    }
    for (const kv of r.kvs) {
      const obj = reg.decodeKv(kv.key, kv.value, kv.modRevision);
      const c: CachedObject = { key: kv.key.toString(), namespace: obj.metadata?.namespace ?? '', name: obj.metadata?.name ?? '', obj, rev: kv.modRevision };
      if (!filter.matches(c)) continue;
      if (limit > 0 && items.length === limit) return { rev, items, continueToken: encodeContinue({ rv: rev, start: c.key }) };
      items.push(c);
    }
    if (!r.more || r.kvs.length === 0) return { rev, items };
    from = Buffer.concat([r.kvs[r.kvs.length - 1]!.key, Buffer.from([0])]);
  }
}

export async function list(reg: Registry, store: Store, namespace: string | undefined, q: ListQuery): Promise<ListResult> {
  const filter = buildFilter(reg, namespace, q);
  let limit = 0;
  if (q.limit) {
    limit = parseRv(q.limit, 'limit');
    if (limit > listLimitMax) limit = listLimitMax;
  }
  if (q.continue) {
    const t = decodeContinue(q.continue);
    return storePage(store, reg, filter.namespace, t.rv, t.start, limit, filter);
  }
  const rvs = q.resourceVersion ?? '';
  const match = q.resourceVersionMatch ?? '';
  if (match && !['Exact', 'NotOlderThan'].includes(match)) throw errors.badRequest(`resourceVersionMatch: Unsupported value: "${match}": supported values: "Exact", "NotOlderThan"`);
  if (match && rvs === '') throw errors.badRequest('resourceVersionMatch is forbidden unless resourceVersion is provided');
  if (match === 'Exact') {
    const rev = parseRv(rvs);
    if (rev === 0) throw errors.badRequest('resourceVersionMatch "Exact" is forbidden for resourceVersion "0"');
    return storePage(store, reg, filter.namespace, rev, reg.range(filter.namespace).key.toString(), limit, filter);
  }
  if (rvs === '') await waitCache(reg, () => reg.cache.syncToStore());
  else if (rvs !== '0') { const rev = parseRv(rvs); await waitCache(reg, () => reg.cache.waitFor(rev)); }
  const rev = reg.cache.rev;
  const all = reg.cache.list(filter.namespace);
  const items: CachedObject[] = [];
  for (let i = 0; i < all.length; i++) {
    const c = all[i]!;
    if (!filter.matches(c)) continue;
    if (limit > 0 && items.length === limit) {
      return { rev, items, continueToken: encodeContinue({ rv: rev, start: c.key }), remainingItemCount: !q.labelSelector && !q.fieldSelector ? all.length - i : undefined };
    }
    items.push(c);
  }
  return { rev, items };
}

/** The JSON body of a list response, from the cached object JSON. */
export function listBody(reg: Registry, r: ListResult): string {
  const meta: Record<string, unknown> = { resourceVersion: String(r.rev) };
  if (r.continueToken) meta.continue = r.continueToken;
  if (r.remainingItemCount !== undefined) meta.remainingItemCount = r.remainingItemCount;
  let s = `{"kind":"${reg.def.kind}List","apiVersion":"${reg.apiVersion}","metadata":${JSON.stringify(meta)},"items":[`;
  for (let i = 0; i < r.items.length; i++) s += (i ? ',' : '') + jsonOf(r.items[i]!);
  return s + ']}';
}

export interface WatchQuery extends ListQuery {
  allowWatchBookmarks?: string | null;
  sendInitialEvents?: string | null;
}

/** Default watcher queue bound, in serialized events (WatchCacheOptions.watcherBufferEventsMax overrides it). */
export const watcherBufferEventsMax = 10_000;

/**
 * Starts a watch: returns the stream the handler sends. A too-old
 * resourceVersion is answered, as Kubernetes does, with a 200 stream holding
 * one ERROR event (410 Expired) so clients relist.
 */
export async function watch(reg: Registry, namespace: string | undefined, q: WatchQuery): Promise<ChunkStream> {
  const filter = buildFilter(reg, namespace, q);
  const sink = new ChunkStream(reg.watcherBufferEventsMax ?? watcherBufferEventsMax);
  const rvs = q.resourceVersion ?? '';
  const bookmarks = q.allowWatchBookmarks === 'true';
  const initial = q.sendInitialEvents === 'true';
  let from: number | null = null;
  if (rvs !== '' && rvs !== '0') from = parseRv(rvs);
  if (initial) {
    if (rvs === '') await waitCache(reg, () => reg.cache.syncToStore());
    else if (from !== null) await waitCache(reg, () => reg.cache.waitFor(from!));
  }
  try {
    if (from !== null && from > reg.cache.rev) await waitCache(reg, () => reg.cache.waitFor(from!));
    reg.cache.watch(initial ? null : from, filter, sink, { initialEvents: initial || from === null && rvs === '0' || from === null, bookmarks });
    if (initial && bookmarks) {
      sink.push(Buffer.from(`{"type":"BOOKMARK","object":{"kind":"${reg.def.kind}","apiVersion":"${reg.apiVersion}","metadata":{"resourceVersion":"${reg.cache.rev}","annotations":{"k8s.io/initial-events-end":"true"}}}}\n`));
    }
  } catch (e) {
    if (!(e instanceof WatchTooOld)) throw e;
    const status = new StatusError(410, 'Expired', `too old resource version: ${e.requested} (${e.oldest})`).toStatus();
    sink.push(Buffer.from(`{"type":"ERROR","object":${JSON.stringify(status)}}\n`));
    sink.end();
  }
  return sink;
}

export type { KObject };
