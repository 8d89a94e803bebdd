// core/v1 nodes: cluster-scoped, with status written by the node's agent.
import { age, ageColumn, nameColumn } from './common.ts';
import type { KObject, ResourceDef } from './types.ts';

function nodeStatus(o: KObject): string {
  const ready = (o.status?.conditions ?? []).find((c: KObject) => c.type === 'Ready');
  let s = ready?.status === 'True' ? 'Ready' : ready ? 'NotReady' : 'Unknown';
  if (o.spec?.unschedulable) s += ',SchedulingDisabled';
  return s;
}

function roles(o: KObject): string {
  const r = Object.keys(o.metadata?.labels ?? {}).filter((k) => k.startsWith('node-role.kubernetes.io/')).map((k) => k.slice('node-role.kubernetes.io/'.length));
  return r.length ? r.sort().join(',') : '<none>';
}

const address = (o: KObject, type: string) => (o.status?.addresses ?? []).find((a: KObject) => a.type === type)?.address ?? '<none>';

export const nodes: ResourceDef = {
  group: '', version: 'v1', resource: 'nodes', kind: 'Node', singular: 'node', shortNames: ['no'],
  namespaced: false, hasStatus: true, storagePrefix: 'minions', schemaName: 'io.k8s.api.core.v1.Node', nameRule: 'subdomain',
  fields: { 'spec.unschedulable': (o) => String(o.spec?.unschedulable ?? false) },
  table: {
    columns: [
      nameColumn,
      { name: 'Status', type: 'string', description: 'The status of the node' },
      { name: 'Roles', type: 'string', description: 'The roles of the node' },
      ageColumn,
      { name: 'Version', type: 'string', description: 'Kubelet Version reported by the node.' },
      { name: 'Internal-IP', type: 'string', priority: 1, description: 'List of addresses reachable to the node.' },
      { name: 'External-IP', type: 'string', priority: 1, description: 'List of addresses reachable to the node.' },
      { name: 'OS-Image', type: 'string', priority: 1, description: 'OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).' },
      { name: 'Kernel-Version', type: 'string', priority: 1, description: 'Kernel Version reported by the node.' },
      { name: 'Container-Runtime', type: 'string', priority: 1, description: 'ContainerRuntime Version reported by the node.' },
    ],
    row: (o, now) => [
      o.metadata?.name, nodeStatus(o), roles(o), age(o, now), o.status?.nodeInfo?.kubeletVersion ?? '',
      address(o, 'InternalIP'), address(o, 'ExternalIP'), o.status?.nodeInfo?.osImage ?? '<unknown>',
      o.status?.nodeInfo?.kernelVersion ?? '<unknown>', o.status?.nodeInfo?.containerRuntimeVersion ?? '<unknown>',
    ],
  },
};
