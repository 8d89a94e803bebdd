// RFC 6902 JSON patch and RFC 7386 merge patch, with Kubernetes' status codes.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { applyJsonPatch, applyMergePatch, applyServerSide, applyStrategicMergePatch, jsonPatchOperationsMax } from '../../../src/apiserver/patch/index.ts';
import { CONFIGMAP, frozen, POD, throwsStatus } from './helpers.ts';

const pod = () => frozen({
  apiVersion: 'v1', kind: 'Pod',
  metadata: { name: 'p', labels: { app: 'web', tier: 'front' } },
  spec: { containers: [{ name: 'a', image: 'a:1' }, { name: 'b', image: 'b:1' }] },
});

test('json patch: add, replace, remove, move, copy and test, without touching the input', () => {
  const live = pod();
  const out = applyJsonPatch(live, [
    { op: 'test', path: '/metadata/labels/app', value: 'web' },
    { op: 'replace', path: '/spec/containers/0/image', value: 'a:2' },
    { op: 'add', path: '/spec/containers/-', value: { name: 'c', image: 'c:1' } },
    { op: 'remove', path: '/metadata/labels/tier' },
    { op: 'copy', from: '/metadata/labels/app', path: '/metadata/labels/copied' },
    { op: 'move', from: '/spec/containers/1', path: '/spec/containers/0' },
    { op: 'add', path: '/metadata/annotations', value: { 'a~b/c': 'x' } },
  ]) as any;
  assert.equal(out.spec.containers.map((c: any) => `${c.name}=${c.image}`), ['b=b:1', 'a=a:2', 'c=c:1']);
  assert.equal(out.metadata.labels, { app: 'web', copied: 'web' });
  assert.equal(out.metadata.annotations, { 'a~b/c': 'x' });
  assert.is(live.spec.containers[0]!.image, 'a:1');
});

test('json patch: values are copied, so the result shares nothing with the patch body', () => {
  const value = { team: 'x' };
  const out = applyJsonPatch(pod(), [{ op: 'replace', path: '/metadata/labels', value }]) as any;
  value.team = 'changed';
  assert.equal(out.metadata.labels, { team: 'x' });
});

test('json patch: escaped pointers (~0, ~1) address keys with ~ and /', () => {
  const live = frozen({ metadata: { annotations: { 'example.com/a~b': 'old' } } });
  const out = applyJsonPatch(live, [{ op: 'replace', path: '/metadata/annotations/example.com~1a~0b', value: 'new' }]) as any;
  assert.equal(out.metadata.annotations, { 'example.com/a~b': 'new' });
});

test('json patch: a failed test or a missing path is 422 and nothing is applied', () => {
  const live = pod();
  const e = throwsStatus(() => applyJsonPatch(live, [
    { op: 'replace', path: '/spec/containers/0/image', value: 'changed' },
    { op: 'test', path: '/metadata/labels/app', value: 'api' },
  ]), 422, 'Invalid');
  assert.match(e.message, /test/);
  assert.is(live.spec.containers[0]!.image, 'a:1');
  throwsStatus(() => applyJsonPatch(live, [{ op: 'remove', path: '/metadata/annotations/x' }]), 422, 'Invalid');
  throwsStatus(() => applyJsonPatch(live, [{ op: 'replace', path: '/spec/nothere', value: 1 }]), 422, 'Invalid');
  throwsStatus(() => applyJsonPatch(live, [{ op: 'add', path: '/spec/containers/9', value: {} }]), 422, 'Invalid');
  throwsStatus(() => applyJsonPatch(live, [{ op: 'add', path: '/no/such/parent', value: 1 }]), 422, 'Invalid');
  throwsStatus(() => applyJsonPatch(live, [{ op: 'move', from: '/nothere', path: '/x' }]), 422, 'Invalid');
});

test('json patch: malformed patches are 400', () => {
  const live = pod();
  throwsStatus(() => applyJsonPatch(live, { op: 'add' }), 400, 'BadRequest');
  throwsStatus(() => applyJsonPatch(live, ['x']), 400, 'BadRequest');
  throwsStatus(() => applyJsonPatch(live, [{ op: 'frobnicate', path: '/a' }]), 400, 'BadRequest');
  throwsStatus(() => applyJsonPatch(live, [{ op: 'add', path: 'metadata', value: 1 }]), 400, 'BadRequest');
  throwsStatus(() => applyJsonPatch(live, [{ op: 'add', path: '/metadata/x' }]), 400, 'BadRequest');
  throwsStatus(() => applyJsonPatch(live, [{ op: 'copy', path: '/metadata/x' }]), 400, 'BadRequest');
  throwsStatus(() => applyJsonPatch(live, '[{"op":'), 400, 'BadRequest');
  throwsStatus(() => applyJsonPatch(live, undefined), 400, 'BadRequest');
});

