// Walks over objects guided by the merge-key table, for server-side apply and
// managed-fields tracking:
// - fieldSetOf: the set of fields an object (an applied configuration) sets;
// - mergeApplied: the live object with an applied configuration merged in
//   (maps by field, associative lists and sets by key, everything else
//   replaced);
// - compareObjects: which fields one object added, modified or removed
//   relative to another;
// - pruneFields: removes from an object the fields of a set.
//
// Lists in live objects may break the table's rules (a duplicate key, an
// item missing its key) because they were written through a path that does
// not check them; such a list is treated as atomic rather than failing the
// request. An applied configuration must obey the rules: violations there are
// the applier's mistake and become a 422.
import type { StatusCause } from 'kubernetes-types/meta/v1.js';
import { compareFieldsV1Keys, FieldSet, fieldKey, itemKey, valueKey } from './fieldset.ts';
import { cloneJson, getKey, hasKey, isObject, jsonEqual, patchDepthMax, setKey, type JsonObject } from './json.ts';
import { childNode, type ListSchema, type TypeNode } from './schema.ts';
import { errors } from '../errors.ts';

export class ListKeyError extends Error {
  constructor(readonly statusCause: StatusCause) {
    super(statusCause.message);
  }
}

function depthCheck(depth: number): void {
  if (depth > patchDepthMax) throw errors.badRequest(`the object nests deeper than ${patchDepthMax} levels`);
}

function isPrimitive(v: unknown): boolean {
  return v === null || typeof v !== 'object';
}

/**
 * The path-element keys of a list's items, or a cause saying why the list
 * cannot be keyed. Only called for `set` and `map` lists.
 */
export function listItemKeys(list: unknown[], ls: ListSchema, where: string): string[] | StatusCause {
  const seen = new Set<string>();
  const out: string[] = [];
  for (let i = 0; i < list.length; i++) {
    const item = list[i];
    let key: string;
    if (ls.ssa === 'set') {
      if (!isPrimitive(item)) return { reason: 'FieldValueInvalid', field: `${where}[${i}]`, message: 'a set may hold only primitive values' };
      key = valueKey(item);
    } else {
      if (!isObject(item)) return { reason: 'FieldValueInvalid', field: `${where}[${i}]`, message: 'an associative list may hold only objects' };
      const keys: Record<string, unknown> = {};
      for (const k of ls.ssaKeys ?? []) {
        const v = item[k] ?? ls.keyDefaults?.[k];
        if (v === undefined || v === null) {
          return { reason: 'FieldValueRequired', field: `${where}[${i}].${k}`, message: `associative list with keys has an element that omits key field "${k}"` };
        }
        if (!isPrimitive(v)) return { reason: 'FieldValueInvalid', field: `${where}[${i}].${k}`, message: `key field "${k}" must be a primitive value` };
        keys[k] = v;
      }
      key = itemKey(keys);
    }
    if (seen.has(key)) return { reason: 'FieldValueDuplicate', field: `${where}[${i}]`, message: `duplicate entry for key ${key.slice(2)}` };
    seen.add(key);
    out.push(key);
  }
  return out;
}

function keyedList(t: TypeNode, v: unknown[], where: string, strict: boolean): string[] | undefined {
  const ls = t.list;
  if (!ls || ls.ssa === 'atomic') return undefined;
  const keys = listItemKeys(v, ls, where);
  if (Array.isArray(keys)) return keys;
  if (strict) throw new ListKeyError(keys);
  return undefined;
}

/**
 * The fields `v` sets: every scalar and atomic value is a member, every item
 * of an associative list or set is a member, a granular map is only the sum
 * of its fields (except that an empty or null map value is owned as a leaf).
 * `strict` makes an unkeyable list a ListKeyError instead of an atomic leaf.
 */
