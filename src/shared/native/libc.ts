/*
 * Typed koffi bindings to the libc calls Node does not offer: fd passing,
 * peer credentials, pidfds, ioctl, setns, setfsuid, poll.
 *
 * MUST:
 *  - turn every -1 into a SysError naming the call and the errno, never
 *    return a failure as a number the caller could mistake for an fd;
 *  - receive every fd close-on-exec (MSG_CMSG_CLOEXEC), so no fd a client
 *    hands over can leak into another session's program;
 *  - keep pointers stable: all structures live in one malloc'd arena
 *    (small Buffers live on the V8 heap and may move under a raw address).
 */
import koffi from 'koffi';
import { constants as osConstants } from 'node:os';
import { close as fsClose, writeSync } from 'node:fs';

const libc = koffi.load('libc.so.6');

/** errno name for a number, e.g. 1 -> 'EPERM'. */
const errnoNames = new Map<number, string>(
  Object.entries(osConstants.errno).map(([name, n]) => [n as number, name]),
);

export function errnoName(errno: number): string {
  return errnoNames.get(errno) ?? `errno ${errno}`;
}

export function errnoNumber(name: string): number | undefined {
  return (osConstants.errno as Record<string, number>)[name];
}

/** A failed system call: `call` says which, `code` the errno name. */
export class SysError extends Error {
  readonly code: string;
  constructor(readonly call: string, readonly errno: number) {
    super(`${call}: ${strerror(errno)}`);
    this.code = errnoName(errno);
  }
}

const strerrorRaw = libc.func('const char *strerror(int errnum)');
export function strerror(errno: number): string {
  return strerrorRaw(errno) as string;
}

const EINTR_ERRNO = 4;

function check(call: string, rc: number | bigint): number {
  const n = Number(rc);
  if (n < 0) throw new SysError(call, koffi.errno());
  return n;
}

/* ---- the arena: stable memory for structs, carved per use ---- */

const ARENA_SIZE = 512 * 1024;
const arenaPtr = koffi.alloc('uint8', ARENA_SIZE) as unknown as bigint;
const arena = Buffer.from(koffi.view(arenaPtr, ARENA_SIZE));

/** Offsets in the arena; calls are synchronous, so regions are reused. */
const A = {
  msghdr: 0,          // 56 bytes
  iov: 64,            // 16 bytes
  small: 128,         // 256 bytes of scratch structs (ucred, sockaddr, int, ...)
  control: 512,       // cmsg space for up to 253 fds
  io: 4096,           // message payload, up to MAX_IO
} as const;
export const MAX_IO = ARENA_SIZE - A.io;
const MAX_FDS = 253; // SCM_MAX_FD

const ptr = (off: number): bigint => arenaPtr + BigInt(off);

/* ---- raw functions ---- */

