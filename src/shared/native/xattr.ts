/*
 * Extended attributes through libc (Node has no xattr API): what `scan`
 * reads and what `strip`/`restore` take off and put back, byte for byte.
 *
 * MUST: the f* calls act on an fd the caller opened (and checked) once,
 * so a rename between the check and the change cannot redirect the change.
 */
import koffi from 'koffi';
import { SysError } from './libc.js';

const libc = koffi.load('libc.so.6');

const f = {
  lgetxattr: libc.func('intptr_t lgetxattr(const char *path, const char *name, void *value, size_t size)'),
  fgetxattr: libc.func('intptr_t fgetxattr(int fd, const char *name, void *value, size_t size)'),
  fsetxattr: libc.func('int fsetxattr(int fd, const char *name, const void *value, size_t size, int flags)'),
  fremovexattr: libc.func('int fremovexattr(int fd, const char *name)'),
};

const ENODATA = 61;
/** Large enough for any security.capability value (24 bytes today). */
const MAX_VALUE = 4096;

/*
 * One buffer for every read (the calls are synchronous): scan reads the
 * attribute of every file of a tree, and a fresh zeroed 4 KiB each time
 * cost a third of that. Over 64 bytes, so koffi's address of it is stable.
 */
const scratch = Buffer.alloc(MAX_VALUE);

function read(call: string, get: (buf: Buffer) => number | bigint): Buffer | null {
  const n = Number(get(scratch));
  if (n >= 0) return Buffer.from(scratch.subarray(0, n));
  const errno = koffi.errno();
  if (errno === ENODATA) return null;
  throw new SysError(call, errno);
}

/** The attribute of the file at path itself (a symlink is not followed); null when it has none. */
export function lgetxattr(path: string, name: string): Buffer | null {
  return read(`lgetxattr(${path}, ${name})`, (buf) => f.lgetxattr(path, name, buf, buf.length));
}

export function fgetxattr(fd: number, name: string, what = `fd ${fd}`): Buffer | null {
  return read(`fgetxattr(${what}, ${name})`, (buf) => f.fgetxattr(fd, name, buf, buf.length));
}

export function fsetxattr(fd: number, name: string, value: Buffer, what = `fd ${fd}`): void {
  if (f.fsetxattr(fd, name, value, value.length, 0) < 0) throw new SysError(`fsetxattr(${what}, ${name})`, koffi.errno());
}

/** Remove the attribute; false when there was none. */
export function fremovexattr(fd: number, name: string, what = `fd ${fd}`): boolean {
  if (f.fremovexattr(fd, name) === 0) return true;
  const errno = koffi.errno();
  if (errno === ENODATA) return false;
  throw new SysError(`fremovexattr(${what}, ${name})`, errno);
}
