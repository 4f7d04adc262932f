/*
 * The broker's cgroup subtree: one cgroup (v2) per session, which the
 * launcher joins before it runs anything, and which is killed when the
 * session ends, so a program's children cannot outlive it.
 *
 * Where sessions go:
 *  - cgroup v2 mounted (alone or beside v1 controllers): a subtree of the
 *    broker's own cgroup, <mount><own cgroup>/stx-elevated.<pid>/session-<id>;
 *  - systemd hosts (systemd is PID 1 and the system bus is there): a
 *    transient scope per session in the user's slice (systemd.ts);
 *  - no cgroup v2 at all: the broker refuses to start unless --no-cgroups
 *    (then there is no SessionCgroups object at all).
 *
 * MUST:
 *  - create cgroups only below the broker's own cgroup, in a subtree named
 *    after this broker process, and never move, change or remove anyone
 *    else's, with one exception: at start, subtrees of dead brokers (named
 *    stx-elevated.PID in the same cgroup, PID no longer running) are the
 *    sessions a killed broker left behind. Their programs must not outlive
 *    it (they would keep what was granted to them), so they are killed
 *    (cgroup.kill), and the empty subtrees removed;
 *  - keep sessions' cgroups root-owned 0755: the user can neither move a
 *    process out of one nor create cgroups inside;
 *  - never block the loop: a cgroup whose processes are still dying is
 *    removed by bounded retries on a timer.
 */
import { mkdirSync, openSync, readFileSync, readdirSync, rmdirSync, statSync, writeFileSync, existsSync, constants as fsConstants } from 'node:fs';
import path from 'node:path';
import { SYSTEM_BUS_SOCKET, SystemdScopes } from './systemd.js';

export class CgroupError extends Error {}

/** One session's cgroup. */
export interface SessionCgroup {
  /** As /proc/PID/cgroup shows it ("0::" + name). */
  readonly name: string;
  /**
   * Only where the cgroup can only be made with a process in it (a systemd
   * scope): put the launcher `pid` (started with --cgroup-fd control,
   * waiting) in it; openDir() works once this resolved. Rejects with a
   * CgroupError.
   */
  place?(pid: number): Promise<void>;
  /** An O_DIRECTORY fd of it (close-on-exec), for the launcher's --cgroup-fd; the caller closes it. */
  openDir(): number;
  /** Kill everything in it (cgroup.kill). Returns the pids that were in it just before ([]: it was empty, nothing was written). */
  kill(): number[];
  /** Remove it once it is empty: now, or by bounded retries on a timer. */
  release(): void;
}

/** Where sessions' cgroups are made. */
export interface SessionCgroups {
  /** One line for the broker's log: where sessions go. */
  readonly description: string;
  /** A new cgroup for session `id` of user `uid`. Throws CgroupError. */
  create(id: number, uid: number): SessionCgroup;
  /** Shutdown (after the sessions killed theirs): remove what is left, waiting at most timeoutMs. */
  close(timeoutMs: number): Promise<void>;
}

/** Told of each dead broker's sessions killed at start, for the audit's kill record. */
export type OnReaped = (r: Reaped) => void;

/** A dead broker's sessions (its subtree, or one of its scopes) whose processes were killed at start. */
export interface Reaped {
  /** The dead broker's pid, from the subtree's or the scope's name. */
  broker: number;
  /** As /proc/PID/cgroup names cgroups. */
  cgroup: string;
  pids: number[];
}

type Log = (message: string) => void;

/** Where the cgroup v2 hierarchy is mounted and the broker's own cgroup in it. */
export interface Cgroup2 {
  mount: string;
  /** The broker's cgroup, as /proc/self/cgroup's "0::" line gives it. */
  own: string;
  /** The broker's own cgroup directory. */
  dir: string;
}

/** \040 and friends in /proc/self/mountinfo. */
const unescape = (s: string): string => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

/**
 * The cgroup2 mount that holds the broker's own cgroup (mountinfo: field 4
 * the root of the mount within the hierarchy, field 5 the mount point, the
 * file system type after the " - " separator). undefined: no cgroup v2.
 */
export function findCgroup2(mountinfo: string, procCgroup: string): Cgroup2 | undefined {
  const own = /^0::(\/.*)$/m.exec(procCgroup)?.[1];
  if (own === undefined) return undefined;
  for (const line of mountinfo.split('\n')) {
    const fields = line.split(' ');
    const sep = fields.indexOf('-', 6);
    if (sep < 0 || fields[sep + 1] !== 'cgroup2') continue;
    const root = unescape(fields[3]);
    const mount = unescape(fields[4]);
    const rel = path.posix.relative(root, own);
    if (rel.startsWith('..') || path.posix.isAbsolute(rel)) continue; // this mount does not show our cgroup
    return { mount, own, dir: path.posix.join(mount, rel) };
  }
  return undefined;
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== 'ESRCH'; // EPERM: alive
  }
}