const f = {
  socket: libc.func('int socket(int domain, int type, int protocol)'),
  socketpair: libc.func('int socketpair(int domain, int type, int protocol, void *sv)'),
  bind: libc.func('int bind(int fd, void *addr, uint32_t len)'),
  connect: libc.func('int connect(int fd, void *addr, uint32_t len)'),
  listen: libc.func('int listen(int fd, int backlog)'),
  accept4: libc.func('int accept4(int fd, void *addr, void *len, int flags)'),
  close: libc.func('int close(int fd)'),
  sendmsg: libc.func('intptr_t sendmsg(int fd, void *msg, int flags)'),
  recvmsg: libc.func('intptr_t recvmsg(int fd, void *msg, int flags)'),
  getsockopt: libc.func('int getsockopt(int fd, int level, int name, void *val, void *len)'),
  setsockopt: libc.func('int setsockopt(int fd, int level, int name, void *val, uint32_t len)'),
  ioctlPtr: libc.func('ioctl', 'int', ['int', 'unsigned long', 'void *']),
  ioctlVal: libc.func('ioctl', 'int', ['int', 'unsigned long', 'unsigned long']),
  setns: libc.func('int setns(int fd, int nstype)'),
  poll: libc.func('int poll(void *fds, unsigned long nfds, int timeout)'),
  fcntl: libc.func('fcntl', 'int', ['int', 'int', 'int']),
  syscall3: libc.func('syscall', 'long', ['long', 'long', 'long', 'long']),
  syscall4: libc.func('syscall', 'long', ['long', 'long', 'long', 'long', 'long']),
  syscall5: libc.func('syscall', 'long', ['long', 'long', 'long', 'long', 'long', 'long']),
  prlimit: libc.func('int prlimit(int pid, int resource, void *newlim, void *oldlim)'),
  openat: libc.func('int openat(int dirfd, const char *path, int flags, uint32_t mode)'),
  memfd_create: libc.func('int memfd_create(const char *name, unsigned int flags)'),
  getpwuid_r: libc.func('int getpwuid_r(uint32_t uid, void *pwd, void *buf, size_t len, void *result)'),
  getpwnam_r: libc.func('int getpwnam_r(const char *name, void *pwd, void *buf, size_t len, void *result)'),
  getgrouplist: libc.func('int getgrouplist(const char *user, uint32_t group, void *groups, void *ngroups)'),
  getgrnam_r: libc.func('int getgrnam_r(const char *name, void *grp, void *buf, size_t len, void *result)'),
  getgrgid_r: libc.func('int getgrgid_r(uint32_t gid, void *grp, void *buf, size_t len, void *result)'),
  shutdown: libc.func('int shutdown(int fd, int how)'),
  statx: libc.func('int statx(int dirfd, const char *path, int flags, unsigned int mask, void *buf)'),
  waitid: libc.func('int waitid(int idtype, int id, void *infop, int options)'),
};

const NR = {
  setfsuid: 122,
  process_vm_readv: 310,
  pidfd_send_signal: 424,
  pidfd_open: 434,
  pidfd_getfd: 438,
  ioprio_get: 252,
} as const;

/* ---- constants ---- */

export const AF_UNIX = 1;
export const SOCK_STREAM = 1;
export const SOCK_DGRAM = 2;
export const SOCK_SEQPACKET = 5;
export const SOCK_NONBLOCK = 0o4000;
export const SOCK_CLOEXEC = 0o2000000;
export const SOL_SOCKET = 1;
const SO_PEERCRED = 17;
const SO_PEERGROUPS = 59;
const SO_PEERPIDFD = 77;
const SCM_RIGHTS = 1;
export const MSG_DONTWAIT = 0x40;
export const MSG_NOSIGNAL = 0x4000;
const MSG_TRUNC = 0x20;
const MSG_CTRUNC = 0x8;
const MSG_CMSG_CLOEXEC = 0x40000000;
export const CLONE_NEWNET = 0x40000000;
export const PIDFD_THREAD = 0o200; // O_EXCL: pidfd for a thread id (6.9+)
export const POLLIN = 0x1;
export const POLLHUP = 0x10;
/** The peer shut down its sending side (asked for, unlike POLLHUP). */
export const POLLRDHUP = 0x2000;
export const POLLERR = 0x8;
export const POLLNVAL = 0x20;

/* ---- sockets ---- */

export function socket(domain: number, type: number, protocol: number): number {
  return check('socket', f.socket(domain, type, protocol));
}

export function socketpair(domain: number, type: number): [number, number] {
  check('socketpair', f.socketpair(domain, type, 0, ptr(A.small)));
  return [arena.readInt32LE(A.small), arena.readInt32LE(A.small + 4)];
}

/** struct sockaddr_un for a filesystem path, in the arena; returns its length. */
function sockaddrUn(path: string): number {
  const bytes = Buffer.from(path);
  if (bytes.length === 0 || bytes.length > 107 || bytes.includes(0)) {
    throw new Error(`socket path ${JSON.stringify(path)} is not 1-107 bytes without NUL`);
  }
  arena.fill(0, A.small, A.small + 110);
  arena.writeUInt16LE(AF_UNIX, A.small);
  bytes.copy(arena, A.small + 2);
  return 2 + bytes.length + 1;
}

