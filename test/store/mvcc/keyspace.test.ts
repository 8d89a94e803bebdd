import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { isKeelsonError, KeelsonError } from '../../../src/store/errors.ts';
import { Keyspace, snapshotChunkBytes } from '../../../src/store/mvcc/keyspace.ts';
import {
  encodeProposal, limits, prefixEnd, type DeleteRangeResponse, type PutResponse, type RequestOp, type TxnResponse,
} from '../../../src/store/mvcc/requests.ts';
import { b, open, tempDir } from './helpers.ts';

function throwsCode(fn: () => unknown, code: string): KeelsonError {
  try {
    fn();
  } catch (e) {
    assert.ok(isKeelsonError(e), `expected KeelsonError, got ${String(e)}`);
    assert.is((e as KeelsonError).code, code);
    return e as KeelsonError;
  }
  assert.unreachable(`expected error ${code}`);
  throw new Error('unreachable');
}

function errCode(r: { ok: boolean; error?: KeelsonError }, code: string): KeelsonError {
  assert.is(r.ok, false, `expected ${code}`);
  assert.is(r.error?.code, code);
  return r.error as KeelsonError;
}

const keys = (kvs: { key: Buffer }[]) => kvs.map((k) => k.key.toString('latin1'));

test('put creates revisions, versions and create revisions', async () => {
  const h = open();
  try {
    assert.is(h.ok<PutResponse>({ op: 'put', key: b('a'), value: b('1') }).header.revision, 1);
    assert.is(h.ok<PutResponse>({ op: 'put', key: b('a'), value: b('2') }).header.revision, 2);
    let kv = h.ks.range({ key: b('a') }).kvs[0];
    assert.equal([kv.createRevision, kv.modRevision, kv.version, kv.value.toString()], [1, 2, 2, '2']);
    h.ok({ op: 'deleteRange', key: b('a') });
    h.ok({ op: 'put', key: b('a'), value: b('3') });
    kv = h.ks.range({ key: b('a') }).kvs[0];
    assert.equal([kv.createRevision, kv.modRevision, kv.version], [4, 4, 1]);
    assert.is(h.ks.range({ key: b('a'), revision: 3 }).count, 0);
    assert.is(h.ks.range({ key: b('a'), revision: 1 }).kvs[0].value.toString(), '1');
  } finally {
    await h.close();
  }
});

test('key order with zero and 0xff bytes, prefix and from-key ranges', async () => {
  const h = open();
  try {
    const ks = ['a', 'a\0', 'a\0\0', 'a\0\x01', 'a\x01', 'a\xff', 'ab', 'b', '\0', '\xff\xff'];
    for (const k of ks) h.ok({ op: 'put', key: Buffer.from(k, 'latin1'), value: b(k) });
    const sorted = [...ks].sort((x, y) => Buffer.compare(Buffer.from(x, 'latin1'), Buffer.from(y, 'latin1')));
    assert.equal(keys(h.ks.range({ key: Buffer.from([0]), rangeEnd: Buffer.from([0]) }).kvs), sorted);
    assert.equal(keys(h.ks.range({ key: b('a'), rangeEnd: prefixEnd(b('a')) }).kvs), sorted.filter((k) => k.startsWith('a')));
    assert.equal(keys(h.ks.range({ key: Buffer.from('a\0', 'latin1'), rangeEnd: prefixEnd(Buffer.from('a\0', 'latin1')) }).kvs), ['a\0', 'a\0\0', 'a\0\x01']);
    assert.equal(keys(h.ks.range({ key: b('ab'), rangeEnd: Buffer.from([0]) }).kvs), ['ab', 'a\xff', 'b', '\xff\xff']);
    assert.equal(keys(h.ks.range({ key: Buffer.from('a\0', 'latin1') }).kvs), ['a\0']);
    assert.equal(prefixEnd(Buffer.from([0xff, 0xff])), Buffer.from([0]));
    assert.equal(prefixEnd(Buffer.from([1, 0xff])), Buffer.from([2]));
  } finally {
    await h.close();
  }
});

