// `keelson apiserver` / `keelson up` flag handling: bad usage exits 2 with a message, before anything starts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { main } from '../../src/cli/main.ts';
import { parseApiFlags } from '../../src/cli/apiserver.ts';

async function run(args: string[]): Promise<{ code: number; err: string }> {
  const orig = console.error;
  let err = '';
  console.error = (s: string) => { err += s; };
  try {
    return { code: await main(args), err };
  } finally {
    console.error = orig;
  }
}

test('unknown options, bad ports and a non-loopback insecure port are usage errors', async () => {
  let r = await run(['apiserver', '--bogus', '1']);
  assert.is(r.code, 2);
  assert.match(r.err, /unknown option --bogus/);
  r = await run(['up', '--port', 'eighty']);
  assert.is(r.code, 2);
  assert.match(r.err, /--port must be a port number/);
  r = await run(['apiserver', '--insecure-port', '8080', '--insecure-bind-address', '0.0.0.0']);
  assert.is(r.code, 2);
  assert.match(r.err, /loopback only/);
  r = await run(['up', '--store-endpoints', 'http://x:1']);
  assert.is(r.code, 2, 'up has no remote store');
});

test('flags parse', () => {
  const f = parseApiFlags(['--data-dir=/tmp/x', '--port', '0', '--store-endpoints', 'http://a:1, http://b:2', '--insecure-port', '8080'], ['data-dir', 'port', 'store-endpoints', 'insecure-port'], { port: 6443 });
  assert.is(f.dataDir, '/tmp/x');
  assert.is(f.port, 0);
  assert.equal(f.storeEndpoints, ['http://a:1', 'http://b:2']);
  assert.is(f.insecurePort, 8080);
  assert.is(parseApiFlags([], [], { port: 6443 }).port, 6443);
});

test.run();