/** bind() with an opaque sockaddr; returns 0 or the errno (a result to hand back, not an exception). */
export function bindRaw(fd: number, sockaddr: Buffer): number {
  if (sockaddr.length > 128) throw new Error(`sockaddr of ${sockaddr.length} bytes is too long`);
  sockaddr.copy(arena, A.small);
  const rc = f.bind(fd, ptr(A.small), sockaddr.length);
  return rc < 0 ? koffi.errno() : 0;
}

export function bindUnix(fd: number, path: string): void {
  const len = sockaddrUn(path);
  check(`bind(${path})`, f.bind(fd, ptr(A.small), len));
}

export function connectUnix(fd: number, path: string): void {
  const len = sockaddrUn(path);
  check(`connect(${path})`, f.connect(fd, ptr(A.small), len));
}

/** connect() to `name` in the abstract namespace (written "@name" by systemd's NOTIFY_SOCKET). */
export function connectUnixAbstract(fd: number, name: string): void {
  const bytes = Buffer.from(name);
  if (bytes.length === 0 || bytes.length > 107) throw new Error(`abstract socket name ${JSON.stringify(name)} is not 1-107 bytes`);
  arena.fill(0, A.small, A.small + 110);
  arena.writeUInt16LE(AF_UNIX, A.small);
  bytes.copy(arena, A.small + 3);
  check(`connect(@${name})`, f.connect(fd, ptr(A.small), 3 + bytes.length));
}

export function listen(fd: number, backlog: number): void {
  check('listen', f.listen(fd, backlog));
}