test('range limit, more, count, countOnly, keysOnly, sort and revision filters', async () => {
  const h = open();
  try {
    for (let i = 0; i < 10; i++) h.ok({ op: 'put', key: b(`k${i}`), value: b(`${9 - i}`) });
    h.ok({ op: 'put', key: b('k3'), value: b('z') });
    const all = { key: b('k'), rangeEnd: prefixEnd(b('k')) };
    let r = h.ks.range({ ...all, limit: 3 });
    assert.equal([keys(r.kvs), r.more, r.count], [['k0', 'k1', 'k2'], true, 10]);
    r = h.ks.range({ ...all, countOnly: true });
    assert.equal([r.kvs.length, r.count, r.more], [0, 10, false]);
    r = h.ks.range({ ...all, keysOnly: true, limit: 1 });
    assert.is(r.kvs[0].value.length, 0);
    r = h.ks.range({ ...all, sortTarget: 'value', sortOrder: 'ascend', limit: 2 });
    assert.equal(keys(r.kvs), ['k9', 'k8']);
    r = h.ks.range({ ...all, sortTarget: 'key', sortOrder: 'descend', limit: 2 });
    assert.equal(keys(r.kvs), ['k9', 'k8']);
    r = h.ks.range({ ...all, sortTarget: 'mod', sortOrder: 'descend', limit: 1 });
    assert.equal(keys(r.kvs), ['k3']);
    r = h.ks.range({ ...all, sortTarget: 'version', sortOrder: 'descend', limit: 1 });
    assert.equal(keys(r.kvs), ['k3']);
    r = h.ks.range({ ...all, sortTarget: 'create' }); // none + non-key target = ascend
    assert.equal(keys(r.kvs).slice(0, 2), ['k0', 'k1']);
    r = h.ks.range({ ...all, minModRevision: 9 });
    assert.equal(keys(r.kvs), ['k3', 'k8', 'k9']);
    r = h.ks.range({ ...all, maxCreateRevision: 2 });
    assert.equal(keys(r.kvs), ['k0', 'k1']);
    r = h.ks.range({ ...all, revision: 5 });
    assert.equal([r.count, r.header.revision], [5, 11]);
  } finally {
    await h.close();
  }
});

test('reads below the compact revision and above the current one fail with their codes', async () => {
  const h = open();
  try {
    for (let i = 0; i < 5; i++) h.ok({ op: 'put', key: b('k'), value: b(`${i}`) });
    h.ok({ op: 'compact', revision: 3 });
    const e = throwsCode(() => h.ks.range({ key: b('k'), revision: 2 }), 'compacted');
    assert.is(e.compactRevision, 3);
    assert.is(e.message, 'etcdserver: mvcc: required revision has been compacted (compact revision is 3)');
    const f = throwsCode(() => h.ks.range({ key: b('k'), revision: 6 }), 'future revision');
    assert.is(f.currentRevision, 5);
    assert.is(h.ks.range({ key: b('k'), revision: 3 }).kvs[0].value.toString(), '2');
    errCode(h.apply({ op: 'compact', revision: 3 }), 'compacted');
    errCode(h.apply({ op: 'compact', revision: 9 }), 'future revision');
  } finally {
    await h.close();
  }
});

test('put options: prevKv, ignoreValue, ignoreLease, lease must exist; failures write nothing', async () => {
  const h = open();
  try {
    errCode(h.apply({ op: 'put', key: b('a'), value: b('x'), lease: 7 }), 'lease not found');
    errCode(h.apply({ op: 'put', key: b('a'), value: Buffer.alloc(0), ignoreValue: true }), 'key not found');
    assert.is(h.ks.revision(), 0);
    h.ok({ op: 'leaseGrant', leaseId: 7, ttl: 10 });
    h.ok({ op: 'put', key: b('a'), value: b('x'), lease: 7 });
    const r = h.ok<PutResponse>({ op: 'put', key: b('a'), value: Buffer.alloc(0), ignoreValue: true, ignoreLease: true, prevKv: true });
    assert.is(r.prevKv?.value.toString(), 'x');
    const kv = h.ks.range({ key: b('a') }).kvs[0];
    assert.equal([kv.value.toString(), kv.lease, kv.version], ['x', 7, 2]);
    errCode(h.apply({ op: 'put', key: b('a'), value: b('y'), ignoreValue: true }), 'value provided');
    errCode(h.apply({ op: 'put', key: b('a'), value: b('y'), lease: 7, ignoreLease: true }), 'lease provided');
    errCode(h.apply({ op: 'put', key: Buffer.alloc(0), value: b('y') }), 'empty key');
    errCode(h.apply({ op: 'put', key: Buffer.alloc(limits.keyBytesMax + 1), value: b('y') }), 'key too large');
    // The largest key, all zero bytes (the worst case of the escaping), fits lmdb.
    h.ok({ op: 'put', key: Buffer.alloc(limits.keyBytesMax), value: b('y') });
    assert.is(h.ks.range({ key: Buffer.alloc(limits.keyBytesMax) }).count, 1);
  } finally {
    await h.close();
  }
});