export function fieldSetOf(v: unknown, t: TypeNode, strict: boolean, where = '', depth = 0, out = new FieldSet()): FieldSet {
  depthCheck(depth);
  if (isObject(v)) {
    if (t.atomic) {
      out.member = true;
      return out;
    }
    const keys = Object.keys(v).filter((k) => v[k] !== undefined);
    // An empty map is owned as a leaf (so applying `labels: {}` claims it), but the object itself is never a field.
    if (keys.length === 0 && depth > 0) out.member = true;
    for (const k of keys) fieldSetOf(v[k], childNode(t, k), strict, `${where}.${k}`, depth + 1, out.child(fieldKey(k)));
    return out;
  }
  if (Array.isArray(v)) {
    const keys = keyedList(t, v, where, strict);
    if (!keys) {
      out.member = true;
      return out;
    }
    const elem = t.list?.elem ?? {};
    for (let i = 0; i < v.length; i++) {
      const c = out.child(keys[i]!);
      c.member = true;
      if (t.list?.ssa === 'map') fieldSetOf(v[i], elem, strict, `${where}[${i}]`, depth + 1, c);
    }
    return out;
  }
  out.member = true;
  return out;
}

/** Drops null-valued fields: in an applied configuration a null means "not set". */
export function stripNulls(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(stripNulls);
  if (isObject(v)) {
    const out: JsonObject = {};
    for (const k of Object.keys(v)) if (v[k] !== null && v[k] !== undefined) setKey(out, k, stripNulls(v[k]));
    return out;
  }
  return v;
}

/**
 * Merges two keyed lists. Items in both are merged in the order the applied
 * list gives them; items only in the live list stay where they were relative
 * to their neighbours; new items are placed as the applied list places them.
 */
function orderedMerge(lKeys: string[], rKeys: string[], merge: (key: string) => unknown): unknown[] {
  const lSet = new Set(lKeys);
  const rSet = new Set(rKeys);
  const shared = rKeys.filter((k) => lSet.has(k));
  let sharedAt = 0;
  const done = new Set<string>();
  const out: unknown[] = [];
  let l = 0;
  let r = 0;
  // Each pass consumes at least one item of either list, so the loop is bounded by their lengths.
  while (l < lKeys.length || r < rKeys.length) {
    if (l < lKeys.length && r < rKeys.length) {
      const lk = lKeys[l]!;
      if (lk === rKeys[r]) {
        done.add(lk);
        out.push(merge(lk));
        l++;
        r++;
        sharedAt++;
        continue;
      }
      if (rSet.has(lk) && sharedAt < shared.length && shared[sharedAt] !== lk) {
        l++;
        continue;
      }
    }
    if (l < lKeys.length) {
      const lk = lKeys[l]!;
      if (!rSet.has(lk)) {
        out.push(merge(lk));
        l++;
        continue;
      }
      if (done.has(lk)) {
        l++;
        continue;
      }
    }
    if (r < rKeys.length) {
      const rk = rKeys[r]!;
      done.add(rk);
      out.push(merge(rk));
      r++;
      if (sharedAt < shared.length && shared[sharedAt] === rk) sharedAt++;
    }
  }
  return out;
}

