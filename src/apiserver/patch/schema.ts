// The merge-key table: for each built-in kind, which lists are merged by key
// and which maps are atomic. Strategic merge patch and server-side apply both
// read it; they differ only where Kubernetes declares different semantics for
// the same field (the strategic `patchMergeKey` is one field, while the apply
// `listMapKey`s may be several, e.g. container ports are merged by
// containerPort in a strategic patch but keyed by containerPort+protocol in
// server-side apply).
//
// A node describes one position in an object. Anything not described is the
// default: a map is merged field by field (granular), a list is atomic
// (replaced whole by a strategic patch, owned as one leaf by apply). Kinds
// missing from the table (custom or aggregated resources) are handled with
// that default everywhere, except that strategic merge refuses them, as
// Kubernetes does.

export interface GroupVersionKind {
  group: string;
  version: string;
  kind: string;
}

export interface ListSchema {
  /** Strategic merge: `merge` merges by `smpKey` (lists of maps) or as a set (primitive lists); `replace` replaces. */
  smp: 'merge' | 'replace';
  /** The strategic patch merge key; absent for primitive lists merged as sets. */
  smpKey?: string;
  /** Server-side apply list type. */
  ssa: 'atomic' | 'set' | 'map';
  /** Apply keys of a `map` list, in any order (serialized sorted). */
  ssaKeys?: string[];
  /** Values assumed for key fields an item omits (Kubernetes defaults protocol to TCP). */
  keyDefaults?: Record<string, string | number | boolean>;
  /** The type of the list's items. */
  elem?: TypeNode;
}

export interface TypeNode {
  /** Known fields of a struct. Unknown fields get the default node. */
  fields?: Record<string, TypeNode>;
  /** Set when the node is a list. */
  list?: ListSchema;
  /** An atomic map or struct: apply owns it as one leaf and replaces it whole. */
  atomic?: boolean;
  /**
   * A struct (or required list) that a Kubernetes server always serializes,
   * even empty (a non-pointer Go struct such as spec or metadata, the
   * containers list of a pod spec). Field ownership for an
   * update never lists such a node itself, only its children, which is how
   * Kubernetes' managedFields look.
   */
  struct?: boolean;
}

const DEFAULT_NODE: TypeNode = {};

export function childNode(t: TypeNode | undefined, field: string): TypeNode {
  return t?.fields?.[field] ?? DEFAULT_NODE;
}

/** A list of maps merged by `key` in a strategic patch and keyed by `ssaKeys` (default: [key]) in apply. */
function keyed(key: string, elem?: TypeNode, ssaKeys?: string[], keyDefaults?: ListSchema['keyDefaults']): TypeNode {
  return { list: { smp: 'merge', smpKey: key, ssa: 'map', ssaKeys: ssaKeys ?? [key], keyDefaults, elem } };
}

/** A primitive list merged as a set by both strategic merge and apply (finalizers). */
const set: TypeNode = { list: { smp: 'merge', ssa: 'set' } };
/** An atomic list (the default, spelled out where Kubernetes documents it to avoid surprise). */
const atomicList: TypeNode = { list: { smp: 'replace', ssa: 'atomic' } };
/** A list replaced by strategic merge but keyed for apply (no patch strategy, listType=map). */
function applyKeyed(keys: string[]): TypeNode {
  return { list: { smp: 'replace', ssa: 'map', ssaKeys: keys } };
}

function struct(fields: Record<string, TypeNode>): TypeNode {
  return { struct: true, fields };
}

const labelSelector: TypeNode = { atomic: true };

const conditions = keyed('type');

export const objectMeta: TypeNode = struct({
  finalizers: set,
  ownerReferences: keyed('uid'),
  managedFields: atomicList,
});

const container: TypeNode = {
  fields: {
    ports: keyed('containerPort', undefined, ['containerPort', 'protocol'], { protocol: 'TCP' }),
    env: keyed('name'),
    volumeMounts: keyed('mountPath'),
    volumeDevices: keyed('devicePath'),
    resources: { fields: { claims: applyKeyed(['name']) } },
    command: atomicList,
    args: atomicList,
    envFrom: atomicList,
  },
};