test('deleteRange with prevKv; deleting nothing takes no revision', async () => {
  const h = open();
  try {
    for (const k of ['a', 'b', 'c']) h.ok({ op: 'put', key: b(k), value: b(k) });
    let r = h.ok<DeleteRangeResponse>({ op: 'deleteRange', key: b('x') });
    assert.equal([r.deleted, r.header.revision], [0, 3]);
    r = h.ok<DeleteRangeResponse>({ op: 'deleteRange', key: b('a'), rangeEnd: b('c'), prevKv: true });
    assert.equal([r.deleted, keys(r.prevKvs), r.header.revision], [2, ['a', 'b'], 4]);
    assert.equal(keys(h.ks.range({ key: b('a'), rangeEnd: Buffer.from([0]) }).kvs), ['c']);
  } finally {
    await h.close();
  }
});

test('txn compares on every target and result, with range compares', async () => {
  const h = open();
  try {
    h.ok({ op: 'leaseGrant', leaseId: 5, ttl: 10 });
    h.ok({ op: 'put', key: b('a'), value: b('v1'), lease: 5 }); // rev 1
    h.ok({ op: 'put', key: b('a'), value: b('v2'), lease: 5 }); // rev 2
    h.ok({ op: 'put', key: b('b'), value: b('w') }); // rev 3
    const cmp = (c: object): boolean => h.ok<TxnResponse>({ op: 'txn', compare: [{ key: b('a'), ...c } as never], success: [], failure: [] }).succeeded;
    assert.ok(cmp({ target: 'value', result: 'equal', value: b('v2') }));
    assert.ok(cmp({ target: 'value', result: 'greater', value: b('v1') }));
    assert.ok(cmp({ target: 'value', result: 'less', value: b('v3') }));
    assert.ok(cmp({ target: 'value', result: 'notEqual', value: b('v1') }));
    assert.ok(cmp({ target: 'version', result: 'equal', number: 2 }));
    assert.ok(cmp({ target: 'create', result: 'equal', number: 1 }));
    assert.ok(cmp({ target: 'mod', result: 'less', number: 3 }));
    assert.ok(cmp({ target: 'mod', result: 'greater', number: 1 }));
    assert.ok(cmp({ target: 'lease', result: 'equal', number: 5 }));
    assert.not.ok(cmp({ target: 'lease', result: 'notEqual', number: 5 }));
    // A missing key: version 0, and every value compare fails.
    const missing = (c: object) => h.ok<TxnResponse>({ op: 'txn', compare: [{ key: b('zz'), ...c } as never], success: [], failure: [] }).succeeded;
    assert.ok(missing({ target: 'version', result: 'equal', number: 0 }));
    assert.not.ok(missing({ target: 'value', result: 'notEqual', value: b('x') }));
    // Range compare: holds only if it holds for every key.
    assert.ok(cmp({ rangeEnd: b('c'), target: 'mod', result: 'greater', number: 0 }));
    assert.not.ok(cmp({ rangeEnd: b('c'), target: 'mod', result: 'less', number: 3 }));
    assert.is(h.ks.revision(), 3, 'txns that only compare take no revision');
  } finally {
    await h.close();
  }
});

