/*
 * One program's seccomp listener: notification -> check -> act -> answer.
 *
 * MUST:
 *  - pin the trapping task and confirm NOTIF_ID_VALID before looking at it,
 *    and again after every read of its memory or fds, before acting;
 *  - re-check on every notification that the task still runs the binary
 *    the broker launched (device and inode), except for the launcher's own
 *    single exec of that binary;
 *  - decide every call by the program's rule in the rules loaded now
 *    (prog.rule(), policy.ts): after a reload that removed the rule or no
 *    longer names the client every trapped call is refused, and a narrowed
 *    rule decides the next call; a decision and its act happen in one turn
 *    of the loop (the rule is looked up again after a read), so a reload
 *    never falls between them;
 *  - answer every notification it takes, and fail closed (EPERM) when
 *    handling goes wrong: a trapped call must never hang or succeed by
 *    accident;
 *  - use SECCOMP_USER_NOTIF_FLAG_CONTINUE only for the launcher's exec of
 *    the verified fd, never as the outcome of a decision that rests on
 *    memory the program can still change;
 *  - keep a grant closed over its follow-ups: WIDENING_OPTIONS on a raw
 *    socket only where the rule for that socket kind allows them;
 *  - never block the loop on the program's objects: fds fetched from it are
 *    closed on the thread pool, and its memory is read there too, with a
 *    deadline (memread.ts): a read that overruns fails the call (EFAULT)
 *    and kills the session; while a notification waits for its read the
 *    listener goes on serving the others, and what follows a read happens
 *    only if NOTIF_ID_VALID still holds after it;
 *  - count what it holds against the user (quota.ts): each notification
 *    from receipt until answered (and its read until the pool is done with
 *    it), each fetched or brokered fd until its close returns; over a cap
 *    the call fails with EAGAIN and a refusal record;
 *  - serve at most BATCH notifications per wake-up, so listeners take turns;
 *  - send refusals through the session's rate limiter (refusals.ts);
 *    grants are always recorded, before the call returns what was granted
 *    (a socket is installed, recorded with its fd number, then answered).
 */
import { fstatSync } from 'node:fs';
import {
  POLLHUP, POLLIN, SOL_SOCKET, SysError, bindRaw, closeOffLoopThen, closeQuietly, errnoName, getsockoptInt, pollNow,
  setsockoptRaw, socketKind,
} from '../../shared/native/libc.js';
import { FdWatch, READABLE } from '../../shared/native/uvpoll.js';
import type { Slot, UserQuota } from '../quota.js';
import type { RefusalFields } from '../refusals.js';
import type { CurrentRule } from '../policy.js';
import type { CallRule, ProgramRule, SocketRule } from '../rules/model.js';
import { bindRulesFor, matchBind, matchSetsockopt, matchSocket, needsNoPrivilege, setsockoptRulesFor, type OptionRequest } from '../rules/match.js';
import {
  AF_INET, AF_INET6, AF_PACKET, SOCK_DGRAM, SOCK_STREAM, SOL_IP, SOL_IPV6, SO_BINDTODEVICE, SO_REUSEPORT,
  decodeInetSockaddr, domainName, optionName, protocolName, typeName,
} from '../rules/names.js';
import { WIDENING_OPTIONS } from './filter.js';
import { pageChunks, type Chunk, type MemoryReader, type ReadHandle, type ReadResult } from './memread.js';
import { AUDIT_ARCH_X86_64, addFd, continueCall, fail, idValid, receive, setSyncWakeUp, succeed, type Notification } from './notify.js';
import {
  fetchFd, pinTarget, releaseTarget, runningBinary, socketAsRoot, socketNetns, targetNetnsIno, unprivilegedPortStart,
  type Target,
} from './operations.js';
import { AT_EMPTY_PATH, EPERM, NR, SOCK_CLOEXEC, SOCK_NONBLOCK } from './numbers.js';

