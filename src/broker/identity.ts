/*
 * Who the client is, from the kernel alone.
 *
 * MUST: take uid, gid, groups and pid from the socket (SO_PEERCRED,
 * SO_PEERGROUPS, SO_PEERPIDFD), never from the client's words; read the
 * process context (umask, resource limits, audit login uid, nice value, I/O
 * priority, CPU affinity, oom_score_adj) by pid only while the pidfd proves
 * that pid is still the client, and re-check after reading.
 */
import { readFileSync } from 'node:fs';
import {
  AT_FDCWD, O_RDONLY, POLLIN, closeQuietly, getpwuid, ioprioGet, openat, peerCred, peerGroups, peerPidfd, pollNow, prlimitGet,
  type Passwd, type Rlimit,
} from '../shared/native/libc.js';

export interface ClientIdentity {
  pid: number;
  uid: number;
  gid: number;
  /** Primary group first, then the supplementary groups. */
  gids: number[];
  supplementary: number[];
  passwd: Passwd | undefined;   // undefined: no passwd entry
  pidfd: number;
}

export interface ClientContext {
  umask: number;
  rlimits: Map<string, Rlimit>;
  /** The client's network namespace (an nsfs fd, close-on-exec); the caller closes it. */
  netnsFd: number;
  /** Audit login uid; 4294967295 when unset or when the kernel keeps none. */
  loginuid: number;
  /** -20..19 */
  nice: number;
  /** As ioprio_get(2) returns it. */
  ioprio: number;
  /** The CPUs the client may run on, as a list ("0-3,6"). */
  affinity: string;
  /** -1000..1000: the client's, or the broker's own when that is higher (see clientContext). */
  oomScoreAdj: number;
}

const LOGINUID_UNSET = 4294967295;

export class IdentityError extends Error {}

/** rlimit names as the launcher takes them, by RLIMIT_* number (x86_64), with their /proc/PID/limits label. */
export const RLIMITS: readonly (readonly [string, string])[] = [
  ['cpu', 'Max cpu time'], ['fsize', 'Max file size'], ['data', 'Max data size'], ['stack', 'Max stack size'],
  ['core', 'Max core file size'], ['rss', 'Max resident set'], ['nproc', 'Max processes'], ['nofile', 'Max open files'],
  ['memlock', 'Max locked memory'], ['as', 'Max address space'], ['locks', 'Max file locks'],
  ['sigpending', 'Max pending signals'], ['msgqueue', 'Max msgqueue size'], ['nice', 'Max nice priority'],
  ['rtprio', 'Max realtime priority'], ['rttime', 'Max realtime timeout'],
];
const UNLIMITED = 0xffffffffffffffffn;

/**
 * /proc/PID/limits, parsed by label: prlimit(2) on another user's process
 * needs CAP_SYS_RESOURCE, which the broker may not have.
 */
function readLimits(pid: number): Map<string, Rlimit> {
  const text = readFileSync(`/proc/${pid}/limits`, 'utf8');
  const value = (v: string): bigint => (v === 'unlimited' ? UNLIMITED : BigInt(v));
  const limits = new Map<string, Rlimit>();
  for (const [name, label] of RLIMITS) {
    const m = new RegExp(`^${label}\\s+(\\d+|unlimited)\\s+(\\d+|unlimited)`, 'm').exec(text);
    if (!m) throw new IdentityError(`cannot read ${label} of client pid ${pid}`);
    limits.set(name, { soft: value(m[1]), hard: value(m[2]) });
  }
  return limits;
}

export function peerIdentity(conn: number): ClientIdentity {
  const cred = peerCred(conn);
  const pidfd = peerPidfd(conn);
  try {
    const supplementary = peerGroups(conn);
    return {
      pid: cred.pid, uid: cred.uid, gid: cred.gid,
      gids: [cred.gid, ...supplementary.filter((g) => g !== cred.gid)],
      supplementary,
      passwd: getpwuid(cred.uid),
      pidfd,
    };
  } catch (e) {
    closeQuietly(pidfd);
    throw e;
  }
}

/** The client has not exited: its pidfd is not readable yet. */
export function alive(identity: ClientIdentity): boolean {
  return (pollNow(identity.pidfd, POLLIN) & POLLIN) === 0;
}

const min = (a: bigint, b: bigint): bigint => (a < b ? a : b);

