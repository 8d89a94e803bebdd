// Strategic merge patch: a JSON merge patch that knows, from the merge-key
// table (schema.ts), which lists are merged by a key instead of replaced.
//
// The patch is walked together with a copy of the object:
// - maps merge key by key; a null value deletes the key;
// - a list with a merge key merges its items by that key (a patch item with
//   `$patch: delete` removes the matching item, one with `$patch: replace`
//   makes the rest of the patch list replace the whole list); a primitive list
//   with the merge strategy (finalizers) is merged as a set; any other list is
//   replaced;
// - `$patch: replace` in a map replaces that map, `$patch: delete` deletes it;
// - `$retainKeys: [...]` clears the fields of the map not named in it (the
//   patch may set only named fields);
// - `$deleteFromPrimitiveList/<field>: [...]` removes values from a primitive
//   list;
// - `$setElementOrder/<field>: [...]` fixes the order of the merged list.
// Item order of a merged list follows the Kubernetes rule: items named by the
// patch (or by `$setElementOrder`) keep the patch's order, items only on the
// server keep theirs, and the two are interleaved by the server's order.
//
// Errors: malformed directives are 400 BadRequest; a patch the table rejects
// for a well-formed reason (lists of lists, fields outside `$retainKeys`) is
// 422 Invalid, as Kubernetes answers.
import { errors, StatusError } from '../errors.ts';
import { canonicalJson, cloneJson, decodeBody, getKey, hasKey, isObject, patchDepthMax, setKey, type JsonObject } from './json.ts';
import { childNode, schemaFor, type GroupVersionKind, type ListSchema, type TypeNode } from './schema.ts';

const directiveMarker = '$patch';
const retainKeysDirective = '$retainKeys';
const deleteFromPrimitiveListPrefix = '$deleteFromPrimitiveList/';
const setElementOrderPrefix = '$setElementOrder/';

function unprocessable(message: string): StatusError {
  return new StatusError(422, 'Invalid', message, { causes: [{ reason: 'FieldValueInvalid', field: 'patch', message }] });
}

interface Ctx {
  depth: number;
}

function descend(ctx: Ctx): Ctx {
  if (ctx.depth + 1 > patchDepthMax) throw errors.badRequest(`the strategic merge patch nests deeper than ${patchDepthMax} levels`);
  return { depth: ctx.depth + 1 };
}

/** Strategic merge patch for a built-in kind; unknown kinds are refused with 415, as Kubernetes does for custom resources. */
export function applyStrategicMergePatch(obj: object, patchBody: unknown, kind: GroupVersionKind): object {
  const schema = schemaFor(kind);
  if (!schema) {
    throw errors.unsupportedMediaType(
      `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (strategic merge patch is not supported for ${kind.group ? `${kind.kind}.${kind.group}` : kind.kind}/${kind.version})`,
    );
  }
  const patch = decodeBody(patchBody, 'strategic merge patch');
  if (!isObject(patch)) throw errors.badRequest('a strategic merge patch must be a JSON object');
  return mergeMap(cloneJson(obj) as JsonObject, patch, schema, { depth: 0 });
}