/** accept4 on a non-blocking socket; null when nothing is waiting. */
export function accept(fd: number): number | null {
  const rc = f.accept4(fd, null, null, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (rc < 0) {
    const e = koffi.errno();
    if (e === osConstants.errno.EAGAIN || e === osConstants.errno.ECONNABORTED) return null;
    throw new SysError('accept4', e);
  }
  return rc;
}

export function close(fd: number): void {
  check(`close(${fd})`, f.close(fd));
}

/**
 * close() on the thread pool, for fds a user controls: the last close of a
 * TCP socket with SO_LINGER and unsent data blocks for the linger time, and
 * the event loop must never wait on a user's object.
 */
export function closeOffLoop(fd: number | undefined | null): void {
  if (fd !== undefined && fd !== null && fd >= 0) fsClose(fd, () => {});
}

/** closeOffLoop, then `done` on the loop once the close has returned (however long it blocked). */
export function closeOffLoopThen(fd: number, done: () => void): void {
  if (fd < 0) return done();
  fsClose(fd, () => done());
}

export const SHUT_RD = 0;

/** shutdown(2): for SHUT_RD on a unix socket, the peer's later sends fail with EPIPE. */
export function shutdown(fd: number, how: number): void {
  check(`shutdown(${fd})`, f.shutdown(fd, how));
}

/** close() for cleanup paths: errors are of no interest there. */
export function closeQuietly(fd: number | undefined | null): void {
  if (fd !== undefined && fd !== null && fd >= 0) f.close(fd);
}

export interface Received {
  data: Buffer;        // a copy, safe to keep
  fds: number[];       // received close-on-exec
  truncated: boolean;  // the datagram was longer than maxLen
  ctruncated: boolean; // fds were dropped for lack of room
}

/** One sendmsg with optional SCM_RIGHTS. Returns bytes sent. */
export function sendmsg(fd: number, data: Buffer, fds: number[] = [], flags = MSG_NOSIGNAL): number {
  if (data.length > MAX_IO) throw new Error(`message of ${data.length} bytes exceeds ${MAX_IO}`);
  if (fds.length > MAX_FDS) throw new Error(`cannot pass ${fds.length} fds`);
  data.copy(arena, A.io);
  arena.fill(0, A.msghdr, A.msghdr + 56);
  arena.writeBigUInt64LE(ptr(A.io), A.iov);
  arena.writeBigUInt64LE(BigInt(data.length), A.iov + 8);
  arena.writeBigUInt64LE(ptr(A.iov), A.msghdr + 16);
  arena.writeBigUInt64LE(1n, A.msghdr + 24);
  if (fds.length > 0) {
    const dataLen = 4 * fds.length;
    const space = 16 + ((dataLen + 7) & ~7);
    arena.fill(0, A.control, A.control + space);
    arena.writeBigUInt64LE(BigInt(16 + dataLen), A.control);
    arena.writeInt32LE(SOL_SOCKET, A.control + 8);
    arena.writeInt32LE(SCM_RIGHTS, A.control + 12);
    fds.forEach((n, i) => arena.writeInt32LE(n, A.control + 16 + 4 * i));
    arena.writeBigUInt64LE(ptr(A.control), A.msghdr + 32);
    arena.writeBigUInt64LE(BigInt(space), A.msghdr + 40);
  }
  return check('sendmsg', f.sendmsg(fd, ptr(A.msghdr), flags));
}

/**
 * One recvmsg, non-blocking. null when nothing is waiting; a zero-length
 * Received with no fds means the peer closed (SEQPACKET end of file).
 */
export function recvmsg(fd: number, maxLen: number, maxFds: number): Received | null {
  if (maxLen > MAX_IO) throw new Error(`recvmsg buffer of ${maxLen} exceeds ${MAX_IO}`);
  const controlSpace = 16 + ((4 * Math.max(1, Math.min(maxFds, MAX_FDS)) + 7) & ~7);
  arena.fill(0, A.msghdr, A.msghdr + 56);
  arena.writeBigUInt64LE(ptr(A.io), A.iov);
  arena.writeBigUInt64LE(BigInt(maxLen), A.iov + 8);
  arena.writeBigUInt64LE(ptr(A.iov), A.msghdr + 16);
  arena.writeBigUInt64LE(1n, A.msghdr + 24);
  arena.fill(0, A.control, A.control + controlSpace);
  arena.writeBigUInt64LE(ptr(A.control), A.msghdr + 32);
  arena.writeBigUInt64LE(BigInt(controlSpace), A.msghdr + 40);
  const rc = f.recvmsg(fd, ptr(A.msghdr), MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  if (rc < 0) {
    const e = koffi.errno();
    if (e === osConstants.errno.EAGAIN) return null;
    throw new SysError('recvmsg', e);
  }
  const n = Number(rc);
  const flags = arena.readInt32LE(A.msghdr + 48);
  const fds = parseRights(Number(arena.readBigUInt64LE(A.msghdr + 40)));
  return {
    data: Buffer.from(arena.subarray(A.io, A.io + Math.min(n, maxLen))),
    fds,
    truncated: (flags & MSG_TRUNC) !== 0,
    ctruncated: (flags & MSG_CTRUNC) !== 0,
  };
}

/** Every fd of every SCM_RIGHTS cmsg; the caller owns (and must close) them all. */
function parseRights(controlLen: number): number[] {
  const fds: number[] = [];
  let off = 0;
  while (off + 16 <= controlLen) {
    const len = Number(arena.readBigUInt64LE(A.control + off));
    if (len < 16 || off + len > controlLen) break;
    const level = arena.readInt32LE(A.control + off + 8);
    const type = arena.readInt32LE(A.control + off + 12);
    if (level === SOL_SOCKET && type === SCM_RIGHTS) {
      for (let i = 16; i + 4 <= len; i += 4) fds.push(arena.readInt32LE(A.control + off + i));
    }
    off += (len + 7) & ~7;
  }
  return fds;
}

/* ---- peer identity, from the kernel ---- */

export interface PeerCred { pid: number; uid: number; gid: number }

export function peerCred(fd: number): PeerCred {
  arena.writeUInt32LE(12, A.small + 64);
  check('getsockopt(SO_PEERCRED)', f.getsockopt(fd, SOL_SOCKET, SO_PEERCRED, ptr(A.small), ptr(A.small + 64)));
  return { pid: arena.readInt32LE(A.small), uid: arena.readUInt32LE(A.small + 4), gid: arena.readUInt32LE(A.small + 8) };
}

/** The peer's supplementary groups at connect time (SO_PEERGROUPS). */
export function peerGroups(fd: number): number[] {
  const room = 65536 * 4;
  const off = A.io;
  arena.writeUInt32LE(room, A.small + 64);
  check('getsockopt(SO_PEERGROUPS)', f.getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, ptr(off), ptr(A.small + 64)));
  const len = arena.readUInt32LE(A.small + 64);
  const groups: number[] = [];
  for (let i = 0; i + 4 <= len; i += 4) groups.push(arena.readUInt32LE(off + i));
  return groups;
}

/** A pidfd for the peer, taken by the kernel at connect time (SO_PEERPIDFD). */
export function peerPidfd(fd: number): number {
  arena.writeUInt32LE(4, A.small + 64);
  check('getsockopt(SO_PEERPIDFD)', f.getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD, ptr(A.small), ptr(A.small + 64)));
  return arena.readInt32LE(A.small);
}