/**
 * Never above the client's limits; never above the broker's own hard
 * limits either, since raising one needs CAP_SYS_RESOURCE, which a
 * hardened service (or this container) may not have.
 */
function atMostOurs(client: Rlimit, resource: number): Rlimit {
  const hard = min(client.hard, prlimitGet(0, resource).hard);
  return { soft: min(client.soft, hard), hard };
}

function readLoginuid(pid: number): number {
  let text;
  try {
    text = readFileSync(`/proc/${pid}/loginuid`, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return LOGINUID_UNSET; // no audit in this kernel
    throw e;
  }
  if (!/^\d{1,10}$/.test(text) || Number(text) > LOGINUID_UNSET) throw new IdentityError(`cannot read the loginuid of client pid ${pid}`);
  return Number(text);
}

/** Field 19 of /proc/PID/stat: the fields after the last ")" (the command name may hold anything) start at 3. */
function readNice(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const nice = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19 - 3];
  if (!/^-?\d+$/.test(nice ?? '') || Number(nice) < -20 || Number(nice) > 19) {
    throw new IdentityError(`cannot read the nice value of client pid ${pid}`);
  }
  return Number(nice);
}

function readOomScoreAdj(pid: number | 'self'): number {
  const text = readFileSync(`/proc/${pid}/oom_score_adj`, 'utf8').trim();
  if (!/^-?\d{1,4}$/.test(text) || Math.abs(Number(text)) > 1000) {
    throw new IdentityError(`cannot read the oom_score_adj of ${pid === 'self' ? 'the broker' : `client pid ${pid}`}`);
  }
  return Number(text);
}

/**
 * /proc/PID/status of the client, read while its pidfd shows it alive; the
 * callers (clientSandbox, clientContext) check again after their own reads.
 * Read once per launch: both need it, and it is the costliest of the reads.
 */
export function clientStatus(identity: ClientIdentity): string {
  if (!alive(identity)) throw new IdentityError(`client pid ${identity.pid} has exited`);
  try {
    return readFileSync(`/proc/${identity.pid}/status`, 'utf8');
  } catch (e) {
    throw new IdentityError(`cannot read the status of client pid ${identity.pid}: ${(e as Error).message}`);
  }
}

/** The client's umask, limits and scheduling context, read while its pidfd shows it alive; `status` from clientStatus. */
export function clientContext(identity: ClientIdentity, status: string): ClientContext {
  if (!alive(identity)) throw new IdentityError(`client pid ${identity.pid} has exited`);
  const umask = /^Umask:\s+([0-7]+)$/m.exec(status);
  const uid = /^Uid:\s+(\d+)/m.exec(status);
  const cpus = /^Cpus_allowed_list:\s+([0-9,-]+)$/m.exec(status);
  if (!umask || !uid || !cpus || Number(uid[1]) !== identity.uid) {
    throw new IdentityError(`cannot read the context of client pid ${identity.pid}`);
  }
  let loginuid, nice, ioprio;
  try {
    loginuid = readLoginuid(identity.pid);
    nice = readNice(identity.pid);
    ioprio = ioprioGet(identity.pid);
  } catch (e) {
    if (e instanceof IdentityError) throw e;
    throw new IdentityError(`cannot read the context of client pid ${identity.pid}: ${(e as Error).message}`);
  }
  // Lowering oom_score_adj below the value inherited from the broker needs
  // CAP_SYS_RESOURCE, which a hardened broker (or this container) may lack:
  // a client lower than the broker keeps the broker's value. Only the
  // program's protection from the OOM killer can be less than the client's,
  // never more (a broker at -1000 must not make its programs unkillable).
  const oomScoreAdj = Math.max(readOomScoreAdj(identity.pid), readOomScoreAdj('self'));
  const rlimits = new Map<string, Rlimit>();
  const client = readLimits(identity.pid);
  RLIMITS.forEach(([name], resource) => rlimits.set(name, atMostOurs(client.get(name)!, resource)));
  const netnsFd = openat(AT_FDCWD, `/proc/${identity.pid}/ns/net`, O_RDONLY);
  // The pid was the client's before the reads; still alive now means it
  // still is (a pid is not reused while its process has not been reaped).
  if (!alive(identity)) {
    closeQuietly(netnsFd);
    throw new IdentityError(`client pid ${identity.pid} exited while it was being read`);
  }
  return { umask: parseInt(umask[1], 8), rlimits, netnsFd, loginuid, nice, ioprio, affinity: cpus[1], oomScoreAdj };
}
