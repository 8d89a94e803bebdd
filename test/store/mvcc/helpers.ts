// Test helpers: a keyspace in a temp dir and a direct apply of one request.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Keyspace, type Event, type KeyspaceOptions } from '../../../src/store/mvcc/keyspace.ts';
import { encodeProposal, type ApplyResult, type Request, type Response } from '../../../src/store/mvcc/requests.ts';

export function tempDir(prefix = 'keelson-mvcc-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export interface Harness {
  ks: Keyspace;
  dir: string;
  events: Event[][];
  apply(req: Request): ApplyResult;
  ok<T extends Response = Response>(req: Request): T;
  close(): Promise<void>;
}

export function b(s: string): Buffer {
  return Buffer.from(s);
}

export function open(opts: Partial<KeyspaceOptions> = {}, dir = tempDir()): Harness {
  const results = new Map<number, ApplyResult>();
  const events: Event[][] = [];
  const ks = new Keyspace({
    dir,
    ...opts,
    onApplied: (id, r) => results.set(id, r),
    onEvents: (ev) => events.push(ev),
  });
  let nextId = 1;
  const h: Harness = {
    ks,
    dir,
    events,
    apply(req) {
      const id = nextId++;
      ks.applySync([{ index: ks.appliedIndex() + 1, term: 1, data: encodeProposal({ id, req }) }]);
      const r = results.get(id);
      results.delete(id);
      if (!r) throw new Error('no result');
      return r;
    },
    ok<T extends Response = Response>(req: Request): T {
      const r = h.apply(req);
      if (!r.ok) throw r.error;
      return r.response as T;
    },
    async close() {
      await ks.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  return h;
}