const SO_TYPE = 3;
const SO_PROTOCOL = 38;
const SO_DOMAIN = 39;

/** What kind of socket `fd` is, or null when it is not a socket. */
export function socketKind(fd: number): { domain: number; type: number; protocol: number } | null {
  try {
    return {
      domain: getsockoptInt(fd, SOL_SOCKET, SO_DOMAIN, 'SO_DOMAIN'),
      type: getsockoptInt(fd, SOL_SOCKET, SO_TYPE, 'SO_TYPE'),
      protocol: getsockoptInt(fd, SOL_SOCKET, SO_PROTOCOL, 'SO_PROTOCOL'),
    };
  } catch (e) {
    if (e instanceof SysError && e.code === 'ENOTSOCK') return null;
    throw e;
  }
}

export function getsockoptInt(fd: number, level: number, name: number, what: string): number {
  arena.writeUInt32LE(4, A.small + 64);
  check(`getsockopt(${what})`, f.getsockopt(fd, level, name, ptr(A.small), ptr(A.small + 64)));
  return arena.readInt32LE(A.small);
}

/** setsockopt with an opaque value; returns 0 or the errno (a result to hand back, not an exception). */
export function setsockoptRaw(fd: number, level: number, name: number, value: Buffer): number {
  if (value.length > 256) throw new Error(`setsockopt value of ${value.length} bytes is too long`);
  value.copy(arena, A.small);
  const rc = f.setsockopt(fd, level, name, ptr(A.small), value.length);
  return rc < 0 ? koffi.errno() : 0;
}

/* ---- pidfds and processes ---- */

export function pidfdOpen(pid: number, flags = 0): number {
  return check(`pidfd_open(${pid})`, f.syscall3(NR.pidfd_open, pid, flags, 0));
}

/** A duplicate of `targetFd` of the process behind `pidfd`, close-on-exec. */
export function pidfdGetfd(pidfd: number, targetFd: number): number {
  return check(`pidfd_getfd(${targetFd})`, f.syscall4(NR.pidfd_getfd, pidfd, targetFd, 0, 0));
}

export function pidfdSendSignal(pidfd: number, signal: number): void {
  check(`pidfd_send_signal(${signal})`, f.syscall5(NR.pidfd_send_signal, pidfd, signal, 0, 0, 0));
}

/**
 * Read `len` bytes at `address` of process `pid` (process_vm_readv).
 * Returns the bytes read, possibly fewer at the end of a mapping.
 */
