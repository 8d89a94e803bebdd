import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AutoCompactor } from '../../../src/store/mvcc/autocompact.ts';

test('revision mode keeps the last N revisions and compacts in steps of N', () => {
  const a = new AutoCompactor({ mode: 'revision', retain: 100 });
  assert.is(a.next(0, 150, 0), 0);
  assert.is(a.next(0, 200, 0), 100);
  assert.is(a.next(0, 250, 100), 0);
  assert.is(a.next(0, 300, 100), 200);
});

test('periodic mode keeps everything written within the retention window', () => {
  const a = new AutoCompactor({ mode: 'periodic', retainMs: 1000 });
  let compact = 0;
  const revAt = (t: number) => Math.floor(t / 10); // one revision every 10 ms
  for (let t = 0; t <= 5000; t += 50) {
    const target = a.next(t, revAt(t), compact);
    if (target > 0) {
      // Nothing newer than the window is compacted away.
      assert.ok(target <= revAt(t - 1000), `at ${t}: ${target}`);
      compact = target;
    }
  }
  assert.ok(compact >= revAt(5000 - 1200), `kept up: ${compact}`);
});

test.run();