test('txn branches, one revision for all writes, nested txn, ranges see earlier writes', async () => {
  const h = open();
  try {
    h.ok({ op: 'put', key: b('a'), value: b('1') });
    const r = h.ok<TxnResponse>({
      op: 'txn',
      compare: [{ key: b('a'), target: 'value', result: 'equal', value: b('1') }],
      success: [
        { op: 'put', key: b('b'), value: b('2') },
        { op: 'deleteRange', key: b('a'), prevKv: true },
        { op: 'range', key: b('a'), rangeEnd: b('z') },
        {
          op: 'txn',
          compare: [{ key: b('b'), target: 'version', result: 'equal', number: 0 }],
          success: [{ op: 'put', key: b('c'), value: b('3') }],
          failure: [{ op: 'put', key: b('d'), value: b('4') }],
        },
      ],
      failure: [{ op: 'put', key: b('x'), value: b('no') }],
    });
    assert.ok(r.succeeded);
    assert.is(r.header.revision, 2);
    const range = r.responses[2] as Extract<(typeof r.responses)[number], { op: 'range' }>;
    assert.equal(keys(range.kvs), ['b']);
    const nested = r.responses[3] as Extract<(typeof r.responses)[number], { op: 'txn' }>;
    // Nested compares are evaluated before the txn writes: b did not exist yet.
    assert.ok(nested.succeeded);
    const now = h.ks.range({ key: b('a'), rangeEnd: b('z') });
    assert.equal(keys(now.kvs), ['b', 'c']);
    assert.ok(now.kvs.every((kv) => kv.modRevision === 2));
    assert.equal(h.events.at(-1)?.map((e) => [e.type, e.kv.key.toString(), e.kv.modRevision]), [['put', 'b', 2], ['delete', 'a', 2], ['put', 'c', 2]]);
  } finally {
    await h.close();
  }
});

test('txn limits: duplicate keys, too many operations, request size, lease checked before any write', async () => {
  const h = open();
  try {
    const put = (k: string): RequestOp => ({ op: 'put', key: b(k), value: b('v') });
    errCode(h.apply({ op: 'txn', compare: [], success: [put('a'), put('a')], failure: [] }), 'duplicate key');
    errCode(h.apply({ op: 'txn', compare: [], success: [{ op: 'deleteRange', key: b('a'), rangeEnd: b('c') }, put('b')], failure: [] }), 'duplicate key');
    errCode(h.apply({ op: 'txn', compare: [], success: [put('a'), { op: 'txn', compare: [], success: [put('a')], failure: [] }], failure: [] }), 'duplicate key');
    // The two branches of a nested txn are exclusive: the same key in each is fine.
    h.ok({ op: 'txn', compare: [], success: [{ op: 'txn', compare: [], success: [put('n')], failure: [put('n')] }], failure: [put('n')] });
    const e = errCode(h.apply({ op: 'txn', compare: [], success: Array.from({ length: 129 }, (_, i) => put(`k${i}`)), failure: [] }), 'too many operations');
    assert.ok(e.message.startsWith('etcdserver: too many operations in txn request'));
    h.ok({ op: 'txn', compare: [], success: Array.from({ length: 128 }, (_, i) => put(`k${i}`)), failure: [] });
    const rev = h.ks.revision();
    errCode(h.apply({ op: 'txn', compare: [], success: [put('q1'), { op: 'put', key: b('q2'), value: b('v'), lease: 99 }], failure: [] }), 'lease not found');
    assert.is(h.ks.revision(), rev);
    assert.is(h.ks.range({ key: b('q1') }).count, 0, 'a failed txn writes nothing');
    const big = encodeProposal({ id: 1, req: { op: 'put', key: b('big'), value: Buffer.alloc(limits.requestBytesMax) } });
    h.ks.applySync([{ index: h.ks.appliedIndex() + 1, term: 1, data: big }]);
    assert.is(h.ks.range({ key: b('big') }).count, 0);
  } finally {
    await h.close();
  }
});

test('apply: empty entries advance the index, garbage fails cleanly, out-of-order indexes are refused', async () => {
  const h = open();
  try {
    h.ks.applySync([{ index: 1, term: 1, data: Buffer.alloc(0) }, { index: 2, term: 1, data: Buffer.from([0xc1, 0xff]) }]);
    assert.is(h.ks.appliedIndex(), 2);
    assert.throws(() => h.ks.applySync([{ index: 4, term: 1, data: Buffer.alloc(0) }]), /invariant/);
    assert.is(h.ks.appliedIndex(), 2);
  } finally {
    await h.close();
  }
});

