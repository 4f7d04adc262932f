/*
 * Start the launcher born in its session's cgroup: native/spawn.c
 * (stx-spawn.so, clone3 CLONE_VM|CLONE_VFORK|CLONE_PIDFD|CLONE_INTO_CGROUP),
 * through koffi, from the event loop's thread only.
 *
 * MUST: hand back the pid together with the pidfd the kernel made at the
 * clone (it names this child and nobody else); the caller reaps the child
 * (waitExited): libuv waits only for the children it spawned itself.
 */
import koffi from 'koffi';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SysError } from '../shared/native/libc.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const lib = koffi.load(path.join(root, 'native/build/stx-spawn.so'));
const stxSpawn = lib.func('int stx_spawn(const char *path, const char **argv, const int *fds, int nfds, int cgroup_fd, _Out_ int *pidfd)');

export interface Spawned {
  pid: number;
  /** Readable once the child exited (close-on-exec); the caller closes it. */
  pidfd: number;
}

/**
 * Run `file` with `argv`, an empty environment, our fd fds[i] as its fd i
 * and no other fd, in the cgroup of the directory fd `cgroupFd` (-1: ours).
 * Returns once the exec has succeeded; throws a SysError if it failed.
 */
export function spawnInCgroup(file: string, argv: readonly string[], fds: readonly number[], cgroupFd: number): Spawned {
  const pidfd = [-1];
  const rc = stxSpawn(file, [...argv, null], fds, fds.length, cgroupFd, pidfd);
  if (rc < 0) throw new SysError(`clone3 and execve of ${file}${cgroupFd >= 0 ? ' into the session\'s cgroup' : ''}`, -rc);
  return { pid: rc, pidfd: pidfd[0] };
}
