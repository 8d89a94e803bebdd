// JSON helpers shared by the patch functions, plus RFC 6902 JSON patch and
// RFC 7386 JSON merge patch.
//
// Error codes follow the Kubernetes API server: a patch that cannot be
// decoded, or whose operations are malformed, is 400 BadRequest; a well-formed
// patch that cannot be applied to the current object (a failed `test`, a path
// that does not exist) is 422 Invalid, because the request is understood but
// cannot be carried out on this object's state.
import fastJsonPatch from 'fast-json-patch';
import type { Operation } from 'fast-json-patch';
import { errors, StatusError } from '../errors.ts';

/** Kubernetes refuses JSON patches with more operations than this (413), bounding the work one request can ask for. */
export const jsonPatchOperationsMax = 10_000;

/** Patches nest no deeper than objects may (Kubernetes bounds JSON nesting too); deeper bodies are refused, not recursed into. */
export const patchDepthMax = 1_000;

export type JsonObject = { [key: string]: unknown };

/**
 * Sets a key on a plain object. A key spelled `__proto__` is legal in
 * Kubernetes data (a ConfigMap key) and must become a property, not replace
 * the object's prototype as plain assignment would.
 */
export function setKey(o: JsonObject, k: string, v: unknown): void {
  if (k === '__proto__') Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
  else o[k] = v;
}

export function hasKey(o: JsonObject, k: string): boolean {
  return Object.prototype.hasOwnProperty.call(o, k);
}

/** An own property only: `o['__proto__']` or `o['constructor']` must never reach the prototype chain. */
export function getKey(o: JsonObject, k: string): unknown {
  return hasKey(o, k) ? o[k] : undefined;
}

export function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Accepts an already decoded body, or the raw bytes/text of a JSON body. The
 * engine normally hands over decoded JSON; raw input is parsed here so a
 * caller cannot skip the 400 for undecodable bodies.
 */
export function decodeBody(body: unknown, what: string): unknown {
  if (typeof body === 'string' || body instanceof Uint8Array) {
    const text = typeof body === 'string' ? body : Buffer.from(body).toString('utf8');
    try {
      return JSON.parse(text);
    } catch (e) {
      throw errors.badRequest(`error decoding ${what}: ${(e as Error).message}`);
    }
  }
  if (body === undefined) throw errors.badRequest(`${what} is empty`);
  return body;
}

/** A deep copy of a JSON value; also checks the nesting bound. */
export function cloneJson<T>(v: T, depth = 0): T {
  if (depth > patchDepthMax) throw errors.badRequest(`the document nests deeper than ${patchDepthMax} levels`);
  if (Array.isArray(v)) return v.map((x) => cloneJson(x, depth + 1)) as T;
  if (isObject(v)) {
    const out: JsonObject = {};
    for (const k of Object.keys(v)) {
      const x = v[k];
      if (x !== undefined) setKey(out, k, cloneJson(x, depth + 1));
    }
    return out as T;
  }
  return v;
}

export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!jsonEqual(a[i], b[i])) return false;
    return true;
  }
  if (isObject(a)) {
    if (!isObject(b)) return false;
    const ka = Object.keys(a).filter((k) => a[k] !== undefined);
    const kb = Object.keys(b).filter((k) => b[k] !== undefined);
    if (ka.length !== kb.length) return false;
    for (const k of ka) if (!hasKey(b, k) || !jsonEqual(a[k], b[k])) return false;
    return true;
  }
  return false;
}

