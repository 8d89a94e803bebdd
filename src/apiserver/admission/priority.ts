// Priority: a pod's spec.priorityClassName is resolved to the integer
// spec.priority (and its preemptionPolicy) from the PriorityClass objects, so
// that the scheduler never has to look classes up. A pod without a class gets
// the global default class if one exists, else priority 0. A pod may not set
// spec.priority (or a preemptionPolicy) other than what its class says. The
// two system classes always resolve, even before their objects are stored.
// For PriorityClass objects it keeps the global default unique and the
// system classes undeletable.
import { admissionForbidden } from './forbidden.ts';
import { isResource, resources, type AdmissionAttributes, type AdmissionContext, type AdmissionPlugin } from './types.ts';

export const systemNodeCritical = 'system-node-critical';
export const systemClusterCritical = 'system-cluster-critical';
export const systemCriticalPriority = 2_000_000_000;
export const defaultPreemptionPolicy = 'PreemptLowerPriority';

/** The built-in classes, as the server stores them at first start. */
export function systemPriorityClasses(): any[] {
  return [
    {
      apiVersion: 'scheduling.k8s.io/v1', kind: 'PriorityClass', metadata: { name: systemNodeCritical },
      value: systemCriticalPriority + 1000, globalDefault: false, preemptionPolicy: defaultPreemptionPolicy,
      description: 'Used for system critical pods that must not be moved from their current node.',
    },
    {
      apiVersion: 'scheduling.k8s.io/v1', kind: 'PriorityClass', metadata: { name: systemClusterCritical },
      value: systemCriticalPriority, globalDefault: false, preemptionPolicy: defaultPreemptionPolicy,
      description: 'Used for system critical pods that must run in the cluster, but can be moved to another node if necessary.',
    },
  ];
}

/** The default class: the globalDefault one; with several (a race between writers), the lowest value, as Kubernetes picks. */
export function defaultPriorityClass(classes: any[]): any | null {
  let best: any = null;
  for (const pc of classes) {
    if (pc?.globalDefault !== true) continue;
    if (best === null || pc.value < best.value) best = pc;
  }
  return best;
}

async function lookup(ctx: AdmissionContext, name: string): Promise<any | null> {
  const stored = await ctx.get(resources.priorityClasses, '', name);
  if (stored) return stored;
  return systemPriorityClasses().find((pc) => pc.metadata.name === name) ?? null;
}

export function priority(): AdmissionPlugin {
  return {
    name: 'Priority',
    async admit(a: AdmissionAttributes, ctx: AdmissionContext): Promise<void> {
      if (!isResource(a, resources.pods) || a.subresource !== '') return;
      const pod = a.object;
      if (!pod || typeof pod !== 'object') return;
      if (a.operation === 'UPDATE') {
        // The values were set at create time and are immutable; a client that
        // sends the pod without them (kubectl replace of the original
        // manifest) keeps them rather than failing validation.
        const old = a.oldObject?.spec;
        if (!old) return;
        pod.spec ??= {};
        if ((pod.spec.priority === undefined || pod.spec.priority === null) && old.priority !== undefined) pod.spec.priority = old.priority;
        if ((pod.spec.preemptionPolicy === undefined || pod.spec.preemptionPolicy === null) && old.preemptionPolicy !== undefined) pod.spec.preemptionPolicy = old.preemptionPolicy;
        return;
      }
      if (a.operation !== 'CREATE') return;
      pod.spec ??= {};
      const spec = pod.spec;
      let value: number;
      let policy: string;
      if (!spec.priorityClassName) {
        const def = defaultPriorityClass(await ctx.list(resources.priorityClasses));
        if (def) {
          spec.priorityClassName = def.metadata.name;
          value = def.value;
          policy = def.preemptionPolicy ?? defaultPreemptionPolicy;
        } else {
          value = 0;
          policy = defaultPreemptionPolicy;
        }
      } else {
        const pc = await lookup(ctx, spec.priorityClassName);
        if (!pc) throw admissionForbidden(a, `no PriorityClass with name ${spec.priorityClassName} was found`);
        value = pc.value;
        policy = pc.preemptionPolicy ?? defaultPreemptionPolicy;
      }
      if (spec.priority !== undefined && spec.priority !== null && spec.priority !== value) {
        throw admissionForbidden(a, `the integer value of priority (${spec.priority}) must not be provided in pod spec; priority admission controller computed ${value} from the given PriorityClass name`);
      }
      spec.priority = value;
      if (spec.preemptionPolicy !== undefined && spec.preemptionPolicy !== null && spec.preemptionPolicy !== policy) {
        throw admissionForbidden(a, `the string value of PreemptionPolicy (${spec.preemptionPolicy}) must not be provided in pod spec; priority admission controller computed ${policy} from the given PriorityClass name`);
      }
      spec.preemptionPolicy = policy;
    },
    async validate(a: AdmissionAttributes, ctx: AdmissionContext): Promise<void> {
      if (!isResource(a, resources.priorityClasses) || a.subresource !== '') return;
      if (a.operation === 'DELETE') {
        if (a.name === systemNodeCritical || a.name === systemClusterCritical) throw admissionForbidden(a, 'this is a system priority class and cannot be deleted');
        return;
      }
      if ((a.operation !== 'CREATE' && a.operation !== 'UPDATE') || a.object?.globalDefault !== true) return;
      const name = a.object?.metadata?.name ?? a.name;
      const others = (await ctx.list(resources.priorityClasses)).filter((pc) => pc?.metadata?.name !== name);
      const existing = defaultPriorityClass(others);
      if (existing) throw admissionForbidden(a, `PriorityClass ${existing.metadata.name} is marked as default. Only one default can exist`);
    },
  };
}