function mergeMap(original: JsonObject, patchIn: JsonObject, t: TypeNode, ctx: Ctx): JsonObject {
  const patch: JsonObject = { ...patchIn };
  if (directiveMarker in patch) {
    const d = patch[directiveMarker];
    delete patch[directiveMarker];
    if (d === 'replace') return mergeMap({}, patch, t, descend(ctx));
    if (d === 'delete') return {};
    if (d !== 'merge') throw errors.badRequest(`unknown patch type: ${JSON.stringify(d)} in map`);
  }
  applyRetainKeys(original, patch);
  applySetElementOrder(original, patch, t, ctx);

  // Deletions from primitive lists run before merges into them so that a
  // patch that both removes and adds values has one meaning.
  for (const k of Object.keys(patch)) {
    if (!k.startsWith(deleteFromPrimitiveListPrefix)) continue;
    const field = k.slice(deleteFromPrimitiveListPrefix.length);
    const values = patch[k];
    delete patch[k];
    if (!Array.isArray(values)) throw errors.badRequest(`invalid patch: ${k} must be a list of primitive values`);
    const current = getKey(original, field);
    if (current === undefined) continue;
    if (!Array.isArray(current)) throw errors.badRequest(`invalid patch: ${k} names ${field}, which is not a list`);
    const doomed = new Set(values.map(canonicalJson));
    setKey(original, field, current.filter((v) => !doomed.has(canonicalJson(v))));
  }

  for (const k of Object.keys(patch)) {
    const pv = patch[k];
    if (k.startsWith('$')) throw errors.badRequest(`unknown strategic merge patch directive: ${k}`);
    // null and `{$patch: delete}` both delete the field, whatever it held.
    if (pv === null || (isObject(pv) && pv[directiveMarker] === 'delete')) {
      delete original[k];
      continue;
    }
    if (pv === undefined) continue;
    const child = childNode(t, k);
    const ov = getKey(original, k);
    if (ov === undefined || ov === null) {
      // New subtrees are merged into an empty container so that directives
      // and nulls inside them never reach the stored object.
      if (isObject(pv)) setKey(original, k, mergeMap({}, pv, child, descend(ctx)));
      else if (Array.isArray(pv)) setKey(original, k, mergeList([], pv, child, k, descend(ctx)));
      else setKey(original, k, pv);
      continue;
    }
    if (isObject(ov) && isObject(pv)) {
      setKey(original, k, mergeMap(ov, pv, child, descend(ctx)));
    } else if (Array.isArray(ov) && Array.isArray(pv)) {
      setKey(original, k, mergeList(ov, pv, child, k, descend(ctx)));
    } else {
      // Kinds differ (or a scalar): the patch value wins, as in a merge patch.
      setKey(original, k, isObject(pv) ? mergeMap({}, pv, child, descend(ctx)) : Array.isArray(pv) ? mergeList([], pv, child, k, descend(ctx)) : pv);
    }
  }
  return original;
}

function applyRetainKeys(original: JsonObject, patch: JsonObject): void {
  if (!(retainKeysDirective in patch)) return;
  const keys = patch[retainKeysDirective];
  delete patch[retainKeysDirective];
  if (!Array.isArray(keys) || keys.some((k) => typeof k !== 'string')) {
    throw errors.badRequest('invalid patch: $retainKeys must be a list of field names');
  }
  const retained = new Set(keys as string[]);
  for (const k of Object.keys(patch)) {
    if (patch[k] === null || k.startsWith('$')) continue;
    if (!retained.has(k)) throw unprocessable(`the patch sets ${k}, which its $retainKeys list does not name`);
  }
  for (const k of Object.keys(original)) if (!retained.has(k)) delete original[k];
}

/** Merges each list named by a `$setElementOrder/<field>` directive and puts it in that order. */
function applySetElementOrder(original: JsonObject, patch: JsonObject, t: TypeNode, ctx: Ctx): void {
  for (const key of Object.keys(patch)) {
    if (!key.startsWith(setElementOrderPrefix)) continue;
    const order = patch[key];
    delete patch[key];
    const field = key.slice(setElementOrderPrefix.length);
    if (!Array.isArray(order)) throw errors.badRequest(`invalid patch: ${key} must be a list`);
    const ls = childNode(t, field).list;
    if (!ls || ls.smp !== 'merge') continue; // Ordering a replaced list is meaningless: the patch list is the order.
    const ov = getKey(original, field);
    const pv = getKey(patch, field);
    if (pv === null) continue; // The field is deleted; the loop over the patch does it.
    if ((ov !== undefined && !Array.isArray(ov)) || (pv !== undefined && !Array.isArray(pv))) {
      throw errors.badRequest(`invalid patch: ${key} names ${field}, which is not a list`);
    }
    const origList = (ov as unknown[] | undefined) ?? [];
    const patchList = pv as unknown[] | undefined;
    const mergeKey = ls.smpKey;
    if (mergeKey) {
      for (const o of order) {
        if (!isObject(o) || !hasKey(o, mergeKey)) throw errors.badRequest(`invalid patch: every item of ${key} must name its ${mergeKey}`);
      }
    }
    const orderIndex = new ListIndex(order, mergeKey);
    if (patchList) checkOrderCovers(patchList, orderIndex, key);
    let merged: unknown[];
    if (patchList === undefined) {
      if (ov === undefined) continue;
      merged = origList;
    } else merged = mergeList(origList, patchList, childNode(t, field), field, descend(ctx), true);
    const [patchItems, serverOnly] = partition(merged, orderIndex);
    setKey(original, field, normalizeElementOrder(patchItems, serverOnly, orderIndex, new ListIndex(origList, mergeKey)));
    delete patch[field];
  }
}

