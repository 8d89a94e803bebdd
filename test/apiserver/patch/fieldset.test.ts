// Field sets: FieldsV1 round trips, set algebra, path rendering, key spelling.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FieldSet, goJson, itemKey, pathString, valueKey } from '../../../src/apiserver/patch/fieldset.ts';
import { throwsStatus } from './helpers.ts';

const sample = {
  'f:metadata': { 'f:labels': { '.': {}, 'f:app': {} } },
  'f:spec': {
    'f:containers': { 'k:{"name":"web"}': { '.': {}, 'f:image': {}, 'f:name': {} } },
    'f:replicas': {},
  },
};

test('FieldsV1 parses and prints back the same document', () => {
  const s = FieldSet.fromFieldsV1(sample);
  assert.equal(s.toFieldsV1(), sample);
  assert.equal(s.paths().map(pathString), [
    '.metadata.labels',
    '.metadata.labels.app',
    '.spec.containers[name="web"]',
    '.spec.containers[name="web"].image',
    '.spec.containers[name="web"].name',
    '.spec.replicas',
  ]);
});

test('union, difference and intersection work path by path', () => {
  const a = FieldSet.fromFieldsV1({ 'f:a': {}, 'f:b': { 'f:c': {}, 'f:d': {} } });
  const b = FieldSet.fromFieldsV1({ 'f:b': { 'f:d': {} }, 'f:e': {} });
  assert.equal(a.union(b).toFieldsV1(), { 'f:a': {}, 'f:b': { 'f:c': {}, 'f:d': {} }, 'f:e': {} });
  assert.equal(a.difference(b).toFieldsV1(), { 'f:a': {}, 'f:b': { 'f:c': {} } });
  assert.equal(a.intersection(b).toFieldsV1(), { 'f:b': { 'f:d': {} } });
  assert.ok(a.difference(a).isEmpty());
  // A member with children loses only itself when the other set has the very path.
  const m = FieldSet.fromFieldsV1({ 'f:x': { '.': {}, 'f:y': {} } });
  assert.equal(m.difference(FieldSet.fromFieldsV1({ 'f:x': {} })).toFieldsV1(), { 'f:x': { 'f:y': {} } });
});

test('children print fields first, then values, indexes and keys, each sorted', () => {
  const s = FieldSet.fromFieldsV1({ 'k:{"a":1}': {}, 'v:"x"': {}, 'f:z': {}, 'f:b': {}, 'i:0': {} });
  assert.equal(Object.keys(s.toFieldsV1()), ['f:b', 'f:z', 'v:"x"', 'i:0', 'k:{"a":1}']);
});

test('keys: k: sorts key fields and escapes like a Go server; v: quotes values; paths render as Kubernetes prints them', () => {
  assert.is(itemKey({ protocol: 'TCP', containerPort: 80 }), 'k:{"containerPort":80,"protocol":"TCP"}');
  assert.is(goJson('<a&b>'), '"\\u003ca\\u0026b\\u003e"');
  assert.is(valueKey('example.com/x'), 'v:"example.com/x"');
  assert.is(pathString(['f:spec', 'f:ports', 'k:{"port":53,"protocol":"UDP"}', 'f:name']), '.spec.ports[port=53,protocol="UDP"].name');
  assert.is(pathString(['f:metadata', 'f:finalizers', 'v:"a/b"']), '.metadata.finalizers[="a/b"]');
  assert.is(pathString(['f:items', 'i:3']), '.items[3]');
});

test('malformed FieldsV1 is a 400', () => {
  throwsStatus(() => FieldSet.fromFieldsV1([]), 400, 'BadRequest');
  throwsStatus(() => FieldSet.fromFieldsV1({ 'x:y': {} }), 400, 'BadRequest');
  throwsStatus(() => FieldSet.fromFieldsV1({ 'k:{bad': {} }), 400, 'BadRequest');
  throwsStatus(() => FieldSet.fromFieldsV1({ 'i:x': {} }), 400, 'BadRequest');
  throwsStatus(() => FieldSet.fromFieldsV1({ 'f:a': 1 }), 400, 'BadRequest');
  let deep: Record<string, unknown> = {};
  for (let i = 0; i < 1100; i++) deep = { 'f:a': deep };
  throwsStatus(() => FieldSet.fromFieldsV1(deep), 400, 'BadRequest');
});

test.run();
