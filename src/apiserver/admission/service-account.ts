// ServiceAccount: every pod runs as a service account ('default' unless it
// names one), which must exist; unless the pod or its account opts out
// (automountServiceAccountToken: false), the pod gets a projected volume
// "kube-api-access-xxxxx" with a bound token, the cluster CA bundle and its
// namespace, mounted read-only at /var/run/secrets/kubernetes.io/serviceaccount
// in every container that does not already mount something there. A pod
// without imagePullSecrets inherits its account's. Mirror pods (static pods
// reflected by a node) may not use any of this: they cannot depend on API
// objects.
import { errors } from '../errors.ts';
import { admissionForbidden } from './forbidden.ts';
import { isResource, resources, type AdmissionAttributes, type AdmissionContext, type AdmissionPlugin } from './types.ts';

export const defaultServiceAccountName = 'default';
export const tokenVolumeNamePrefix = 'kube-api-access-';
export const tokenMountPath = '/var/run/secrets/kubernetes.io/serviceaccount';
/** Kubernetes projects tokens of 1 hour plus 7 seconds, so that kubelets can tell them from user-requested ones. */
export const projectedTokenExpirationSeconds = 3607;
export const rootCaConfigMapName = 'kube-root-ca.crt';
export const mirrorPodAnnotation = 'kubernetes.io/config.mirror';

const suffixChars = 'bcdfghjklmnpqrstvwxz2456789';
const suffixLength = 5;

export interface ServiceAccountPluginOptions {
  /** Random source for the volume name suffix; injected for tests. */
  random?: () => number;
  /** Add the token volume at all (on by default, as in Kubernetes). */
  mountServiceAccountToken?: boolean;
}

function randomSuffix(random: () => number): string {
  let s = '';
  for (let i = 0; i < suffixLength; i++) s += suffixChars[Math.floor(random() * suffixChars.length) % suffixChars.length];
  return s;
}

export function tokenVolume(name: string): any {
  return {
    name,
    projected: {
      defaultMode: 0o644,
      sources: [
        { serviceAccountToken: { expirationSeconds: projectedTokenExpirationSeconds, path: 'token' } },
        { configMap: { name: rootCaConfigMapName, items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
        { downwardAPI: { items: [{ path: 'namespace', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } }] } },
      ],
    },
  };
}

function podVolumeReferencesSecret(v: any): boolean {
  if (v?.secret) return true;
  return (v?.projected?.sources ?? []).some((s: any) => s?.secret || s?.serviceAccountToken);
}

export function serviceAccount(opts: ServiceAccountPluginOptions = {}): AdmissionPlugin {
  const random = opts.random ?? Math.random;
  const mount = opts.mountServiceAccountToken ?? true;
  return {
    name: 'ServiceAccount',
    async admit(a: AdmissionAttributes, ctx: AdmissionContext): Promise<void> {
      if (!isResource(a, resources.pods) || a.subresource !== '' || a.operation !== 'CREATE') return;
      const pod = a.object;
      if (!pod || typeof pod !== 'object') return;
      pod.spec ??= {};
      const spec = pod.spec;
      if (pod.metadata?.annotations?.[mirrorPodAnnotation] !== undefined) {
        if (spec.serviceAccountName) throw admissionForbidden(a, 'a mirror pod may not reference service accounts');
        if ((spec.volumes ?? []).some(podVolumeReferencesSecret)) throw admissionForbidden(a, 'a mirror pod may not reference secrets');
        return;
      }
      // serviceAccount is the deprecated name of the field; a pod that sets only it means it.
      if (!spec.serviceAccountName) spec.serviceAccountName = typeof spec.serviceAccount === 'string' && spec.serviceAccount !== '' ? spec.serviceAccount : defaultServiceAccountName;
      // serviceAccount is the deprecated alias; keep it in step as Kubernetes defaulting does.
      if (spec.serviceAccount === undefined || spec.serviceAccount === '') spec.serviceAccount = spec.serviceAccountName;
      const sa = await ctx.get(resources.serviceAccounts, a.namespace, spec.serviceAccountName);
      if (!sa) {
        throw admissionForbidden(a, `error looking up service account ${a.namespace}/${spec.serviceAccountName}: serviceaccount "${spec.serviceAccountName}" not found`);
      }
      const automount = spec.automountServiceAccountToken ?? sa.automountServiceAccountToken ?? true;
      if (mount && automount) mountToken(spec, random);
      if ((spec.imagePullSecrets ?? []).length === 0 && (sa.imagePullSecrets ?? []).length > 0) {
        spec.imagePullSecrets = sa.imagePullSecrets.map((s: any) => ({ name: s.name }));
      }
    },
    async validate(a: AdmissionAttributes): Promise<void> {
      if (!isResource(a, resources.pods) || a.subresource !== '' || a.operation !== 'CREATE') return;
      const spec = a.object?.spec;
      if (!spec || a.object?.metadata?.annotations?.[mirrorPodAnnotation] !== undefined) return;
      // A later mutating plugin must not have taken the account away.
      if (!spec.serviceAccountName) throw errors.internal('the ServiceAccount admission plugin ran but the pod has no service account');
    },
  };
}

function mountToken(spec: any, random: () => number): void {
  spec.volumes ??= [];
  let volumeName = '';
  for (const v of spec.volumes) {
    if (typeof v?.name === 'string' && v.name.startsWith(tokenVolumeNamePrefix)) {
      volumeName = v.name;
      break;
    }
  }
  const hasVolume = volumeName !== '';
  if (!hasVolume) {
    const taken = new Set(spec.volumes.map((v: any) => v?.name));
    // A clash with a user's volume is astronomically unlikely; the bound keeps the loop finite anyway.
    for (let i = 0; i < 16 && (volumeName === '' || taken.has(volumeName)); i++) volumeName = tokenVolumeNamePrefix + randomSuffix(random);
  }
  let needed = false;
  for (const list of [spec.initContainers, spec.containers]) {
    for (const c of list ?? []) {
      if (!c || typeof c !== 'object') continue;
      c.volumeMounts ??= [];
      if (c.volumeMounts.some((m: any) => m?.mountPath === tokenMountPath)) continue;
      c.volumeMounts.push({ name: volumeName, readOnly: true, mountPath: tokenMountPath });
      needed = true;
    }
  }
  if (!hasVolume && needed) spec.volumes.push(tokenVolume(volumeName));
  if (spec.volumes.length === 0) delete spec.volumes;
}
