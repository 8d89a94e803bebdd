// Strategic merge patch: merge keys from the table, directives, ordering and
// errors. The first tests retell the scenarios of the Kubernetes task page
// "Update API Objects in Place Using kubectl patch" with objects of our own.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { applyStrategicMergePatch } from '../../../src/apiserver/patch/index.ts';
import { DEPLOYMENT, frozen, NODE, POD, SERVICE, SERVICEACCOUNT, throwsStatus, WIDGET } from './helpers.ts';

function deployment(containers: object[], extra: object = {}) {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'shop', namespace: 'default', labels: { app: 'shop' } },
    spec: {
      replicas: 2,
      selector: { matchLabels: { app: 'shop' } },
      template: { metadata: { labels: { app: 'shop' } }, spec: { containers, ...extra } },
      ...('strategy' in extra ? {} : {}),
    },
  };
}

test('a container list is merged by name: the patch adds a container and keeps the existing one', () => {
  const live = frozen(deployment([{ name: 'storefront', image: 'nginx:1.27' }]));
  const out = applyStrategicMergePatch(live, { spec: { template: { spec: { containers: [{ name: 'cache', image: 'redis:7' }] } } } }, DEPLOYMENT) as any;
  // Kubernetes puts the patch's items first when the server's list gives no order between them.
  assert.equal(out.spec.template.spec.containers, [
    { name: 'cache', image: 'redis:7' },
    { name: 'storefront', image: 'nginx:1.27' },
  ]);
  assert.is(out.spec.replicas, 2);
  assert.equal(live.spec.template.spec.containers.length, 1, 'input untouched');
});

test('a patch naming an existing container merges into it, and nested lists merge by their own keys', () => {
  const live = frozen({
    apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' },
    spec: {
      containers: [
        {
          name: 'app', image: 'app:1',
          env: [{ name: 'MODE', value: 'dev' }, { name: 'PORT', value: '80' }],
          ports: [{ containerPort: 80, protocol: 'TCP' }],
          volumeMounts: [{ name: 'data', mountPath: '/data' }],
        },
        { name: 'sidecar', image: 'sidecar:1' },
      ],
    },
  });
  const out = applyStrategicMergePatch(live, {
    spec: {
      containers: [{
        name: 'app', image: 'app:2',
        env: [{ name: 'MODE', value: 'prod' }],
        ports: [{ containerPort: 443 }],
        volumeMounts: [{ mountPath: '/data', readOnly: true }],
      }],
    },
  }, POD) as any;
  const app = out.spec.containers.find((c: any) => c.name === 'app');
  assert.is(app.image, 'app:2');
  assert.equal(app.env, [{ name: 'MODE', value: 'prod' }, { name: 'PORT', value: '80' }]);
  assert.equal(app.ports, [{ containerPort: 443 }, { containerPort: 80, protocol: 'TCP' }]);
  assert.equal(app.volumeMounts, [{ name: 'data', mountPath: '/data', readOnly: true }]);
  assert.equal(out.spec.containers.map((c: any) => c.name), ['app', 'sidecar']);
});

test('tolerations have no merge strategy: a strategic patch replaces the whole list', () => {
  const live = frozen({
    apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'd' },
    spec: { template: { spec: { containers: [{ name: 'c', image: 'i' }], tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'gpu', effect: 'NoSchedule' }] } } },
  });
  const out = applyStrategicMergePatch(live, {
    spec: { template: { spec: { tolerations: [{ key: 'disktype', value: 'ssd', operator: 'Equal', effect: 'NoSchedule' }] } } },
  }, DEPLOYMENT) as any;
  assert.equal(out.spec.template.spec.tolerations, [{ key: 'disktype', value: 'ssd', operator: 'Equal', effect: 'NoSchedule' }]);
  assert.equal(out.spec.template.spec.containers, [{ name: 'c', image: 'i' }]);
});

