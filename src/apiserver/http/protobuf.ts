// Decoding of the Kubernetes protobuf wire form for the few request bodies
// kubectl's typed clients send as protobuf (Content-Type
// application/vnd.kubernetes.protobuf): `kubectl auth can-i`
// (SelfSubjectAccessReview), `kubectl create configmap|secret|namespace|role|
// rolebinding|clusterrole|clusterrolebinding|serviceaccount`, `kubectl create
// token` (TokenRequest), and
// evictions. The envelope is the 4-byte magic "k8s\0" followed by a
// runtime.Unknown {typeMeta, raw}; raw is the typed message, decoded here by a
// small field-number table per kind into the JSON form. Kinds not in the table
// are refused with 415 (send JSON instead), never guessed.
import { errors } from '../errors.ts';

type Scalar = 'string' | 'bytes' | 'int' | 'bool' | 'time' | 'intstr' | 'quantity';
type FieldType = Scalar | Msg | { map: 'string' | 'bytes' | 'quantity' };
/** omitZero: a Go field without a pointer and with omitempty, whose zero value the encoder writes but JSON would omit. */
interface Field { name: string; type: FieldType; repeated?: boolean; omitZero?: boolean }
type Msg = { [num: number]: Field };

/** Nesting deeper than this is refused (a malicious body could recurse). */
const protoDepthMax = 32;

const time: Msg = { 1: { name: 'seconds', type: 'int' }, 2: { name: 'nanos', type: 'int' } };
void time;
const ownerReference: Msg = {
  1: { name: 'kind', type: 'string' }, 3: { name: 'name', type: 'string' }, 4: { name: 'uid', type: 'string' },
  5: { name: 'apiVersion', type: 'string' }, 6: { name: 'controller', type: 'bool' }, 7: { name: 'blockOwnerDeletion', type: 'bool' },
};
const objectMeta: Msg = {
  1: { name: 'name', type: 'string' }, 2: { name: 'generateName', type: 'string' }, 3: { name: 'namespace', type: 'string' },
  5: { name: 'uid', type: 'string' }, 6: { name: 'resourceVersion', type: 'string' }, 7: { name: 'generation', type: 'int', omitZero: true },
  8: { name: 'creationTimestamp', type: 'time' }, 11: { name: 'labels', type: { map: 'string' } }, 12: { name: 'annotations', type: { map: 'string' } },
  13: { name: 'ownerReferences', type: ownerReference, repeated: true }, 14: { name: 'finalizers', type: 'string', repeated: true },
};
const preconditions: Msg = { 1: { name: 'uid', type: 'string' }, 2: { name: 'resourceVersion', type: 'string' } };
const deleteOptions: Msg = {
  1: { name: 'gracePeriodSeconds', type: 'int' }, 2: { name: 'preconditions', type: preconditions }, 3: { name: 'orphanDependents', type: 'bool' },
  4: { name: 'propagationPolicy', type: 'string' }, 5: { name: 'dryRun', type: 'string', repeated: true },
};
const resourceAttributes: Msg = {
  1: { name: 'namespace', type: 'string' }, 2: { name: 'verb', type: 'string' }, 3: { name: 'group', type: 'string' }, 4: { name: 'version', type: 'string' },
  5: { name: 'resource', type: 'string' }, 6: { name: 'subresource', type: 'string' }, 7: { name: 'name', type: 'string' },
};
const nonResourceAttributes: Msg = { 1: { name: 'path', type: 'string' }, 2: { name: 'verb', type: 'string' } };

const subject: Msg = { 1: { name: 'kind', type: 'string' }, 2: { name: 'apiGroup', type: 'string' }, 3: { name: 'name', type: 'string' }, 4: { name: 'namespace', type: 'string' } };
const roleRef: Msg = { 1: { name: 'apiGroup', type: 'string' }, 2: { name: 'kind', type: 'string' }, 3: { name: 'name', type: 'string' } };
const policyRule: Msg = {
  1: { name: 'verbs', type: 'string', repeated: true }, 2: { name: 'apiGroups', type: 'string', repeated: true }, 3: { name: 'resources', type: 'string', repeated: true },
  4: { name: 'resourceNames', type: 'string', repeated: true }, 5: { name: 'nonResourceURLs', type: 'string', repeated: true },
};
const binding: Msg = { 1: { name: 'metadata', type: objectMeta }, 2: { name: 'subjects', type: subject, repeated: true }, 3: { name: 'roleRef', type: roleRef } };
const role: Msg = { 1: { name: 'metadata', type: objectMeta }, 2: { name: 'rules', type: policyRule, repeated: true } };

