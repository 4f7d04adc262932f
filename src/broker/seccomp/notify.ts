/*
 * The seccomp user-notification ioctls on a listener fd (x86_64 numbers;
 * Debian 12's headers lack SET_FLAGS and SYNC_WAKE_UP).
 *
 * MUST: zero the receive buffer before every NOTIF_RECV (the kernel
 * requires it), and report a vanished target (ENOENT) as a value, not an
 * exception: a killed program is normal, not a broker fault.
 */
import { ioctlStructErrno, ioctlValue } from '../../shared/native/libc.js';

const NOTIF_RECV = 0xc0502100;     // _IOWR('!', 0, struct seccomp_notif)      80 bytes
const NOTIF_SEND = 0xc0182101;     // _IOWR('!', 1, struct seccomp_notif_resp) 24 bytes
const NOTIF_ID_VALID = 0x40082102; // _IOW('!', 2, __u64)
const NOTIF_ADDFD = 0x40182103;    // _IOW('!', 3, struct seccomp_notif_addfd) 24 bytes
const NOTIF_SET_FLAGS = 0x40082104; // _IOW('!', 4, __u64), flag passed by value
const USER_NOTIF_FD_SYNC_WAKE_UP = 1;
const USER_NOTIF_FLAG_CONTINUE = 1;
const ADDFD_FLAG_SEND = 2;
const ENOENT = 2;
const EINPROGRESS = 115;

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
 * One notification, or null when there was none to take (ENOENT: the
 * target died between readiness and the read, or the filter hung up).
 */
export function receive(listener: number): Notification | null {
  const r = ioctlStructErrno(listener, NOTIF_RECV, Buffer.alloc(80));
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
  return ioctlStructErrno(listener, NOTIF_ID_VALID, b).rc === 0;
}

function respond(listener: number, id: bigint, val: bigint, error: number, flags: number): boolean {
  const b = Buffer.alloc(24);
  b.writeBigUInt64LE(id, 0);
  b.writeBigInt64LE(val, 8);
  b.writeInt32LE(error, 16);
  b.writeUInt32LE(flags, 20);
  const r = ioctlStructErrno(listener, NOTIF_SEND, b);
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
 * Install `fd` in the target and make it the call's return value in one
 * step (ADDFD_FLAG_SEND). Returns the target's fd number, or null when the
 * notification cannot be answered now: the target is gone (ENOENT), or a
 * signal interrupted its wait, which puts the notification back to its
 * first state (EINPROGRESS: nothing was installed, and the kernel delivers
 * the same call again, to be decided afresh).
 */
export function addFdAndReturn(listener: number, id: bigint, fd: number, cloexec: boolean): number | null {
  const b = Buffer.alloc(24);
  b.writeBigUInt64LE(id, 0);
  b.writeUInt32LE(ADDFD_FLAG_SEND, 8);
  b.writeUInt32LE(fd, 12);
  b.writeUInt32LE(0, 16);
  b.writeUInt32LE(cloexec ? 0o2000000 : 0, 20);
  const r = ioctlStructErrno(listener, NOTIF_ADDFD, b);
  if (r.rc < 0) {
    if (r.errno === ENOENT || r.errno === EINPROGRESS) return null;
    throw new Error(`SECCOMP_IOCTL_NOTIF_ADDFD: errno ${r.errno}`);
  }
  return r.rc;
}

/** Wake the supervisor on the notifying task's CPU (55-72 us saved per call here). */
export function setSyncWakeUp(listener: number): void {
  ioctlValue(listener, NOTIF_SET_FLAGS, USER_NOTIF_FD_SYNC_WAKE_UP, 'SECCOMP_IOCTL_NOTIF_SET_FLAGS(SYNC_WAKE_UP)');
}

