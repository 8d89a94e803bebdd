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

test.run();