const labelSelector: Msg = {
  1: { name: 'matchLabels', type: { map: 'string' } },
  2: { name: 'matchExpressions', type: { 1: { name: 'key', type: 'string' }, 2: { name: 'operator', type: 'string' }, 3: { name: 'values', type: 'string', repeated: true } }, repeated: true },
};
const containerPort: Msg = {
  1: { name: 'name', type: 'string' }, 2: { name: 'hostPort', type: 'int', omitZero: true }, 3: { name: 'containerPort', type: 'int' },
  4: { name: 'protocol', type: 'string' }, 5: { name: 'hostIP', type: 'string' },
};
const container: Msg = {
  1: { name: 'name', type: 'string' }, 2: { name: 'image', type: 'string' }, 3: { name: 'command', type: 'string', repeated: true },
  4: { name: 'args', type: 'string', repeated: true }, 5: { name: 'workingDir', type: 'string' }, 6: { name: 'ports', type: containerPort, repeated: true },
  7: { name: 'env', type: { 1: { name: 'name', type: 'string' }, 2: { name: 'value', type: 'string' } }, repeated: true },
  8: { name: 'resources', type: { 1: { name: 'limits', type: { map: 'quantity' } }, 2: { name: 'requests', type: { map: 'quantity' } } } },
  13: { name: 'terminationMessagePath', type: 'string' }, 14: { name: 'imagePullPolicy', type: 'string' },
  16: { name: 'stdin', type: 'bool', omitZero: true }, 17: { name: 'stdinOnce', type: 'bool', omitZero: true }, 18: { name: 'tty', type: 'bool', omitZero: true },
  20: { name: 'terminationMessagePolicy', type: 'string' },
};
const podSpec: Msg = {
  2: { name: 'containers', type: container, repeated: true }, 3: { name: 'restartPolicy', type: 'string' },
  4: { name: 'terminationGracePeriodSeconds', type: 'int' }, 6: { name: 'dnsPolicy', type: 'string' }, 7: { name: 'nodeSelector', type: { map: 'string' } },
  8: { name: 'serviceAccountName', type: 'string' }, 9: { name: 'serviceAccount', type: 'string' }, 10: { name: 'nodeName', type: 'string' },
  11: { name: 'hostNetwork', type: 'bool', omitZero: true }, 12: { name: 'hostPID', type: 'bool', omitZero: true }, 13: { name: 'hostIPC', type: 'bool', omitZero: true },
  16: { name: 'hostname', type: 'string' }, 17: { name: 'subdomain', type: 'string' }, 19: { name: 'schedulerName', type: 'string' },
  20: { name: 'initContainers', type: container, repeated: true }, 24: { name: 'priorityClassName', type: 'string' },
};
const podTemplateSpec: Msg = { 1: { name: 'metadata', type: objectMeta }, 2: { name: 'spec', type: podSpec } };
const servicePort: Msg = {
  1: { name: 'name', type: 'string' }, 2: { name: 'protocol', type: 'string' }, 3: { name: 'port', type: 'int' },
  4: { name: 'targetPort', type: 'intstr' }, 5: { name: 'nodePort', type: 'int', omitZero: true },
};
const boundObjectRef: Msg = { 1: { name: 'kind', type: 'string' }, 2: { name: 'apiVersion', type: 'string' }, 3: { name: 'name', type: 'string' }, 4: { name: 'uid', type: 'string' } };

/** A message whose content is dropped unread: status, which the server owns. */
const ignored: Msg = {};

