/*
 * A launch plan -> native/stx-launch, which becomes the user's program.
 *
 * MUST: give the launcher an empty environment (it runs as root until it
 * drops privileges; the program's environment travels as --env), put the
 * client's stdio at 0-2 and nothing else of the broker's in the child but
 * the numbered fds of CHILD_FD, start it inside the session's cgroup (so
 * nothing it does happens outside it; a systemd scope, made with its pid,
 * it waits for before it changes anything), treat the launcher's control socket
 * as the only way the listener fd comes back, and hand back the pidfd the
 * kernel made with the launcher.
 */
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { AF_UNIX, SOCK_CLOEXEC, SOCK_SEQPACKET, closeQuietly, memfdWith, socketpair, type Rlimit } from '../shared/native/libc.js';
import { spawnInCgroup } from './spawn.js';

export const LAUNCHER = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../native/build/stx-launch');

export interface LaunchPlan {
  uid: number;
  gid: number;
  execGid: number;          // the powerless real gid that makes the exec secure
  groups: number[];         // supplementary groups, from the kernel's view of the client
  umask: number;
  rlimits: Map<string, Rlimit>;
  env: Record<string, string>;
  argv: string[];
  stdio: [number, number, number];
  cwdFd: number;
  netnsFd: number;          // the client's network namespace
  /** The session's cgroup (an O_DIRECTORY fd) the launcher is started in; -1: none (--no-cgroups), or sent later (cgroupFromControl). */
  cgroupFd: number;
  /** The launcher waits for its cgroup on the control socket ("cgroup" + 1 fd): a systemd scope made with its pid. */
  cgroupFromControl?: boolean;
  loginuid: number;         // the client's audit login uid (4294967295: unset)
  nice: number;
  ioprio: number;
  affinity: string;         // CPU list, "0-3,6"
  oomScoreAdj: number;
  binaryFd: number;
  filter: Buffer;           // BPF program bytes
}

export interface Launched {
  /** The launcher, then the program: our child, which the caller reaps (waitExited on pidfd). */
  pid: number;
  /** Readable once it exited (cloexec); the caller closes it. */
  pidfd: number;
  control: number;          // broker's end of the control socket (cloexec)
}

const CHILD_FD = { control: 3, cwd: 4, exec: 5, filter: 6, netns: 7 } as const;
const UNLIMITED = 0xffffffffffffffffn;

const limit = (n: bigint): string => (n === UNLIMITED ? 'unlimited' : n.toString());

export function launcherArgs(plan: LaunchPlan): string[] {
  const args = [
    '--uid', String(plan.uid),
    '--gid', String(plan.gid),
    '--exec-gid', String(plan.execGid),
    '--groups', plan.groups.join(','),
    '--umask', plan.umask.toString(8).padStart(4, '0'),
  ];
  for (const [name, { soft, hard }] of plan.rlimits) args.push('--rlimit', `${name}=${limit(soft)}:${limit(hard)}`);
  for (const [name, value] of Object.entries(plan.env)) args.push('--env', `${name}=${value}`);
  args.push(
    '--loginuid', String(plan.loginuid),
    '--nice', String(plan.nice),
    '--affinity', plan.affinity,
    '--oom-score-adj', String(plan.oomScoreAdj),
    '--ioprio', String(plan.ioprio),
  );
  // Otherwise it is born in its cgroup (clone3 CLONE_INTO_CGROUP): nothing to join.
  if (plan.cgroupFromControl) args.push('--cgroup-fd', 'control');
  args.push(
    '--control-fd', String(CHILD_FD.control),
    '--cwd-fd', String(CHILD_FD.cwd),
    '--exec-fd', String(CHILD_FD.exec),
    '--filter-fd', String(CHILD_FD.filter),
    '--netns-fd', String(CHILD_FD.netns),
    '--', ...plan.argv,
  );
  return args;
}

/** Start the launcher; the caller watches `control` and `pidfd`, and reaps the launcher. */
export function startLauncher(plan: LaunchPlan): Launched {
  const [control, childControl] = socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC);
  let filterFd = -1;
  try {
    filterFd = memfdWith('stx-filter', plan.filter);
    const fds = [...plan.stdio, childControl, plan.cwdFd, plan.binaryFd, filterFd, plan.netnsFd];
    const { pid, pidfd } = spawnInCgroup(LAUNCHER, ['stx-launch', ...launcherArgs(plan)], fds, plan.cgroupFromControl ? -1 : plan.cgroupFd);
    return { pid, pidfd, control };
  } catch (e) {
    closeQuietly(control);
    throw e;
  } finally {
    closeQuietly(childControl);
    closeQuietly(filterFd);
  }
}
