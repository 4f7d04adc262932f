/*
 * Start the program to learn from as the broker starts programs: the
 * broker's launcher (native/stx-launch), as USER with the user's groups,
 * the exec group's secure exec, no_new_privs and the learning filter, in
 * learn's own network namespace, with learn's limits, umask and scheduling
 * context (as the broker takes its client's) and the broker's allow-listed
 * environment. So what it learns is what the program will need under the
 * broker. No cgroup of its own: what the program leaves running when it
 * exits keeps running, without elevated calls (its listener is closed).
 */
import { constants as osConstants } from 'node:os';
import type { ChildProcess } from 'node:child_process';
import {
  AT_FDCWD, O_DIRECTORY, O_RDONLY, type Passwd, closeQuietly, getgrnamGid, groupsOf, openat, pidfdOpen, recvmsg,
} from '../../shared/native/libc.js';
import { FdWatch, READABLE } from '../../shared/native/uvpoll.js';
import { type OpenBinary } from '../../broker/binary.js';
import { programEnvironment } from '../../broker/environment.js';
import { clientContext } from '../../broker/identity.js';
import { startLauncher } from '../../broker/launch.js';

export class LaunchError extends Error {}

export interface Started {
  child: ChildProcess;
  /** Resolves with the listener fd once the launcher sent it, rejects with why the launch failed. */
  listener: Promise<number>;
  /** What the launcher reported after it sent the listener (a failed exec), if anything. */
  lateError(): string | undefined;
}

/** The exec group's gid (the broker's --exec-group): the powerless real gid that makes the exec secure. */
export function execGroupGid(name: string): number {
  const gid = getgrnamGid(name);
  if (gid === undefined) throw new LaunchError(`group ${name} does not exist; create it with: groupadd --system ${name} (the broker uses it too)`);
  return gid;
}

/** Launch argv[0] = the name typed, the binary = `binary` (verified, opened), as `user`, under `filter`. */
export function launch(user: Passwd, execGid: number, binary: OpenBinary, argv: string[], filter: Buffer, stdout: number): Started {
  const selfPidfd = pidfdOpen(process.pid);
  const groups = groupsOf(user.name, user.gid);
  let netnsFd = -1, cwdFd = -1;
  try {
    const context = clientContext({ pid: process.pid, uid: process.getuid!(), gid: process.getgid!(), gids: [], supplementary: [], passwd: undefined, pidfd: selfPidfd });
    netnsFd = context.netnsFd;
    cwdFd = openat(AT_FDCWD, '.', O_RDONLY | O_DIRECTORY, 'the current directory');
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
    const { child, control } = startLauncher({
      uid: user.uid, gid: user.gid, execGid, groups, umask: context.umask, rlimits: context.rlimits,
      env: programEnvironment(env, user), argv, stdio: [0, stdout, 2], cwdFd, netnsFd, binaryFd: binary.fd, filter, cgroupFd: -1,
      loginuid: context.loginuid, nice: context.nice, ioprio: context.ioprio, affinity: context.affinity, oomScoreAdj: context.oomScoreAdj,
    });
    const late: { error?: string } = {};
    return { child, listener: listenerFrom(child, control, late), lateError: () => late.error };
  } finally {
    closeQuietly(selfPidfd);
    closeQuietly(netnsFd);
    closeQuietly(cwdFd);
  }
}

/** The launcher's control socket: "listener" with the fd, or "error ..." (then it exits). */
function listenerFrom(child: ChildProcess, control: number, late: { error?: string }): Promise<number> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const watch = new FdWatch(control, READABLE, () => {
      for (;;) {
        let got;
        try {
          got = recvmsg(control, 4096, 1);
        } catch (e) {
          got = null;
          if (!settled) { settled = true; reject(new LaunchError(`the launcher's control socket: ${(e as Error).message}`)); }
        }
        if (!got) return;
        if (got.data.length === 0 && got.fds.length === 0) {
          watch.close();
          if (!settled) { settled = true; reject(new LaunchError('the launcher exited before it sent the listener')); }
          return;
        }
        const text = got.data.toString('utf8');
        if (text === 'listener' && got.fds.length === 1 && !settled) {
          settled = true;
          resolve(got.fds[0]);
        } else {
          got.fds.forEach(closeQuietly);
          if (settled) late.error = text.startsWith('error ') ? text.slice(6) : text.slice(0, 80);
          else {
            settled = true;
            reject(new LaunchError(text.startsWith('error ') ? text.slice(6) : `unexpected launcher message ${JSON.stringify(text.slice(0, 80))}`));
          }
        }
      }
    });
    child.on('exit', () => watch.close());
  });
}

/** 128+N for a signal, as shells and the client report it. */
export function exitStatus(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  return 128 + (signal ? osConstants.signals[signal] : 0);
}