test('compaction: physical batches keep every read at or above the compact revision and the hash', async () => {
  const h = open({ compactionBatchKeysMax: 3 });
  try {
    const reads: Record<number, string> = {};
    for (let i = 1; i <= 40; i++) {
      const k = `k${i % 7}`;
      if (i % 5 === 0) h.ok({ op: 'deleteRange', key: b(k) });
      else h.ok({ op: 'put', key: b(k), value: b(`${i}`) });
    }
    const all = { key: b('k'), rangeEnd: prefixEnd(b('k')) };
    const snap = (rev: number) => JSON.stringify(h.ks.range({ ...all, revision: rev }).kvs.map((kv) => [kv.key.toString(), kv.value.toString(), kv.createRevision, kv.modRevision, kv.version]));
    const cur = h.ks.revision();
    for (let r = 20; r <= cur; r++) reads[r] = snap(r);
    h.ok({ op: 'compact', revision: 20 });
    const hashBefore = h.ks.hash(30);
    let steps = 0;
    while (h.ks.compactStep()) {
      steps++;
      for (let r = 20; r <= cur; r += 5) assert.is(snap(r), reads[r], `read at ${r} after step ${steps}`);
    }
    assert.ok(steps >= 5, `bounded batches (${steps} steps)`);
    for (let r = 20; r <= cur; r++) assert.is(snap(r), reads[r]);
    assert.equal(h.ks.hash(30), hashBefore, 'physical compaction does not change the hash');
    // A second compaction removes what the first one kept.
    h.ok({ op: 'compact', revision: cur });
    await h.ks.compactAll();
    assert.is(snap(cur), reads[cur]);
  } finally {
    await h.close();
  }
});

test('hash is equal on two keyspaces that applied the same entries, whatever their physical compaction', async () => {
  const a = open({ compactionBatchKeysMax: 2 });
  const c = open({ compactionBatchKeysMax: 1000 });
  try {
    for (const h of [a, c]) {
      for (let i = 0; i < 30; i++) h.ok({ op: 'put', key: b(`k${i % 4}`), value: b(`${i}`) });
      h.ok({ op: 'compact', revision: 25 });
    }
    a.ks.compactStep();
    await c.ks.compactAll();
    assert.equal(a.ks.hash(), c.ks.hash());
    assert.equal(a.ks.hash(27), c.ks.hash(27));
    assert.equal(await a.ks.hashAsync(27, 3), c.ks.hash(27), 'chunked hash equals the one-pass hash');
    assert.equal(await c.ks.hashAsync(0, 1), c.ks.hash());
    c.ok({ op: 'put', key: b('x'), value: b('y') });
    assert.is.not(a.ks.hash().hash, c.ks.hash().hash);
  } finally {
    await a.close();
    await c.close();
  }
});

