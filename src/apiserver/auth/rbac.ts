// Role-based access control with the semantics of Kubernetes RBAC.
//
// A request is allowed when some binding whose subjects include the user
// refers to a role with a rule that covers the request. ClusterRoleBindings
// apply everywhere; RoleBindings only in their own namespace (and may refer
// to a Role of that namespace or to a ClusterRole, whose rules then apply in
// that namespace only). Nothing ever denies: RBAC only adds permissions, so
// the order of bindings and rules does not matter and the first match ends
// the search.
//
// Rule matching:
// - verbs, apiGroups: the request's value or '*';
// - resources: '*', the resource, 'resource/subresource' for a subresource
//   request (a rule for 'pods' does not cover 'pods/log'), or '*/subresource';
// - resourceNames: empty covers every name; otherwise the request must name
//   one of them (so a list or a create without a name is not covered);
// - nonResourceURLs (only through ClusterRoleBindings): '*', the exact path,
//   or a prefix ending in '*'.
// ClusterRoles with an aggregationRule also carry the rules of every
// ClusterRole their selectors match (recursively), so the default admin,
// edit and view roles work without the aggregation controller.
//
// Failure modes: a binding whose role does not exist grants nothing and is
// reported in the reason (as Kubernetes does), never an exception.
import type { LabelSelector } from 'kubernetes-types/meta/v1.js';
import type { ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, Subject } from 'kubernetes-types/rbac/v1.js';
import { errors, StatusError } from '../errors.ts';
import { wellKnown, type Authorizer, type Decision, type RequestAttributes, type UserInfo } from './types.ts';

/** Reads the RBAC objects. They are never modified, and a changed object must be a new object (see RbacAuthorizer.index). */
export interface RbacSource {
  clusterRoles(): ClusterRole[];
  clusterRoleBindings(): ClusterRoleBinding[];
  roles(namespace: string): Role[];
  roleBindings(namespace: string): RoleBinding[];
}

const rbacGroup = 'rbac.authorization.k8s.io';
/** Aggregation follows selectors at most this deep (a cycle is also cut by the visited set). */
export const aggregationDepthMax = 8;

export function verbMatches(rule: PolicyRule, verb: string): boolean {
  return rule.verbs.some((v) => v === '*' || v === verb);
}

export function apiGroupMatches(rule: PolicyRule, group: string): boolean {
  return (rule.apiGroups ?? []).some((g) => g === '*' || g === group);
}

export function resourceMatches(rule: PolicyRule, resource: string, subresource: string): boolean {
  const combined = subresource ? `${resource}/${subresource}` : resource;
  for (const r of rule.resources ?? []) {
    if (r === '*' || r === combined) return true;
    if (subresource && r === `*/${subresource}`) return true;
  }
  return false;
}

export function resourceNameMatches(rule: PolicyRule, name: string): boolean {
  const names = rule.resourceNames ?? [];
  if (names.length === 0) return true;
  return name !== '' && names.includes(name);
}

export function nonResourceURLMatches(rule: PolicyRule, path: string): boolean {
  for (const u of rule.nonResourceURLs ?? []) {
    if (u === '*' || u === path) return true;
    if (u.endsWith('*') && path.startsWith(u.slice(0, -1))) return true;
  }
  return false;
}

export function ruleAllows(a: RequestAttributes, rule: PolicyRule): boolean {
  if (a.resourceRequest) {
    return verbMatches(rule, a.verb) && apiGroupMatches(rule, a.apiGroup) && resourceMatches(rule, a.resource, a.subresource) && resourceNameMatches(rule, a.name);
  }
  return verbMatches(rule, a.verb) && nonResourceURLMatches(rule, a.path);
}

