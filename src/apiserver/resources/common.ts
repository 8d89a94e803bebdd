// Helpers shared by the resource strategies: name validation, ages and the
// default Table printer.
import type { StatusCause } from 'kubernetes-types/meta/v1.js';
import { fieldCause, type KObject, type NameRule, type TablePrinter } from './types.ts';

const dns1123LabelRe = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const dns1123SubdomainRe = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const dns1035LabelRe = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;


export function validateName(name: string, rule: NameRule): string | null {
  switch (rule) {
    case 'label':
      if (name.length > 63) return 'must be no more than 63 characters';
      return dns1123LabelRe.test(name) ? null
        : `a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')`;
    case 'label1035':
      if (name.length > 63) return 'must be no more than 63 characters';
      return dns1035LabelRe.test(name) ? null
        : `a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')`;
    case 'subdomain':
      if (name.length > 253) return 'must be no more than 253 characters';
      return dns1123SubdomainRe.test(name) ? null
        : `a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`;
    case 'path':
      if (name === '.' || name === '..') return `may not be '${name}'`;
      if (name.includes('/') || name.includes('%')) return `may not contain '/' or '%'`;
      return null;
  }
}

/** Kubernetes' short human age: 45s, 3m12s, 5h, 2d3h, 400d. */
export function humanAge(from: string | undefined, now: number): string {
  if (!from) return '<unknown>';
  const t = Date.parse(from);
  if (Number.isNaN(t)) return '<unknown>';
  let s = Math.floor((now - t) / 1000);
  if (s < 0) s = 0;
  if (s < 120) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 10) return s % 60 === 0 ? `${m}m` : `${m}m${s % 60}s`;
  if (m < 180) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 8) return m % 60 === 0 ? `${h}h` : `${h}h${m % 60}m`;
  if (h < 48) return `${h}h`;
  const d = Math.floor(h / 24);
  if (d < 8) return h % 24 === 0 ? `${d}d` : `${d}d${h % 24}h`;
  if (d < 365 * 2) return `${d}d`;
  return `${Math.floor(d / 365)}y`;
}

export const nameColumn = { name: 'Name', type: 'string', format: 'name', description: 'Name must be unique within a namespace.' } as const;
export const ageColumn = { name: 'Age', type: 'string', description: 'CreationTimestamp is a timestamp representing the server time when this object was created.' } as const;

export const age = (o: KObject, now: number) => humanAge(o.metadata?.creationTimestamp, now);

/** The printer for resources without their own: Name and Created At, as Kubernetes' default table. */
export const defaultTable: TablePrinter = {
  columns: [nameColumn, { name: 'Created At', type: 'date', description: 'CreationTimestamp is a timestamp representing the server time when this object was created.' }],
  row: (o) => [o.metadata?.name ?? '', o.metadata?.creationTimestamp ?? ''],
};

export function required(obj: KObject, path: string, causes: StatusCause[]): unknown {
  let v: any = obj;
  for (const p of path.split('.')) v = v?.[p];
  if (v === undefined || v === null || v === '') causes.push(fieldCause(path, 'Required value', 'FieldValueRequired'));
  return v;
}

export function oneOf(obj: KObject, path: string, allowed: string[], causes: StatusCause[]): void {
  let v: any = obj;
  for (const p of path.split('.')) v = v?.[p];
  if (v !== undefined && !allowed.includes(v)) {
    causes.push(fieldCause(path, `Unsupported value: "${v}": supported values: ${allowed.map((a) => `"${a}"`).join(', ')}`, 'FieldValueNotSupported'));
  }
}

export function immutable(obj: KObject, old: KObject, path: string, causes: StatusCause[]): void {
  let a: any = obj, b: any = old;
  for (const p of path.split('.')) { a = a?.[p]; b = b?.[p]; }
  if (JSON.stringify(a) !== JSON.stringify(b)) causes.push(fieldCause(path, 'field is immutable'));
}

/** Validates a LabelSelector's matchLabels/matchExpressions shape and that it selects the template labels. */
export function validateSelectorMatchesTemplate(obj: KObject, causes: StatusCause[]): void {
  const sel = obj.spec?.selector;
  if (!sel) { causes.push(fieldCause('spec.selector', 'Required value', 'FieldValueRequired')); return; }
  const labels: Record<string, string> = obj.spec?.template?.metadata?.labels ?? {};
  const ml: Record<string, string> = sel.matchLabels ?? {};
  if (Object.keys(ml).length === 0 && !(sel.matchExpressions?.length)) {
    causes.push(fieldCause('spec.selector', 'Invalid value: "null": empty selector is invalid for deployment'));
    return;
  }
  for (const [k, v] of Object.entries(ml)) {
    if (labels[k] !== v) {
      causes.push(fieldCause('spec.template.metadata.labels', `Invalid value: ${JSON.stringify(labels)}: \`selector\` does not match template \`labels\``));
      return;
    }
  }
}

export function selectorString(sel: KObject | undefined): string {
  if (!sel) return '<none>';
  const parts: string[] = [];
  for (const [k, v] of Object.entries(sel.matchLabels ?? {})) parts.push(`${k}=${v}`);
  for (const e of sel.matchExpressions ?? []) {
    if (e.operator === 'In') parts.push(`${e.key} in (${e.values.join(',')})`);
    else if (e.operator === 'NotIn') parts.push(`${e.key} notin (${e.values.join(',')})`);
    else if (e.operator === 'Exists') parts.push(e.key);
    else if (e.operator === 'DoesNotExist') parts.push(`!${e.key}`);
  }
  return parts.length ? parts.join(',') : '<none>';
}

export function mapSelectorString(sel: Record<string, string> | undefined): string {
  if (!sel || Object.keys(sel).length === 0) return '<none>';
  return Object.entries(sel).map(([k, v]) => `${k}=${v}`).join(',');
}

export function containersOf(podSpec: KObject | undefined): { names: string; images: string } {
  const cs: KObject[] = podSpec?.containers ?? [];
  return { names: cs.map((c) => c.name).join(','), images: cs.map((c) => c.image).join(',') };
}