/** JSON with object keys sorted at every level: equal for values jsonEqual calls equal, and how a Go server writes a map. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (isObject(v)) {
    return `{${Object.keys(v).filter((k) => v[k] !== undefined).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson(v[k])}`).join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

const opsWithValue = new Set(['add', 'replace', 'test']);
const opsWithFrom = new Set(['move', 'copy']);

function pointerValid(p: unknown): p is string {
  return typeof p === 'string' && (p === '' || p.startsWith('/'));
}

/** Checks the shape of every operation before anything is applied, so a malformed patch is a 400 and never half-applied. */
function decodeJsonPatch(body: unknown): Operation[] {
  const ops = decodeBody(body, 'JSON patch');
  if (!Array.isArray(ops)) throw errors.badRequest('json: cannot unmarshal a JSON patch: the patch must be a JSON array of operations');
  if (ops.length > jsonPatchOperationsMax) {
    throw errors.tooLarge(`The allowed maximum operations in a JSON patch is ${jsonPatchOperationsMax}, got ${ops.length}`);
  }
  ops.forEach((op, i) => {
    const where = `JSON patch operation ${i}`;
    if (!isObject(op)) throw errors.badRequest(`${where} is not an object`);
    if (typeof op.op !== 'string') throw errors.badRequest(`${where}: missing "op"`);
    if (!opsWithValue.has(op.op) && !opsWithFrom.has(op.op) && op.op !== 'remove') {
      throw errors.badRequest(`${where}: unexpected kind of operation "${op.op}"`);
    }
    if (!pointerValid(op.path)) throw errors.badRequest(`${where} (${op.op}): "path" must be a JSON pointer (empty or starting with "/")`);
    if (opsWithValue.has(op.op) && !('value' in op)) throw errors.badRequest(`${where} (${op.op}): missing "value"`);
    if (opsWithFrom.has(op.op) && !pointerValid(op.from)) throw errors.badRequest(`${where} (${op.op}): "from" must be a JSON pointer`);
  });
  return cloneJson(ops) as Operation[];
}

function cannotApply(message: string): StatusError {
  return new StatusError(422, 'Invalid', message, { causes: [{ reason: 'FieldValueInvalid', field: 'patch', message }] });
}

/** RFC 6902 JSON patch. Never mutates `obj`; a failed operation leaves nothing applied. */
export function applyJsonPatch(obj: object, patchBody: unknown): object {
  const ops = decodeJsonPatch(patchBody);
  ops.forEach((op, i) => {
    if (op.op === 'move' && op.path.startsWith(`${op.from}/`)) {
      throw cannotApply(`the JSON patch operation ${i} (move ${op.path}) does not apply: a value cannot be moved into one of its own children`);
    }
  });
  let result: unknown;
  try {
    result = fastJsonPatch.applyPatch(cloneJson(obj), ops, true, true, true).newDocument;
  } catch (e) {
    const err = e as { name?: string; message?: string; index?: number; operation?: Operation };
    if (err.name === 'TEST_OPERATION_FAILED') {
      throw cannotApply(`the JSON patch test operation ${err.index ?? ''} failed: the value at "${err.operation?.path}" differs`.replace('  ', ' '));
    }
    const op = err.operation ? ` (${err.operation.op} ${err.operation.path})` : '';
    // The library appends a dump of the whole document to its message; only the first line is for the client.
    const why = (err.message ?? String(e)).split('\n')[0];
    throw cannotApply(`the JSON patch operation ${err.index ?? ''}${op} does not apply: ${why}`.replace('  ', ' '));
  }
  if (!isObject(result)) throw cannotApply('the JSON patch must leave an object, not replace it with a non-object');
  return result;
}

function mergeInto(target: unknown, patch: unknown, depth: number): unknown {
  if (depth > patchDepthMax) throw errors.badRequest(`the merge patch nests deeper than ${patchDepthMax} levels`);
  if (!isObject(patch)) return cloneJson(patch);
  const out: JsonObject = isObject(target) ? { ...target } : {};
  for (const k of Object.keys(patch)) {
    const v = patch[k];
    if (v === null) delete out[k];
    else if (v !== undefined) setKey(out, k, mergeInto(hasKey(out, k) ? out[k] : undefined, v, depth + 1));
  }
  return out;
}

/** RFC 7386 JSON merge patch: maps merge, null deletes, lists and scalars replace. */
export function applyMergePatch(obj: object, patchBody: unknown): object {
  const patch = decodeBody(patchBody, 'merge patch');
  if (!isObject(patch)) throw errors.badRequest('a merge patch must be a JSON object');
  return cloneJson(mergeInto(obj, patch, 0)) as object;
}