test('state survives reopen; physical compaction resumes', async () => {
  const dir = tempDir();
  const h = open({ compactionBatchKeysMax: 2 }, dir);
  for (let i = 0; i < 20; i++) h.ok({ op: 'put', key: b(`k${i % 3}`), value: b(`${i}`) });
  h.ok({ op: 'compact', revision: 15 });
  h.ks.compactStep();
  const hash = h.ks.hash();
  const applied = h.ks.appliedIndex();
  await h.ks.close();
  const ks = new Keyspace({ dir });
  try {
    assert.is(ks.appliedIndex(), applied);
    assert.is(ks.revision(), 20);
    assert.is(ks.compactRevision(), 15);
    assert.ok(ks.compactPending());
    await ks.compactAll();
    assert.equal(ks.hash(), hash);
  } finally {
    await ks.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('snapshot and restore: same state and hash; corrupt snapshots and interrupted restores', async () => {
  const a = open();
  const c = open();
  try {
    a.ok({ op: 'leaseGrant', leaseId: 3, ttl: 10 });
    for (let i = 0; i < 50; i++) a.ok({ op: 'put', key: b(`k${i}`), value: b(`${i}`), lease: i % 2 ? 3 : 0 });
    a.ok({ op: 'compact', revision: 10 });
    const snap = await a.ks.snapshot();
    assert.is(snap.index, a.ks.appliedIndex());
    const bad = Buffer.from(snap.data);
    bad[bad.length - 100] ^= 1;
    let refused = false;
    try {
      await c.ks.restore(snap.index, bad);
    } catch (e) {
      refused = isKeelsonError(e, 'bad request');
    }
    assert.ok(refused, 'a corrupt snapshot is refused');
    await c.ks.restore(snap.index, snap.data);
    assert.is(c.ks.appliedIndex(), snap.index);
    assert.equal(c.ks.hash(), a.ks.hash());
    assert.equal(c.ks.lease(3)?.keys.length, 25);
    assert.is(c.ks.compactRevision(), 10);
    // Applying continues from the snapshot index.
    c.ok({ op: 'put', key: b('after'), value: b('x') });
    assert.is(c.ks.revision(), 51);
    // An interrupted restore leaves a partial file that the next open drops.
    fs.writeFileSync(path.join(c.dir, 'keyspace.mdb.restore'), 'partial');
    await c.ks.close();
    const again = new Keyspace({ dir: c.dir });
    assert.not.ok(fs.existsSync(path.join(c.dir, 'keyspace.mdb.restore')));
    assert.is(again.revision(), 51);
    await again.close();
  } finally {
    await a.close();
    await c.close();
  }
});

test('snapshotStream: bounded chunks, the same state as snapshot(); its copy is removed however the stream ends', async () => {
  const a = open();
  const c = open();
  const copies = (dir: string) => fs.readdirSync(dir).filter((f) => f.startsWith('snapshot-'));
  try {
    // About 3 MiB of values, so the copy spans several chunks.
    const v = Buffer.alloc(3000, 0x61);
    for (let i = 0; i < 1000; i++) a.ok({ op: 'put', key: b(`k${i}`), value: v });
    const s = await a.ks.snapshotStream();
    assert.is(s.index, a.ks.appliedIndex());
    assert.is(copies(a.dir).length, 1, 'the copy is a file beside the store');
    const parts: Buffer[] = [];
    for await (const chunk of s.chunks) {
      assert.ok(chunk.length <= snapshotChunkBytes, `chunk of ${chunk.length} bytes`);
      parts.push(chunk);
    }
    assert.ok(parts.length >= 4, `${parts.length} chunks`);
    const data = Buffer.concat(parts);
    assert.is(data.length, s.sizeBytes);
    assert.equal(copies(a.dir), [], 'removed after the last chunk');
    // The bytes are a keyspace snapshot with a valid checksum.
    await c.ks.restore(s.index, data);
    assert.equal(c.ks.hash(), a.ks.hash());
    const whole = await a.ks.snapshot();
    assert.is(whole.data.length, data.length);
    // A loop that stops early, a stream never read (discard), and one left open at close.
    const early = await a.ks.snapshotStream();
    for await (const _ of early.chunks) break;
    assert.equal(copies(a.dir), [], 'removed when the loop breaks');
    const unread = await a.ks.snapshotStream();
    unread.discard();
    unread.discard();
    assert.equal(copies(a.dir), [], 'removed by discard()');
    await a.ks.snapshotStream();
    assert.is(copies(a.dir).length, 1);
    await a.ks.close();
    assert.equal(copies(a.dir), [], 'removed at close');
    // A copy left by a crash is removed on open.
    fs.writeFileSync(path.join(a.dir, 'snapshot-1-1.mdb'), 'left by a crash');
    const again = new Keyspace({ dir: a.dir });
    assert.equal(copies(a.dir), []);
    await again.close();
  } finally {
    await a.close();
    await c.close();
  }
});

test('leases: revoke and expire delete attached keys in one revision each', async () => {
  const h = open();
  try {
    h.ok({ op: 'leaseGrant', leaseId: 1, ttl: 5 });
    h.ok({ op: 'leaseGrant', leaseId: 2, ttl: 5 });
    errCode(h.apply({ op: 'leaseGrant', leaseId: 2, ttl: 5 }), 'lease exists');
    h.ok({ op: 'put', key: b('a'), value: b('1'), lease: 1 });
    h.ok({ op: 'put', key: b('b'), value: b('1'), lease: 1 });
    h.ok({ op: 'put', key: b('c'), value: b('1'), lease: 2 });
    h.ok({ op: 'put', key: b('b'), value: b('2') }); // detaches b from lease 1
    assert.equal((h.ks.lease(1)?.keys ?? []).map(String), ['a']);
    h.ok({ op: 'leaseRevoke', leaseId: 1 });
    assert.equal(keys(h.ks.range({ key: b('a'), rangeEnd: b('z') }).kvs), ['b', 'c']);
    errCode(h.apply({ op: 'leaseRevoke', leaseId: 1 }), 'lease not found');
    const r = h.ok({ op: 'leaseExpire', leaseIds: [1, 2] }) as { revoked: number[] };
    assert.equal(r.revoked, [2]);
    assert.equal(keys(h.ks.range({ key: b('a'), rangeEnd: b('z') }).kvs), ['b']);
    assert.equal(h.ks.leases(), []);
  } finally {
    await h.close();
  }
});

test('the NOSPACE alarm refuses writes that add data, not deletes or compaction', async () => {
  const h = open();
  try {
    h.ok({ op: 'put', key: b('a'), value: b('1') });
    h.ok({ op: 'alarm', action: 'activate', alarm: 'NOSPACE' });
    const e = errCode(h.apply({ op: 'put', key: b('b'), value: b('1') }), 'NOSPACE');
    assert.is(e.message, 'etcdserver: mvcc: database space exceeded');
    errCode(h.apply({ op: 'leaseGrant', leaseId: 1, ttl: 1 }), 'NOSPACE');
    h.ok({ op: 'deleteRange', key: b('a') });
    h.ok({ op: 'compact', revision: 2 });
    assert.equal(h.ks.alarms(), ['NOSPACE']);
    h.ok({ op: 'alarm', action: 'deactivate', alarm: 'NOSPACE' });
    h.ok({ op: 'put', key: b('b'), value: b('1') });
  } finally {
    await h.close();
  }
});

test('watch catch-up source: eventsFrom never splits a revision and carries prevKv', async () => {
  const h = open();
  try {
    h.ok({ op: 'put', key: b('a'), value: b('1') });
    h.ok({ op: 'txn', compare: [], success: [{ op: 'put', key: b('a'), value: b('2') }, { op: 'put', key: b('b'), value: b('1') }, { op: 'put', key: b('c'), value: b('1') }], failure: [] });
    h.ok({ op: 'deleteRange', key: b('a') });
    const r = h.ks.eventsFrom(1, b('a'), Buffer.from([0]), 2, true);
    assert.equal(r.events.map((e) => `${e.type}:${e.kv.key}:${e.kv.modRevision}`), ['put:a:1', 'put:a:2', 'put:b:2', 'put:c:2']);
    assert.is(r.nextRev, 3);
    assert.is(r.events[1].prevKv?.value.toString(), '1');
    const r2 = h.ks.eventsFrom(3, b('a'), undefined, 10, true);
    assert.equal([r2.events[0].type, r2.events[0].prevKv?.value.toString(), r2.nextRev], ['delete', '2', 4]);
  } finally {
    await h.close();
  }
});

test('garbage proposals fail cleanly with bad request and never break the keyspace', async () => {
  const h = open();
  try {
    let x = 7;
    const rand = () => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) / 4294967296);
    const pick = <T>(xs: T[]): T => xs[Math.floor(rand() * xs.length)];
    const junk = (depth: number): unknown => {
      const r = rand();
      if (depth > 2 || r < 0.3) return pick([null, 0, -1, 1.5, 'x', true, Buffer.from('k'), Buffer.alloc(0), [], {}]);
      if (r < 0.5) return Array.from({ length: Math.floor(rand() * 3) }, () => junk(depth + 1));
      const o: Record<string, unknown> = {};
      for (const f of ['op', 'key', 'value', 'rangeEnd', 'compare', 'success', 'failure', 'target', 'result', 'number', 'lease', 'revision', 'leaseId', 'ttl', 'leaseIds']) {
        if (rand() < 0.4) o[f] = f === 'op' ? pick(['put', 'deleteRange', 'txn', 'range', 'compact', 'leaseGrant', 'leaseExpire', 'nope']) : junk(depth + 1);
      }
      return o;
    };
    for (let i = 0; i < 2000; i++) {
      const r = h.apply(junk(0) as never);
      if (!r.ok) assert.ok(isKeelsonError(r.error), `entry ${i}: ${String(r.error)}`);
    }
    h.ok({ op: 'put', key: b('still'), value: b('fine') });
    assert.is(h.ks.range({ key: b('still') }).count, 1);
  } finally {
    await h.close();
  }
});

test('flush returns the applied index that is durable', async () => {
  const h = open();
  try {
    h.ok({ op: 'put', key: b('a'), value: b('1') });
    assert.is(await h.ks.flush(), h.ks.appliedIndex());
  } finally {
    await h.close();
  }
});

test('head index: reads at the current revision agree with reads at that revision from the version walk', async () => {
  const h = open();
  try {
    for (let v = 0; v < 3; v++) for (let i = 0; i < 20; i++) h.ok({ op: 'put', key: b(`p/${String(i).padStart(2, '0')}`), value: b(`v${v}-${i}`) });
    h.ok({ op: 'deleteRange', key: b('p/05'), rangeEnd: b('p/08') });
    h.ok({ op: 'put', key: b('p/06'), value: b('again') });
    h.ok({ op: 'put', key: b('p\u0000z'), value: b('zero byte') });
    h.ok({ op: 'compact', revision: 30 });
    await h.ks.compactAll();
    const rev = h.ks.revision();
    // A read at an explicit revision below the current one walks `kv`; compare
    // it with the head-based current read through a no-op put at rev + 1.
    const ranges: [Buffer, Buffer | undefined][] = [[b('p/'), prefixEnd(b('p/'))], [b('p'), Buffer.from([0])], [b('p/06'), undefined], [b('p/05'), undefined], [b('p/09'), b('p/01')], [b('p\u0000z'), undefined]];
    const shapes = [{}, { limit: 1 }, { limit: 5 }, { limit: 18 }, { countOnly: true }, { keysOnly: true, limit: 3 }, { limit: 4, sortOrder: 'descend' as const }];
    const cur = ranges.map(([key, rangeEnd]) => shapes.map((o) => h.ks.range({ key, rangeEnd, ...o })));
    h.ok({ op: 'put', key: b('other'), value: b('x') });
    ranges.forEach(([key, rangeEnd], i) => shapes.forEach((o, j) => {
      const old = h.ks.range({ key, rangeEnd, revision: rev, ...o });
      assert.equal({ ...cur[i][j], header: null }, { ...old, header: null }, `range ${i} shape ${j}`);
    }));
    assert.is(cur[0][2].more, true);
    assert.is(cur[0][2].count, 18);
    assert.is(cur[0][4].count, 18);
    assert.equal(keys(cur[0][0].kvs).length, 18);
    assert.equal(h.ks.range({ key: b('p/06') }).kvs[0].value, b('again'));
    // A txn range sees the txn's own earlier writes through the head index.
    const t = h.ok<TxnResponse>({ op: 'txn', compare: [], success: [{ op: 'put', key: b('p/50'), value: b('new') }, { op: 'range', key: b('p/'), rangeEnd: prefixEnd(b('p/')) }], failure: [] });
    const r = t.responses[1] as { kvs: { key: Buffer }[] };
    assert.is(r.kvs.length, 19);
  } finally {
    await h.close();
  }
});

test('a data directory of an older on-disk layout is refused', async () => {
  const h = open();
  const dir = h.dir;
  h.ok({ op: 'put', key: b('a'), value: b('1') });
  await h.ks.close();
  const { open: lmdbOpen } = await import('lmdb');
  const env = lmdbOpen({ path: path.join(dir, 'keyspace.mdb'), maxDbs: 8 });
  await env.openDB('meta', { encoding: 'msgpack' }).remove('layout');
  await env.close();
  assert.throws(() => new Keyspace({ dir }), /on-disk layout 1/);
  fs.rmSync(dir, { recursive: true, force: true });
});

test.run();