/** Every item the patch list sets must appear in the `$setElementOrder` list, in the same relative order. */
function checkOrderCovers(patchList: unknown[], order: ListIndex, key: string): void {
  let last = -1;
  for (const item of patchList) {
    if (isObject(item) && item[directiveMarker] !== undefined) continue;
    const i = order.indexOf(item);
    if (i < 0 || i < last) throw errors.badRequest(`invalid patch: the items of the list do not match the order in ${key}`);
    last = i;
  }
}

/**
 * Positions of a list's items by identity (the merge key's value, or the
 * whole value for primitive lists), so that merging and ordering lists costs
 * n log n rather than n squared: list sizes are bounded only by the request
 * body limit.
 */
class ListIndex {
  private readonly first = new Map<string, number>();

  constructor(list: unknown[], private readonly mergeKey: string | undefined) {
    for (let i = 0; i < list.length; i++) {
      const id = this.idOf(list[i]);
      if (id !== undefined && !this.first.has(id)) this.first.set(id, i);
    }
  }

  idOf(item: unknown): string | undefined {
    if (this.mergeKey === undefined) return canonicalJson(item);
    return isObject(item) && hasKey(item, this.mergeKey) ? canonicalJson(item[this.mergeKey]) : undefined;
  }

  indexOf(item: unknown): number {
    const id = this.idOf(item);
    return id === undefined ? -1 : (this.first.get(id) ?? -1);
  }

  has(item: unknown): boolean {
    return this.indexOf(item) >= 0;
  }
}

/** [items the index names, the others], each in list order. */
function partition(list: unknown[], index: ListIndex): [unknown[], unknown[]] {
  const named: unknown[] = [];
  const others: unknown[] = [];
  for (const x of list) (index.has(x) ? named : others).push(x);
  return [named, others];
}

function mergeList(original: unknown[], patch: unknown[], t: TypeNode, field: string, ctx: Ctx, ordered = false): unknown[] {
  const ls = t.list;
  if (!ls || ls.smp !== 'merge') return cloneJson(patch);
  // An empty patch list adds nothing to a merged list (deleting it takes a null).
  if (patch.length === 0) return cloneJson(original);
  if (patch.some((x) => Array.isArray(x)) || original.some((x) => Array.isArray(x))) {
    throw unprocessable(`lists of lists are not supported (${field})`);
  }
  const patchMaps = patch.filter(isObject).length;
  if (patchMaps !== 0 && patchMaps !== patch.length) throw errors.badRequest(`invalid patch: the items of ${field} mix maps and other values`);
  if (patchMaps === 0) return mergePrimitiveList(original, patch, field, ordered);
  return mergeMapList(original, patch as JsonObject[], ls, field, ctx, ordered);
}

function mergePrimitiveList(original: unknown[], patch: unknown[], field: string, ordered: boolean): unknown[] {
  if (original.some(isObject)) throw errors.badRequest(`invalid patch: ${field} holds maps, the patch gives primitive values`);
  const merged: unknown[] = [];
  const seen = new Set<string>();
  for (const list of [original, patch]) {
    for (const v of list) {
      const id = canonicalJson(v);
      if (seen.has(id)) continue;
      seen.add(id);
      merged.push(cloneJson(v));
    }
  }
  if (ordered) return merged;
  const patchIndex = new ListIndex(patch, undefined);
  const [patchItems, serverOnly] = partition(merged, patchIndex);
  return normalizeElementOrder(patchItems, serverOnly, patchIndex, new ListIndex(original, undefined));
}