const EAGAIN = 11;
const EACCES = 13;
const EFAULT = 14;
const EINVAL = 22;
const SOCK_RAW = 3;
const ENOTSOCK = 88;
const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;
const IFNAMSIZ = 16;
/** Longest exec path read for the audit record. */
const PATH_MAX = 4096;
/**
 * Notifications served per wake-up of this listener, that is per turn of
 * the event loop (libuv runs each ready watcher's callback once per turn).
 * Small, so that listeners take turns: a program flooding trapped calls
 * from many threads gets K per turn like every other program, and another
 * user's ready listener waits at most one turn (K calls of each busy
 * listener, tens of microseconds each) instead of until the flood runs
 * dry. A larger K would buy a flooding program little (a turn costs one
 * epoll_wait) and cost everyone else latency.
 */
const BATCH = 4;

/** dispatch's answer when the call is answered later, after a read on the thread pool. */
const PENDING = Symbol('pending');
type Outcome = void | typeof PENDING;

/** What the supervisor needs to know of its session. */
export interface SupervisedProgram {
  readonly uid: number;
  /** The program's rule in the rules loaded now, or why none serves it any more. */
  rule(): CurrentRule;
  readonly binary: { dev: number; ino: number };
  readonly launcherPid: number;
  /** The session's program has exited: whatever survives it gets nothing. */
  ended(): boolean;
  /** The user's counts: notifications in flight, fds held. */
  readonly quota: UserQuota;
  /** Reads of program memory on the thread pool. */
  readonly reader: MemoryReader;
  /** A grant record with the session's identity fields filled in (never rate-limited). */
  audit(event: 'grant', fields: Record<string, unknown>): void;
  /** A refusal record, through the session's rate limiter unless `always`. */
  refuse(fields: RefusalFields, always?: boolean): void;
  /** Whether the next refusal gets a record of its own (else it is only counted: its details need no read). */
  refusalDetailed(): boolean;
  /** Kill the session (a deadline overrun): its cgroup and program; audited as a kill record. */
  kill(reason: string): void;
  log(message: string): void;
}

const int32 = (v: bigint): number => Number(BigInt.asIntN(32, v));
const ruleRef = (r: { at: { file: string; section: string } }) => ({ file: r.at.file, section: r.at.section });

function callName(nr: number): string {
  switch (nr) {
    case NR.socket: return 'socket';
    case NR.bind: return 'bind';
    case NR.setsockopt: return 'setsockopt';
    case NR.execve: return 'execve';
    case NR.execveat: return 'execveat';
    default: return `syscall ${nr}`;
  }
}

export class Supervisor {
  private readonly watch: FdWatch;
  /** The launcher's one exec of the verified binary has not happened yet. */
  private execPending = true;
  private closed = false;
  /** Reads on the thread pool, cancelled (delivered as such) on close. */
  private readonly reads = new Set<ReadHandle>();

  constructor(private readonly listener: number, private readonly prog: SupervisedProgram, private readonly onHangup: () => void) {
    setSyncWakeUp(listener);
    this.watch = new FdWatch(listener, READABLE, () => this.onReadable());
  }

  /** Unwatch and close the listener: trapped calls of any survivor now fail with ENOSYS. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.watch.close();
    // Their continuations see `closed` and only release what they hold.
    for (const r of [...this.reads]) r.cancel();
  }

  private onReadable(): void {
    for (let i = 0; i < BATCH && !this.closed; i++) {
      const revents = pollNow(this.listener, POLLIN);
      if ((revents & POLLIN) === 0) {
        // libuv reports a bare hang-up (last task gone) as readable.
        if (revents & POLLHUP) this.onHangup();
        return;
      }
      const n = receive(this.listener);
      if (n) this.serve(n);
    }
  }

  private serve(n: Notification): void {
    const slot = this.prog.quota.takeNotification();
    if (typeof slot === 'string') return this.overQuota(n, slot);
    let target: Target | null = null;
    let outcome: Outcome = undefined;
    try {
      target = pinTarget(this.listener, n.id, n.pid);
      if (!target) return; // gone: nobody waits for an answer
      outcome = this.dispatch(n, target, slot);
    } catch (e) {
      this.failSafe(n, e);
    } finally {
      // A pending call's continuation releases these.
      if (outcome !== PENDING) {
        if (target) releaseTarget(target);
        slot.release();
      }
    }
  }

  /** Handling went wrong: the call fails closed. */
  private failSafe(n: Notification, e: unknown): void {
    const why = (e as Error).message;
    this.prog.log(`notification for pid ${n.pid} call ${n.nr}: ${why}; answered EPERM`);
    if (this.closed) return;
    try {
      fail(this.listener, n.id, EPERM);
    } catch {
      return; // already answered (its record is written) or the caller is gone: nothing was refused
    }
    // A refusal like any other: the admin sees it in the audit log, not only in the broker's log.
    this.prog.refuse({ pid: n.pid, call: registerCall(n), errno: 'EPERM', reason: `the broker failed to handle the call: ${why}` }, true);
  }