/** The live object with the applied configuration merged in. Neither input is changed. */
export function mergeApplied(lhs: unknown, rhs: unknown, t: TypeNode, depth = 0): unknown {
  depthCheck(depth);
  if (isObject(rhs)) {
    if (t.atomic || !isObject(lhs)) return stripNulls(cloneJson(rhs));
    const out: JsonObject = { ...lhs };
    for (const k of Object.keys(rhs)) {
      const rv = rhs[k];
      if (rv === undefined) continue;
      if (rv === null) delete out[k];
      else setKey(out, k, mergeApplied(hasKey(lhs, k) ? lhs[k] : undefined, rv, childNode(t, k), depth + 1));
    }
    return out;
  }
  if (Array.isArray(rhs)) {
    const ls = t.list;
    if (!ls || ls.ssa === 'atomic' || !Array.isArray(lhs)) return stripNulls(cloneJson(rhs));
    const lKeys = keyedList(t, lhs, '', false);
    const rKeys = keyedList(t, rhs, '', false);
    if (!lKeys || !rKeys) return stripNulls(cloneJson(rhs));
    const lByKey = new Map(lKeys.map((k, i) => [k, lhs[i]]));
    const rByKey = new Map(rKeys.map((k, i) => [k, rhs[i]]));
    const elem = ls.elem ?? {};
    return orderedMerge(lKeys, rKeys, (key) => {
      const lv = lByKey.get(key);
      const rv = rByKey.get(key);
      if (rv === undefined) return lv;
      if (lv === undefined || ls.ssa === 'set') return stripNulls(cloneJson(rv));
      return mergeApplied(lv, rv, elem, depth + 1);
    });
  }
  return rhs;
}

export interface Comparison {
  added: FieldSet;
  modified: FieldSet;
  removed: FieldSet;
}

/**
 * What `rhs` changed relative to `lhs`, as field sets. Leaves are added,
 * removed or modified; a map, list or list item that appears or disappears is
 * itself added or removed (so its owner is recorded for it, as Kubernetes
 * shows with `.`), except structs that are always present (TypeNode.struct).
 */
export function compareObjects(lhs: unknown, rhs: unknown, t: TypeNode): Comparison {
  const c: Comparison = { added: new FieldSet(), modified: new FieldSet(), removed: new FieldSet() };
  compareAt(lhs, rhs, t, c, [], 0);
  return c;
}

// The walk keeps one path stack (pushed and popped) and no per-node closures:
// it runs on every write, so it allocates as little as it can.

function at(set: FieldSet, path: string[]): FieldSet {
  let n = set;
  for (const k of path) n = n.child(k);
  return n;
}

function compareLeaf(lhs: unknown, rhs: unknown, c: Comparison, path: string[]): void {
  if (lhs === undefined) at(c.added, path).member = true;
  else if (rhs === undefined) at(c.removed, path).member = true;
  else if (!jsonEqual(lhs, rhs)) at(c.modified, path).member = true;
}

/** A map, list or list item that appears or disappears is itself added or removed. */
function compareContainer(lhs: unknown, rhs: unknown, t: TypeNode, c: Comparison, path: string[]): void {
  if (t.struct || path.length === 0) return;
  if (lhs === undefined) at(c.added, path).member = true;
  else if (rhs === undefined) at(c.removed, path).member = true;
}

const EMPTY_OBJECT: JsonObject = Object.freeze({}) as JsonObject;
const EMPTY_LIST: unknown[] = Object.freeze([]) as unknown as unknown[];

function definedKeys(o: JsonObject): string[] {
  const out: string[] = [];
  for (const k in o) if (Object.prototype.hasOwnProperty.call(o, k) && o[k] !== undefined) out.push(k);
  return out;
}

