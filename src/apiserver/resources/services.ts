// core/v1 services, with a cluster IP picked on create from 10.96.0.0/16.
// The pick hashes the uid; a collision is possible and is not detected yet
// (no IP allocator bitmap), which docs/kubernetes-api.md states.
import { createHash } from 'node:crypto';
import type { StatusCause } from 'kubernetes-types/meta/v1.js';
import { age, ageColumn, mapSelectorString, nameColumn, oneOf } from './common.ts';
import { fieldCause, type KObject, type ResourceDef } from './types.ts';

function pickClusterIp(uid: string): string {
  const h = createHash('sha256').update(uid).digest();
  return `10.96.${h[0]}.${(h[1]! % 254) + 1}`;
}

function ports(o: KObject): string {
  const ps: KObject[] = o.spec?.ports ?? [];
  if (!ps.length) return '<none>';
  return ps.map((p) => (p.nodePort ? `${p.port}:${p.nodePort}/${p.protocol ?? 'TCP'}` : `${p.port}/${p.protocol ?? 'TCP'}`)).join(',');
}

export const services: ResourceDef = {
  group: '', version: 'v1', resource: 'services', kind: 'Service', singular: 'service', shortNames: ['svc'], categories: ['all'],
  namespaced: true, hasStatus: true, storagePrefix: 'services/specs', schemaName: 'io.k8s.api.core.v1.Service', nameRule: 'label1035',
  defaults(o) {
    const spec = (o.spec ??= {});
    spec.type ??= 'ClusterIP';
    spec.sessionAffinity ??= 'None';
    spec.ipFamilyPolicy ??= 'SingleStack';
    spec.internalTrafficPolicy ??= 'Cluster';
    for (const p of spec.ports ?? []) { p.protocol ??= 'TCP'; p.targetPort ??= p.port; }
  },
  prepareForCreate(o) {
    const spec = o.spec!;
    if (spec.type !== 'ExternalName' && spec.clusterIP === undefined) spec.clusterIP = pickClusterIp(o.metadata!.uid);
    if (spec.clusterIP && spec.clusterIP !== 'None') { spec.clusterIPs = [spec.clusterIP]; spec.ipFamilies = ['IPv4']; }
    o.status = { loadBalancer: {} };
  },
  prepareForUpdate(o, old) {
    // The cluster IP is allocated once; an update that omits it keeps it.
    if (o.spec && o.spec.clusterIP === undefined) { o.spec.clusterIP = old.spec?.clusterIP; o.spec.clusterIPs = old.spec?.clusterIPs; }
  },
  validate(o) {
    const causes: StatusCause[] = [];
    oneOf(o, 'spec.type', ['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName'], causes);
    oneOf(o, 'spec.sessionAffinity', ['None', 'ClientIP'], causes);
    const ps: KObject[] = o.spec?.ports ?? [];
    if (o.spec?.type !== 'ExternalName' && o.spec?.clusterIP !== 'None' && ps.length === 0) causes.push(fieldCause('spec.ports', 'Required value', 'FieldValueRequired'));
    ps.forEach((p, i) => {
      if (!Number.isInteger(p.port) || p.port < 1 || p.port > 65535) causes.push(fieldCause(`spec.ports[${i}].port`, `Invalid value: ${JSON.stringify(p.port)}: must be between 1 and 65535, inclusive`));
      if (ps.length > 1 && !p.name) causes.push(fieldCause(`spec.ports[${i}].name`, 'Required value', 'FieldValueRequired'));
      oneOf(p, 'protocol', ['TCP', 'UDP', 'SCTP'], causes);
    });
    return causes;
  },
  validateUpdate(o, old) {
    const causes: StatusCause[] = [];
    if (old.spec?.clusterIP && o.spec?.clusterIP !== old.spec.clusterIP && old.spec.type === o.spec?.type) causes.push(fieldCause('spec.clusterIPs[0]', 'Invalid value: field is immutable'));
    return causes;
  },
  table: {
    columns: [
      nameColumn,
      { name: 'Type', type: 'string', description: 'type determines how the Service is exposed.' },
      { name: 'Cluster-IP', type: 'string', description: 'clusterIP is the IP address of the service.' },
      { name: 'External-IP', type: 'string', description: 'externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.' },
      { name: 'Port(s)', type: 'string', description: 'The list of ports that are exposed by this service.' },
      ageColumn,
      { name: 'Selector', type: 'string', priority: 1, description: 'Route service traffic to pods with label keys and values matching this selector.' },
    ],
    row: (o, now) => [
      o.metadata?.name, o.spec?.type, o.spec?.clusterIP ?? '<none>',
      o.spec?.externalIPs?.length ? o.spec.externalIPs.join(',') : o.spec?.type === 'LoadBalancer' ? '<pending>' : o.spec?.type === 'ExternalName' ? o.spec.externalName : '<none>',
      ports(o), age(o, now), mapSelectorString(o.spec?.selector),
    ],
  },
};