const kinds: Record<string, Msg> = {
  'apps/v1/Deployment': {
    1: { name: 'metadata', type: objectMeta },
    2: { name: 'spec', type: {
      1: { name: 'replicas', type: 'int' }, 2: { name: 'selector', type: labelSelector }, 3: { name: 'template', type: podTemplateSpec },
      4: { name: 'strategy', type: { 1: { name: 'type', type: 'string' }, 2: { name: 'rollingUpdate', type: { 1: { name: 'maxUnavailable', type: 'intstr' }, 2: { name: 'maxSurge', type: 'intstr' } } } } },
      5: { name: 'minReadySeconds', type: 'int', omitZero: true }, 6: { name: 'revisionHistoryLimit', type: 'int' }, 7: { name: 'paused', type: 'bool', omitZero: true },
      9: { name: 'progressDeadlineSeconds', type: 'int' },
    } },
    3: { name: 'status', type: ignored },
  },
  'v1/Service': {
    1: { name: 'metadata', type: objectMeta },
    2: { name: 'spec', type: {
      1: { name: 'ports', type: servicePort, repeated: true }, 2: { name: 'selector', type: { map: 'string' } }, 3: { name: 'clusterIP', type: 'string' },
      4: { name: 'type', type: 'string' }, 5: { name: 'externalIPs', type: 'string', repeated: true }, 7: { name: 'sessionAffinity', type: 'string' },
      10: { name: 'externalName', type: 'string' }, 11: { name: 'externalTrafficPolicy', type: 'string' },
    } },
    3: { name: 'status', type: ignored },
  },
  'authentication.k8s.io/v1/TokenRequest': {
    1: { name: 'metadata', type: objectMeta },
    2: { name: 'spec', type: { 1: { name: 'audiences', type: 'string', repeated: true }, 3: { name: 'boundObjectRef', type: boundObjectRef }, 4: { name: 'expirationSeconds', type: 'int' } } },
    3: { name: 'status', type: ignored },
  },
  'rbac.authorization.k8s.io/v1/RoleBinding': binding,
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding': binding,
  'rbac.authorization.k8s.io/v1/Role': role,
  'rbac.authorization.k8s.io/v1/ClusterRole': role,
  'v1/ConfigMap': { 1: { name: 'metadata', type: objectMeta }, 2: { name: 'data', type: { map: 'string' } }, 3: { name: 'binaryData', type: { map: 'bytes' } }, 4: { name: 'immutable', type: 'bool' } },
  'v1/Secret': { 1: { name: 'metadata', type: objectMeta }, 2: { name: 'data', type: { map: 'bytes' } }, 3: { name: 'type', type: 'string' }, 4: { name: 'stringData', type: { map: 'string' } }, 5: { name: 'immutable', type: 'bool' } },
  'v1/Namespace': { 1: { name: 'metadata', type: objectMeta }, 2: { name: 'spec', type: { 1: { name: 'finalizers', type: 'string', repeated: true } } }, 3: { name: 'status', type: ignored } },
  'v1/ServiceAccount': { 1: { name: 'metadata', type: objectMeta }, 4: { name: 'automountServiceAccountToken', type: 'bool' } },
  'v1/DeleteOptions': deleteOptions,
  'policy/v1/Eviction': { 1: { name: 'metadata', type: objectMeta }, 2: { name: 'deleteOptions', type: deleteOptions } },
  'authorization.k8s.io/v1/SelfSubjectRulesReview': { 1: { name: 'metadata', type: objectMeta }, 2: { name: 'spec', type: { 1: { name: 'namespace', type: 'string' } } }, 3: { name: 'status', type: ignored } },
  'authentication.k8s.io/v1/SelfSubjectReview': { 1: { name: 'metadata', type: objectMeta }, 2: { name: 'status', type: ignored } },
  'authorization.k8s.io/v1/SelfSubjectAccessReview': {
    1: { name: 'metadata', type: objectMeta },
    2: { name: 'spec', type: { 1: { name: 'resourceAttributes', type: resourceAttributes }, 2: { name: 'nonResourceAttributes', type: nonResourceAttributes } } },
    3: { name: 'status', type: ignored },
  },
};

class Reader {
  pos = 0;
  constructor(readonly buf: Buffer, readonly end = buf.length) {}
  varint(): number {
    let result = 0;
    let shift = 0;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw errors.badRequest('malformed protobuf body: truncated varint');
      const b = this.buf[this.pos++]!;
      result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return result;
      shift += 7;
    }
    throw errors.badRequest('malformed protobuf body: varint too long');
  }
  bytes(): Buffer {
    const n = this.varint();
    if (this.pos + n > this.end) throw errors.badRequest('malformed protobuf body: length past the end');
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 1) this.pos += 8;
    else if (wire === 2) this.bytes();
    else if (wire === 5) this.pos += 4;
    else throw errors.badRequest(`malformed protobuf body: wire type ${wire}`);
  }
}