/** Whether `subject` names this user. `bindingNamespace` fills a ServiceAccount subject without a namespace. */
export function subjectMatches(subject: Subject, user: UserInfo, bindingNamespace: string): boolean {
  switch (subject.kind) {
    case 'User':
      return user.username === subject.name;
    case 'Group':
      return user.groups.includes(subject.name);
    case 'ServiceAccount': {
      const ns = subject.namespace || bindingNamespace;
      if (!ns) return false;
      return user.username === `${wellKnown.serviceAccountUserPrefix}${ns}:${subject.name}`;
    }
    default:
      return false;
  }
}

export function labelSelectorMatches(sel: LabelSelector, labels: Record<string, string>): boolean {
  for (const [k, v] of Object.entries(sel.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of sel.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, e.key);
    const values = e.values ?? [];
    switch (e.operator) {
      case 'In': if (!has || !values.includes(labels[e.key]!)) return false; break;
      case 'NotIn': if (has && values.includes(labels[e.key]!)) return false; break;
      case 'Exists': if (!has) return false; break;
      case 'DoesNotExist': if (has) return false; break;
      default: return false; // an unknown operator selects nothing
    }
  }
  return true;
}

/** The rules of a ClusterRole including those it aggregates. */
export function effectiveClusterRoleRules(role: ClusterRole, all: ClusterRole[]): PolicyRule[] {
  const out: PolicyRule[] = [];
  const visited = new Set<string>();
  const visit = (r: ClusterRole, depth: number) => {
    const name = r.metadata?.name ?? '';
    if (visited.has(name)) return;
    visited.add(name);
    out.push(...(r.rules ?? []));
    const selectors = r.aggregationRule?.clusterRoleSelectors ?? [];
    if (selectors.length === 0 || depth >= aggregationDepthMax) return;
    for (const other of all) {
      const labels = other.metadata?.labels ?? {};
      if (selectors.some((s) => labelSelectorMatches(s, labels))) visit(other, depth + 1);
    }
  };
  visit(role, 0);
  return out;
}

interface Grant {
  rules: PolicyRule[];
  /** How Kubernetes describes an allow: `RoleBinding "ns/name" of Role "r" to User "u"`. */
  describe: (subject: Subject) => string;
  subjects: Subject[];
  bindingNamespace: string;
}

export interface SubjectRules {
  resourceRules: { verbs: string[]; apiGroups: string[]; resources: string[]; resourceNames: string[] }[];
  nonResourceRules: { verbs: string[]; nonResourceURLs: string[] }[];
  incomplete: boolean;
  evaluationError?: string;
}

/** A ClusterRole's effective rules (aggregation resolved), all and resource-only. */
interface IndexedClusterRole {
  rules: PolicyRule[];
  resourceRules: PolicyRule[];
}

/** ClusterRoles by name, with effective rules resolved on first use. */
class ClusterRoleIndex {
  private readonly byName: Map<string, ClusterRole>;
  private readonly resolved = new Map<string, IndexedClusterRole>();

  private readonly list: ClusterRole[];

  constructor(list: ClusterRole[]) {
    this.list = [...list];
    this.byName = new Map(list.map((r) => [r.metadata?.name ?? '', r]));
  }

  /** Whether `list` holds the same role objects as the one indexed (compared by identity: cheap, and safe against in-place array edits). */
  matches(list: ClusterRole[]): boolean {
    if (list.length !== this.list.length) return false;
    for (let i = 0; i < list.length; i++) if (list[i] !== this.list[i]) return false;
    return true;
  }

  get(name: string): IndexedClusterRole | undefined {
    let r = this.resolved.get(name);
    if (r) return r;
    const role = this.byName.get(name);
    if (!role) return undefined;
    const rules = effectiveClusterRoleRules(role, this.list);
    r = { rules, resourceRules: rules.filter((x) => (x.resources ?? []).length > 0) };
    this.resolved.set(name, r);
    return r;
  }
}