test('json patch: prototype pollution is refused', () => {
  throwsStatus(() => applyJsonPatch({ a: {} }, [{ op: 'add', path: '/__proto__/polluted', value: true }]), 422, 'Invalid');
  assert.is(({} as any).polluted, undefined);
});

test('json patch: more operations than the bound is 413', () => {
  const ops = Array.from({ length: jsonPatchOperationsMax + 1 }, () => ({ op: 'test', path: '/kind', value: 'Pod' }));
  throwsStatus(() => applyJsonPatch(pod(), ops), 413, 'RequestEntityTooLarge');
});

test('json patch: replacing the whole document with a non-object is 422; with an object is fine', () => {
  throwsStatus(() => applyJsonPatch(pod(), [{ op: 'replace', path: '', value: 5 }]), 422, 'Invalid');
  assert.equal(applyJsonPatch(pod(), [{ op: 'replace', path: '', value: { kind: 'Pod' } }]), { kind: 'Pod' });
});

test('json patch: accepts the body as JSON text', () => {
  const out = applyJsonPatch(pod(), '[{"op":"add","path":"/metadata/labels/x","value":"1"}]') as any;
  assert.is(out.metadata.labels.x, '1');
});

test('merge patch: maps merge, null deletes, lists are replaced whole', () => {
  const live = pod();
  const out = applyMergePatch(live, {
    metadata: { labels: { tier: null, release: 'v2' } },
    spec: { containers: [{ name: 'only', image: 'o:1' }] },
  }) as any;
  assert.equal(out.metadata.labels, { app: 'web', release: 'v2' });
  assert.equal(out.spec.containers, [{ name: 'only', image: 'o:1' }]);
  assert.is(live.metadata.labels.tier, 'front');
});

test('merge patch: nested objects are created, a null for a missing key is harmless, nulls inside new objects are dropped', () => {
  const out = applyMergePatch(pod(), { status: { phase: 'Running', x: null }, metadata: { nope: null } }) as any;
  assert.equal(out.status, { phase: 'Running' });
  assert.not.ok('nope' in out.metadata);
});

test('merge patch: a scalar replaces a map and a map replaces a scalar', () => {
  const out = applyMergePatch({ a: { b: 1 }, c: 2 }, { a: 'x', c: { d: 3 } }) as any;
  assert.equal(out, { a: 'x', c: { d: 3 } });
});

test('merge patch: the patch must be an object; bad JSON is 400', () => {
  throwsStatus(() => applyMergePatch(pod(), [1, 2]), 400, 'BadRequest');
  throwsStatus(() => applyMergePatch(pod(), 'null'), 400, 'BadRequest');
  throwsStatus(() => applyMergePatch(pod(), '{bad'), 400, 'BadRequest');
});

test('merge patch: the result shares nothing with the patch', () => {
  const patch = { metadata: { annotations: { a: 'x' } } };
  const out = applyMergePatch(pod(), patch) as any;
  patch.metadata.annotations.a = 'changed';
  assert.is(out.metadata.annotations.a, 'x');
});

test('json patch: a value cannot move into its own child; error messages are one line', () => {
  const e = throwsStatus(() => applyJsonPatch({ a: { b: 1 } }, [{ op: 'move', from: '/a', path: '/a/c' }]), 422, 'Invalid');
  assert.match(e.message, /own children/);
  const e2 = throwsStatus(() => applyJsonPatch({ a: [1] }, [{ op: 'remove', path: '/a/5' }]), 422, 'Invalid');
  assert.not.match(e2.message, /\n/);
});

test('absurdly deep bodies are refused with 400 by every patch type instead of exhausting the stack', () => {
  let deep: Record<string, unknown> = { leaf: 1 };
  for (let i = 0; i < 5000; i++) deep = { n: deep };
  const live = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' } };
  throwsStatus(() => applyMergePatch(live, { data: deep }), 400, 'BadRequest');
  throwsStatus(() => applyStrategicMergePatch({ ...live, kind: 'Pod' }, { spec: deep }, POD), 400, 'BadRequest');
  throwsStatus(() => applyJsonPatch(live, [{ op: 'add', path: '/data', value: deep }]), 400, 'BadRequest');
  throwsStatus(() => applyServerSide(null, { ...live, data: deep }, { manager: 'm', force: false, kind: CONFIGMAP, now: '2026-01-01T00:00:00Z' }), 400, 'BadRequest');
});

test.run();