  /** The user has as many notifications in flight as allowed: answer at once, hold nothing. */
  private overQuota(n: Notification, reason: string): void {
    try {
      this.refuse(n, { name: callName(n.nr), args: {} }, EAGAIN, reason);
    } catch (e) {
      this.failSafe(n, e);
    }
  }

  private dispatch(n: Notification, target: Target, slot: Slot): Outcome {
    const isExec = n.nr === NR.execve || n.nr === NR.execveat;
    if (n.arch !== AUDIT_ARCH_X86_64) return this.refuse(n, { name: `syscall ${n.nr}`, args: {} }, EPERM, 'foreign architecture');
    // A child that outlives the program until the broker kills the session
    // must not be served in that window.
    if (this.prog.ended()) return this.refuse(n, registerCall(n), EPERM, 'the session is over: its program has exited');
    const rule = this.ruleNow(n, registerCall(n));
    if (!rule) return;
    if (isExec && this.execPending) return this.launcherExec(n, target);
    // /proc/TID/exe is the launched binary (every exec after the launcher's
    // is refused), verified root-owned on a root-owned path: no user's FUSE
    // server answers this fstat.
    const now = runningBinary(target);
    if (now.dev !== this.prog.binary.dev || now.ino !== this.prog.binary.ino) {
      return this.refuse(n, { name: `syscall ${n.nr}`, args: {} }, EPERM, 'the process no longer runs the launched binary');
    }
    switch (n.nr) {
      case NR.socket: return this.socket(n, target, rule);
      case NR.bind: return this.bind(n, target, slot);
      case NR.setsockopt: return isWidening(n) ? this.setsockopt(n, target, slot) : this.privilegedSetsockopt(n, target, slot);
      case NR.execve:
      case NR.execveat: return this.laterExec(n, target, slot);
      default: return this.refuse(n, { name: `syscall ${n.nr}`, args: {} }, EPERM, 'call not handled by the broker');
    }
  }

  /**
   * The program's rule as loaded now; when none serves it any more, this
   * call is refused (with the rule that no longer names the client, if
   * there is one) and the answer is undefined.
   */
  private ruleNow(n: Notification, call: { name: string; args?: unknown }): ProgramRule | undefined {
    const now = this.prog.rule();
    if (now.rule) return now.rule;
    this.refuse(n, call, EPERM, now.reason, now.at ? { at: now.at } : undefined);
    return undefined;
  }

  private refuse(n: Notification, call: { name: string; args?: unknown }, errno: number, reason: string, rule?: { at: { file: string; section: string } }): void {
    // errnoName(11) is its alias EWOULDBLOCK; the quota's errno reads better by its usual name.
    const name = errno === EAGAIN ? 'EAGAIN' : errnoName(errno);
    this.prog.refuse({ pid: n.pid, rule: rule ? ruleRef(rule) : undefined, call, errno: name, reason });
    fail(this.listener, n.id, errno);
  }

  /** pidfd_getfd, counted against the user's fds (closeHeld gives it back); a string says why not. */
  private fetch(target: Target, fd: number): number | string {
    const over = this.prog.quota.takeFd();
    if (over) return over;
    try {
      return fetchFd(target, fd);
    } catch (e) {
      this.prog.quota.releaseFds(1);
      throw e;
    }
  }

  /** Close a counted fd on the thread pool; it leaves the user's count when the close returns. */
  private closeHeld(fd: number): void {
    closeOffLoopThen(fd, () => this.prog.quota.releaseFds(1));
  }

