// The static token file: CSV lines `token,user,uid[,"group1,group2"]`, the
// format kube-apiserver reads with --token-file. Tokens are kept as SHA-256
// digests so that the lookup does not compare secret strings character by
// character, and the file's text is not kept in memory.
import crypto from 'node:crypto';
import fs from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import { errors } from '../errors.ts';
import { bearerToken } from './bearer.ts';
import type { Authenticator, UserInfo } from './types.ts';

/** A token file is operator-written configuration; anything larger is a mistake. */
export const tokenFileBytesMax = 4 * 1024 * 1024;

export class TokenFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TokenFileError';
  }
}

/** Splits one CSV line (RFC 4180 quoting: "a,b" and "" for a quote). */
export function parseCsvLine(line: string, where: string): string[] {
  const out: string[] = [];
  let i = 0;
  for (;;) {
    let field = '';
    if (line[i] === '"') {
      i++;
      for (;;) {
        if (i >= line.length) throw new TokenFileError(`${where}: unterminated quoted field`);
        const c = line[i];
        if (c === '"') {
          if (line[i + 1] === '"') { field += '"'; i += 2; continue; }
          i++;
          break;
        }
        field += c;
        i++;
      }
      if (i < line.length && line[i] !== ',') throw new TokenFileError(`${where}: unexpected text after a quoted field`);
    } else {
      const comma = line.indexOf(',', i);
      const end = comma < 0 ? line.length : comma;
      field = line.slice(i, end);
      if (field.includes('"')) throw new TokenFileError(`${where}: bare quote in an unquoted field`);
      i = end;
    }
    out.push(field);
    if (i >= line.length) return out;
    i++; // the comma
  }
}

// crypto.hash (Node 20.12+) is the one-shot form, about a third of the cost
// of a Hash object; this runs on every request.
const digest: (token: string) => string = typeof crypto.hash === 'function'
  ? (token) => crypto.hash('sha256', token, 'hex')
  : (token) => crypto.createHash('sha256').update(token).digest('hex');

export class TokenFileAuthenticator implements Authenticator {
  private readonly users = new Map<string, UserInfo>();

  /** `text` is the content of the token file; `name` is used in error messages. */
  constructor(text: string, name = 'token file') {
    const lines = text.split(/\r?\n/);
    for (let n = 0; n < lines.length; n++) {
      const line = lines[n]!;
      if (line.trim() === '') continue;
      const where = `${name} line ${n + 1}`;
      const record = parseCsvLine(line, where).map((f) => f.trim());
      if (record.length < 3) throw new TokenFileError(`${where}: needs at least 3 columns (token, user name, user uid), found ${record.length}`);
      const [token, username, uid] = record as [string, string, string];
      if (token === '') throw new TokenFileError(`${where}: empty token`);
      if (username === '') throw new TokenFileError(`${where}: empty user name`);
      const groups = record.length >= 4 && record[3] !== '' ? record[3]!.split(',').map((g) => g.trim()).filter((g) => g !== '') : [];
      const key = digest(token);
      if (this.users.has(key)) throw new TokenFileError(`${where}: duplicate token`);
      this.users.set(key, { username, uid: uid || undefined, groups });
    }
  }

  static fromFile(file: string): TokenFileAuthenticator {
    let st: fs.Stats;
    try {
      st = fs.statSync(file);
    } catch (e) {
      throw new TokenFileError(`cannot read token file ${file}: ${(e as Error).message}`);
    }
    if (!st.isFile()) throw new TokenFileError(`token file ${file} is not a regular file`);
    if (st.size > tokenFileBytesMax) throw new TokenFileError(`token file ${file} is larger than ${tokenFileBytesMax} bytes`);
    return new TokenFileAuthenticator(fs.readFileSync(file, 'utf8'), `token file ${file}`);
  }

  get size(): number {
    return this.users.size;
  }

  async authenticate(headers: IncomingHttpHeaders): Promise<UserInfo | null> {
    const token = bearerToken(headers);
    if (token === undefined) return null;
    const user = this.users.get(digest(token));
    if (!user) throw errors.unauthorized();
    return { username: user.username, uid: user.uid, groups: [...user.groups] };
  }
}