export function readProcessMemory(pid: number, address: bigint, len: number): Buffer {
  if (len > 65536) throw new Error(`process_vm_readv of ${len} bytes is too long`);
  const local = A.small;        // struct iovec local
  const remote = A.small + 16;  // struct iovec remote
  arena.writeBigUInt64LE(ptr(A.io), local);
  arena.writeBigUInt64LE(BigInt(len), local + 8);
  arena.writeBigUInt64LE(BigInt.asUintN(64, address), remote);
  arena.writeBigUInt64LE(BigInt(len), remote + 8);
  const n = check('process_vm_readv', f.syscall5(NR.process_vm_readv, pid, ptr(local), 1, ptr(remote), 1));
  return Buffer.from(arena.subarray(A.io, A.io + n));
}

/** ioprio_get(IOPRIO_WHO_PROCESS, pid): the I/O priority as the kernel encodes it (class << 13 | data). */
export function ioprioGet(pid: number): number {
  return check(`ioprio_get(${pid})`, f.syscall3(NR.ioprio_get, 1, pid, 0));
}

export function setns(fd: number, nstype: number): void {
  check('setns', f.setns(fd, nstype));
}

/**
 * Set the calling thread's fsuid. The kernel never reports failure here:
 * read back and compare, so a refused switch cannot go unnoticed.
 */
export function setfsuid(uid: number): void {
  f.syscall3(NR.setfsuid, uid, 0, 0);
  const now = Number(f.syscall3(NR.setfsuid, -1, 0, 0));
  if (now !== uid) throw new Error(`setfsuid(${uid}) left fsuid at ${now}`);
}

export interface Rlimit { soft: bigint; hard: bigint } // 2^64-1 = unlimited

export function prlimitGet(pid: number, resource: number): Rlimit {
  check(`prlimit(${pid}, ${resource})`, f.prlimit(pid, resource, null, ptr(A.small)));
  return { soft: arena.readBigUInt64LE(A.small), hard: arena.readBigUInt64LE(A.small + 8) };
}

/* ---- reaping our children (src/broker/spawn.ts starts them) ---- */

const P_PID = 1;
const P_PIDFD = 3;
const WEXITED = 4;
const WNOHANG = 1;
const CLD_EXITED = 1;

/** How a child ended: its exit code, or the number of the signal that killed it. */
export interface Exited { code: number | null; signal: number | null }

function waitid(idtype: number, id: number, options: number, what: string): Exited | undefined {
  const info = A.small; // siginfo_t: 128 bytes; si_code at 8, si_pid at 16, si_status at 24
  arena.fill(0, info, info + 128);
  for (;;) {
    if (Number(f.waitid(idtype, id, ptr(info), WEXITED | options)) >= 0) break;
    const errno = koffi.errno();
    if (errno !== EINTR_ERRNO) throw new SysError(what, errno);
  }
  if (arena.readInt32LE(info + 16) === 0) return undefined;
  const status = arena.readInt32LE(info + 24);
  return arena.readInt32LE(info + 8) === CLD_EXITED ? { code: status, signal: null } : { code: null, signal: status };
}

/**
 * Reap our child behind `pidfd` if it has exited (waitid P_PIDFD, WNOHANG):
 * undefined while it runs.
 */
export function waitExited(pidfd: number): Exited | undefined {
  return waitid(P_PIDFD, pidfd, WNOHANG, `waitid(P_PIDFD, ${pidfd})`);
}

/** Wait for our child `pid` to exit and reap it (for a child just killed). */
export function reap(pid: number): Exited | undefined {
  return waitid(P_PID, pid, 0, `waitid(P_PID, ${pid})`);
}

/* ---- ioctl, poll, fcntl ---- */

/** ioctl with a struct in the arena's scratch area; returns rc or throws. */
export function ioctlStruct(fd: number, request: number, struct: Buffer, what: string): Buffer {
  if (struct.length > 256) throw new Error(`ioctl struct of ${struct.length} bytes`);
  struct.copy(arena, A.small);
  check(what, f.ioctlPtr(fd, request, ptr(A.small)));
  return Buffer.from(arena.subarray(A.small, A.small + struct.length));
}