  /**
   * Read the program's memory on the thread pool; `then` runs on the loop
   * only if the notification still stands after the read (the read went
   * to whatever task has that tid: only a valid id makes it the program's).
   * From here the continuation owns the target, the slot and `cleanup`,
   * and releases them, unless `then` hands them to a further read.
   */
  private readThen(
    n: Notification, target: Target, slot: Slot, chunks: Chunk[], call: { name: string; args?: unknown },
    then: (r: ReadResult) => Outcome, cleanup?: () => void,
  ): typeof PENDING {
    const ref: { handle?: ReadHandle } = {};
    ref.handle = this.prog.reader.read(this.prog.quota, target.tid, chunks, slot, (r) => {
      if (ref.handle) this.reads.delete(ref.handle);
      let outcome: Outcome = undefined;
      try {
        if (this.closed || r.cancelled) return;
        if (r.overrun) return this.overran(n, call);
        if (!idValid(this.listener, n.id)) return;
        // The program may have exited while the read ran: a survivor gets nothing.
        if (this.prog.ended()) return this.refuse(n, call, EPERM, 'the session is over: its program has exited');
        outcome = then(r);
      } catch (e) {
        this.failSafe(n, e);
      } finally {
        if (outcome !== PENDING) {
          cleanup?.();
          releaseTarget(target);
          slot.release();
        }
      }
    });
    this.reads.add(ref.handle);
    return PENDING;
  }

  /** A read ran past its deadline: memory the program can stall (FUSE). Record, kill, fail the call. */
  private overran(n: Notification, call: { name: string; args?: unknown }): void {
    const why = `a read of the program's memory ran longer than ${this.prog.reader.deadlineMs} ms`;
    this.prog.refuse({ pid: n.pid, call, errno: errnoName(EFAULT), reason: `${why}: the session is killed` }, true);
    this.prog.kill(why);
    fail(this.listener, n.id, EFAULT);
  }

  /**
   * The launcher's execveat(binary fd, "", ..., AT_EMPTY_PATH). Safe to let
   * the kernel run: the launcher is our code, non-dumpable since it dropped
   * privileges (the user cannot write its memory), and the fd it execs is
   * checked here to be the very file the broker verified (root-owned, on a
   * root-owned path: its fstat asks no user's server).
   */
  private launcherExec(n: Notification, target: Target): Outcome {
    const call = { name: n.nr === NR.execve ? 'execve' : 'execveat', args: {} };
    if (n.pid !== this.prog.launcherPid || n.nr !== NR.execveat || (int32(n.args[4]) & AT_EMPTY_PATH) === 0) {
      return this.refuse(n, call, EPERM, 'exec before the launcher ran the verified binary');
    }
    const fd = this.fetch(target, int32(n.args[0]));
    if (typeof fd === 'string') return this.refuse(n, call, EAGAIN, fd);
    try {
      const st = fstatSync(fd);
      if (st.dev !== this.prog.binary.dev || st.ino !== this.prog.binary.ino) {
        return this.refuse(n, call, EPERM, 'the launcher\'s exec fd is not the verified binary');
      }
    } finally {
      this.closeHeld(fd);
    }
    if (!idValid(this.listener, n.id)) return;
    this.execPending = false;
    continueCall(this.listener, n.id);
  }

  private laterExec(n: Notification, target: Target, slot: Slot): Outcome {
    const name = n.nr === NR.execve ? 'execve' : 'execveat';
    const why = 'an elevated program may not execute other programs: they would inherit its grants';
    // The path is for the record only: not worth a read when the refusal
    // will only be counted in a summary.
    if (!this.prog.refusalDetailed()) return this.refuse(n, { name, args: {} }, EPERM, why);
    const address = n.nr === NR.execve ? n.args[0] : n.args[1];
    return this.readString(n, target, slot, { name, args: {} }, address, Buffer.alloc(0), (path) => {
      this.refuse(n, { name, args: { path } }, EPERM, why);
    });
  }

  /**
   * A NUL-terminated string of at most PATH_MAX bytes, for records only:
   * one page at a time (a string need not be followed by mapped memory),
   * undefined if unreadable, with '…' when cut short.
   */
  private readString(
    n: Notification, target: Target, slot: Slot, call: { name: string; args?: unknown },
    address: bigint, sofar: Buffer, done: (s: string | undefined) => void,
  ): typeof PENDING {
    const [chunk] = pageChunks(address, PATH_MAX - sofar.length);
    return this.readThen(n, target, slot, [chunk], call, (r) => {
      if (!r.data) return done(sofar.length > 0 ? `${sofar.toString('utf8')}…` : undefined);
      const nul = r.data.indexOf(0);
      if (nul >= 0) return done(Buffer.concat([sofar, r.data.subarray(0, nul)]).toString('utf8'));
      const all = Buffer.concat([sofar, r.data]);
      if (r.data.length < chunk.len || all.length >= PATH_MAX) return done(`${all.toString('utf8')}…`);
      return this.readString(n, target, slot, call, chunk.address + BigInt(chunk.len), all, done);
    });
  }

