/*
 * The binary strip and restore act on: PATH resolved to its canonical path,
 * checked as the broker checks a rule's binary, and opened once.
 *
 * MUST:
 *  - act on one fd, opened after the checks, never on the path again, so a
 *    rename between the check and the change cannot redirect the change;
 *  - refuse a binary that anyone but root could change (the file, or any
 *    directory above it): stripping it protects nothing, restoring a
 *    setuid bit to it would hand that user root, and the broker refuses to
 *    run it anyway (binary.ts, the very checks used here);
 *  - never open anything but a regular file for reading (opening a FIFO
 *    blocks, opening a device can act on it).
 */
import { createHash } from 'node:crypto';
import { fstatSync, lstatSync, readSync, realpathSync } from 'node:fs';
import { resolve } from 'node:path';
import { BinaryError, openVerifiedBinary } from '../../broker/binary.js';
import { Refusal } from './refusal.js';

export interface Target {
  /** Canonical absolute path: what rules name and records key on. */
  path: string;
  /** O_RDONLY, close-on-exec; the caller closes it. */
  fd: number;
}

function kind(path: string): string {
  const st = lstatSync(path);
  if (st.isFile()) return 'a regular file';
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a fifo';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  return 'not a regular file';
}

/**
 * PATH as the admin wrote it -> the canonical path, and a note when a
 * symbolic link led there (the change applies to the file, under every
 * name it has).
 */
export function canonicalTarget(arg: string): { path: string; note?: string } {
  const abs = resolve(arg);
  let path: string;
  try {
    path = realpathSync(abs);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Refusal(code === 'ENOENT' ? `${arg} does not exist` : `${arg} cannot be resolved (${code ?? String(e)})`);
  }
  const what = kind(path);
  if (what !== 'a regular file') throw new Refusal(`${path} is ${what}; strip and restore take a program binary (a regular file)`);
  return { path, note: path === abs ? undefined : `${arg} is ${path} (through a symbolic link): acting on ${path}` };
}

/** Opens path after checking every step from "/" as the broker does; Refusal says what is unsafe and why it matters. */
export function openTarget(path: string): Target {
  let fd: number;
  try {
    fd = openVerifiedBinary(path).fd;
  } catch (e) {
    if (!(e instanceof BinaryError)) throw e;
    throw new Refusal(`${e.message}: someone other than root could change ${path}, so removing its privilege protects nothing `
      + 'and putting it back would hand them root; the broker refuses to run such a binary too');
  }
  if (!fstatSync(fd).isFile()) throw new Refusal(`${path} is not a regular file`);
  return { path, fd };
}

/** sha256 (hex) of the open binary, read with pread from offset 0. */
export function sha256OfTarget(fd: number): string {
  const hash = createHash('sha256');
  const buf = Buffer.allocUnsafe(1 << 20);
  for (let n, at = 0; (n = readSync(fd, buf, 0, buf.length, at)) > 0; at += n) hash.update(buf.subarray(0, n));
  return hash.digest('hex');
}
