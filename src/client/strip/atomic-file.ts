/*
 * Files strip writes (records, rule files, the dpkg hook): whole or not at
 * all, on disk before the change they announce.
 *
 * MUST: write a temporary file in the same directory, fsync it, then
 * rename (or link, when an existing file must not be replaced) it into
 * place and fsync the directory, so a crash leaves the old file or the new
 * one, never a torn one, and a record is durable before the file it
 * describes is changed.
 */
import { closeSync, constants, fchmodSync, fsyncSync, linkSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

function fsyncDir(dir: string): void {
  const fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Writes data to path with mode (root's, as the caller is). exclusive: fail
 * with EEXIST instead of replacing an existing file.
 */
export function writeAtomic(path: string, data: string | Buffer, mode: number, exclusive = false): void {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    const buf = typeof data === 'string' ? Buffer.from(data) : data;
    for (let off = 0; off < buf.length;) off += writeSync(fd, buf, off, buf.length - off);
    fchmodSync(fd, mode);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  closeSync(fd);
  try {
    if (exclusive) linkSync(tmp, path);
    else renameSync(tmp, path);
  } finally {
    rmSync(tmp, { force: true });
  }
  fsyncDir(dirname(path));
}

/** Removes path (if there) and makes the removal durable. */
export function removeDurably(path: string): void {
  rmSync(path, { force: true });
  fsyncDir(dirname(path));
}
