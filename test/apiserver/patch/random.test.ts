// Seeded randomized checks of the patch library against simple models.
// Each test runs a number of seeds; a failure names the seed, and
// PATCH_SEED=<n> reruns just that one.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fastJsonPatch from 'fast-json-patch';
import { applyJsonPatch, applyMergePatch, applyServerSide, applyStrategicMergePatch, updateManagedFields } from '../../../src/apiserver/patch/index.ts';
import { CONFIGMAP, POD } from './helpers.ts';

// PATCH_SEEDS=<n> runs more seeds (for a longer soak than the default run).
const seedsPerTest = Number(process.env.PATCH_SEEDS ?? 150);

function rng(seed: number): () => number {
  // mulberry32: small, fast and good enough to vary inputs.
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function seeds(): number[] {
  if (process.env.PATCH_SEED) return [Number(process.env.PATCH_SEED)];
  return Array.from({ length: seedsPerTest }, (_, i) => 1000 + i);
}

function forSeeds(name: string, body: (r: () => number, seed: number) => void): void {
  test(name, () => {
    for (const seed of seeds()) {
      try {
        body(rng(seed), seed);
      } catch (e) {
        console.error(`${name}: failed with seed ${seed} (rerun with PATCH_SEED=${seed})`);
        throw e;
      }
    }
  });
}

const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
const keys = ['a', 'b', 'c', 'd', 'e', 'f', 'x/y', 'z~w'];

function randomValue(r: () => number, depth: number): unknown {
  const k = r();
  if (depth > 2 || k < 0.45) return pick(r, [1, 2, 'one', 'two', true, false, 0]);
  if (k < 0.65) return Array.from({ length: Math.floor(r() * 3) }, () => randomValue(r, depth + 1));
  return randomMap(r, depth + 1);
}

function randomMap(r: () => number, depth = 0): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of keys) if (r() < 0.4) out[k] = randomValue(r, depth);
  return out;
}

/** The RFC 7386 patch that turns a into b (b holds no nulls). */
function mergeDiff(a: unknown, b: unknown): unknown {
  if (!isMap(a) || !isMap(b)) return b;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(a)) if (!(k in b)) out[k] = null;
  for (const k of Object.keys(b)) {
    if (!(k in a)) out[k] = b[k];
    else if (JSON.stringify(a[k]) !== JSON.stringify(b[k])) out[k] = isMap(a[k]) && isMap(b[k]) ? mergeDiff(a[k], b[k]) : b[k];
  }
  return out;
}

function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

forSeeds('json patch from a diff turns a into b', (r) => {
  const a = randomMap(r);
  const b = randomMap(r);
  const ops = fastJsonPatch.compare(a, b);
  const before = JSON.stringify(a);
  assert.equal(applyJsonPatch(a, ops), b);
  assert.is(JSON.stringify(a), before);
});

forSeeds('merge patch from a diff turns a into b; strategic merge agrees where there are no keyed lists', (r) => {
  const a = randomMap(r);
  const b = randomMap(r);
  const diff = mergeDiff(a, b);
  assert.equal(applyMergePatch(a, diff), b);
  const cmA = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' }, data: a };
  const cmB = { ...cmA, data: b };
  assert.equal(applyStrategicMergePatch(cmA, { data: diff }, CONFIGMAP), cmB);
});

forSeeds('strategic merge of containers: every name survives once, patched fields win, others are kept', (r) => {
  const names = ['a', 'b', 'c', 'd', 'e'];
  const live = names.filter(() => r() < 0.6).map((name) => ({ name, image: `${name}:1`, tag: 'live' }));
  const patch = names.filter(() => r() < 0.5).map((name) => ({ name, image: `${name}:2` }));
  const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, spec: { containers: live } };
  const out = applyStrategicMergePatch(pod, { spec: { containers: patch } }, POD) as any;
  const got = out.spec.containers as { name: string; image: string; tag?: string }[];
  const expectNames = new Set([...live.map((c) => c.name), ...patch.map((c) => c.name)]);
  assert.is(got.length, expectNames.size);
  for (const c of got) {
    const p = patch.find((x) => x.name === c.name);
    const l = live.find((x) => x.name === c.name);
    assert.is(c.image, p ? p.image : l!.image);
    assert.is(c.tag, l ? 'live' : undefined);
  }
  // Patch items keep their relative order.
  const patchOrder = got.filter((c) => patch.some((p) => p.name === c.name)).map((c) => c.name);
  assert.equal(patchOrder, patch.map((p) => p.name));
});

forSeeds('apply by several forcing managers matches an ownership model: a changed value moves the key to the applier, an equal one shares it, a key nobody owns goes', (r) => {
  const managers = ['m1', 'm2', 'm3'];
  const owners = new Map<string, Set<string>>();
  const model: Record<string, string> = {};
  let live: any = null;
  for (let step = 0; step < 8; step++) {
    const m = pick(r, managers);
    const data: Record<string, string> = {};
    for (const k of ['k1', 'k2', 'k3', 'k4']) if (r() < 0.5) data[k] = pick(r, ['x', 'y', 'z']);
    const cfg = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' }, data };
    live = applyServerSide(live, cfg, { manager: m, force: true, kind: CONFIGMAP, now: `2026-01-01T00:00:${String(step).padStart(2, '0')}Z` }).object;
    for (const [k, set] of owners) {
      if (k in data || !set.has(m)) continue;
      set.delete(m);
      if (set.size === 0) {
        owners.delete(k);
        delete model[k];
      }
    }
    for (const [k, v] of Object.entries(data)) {
      if (model[k] !== v) owners.set(k, new Set([m]));
      else owners.get(k)!.add(m);
      model[k] = v;
    }
    assert.equal(live.data ?? {}, model, `step ${step}`);
    for (const k of Object.keys(model)) {
      const got = (live.metadata.managedFields ?? []).filter((e: any) => e.fieldsV1?.['f:data']?.[`f:${k}`]).map((e: any) => e.manager).sort();
      assert.equal(got, [...owners.get(k)!].sort(), `step ${step} owners of ${k}`);
    }
    // Applying the same configuration again changes nothing and does not conflict.
    const again = applyServerSide(live, cfg, { manager: m, force: false, kind: CONFIGMAP, now: '2027-01-01T00:00:00Z' }).object as any;
    assert.equal(again, live);
  }
});

