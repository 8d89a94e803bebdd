// The keyspace's commit bounds: a batch is committed once it holds
// commitEntriesMax entries or commitBytesMax bytes of entries, without waiting
// for the interval. A child applies entries with the interval set to an hour
// and is killed; what the reopened keyspace holds is what those bounds
// committed (the rest would be replayed from the Raft WAL in a member).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Keyspace } from '../../../src/store/mvcc/keyspace.ts';
import { tempDir } from './helpers.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const tsxLoader = path.join(here, '../../../node_modules/tsx/dist/loader.mjs');

/** Runs the child to its self-kill; returns the applied index the keyspace reopens at. */
async function appliedAfterKill(kind: 'entries' | 'bytes', bound: number, n: number, valueBytes: number): Promise<number> {
  const dir = tempDir('keelson-commit-bounds-');
  try {
    const err = await new Promise<string>((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', pathToFileURL(tsxLoader).href, path.join(here, 'commit-bounds-child.ts'), dir, kind, String(bound), String(n), String(valueBytes)], { stdio: ['ignore', 'ignore', 'pipe'] });
      let text = '';
      child.stderr.on('data', (d) => { text += d; });
      child.on('close', (code, signal) => (signal === 'SIGKILL' ? resolve(text) : reject(new Error(`child exited ${code} ${signal}: ${text}`))));
    });
    assert.is(err, '', 'the child ran cleanly up to its kill');
    const ks = new Keyspace({ dir });
    try {
      return ks.appliedIndex();
    } finally {
      await ks.close();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test('commitEntriesMax: every full batch of entries is committed at once', async () => {
  // 25 entries with a bound of 10: batches [1..10] and [11..20] commit, 21..25 stay open.
  assert.is(await appliedAfterKill('entries', 10, 25, 16), 20);
});

test('commitBytesMax: a batch is committed once its entries pass the byte bound', async () => {
  // Entries of a little over 1,000 bytes with a bound of 4,000: every 4th entry closes a batch.
  assert.is(await appliedAfterKill('bytes', 4000, 10, 1000), 8);
  // Below the bound nothing is committed before the interval.
  assert.is(await appliedAfterKill('bytes', 1 << 20, 10, 1000), 0);
});

test.run();