export const podSpec: TypeNode = struct({
  volumes: keyed('name'),
  initContainers: keyed('name', container),
  // Always serialized by Kubernetes (a required list), so like a struct it is never owned itself.
  containers: { ...keyed('name', container), struct: true },
  ephemeralContainers: keyed('name', container),
  imagePullSecrets: keyed('name'),
  hostAliases: keyed('ip'),
  topologySpreadConstraints: keyed('topologyKey', undefined, ['topologyKey', 'whenUnsatisfiable']),
  schedulingGates: keyed('name'),
  resourceClaims: keyed('name'),
  // Tolerations and readiness gates have no patch strategy in Kubernetes: a
  // strategic patch replaces them whole.
  tolerations: atomicList,
  readinessGates: atomicList,
  nodeSelector: { atomic: true },
});

const podStatus: TypeNode = struct({
  conditions,
  podIPs: keyed('ip'),
  // Merged by ip in a strategic patch, but atomic for apply.
  hostIPs: { list: { smp: 'merge', smpKey: 'ip', ssa: 'atomic' } },
  resourceClaimStatuses: keyed('name'),
});

export const podTemplateSpec: TypeNode = struct({ metadata: objectMeta, spec: podSpec });

/** Workload specs share selector + template. */
function workload(extraSpec: Record<string, TypeNode>): TypeNode {
  return struct({
    metadata: objectMeta,
    spec: struct({ selector: labelSelector, template: podTemplateSpec, ...extraSpec }),
    status: struct({ conditions }),
  });
}

function withMeta(fields: Record<string, TypeNode>): TypeNode {
  return struct({ metadata: objectMeta, ...fields });
}

const kinds: Record<string, TypeNode> = {
  'core/v1/Pod': withMeta({ spec: podSpec, status: podStatus }),
  'core/v1/PodTemplate': withMeta({ template: podTemplateSpec }),
  'core/v1/Node': withMeta({
    spec: struct({ podCIDRs: set, taints: atomicList }),
    status: struct({ conditions, addresses: keyed('type'), images: atomicList, volumesInUse: atomicList, volumesAttached: atomicList }),
  }),
  'core/v1/Service': withMeta({
    spec: struct({
      ports: keyed('port', undefined, ['port', 'protocol'], { protocol: 'TCP' }),
      selector: { atomic: true },
      clusterIPs: atomicList,
      externalIPs: atomicList,
      ipFamilies: atomicList,
    }),
    status: struct({ conditions }),
  }),
  'core/v1/Endpoints': withMeta({ subsets: atomicList }),
  'core/v1/ConfigMap': withMeta({}),
  'core/v1/Secret': withMeta({}),
  'core/v1/ServiceAccount': withMeta({ secrets: keyed('name'), imagePullSecrets: atomicList }),
  'core/v1/Namespace': withMeta({ spec: struct({ finalizers: atomicList }), status: struct({ conditions }) }),
  'core/v1/Event': withMeta({}),
  // Deployment.spec.strategy carries patchStrategy retainKeys; the directive is
  // honoured wherever it appears, so it needs no mark here.
  'apps/v1/Deployment': workload({ strategy: struct({}) }),
  'apps/v1/ReplicaSet': workload({}),
  'apps/v1/DaemonSet': workload({}),
  'coordination.k8s.io/v1/Lease': withMeta({ spec: struct({}) }),
  'discovery.k8s.io/v1/EndpointSlice': withMeta({ endpoints: atomicList, ports: atomicList }),
  'rbac.authorization.k8s.io/v1/Role': withMeta({ rules: atomicList }),
  'rbac.authorization.k8s.io/v1/ClusterRole': withMeta({ rules: atomicList }),
  'rbac.authorization.k8s.io/v1/RoleBinding': withMeta({ subjects: atomicList, roleRef: { atomic: true } }),
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding': withMeta({ subjects: atomicList, roleRef: { atomic: true } }),
  'scheduling.k8s.io/v1/PriorityClass': withMeta({}),
  'apiregistration.k8s.io/v1/APIService': withMeta({ spec: struct({}), status: struct({ conditions }) }),
  // The scale subresource's object, patched by `kubectl scale` and autoscalers.
  'autoscaling/v1/Scale': withMeta({ spec: struct({}), status: struct({}) }),
};

/** The schema of a built-in kind, or undefined for kinds Keelson has no table for. */
export function schemaFor(gvk: GroupVersionKind): TypeNode | undefined {
  return kinds[`${gvk.group || 'core'}/${gvk.version}/${gvk.kind}`];
}

/** Schema used for kinds without a table: maps granular, lists atomic, metadata as everywhere. */
export const deducedSchema: TypeNode = withMeta({});

export function apiVersionOf(gvk: GroupVersionKind): string {
  return gvk.group ? `${gvk.group}/${gvk.version}` : gvk.version;
}