test('$retainKeys clears the fields it does not name: switching a Deployment to Recreate drops rollingUpdate', () => {
  const live = frozen({
    ...deployment([{ name: 'c', image: 'i' }]),
    spec: { ...deployment([{ name: 'c', image: 'i' }]).spec, strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: '25%', maxUnavailable: '25%' } } },
  });
  // Without the directive the stale rollingUpdate stays (and validation would refuse the object).
  const plain = applyStrategicMergePatch(live, { spec: { strategy: { type: 'Recreate' } } }, DEPLOYMENT) as any;
  assert.equal(plain.spec.strategy, { type: 'Recreate', rollingUpdate: { maxSurge: '25%', maxUnavailable: '25%' } });
  const out = applyStrategicMergePatch(live, { spec: { strategy: { $retainKeys: ['type'], type: 'Recreate' } } }, DEPLOYMENT) as any;
  assert.equal(out.spec.strategy, { type: 'Recreate' });
});

test('$retainKeys must name every field the patch sets (422), and must be a list of names (400)', () => {
  const live = { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'd' }, spec: { strategy: { type: 'RollingUpdate' } } };
  throwsStatus(() => applyStrategicMergePatch(live, { spec: { strategy: { $retainKeys: ['type'], type: 'Recreate', rollingUpdate: {} } } }, DEPLOYMENT), 422, 'Invalid');
  throwsStatus(() => applyStrategicMergePatch(live, { spec: { strategy: { $retainKeys: 'type' } } }, DEPLOYMENT), 400, 'BadRequest');
});

test('$patch: replace as a list item makes the patch list replace the server list', () => {
  const live = frozen({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, spec: { containers: [{ name: 'a', image: 'a' }, { name: 'b', image: 'b' }] } });
  const out = applyStrategicMergePatch(live, { spec: { containers: [{ name: 'c', image: 'c', env: [{ name: 'X', value: '1' }] }, { $patch: 'replace' }] } }, POD) as any;
  assert.equal(out.spec.containers, [{ name: 'c', image: 'c', env: [{ name: 'X', value: '1' }] }]);
});

