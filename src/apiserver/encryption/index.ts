// Encryption of stored values at rest (Secrets, or any resource the config
// names), configured with the Kubernetes EncryptionConfiguration file:
//
//   apiVersion: apiserver.config.k8s.io/v1
//   kind: EncryptionConfiguration
//   resources:
//     - resources: [secrets]
//       providers:
//         - aesgcm: {keys: [{name: key2, secret: <base64 of 32 random bytes>}, {name: key1, secret: ...}]}
//         - identity: {}
//
// Writes use the first provider, and within it the first key. Reads try every
// provider and key by the prefix stored in front of the value
// (`k8s:enc:aesgcm:v1:<key name>:`), so data written under an older key, or in
// plain text before encryption was turned on (identity), stays readable; such
// a read is reported as stale so that the caller can rewrite the value under
// the current key.
//
// AES-GCM values are nonce (12 random bytes) || ciphertext || tag (16 bytes)
// with the storage key as additional authenticated data: a value copied to
// another key, or altered in any way, fails to decrypt instead of yielding a
// wrong object. With random nonces one key must not encrypt more than about
// 2^32 values; rotate keys long before that (docs/security.md says how).
// aescbc (no integrity, no binding to the key) is accepted for compatibility
// with existing configuration files; secretbox and kms are refused with a
// clear error.
import crypto from 'node:crypto';
import fs from 'node:fs';
import { parse } from 'yaml';

export interface Transformer {
  /** The value to store for `plain` under the storage key `context`. */
  encrypt(plain: Buffer, context: string): Buffer;
  /** The plain value of a stored one; throws EncryptionError when it cannot be decrypted. */
  decrypt(stored: Buffer, context: string): Buffer;
}

export interface ReadResult {
  data: Buffer;
  /** Written with another provider or key than the current one: rewrite it. */
  stale: boolean;
}

export interface EncryptionConfig {
  /** The transformer for a resource ('' is the core group), or null when the resource is stored as is. */
  transformerFor(group: string, resource: string): ResourceTransformer | null;
  /** The resource patterns in file order, for logs and status. */
  readonly rules: { resources: string[]; providers: string[] }[];
}

export class EncryptionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EncryptionError';
  }
}

export class EncryptionConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EncryptionConfigError';
  }
}

/** An encryption config is operator-written YAML; anything larger is a mistake. */
export const encryptionConfigBytesMax = 1024 * 1024;
const gcmNonceBytes = 12;
const gcmTagBytes = 16;
const cbcBlockBytes = 16;
const encryptedMark = Buffer.from('k8s:enc:');

interface Provider {
  /** aesgcm, aescbc or identity. */
  kind: string;
  /** '' for identity. */
  prefix: Buffer;
  keyName: string;
  encrypt(plain: Buffer, context: string): Buffer;
  decrypt(body: Buffer, context: string): Buffer;
}

function gcmProvider(name: string, key: Buffer, randomBytes: (n: number) => Buffer): Provider {
  const algorithm = `aes-${key.length * 8}-gcm` as crypto.CipherGCMTypes;
  return {
    kind: 'aesgcm',
    prefix: Buffer.from(`k8s:enc:aesgcm:v1:${name}:`),
    keyName: name,
    encrypt(plain, context) {
      const nonce = randomBytes(gcmNonceBytes);
      const c = crypto.createCipheriv(algorithm, key, nonce, { authTagLength: gcmTagBytes });
      c.setAAD(Buffer.from(context));
      const body = Buffer.concat([c.update(plain), c.final()]);
      return Buffer.concat([nonce, body, c.getAuthTag()]);
    },
    decrypt(body, context) {
      if (body.length < gcmNonceBytes + gcmTagBytes) throw new EncryptionError(`the value under ${context} is too short to be aesgcm data (${body.length} bytes)`);
      const nonce = body.subarray(0, gcmNonceBytes);
      const tag = body.subarray(body.length - gcmTagBytes);
      const d = crypto.createDecipheriv(algorithm, key, nonce, { authTagLength: gcmTagBytes });
      d.setAAD(Buffer.from(context));
      d.setAuthTag(tag);
      try {
        return Buffer.concat([d.update(body.subarray(gcmNonceBytes, body.length - gcmTagBytes)), d.final()]);
      } catch {
        throw new EncryptionError(`the value under ${context} does not decrypt with aesgcm key "${name}": it was written for another storage key, with another key of the same name, or it was altered`);
      }
    },
  };
}

