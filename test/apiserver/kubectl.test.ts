// kubectl v1.32 (/usr/bin/kubectl) against a Keelson API server on a random
// loopback port: the everyday commands, end to end.
import { existsSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { defaultAdmissionPlugins } from '../../src/apiserver/admission/index.ts';
import { kubectl, ok, startServer, type TestServer } from './helpers.ts';

let s: TestServer;
const k = (args: string[], input?: string) => ok(s.kubeconfig, args, input);

test.before(async () => { s = await startServer({ admissionPlugins: defaultAdmissionPlugins() }); });
test.after(async () => { await s?.stop(); });

const manifest = `apiVersion: v1
kind: ConfigMap
metadata:
  name: cfg
data:
  a: "1"
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: nginx
        image: nginx:1.25
        ports: [{containerPort: 80}]
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports: [{port: 80}]
`;

test('kubectl is installed', () => {
  assert.ok(existsSync('/usr/bin/kubectl'));
});

test('api-resources lists the served kinds', async () => {
  const out = await k(['api-resources']);
  for (const r of ['pods', 'deployments', 'configmaps', 'namespaces', 'leases', 'clusterroles', 'priorityclasses']) assert.match(out, new RegExp(`^${r}\\s`, 'm'));
});

test('apply -f with several documents, then again: unchanged', async () => {
  const out = await k(['apply', '-f', '-'], manifest);
  assert.match(out, /configmap\/cfg created/);
  assert.match(out, /deployment.apps\/web created/);
  assert.match(out, /service\/web created/);
  const again = await k(['apply', '-f', '-'], manifest);
  assert.match(again, /deployment.apps\/web unchanged/);
});

test('get: tables, wide, yaml, json, jsonpath', async () => {
  const t = await k(['get', 'deploy']);
  assert.match(t, /^NAME\s+READY\s+UP-TO-DATE\s+AVAILABLE\s+AGE/m);
  assert.match(t, /^web\s+0\/2\s+0\s+0\s+/m);
  const wide = await k(['get', 'deploy', '-o', 'wide']);
  assert.match(wide, /CONTAINERS\s+IMAGES\s+SELECTOR/);
  assert.match(wide, /nginx\s+nginx:1.25\s+app=web/);
  const y = await k(['get', 'cm', 'cfg', '-o', 'yaml']);
  assert.match(y, /^kind: ConfigMap/m);
  assert.match(y, /resourceVersion: "\d+"/);
  const j = JSON.parse(await k(['get', 'svc', 'web', '-o', 'json']));
  assert.is(j.spec.type, 'ClusterIP');
  assert.match(j.spec.clusterIP, /^10\.96\./);
  assert.is(await k(['get', 'deploy', 'web', '-o', 'jsonpath={.spec.template.spec.containers[0].image}']), 'nginx:1.25');
  const svc = await k(['get', 'svc']);
  assert.match(svc, /^NAME\s+TYPE\s+CLUSTER-IP\s+EXTERNAL-IP\s+PORT\(S\)\s+AGE/m);
  assert.match(svc, /web\s+ClusterIP\s+10\.96\.\S+\s+<none>\s+80\/TCP/);
});

test('run, label selectors, field selectors, -A', async () => {
  await k(['run', 'p1', '--image=busybox', '--labels=tier=a']);
  await k(['run', 'p2', '--image=busybox', '--labels=tier=b']);
  await k(['create', 'namespace', 'other']);
  await k(['run', 'p3', '-n', 'other', '--image=busybox', '--labels=tier=a']);
  const a = await k(['get', 'pods', '-l', 'tier=a', '-o', 'name']);
  assert.is(a.trim(), 'pod/p1');
  const notA = await k(['get', 'pods', '-l', 'tier!=a', '-o', 'name']);
  assert.is(notA.trim(), 'pod/p2');
  const inSet = await k(['get', 'pods', '-l', 'tier in (a,b)', '-o', 'name']);
  assert.is(inSet.trim().split('\n').length, 2);
  const all = await k(['get', 'pods', '-A', '-l', 'tier=a']);
  assert.match(all, /^NAMESPACE\s+NAME\s+READY\s+STATUS/m);
  assert.match(all, /^default\s+p1\s+0\/1\s+Pending/m);
  assert.match(all, /^other\s+p3\s+/m);
  const fs = await k(['get', 'pods', '-A', '--field-selector', 'metadata.namespace=other', '-o', 'name']);
  assert.is(fs.trim(), 'pod/p3');
  const phase = await k(['get', 'pods', '--field-selector', 'status.phase=Pending,metadata.name=p2', '-o', 'name']);
  assert.is(phase.trim(), 'pod/p2');
  const bad = await kubectl(s.kubeconfig, ['get', 'pods', '--field-selector', 'spec.bogus=x']);
  assert.is.not(bad.code, 0);
  assert.match(bad.stderr, /field label not supported: spec.bogus/);
});

test('label, annotate, describe', async () => {
  await k(['label', 'pod', 'p1', 'color=blue']);
  await k(['annotate', 'pod', 'p1', 'note=hello']);
  const p = JSON.parse(await k(['get', 'pod', 'p1', '-o', 'json']));
  assert.is(p.metadata.labels.color, 'blue');
  assert.is(p.metadata.annotations.note, 'hello');
  await k(['label', 'pod', 'p1', 'color-']);
  const p2 = JSON.parse(await k(['get', 'pod', 'p1', '-o', 'json']));
  assert.is(p2.metadata.labels.color, undefined);
  const d = await k(['describe', 'deploy', 'web']);
  assert.match(d, /Name:\s+web/);
  assert.match(d, /Replicas:\s+2 desired/);
  const dp = await k(['describe', 'pod', 'p1']);
  assert.match(dp, /Name:\s+p1/);
  assert.match(dp, /Image:\s+busybox/);
});

test('patch: merge, json, strategic', async () => {
  await k(['patch', 'cm', 'cfg', '--type=merge', '-p', '{"data":{"b":"2"}}']);
  await k(['patch', 'cm', 'cfg', '--type=json', '-p', '[{"op":"replace","path":"/data/a","value":"9"}]']);
  await k(['patch', 'deploy', 'web', '-p', '{"spec":{"template":{"spec":{"containers":[{"name":"nginx","image":"nginx:1.26"}]}}}}']);
  const cm = JSON.parse(await k(['get', 'cm', 'cfg', '-o', 'json']));
  assert.equal(cm.data, { a: '9', b: '2' });
  const d = JSON.parse(await k(['get', 'deploy', 'web', '-o', 'json']));
  assert.is(d.spec.template.spec.containers.length, 1);
  assert.is(d.spec.template.spec.containers[0].image, 'nginx:1.26');
  assert.is(d.spec.template.spec.containers[0].ports[0].containerPort, 80);
  assert.is(d.metadata.generation, 2);
});

test('scale', async () => {
  assert.match(await k(['scale', 'deploy', 'web', '--replicas=5']), /scaled/);
  assert.is(await k(['get', 'deploy', 'web', '-o', 'jsonpath={.spec.replicas}']), '5');
});

test('apply --server-side', async () => {
  const cm = 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\ndata:\n  x: "1"\n';
  assert.match(await k(['apply', '--server-side', '-f', '-'], cm), /configmap\/ssa serverside-applied/);
  const got = JSON.parse(await k(['get', 'cm', 'ssa', '-o', 'json']));
  assert.is(got.data.x, '1');
  assert.match(await k(['apply', '--server-side', '-f', '-'], cm.replace('"1"', '"2"')), /serverside-applied/);
  assert.is(await k(['get', 'cm', 'ssa', '-o', 'jsonpath={.data.x}']), '2');
});

test('explain', async () => {
  const out = await k(['explain', 'deployment.spec.replicas']);
  assert.match(out, /FIELD: replicas <integer>/);
  assert.match(out, /Number of desired pods/);
  const pod = await k(['explain', 'pods.spec.containers']);
  assert.match(pod, /FIELD: containers <\[\]Container>/);
});

test('auth can-i', async () => {
  assert.is((await k(['auth', 'can-i', 'create', 'pods'])).trim(), 'yes');
});

test('create configmap, secret and namespace (protobuf bodies)', async () => {
  await k(['create', 'configmap', 'c2', '--from-literal=k=v']);
  await k(['create', 'secret', 'generic', 's1', '--from-literal=p=q']);
  const sec = JSON.parse(await k(['get', 'secret', 's1', '-o', 'json']));
  assert.is(sec.type, 'Opaque');
  assert.is(Buffer.from(sec.data.p, 'base64').toString(), 'q');
  assert.match(await k(['get', 'cm', 'c2']), /^c2\s+1\s+/m);
});

test('create deployment and service (protobuf bodies), auth whoami', async () => {
  await k(['create', 'deployment', 'made', '--image=nginx:1.27', '--port=8080', '--replicas=3']);
  const d = JSON.parse(await k(['get', 'deploy', 'made', '-o', 'json']));
  assert.is(d.spec.replicas, 3);
  assert.equal(d.spec.selector.matchLabels, { app: 'made' });
  assert.is(d.spec.template.spec.containers[0].image, 'nginx:1.27');
  assert.is(d.spec.template.spec.containers[0].ports[0].containerPort, 8080);
  assert.is(d.spec.strategy.type, 'RollingUpdate');
  await k(['create', 'service', 'clusterip', 'made', '--tcp=80:8080']);
  const svc = JSON.parse(await k(['get', 'svc', 'made', '-o', 'json']));
  assert.equal(svc.spec.ports[0], { name: '80-8080', protocol: 'TCP', port: 80, targetPort: 8080 });
  assert.match(await k(['auth', 'whoami']), /Username\s+system:admin/);
  // A protobuf body with a field this server does not decode is refused, not silently trimmed.
  const job = await kubectl(s.kubeconfig, ['create', 'job', 'j', '--image=x']);
  assert.is.not(job.code, 0);
});

test('get -w sees a change, then delete --wait', async () => {
  const watch = kubectl(s.kubeconfig, ['get', 'cm', 'cfg', '-w', '--request-timeout=4s', '-o', 'name']);
  await new Promise((r) => setTimeout(r, 1500));
  await k(['label', 'cm', 'cfg', 'seen=yes']);
  const w = await watch;
  assert.ok(w.stdout.split('\n').filter((l) => l === 'configmap/cfg').length >= 2, w.stdout + w.stderr);
  assert.match(await k(['delete', 'cm', 'cfg', '--wait']), /configmap "cfg" deleted/);
  const gone = await kubectl(s.kubeconfig, ['get', 'cm', 'cfg']);
  assert.is.not(gone.code, 0);
  assert.match(gone.stderr, /NotFound|not found/);
});

test('delete a namespace: its objects go, then it does', async () => {
  await k(['create', 'namespace', 'gone']);
  await k(['create', 'configmap', 'inside', '-n', 'gone', '--from-literal=a=b']);
  assert.match(await k(['get', 'sa', '-n', 'gone']), /^default\s/m);
  assert.match(await k(['delete', 'namespace', 'gone', '--wait', '--timeout=20s']), /namespace "gone" deleted/);
  const r = await kubectl(s.kubeconfig, ['get', 'ns', 'gone']);
  assert.is.not(r.code, 0);
});

test('admission: no pods in a missing namespace', async () => {
  const r = await kubectl(s.kubeconfig, ['run', 'x', '-n', 'nope', '--image=busybox']);
  assert.is.not(r.code, 0);
  assert.match(r.stderr, /namespaces "nope" not found/);
});

test.run();