/** ioctl that returns -1 with an errno the caller wants as a value, not an exception. */
export function ioctlStructErrno(fd: number, request: number, struct: Buffer): { rc: number; errno: number; out: Buffer } {
  struct.copy(arena, A.small);
  const rc = f.ioctlPtr(fd, request, ptr(A.small));
  const errno = rc < 0 ? koffi.errno() : 0;
  return { rc, errno, out: Buffer.from(arena.subarray(A.small, A.small + struct.length)) };
}

export function ioctlValue(fd: number, request: number, value: number, what: string): number {
  return check(what, f.ioctlVal(fd, request, value));
}

/** Zero-timeout poll of one fd: the revents bits. */
export function pollNow(fd: number, events: number): number {
  arena.writeInt32LE(fd, A.small);
  arena.writeInt16LE(events, A.small + 4);
  arena.writeInt16LE(0, A.small + 6);
  // A signal (SIGPROF of --cpu-prof, for one) can interrupt even a
  // zero-timeout poll: ask again rather than fail the listener.
  for (;;) {
    const rc = Number(f.poll(ptr(A.small), 1, 0));
    if (rc >= 0) break;
    const errno = koffi.errno();
    if (errno !== EINTR_ERRNO) throw new SysError('poll', errno);
  }
  return arena.readInt16LE(A.small + 6);
}

const F_GETFD = 1;
const F_SETFD = 2;
const F_GETFL = 3;
const FD_CLOEXEC = 1;

/** The fd's file status flags (fcntl F_GETFL): O_PATH, the access mode, O_APPEND, ... */
export function fileStatusFlags(fd: number): number {
  return check(`fcntl(${fd}, F_GETFL)`, f.fcntl(fd, F_GETFL, 0));
}

export function setCloexec(fd: number, on: boolean): void {
  const flags = check('fcntl(F_GETFD)', f.fcntl(fd, F_GETFD, 0));
  check('fcntl(F_SETFD)', f.fcntl(fd, F_SETFD, on ? flags | FD_CLOEXEC : flags & ~FD_CLOEXEC));
}

/* ---- files ---- */

export const AT_FDCWD = -100;
export const O_RDONLY = 0;
export const O_DIRECTORY = 0o200000;
export const O_NOFOLLOW = 0o400000;
export const O_CLOEXEC = 0o2000000;
export const O_PATH = 0o10000000;

/** openat(2): Node has no way to open relative to a directory fd. */
export function openat(dirfd: number, name: string, flags: number, what = name): number {
  return check(`openat(${what})`, f.openat(dirfd, name, flags | O_CLOEXEC, 0));
}

const AT_EMPTY_PATH = 0x1000;
const AT_STATX_DONT_SYNC = 0x4000;
const STATX_TYPE = 0x1;

/**
 * The file type bits (S_IFMT) of an fd a user handed over, from the
 * kernel's cached attributes only. fstat on an fd of a FUSE (or NFS, CIFS)
 * file can ask the server, and a user's FUSE server need never answer;
 * AT_STATX_DONT_SYNC makes those file systems answer from the inode as it
 * is (overlayfs passes the flag down), and the type of an inode never
 * changes, so the cached value is the true one.
 */
export function fileTypeCached(fd: number): number {
  const buf = A.small; // struct statx: 256 bytes
  arena.fill(0, buf, buf + 256);
  check(`statx(${fd})`, f.statx(fd, '', AT_EMPTY_PATH | AT_STATX_DONT_SYNC, STATX_TYPE, ptr(buf)));
  if ((arena.readUInt32LE(buf) & STATX_TYPE) === 0) throw new SysError(`statx(${fd}): no type`, osConstants.errno.EIO);
  return arena.readUInt16LE(buf + 0x1c) & 0o170000;
}

