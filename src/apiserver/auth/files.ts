// Writing key material. A key is written to a temporary file with its final
// mode, flushed, and then hard-linked into place: the link fails if another
// process (a second API server on the same data dir) got there first, so a
// key is never half-written and never silently replaced; the loser reads the
// winner's file.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/** Writes and syncs `data` to a new temporary file beside `file`, with exactly `mode`; returns its path. */
function writeTemp(file: string, data: string | Buffer, mode: number): string {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.tmp-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
  const fd = fs.openSync(tmp, 'wx', mode);
  try {
    fs.writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  // openSync's mode is filtered by the umask; set it exactly.
  fs.chmodSync(tmp, mode);
  return tmp;
}

/** Writes `data` to `file` unless it exists. Returns false when the file was already there. */
export function writeFileOnce(file: string, data: string | Buffer, mode: number): boolean {
  const tmp = writeTemp(file, data, mode);
  try {
    fs.linkSync(tmp, file);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  } finally {
    fs.unlinkSync(tmp);
  }
}

/** Writes `data` to `file`, replacing it atomically (rename) if it exists. */
export function writeFileReplace(file: string, data: string | Buffer, mode: number): void {
  fs.renameSync(writeTemp(file, data, mode), file);
}

export function readIfExists(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}
