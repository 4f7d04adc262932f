/*
 * The seccomp user-notification ioctls on a listener fd (x86_64 numbers;
 * Debian 12's headers lack SET_FLAGS and SYNC_WAKE_UP).
 *
 * MUST: zero the receive buffer before every NOTIF_RECV (the kernel
 * requires it), report a vanished target (ENOENT) as a value, not an
 * exception: a killed program is normal, not a broker fault; ask again when
 * a signal interrupted an ioctl before it did anything (EINTR); and never use
 * SECCOMP_ADDFD_FLAG_SEND (see addFd).
 */
import { ioctlStructErrno, ioctlValue } from '../../shared/native/libc.js';

const NOTIF_RECV = 0xc0502100;     // _IOWR('!', 0, struct seccomp_notif)      80 bytes
const NOTIF_SEND = 0xc0182101;     // _IOWR('!', 1, struct seccomp_notif_resp) 24 bytes
const NOTIF_ID_VALID = 0x40082102; // _IOW('!', 2, __u64)
const NOTIF_ADDFD = 0x40182103;    // _IOW('!', 3, struct seccomp_notif_addfd) 24 bytes
const NOTIF_SET_FLAGS = 0x40082104; // _IOW('!', 4, __u64), flag passed by value
const USER_NOTIF_FD_SYNC_WAKE_UP = 1;
const USER_NOTIF_FLAG_CONTINUE = 1;
const ENOENT = 2;
const EINTR = 4;

export const AUDIT_ARCH_X86_64 = 0xc000003e;

export interface Notification {
  id: bigint;
  pid: number;        // a thread id
  nr: number;
  arch: number;
  ip: bigint;
  args: bigint[];     // six raw 64-bit registers
}

/**
 * The ioctl, asked again while a signal interrupts it: each of these fails
 * with EINTR only before it changed anything (the listener's lock, or
 * ADDFD's wait with its request taken back), so asking again is safe.
 */
function notifyIoctl(listener: number, request: number, struct: Buffer): { rc: number; errno: number; out: Buffer } {
  for (;;) {
    const r = ioctlStructErrno(listener, request, struct);
    if (r.rc >= 0 || r.errno !== EINTR) return r;
  }
}

/**
 * One notification, or null when there was none to take (ENOENT: the
 * target died between readiness and the read, or the filter hung up).
 */
export function receive(listener: number): Notification | null {
  const r = notifyIoctl(listener, NOTIF_RECV, Buffer.alloc(80));
  if (r.rc < 0) {
    if (r.errno === ENOENT) return null;
    throw new Error(`SECCOMP_IOCTL_NOTIF_RECV on fd ${listener}: errno ${r.errno}`);
  }
  const b = r.out;
  const args: bigint[] = [];
  for (let i = 0; i < 6; i++) args.push(b.readBigUInt64LE(32 + 8 * i));
  return { id: b.readBigUInt64LE(0), pid: b.readUInt32LE(8), nr: b.readInt32LE(16), arch: b.readUInt32LE(20), ip: b.readBigUInt64LE(24), args };
}

/** Whether the notification still stands (its target has not died or moved on). */
export function idValid(listener: number, id: bigint): boolean {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(id);
  return notifyIoctl(listener, NOTIF_ID_VALID, b).rc === 0;
}

function respond(listener: number, id: bigint, val: bigint, error: number, flags: number): boolean {
  const b = Buffer.alloc(24);
  b.writeBigUInt64LE(id, 0);
  b.writeBigInt64LE(val, 8);
  b.writeInt32LE(error, 16);
  b.writeUInt32LE(flags, 20);
  const r = notifyIoctl(listener, NOTIF_SEND, b);
  if (r.rc < 0 && r.errno !== ENOENT) throw new Error(`SECCOMP_IOCTL_NOTIF_SEND: errno ${r.errno}`);
  return r.rc === 0;
}

/** Fail the call with `errno` (a positive number). */
export function fail(listener: number, id: bigint, errno: number): boolean {
  return respond(listener, id, 0n, -errno, 0);
}

/** Succeed the call with `value` without running it. */
export function succeed(listener: number, id: bigint, value: bigint): boolean {
  return respond(listener, id, value, 0, 0);
}

/** Let the kernel run the call itself, with the caller's own credentials. */
export function continueCall(listener: number, id: bigint): boolean {
  return respond(listener, id, 0n, 0, USER_NOTIF_FLAG_CONTINUE);
}

/**
 * Install `fd` in the target (its lowest free number, close-on-exec as
 * asked) while its call still waits; the caller answers the call with
 * `succeed(fd number)`. Returns the target's fd number, or null when the
 * target is gone or its wait was interrupted (ENOENT: nothing installed; an
 * interrupted call comes again as a new notification).
 *
 * Not ADDFD_FLAG_SEND, which installs and answers in one step: it marks the
 * call answered before the target has installed anything, and when a
 * signal interrupts the broker's wait for the install (a SIGCHLD of any of
 * its programs) the kernel takes the request back but leaves the call
 * answered, with 0 and no fd: the program's socket() returns 0 (its stdin)
 * and the broker, restarted into EINPROGRESS or ENOENT, cannot tell. Seen
 * here on 1-2% of calls under load. Without SEND an interrupted wait
 * changes nothing and is asked again.
 */
export function addFd(listener: number, id: bigint, fd: number, cloexec: boolean): number | null {
  const b = Buffer.alloc(24);
  b.writeBigUInt64LE(id, 0);
  b.writeUInt32LE(0, 8); // flags: neither SETFD nor SEND
  b.writeUInt32LE(fd, 12);
  b.writeUInt32LE(0, 16);
  b.writeUInt32LE(cloexec ? 0o2000000 : 0, 20);
  const r = notifyIoctl(listener, NOTIF_ADDFD, b);
  if (r.rc < 0) {
    if (r.errno === ENOENT) return null;
    throw new Error(`SECCOMP_IOCTL_NOTIF_ADDFD: errno ${r.errno}`);
  }
  return r.rc;
}

/** Wake the supervisor on the notifying task's CPU (55-72 us saved per call here). */
export function setSyncWakeUp(listener: number): void {
  ioctlValue(listener, NOTIF_SET_FLAGS, USER_NOTIF_FD_SYNC_WAKE_UP, 'SECCOMP_IOCTL_NOTIF_SET_FLAGS(SYNC_WAKE_UP)');
}

