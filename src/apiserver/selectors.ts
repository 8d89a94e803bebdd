// Label and field selectors, parsed once per request and matched against
// every candidate object. The grammar is the one of the Kubernetes API
// concepts documentation: label selectors take =, ==, !=, in, notin, exists
// (a bare key) and !exists (!key); field selectors take =, == and != on the
// fields a resource declares (metadata.name, metadata.namespace and, per
// resource, e.g. spec.nodeName).
import { errors } from './errors.ts';

export type LabelRequirement =
  | { key: string; op: 'in' | 'notin'; values: string[] }
  | { key: string; op: 'exists' | '!exists' };

export type LabelSelector = LabelRequirement[];

export interface FieldRequirement { field: string; op: '=' | '!='; value: string }
export type FieldSelector = FieldRequirement[];

/** Longest accepted selector string; longer ones are refused, not parsed. */
const selectorCharsMax = 8192;

const labelKeyRe = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const labelValueRe = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/;

/** Splits on commas that are not inside parentheses. */
function splitTop(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of s) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) { out.push(cur); cur = ''; continue; }
    cur += ch;
  }
  out.push(cur);
  return out;
}

function checkKey(key: string, whole: string): void {
  if (!labelKeyRe.test(key) || key.length > 316) throw errors.badRequest(`unable to parse requirement: invalid label key "${key}" in selector "${whole}"`);
}

function checkValue(v: string, whole: string): void {
  if (!labelValueRe.test(v) || v.length > 63) throw errors.badRequest(`unable to parse requirement: invalid label value "${v}" in selector "${whole}"`);
}

export function parseLabelSelector(s: string | null | undefined): LabelSelector {
  if (!s) return [];
  if (s.length > selectorCharsMax) throw errors.badRequest('label selector is too long');
  const reqs: LabelSelector = [];
  for (const raw of splitTop(s)) {
    const part = raw.trim();
    if (part === '') throw errors.badRequest(`unable to parse label selector "${s}": empty requirement`);
    let m: RegExpExecArray | null;
    if ((m = /^(\S+)\s+(in|notin)\s*\(([^)]*)\)$/.exec(part))) {
      checkKey(m[1]!, s);
      const values = m[3]!.split(',').map((v) => v.trim());
      for (const v of values) checkValue(v, s);
      reqs.push({ key: m[1]!, op: m[2] as 'in' | 'notin', values });
    } else if ((m = /^([^=!\s]+)\s*(==|=|!=)\s*(\S*)$/.exec(part))) {
      checkKey(m[1]!, s);
      checkValue(m[3]!, s);
      reqs.push({ key: m[1]!, op: m[2] === '!=' ? 'notin' : 'in', values: [m[3]!] });
    } else if ((m = /^!\s*(\S+)$/.exec(part))) {
      checkKey(m[1]!, s);
      reqs.push({ key: m[1]!, op: '!exists' });
    } else if (/^\S+$/.test(part)) {
      checkKey(part, s);
      reqs.push({ key: part, op: 'exists' });
    } else {
      throw errors.badRequest(`unable to parse label selector "${s}"`);
    }
  }
  return reqs;
}

export function matchLabels(sel: LabelSelector, labels: Record<string, string> | undefined): boolean {
  for (const r of sel) {
    const has = labels !== undefined && Object.prototype.hasOwnProperty.call(labels, r.key);
    switch (r.op) {
      case 'exists': if (!has) return false; break;
      case '!exists': if (has) return false; break;
      case 'in': if (!has || !r.values.includes(labels![r.key]!)) return false; break;
      case 'notin': if (has && r.values.includes(labels![r.key]!)) return false; break;
    }
  }
  return true;
}

/**
 * Parses a field selector; `allowed` lists the fields the resource supports
 * (anything else is a 400, as Kubernetes answers for an unsupported field).
 */
export function parseFieldSelector(s: string | null | undefined, allowed: ReadonlySet<string>, kind: string): FieldSelector {
  if (!s) return [];
  if (s.length > selectorCharsMax) throw errors.badRequest('field selector is too long');
  const reqs: FieldSelector = [];
  for (const raw of s.split(',')) {
    const part = raw.trim();
    const m = /^([^=!\s]+)\s*(==|=|!=)\s*(.*)$/.exec(part);
    if (!m) throw errors.badRequest(`invalid field selector "${s}": requirement "${part}" has no operator`);
    const field = m[1]!;
    if (!allowed.has(field)) throw errors.badRequest(`field label not supported: ${field}`);
    reqs.push({ field, op: m[2] === '!=' ? '!=' : '=', value: m[3]!.trim() });
  }
  void kind;
  return reqs;
}

export function matchFields(sel: FieldSelector, fieldsOf: (field: string) => string): boolean {
  for (const r of sel) {
    const v = fieldsOf(r.field);
    if (r.op === '=' ? v !== r.value : v === r.value) return false;
  }
  return true;
}

/** The value a field selector requirement on `metadata.name` or `metadata.namespace` pins, for indexing. */
export function pinnedField(sel: FieldSelector, field: string): string | undefined {
  for (const r of sel) if (r.field === field && r.op === '=') return r.value;
  return undefined;
}
