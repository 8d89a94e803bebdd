import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { main } from '../../src/cli/main.ts';

test('unknown command exits 2', async () => {
  const err = console.error;
  console.error = () => {};
  try {
    assert.is(await main(['no-such-command']), 2);
  } finally {
    console.error = err;
  }
});

test('--help exits 0', async () => {
  const log = console.log;
  let out = '';
  console.log = (s: string) => { out += s; };
  try {
    assert.is(await main(['--help']), 0);
    assert.ok(out.includes('Usage: keelson'));
  } finally {
    console.log = log;
  }
});

test.run();
