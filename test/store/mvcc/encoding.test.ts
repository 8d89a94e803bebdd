import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readU64, writeU64 } from '../../../src/store/mvcc/encoding.ts';

test('u64 fields are big-endian, exact up to 2^53 - 1, and touch only their 8 bytes', () => {
  for (const n of [0, 1, 255, 256, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 1, 2 ** 40 + 12345, Number.MAX_SAFE_INTEGER - 5, Number.MAX_SAFE_INTEGER]) {
    const buf = Buffer.alloc(16, 0xaa);
    writeU64(buf, 3, n);
    const want = Buffer.alloc(8);
    want.writeBigUInt64BE(BigInt(n));
    assert.equal(buf.subarray(3, 11), want, String(n));
    assert.is(buf[2], 0xaa);
    assert.is(buf[11], 0xaa);
    assert.is(readU64(buf, 3), n);
  }
});

test.run();