  private socket(n: Notification, target: Target, program: ProgramRule): Outcome {
    const domain = int32(n.args[0]), type = int32(n.args[1]), protocol = int32(n.args[2]);
    const base = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
    const call = socketCall(n);
    const rule = matchSocket(program, domain, base, protocol);
    if (!rule) return this.refuse(n, call, EPERM, 'no [socket.*] section of the rule allows these arguments', program);
    if (rule.deny) return this.refuse(n, call, rule.errno, deniedBy(rule), rule);
    const over = this.prog.quota.takeFd();
    if (over) return this.refuse(n, call, EAGAIN, over, rule);
    let fd: number;
    try {
      fd = socketAsRoot(target, this.prog.uid, domain, base | (type & SOCK_NONBLOCK), protocol);
    } catch (e) {
      this.prog.quota.releaseFds(1);
      if (!(e instanceof SysError)) throw e;
      this.prog.audit('grant', { pid: n.pid, rule: ruleRef(rule), call, result: -1, errno: e.code, reason: e.message });
      fail(this.listener, n.id, e.errno);
      return;
    }
    try {
      // Install, record, then answer: the record is on disk before the
      // call returns the fd, and names the number the program gets.
      const newFd = addFd(this.listener, n.id, fd, (type & SOCK_CLOEXEC) !== 0);
      // Gone (its fd table with it), or interrupted: nothing was installed.
      if (newFd === null) return;
      this.prog.audit('grant', { pid: n.pid, rule: ruleRef(rule), call, result: newFd });
      if (!succeed(this.listener, n.id, BigInt(newFd))) {
        // The program died, or a signal of its own interrupted the call
        // between install and answer (the call starts over): the recorded
        // socket stays in its fd table, unannounced.
        this.prog.log(`notification for pid ${n.pid} call ${n.nr}: socket installed as fd ${newFd}, but the call was gone before its answer`);
      }
    } finally {
      // A raw or packet socket's close never lingers, even as the last
      // reference: close it on the loop (a thread-pool round trip saved per
      // call). Any other kind a numeric rule may create goes to the pool.
      if (base === SOCK_RAW || domain === AF_PACKET) {
        closeQuietly(fd);
        this.prog.quota.releaseFds(1);
      } else {
        this.closeHeld(fd);
      }
    }
  }

  /**
   * WIDENING_OPTIONS: follow-ups that need no privilege but turn a raw
   * socket into a packet forger. Decided by what the socket is, not by
   * where it came from: on a raw socket they need `header-included = allow`
   * in the rule for that socket kind; on any other socket they change
   * nothing a user could not do, and run as the program asked.
   */
  private setsockopt(n: Notification, target: Target, slot: Slot): Outcome {
    // Level and name as the kernel reads them: ints (the filter traps
    // whatever the upper 32 bits hold).
    const fdNum = int32(n.args[0]), level = int32(n.args[1]), name = int32(n.args[2]);
    const optlen = Number(BigInt.asUintN(32, n.args[4]));
    const option = WIDENING_OPTIONS.find((o) => o.level === level && o.name === name)?.text ?? `${level}:${name}`;
    const call = { name: 'setsockopt', args: { fd: fdNum, option } };
    // The raw socket's rule as loaded now; true: the call was refused;
    // false: not a raw socket (nothing to grant).
    const decide = (kind: { domain: number; type: number; protocol: number }): SocketRule | boolean => {
      const program = this.ruleNow(n, call);
      if (!program) return true;
      if (kind.type !== SOCK_RAW) return false;
      const rule = matchSocket(program, kind.domain, SOCK_RAW, kind.protocol);
      if (rule?.headerIncluded && !rule.deny) return rule;
      const reason = rule?.deny ? deniedBy(rule) : rule
        ? `[${rule.at.section}] does not allow ${option} (header-included = allow)`
        : `${option} on a raw socket no rule names`;
      this.refuse(n, call, rule?.errno ?? EPERM, reason, rule ?? program);
      return true;
    };
    return this.withSocket(n, target, fdNum, call, (fd, kind, release) => {
      if (decide(kind) === true) return;
      if (optlen > 256) { fail(this.listener, n.id, EINVAL); return; }
      // Acting on our own copy of the fd and of the value: whatever the
      // program does to its fd table or memory now changes nothing here.
      // The options trapped (WIDENING_OPTIONS) are set without the socket
      // lock since Linux 6.6 (inet_assign_bit), so a program thread
      // sleeping in sendmsg with the lock owned cannot make this wait.
      const act = (value: Buffer): void => {
        // Decided again: the rules may have been reloaded during the read.
        const rule = decide(kind);
        if (rule === true) return;
        const errno = setsockoptRaw(fd, level, name, value);
        if (rule) this.prog.audit('grant', { pid: n.pid, rule: ruleRef(rule), call, result: errno ? -1 : 0, errno: errno ? errnoName(errno) : undefined });
        if (errno) fail(this.listener, n.id, errno);
        else succeed(this.listener, n.id, 0n);
      };
      if (optlen === 0) return act(Buffer.alloc(0));
      return this.readThen(n, target, slot, pageChunks(n.args[3], optlen), call, (r) => {
        if (!r.data || r.data.length !== optlen) { fail(this.listener, n.id, r.errno ?? EFAULT); return; }
        act(r.data);
      }, release);
    });
  }