function compareAt(lhs: unknown, rhs: unknown, t: TypeNode, c: Comparison, path: string[], depth: number): void {
  depthCheck(depth);
  if (lhs === undefined && rhs === undefined) return;
  const lObj = lhs === undefined || isObject(lhs);
  const rObj = rhs === undefined || isObject(rhs);
  if (lObj && rObj) {
    const l = (lhs ?? EMPTY_OBJECT) as JsonObject;
    const r = (rhs ?? EMPTY_OBJECT) as JsonObject;
    const lk = definedKeys(l);
    const rk = definedKeys(r);
    if (lk.length === 0 && rk.length === 0 && t.struct) return; // An always-present struct: absent and empty are the same.
    if (t.atomic || (lk.length === 0 && rk.length === 0)) return compareLeaf(lhs, rhs, c, path);
    for (const k of lk) {
      path.push(fieldKey(k));
      compareAt(l[k], getKey(r, k), childNode(t, k), c, path, depth + 1);
      path.pop();
    }
    for (const k of rk) {
      if (getKey(l, k) !== undefined) continue;
      path.push(fieldKey(k));
      compareAt(undefined, r[k], childNode(t, k), c, path, depth + 1);
      path.pop();
    }
    return compareContainer(lhs, rhs, t, c, path);
  }
  const lArr = lhs === undefined || Array.isArray(lhs);
  const rArr = rhs === undefined || Array.isArray(rhs);
  if (!lArr || !rArr) return compareLeaf(lhs, rhs, c, path);
  const l = (lhs ?? EMPTY_LIST) as unknown[];
  const r = (rhs ?? EMPTY_LIST) as unknown[];
  if (l.length === 0 && r.length === 0) return t.struct ? undefined : compareLeaf(lhs, rhs, c, path);
  const lKeys = keyedList(t, l, '', false);
  const rKeys = keyedList(t, r, '', false);
  if (!lKeys || !rKeys) return compareLeaf(lhs, rhs, c, path);
  const isSet = t.list?.ssa === 'set';
  const elem = isSet ? DEFAULT_ELEM : (t.list?.elem ?? DEFAULT_ELEM);
  const rByKey = new Map<string, unknown>();
  for (let i = 0; i < rKeys.length; i++) rByKey.set(rKeys[i]!, r[i]);
  const lSeen = new Set<string>();
  for (let i = 0; i < lKeys.length; i++) {
    const k = lKeys[i]!;
    lSeen.add(k);
    compareItem(l[i], rByKey.get(k), isSet, elem, c, path, k, depth);
  }
  for (let i = 0; i < rKeys.length; i++) {
    const k = rKeys[i]!;
    if (!lSeen.has(k)) compareItem(undefined, r[i], isSet, elem, c, path, k, depth);
  }
  compareContainer(lhs, rhs, t, c, path);
}

const DEFAULT_ELEM: TypeNode = {};

/**
 * compareObjects({}, rhs, t).added as FieldsV1 (undefined when nothing is
 * added), built straight from rhs: a create's managedFields without the
 * FieldSet tree, the path stack and the second walk that renders it. It
 * follows compareAt's rules for an absent left-hand side case by case (a test
 * checks the two agree on every built-in kind).
 */
export function addedFieldsV1(rhs: unknown, t: TypeNode): JsonObject | undefined {
  return addedAt(rhs, t, 0);
}

/**
 * The empty FieldsV1 node (a member with nothing below it, and every "."
 * entry), one frozen object for all of them: a pod's FieldsV1 has dozens,
 * and each created object stays in the watch cache. Nothing changes a
 * FieldsV1 document in place (they are read, or rebuilt from FieldSets); a
 * copy (cloneJson) is an ordinary object again.
 */
const LEAF: JsonObject = Object.freeze({}) as JsonObject;

/** A FieldsV1 node from its member flag and (key, node) children. */
function fieldsNode(member: boolean, children: [string, JsonObject][]): JsonObject | undefined {
  if (children.length === 0) return member ? LEAF : undefined;
  if (children.length > 1) children.sort((a, b) => compareFieldsV1Keys(a[0], b[0]));
  const out: JsonObject = {};
  if (member) out['.'] = LEAF;
  for (const [k, v] of children) setKey(out, k, v);
  return out;
}

/** A FieldsV1 node that is also a member itself (a list item): its '.' entry first. */
function asMember(n: JsonObject | undefined): JsonObject {
  if (n === undefined) return LEAF;
  if (hasKey(n, '.')) return n;
  const keys = Object.keys(n);
  if (keys.length === 0) return n;
  const out: JsonObject = { '.': LEAF };
  for (const k of keys) setKey(out, k, n[k]);
  return out;
}

