/*
 * What the broker does to and for a trapped process: find it, check it,
 * read from it, and perform calls as root on its behalf.
 *
 * MUST:
 *  - pin the process before looking at it (a /proc/TID dir fd), then
 *    confirm with NOTIF_ID_VALID that the pinned task is the one that
 *    trapped: a recycled pid must never be mistaken for the program;
 *  - create sockets in the program's own network namespace and with the
 *    user's fsuid (so owner-match firewall rules see the user), and always
 *    return the broker's thread to its own namespace and fsuid 0;
 *  - read a pointer argument once, into the broker's own copy (memread.ts,
 *    off the loop).
 */
import { fstatSync, readFileSync, statSync } from 'node:fs';
import {
  CLONE_NEWNET, O_DIRECTORY, O_PATH, O_RDONLY, PIDFD_THREAD, SOCK_CLOEXEC, SysError, closeQuietly, ioctlValue, openat,
  pidfdGetfd, pidfdOpen, setfsuid, setns, socket, AT_FDCWD,
} from '../../shared/native/libc.js';
import { idValid } from './notify.js';

const ownNetns = statSync('/proc/self/ns/net').ino;

/** A trapped task, pinned: procFd keeps referring to it, or fails, never to another task. */
export interface Target {
  tid: number;
  procFd: number;
}

/** Pin the task behind a notification; null if it is already gone. */
export function pinTarget(listener: number, id: bigint, tid: number): Target | null {
  let procFd: number;
  try {
    procFd = openat(AT_FDCWD, `/proc/${tid}`, O_PATH | O_DIRECTORY);
  } catch (e) {
    if (e instanceof SysError && e.code === 'ENOENT') return null;
    throw e;
  }
  if (!idValid(listener, id)) {
    closeQuietly(procFd);
    return null;
  }
  return { tid, procFd };
}

export function releaseTarget(target: Target): void {
  closeQuietly(target.procFd);
}

/** Device and inode of the file the task runs now. */
export function runningBinary(target: Target): { dev: number; ino: number } {
  const fd = openat(target.procFd, 'exe', O_PATH, `/proc/${target.tid}/exe`);
  try {
    const st = fstatSync(fd);
    return { dev: st.dev, ino: st.ino };
  } finally {
    closeQuietly(fd);
  }
}

/** A duplicate of the task's fd `fd` (pidfd_getfd); the caller closes it. */
export function fetchFd(target: Target, fd: number): number {
  const pidfd = pidfdOpen(target.tid, PIDFD_THREAD);
  try {
    return pidfdGetfd(pidfd, fd);
  } finally {
    closeQuietly(pidfd);
  }
}

/**
 * socket() as root, in the target's network namespace, owned by `uid`.
 * Returns the broker's fd (close-on-exec); the caller closes it.
 */
export function socketAsRoot(target: Target, uid: number, domain: number, type: number, protocol: number): number {
  const nsFd = openat(target.procFd, 'ns/net', O_RDONLY, `/proc/${target.tid}/ns/net`);
  const foreign = fstatSync(nsFd).ino !== ownNetns;
  const backFd = foreign ? openat(AT_FDCWD, '/proc/thread-self/ns/net', O_RDONLY) : -1;
  try {
    if (foreign) setns(nsFd, CLONE_NEWNET);
    setfsuid(uid);
    try {
      return socket(domain, type | SOCK_CLOEXEC, protocol);
    } finally {
      setfsuid(0);
    }
  } finally {
    if (foreign) setns(backFd, CLONE_NEWNET);
    closeQuietly(backFd);
    closeQuietly(nsFd);
  }
}

/*
 * Reads of the task's memory are not here: they can block for as long as
 * the program wants (memory mapped from a FUSE file), so they run on the
 * thread pool with a deadline (memread.ts), never on the event loop.
 */

const SIOCGSKNS = 0x894c;

/** The network namespace a socket lives in (an nsfs fd, close-on-exec); the caller closes it. */
export function socketNetns(fd: number): number {
  return ioctlValue(fd, SIOCGSKNS, 0, 'ioctl(SIOCGSKNS)');
}

/** Inode of the network namespace the task is in now. */
export function targetNetnsIno(target: Target): number {
  const fd = openat(target.procFd, 'ns/net', O_RDONLY, `/proc/${target.tid}/ns/net`);
  try {
    return fstatSync(fd).ino;
  } finally {
    closeQuietly(fd);
  }
}

/**
 * net.ipv4.ip_unprivileged_port_start as the namespace `nsFd` has it: the
 * sysctl is per namespace, and /proc/sys/net shows the reading thread's,
 * so read it from inside and always come back.
 */
export function unprivilegedPortStart(nsFd: number): number {
  const foreign = fstatSync(nsFd).ino !== ownNetns;
  const backFd = foreign ? openat(AT_FDCWD, '/proc/thread-self/ns/net', O_RDONLY) : -1;
  try {
    if (foreign) setns(nsFd, CLONE_NEWNET);
    const value = Number(readFileSync('/proc/sys/net/ipv4/ip_unprivileged_port_start', 'utf8').trim());
    if (!Number.isInteger(value)) throw new Error('cannot read net.ipv4.ip_unprivileged_port_start');
    return value;
  } finally {
    if (foreign) setns(backFd, CLONE_NEWNET);
    closeQuietly(backFd);
  }
}