function decodeMsg(buf: Buffer, msg: Msg, depth: number): Record<string, unknown> {
  if (depth > protoDepthMax) throw errors.badRequest('malformed protobuf body: nested too deeply');
  if (msg === ignored) return {};
  const r = new Reader(buf);
  const out: Record<string, unknown> = {};
  while (r.pos < r.end) {
    const tag = r.varint();
    const num = Math.floor(tag / 8);
    const wire = tag & 7;
    const f = msg[num];
    if (!f) {
      // Unknown fields are refused unless empty: the encoder writes the zero value of every
      // non-pointer field, but anything with content would otherwise be silently dropped.
      const start = r.pos;
      r.skip(wire);
      const raw = r.buf.subarray(start, r.pos);
      const empty = wire === 0 ? raw.every((b) => b === 0) : wire === 2 ? raw.length <= 1 : false;
      if (!empty) throw errors.unsupportedMediaType(`this server cannot decode field ${num} of this protobuf body; send application/json`);
      continue;
    }
    let v: unknown;
    const t = f.type;
    if (t === 'string') {
      v = r.bytes().toString();
      if (v === '' && !f.repeated) continue; // omitempty: an empty string is an absent one
    } else if (t === 'intstr') {
      const m = decodeMsg(r.bytes(), { 1: { name: 't', type: 'int' }, 2: { name: 'i', type: 'int' }, 3: { name: 's', type: 'string' } }, depth + 1);
      v = m.t === 1 ? (m.s ?? '') : (m.i ?? 0);
    } else if (t === 'quantity') {
      v = decodeMsg(r.bytes(), { 1: { name: 's', type: 'string' } }, depth + 1).s ?? '0';
    } else if (t === 'bytes') v = r.bytes().toString('base64');
    else if (t === 'int') {
      const raw = r.varint();
      // int32/int64 negatives arrive as 64-bit two's complement.
      v = raw >= 2 ** 63 ? raw - 2 ** 64 : raw;
      if (v === 0 && f.omitZero) continue;
    } else if (t === 'bool') {
      v = r.varint() !== 0;
      if (v === false && f.omitZero) continue;
    } else if (t === 'time') {
      const m = decodeMsg(r.bytes(), { 1: { name: 's', type: 'int' }, 2: { name: 'n', type: 'int' } }, depth + 1);
      if (!m.s) continue; // the zero time is an unset one
      v = new Date(Number(m.s) * 1000).toISOString().replace('.000Z', 'Z');
    } else if (typeof t === 'object' && 'map' in t) {
      const entry = decodeMsg(r.bytes(), { 1: { name: 'k', type: 'string' }, 2: { name: 'v', type: t.map } }, depth + 1);
      const m = (out[f.name] ??= {}) as Record<string, unknown>;
      m[String(entry.k ?? '')] = entry.v ?? '';
      continue;
    } else v = decodeMsg(r.bytes(), t as Msg, depth + 1);
    if (f.repeated) ((out[f.name] ??= []) as unknown[]).push(v);
    else out[f.name] = v;
  }
  return out;
}

/** Decodes a protobuf request body into its JSON form. */
export function decodeProtobuf(body: Buffer): Record<string, unknown> {
  if (body.length < 4 || body.subarray(0, 4).toString('latin1') !== 'k8s\0') throw errors.badRequest('malformed protobuf body: missing the k8s envelope');
  const unknown = decodeMsg(body.subarray(4), { 1: { name: 'typeMeta', type: { 1: { name: 'apiVersion', type: 'string' }, 2: { name: 'kind', type: 'string' } } }, 2: { name: 'raw', type: 'bytes' } }, 0);
  const tm = (unknown.typeMeta ?? {}) as { apiVersion?: string; kind?: string };
  const key = `${tm.apiVersion}/${tm.kind}`;
  const msg = kinds[key];
  if (!msg) throw errors.unsupportedMediaType(`protobuf bodies of ${tm.kind ?? 'this kind'} (${tm.apiVersion ?? '?'}) are not supported by this server; send application/json`);
  const raw = Buffer.from(String(unknown.raw ?? ''), 'base64');
  const obj = decodeMsg(raw, msg, 1);
  // The server owns status; what a client sends there is not read.
  delete obj.status;
  return { apiVersion: tm.apiVersion, kind: tm.kind, ...obj };
}
