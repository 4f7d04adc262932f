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
import {
  AT_FDCWD, O_DIRECTORY, O_RDONLY, type Passwd, SysError, closeQuietly, getgrnamGid, groupsOf, openat, pidfdOpen, pidfdSendSignal, recvmsg,
  waitExited,
} from '../../shared/native/libc.js';
import { FdWatch, READABLE } from '../../shared/native/uvpoll.js';
import { type OpenBinary } from '../../broker/binary.js';
import { programEnvironment } from '../../broker/environment.js';
import { clientContext, clientStatus } from '../../broker/identity.js';
import { startLauncher } from '../../broker/launch.js';

export class LaunchError extends Error {}

export interface Started {
  /** The launcher, then the program: our child. */
  pid: number;
  /** Its exit status (128+N for signal N), once it exited; it is reaped by then. */
  exited: Promise<number>;
  /** Send it a signal; nothing once it has exited. */
  kill(signal: NodeJS.Signals): void;
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
    const self = { pid: process.pid, uid: process.getuid!(), gid: process.getgid!(), gids: [], supplementary: [], passwd: undefined, pidfd: selfPidfd };
    const context = clientContext(self, clientStatus(self));
    netnsFd = context.netnsFd;
    cwdFd = openat(AT_FDCWD, '.', O_RDONLY | O_DIRECTORY, 'the current directory');
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
    const { pid, pidfd, control } = startLauncher({
      uid: user.uid, gid: user.gid, execGid, groups, umask: context.umask, rlimits: context.rlimits,
      env: programEnvironment(env, user), argv, stdio: [0, stdout, 2], cwdFd, netnsFd, binaryFd: binary.fd, filter, cgroupFd: -1,
      loginuid: context.loginuid, nice: context.nice, ioprio: context.ioprio, affinity: context.affinity, oomScoreAdj: context.oomScoreAdj,
    });
    const late: { error?: string } = {};
    const child = watchExit(pid, pidfd);
    return { ...child, listener: listenerFrom(child.exited, control, late), lateError: () => late.error };
  } finally {
    closeQuietly(selfPidfd);
    closeQuietly(netnsFd);
    closeQuietly(cwdFd);
  }
}

/** Our child `pid` behind `pidfd` (which this takes over): its exit, reaped, and a way to signal it meanwhile. */
function watchExit(pid: number, pidfd: number): Pick<Started, 'pid' | 'exited' | 'kill'> {
  let done = false;
  const exited = new Promise<number>((resolve) => {
    const watch = new FdWatch(pidfd, READABLE, () => {
      const how = waitExited(pidfd);
      if (!how) return;
      done = true;
      watch.close(); // and the pidfd
      resolve(exitStatus(how.code, how.signal));
    });
  });
  const kill = (signal: NodeJS.Signals): void => {
    if (done) return;
    try {
      pidfdSendSignal(pidfd, osConstants.signals[signal]);
    } catch (e) {
      if (!(e instanceof SysError && e.code === 'ESRCH')) throw e;
    }
  };
  return { pid, exited, kill };
}

/** The launcher's control socket: "listener" with the fd, or "error ..." (then it exits). */
function listenerFrom(exited: Promise<number>, control: number, late: { error?: string }): Promise<number> {
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
    void exited.then(() => watch.close());
  });
}

/** 128+N for signal N, as shells and the client report it. */
export function exitStatus(code: number | null, signal: number | null): number {
  return code ?? 128 + (signal ?? 0);
}