  /**
   * Fetch the program's fd `fdNum` (a counted dup) and run `body` on it if
   * it is a socket: ENOTSOCK otherwise, as the kernel would answer. The dup
   * is closed on the thread pool when `body` is done, or by the read it
   * hands `release` to (then `body` returns PENDING).
   */
  private withSocket(
    n: Notification, target: Target, fdNum: number, call: { name: string; args?: unknown },
    body: (fd: number, kind: { domain: number; type: number; protocol: number }, release: () => void) => Outcome,
  ): Outcome {
    let got: number | string;
    try {
      got = this.fetch(target, fdNum);
    } catch (e) {
      if (!(e instanceof SysError)) throw e;
      fail(this.listener, n.id, e.errno);
      return;
    }
    if (typeof got === 'string') return this.refuse(n, call, EAGAIN, got);
    const fd = got;
    let outcome: Outcome = undefined;
    try {
      // getsockopt of the socket's kind never waits; a non-socket answers ENOTSOCK at once.
      const kind = socketKind(fd);
      if (!kind) { fail(this.listener, n.id, ENOTSOCK); return; }
      outcome = body(fd, kind, () => this.closeHeld(fd));
      return outcome;
    } catch (e) {
      if (!(e instanceof SysError)) throw e;
      fail(this.listener, n.id, e.errno);
    } finally {
      // Our dup may be the last reference if the program closed its fd meanwhile.
      if (outcome !== PENDING) this.closeHeld(fd);
    }
  }

  /** Refuse when the socket lives in another network namespace than the program (one smuggled in). */
  private foreignSocket(fd: number, target: Target): boolean {
    const nsFd = socketNetns(fd);
    try {
      return fstatSync(nsFd).ino !== targetNetnsIno(target);
    } finally {
      closeQuietly(nsFd);
    }
  }

  /**
   * bind(): a privileged port, bound as root on the broker's dup of the
   * program's socket with the broker's one copy of the sockaddr, when a
   * [bind.*] section allows family, type, address and port.
   */
  private bind(n: Notification, target: Target, slot: Slot): Outcome {
    const fdNum = int32(n.args[0]);
    const addrlen = Number(BigInt.asUintN(32, n.args[2]));
    const call = { name: 'bind', args: { fd: fdNum } };
    return this.withSocket(n, target, fdNum, call, (fd, kind, release) => {
      // A unix (or other) socket with a sockaddr of the same length: nothing
      // the broker elevates. The kernel runs it with the user's rights.
      if (kind.domain !== AF_INET && kind.domain !== AF_INET6) { continueCall(this.listener, n.id); return; }
      return this.readThen(n, target, slot, pageChunks(n.args[1], addrlen), call, (r) => {
        if (!r.data || r.data.length !== addrlen) { fail(this.listener, n.id, r.errno ?? EFAULT); return; }
        this.decideBind(n, target, fd, fdNum, kind, r.data);
      }, release);
    });
  }

