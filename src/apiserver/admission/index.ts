// The admission chain. See types.ts for the contract and docs/security.md
// for the plugins. runAdmission runs every mutating phase, then every
// validating phase, so that validation sees the object exactly as it will be
// stored.
import { defaultTolerationSeconds, type DefaultTolerationSecondsOptions } from './default-toleration-seconds.ts';
import { namespaceLifecycle } from './namespace-lifecycle.ts';
import { priority } from './priority.ts';
import { rbacEscalation } from './rbac-escalation.ts';
import type { RbacAuthorizer } from '../auth/rbac.ts';
import { serviceAccount, type ServiceAccountPluginOptions } from './service-account.ts';
import type { AdmissionAttributes, AdmissionContext, AdmissionPlugin } from './types.ts';

export type { AdmissionAttributes, AdmissionContext, AdmissionOperation, AdmissionPlugin, GroupVersionKind, GroupVersionResource } from './types.ts';
export { isResource, resources } from './types.ts';
export { admissionForbidden } from './forbidden.ts';
export { immortalNamespaces, isTerminating, namespaceLifecycle } from './namespace-lifecycle.ts';
export {
  defaultServiceAccountName, projectedTokenExpirationSeconds, rootCaConfigMapName, serviceAccount, tokenMountPath, tokenVolume, tokenVolumeNamePrefix,
} from './service-account.ts';
export type { ServiceAccountPluginOptions } from './service-account.ts';
export { defaultTolerationSeconds, defaultTolerationSecondsValue, taintNodeNotReady, taintNodeUnreachable } from './default-toleration-seconds.ts';
export type { DefaultTolerationSecondsOptions } from './default-toleration-seconds.ts';
export { rbacEscalation } from './rbac-escalation.ts';
export { defaultPriorityClass, priority, systemClusterCritical, systemNodeCritical, systemPriorityClasses } from './priority.ts';

export interface AdmissionOptions {
  /** With it, RBACEscalation runs after the others (it needs the server's RBAC view). */
  rbac?: RbacAuthorizer;
  serviceAccount?: ServiceAccountPluginOptions;
  defaultTolerationSeconds?: DefaultTolerationSecondsOptions;
}

const factories: Record<string, (o: AdmissionOptions) => AdmissionPlugin> = {
  NamespaceLifecycle: () => namespaceLifecycle(),
  ServiceAccount: (o) => serviceAccount(o.serviceAccount),
  DefaultTolerationSeconds: (o) => defaultTolerationSeconds(o.defaultTolerationSeconds),
  Priority: () => priority(),
};

/** The plugins Keelson knows, in the order they run. */
export const admissionPluginNames = Object.keys(factories);

export function defaultAdmissionPlugins(opts: AdmissionOptions = {}): AdmissionPlugin[] {
  const plugins = admissionPluginNames.map((n) => factories[n]!(opts));
  if (opts.rbac) plugins.push(rbacEscalation(opts.rbac));
  return plugins;
}

/**
 * The plugins named (as in --enable-admission-plugins), always run in the
 * canonical order whatever order they are named in; an unknown name is an
 * error that lists the known ones.
 */
export function admissionPlugins(names: string[], opts: AdmissionOptions = {}): AdmissionPlugin[] {
  const wanted = new Set<string>();
  for (const raw of names) {
    const n = raw.trim();
    if (n === '') continue;
    if (!Object.hasOwn(factories, n)) throw new Error(`unknown admission plugin ${JSON.stringify(n)} (known: ${admissionPluginNames.join(', ')})`);
    wanted.add(n);
  }
  return admissionPluginNames.filter((n) => wanted.has(n)).map((n) => factories[n]!(opts));
}

export async function runAdmission(plugins: AdmissionPlugin[], attrs: AdmissionAttributes, ctx: AdmissionContext): Promise<void> {
  for (const p of plugins) if (p.admit) await p.admit(attrs, ctx);
  for (const p of plugins) if (p.validate) await p.validate(attrs, ctx);
}