function addedAt(r: unknown, t: TypeNode, depth: number): JsonObject | undefined {
  depthCheck(depth);
  if (r === undefined) return undefined;
  if (isObject(r)) {
    const rk = definedKeys(r);
    if (rk.length === 0 && t.struct) return undefined;
    if (t.atomic || rk.length === 0) return LEAF;
    const children: [string, JsonObject][] = [];
    for (const k of rk) {
      const c = addedAt(r[k], childNode(t, k), depth + 1);
      if (c !== undefined) children.push([fieldKey(k), c]);
    }
    // A map that appears is itself added; a struct, or the object itself, is not.
    return fieldsNode(!(t.struct || depth === 0), children);
  }
  if (Array.isArray(r)) {
    if (r.length === 0) return t.struct ? undefined : LEAF;
    const keys = keyedList(t, r, '', false);
    if (!keys) return LEAF;
    const isSet = t.list?.ssa === 'set';
    const elem = isSet ? DEFAULT_ELEM : (t.list?.elem ?? DEFAULT_ELEM);
    const children: [string, JsonObject][] = [];
    for (let i = 0; i < keys.length; i++) children.push([keys[i]!, isSet ? LEAF : asMember(addedAt(r[i], elem, depth + 1))]);
    return fieldsNode(!(t.struct || depth === 0), children);
  }
  return LEAF;
}

function compareItem(lv: unknown, rv: unknown, isSet: boolean, elem: TypeNode, c: Comparison, path: string[], key: string, depth: number): void {
  path.push(key);
  if (!isSet) compareAt(lv, rv, elem, c, path, depth + 1);
  if (lv === undefined) at(c.added, path).member = true;
  else if (rv === undefined) at(c.removed, path).member = true;
  path.pop();
}

/**
 * Removes from `obj` (in place) the fields of `remove`, except where `keep`
 * still owns the field or something below it. A list item's key fields are
 * never removed from an item that stays. A map or list emptied by the removal
 * is removed too (it had only the removed fields), unless someone owns it as a
 * value (applied `data: {}`).
 */
export function pruneFields(obj: JsonObject, remove: FieldSet, keep: FieldSet, t: TypeNode): void {
  pruneAt(obj, remove, keep, t, undefined, 0);
}

/** Returns true when `v` lost entries and is now empty. */
function pruneAt(v: unknown, remove: FieldSet, keep: FieldSet | undefined, t: TypeNode, protectedKeys: string[] | undefined, depth: number): boolean {
  depthCheck(depth);
  if (isObject(v)) {
    let removed = false;
    for (const [key, rm] of remove.children) {
      if (!key.startsWith('f:')) continue;
      const name = key.slice(2);
      if (!hasKey(v, name) || protectedKeys?.includes(name)) continue;
      const kp = keep?.children.get(key);
      if (rm.member && (!kp || kp.isEmpty())) {
        delete v[name];
        removed = true;
      } else if (pruneAt(v[name], rm, kp, childNode(t, name), undefined, depth + 1) && !kp?.member) {
        // Emptied by the removal and owned by nobody as a value of its own.
        delete v[name];
        removed = true;
      }
    }
    return removed && Object.keys(v).length === 0;
  }
  if (Array.isArray(v)) {
    const keys = keyedList(t, v, '', false);
    if (!keys) return false;
    const drop = new Set<number>();
    const itemProtected = t.list?.ssa === 'map' ? t.list.ssaKeys : undefined;
    keys.forEach((k, i) => {
      const rm = remove.children.get(k);
      if (!rm) return;
      const kp = keep?.children.get(k);
      if (rm.member && (!kp || kp.isEmpty())) drop.add(i);
      else if (t.list?.ssa === 'map') pruneAt(v[i], rm, kp, t.list.elem ?? {}, itemProtected, depth + 1);
    });
    if (drop.size === 0) return false;
    const rest = v.filter((_, i) => !drop.has(i));
    v.length = 0;
    v.push(...rest);
    return v.length === 0;
  }
  return false;
}