forSeeds('updates: every data key is owned by exactly the manager that last changed it', (r) => {
  const managers = ['u1', 'u2', 'u3'];
  const owner = new Map<string, string>();
  let live: any = null;
  for (let step = 0; step < 10; step++) {
    const m = pick(r, managers);
    const data: Record<string, string> = { ...(live?.data ?? {}) };
    for (const k of ['k1', 'k2', 'k3']) {
      const roll = r();
      if (roll < 0.3) delete data[k];
      else if (roll < 0.7) {
        const v = pick(r, ['x', 'y']);
        if (data[k] !== v) owner.set(k, m);
        data[k] = v;
      }
    }
    for (const k of owner.keys()) if (!(k in data)) owner.delete(k);
    const next = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c', ...(live?.metadata.managedFields ? { managedFields: live.metadata.managedFields } : {}) }, data };
    live = updateManagedFields(live, next, { manager: m, operation: 'Update', kind: CONFIGMAP, now: `2026-01-01T00:00:${String(step).padStart(2, '0')}Z` });
    for (const k of Object.keys(data)) {
      const owners = (live.metadata.managedFields ?? []).filter((e: any) => e.fieldsV1?.['f:data']?.[`f:${k}`]).map((e: any) => e.manager);
      assert.equal(owners, [owner.get(k)], `step ${step} key ${k}`);
    }
  }
});

forSeeds('applies and updates mixed, without force: conflicts are exactly the changed keys someone else owns', (r) => {
  const appliers = ['a1', 'a2'];
  const updaters = ['u1', 'u2'];
  const owners = new Map<string, Set<string>>();
  const model: Record<string, string> = {};
  const keyNames = ['k1', 'k2', 'k3', 'k4'];
  let live: any = null;
  for (let step = 0; step < 12; step++) {
    const now = `2026-01-01T00:${String(step).padStart(2, '0')}:00Z`;
    if (live === null || r() < 0.6) {
      const m = pick(r, appliers);
      const force = r() < 0.3;
      const data: Record<string, string> = {};
      for (const k of keyNames) if (r() < 0.5) data[k] = pick(r, ['x', 'y']);
      const cfg = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' }, data };
      const expectConflicts = Object.keys(data).filter((k) => model[k] !== data[k] && [...(owners.get(k) ?? [])].some((o) => o !== m)).sort();
      let out: any;
      try {
        out = applyServerSide(live, cfg, { manager: m, force, kind: CONFIGMAP, now }).object;
      } catch (e: any) {
        assert.ok(!force && expectConflicts.length > 0, `step ${step}: unexpected ${e.message}`);
        assert.is(e.code, 409);
        // One cause per conflicting manager and field.
        const expected = expectConflicts.flatMap((k) => [...owners.get(k)!].filter((o) => o !== m).map((o) => `.data.${k} ${o}`)).sort();
        assert.equal(e.details.causes.map((c: any) => `${c.field} ${JSON.parse(c.message.split(' ')[2])}`).sort(), expected, `step ${step}`);
        continue;
      }
      assert.ok(force || expectConflicts.length === 0, `step ${step}: expected conflicts on ${expectConflicts}`);
      for (const [k, set] of [...owners]) {
        if (k in data || !set.has(m)) continue;
        set.delete(m);
        if (set.size === 0) {
          owners.delete(k);
          delete model[k];
        }
      }
      for (const [k, v] of Object.entries(data)) {
        if (model[k] !== v) owners.set(k, new Set([m]));
        else owners.get(k)!.add(m);
        model[k] = v;
      }
      live = out;
    } else {
      const u = pick(r, updaters);
      const next = structuredClone(live);
      next.data ??= {};
      for (const k of keyNames) {
        const roll = r();
        if (roll < 0.2 && k in next.data) {
          delete next.data[k];
          delete model[k];
          owners.delete(k);
        } else if (roll < 0.5) {
          const v = pick(r, ['x', 'y', 'z']);
          if (next.data[k] !== v) owners.set(k, new Set([u]));
          next.data[k] = v;
          model[k] = v;
        }
      }
      live = updateManagedFields(live, next, { manager: u, operation: 'Update', kind: CONFIGMAP, now });
    }
    assert.equal(live.data ?? {}, model, `step ${step}`);
    for (const k of Object.keys(model)) {
      const got = (live.metadata.managedFields ?? []).filter((e: any) => e.fieldsV1?.['f:data']?.[`f:${k}`]).map((e: any) => e.manager).sort();
      assert.equal(got, [...owners.get(k)!].sort(), `step ${step} owners of ${k}`);
    }
  }
});

test.run();
