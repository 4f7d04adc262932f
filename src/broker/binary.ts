/*
 * Open the binary a rule names, so that exactly that file runs.
 *
 * MUST:
 *  - walk the rule's path one component at a time from "/", never following
 *    a symlink, so no link anyone planted redirects it;
 *  - refuse when any directory on the way, or the file, could be changed by
 *    anyone but root (owner root, not writable by group or other): otherwise
 *    a user could swap the file between this check and the exec;
 *  - judge the open fds (fstat), never the paths, and hand back the fd of
 *    the file it judged: the launcher execs that very fd (execveat);
 *  - hash (a rule's sha256 pin) that very fd too, never the path, and never
 *    let a read of it outlive the fd: a late read on a reused fd number
 *    would read someone else's file or socket.
 */
import { createHash } from 'node:crypto';
import { fstatSync, read, type Stats } from 'node:fs';
import { AT_FDCWD, O_NOFOLLOW, O_PATH, O_RDONLY, SysError, closeQuietly, openat } from '../shared/native/libc.js';

export class BinaryError extends Error {}

export interface OpenBinary {
  fd: number;        // O_RDONLY|O_CLOEXEC, the caller closes it
  dev: number;
  ino: number;
}

const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;

const octal = (mode: number): string => '0' + (mode & 0o7777).toString(8).padStart(3, '0');

/** Why `st` at `where` is not safe to trust for an elevated exec, or undefined. */
function unsafeOwnership(st: Stats, where: string): string | undefined {
  if (st.uid !== 0) return `${where} is owned by uid ${st.uid}, not root`;
  if ((st.mode & 0o022) !== 0) {
    return `${where} is writable by group or other (mode ${octal(st.mode)}); only root may be able to change it`;
  }
  return undefined;
}

function canonicalComponents(path: string): string[] {
  const parts = path.split('/');
  if (parts[0] !== '' || path.length < 2 || parts.slice(1).some((p) => p === '' || p === '.' || p === '..')) {
    throw new BinaryError(`${path} is not a canonical absolute path`);
  }
  return parts.slice(1);
}

function openChecked(dirfd: number, name: string, flags: number, where: string): number {
  try {
    return openat(dirfd, name, flags | O_NOFOLLOW, where);
  } catch (e) {
    if (e instanceof SysError && e.code === 'ELOOP') throw new BinaryError(`${where} is a symlink; rules must name the real path`);
    if (e instanceof SysError && e.code === 'ENOENT') throw new BinaryError(`${where} does not exist`);
    if (e instanceof SysError) throw new BinaryError(`cannot open ${where}: ${e.message}`);
    throw e;
  }
}

/** Open `path` for execveat after checking every step of the way. */
export function openVerifiedBinary(path: string): OpenBinary {
  const names = canonicalComponents(path);
  let dirfd = openChecked(AT_FDCWD, '/', O_PATH, '/');
  let where = '';
  try {
    for (const [i, name] of names.entries()) {
      const st = fstatSync(dirfd);
      const problem = unsafeOwnership(st, where || '/');
      if (problem) throw new BinaryError(problem);
      where += '/' + name;
      const last = i === names.length - 1;
      const fd = openChecked(dirfd, name, last ? O_RDONLY : O_PATH, where);
      closeQuietly(dirfd);
      dirfd = fd;
      const type = fstatSync(fd).mode & S_IFMT;
      if (type === S_IFLNK) throw new BinaryError(`${where} is a symlink; rules must name the real path`);
      if (!last && type !== S_IFDIR) throw new BinaryError(`${where} is not a directory`);
    }
    const st = fstatSync(dirfd);
    if ((st.mode & S_IFMT) !== S_IFREG) throw new BinaryError(`${path} is not a regular file`);
    const problem = unsafeOwnership(st, path);
    if (problem) throw new BinaryError(problem);
    if ((st.mode & 0o111) === 0) throw new BinaryError(`${path} is not executable`);
    const fd = dirfd;
    dirfd = -1;
    return { fd, dev: st.dev, ino: st.ino };
  } finally {
    closeQuietly(dirfd);
  }
}

/**
 * Bytes hashed per turn of the event loop. Hashing runs on the loop (one
 * update of this size is well under a millisecond at SHA-256 speeds), the
 * reads run on libuv's thread pool: a 100 MB binary costs the loop a few
 * hundred short turns, never one long stall.
 */
const HASH_CHUNK = 256 * 1024;

/**
 * The sha256 (lowercase hex) of the open binary `fd`, read from offset 0
 * with pread, so the fd's own offset does not move (execveat ignores it
 * anyway).
 *
 * Why not read it synchronously: the file is root-owned, so no user can
 * make its reads slow on purpose, but a large binary (a language runtime
 * is 100 MB) would hold the loop, and every other user's trapped calls,
 * for a fraction of a second per launch; a binary on a hung network file
 * system would hold it for good. So the reads go to the thread pool, one
 * at a time, and `deadlineMs` bounds the whole.
 *
 * Resolves with the digest: the caller keeps `fd`. Rejects (BinaryError)
 * on a read error or past the deadline: then this function owns `fd` and
 * closes it once no read of it is in flight, never before.
 */
export function sha256OfBinary(fd: number, deadlineMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    const buf = Buffer.allocUnsafe(HASH_CHUNK);
    let offset = 0;
    let overdue = false;
    const timer = setTimeout(() => {
      overdue = true;
      reject(new BinaryError(`reading it to check its sha256 took longer than ${deadlineMs / 1000} s`));
    }, deadlineMs);
    const next = (): void => read(fd, buf, 0, HASH_CHUNK, offset, (err, n) => {
      if (overdue) return closeQuietly(fd); // the rejection went out at the deadline
      if (err || n === 0) clearTimeout(timer);
      if (err) {
        closeQuietly(fd);
        return reject(new BinaryError(`cannot read it to check its sha256: ${err.message}`));
      }
      if (n === 0) return resolve(hash.digest('hex'));
      hash.update(buf.subarray(0, n));
      offset += n;
      next();
    });
    next();
  });
}