export class RbacAuthorizer implements Authorizer {
  /**
   * The index of the last ClusterRole list the source returned, reused while
   * the source returns the same role objects, so that aggregation is resolved
   * once per change instead of once per request. Role objects are taken as
   * immutable: a changed role must be a new object (as a watch cache keeps
   * them), not an edit in place.
   */
  private index: ClusterRoleIndex | undefined;

  constructor(private readonly source: RbacSource) {}

  private clusterRoleIndex(): ClusterRoleIndex {
    const list = this.source.clusterRoles();
    if (!this.index?.matches(list)) this.index = new ClusterRoleIndex(list);
    return this.index;
  }

  async authorize(a: RequestAttributes): Promise<Decision> {
    // Members of system:masters are allowed everything, whatever RBAC holds,
    // so that a broken role set can always be repaired.
    if (a.user.groups.includes(wellKnown.mastersGroup)) return { allowed: true, reason: '' };
    const problems: string[] = [];
    for (const g of this.grants(a.user, a.namespace, problems)) {
      for (const s of g.subjects) {
        if (!subjectMatches(s, a.user, g.bindingNamespace)) continue;
        if (g.rules.some((r) => ruleAllows(a, r))) return { allowed: true, reason: `RBAC: allowed by ${g.describe(s)}` };
        break;
      }
    }
    return { allowed: false, reason: problems.length ? `RBAC: ${problems.join(', ')}` : '' };
  }

  /** The rules that apply to `user` in `namespace` (for SelfSubjectRulesReview). */
  rulesFor(user: UserInfo, namespace: string): SubjectRules {
    const problems: string[] = [];
    const out: SubjectRules = { resourceRules: [], nonResourceRules: [], incomplete: false };
    if (user.groups.includes(wellKnown.mastersGroup)) {
      out.resourceRules.push({ verbs: ['*'], apiGroups: ['*'], resources: ['*'], resourceNames: [] });
      out.nonResourceRules.push({ verbs: ['*'], nonResourceURLs: ['*'] });
    }
    for (const g of this.grants(user, namespace, problems)) {
      if (!g.subjects.some((s) => subjectMatches(s, user, g.bindingNamespace))) continue;
      for (const r of g.rules) {
        if ((r.resources ?? []).length > 0) {
          out.resourceRules.push({ verbs: [...r.verbs], apiGroups: [...(r.apiGroups ?? [])], resources: [...(r.resources ?? [])], resourceNames: [...(r.resourceNames ?? [])] });
        }
        if ((r.nonResourceURLs ?? []).length > 0 && g.bindingNamespace === '') {
          out.nonResourceRules.push({ verbs: [...r.verbs], nonResourceURLs: [...(r.nonResourceURLs ?? [])] });
        }
      }
    }
    if (problems.length) {
      out.incomplete = true;
      out.evaluationError = problems.join(', ');
    }
    return out;
  }