/** A sealed-by-convention memfd holding `data`, read from offset 0. */
export function memfdWith(name: string, data: Buffer): number {
  const fd = check('memfd_create', f.memfd_create(name, 1 /* MFD_CLOEXEC */));
  try {
    let off = 0;
    while (off < data.length) off += writeSync(fd, data, off, data.length - off, off);
  } catch (e) {
    f.close(fd);
    throw e;
  }
  return fd;
}

/* ---- users and groups (NSS, through libc like every other tool) ---- */

export interface Passwd { name: string; uid: number; gid: number; dir: string; shell: string }

/** Room for an entry's strings (a group's member list can be long). */
const NSS_BUF = 256 * 1024;

function decodePasswd(off: number): Passwd {
  // struct passwd: char *pw_name, *pw_passwd; uid_t pw_uid; gid_t pw_gid; char *pw_gecos, *pw_dir, *pw_shell
  const str = (at: number): string => koffi.decode(arena.readBigUInt64LE(off + at), 'char', -1) as string;
  return {
    name: str(0),
    uid: arena.readUInt32LE(off + 16),
    gid: arena.readUInt32LE(off + 20),
    dir: str(32),
    shell: str(40),
  };
}

/**
 * One reentrant NSS lookup (getpwuid_r, getgrnam_r...) with its struct and
 * string buffer in the arena: the struct's offset, or undefined if there is
 * no such entry.
 */
function nssLookup(call: string, lookup: (entry: bigint, buf: bigint, len: number, result: bigint) => number): number | undefined {
  const entry = A.io, buf = A.io + 64, result = A.small;
  arena.writeBigUInt64LE(0n, result);
  const rc = lookup(ptr(entry), ptr(buf), NSS_BUF, ptr(result));
  if (rc !== 0 && rc !== osConstants.errno.ENOENT) throw new SysError(call, rc);
  return arena.readBigUInt64LE(result) === 0n ? undefined : entry;
}

export function getpwuid(uid: number): Passwd | undefined {
  const at = nssLookup(`getpwuid_r(${uid})`, (e, b, n, r) => f.getpwuid_r(uid, e, b, n, r));
  return at === undefined ? undefined : decodePasswd(at);
}

export function getpwnam(name: string): Passwd | undefined {
  const at = nssLookup(`getpwnam_r(${name})`, (e, b, n, r) => f.getpwnam_r(name, e, b, n, r));
  return at === undefined ? undefined : decodePasswd(at);
}

/** Most groups getgrouplist reports (NGROUPS_MAX is 65536; the scratch room holds this many). */
const MAX_GROUPS = 4096;

/** The groups `user` is in by the group database, `gid` (its primary group) first: what initgroups(3) would set. */
export function groupsOf(user: string, gid: number): number[] {
  const list = A.io, count = A.small;
  arena.writeInt32LE(MAX_GROUPS, count);
  if (f.getgrouplist(user, gid, ptr(list), ptr(count)) < 0) {
    throw new Error(`getgrouplist(${user}): more than ${MAX_GROUPS} groups`);
  }
  const n = arena.readInt32LE(count);
  return Array.from({ length: n }, (_, i) => arena.readUInt32LE(list + 4 * i));
}

export function getgrnamGid(name: string): number | undefined {
  const at = nssLookup(`getgrnam_r(${name})`, (e, b, n, r) => f.getgrnam_r(name, e, b, n, r));
  // struct group: char *gr_name, *gr_passwd; gid_t gr_gid; ...
  return at === undefined ? undefined : arena.readUInt32LE(at + 16);
}

/** The name of group gid, or undefined if there is no such group. */
export function getgrgidName(gid: number): string | undefined {
  const at = nssLookup(`getgrgid_r(${gid})`, (e, b, n, r) => f.getgrgid_r(gid, e, b, n, r));
  // struct group: char *gr_name first
  return at === undefined ? undefined : koffi.decode(arena.readBigUInt64LE(at), 'char', -1) as string;
}