function cbcProvider(name: string, key: Buffer, randomBytes: (n: number) => Buffer): Provider {
  return {
    kind: 'aescbc',
    prefix: Buffer.from(`k8s:enc:aescbc:v1:${name}:`),
    keyName: name,
    encrypt(plain) {
      const iv = randomBytes(cbcBlockBytes);
      const c = crypto.createCipheriv('aes-256-cbc', key, iv);
      return Buffer.concat([iv, c.update(plain), c.final()]);
    },
    decrypt(body, context) {
      if (body.length < 2 * cbcBlockBytes || body.length % cbcBlockBytes !== 0) throw new EncryptionError(`the value under ${context} is not aescbc data (${body.length} bytes)`);
      const d = crypto.createDecipheriv('aes-256-cbc', key, body.subarray(0, cbcBlockBytes));
      try {
        return Buffer.concat([d.update(body.subarray(cbcBlockBytes)), d.final()]);
      } catch {
        throw new EncryptionError(`the value under ${context} does not decrypt with aescbc key "${name}"`);
      }
    },
  };
}

const identityProvider: Provider = {
  kind: 'identity',
  prefix: Buffer.alloc(0),
  keyName: '',
  encrypt: (plain) => plain,
  decrypt: (body, context) => {
    if (body.subarray(0, encryptedMark.length).equals(encryptedMark)) throw new EncryptionError(`the value under ${context} is encrypted but no configured key matches its prefix`);
    return body;
  },
};

export class ResourceTransformer implements Transformer {
  constructor(private readonly providers: Provider[]) {}

  /** The provider and key new values are written with ('identity' or e.g. 'aesgcm:key2'). */
  get writer(): string {
    const p = this.providers[0]!;
    return p.keyName ? `${p.kind}:${p.keyName}` : p.kind;
  }

  encrypt(plain: Buffer, context: string): Buffer {
    const p = this.providers[0]!;
    const body = p.encrypt(plain, context);
    return p.prefix.length ? Buffer.concat([p.prefix, body]) : body;
  }

  decrypt(stored: Buffer, context: string): Buffer {
    return this.read(stored, context).data;
  }

  read(stored: Buffer, context: string): ReadResult {
    let firstError: EncryptionError | undefined;
    for (let i = 0; i < this.providers.length; i++) {
      const p = this.providers[i]!;
      if (!stored.subarray(0, p.prefix.length).equals(p.prefix)) continue;
      try {
        return { data: p.decrypt(stored.subarray(p.prefix.length), context), stale: i !== 0 };
      } catch (e) {
        // identity refuses encrypted data; a later provider may know the key.
        if (p.prefix.length === 0 && e instanceof EncryptionError) {
          firstError ??= e;
          continue;
        }
        throw e;
      }
    }
    if (firstError) throw firstError;
    const shown = stored.subarray(0, 40).toString('latin1').replace(/[^\x20-\x7e]/g, '.');
    throw new EncryptionError(`the value under ${context} matches no configured provider (it starts with "${shown}"); add its key to the encryption config, or identity for unencrypted data`);
  }
}

interface Rule {
  patterns: { group: string; resource: string; text: string }[];
  transformer: ResourceTransformer;
  providerNames: string[];
}

