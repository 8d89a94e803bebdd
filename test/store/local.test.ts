// Runs the Store contract suite against LocalKeyspaceStore, plus the local
// store's own behaviour (quota).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import { isKeelsonError } from '../../src/store/errors.ts';
import { LocalKeyspaceStore } from '../../src/store/local.ts';
import { storeContract } from './contract.ts';
import { tempDir } from './mvcc/helpers.ts';

storeContract('LocalKeyspaceStore', async () => {
  const dir = tempDir('keelson-contract-');
  const store = new LocalKeyspaceStore({ dir, leaseTickMs: 0 });
  return {
    store,
    async cleanup() {
      await store.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}).run();

test('past the quota writes fail with NOSPACE and raise the alarm; deletes and compaction free it', async () => {
  const dir = tempDir('keelson-quota-');
  const store = new LocalKeyspaceStore({ dir, leaseTickMs: 0, quotaBackendBytes: 256 * 1024 });
  try {
    let err: unknown;
    let last = 0;
    for (let i = 0; i < 2000 && err === undefined; i++) {
      try {
        last = (await store.put(Buffer.from(`k${i % 50}`), Buffer.alloc(2000, i))).header.revision;
      } catch (e) {
        err = e;
      }
    }
    assert.ok(isKeelsonError(err, 'NOSPACE'), `NOSPACE, got ${String(err)}`);
    assert.equal((await store.status()).errors, ['NOSPACE']);
    assert.ok(isKeelsonError(await store.leaseGrant(10).catch((e) => e), 'NOSPACE'));
    // Deletes and compaction are allowed and bring the size back under the quota.
    await store.deleteRange(Buffer.from('k'), { rangeEnd: Buffer.from('l') });
    await store.compact(last + 1, { physical: true });
    assert.equal((await store.status()).errors, []);
    await store.put(Buffer.from('after'), Buffer.from('ok'));
  } finally {
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('automatic compaction keeps the last N revisions', async () => {
  const dir = tempDir('keelson-autocompact-');
  const store = new LocalKeyspaceStore({ dir, leaseTickMs: 0, autoCompact: { mode: 'revision', retain: 50 } });
  try {
    for (let i = 0; i < 300; i++) await store.put(Buffer.from(`k${i % 10}`), Buffer.from(`${i}`));
    await new Promise((r) => setTimeout(r, 20));
    const st = await store.status();
    assert.ok(st.compactRevision >= 300 - 100 && st.compactRevision <= 300 - 50, `compact revision ${st.compactRevision}`);
    assert.is((await store.range(Buffer.from('k1'), { revision: 250 })).count, 1);
  } finally {
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