  private decideBind(
    n: Notification, target: Target, fd: number, fdNum: number,
    kind: { domain: number; type: number; protocol: number }, sockaddr: Buffer,
  ): void {
    const addr = decodeInetSockaddr(sockaddr);
    // SECCOMP_USER_NOTIF_FLAG_CONTINUE below is safe: the kernel then runs
    // bind() with the user's own credentials on whatever the program's
    // memory and fd table hold by then, so a privileged port fails for the
    // user (EACCES) whatever was written there after our read.
    if (!addr || addr.family !== kind.domain) { continueCall(this.listener, n.id); return; }
    const call = {
      name: 'bind',
      args: { fd: fdNum, family: domainName(kind.domain), type: typeName(kind.type), address: addr.address, port: addr.port },
    };
    if (this.foreignSocket(fd, target)) {
      return this.refuse(n, call, EACCES, 'the socket belongs to another network namespace than the program');
    }
    // The sysctl as the socket's own namespace has it.
    const nsFd = socketNetns(fd);
    let start: number;
    try {
      start = unprivilegedPortStart(nsFd);
    } finally {
      closeQuietly(nsFd);
    }
    if (addr.port === 0 || addr.port >= start) { continueCall(this.listener, n.id); return; }
    // After the read: the rules loaded now decide.
    const program = this.ruleNow(n, call);
    if (!program) return;
    // A bind no section matches gets the grant sections' errno (they agree); deny sections answer only their own.
    const sections = bindRulesFor(program, kind.domain, kind.type).filter((c) => !c.deny);
    const rule = matchBind(program, kind.domain, kind.type, addr.address, addr.port);
    if (!rule) {
      const why = sections.length > 0 ? 'no [bind.*] section allows this address and port' : 'no [bind.*] section for this family and type';
      return this.refuse(n, call, sections[0]?.errno ?? EACCES, why, program);
    }
    if (rule.deny) return this.refuse(n, call, rule.errno, deniedBy(rule), rule);
    const expected = kind.type === SOCK_STREAM ? IPPROTO_TCP : kind.type === SOCK_DGRAM ? IPPROTO_UDP : -1;
    if (kind.protocol !== expected) {
      return this.refuse(n, call, rule.errno, `protocol ${protocolName(kind.domain, kind.protocol) ?? kind.protocol} is not the default for ${typeName(kind.type)}`, rule);
    }
    if (getsockoptInt(fd, SOL_SOCKET, SO_REUSEPORT, 'SO_REUSEPORT') !== 0 && !rule.reusePort) {
      return this.refuse(n, call, rule.errno, `SO_REUSEPORT is set: joining a port group needs reuseport = allow in [${rule.at.section}]`, rule);
    }
    if (!idValid(this.listener, n.id)) return;
    const errno = bindRaw(fd, sockaddr);
    this.prog.audit('grant', { pid: n.pid, rule: ruleRef(rule), call, result: errno ? -1 : 0, errno: errno ? errnoName(errno) : undefined });
    if (errno) fail(this.listener, n.id, errno);
    else succeed(this.listener, n.id, 0n);
  }