function parsePattern(text: string, where: string): { group: string; resource: string } {
  if (typeof text !== 'string' || text === '') throw new EncryptionConfigError(`${where}: a resource must be a non-empty string`);
  if (text !== text.toLowerCase()) throw new EncryptionConfigError(`${where}: resource "${text}" must be lower case`);
  const dot = text.indexOf('.');
  const resource = dot < 0 ? text : text.slice(0, dot);
  const group = dot < 0 ? '' : text.slice(dot + 1);
  if (resource === '*' && dot < 0) throw new EncryptionConfigError(`${where}: "*" is not a resource; use "*." for every core resource or "*.*" for every resource`);
  if (resource !== '*' && !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(resource)) throw new EncryptionConfigError(`${where}: "${text}" is not a resource name`);
  if (group !== '*' && group !== '' && !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/.test(group)) throw new EncryptionConfigError(`${where}: "${text}" has an invalid group`);
  if (group === '*' && resource !== '*') throw new EncryptionConfigError(`${where}: "${text}": a resource in every group is not supported; use "*.*"`);
  // Events are written far too often to be worth encrypting, and Kubernetes refuses them too.
  if (resource === 'events' && (group === '' || group === 'events.k8s.io')) throw new EncryptionConfigError(`${where}: encrypting events is not supported`);
  return { group, resource };
}

function covers(p: { group: string; resource: string }, group: string, resource: string): boolean {
  return (p.group === '*' || p.group === group) && (p.resource === '*' || p.resource === resource);
}

function decodeKey(secret: unknown, where: string, lengths: number[]): Buffer {
  if (typeof secret !== 'string' || secret === '') throw new EncryptionConfigError(`${where}.secret: required`);
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(secret) || secret.length % 4 !== 0) throw new EncryptionConfigError(`${where}.secret: not valid base64`);
  const key = Buffer.from(secret, 'base64');
  if (!lengths.includes(key.length)) throw new EncryptionConfigError(`${where}.secret: the key is ${key.length} bytes, expected ${lengths.join(' or ')}`);
  return key;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

export interface EncryptionOptions {
  /** Random source for nonces and IVs; injected for tests. */
  randomBytes?: (n: number) => Buffer;
}