  /** Every binding that could apply to a request in `namespace`, with its resolved rules. Bindings for other subjects are skipped cheaply before their role is resolved. */
  private *grants(user: UserInfo, namespace: string, problems: string[]): Generator<Grant> {
    let index: ClusterRoleIndex | undefined;
    const clusterRole = (name: string) => {
      index ??= this.clusterRoleIndex();
      return index.get(name);
    };
    const mayMatch = (subjects: Subject[], ns: string) => subjects.some((s) => subjectMatches(s, user, ns));

    for (const b of this.source.clusterRoleBindings()) {
      const subjects = b.subjects ?? [];
      if (!mayMatch(subjects, '')) continue;
      const bname = b.metadata?.name ?? '';
      if (b.roleRef.kind !== 'ClusterRole' || (b.roleRef.apiGroup && b.roleRef.apiGroup !== rbacGroup)) {
        problems.push(`clusterrolebinding "${bname}" refers to an unsupported role kind ${b.roleRef.kind}`);
        continue;
      }
      const role = clusterRole(b.roleRef.name);
      if (!role) {
        problems.push(`clusterrole.rbac.authorization.k8s.io "${b.roleRef.name}" not found`);
        continue;
      }
      yield {
        rules: role.rules,
        subjects,
        bindingNamespace: '',
        describe: (s) => `ClusterRoleBinding "${bname}" of ClusterRole "${b.roleRef.name}" to ${describeSubject(s)}`,
      };
    }
    if (namespace === '') return;
    let roles: Map<string, Role> | undefined;
    for (const b of this.source.roleBindings(namespace)) {
      const subjects = b.subjects ?? [];
      if (!mayMatch(subjects, namespace)) continue;
      const bname = `${namespace}/${b.metadata?.name ?? ''}`;
      let rules: PolicyRule[];
      if (b.roleRef.kind === 'ClusterRole') {
        const role = clusterRole(b.roleRef.name);
        if (!role) {
          problems.push(`clusterrole.rbac.authorization.k8s.io "${b.roleRef.name}" not found`);
          continue;
        }
        // Through a RoleBinding, non-resource rules mean nothing: they are cluster-wide.
        rules = role.resourceRules;
      } else if (b.roleRef.kind === 'Role') {
        roles ??= new Map(this.source.roles(namespace).map((r) => [r.metadata?.name ?? '', r]));
        const role = roles.get(b.roleRef.name);
        if (!role) {
          problems.push(`role.rbac.authorization.k8s.io "${b.roleRef.name}" not found`);
          continue;
        }
        rules = (role.rules ?? []).filter((r) => (r.resources ?? []).length > 0);
      } else {
        problems.push(`rolebinding "${bname}" refers to an unsupported role kind ${b.roleRef.kind}`);
        continue;
      }
      yield {
        rules,
        subjects,
        bindingNamespace: namespace,
        describe: (s) => `RoleBinding "${bname}" of ${b.roleRef.kind} "${b.roleRef.name}" to ${describeSubject(s)}`,
      };
    }
  }
}

function describeSubject(s: Subject): string {
  if (s.kind === 'ServiceAccount') return `ServiceAccount "${s.namespace ? `${s.namespace}/` : ''}${s.name}"`;
  return `${s.kind} "${s.name}"`;
}

/**
 * A union of authorizers: the first that allows wins; when none does, the
 * request is denied with the reasons that were given.
 */
export class UnionAuthorizer implements Authorizer {
  constructor(private readonly authorizers: Authorizer[]) {}

  async authorize(a: RequestAttributes): Promise<Decision> {
    const reasons: string[] = [];
    for (const z of this.authorizers) {
      const d = await z.authorize(a);
      if (d.allowed) return d;
      if (d.reason) reasons.push(d.reason);
    }
    return { allowed: false, reason: reasons.join(', ') };
  }
}

/** The message Kubernetes gives when a request is denied: `User "u" cannot list resource "pods" in API group "" in the namespace "ns"`. */
export function forbiddenMessage(a: RequestAttributes): string {
  const user = a.user.username;
  if (!a.resourceRequest) return `User "${user}" cannot ${a.verb} path "${a.path}"`;
  const resource = a.subresource ? `${a.resource}/${a.subresource}` : a.resource;
  if (a.namespace) return `User "${user}" cannot ${a.verb} resource "${resource}" in API group "${a.apiGroup}" in the namespace "${a.namespace}"`;
  return `User "${user}" cannot ${a.verb} resource "${resource}" in API group "${a.apiGroup}" at the cluster scope`;
}

/** The 403 for a denied request, worded as Kubernetes words it (the reason, when there is one, follows a colon). */
export function forbiddenError(a: RequestAttributes, reason: string): StatusError {
  const msg = forbiddenMessage(a) + (reason ? `: ${reason}` : '');
  if (!a.resourceRequest) return new StatusError(403, 'Forbidden', `forbidden: ${msg}`);
  // The error names the resource without its subresource (`pods "p" is forbidden: ... "pods/log" ...`).
  return errors.forbidden(a.apiGroup, a.resource, a.name, msg);
}