const code = (e: unknown): string | undefined => (e as NodeJS.ErrnoException).code;

/**
 * rmdir `dir` and the cgroups below it, deepest first. The kernel refuses
 * (EBUSY) any that holds a process: only empty cgroups go. Returns whether
 * `dir` is gone.
 */
function removeEmptyTree(dir: string): boolean {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch (e) {
    if (code(e) === 'ENOENT') return true;
    throw e;
  }
  for (const entry of entries) if (entry.isDirectory()) removeEmptyTree(path.join(dir, entry.name));
  try {
    rmdirSync(dir);
    return true;
  } catch (e) {
    if (code(e) === 'ENOENT') return true;
    if (code(e) === 'EBUSY' || code(e) === 'ENOTEMPTY') return false;
    throw e;
  }
}

/** Every pid in dir and the cgroups below it. */
export function treeProcs(dir: string): number[] {
  const pids = readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) pids.push(...treeProcs(path.join(dir, entry.name)));
  }
  return pids;
}

/** Remove a killed tree once its processes are gone: bounded retries on a timer that keeps nothing alive. */
function removeWhenEmpty(dir: string, log: Log, delay = RETRY_FIRST_MS, tries = RETRIES): void {
  setTimeout(() => {
    try {
      if (removeEmptyTree(dir)) return;
    } catch (e) {
      return log(`cannot remove ${dir}: ${(e as Error).message}`);
    }
    if (tries > 1) removeWhenEmpty(dir, log, Math.min(delay * 2, RETRY_MAX_MS), tries - 1);
    else log(`${dir} still holds processes after they were killed`);
  }, delay).unref();
}

const SUBTREE = /^stx-elevated\.(\d+)(?:\.\d+)?$/;
/** Removal retries: first after 10 ms, doubling up to 1 s, 12 tries (about 7 s). */
const RETRY_FIRST_MS = 10;
const RETRY_MAX_MS = 1000;
const RETRIES = 12;

/** Sessions under the broker's own cgroup: <own>/stx-elevated.<pid>/session-<id>. */
class BrokerSubtree implements SessionCgroups {
  readonly description: string;
  private readonly live = new Set<SubtreeSession>();

  private constructor(private readonly cg: Cgroup2, readonly dir: string, readonly name: string, private readonly log: Log) {
    this.description = `sessions' cgroups under ${dir}`;
  }

  static open(cg: Cgroup2, log: Log, onReaped: OnReaped): BrokerSubtree {
    BrokerSubtree.reapStale(cg, log).forEach(onReaped);
    // A subtree of ours can only be there already when a dead broker had our
    // pid (a container restarted): reuse its name if it is empty, else take
    // the next free suffix and leave its processes alone.
    for (let n = 0; n < 10; n++) {
      const base = `stx-elevated.${process.pid}${n ? `.${n}` : ''}`;
      const dir = path.join(cg.dir, base);
      if (existsSync(dir) && !removeEmptyTree(dir)) continue;
      try {
        mkdirSync(dir, { mode: 0o755 });
      } catch (e) {
        throw new CgroupError(`cannot create ${dir}: ${(e as Error).message}`);
      }
      if (!existsSync(path.join(dir, 'cgroup.kill'))) {
        removeEmptyTree(dir);
        throw new CgroupError(`${dir} has no cgroup.kill (Linux 5.14 or later is needed to kill a session)`);
      }
      return new BrokerSubtree(cg, dir, path.posix.join(cg.own, base), log);
    }
    throw new CgroupError(`stale subtrees stx-elevated.${process.pid}.* under ${cg.dir} still hold processes`);
  }

  /**
   * Subtrees of brokers that are gone: empty ones removed, populated ones
   * (a broker killed with its sessions running) killed, then removed once
   * empty. Never a live broker's (its pid runs), never a cgroup of another name.
   */
  private static reapStale(cg: Cgroup2, log: Log): Reaped[] {
    let entries;
    try {
      entries = readdirSync(cg.dir, { withFileTypes: true });
    } catch (e) {
      throw new CgroupError(`cannot list the broker's own cgroup ${cg.dir}: ${(e as Error).message}`);
    }
    const reaped: Reaped[] = [];
    for (const entry of entries) {
      const m = SUBTREE.exec(entry.name);
      if (!m || !entry.isDirectory() || pidAlive(Number(m[1]))) continue;
      const dir = path.join(cg.dir, entry.name);
      try {
        if (removeEmptyTree(dir)) continue;
        const pids = treeProcs(dir);
        writeFileSync(path.join(dir, 'cgroup.kill'), '1');
        log(`killed ${pids.length} processes a dead broker (pid ${m[1]}) left in ${dir}`);
        reaped.push({ broker: Number(m[1]), cgroup: path.posix.join(cg.own, entry.name), pids });
        removeWhenEmpty(dir, log);
      } catch (e) {
        log(`cannot clear ${dir} of a dead broker: ${(e as Error).message}`);
      }
    }
    return reaped;
  }

