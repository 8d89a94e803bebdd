import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Packr } from 'msgpackr';
import { isKeelsonError } from '../../../src/store/errors.ts';
import { decodeProposal, encodeProposal, type Proposal } from '../../../src/store/mvcc/requests.ts';

const b = (s: string) => Buffer.from(s);
// The generic codec, to check that the fixed put layout decodes to exactly
// what msgpack would have produced.
const packr = new Packr({ useRecords: false, mapsAsObjects: true, moreTypes: false });

const puts: Proposal[] = [
  { id: 1, req: { op: 'put', key: b('a'), value: b('v') } },
  { id: 7, from: 12345678901234, req: { op: 'put', key: b('k\u0000z'), value: Buffer.alloc(0), lease: 99 } },
  { id: 2 ** 52 + 1, from: 3, req: { op: 'put', key: b('x'), value: Buffer.alloc(300, 9), prevKv: true, ignoreValue: false, ignoreLease: true } },
  { id: -1.5, req: { op: 'put', key: Buffer.alloc(0), value: b('v'), lease: 0.25, prevKv: false } },
];

test('plain puts use the fixed layout and decode to what msgpack would give', () => {
  for (const p of puts) {
    const bytes = encodeProposal(p);
    assert.is(bytes[0], 0xc2);
    const got = decodeProposal(bytes);
    const want = packr.unpack(packr.pack(p)) as Proposal;
    assert.equal(got, want);
    assert.equal(Object.keys(got.req).sort(), Object.keys(want.req).sort());
    assert.is('from' in got, 'from' in want);
  }
});

test('anything but a plain put goes through msgpack', () => {
  const others: unknown[] = [
    { id: 1, req: { op: 'put', key: b('a'), value: b('v'), extra: 1 } },
    { id: 1, req: { op: 'put', key: 'a', value: b('v') } },
    { id: 1, req: { op: 'put', key: b('a'), value: b('v'), lease: '1' } },
    { id: 1, req: { op: 'put', key: b('a'), value: b('v'), prevKv: 1 } },
    { id: 1, req: { op: 'put', key: b('a'), value: b('v'), lease: undefined } },
    { id: 1, from: 'm', req: { op: 'put', key: b('a'), value: b('v') } },
    { id: 1, other: 2, req: { op: 'put', key: b('a'), value: b('v') } },
    { id: 1, req: { op: 'deleteRange', key: b('a') } },
  ];
  for (const p of others) {
    const bytes = encodeProposal(p as Proposal);
    assert.is.not(bytes[0], 0xc2);
    assert.equal(decodeProposal(bytes), packr.unpack(bytes));
  }
});

test('a truncated or inconsistent fixed put is a bad request', () => {
  const good = encodeProposal(puts[2]);
  for (const bad of [Buffer.from([0xc2]), Buffer.from([0xc2, 0x50]), good.subarray(0, 20), Buffer.from([0xc2, 0x51, ...good.subarray(2)])]) {
    try {
      decodeProposal(bad);
      assert.unreachable('decoded garbage');
    } catch (e) {
      assert.ok(isKeelsonError(e) && e.code === 'bad request', String(e));
    }
  }
  const longKey = Buffer.from(good);
  longKey.writeUInt32BE(good.length, 27);
  assert.throws(() => decodeProposal(longKey), (e: unknown) => isKeelsonError(e) && e.code === 'bad request');
});

test.run();
