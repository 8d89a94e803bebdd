// DefaultTolerationSeconds: a pod that does not say otherwise tolerates its
// node being not-ready or unreachable for 5 minutes before the taint-based
// eviction removes it, so that a short node hiccup does not reschedule every
// pod on it.
import { isResource, resources, type AdmissionAttributes, type AdmissionPlugin } from './types.ts';

export const taintNodeNotReady = 'node.kubernetes.io/not-ready';
export const taintNodeUnreachable = 'node.kubernetes.io/unreachable';
export const defaultTolerationSecondsValue = 300;

export interface DefaultTolerationSecondsOptions {
  notReadySeconds?: number;
  unreachableSeconds?: number;
}

function tolerates(t: any, key: string): boolean {
  return (t?.key === key || !t?.key) && (t?.effect === 'NoExecute' || !t?.effect);
}

export function defaultTolerationSeconds(opts: DefaultTolerationSecondsOptions = {}): AdmissionPlugin {
  const notReady = opts.notReadySeconds ?? defaultTolerationSecondsValue;
  const unreachable = opts.unreachableSeconds ?? defaultTolerationSecondsValue;
  return {
    name: 'DefaultTolerationSeconds',
    async admit(a: AdmissionAttributes): Promise<void> {
      if (!isResource(a, resources.pods) || a.subresource !== '') return;
      if (a.operation !== 'CREATE' && a.operation !== 'UPDATE') return;
      const pod = a.object;
      if (!pod || typeof pod !== 'object') return;
      pod.spec ??= {};
      const tolerations: any[] = Array.isArray(pod.spec.tolerations) ? pod.spec.tolerations : [];
      const add: any[] = [];
      if (!tolerations.some((t) => tolerates(t, taintNodeNotReady))) add.push({ key: taintNodeNotReady, operator: 'Exists', effect: 'NoExecute', tolerationSeconds: notReady });
      if (!tolerations.some((t) => tolerates(t, taintNodeUnreachable))) add.push({ key: taintNodeUnreachable, operator: 'Exists', effect: 'NoExecute', tolerationSeconds: unreachable });
      if (add.length > 0) pod.spec.tolerations = [...tolerations, ...add];
    },
  };
}
