// Crash consistency: a child process applies batches (pipelined, with
// physical compaction steps in between) and is killed with SIGKILL at a
// seeded random moment, again and again. After every kill the keyspace must
// open, its applied index must be the end of one of the batches the child
// started (every batch is all-or-nothing), and its contents must equal a
// reference keyspace that applied exactly the entries up to that index.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Keyspace } from '../../../src/store/mvcc/keyspace.ts';
import { batchSize, entryFor } from './crash-gen.ts';
import { tempDir } from './helpers.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../../..');
// The child is node itself with tsx's loader (not the tsx CLI, which would
// run a grandchild that SIGKILL of the CLI leaves running).
const tsxLoader = path.join(root, 'node_modules/tsx/dist/loader.mjs');

function runAndKill(dir: string, delayMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', pathToFileURL(tsxLoader).href, path.join(here, 'crash-child.ts'), dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let killed = false;
    child.stdout.on('data', (d) => {
      out += d;
      if (!killed && out.includes('ready')) {
        killed = true;
        setTimeout(() => child.kill('SIGKILL'), delayMs);
      }
    });
    child.stderr.on('data', (d) => { err += d; });
    child.on('close', (code, signal) => {
      if (signal !== 'SIGKILL') reject(new Error(`child exited ${code} ${signal}: ${err}`));
      else resolve(Number(/ready (\d+)/.exec(out)?.[1] ?? -1));
    });
  });
}

test('SIGKILL at random points: applied index at a batch end, data equal to a reference', async () => {
  const seed = Number(process.env.KEELSON_SEED ?? 42);
  let x = seed;
  const rand = () => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) / 4294967296);
  const dir = tempDir('keelson-crash-');
  const refDir = tempDir('keelson-crash-ref-');
  const ref = new Keyspace({ dir: refDir });
  let iteration = 0;
  try {
    let applied = 0;
    for (iteration = 0; iteration < 6; iteration++) {
      const start = await runAndKill(dir, 30 + Math.floor(rand() * 400));
      assert.is(start, applied, 'the child started from the stored applied index');
      const ks = new Keyspace({ dir });
      const now = ks.appliedIndex();
      // Batch ends from the child's start point.
      const ends = new Set<number>([start]);
      for (let first = start + 1; first <= now; first += batchSize(first)) ends.add(first + batchSize(first) - 1);
      assert.ok(ends.has(now), `applied index ${now} is the end of a batch`);
      for (let i = applied + 1; i <= now; i++) ref.applySync([entryFor(i)]);
      assert.is(ks.revision(), ref.revision());
      assert.is(ks.compactRevision(), ref.compactRevision());
      assert.equal(ks.hash(), ref.hash(), `state at index ${now}`);
      applied = now;
      await ks.close();
    }
    assert.ok(applied > 100, `the child made progress (${applied} entries)`);
    console.log(`crash test: ${iteration} kills, ${applied} entries applied, seed ${seed}`);
  } catch (e) {
    console.error(`crash test failed: seed=${seed} iteration=${iteration} (rerun with KEELSON_SEED=${seed})`);
    throw e;
  } finally {
    await ref.close();
    fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(refDir, { recursive: true, force: true });
  }
});

test.run();