  create(id: number): SessionCgroup {
    const base = `session-${id}`;
    const dir = path.join(this.dir, base);
    try {
      mkdirSync(dir, { mode: 0o755 });
    } catch (e) {
      throw new CgroupError(`cannot create the session's cgroup ${dir}: ${(e as Error).message}`);
    }
    const session = new SubtreeSession(dir, path.posix.join(this.name, base), this.log, () => this.live.delete(session));
    this.live.add(session);
    return session;
  }

  async close(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (const s of this.live) s.stopRetrying();
    for (;;) {
      for (const s of this.live) if (s.tryRemove()) this.live.delete(s);
      if (this.live.size === 0 && removeEmptyTree(this.dir)) return;
      if (Date.now() >= deadline) {
        this.log(`left ${this.dir}: ${[...this.live].map((s) => s.name).join(', ') || 'it'} still holds processes`);
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

class SubtreeSession implements SessionCgroup {
  private timer?: NodeJS.Timeout;
  private released = false;

  constructor(private readonly dir: string, readonly name: string, private readonly log: Log, private readonly removed: () => void) {}

  openDir(): number {
    try {
      return openSync(this.dir, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY);
    } catch (e) {
      throw new CgroupError(`cannot open the session's cgroup ${this.dir}: ${(e as Error).message}`);
    }
  }

  private pids(): number[] {
    try {
      return readFileSync(path.join(this.dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
    } catch (e) {
      if (code(e) === 'ENOENT') return [];
      throw e;
    }
  }

  kill(): number[] {
    const pids = this.pids();
    // Nothing in it, nothing can enter: only the launcher joins, and the
    // caller signals the launcher itself in case it has not joined yet.
    if (pids.length > 0) writeFileSync(path.join(this.dir, 'cgroup.kill'), '1');
    return pids;
  }

  /** rmdir now; false while processes are still leaving it. */
  tryRemove(): boolean {
    try {
      rmdirSync(this.dir);
    } catch (e) {
      if (code(e) === 'EBUSY') return false;
      if (code(e) !== 'ENOENT') {
        this.log(`cannot remove ${this.dir}: ${(e as Error).message}`);
        return false;
      }
    }
    this.removed();
    return true;
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    let attempt = 0;
    const retry = () => {
      this.timer = undefined;
      if (this.tryRemove()) return;
      if (++attempt >= RETRIES) {
        this.log(`${this.dir} is still not empty after ${RETRIES} tries; it is removed at shutdown (or by the next broker)`);
        return;
      }
      this.timer = setTimeout(retry, Math.min(RETRY_FIRST_MS << (attempt - 1), RETRY_MAX_MS));
    };
    retry();
  }

  stopRetrying(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

/** Whether systemd is the init system (sd_booted(3)). */
function systemdRuns(): boolean {
  try {
    return statSync('/run/systemd/system').isDirectory();
  } catch {
    return false;
  }
}

/**
 * Where this broker puts its sessions. Throws CgroupError when there is no
 * cgroup v2 hierarchy or no subtree can be made in it: the broker must then
 * refuse to start (or run with --no-cgroups).
 */
export function openSessionCgroups(log: Log, onReaped: OnReaped): SessionCgroups {
  const cg = findCgroup2(readFileSync('/proc/self/mountinfo', 'utf8'), readFileSync('/proc/self/cgroup', 'utf8'));
  if (!cg) throw new CgroupError('no cgroup v2 hierarchy is mounted (or it does not show the broker\'s own cgroup)');
  if (systemdRuns()) {
    if (existsSync(SYSTEM_BUS_SOCKET)) return new SystemdScopes(cg, log, onReaped);
    log(`systemd runs here, but there is no system bus (${SYSTEM_BUS_SOCKET}): sessions go under the broker's own cgroup, outside the users' slices`);
  }
  try {
    return BrokerSubtree.open(cg, log, onReaped);
  } catch (e) {
    if (e instanceof CgroupError) throw e;
    throw new CgroupError(`cannot make the broker's subtree under ${cg.dir}: ${(e as Error).message}`);
  }
}