function mergeMapList(original: unknown[], patchIn: JsonObject[], ls: ListSchema, field: string, ctx: Ctx, ordered: boolean): unknown[] {
  const mergeKey = ls.smpKey;
  if (!mergeKey) throw errors.badRequest(`cannot merge lists of maps without a merge key (${field})`);
  for (const o of original) if (!isObject(o)) throw errors.badRequest(`invalid patch: ${field} holds primitive values, the patch gives maps`);
  const patch: JsonObject[] = [];
  const doomed = new Set<string>();
  let replace = false;
  for (const item of patchIn) {
    const d = item[directiveMarker];
    if (d === undefined) {
      patch.push(item);
      continue;
    }
    if (d === 'delete') {
      if (!hasKey(item, mergeKey)) throw errors.badRequest(`invalid patch: a $patch: delete item of ${field} must name its ${mergeKey}`);
      doomed.add(canonicalJson(item[mergeKey]));
    } else if (d === 'replace') {
      replace = true;
    } else if (d === 'merge') {
      throw errors.badRequest(`invalid patch: $patch: merge is not supported as a list item (${field})`);
    } else {
      throw errors.badRequest(`unknown patch type: ${JSON.stringify(d)} in list ${field}`);
    }
  }
  const elem = ls.elem ?? {};
  if (replace) return patch.map((p) => mergeMap({}, p, elem, descend(ctx)));
  const result = (original as JsonObject[]).filter((o) => !doomed.has(canonicalJson(o[mergeKey])));
  const at = new Map<string, number>();
  result.forEach((o, i) => {
    const id = canonicalJson(o[mergeKey]);
    if (!at.has(id)) at.set(id, i);
  });
  for (const p of patch) {
    if (!hasKey(p, mergeKey)) throw errors.badRequest(`invalid patch: an item of ${field} does not contain its merge key ${mergeKey}`);
    const id = canonicalJson(p[mergeKey]);
    const i = at.get(id);
    if (i !== undefined) result[i] = mergeMap(result[i]!, p, elem, descend(ctx));
    else {
      at.set(id, result.length);
      result.push(mergeMap({}, p, elem, descend(ctx)));
    }
  }
  if (ordered) return result;
  const patchIndex = new ListIndex(patch, mergeKey);
  const [patchItems, serverOnly] = partition(result, patchIndex);
  return normalizeElementOrder(patchItems, serverOnly, patchIndex, new ListIndex(original, mergeKey));
}

/** Sorts `toSort` by each item's position in `order`; items `order` does not name keep their relative order after the named ones. */
function sortByOrder(toSort: unknown[], order: ListIndex): unknown[] {
  const ranked = toSort.map((x, i) => ({ x, i, r: order.indexOf(x) }));
  ranked.sort((a, b) => {
    if (a.r >= 0 && b.r >= 0) return a.r - b.r || a.i - b.i;
    if (a.r >= 0) return -1;
    if (b.r >= 0) return 1;
    return a.i - b.i;
  });
  return ranked.map((e) => e.x);
}

/**
 * Puts the patch's items in patch order and the server-only items in server
 * order, then interleaves them: a server-only item goes before the next patch
 * item only when the server's list had it earlier.
 */
function normalizeElementOrder(patchItems: unknown[], serverOnly: unknown[], patchOrder: ListIndex, serverOrder: ListIndex): unknown[] {
  const right = sortByOrder(patchItems, patchOrder);
  const left = sortByOrder(serverOnly, serverOrder);
  const out: unknown[] = [];
  let i = 0;
  let j = 0;
  while (i < left.length || j < right.length) {
    if (i >= left.length) out.push(right[j++]);
    else if (j >= right.length) out.push(left[i++]);
    else {
      const li = serverOrder.indexOf(left[i]);
      const ri = serverOrder.indexOf(right[j]);
      if (li >= 0 && ri >= 0 && li < ri) out.push(left[i++]);
      else out.push(right[j++]);
    }
  }
  return out;
}
