// Sets of field paths, the unit of ownership in server-side apply, in the
// shape of their wire form (FieldsV1).
//
// A FieldSet is a tree whose edges are path elements spelled as in FieldsV1:
// `f:<field>` (a field of a map), `k:<json object>` (an item of an
// associative list, by its key fields, sorted), `v:<json value>` (an item of
// a set) and `i:<index>` (an item of a list by position; Keelson never
// produces these but accepts them from stored objects). `member` says that
// the path leading to the node is itself in the set; in FieldsV1 that is the
// `.` entry, or an empty object for a node without children.
import { errors } from '../errors.ts';
import { isObject, type JsonObject } from './json.ts';

/** FieldsV1 documents nest no deeper than the objects they describe; a deeper one is refused rather than recursed into. */
export const fieldsDepthMax = 1_000;

export class FieldSet {
  member = false;
  children = new Map<string, FieldSet>();

  child(key: string): FieldSet {
    let c = this.children.get(key);
    if (!c) {
      c = new FieldSet();
      this.children.set(key, c);
    }
    return c;
  }

  isEmpty(): boolean {
    if (this.member) return false;
    for (const c of this.children.values()) if (!c.isEmpty()) return false;
    return true;
  }

  clone(): FieldSet {
    const out = new FieldSet();
    out.member = this.member;
    for (const [k, c] of this.children) out.children.set(k, c.clone());
    return out;
  }

  union(other: FieldSet | undefined): FieldSet {
    const out = this.clone();
    if (other) out.addAll(other);
    return out;
  }

  /** Adds every path of `other` to this set, in place. */
  addAll(other: FieldSet): void {
    if (other.member) this.member = true;
    for (const [k, c] of other.children) this.child(k).addAll(c);
  }

  /** The paths of this set that are not in `other` (path by path: a member stays unless `other` has that very path). */
  difference(other: FieldSet | undefined): FieldSet {
    const out = new FieldSet();
    out.member = this.member && !(other?.member ?? false);
    for (const [k, c] of this.children) {
      const d = c.difference(other?.children.get(k));
      if (!d.isEmpty()) out.children.set(k, d);
    }
    return out;
  }

  intersection(other: FieldSet | undefined): FieldSet {
    const out = new FieldSet();
    if (!other) return out;
    out.member = this.member && other.member;
    for (const [k, c] of this.children) {
      const o = other.children.get(k);
      if (!o) continue;
      const i = c.intersection(o);
      if (!i.isEmpty()) out.children.set(k, i);
    }
    return out;
  }

  /** The member paths, depth first in FieldsV1 order, each as its list of path-element keys. */
  paths(prefix: string[] = [], out: string[][] = []): string[][] {
    if (this.member) out.push(prefix);
    for (const k of sortedKeys(this.children)) this.children.get(k)!.paths([...prefix, k], out);
    return out;
  }

  toFieldsV1(): JsonObject {
    return this.fieldsV1Node() ?? {};
  }

  /** FieldsV1 of this node, or undefined when it holds no path (one walk, instead of an isEmpty walk under every node). */
  private fieldsV1Node(): JsonObject | undefined {
    let out: JsonObject | undefined;
    if (this.children.size > 0) {
      const keys = this.children.size === 1 ? [...this.children.keys()] : sortedKeys(this.children);
      for (const k of keys) {
        const c = this.children.get(k)!.fieldsV1Node();
        if (c === undefined) continue;
        if (!out) {
          out = {};
          if (this.member) out['.'] = {};
        }
        out[k] = c;
      }
    }
    if (!out && this.member) out = this.children.size > 0 ? { '.': {} } : {};
    return out;
  }

  /** Parses FieldsV1; throws a 400 for anything that is not one. */
  static fromFieldsV1(v: unknown, depth = 0): FieldSet {
    if (depth > fieldsDepthMax) throw errors.badRequest(`fieldsV1 nests deeper than ${fieldsDepthMax} levels`);
    if (!isObject(v)) throw errors.badRequest('invalid fieldsV1: every node must be an object');
    const out = new FieldSet();
    const keys = Object.keys(v);
    if (keys.length === 0) out.member = true;
    for (const k of keys) {
      if (k === '.') {
        out.member = true;
        continue;
      }
      if (!/^[fkvi]:/.test(k)) throw errors.badRequest(`invalid fieldsV1 path element ${JSON.stringify(k)}`);
      if (k.startsWith('k:') || k.startsWith('v:')) {
        try {
          JSON.parse(k.slice(2));
        } catch {
          throw errors.badRequest(`invalid fieldsV1 path element ${JSON.stringify(k)}`);
        }
      }
      if (k.startsWith('i:') && !/^i:\d+$/.test(k)) throw errors.badRequest(`invalid fieldsV1 path element ${JSON.stringify(k)}`);
      out.children.set(k, FieldSet.fromFieldsV1(v[k], depth + 1));
    }
    return out;
  }
}

const kindRank: Record<string, number> = { f: 0, v: 1, i: 2, k: 3 };

/** FieldsV1 order: fields, then values, indexes and keys, each group sorted by its text. */
export function compareFieldsV1Keys(a: string, b: string): number {
  return (kindRank[a[0]!]! - kindRank[b[0]!]!) || (a < b ? -1 : a > b ? 1 : 0);
}

function sortedKeys(m: Map<string, FieldSet>): string[] {
  return [...m.keys()].sort(compareFieldsV1Keys);
}

/** JSON as a Go server writes it (it escapes <, >, & and the two JavaScript line separators), so keys compare equal to Kubernetes'. */
export function goJson(v: unknown): string {
  return JSON.stringify(v).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export function fieldKey(name: string): string {
  return `f:${name}`;
}

export function valueKey(v: unknown): string {
  return `v:${goJson(v)}`;
}

/** `k:` key of an associative list item from its key fields (sorted by name). */
export function itemKey(keys: Record<string, unknown>): string {
  const sorted: JsonObject = {};
  for (const k of Object.keys(keys).sort()) sorted[k] = keys[k];
  return `k:${goJson(sorted)}`;
}

/** Renders a path as Kubernetes prints it in conflicts: `.spec.containers[name="nginx"].image`. */
export function pathString(path: string[]): string {
  let s = '';
  for (const el of path) {
    const body = el.slice(2);
    switch (el[0]) {
      case 'f':
        s += `.${body}`;
        break;
      case 'k': {
        const o = JSON.parse(body) as JsonObject;
        s += `[${Object.keys(o).map((k) => `${k}=${JSON.stringify(o[k])}`).join(',')}]`;
        break;
      }
      case 'v':
        s += `[=${JSON.stringify(JSON.parse(body))}]`;
        break;
      default:
        s += `[${body}]`;
    }
  }
  return s;
}
