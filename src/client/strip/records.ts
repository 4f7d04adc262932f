/*
 * What strip removed, one JSON file per binary under STATE/stripped/: the
 * only source restore trusts to give a privilege back.
 *
 * MUST:
 *  - be written (atomic-file.ts: whole, fsync'd) before the binary is
 *    changed, so no privilege is ever removed without a record of it;
 *  - be read only from a directory and files only root can change
 *    (trusted-dir.ts; each file checked on its open fd), and parsed
 *    strictly: a record that is not exactly of this shape is refused, not
 *    guessed at;
 *  - name files from the path safely: no path the admin passes can make a
 *    record land outside the directory.
 */
import { createHash } from 'node:crypto';
import { closeSync, constants, existsSync, fstatSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { removeDurably, writeAtomic } from './atomic-file.js';
import { Refusal } from './refusal.js';
import { checkTrustedDir, ensureTrustedDir } from './trusted-dir.js';

/** A dpkg stat override: `dpkg-statoverride --add OWNER GROUP MODE PATH`. */
export interface Override {
  owner: string;
  group: string;
  /** Octal, e.g. "0755". */
  mode: string;
}

export interface StripRecord {
  version: 1;
  /** The canonical path of the binary. */
  path: string;
  /** When strip ran (ISO 8601). */
  time: string;
  /** What strip took away, exactly as it was. */
  removed: {
    /** Permission bits, octal, e.g. "4755". */
    mode: string;
    uid: number;
    gid: number;
    /** security.capability: the raw value (base64) restore writes back, and getcap's text for people. */
    capability: { raw: string; text: string } | null;
  };
  /** The mode strip left, octal. */
  strippedMode: string;
  /** sha256 of the binary when it was stripped: restore says when an upgrade replaced it since. */
  sha256: string;
  /** The rule that covers the binary; installed: strip copied it from the shipped rules (sha256 of what it wrote). */
  rule: { file: string; installed: boolean; sha256: string | null };
  /** The package owning the binary, its path as dpkg names it, the override strip set and the one it replaced. */
  dpkg: { package: string; path: string; override: Override; previousOverride: Override | null } | null;
  /** The shim: link (SHIMDIR/NAME) -> runner (stx-run); stateLink (STATE/shims/NAME) -> path. */
  shim: { link: string; runner: string; stateLink: string } | null;
  /** The dpkg hook file that strips again after maintainer scripts. */
  hook: string | null;
  /** The last time `strip --reapply` found the privilege back and removed it. */
  reapplied?: { time: string; removed: string };
}

const RECORD_BYTES_MAX = 64 * 1024;

// ---- strict validation --------------------------------------------------

type Check = (v: unknown) => boolean;
const str: Check = (v) => typeof v === 'string';
const int: Check = (v) => Number.isSafeInteger(v) && (v as number) >= 0;
const octalText: Check = (v) => typeof v === 'string' && /^[0-7]{3,4}$/.test(v);
const orNull = (c: Check): Check => (v) => v === null || c(v);
const shape = (fields: Record<string, Check>, optional: string[] = []): Check => (v) => {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!(k in fields)) return false;
  return Object.entries(fields).every(([k, c]) => (k in o ? c(o[k]) : optional.includes(k)));
};
const override = shape({ owner: str, group: str, mode: octalText });
const validRecord = shape({
  version: (v) => v === 1,
  path: (v) => typeof v === 'string' && v.startsWith('/'),
  time: str,
  removed: shape({ mode: octalText, uid: int, gid: int, capability: orNull(shape({ raw: str, text: str })) }),
  strippedMode: octalText,
  sha256: (v) => typeof v === 'string' && /^[0-9a-f]{64}$/.test(v),
  rule: shape({ file: str, installed: (v) => typeof v === 'boolean', sha256: orNull(str) }),
  dpkg: orNull(shape({ package: str, path: str, override, previousOverride: orNull(override) })),
  shim: orNull(shape({ link: str, runner: str, stateLink: str })),
  hook: orNull(str),
  reapplied: shape({ time: str, removed: str }),
}, ['reapplied']);

// ---- the store -----------------------------------------------------------

export class RecordStore {
  readonly dir: string;

  constructor(readonly stateDir: string) {
    this.dir = join(stateDir, 'stripped');
  }

  /** STATE/stripped/NAME.HASH.json: readable, and unique per path. */
  fileFor(path: string): string {
    const name = basename(path).replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 64);
    return join(this.dir, `${name}.${createHash('sha256').update(path).digest('hex').slice(0, 16)}.json`);
  }

  /** The record of path, or undefined when strip has none. */
  read(path: string): StripRecord | undefined {
    if (!existsSync(this.dir)) return undefined;
    checkTrustedDir(this.dir, 'the record directory');
    const file = this.fileFor(path);
    if (!existsSync(file)) return undefined;
    const rec = this.readFile(file);
    if (rec.path !== path) throw new Refusal(`${file} records ${rec.path}, not ${path}: the record directory was changed by hand`);
    return rec;
  }

  /** Every record, and what is wrong with the files that are not records (one bad file hides no other). */
  list(): { records: StripRecord[]; problems: string[] } {
    if (!existsSync(this.dir)) return { records: [], problems: [] };
    checkTrustedDir(this.dir, 'the record directory');
    const records: StripRecord[] = [];
    const problems: string[] = [];
    for (const name of readdirSync(this.dir).filter((n) => n.endsWith('.json') && !n.startsWith('.')).sort()) {
      try {
        records.push(this.readFile(join(this.dir, name)));
      } catch (e) {
        if (!(e instanceof Refusal)) throw e;
        problems.push(e.message);
      }
    }
    return { records, problems };
  }

  write(rec: StripRecord): string {
    ensureTrustedDir(this.dir, 'the record directory');
    const file = this.fileFor(rec.path);
    writeAtomic(file, `${JSON.stringify(rec, null, 2)}\n`, 0o644);
    return file;
  }

  remove(path: string): void {
    removeDurably(this.fileFor(path));
  }

  private readFile(file: string): StripRecord {
    const fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    let text: string;
    try {
      const st = fstatSync(fd);
      if (!st.isFile()) throw new Refusal(`${file} is not a regular file; records are files strip writes`);
      if (st.uid !== 0 || (st.mode & 0o022)) {
        throw new Refusal(`${file} is not safe (owner uid ${st.uid}, mode ${(st.mode & 0o7777).toString(8)}): records must be root's and not writable by group or other`);
      }
      if (st.size > RECORD_BYTES_MAX) throw new Refusal(`${file} is ${st.size} bytes; a record is well under ${RECORD_BYTES_MAX}`);
      text = readFileSync(fd, 'utf8');
    } finally {
      closeSync(fd);
    }
    let rec: unknown;
    try {
      rec = JSON.parse(text);
    } catch (e) {
      throw new Refusal(`${file} is not valid JSON (${(e as Error).message}); it was not written by strip, or was changed by hand`);
    }
    if (!validRecord(rec)) throw new Refusal(`${file} is not a strip record of version 1 (a field is missing, extra or of the wrong type)`);
    return rec as StripRecord;
  }
}
