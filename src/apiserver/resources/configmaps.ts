// core/v1 configmaps and secrets: keys must be config keys; immutable ones
// refuse changes to their data; secrets are base64 on the wire.
import type { StatusCause } from 'kubernetes-types/meta/v1.js';
import { age, ageColumn, nameColumn } from './common.ts';
import { fieldCause, type KObject, type ResourceDef } from './types.ts';

const configKeyRe = /^[-._a-zA-Z0-9]+$/;
/** A configmap or secret holds at most 1 MiB of data, as in Kubernetes. */
const dataBytesMax = 1024 * 1024;

function validateKeys(o: KObject, fields: string[], causes: StatusCause[]): void {
  let size = 0;
  for (const f of fields) {
    for (const [k, v] of Object.entries(o[f] ?? {})) {
      if (!configKeyRe.test(k) || k.length > 253) causes.push(fieldCause(`${f}[${k}]`, `Invalid value: "${k}": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')`));
      size += k.length + String(v).length;
    }
  }
  if (size > dataBytesMax) causes.push(fieldCause(fields[0]!, `Too long: must have at most ${dataBytesMax} bytes`, 'FieldValueTooLong'));
}

function validateImmutable(o: KObject, old: KObject, fields: string[], causes: StatusCause[]): void {
  if (old.immutable === true) {
    if (o.immutable !== true) causes.push(fieldCause('immutable', 'Forbidden: field is immutable when `immutable` is set', 'FieldValueForbidden'));
    for (const f of fields) if (JSON.stringify(o[f] ?? {}) !== JSON.stringify(old[f] ?? {})) causes.push(fieldCause(f, 'Forbidden: field is immutable when `immutable` is set', 'FieldValueForbidden'));
  }
}

export const configmaps: ResourceDef = {
  group: '', version: 'v1', resource: 'configmaps', kind: 'ConfigMap', singular: 'configmap', shortNames: ['cm'],
  namespaced: true, schemaName: 'io.k8s.api.core.v1.ConfigMap',
  validate(o) {
    const causes: StatusCause[] = [];
    for (const [k, v] of Object.entries(o.data ?? {})) if (typeof v !== 'string') causes.push(fieldCause(`data[${k}]`, 'Invalid value: must be a string'));
    validateKeys(o, ['data', 'binaryData'], causes);
    return causes;
  },
  validateUpdate(o, old) { const c: StatusCause[] = []; validateImmutable(o, old, ['data', 'binaryData'], c); return c; },
  table: {
    columns: [nameColumn, { name: 'Data', type: 'string', description: 'Data contains the configuration data.' }, ageColumn],
    row: (o, now) => [o.metadata?.name, String(Object.keys(o.data ?? {}).length + Object.keys(o.binaryData ?? {}).length), age(o, now)],
  },
};

const base64Re = /^[A-Za-z0-9+/]*={0,2}$/;

export const secrets: ResourceDef = {
  group: '', version: 'v1', resource: 'secrets', kind: 'Secret', singular: 'secret',
  namespaced: true, schemaName: 'io.k8s.api.core.v1.Secret',
  fields: { type: (o) => o.type ?? '' },
  defaults(o) {
    if (!o.type) o.type = 'Opaque';
    // stringData is write-only: merged into data (base64) and dropped.
    if (o.stringData) {
      o.data ??= {};
      for (const [k, v] of Object.entries(o.stringData)) o.data[k] = Buffer.from(String(v)).toString('base64');
      delete o.stringData;
    }
  },
  validate(o) {
    const causes: StatusCause[] = [];
    for (const [k, v] of Object.entries(o.data ?? {})) if (typeof v !== 'string' || v.length % 4 !== 0 || !base64Re.test(v)) causes.push(fieldCause(`data[${k}]`, 'Invalid value: illegal base64 data'));
    validateKeys(o, ['data'], causes);
    return causes;
  },
  validateUpdate(o, old) {
    const c: StatusCause[] = [];
    if (o.type !== old.type) c.push(fieldCause('type', 'Invalid value: field is immutable'));
    validateImmutable(o, old, ['data'], c);
    return c;
  },
  table: {
    columns: [nameColumn, { name: 'Type', type: 'string', description: 'The type of the secret' }, { name: 'Data', type: 'string', description: 'The number of entries in the data' }, ageColumn],
    row: (o, now) => [o.metadata?.name, o.type, String(Object.keys(o.data ?? {}).length), age(o, now)],
  },
};
