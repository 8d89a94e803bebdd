// Every resource the API server serves, in discovery order.
import { configmaps, secrets } from './configmaps.ts';
import {
  apiservices, clusterrolebindings, clusterroles, endpoints, endpointslices, events, leases, priorityclasses, rolebindings, roles,
  selfsubjectaccessreviews, selfsubjectreviews, selfsubjectrulesreviews, serviceaccounts,
} from './misc.ts';
import { namespaces } from './namespaces.ts';
import { nodes } from './nodes.ts';
import { pods } from './pods.ts';
import { services } from './services.ts';
import type { ResourceDef } from './types.ts';
import { daemonsets, deployments, replicasets } from './workloads.ts';

export type { KObject, ResourceDef } from './types.ts';

export const builtinResources: ResourceDef[] = [
  namespaces, pods, nodes, services, endpoints, configmaps, secrets, serviceaccounts, events,
  deployments, replicasets, daemonsets,
  leases, endpointslices, priorityclasses,
  roles, clusterroles, rolebindings, clusterrolebindings,
  selfsubjectaccessreviews, selfsubjectrulesreviews, selfsubjectreviews, apiservices,
];