  /**
   * setsockopt() of an option a [setsockopt.*] section names: the value is
   * read once and, if the section allows it, set as root on the broker's
   * dup of the socket with the broker's copy of the value.
   */
  private privilegedSetsockopt(n: Notification, target: Target, slot: Slot): Outcome {
    const fdNum = int32(n.args[0]), level = int32(n.args[1]), name = int32(n.args[2]);
    const optlen = Number(BigInt.asUintN(32, n.args[4]));
    const option = optionName(level, name) ?? `${level}:${name}`;
    const call: { name: string; args: Record<string, unknown> } = { name: 'setsockopt', args: { fd: fdNum, option } };
    const isDevice = level === SOL_SOCKET && name === SO_BINDTODEVICE;
    // What the kernel reads: an interface name up to IFNAMSIZ-1, or an int
    // (fewer bytes: one byte for SOL_IP options, 0 for SOL_IPV6, EINVAL for SOL_SOCKET).
    const len = Math.min(optlen, isDevice ? IFNAMSIZ - 1 : 4);
    if (len === 0 || (!isDevice && len < 4 && level === SOL_SOCKET)) return this.refuse(n, call, EINVAL, 'option value too short');
    return this.withSocket(n, target, fdNum, call, (fd, _kind, release) =>
      this.readThen(n, target, slot, pageChunks(n.args[3], len), call, (r) => {
        if (!r.data || r.data.length !== len) { fail(this.listener, n.id, r.errno ?? EFAULT); return; }
        const value = optionValue(r.data, level, isDevice);
        call.args.value = 'interface' in value ? value.interface : value.int;
        if (this.foreignSocket(fd, target)) {
          return this.refuse(n, call, EPERM, 'the socket belongs to another network namespace than the program');
        }
        // No privilege needed: the kernel checks it again with the user's rights (CONTINUE is safe).
        if (needsNoPrivilege(level, name, value)) { continueCall(this.listener, n.id); return; }
        // After the read: the rules loaded now decide.
        const program = this.ruleNow(n, call);
        if (!program) return;
        const rule = matchSetsockopt(program, level, name, value);
        if (!rule) {
          const section = setsockoptRulesFor(program).find((c) => c.level === level && c.option === name);
          if (section?.deny) return this.refuse(n, call, EPERM, `no section grants the value ([${section.at.section}] denies other values)`, section);
          return this.refuse(n, call, section?.errno ?? EPERM, `the value is not one [${section?.at.section ?? 'setsockopt.*'}] allows`, section ?? program);
        }
        if (rule.deny) return this.refuse(n, call, rule.errno, deniedBy(rule), rule);
        if (!idValid(this.listener, n.id)) return;
        const errno = setsockoptRaw(fd, level, name, r.data);
        this.prog.audit('grant', { pid: n.pid, rule: ruleRef(rule), call, result: errno ? -1 : 0, errno: errno ? errnoName(errno) : undefined });
        if (errno) fail(this.listener, n.id, errno);
        else succeed(this.listener, n.id, 0n);
      }, release));
  }
}

/** The refusal reason of a call an `as = deny` section matched: the admin's own answer. */
function deniedBy(rule: CallRule): string {
  return `[${rule.at.section}] denies it`;
}

/** The value as the kernel would read it from these bytes. */
function optionValue(data: Buffer, level: number, isDevice: boolean): OptionRequest {
  if (isDevice) {
    const nul = data.indexOf(0);
    return { interface: data.subarray(0, nul < 0 ? data.length : nul).toString('latin1') };
  }
  if (data.length >= 4) return { int: data.readUInt32LE(0) };
  return { int: level === SOL_IP ? data[0] : level === SOL_IPV6 ? 0 : data[0] };
}

function socketCall(n: Notification): { name: string; args: Record<string, unknown> } {
  const domain = int32(n.args[0]), type = int32(n.args[1]), protocol = int32(n.args[2]);
  const base = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
  return { name: 'socket', args: { domain: domainName(domain), type: typeName(base) + flagNames(type), protocol: protocolName(domain, protocol) } };
}

/** A trapped call as its registers show it (nothing read from memory), for a refusal before its handler runs. */
function registerCall(n: Notification): { name: string; args: Record<string, unknown> } {
  const fd = int32(n.args[0]);
  switch (n.nr) {
    case NR.socket: return socketCall(n);
    case NR.bind: return { name: 'bind', args: { fd } };
    case NR.setsockopt: {
      const level = int32(n.args[1]), name = int32(n.args[2]);
      const option = optionName(level, name) ?? WIDENING_OPTIONS.find((o) => o.level === level && o.name === name)?.text ?? `${level}:${name}`;
      return { name: 'setsockopt', args: { fd, option } };
    }
    default: return { name: callName(n.nr), args: {} };
  }
}

/** A setsockopt the filter traps for WIDENING_OPTIONS (the others are [setsockopt.*] sections). */
function isWidening(n: Notification): boolean {
  const level = int32(n.args[1]), name = int32(n.args[2]);
  return WIDENING_OPTIONS.some((o) => o.level === level && o.name === name);
}

function flagNames(type: number): string {
  return (type & SOCK_NONBLOCK ? '|nonblock' : '') + (type & SOCK_CLOEXEC ? '|cloexec' : '');
}