test('$patch: replace in a map replaces that map; $patch: delete removes it', () => {
  const live = frozen({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', labels: { a: '1', b: '2' }, annotations: { note: 'x' } }, spec: { containers: [] } });
  const replaced = applyStrategicMergePatch(live, { metadata: { labels: { c: '3', $patch: 'replace' } } }, POD) as any;
  assert.equal(replaced.metadata.labels, { c: '3' });
  const deleted = applyStrategicMergePatch(live, { metadata: { annotations: { $patch: 'delete' } } }, POD) as any;
  assert.is(deleted.metadata.annotations, undefined);
  assert.equal(deleted.metadata.labels, { a: '1', b: '2' });
  const merged = applyStrategicMergePatch(live, { metadata: { labels: { $patch: 'merge', c: '3' } } }, POD) as any;
  assert.equal(merged.metadata.labels, { a: '1', b: '2', c: '3' });
});

test('$patch: delete as a list item removes the item with that key', () => {
  const live = frozen({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, spec: { containers: [{ name: 'a', image: 'a' }, { name: 'b', image: 'b' }], volumes: [{ name: 'v1', emptyDir: {} }, { name: 'v2', emptyDir: {} }] } });
  const out = applyStrategicMergePatch(live, { spec: { containers: [{ name: 'a', $patch: 'delete' }], volumes: [{ name: 'v2', $patch: 'delete' }] } }, POD) as any;
  assert.equal(out.spec.containers, [{ name: 'b', image: 'b' }]);
  assert.equal(out.spec.volumes, [{ name: 'v1', emptyDir: {} }]);
  throwsStatus(() => applyStrategicMergePatch(live, { spec: { containers: [{ $patch: 'delete' }] } }, POD), 400, 'BadRequest');
});

test('null deletes a field, at any depth', () => {
  const live = frozen({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', labels: { a: '1', b: '2' } }, spec: { containers: [{ name: 'c', image: 'i', command: ['x'] }] } });
  const out = applyStrategicMergePatch(live, { metadata: { labels: { a: null } }, spec: { containers: [{ name: 'c', command: null }] } }, POD) as any;
  assert.equal(out.metadata.labels, { b: '2' });
  assert.equal(out.spec.containers, [{ name: 'c', image: 'i' }]);
});

test('finalizers merge as a set; $deleteFromPrimitiveList removes values', () => {
  const live = frozen({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', finalizers: ['a/x', 'b/y'] }, spec: {} });
  const added = applyStrategicMergePatch(live, { metadata: { finalizers: ['c/z', 'a/x'] } }, POD) as any;
  assert.equal(added.metadata.finalizers.slice().sort(), ['a/x', 'b/y', 'c/z']);
  assert.is(added.metadata.finalizers.length, 3, 'no duplicates');
  const removed = applyStrategicMergePatch(live, { metadata: { '$deleteFromPrimitiveList/finalizers': ['a/x'] } }, POD) as any;
  assert.equal(removed.metadata.finalizers, ['b/y']);
  const both = applyStrategicMergePatch(live, { metadata: { '$deleteFromPrimitiveList/finalizers': ['b/y'], finalizers: ['d/w'] } }, POD) as any;
  assert.equal(both.metadata.finalizers.slice().sort(), ['a/x', 'd/w']);
  throwsStatus(() => applyStrategicMergePatch(live, { metadata: { '$deleteFromPrimitiveList/finalizers': 'a/x' } }, POD), 400, 'BadRequest');
});

test('$setElementOrder fixes the order of a merged list, as kubectl sends it', () => {
  const live = frozen({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', finalizers: ['x', 'y'] }, spec: { containers: [{ name: 'a', image: 'a' }, { name: 'b', image: 'b' }, { name: 'c', image: 'c' }] } });
  const out = applyStrategicMergePatch(live, {
    metadata: { '$setElementOrder/finalizers': ['y', 'x'] },
    spec: {
      '$setElementOrder/containers': [{ name: 'c' }, { name: 'a' }, { name: 'b' }],
      containers: [{ name: 'a', image: 'a2' }],
    },
  }, POD) as any;
  assert.equal(out.spec.containers.map((c: any) => [c.name, c.image]), [['c', 'c'], ['a', 'a2'], ['b', 'b']]);
  assert.equal(out.metadata.finalizers, ['y', 'x']);
  // A patch item missing from the order list is a malformed patch.
  throwsStatus(() => applyStrategicMergePatch(live, { spec: { '$setElementOrder/containers': [{ name: 'a' }], containers: [{ name: 'z', image: 'z' }] } }, POD), 400, 'BadRequest');
});

test('server-only items keep their place between patch items by the server order', () => {
  const live = frozen({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, spec: { containers: [{ name: 'a' }, { name: 'b' }, { name: 'c' }, { name: 'd' }] } });
  const out = applyStrategicMergePatch(live, { spec: { containers: [{ name: 'c', image: 'c' }, { name: 'a', image: 'a' }] } }, POD) as any;
  // Patch items keep the patch's order (c before a); a server-only item goes
  // before the next patch item when the server had it earlier: b (1) before
  // c (2), but d (3) after both.
  assert.equal(out.spec.containers.map((c: any) => c.name), ['b', 'c', 'a', 'd']);
});

test('merge keys of the table: ownerReferences by uid, conditions by type, Node addresses by type, Service ports by port, ServiceAccount secrets by name', () => {
  const pod = frozen({
    apiVersion: 'v1', kind: 'Pod',
    metadata: { name: 'p', ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'rs', uid: 'u1' }] },
    spec: { containers: [], imagePullSecrets: [{ name: 'reg1' }] },
    status: { conditions: [{ type: 'Ready', status: 'False' }, { type: 'PodScheduled', status: 'True' }] },
  });
  const p = applyStrategicMergePatch(pod, {
    metadata: { ownerReferences: [{ uid: 'u1', controller: true }] },
    spec: { imagePullSecrets: [{ name: 'reg2' }] },
    status: { conditions: [{ type: 'Ready', status: 'True' }] },
  }, POD) as any;
  assert.equal(p.metadata.ownerReferences, [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'rs', uid: 'u1', controller: true }]);
  assert.equal(p.spec.imagePullSecrets.map((s: any) => s.name).sort(), ['reg1', 'reg2']);
  assert.equal(p.status.conditions.find((c: any) => c.type === 'Ready').status, 'True');
  assert.is(p.status.conditions.length, 2);

  const node = frozen({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'n' }, status: { addresses: [{ type: 'InternalIP', address: '10.0.0.1' }, { type: 'Hostname', address: 'n' }] } });
  const n = applyStrategicMergePatch(node, { status: { addresses: [{ type: 'InternalIP', address: '10.0.0.2' }] } }, NODE) as any;
  assert.equal(n.status.addresses, [{ type: 'InternalIP', address: '10.0.0.2' }, { type: 'Hostname', address: 'n' }]);

  const svc = frozen({ apiVersion: 'v1', kind: 'Service', metadata: { name: 's' }, spec: { ports: [{ name: 'http', port: 80, targetPort: 8080 }], selector: { app: 'a' } } });
  const s = applyStrategicMergePatch(svc, { spec: { ports: [{ port: 80, targetPort: 9090 }, { port: 443, name: 'https' }] } }, SERVICE) as any;
  assert.equal(s.spec.ports, [{ name: 'http', port: 80, targetPort: 9090 }, { port: 443, name: 'https' }]);

  const sa = frozen({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'sa' }, secrets: [{ name: 't1' }] });
  const a = applyStrategicMergePatch(sa, { secrets: [{ name: 't2' }] }, SERVICEACCOUNT) as any;
  assert.equal(a.secrets.map((x: any) => x.name).sort(), ['t1', 't2']);
});

test('lists without a merge key are replaced, maps are merged', () => {
  const live = frozen({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, spec: { containers: [{ name: 'c', command: ['a', 'b'], args: ['x'] }], nodeSelector: { zone: 'a' } } });
  const out = applyStrategicMergePatch(live, { spec: { containers: [{ name: 'c', command: ['z'] }], nodeSelector: { disk: 'ssd' } } }, POD) as any;
  assert.equal(out.spec.containers[0].command, ['z']);
  assert.equal(out.spec.containers[0].args, ['x']);
  assert.equal(out.spec.nodeSelector, { zone: 'a', disk: 'ssd' });
});

test('directives inside new subtrees never reach the object', () => {
  const live = frozen({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, spec: { containers: [{ name: 'c', image: 'i' }] } });
  const out = applyStrategicMergePatch(live, {
    metadata: { labels: { a: '1', gone: null, $patch: 'merge' } },
    spec: { containers: [{ name: 'c', env: [{ name: 'X', value: '1' }, { name: 'Y', $patch: 'delete' }] }] },
  }, POD) as any;
  assert.equal(out.metadata.labels, { a: '1' });
  assert.equal(out.spec.containers[0].env, [{ name: 'X', value: '1' }]);
  assert.not.ok(JSON.stringify(out).includes('$'));
});

test('kinds without a merge-key table are refused with 415, as for custom resources', () => {
  const e = throwsStatus(() => applyStrategicMergePatch({ apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w' } }, { spec: {} }, WIDGET), 415, 'UnsupportedMediaType');
  assert.match(e.message, /application\/merge-patch\+json/);
});

test('malformed patches are 400: not an object, bad JSON text, unknown directives, items without a merge key; lists of lists are 422', () => {
  const live = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, spec: { containers: [{ name: 'c' }] } };
  throwsStatus(() => applyStrategicMergePatch(live, [1], POD), 400, 'BadRequest');
  throwsStatus(() => applyStrategicMergePatch(live, '{"spec":', POD), 400, 'BadRequest');
  throwsStatus(() => applyStrategicMergePatch(live, { spec: { $patch: 'explode' } }, POD), 400, 'BadRequest');
  throwsStatus(() => applyStrategicMergePatch(live, { spec: { $bogus: 1 } }, POD), 400, 'BadRequest');
  throwsStatus(() => applyStrategicMergePatch(live, { spec: { containers: [{ image: 'no-name' }] } }, POD), 400, 'BadRequest');
  throwsStatus(() => applyStrategicMergePatch(live, { spec: { containers: ['c'] } }, POD), 400, 'BadRequest');
  throwsStatus(() => applyStrategicMergePatch(live, { metadata: { finalizers: [['a']] } }, POD), 422, 'Invalid');
});

test('a raw JSON body is accepted as text or bytes', () => {
  const live = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, spec: { containers: [{ name: 'c' }] } };
  const out = applyStrategicMergePatch(live, Buffer.from('{"metadata":{"labels":{"a":"1"}}}'), POD) as any;
  assert.equal(out.metadata.labels, { a: '1' });
});

test('a field whose type changes takes the patch value', () => {
  const live = frozen({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', annotations: { a: 'x' } }, spec: { containers: [] } });
  const out = applyStrategicMergePatch(live, { metadata: { annotations: 'oops' } }, POD) as any;
  assert.is(out.metadata.annotations, 'oops');
});

test('a patch shaped like the one kubectl apply sends: ordering directives, deletes inside nested lists, retained volume keys', () => {
  const live = frozen({
    apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web', annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{}' } },
    spec: {
      replicas: 2,
      template: {
        metadata: { labels: { app: 'web' } },
        spec: {
          containers: [
            { name: 'nginx', image: 'nginx:1.27', env: [{ name: 'A', value: '1' }, { name: 'B', value: '2' }], imagePullPolicy: 'IfNotPresent' },
            { name: 'side', image: 'busybox' },
          ],
          volumes: [{ name: 'data', emptyDir: {} }, { name: 'logs', emptyDir: {} }],
        },
      },
    },
  });
  const out = applyStrategicMergePatch(live, {
    metadata: { annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{"new":true}' } },
    spec: {
      replicas: 3,
      template: {
        spec: {
          '$setElementOrder/containers': [{ name: 'nginx' }],
          '$setElementOrder/volumes': [{ name: 'data' }, { name: 'logs' }],
          containers: [
            { '$setElementOrder/env': [{ name: 'B' }], env: [{ $patch: 'delete', name: 'A' }], image: 'nginx:1.28', name: 'nginx' },
            { $patch: 'delete', name: 'side' },
          ],
          volumes: [{ $retainKeys: ['configMap', 'name'], configMap: { name: 'settings' }, name: 'data' }],
        },
      },
    },
  }, DEPLOYMENT) as any;
  assert.is(out.spec.replicas, 3);
  assert.equal(out.spec.template.spec.containers, [{ name: 'nginx', image: 'nginx:1.28', env: [{ name: 'B', value: '2' }], imagePullPolicy: 'IfNotPresent' }]);
  assert.equal(out.spec.template.spec.volumes, [{ name: 'data', configMap: { name: 'settings' } }, { name: 'logs', emptyDir: {} }]);
  assert.is(out.metadata.annotations['kubectl.kubernetes.io/last-applied-configuration'], '{"new":true}');
});

test('an empty patch list leaves a merged list alone; null deletes it', () => {
  const live = frozen({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', finalizers: ['a'] }, spec: { containers: [{ name: 'c' }] } });
  const same = applyStrategicMergePatch(live, { metadata: { finalizers: [] }, spec: { containers: [] } }, POD) as any;
  assert.equal(same.metadata.finalizers, ['a']);
  assert.equal(same.spec.containers, [{ name: 'c' }]);
  const gone = applyStrategicMergePatch(live, { metadata: { finalizers: null } }, POD) as any;
  assert.is(gone.metadata.finalizers, undefined);
});

test('long lists merge in n log n: 20,000 finalizers and env entries with ordering directives', () => {
  const n = 20_000;
  const fin = Array.from({ length: n }, (_, i) => `example.com/f${i}`);
  const env = Array.from({ length: n }, (_, i) => ({ name: `V${i}`, value: String(i) }));
  const live = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', finalizers: fin }, spec: { containers: [{ name: 'c', env }] } };
  const out = applyStrategicMergePatch(live, {
    metadata: { finalizers: ['example.com/new'], '$deleteFromPrimitiveList/finalizers': fin.slice(0, 10) },
    spec: { containers: [{ name: 'c', '$setElementOrder/env': [...env].reverse().map((e) => ({ name: e.name })), env: [{ name: 'V7', value: 'seven' }] }] },
  }, POD) as any;
  assert.is(out.metadata.finalizers.length, n - 10 + 1);
  const outEnv = out.spec.containers[0].env;
  assert.is(outEnv.length, n);
  assert.equal(outEnv[0], { name: `V${n - 1}`, value: String(n - 1) });
  assert.equal(outEnv.find((e: any) => e.name === 'V7'), { name: 'V7', value: 'seven' });
});

test.run();
