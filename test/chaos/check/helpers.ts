// Builders for hand-written histories in the checker tests.
import type { History, KvOp, LeaseRec, WatchEventRec, WatchSessionRec } from '../../../src/chaos/history.ts';

let nextId = 1;

/** An op: [invoke, return] in ms; return Infinity = unknown. */
export function op(kind: KvOp['kind'], key: string, invokeMs: number, returnMs: number, extra: Partial<KvOp> = {}): KvOp {
  const outcome = extra.outcome ?? (returnMs === Infinity ? 'unknown' : 'ok');
  return { id: nextId++, client: extra.client ?? 0, kind, key, invokeMs, returnMs, outcome, ...extra };
}
export const put = (key: string, value: string, t0: number, t1: number, extra: Partial<KvOp> = {}) => op('put', key, t0, t1, { value, ...extra });
export const get = (key: string, readValue: string | null, t0: number, t1: number, extra: Partial<KvOp> = {}) => op('get', key, t0, t1, { readValue, ...extra });
export const del = (key: string, deleted: number, t0: number, t1: number, extra: Partial<KvOp> = {}) => op('delete', key, t0, t1, { deleted, ...extra });
export const cas = (key: string, expect: string | null, value: string, succeeded: boolean, t0: number, t1: number, extra: Partial<KvOp> = {}) =>
  op('cas', key, t0, t1, { expect, value, succeeded, ...extra });

export function history(parts: Partial<History>): History {
  return { kv: [], watches: [], leases: [], faults: [], prefix: 'k', ...parts };
}

export const pe = (key: string, value: string, rev: number, prevKv?: WatchEventRec['prevKv']): WatchEventRec =>
  ({ type: 'put', key, value, modRevision: rev, ...(prevKv !== undefined ? { prevKv } : {}) });
export const de = (key: string, rev: number, prevKv?: WatchEventRec['prevKv']): WatchEventRec =>
  ({ type: 'delete', key, modRevision: rev, ...(prevKv !== undefined ? { prevKv } : {}) });

/** A watch session over the whole 'k' prefix; responses = lists of events. */
export function session(watcherId: number, startRevision: number, responses: WatchEventRec[][], extra: Partial<WatchSessionRec> = {}): WatchSessionRec {
  return {
    watcherId, session: extra.session ?? 0, key: 'k', rangeEnd: 'l', startRevision, prevKv: extra.prevKv ?? false, openedMs: 0,
    responses: responses.map((events, i) => ({ atMs: i * 10, events })), end: 'closed', ...extra,
  };
}

export function lease(id: number, ttlS: number, grantInvokeMs: number, grantReturnMs: number, keys: string[], extra: Partial<LeaseRec> = {}): LeaseRec {
  return { id, ttlS, grantInvokeMs, grantReturnMs, keepAlives: [], keys, ...extra };
}