/** Parses and checks an EncryptionConfiguration document. `name` goes into error messages. */
export function parseEncryptionConfig(text: string, name = 'encryption config', opts: EncryptionOptions = {}): EncryptionConfig {
  const randomBytes = opts.randomBytes ?? crypto.randomBytes;
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (e) {
    throw new EncryptionConfigError(`${name}: not valid YAML: ${(e as Error).message}`);
  }
  if (!isObject(doc)) throw new EncryptionConfigError(`${name}: expected an EncryptionConfiguration object`);
  if (doc.kind !== 'EncryptionConfiguration') throw new EncryptionConfigError(`${name}: kind must be EncryptionConfiguration, not ${JSON.stringify(doc.kind)}`);
  if (doc.apiVersion !== 'apiserver.config.k8s.io/v1') throw new EncryptionConfigError(`${name}: apiVersion must be apiserver.config.k8s.io/v1, not ${JSON.stringify(doc.apiVersion)}`);
  for (const k of Object.keys(doc)) if (!['kind', 'apiVersion', 'resources'].includes(k)) throw new EncryptionConfigError(`${name}: unknown field "${k}"`);
  if (!Array.isArray(doc.resources) || doc.resources.length === 0) throw new EncryptionConfigError(`${name}: resources: at least one entry is required`);

  const rules: Rule[] = [];
  const seen: { group: string; resource: string; text: string; where: string; entry: number }[] = [];
  doc.resources.forEach((entry: unknown, i: number) => {
    const where = `${name}: resources[${i}]`;
    if (!isObject(entry)) throw new EncryptionConfigError(`${where}: expected an object`);
    for (const k of Object.keys(entry)) if (k !== 'resources' && k !== 'providers') throw new EncryptionConfigError(`${where}: unknown field "${k}"`);
    if (!Array.isArray(entry.resources) || entry.resources.length === 0) throw new EncryptionConfigError(`${where}.resources: at least one resource is required`);
    if (!Array.isArray(entry.providers) || entry.providers.length === 0) throw new EncryptionConfigError(`${where}.providers: at least one provider is required`);
    const patterns = entry.resources.map((r: unknown, j: number) => {
      const w = `${where}.resources[${j}]`;
      const p = { ...parsePattern(r as string, w), text: r as string };
      for (const s of seen) {
        if (s.text === p.text) throw new EncryptionConfigError(`${w}: "${p.text}" is listed twice (also at ${s.where})`);
        if (s.entry !== i && covers(s, p.group, p.resource)) throw new EncryptionConfigError(`${w}: "${p.text}" can never apply: "${s.text}" at ${s.where} already covers it (list specific resources before wildcards)`);
      }
      seen.push({ ...p, where: w.slice(name.length + 2), entry: i });
      return p;
    });
    const providers: Provider[] = [];
    const names: string[] = [];
    entry.providers.forEach((prov: unknown, j: number) => {
      const w = `${where}.providers[${j}]`;
      if (!isObject(prov)) throw new EncryptionConfigError(`${w}: expected an object`);
      const kinds = Object.keys(prov);
      if (kinds.length !== 1) throw new EncryptionConfigError(`${w}: exactly one provider type per entry, found ${kinds.length === 0 ? 'none' : kinds.join(', ')}`);
      const kind = kinds[0]!;
      const body = prov[kind];
      switch (kind) {
        case 'identity':
          providers.push(identityProvider);
          names.push('identity');
          return;
        case 'aesgcm':
        case 'aescbc': {
          if (!isObject(body) || !Array.isArray(body.keys) || body.keys.length === 0) throw new EncryptionConfigError(`${w}.${kind}.keys: at least one key is required`);
          const keyNames = new Set<string>();
          body.keys.forEach((k: unknown, n: number) => {
            const kw = `${w}.${kind}.keys[${n}]`;
            if (!isObject(k)) throw new EncryptionConfigError(`${kw}: expected an object`);
            if (typeof k.name !== 'string' || k.name === '') throw new EncryptionConfigError(`${kw}.name: required`);
            if (k.name.includes(':')) throw new EncryptionConfigError(`${kw}.name: "${k.name}" may not contain ":" (it is part of the stored prefix)`);
            if (keyNames.has(k.name)) throw new EncryptionConfigError(`${kw}.name: "${k.name}" is used twice`);
            keyNames.add(k.name);
            const key = decodeKey(k.secret, kw, kind === 'aesgcm' ? [16, 24, 32] : [32]);
            providers.push(kind === 'aesgcm' ? gcmProvider(k.name, key, randomBytes) : cbcProvider(k.name, key, randomBytes));
            names.push(`${kind}:${k.name}`);
          });
          return;
        }
        case 'secretbox':
        case 'kms':
          throw new EncryptionConfigError(`${w}: the ${kind} provider is not supported by Keelson; use aesgcm`);
        default:
          throw new EncryptionConfigError(`${w}: unknown provider type "${kind}" (known: aesgcm, aescbc, identity)`);
      }
    });
    rules.push({ patterns, transformer: new ResourceTransformer(providers), providerNames: names });
  });

  const cache = new Map<string, ResourceTransformer | null>();
  return {
    rules: rules.map((r) => ({ resources: r.patterns.map((p) => p.text), providers: r.providerNames })),
    transformerFor(group: string, resource: string): ResourceTransformer | null {
      const key = `${group}/${resource}`;
      let t = cache.get(key);
      if (t === undefined) {
        t = rules.find((r) => r.patterns.some((p) => covers(p, group, resource)))?.transformer ?? null;
        cache.set(key, t);
      }
      return t;
    },
  };
}

/** Reads the encryption config file (--encryption-config). Every problem is an EncryptionConfigError naming the file. */
export function loadEncryptionConfig(file: string, opts: EncryptionOptions = {}): EncryptionConfig {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (e) {
    throw new EncryptionConfigError(`cannot read encryption config ${file}: ${(e as Error).message}`);
  }
  if (!st.isFile()) throw new EncryptionConfigError(`encryption config ${file} is not a regular file`);
  if (st.size > encryptionConfigBytesMax) throw new EncryptionConfigError(`encryption config ${file} is larger than ${encryptionConfigBytesMax} bytes`);
  return parseEncryptionConfig(fs.readFileSync(file, 'utf8'), file, opts);
}

/** A new random key for the config file (base64 of 32 bytes). */
export function generateKeySecret(): string {
  return crypto.randomBytes(32).toString('base64');
}
