/*
 * x86_64 numbers the supervisors (the broker's, and learn's) decode
 * notifications with: the trapped system calls and the flags of their
 * arguments (the filter admits only the native ABI, so these are the only
 * numbers a notification can carry).
 */
export const NR = { socket: 41, bind: 49, setsockopt: 54, execve: 59, execveat: 322 } as const;
export const SOCK_NONBLOCK = 0o4000;
export const SOCK_CLOEXEC = 0o2000000;
export const AT_EMPTY_PATH = 0x1000;
export const EPERM = 1;
