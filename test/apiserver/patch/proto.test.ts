// Keys spelled like Object.prototype members: legal Kubernetes data (a
// ConfigMap may hold a key "__proto__"), and a classic way to corrupt a
// JavaScript server. They must be plain keys everywhere, and never reach the
// prototype chain.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { applyMergePatch, applyServerSide, applyStrategicMergePatch, updateManagedFields } from '../../../src/apiserver/patch/index.ts';
import { CONFIGMAP, POD } from './helpers.ts';

const parse = (s: string) => JSON.parse(s) as object;

function clean(): void {
  assert.is(({} as any).polluted, undefined, 'Object.prototype stays clean');
}

test('merge and strategic patches treat __proto__ and constructor as ordinary keys', () => {
  const live = parse('{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},"data":{"__proto__":"old","x":"1"}}');
  const m = applyMergePatch(live, parse('{"data":{"__proto__":"new","constructor":"c"}}')) as any;
  assert.is(JSON.stringify(m.data), '{"__proto__":"new","x":"1","constructor":"c"}');
  const pod = parse('{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[]}}');
  const s = applyStrategicMergePatch(pod, parse('{"metadata":{"__proto__":{"polluted":1},"labels":{"constructor":"x"}}}'), POD) as any;
  clean();
  assert.is(JSON.stringify(s.metadata), '{"name":"p","__proto__":{"polluted":1},"labels":{"constructor":"x"}}');
  applyStrategicMergePatch(pod, parse('{"spec":{"$setElementOrder/__proto__":[],"__proto__":{"polluted":1}}}'), POD);
  applyStrategicMergePatch(pod, parse('{"spec":{"$deleteFromPrimitiveList/__proto__":["x"]}}'), POD);
  clean();
});

test('apply and managedFields track __proto__ as a field like any other', () => {
  const cfg = parse('{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},"data":{"__proto__":"v"}}');
  const out = applyServerSide(null, cfg, { manager: 'm', force: false, kind: CONFIGMAP, now: '2026-01-01T00:00:00Z' }).object as any;
  assert.is(JSON.stringify(out.data), '{"__proto__":"v"}');
  assert.ok(Object.prototype.hasOwnProperty.call(out.metadata.managedFields[0].fieldsV1['f:data'], 'f:__proto__'));
  const live = applyServerSide(out, parse('{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},"data":{"constructor":"w"}}'), { manager: 'm', force: false, kind: CONFIGMAP, now: '2026-01-01T00:00:01Z' }).object as any;
  assert.is(JSON.stringify(live.data), '{"constructor":"w"}');
  const upd = updateManagedFields(null, parse('{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},"data":{"__proto__":"v"}}'), { manager: 'u', operation: 'Update', kind: CONFIGMAP, now: '2026-01-01T00:00:00Z' }) as any;
  assert.ok(Object.prototype.hasOwnProperty.call(upd.metadata.managedFields[0].fieldsV1['f:data'], 'f:__proto__'));
  clean();
});

test.run();
