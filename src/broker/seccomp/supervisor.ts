/*
 * One program's seccomp listener: notification -> check -> act -> answer.
 *
 * MUST:
 *  - pin the trapping task and confirm NOTIF_ID_VALID before looking at it,
 *    and again after every read of its memory or fds, before acting;
 *  - re-check on every notification that the task still runs the binary
 *    the broker launched (device and inode), except for the launcher's own
 *    single exec of that binary;
 *  - answer every notification it takes, and fail closed (EPERM) when
 *    handling goes wrong: a trapped call must never hang or succeed by
 *    accident;
 *  - use SECCOMP_USER_NOTIF_FLAG_CONTINUE only for the launcher's exec of
 *    the verified fd, never as the outcome of a decision that rests on
 *    memory the program can still change;
 *  - keep a grant closed over its follow-ups: WIDENING_OPTIONS on a raw
 *    socket only where the rule for that socket kind allows them;
 *  - never block the loop on the program's objects: fds fetched from it are
 *    closed on the thread pool.
 */
import { fstatSync } from 'node:fs';
import {
  POLLHUP, POLLIN, SysError, closeOffLoop, errnoName, pollNow, setsockoptRaw, socketKind,
} from '../../shared/native/libc.js';
import { FdWatch, READABLE } from '../../shared/native/uvpoll.js';
import type { ProgramRule } from '../rules/model.js';
import { matchSocket } from '../rules/match.js';
import { domainName, protocolName, typeName } from '../rules/names.js';
import { WIDENING_OPTIONS } from './filter.js';
import { AUDIT_ARCH_X86_64, addFdAndReturn, continueCall, fail, idValid, receive, setSyncWakeUp, succeed, type Notification } from './notify.js';
import { fetchFd, pinTarget, readMemory, readString, releaseTarget, runningBinary, socketAsRoot, type Target } from './operations.js';

const NR = { socket: 41, setsockopt: 54, execve: 59, execveat: 322 } as const;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const AT_EMPTY_PATH = 0x1000;
const EPERM = 1;
const EINVAL = 22;
const SOCK_RAW = 3;
const ENOTSOCK = 88;
/** Notifications served per wake-up before yielding to other sessions. */
const BATCH = 16;

/** What the supervisor needs to know of its session. */
export interface SupervisedProgram {
  readonly uid: number;
  readonly program: ProgramRule;
  readonly binary: { dev: number; ino: number };
  readonly launcherPid: number;
  /** The session's program has exited: whatever survives it gets nothing. */
  ended(): boolean;
  /** Audit with the session's identity fields filled in. */
  audit(event: 'grant' | 'refuse', fields: Record<string, unknown>): void;
  log(message: string): void;
}

const int32 = (v: bigint): number => Number(BigInt.asIntN(32, v));
const ruleRef = (r: { at: { file: string; section: string } }) => ({ file: r.at.file, section: r.at.section });

export class Supervisor {
  private readonly watch: FdWatch;
  /** The launcher's one exec of the verified binary has not happened yet. */
  private execPending = true;

  constructor(private readonly listener: number, private readonly prog: SupervisedProgram, private readonly onHangup: () => void) {
    setSyncWakeUp(listener);
    this.watch = new FdWatch(listener, READABLE, () => this.onReadable());
  }

  /** Unwatch and close the listener: trapped calls of any survivor now fail with ENOSYS. */
  close(): void {
    this.watch.close();
  }

  private onReadable(): void {
    for (let i = 0; i < BATCH; i++) {
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
    let target: Target | null = null;
    try {
      target = pinTarget(this.listener, n.id, n.pid);
      if (!target) return; // gone: nobody waits for an answer
      this.dispatch(n, target);
    } catch (e) {
      this.prog.log(`notification for pid ${n.pid} call ${n.nr}: ${(e as Error).message}; answered EPERM`);
      try {
        fail(this.listener, n.id, EPERM);
      } catch {
        // already answered (ADDFD|SEND went through) or gone
      }
    } finally {
      if (target) releaseTarget(target);
    }
  }

  private dispatch(n: Notification, target: Target): void {
    const isExec = n.nr === NR.execve || n.nr === NR.execveat;
    if (n.arch !== AUDIT_ARCH_X86_64) return this.refuse(n, { name: `syscall ${n.nr}`, args: {} }, EPERM, 'foreign architecture');
    // A child that outlives the program until the broker kills the session
    // must not be served in that window.
    if (this.prog.ended()) {
      const name = Object.entries(NR).find(([, nr]) => nr === n.nr)?.[0] ?? `syscall ${n.nr}`;
      return this.refuse(n, { name, args: {} }, EPERM, 'the session is over: its program has exited');
    }
    if (isExec && this.execPending) return this.launcherExec(n, target);
    const now = runningBinary(target);
    if (now.dev !== this.prog.binary.dev || now.ino !== this.prog.binary.ino) {
      return this.refuse(n, { name: `syscall ${n.nr}`, args: {} }, EPERM, 'the process no longer runs the launched binary');
    }
    switch (n.nr) {
      case NR.socket: return this.socket(n, target);
      case NR.setsockopt: return this.setsockopt(n, target);
      case NR.execve:
      case NR.execveat: return this.laterExec(n, target);
      default: return this.refuse(n, { name: `syscall ${n.nr}`, args: {} }, EPERM, 'call not handled by the broker');
    }
  }

  private refuse(n: Notification, call: object, errno: number, reason: string, rule?: { at: { file: string; section: string } }): void {
    this.prog.audit('refuse', { pid: n.pid, rule: rule ? ruleRef(rule) : undefined, call, errno: errnoName(errno), reason });
    fail(this.listener, n.id, errno);
  }

  /**
   * The launcher's execveat(binary fd, "", ..., AT_EMPTY_PATH). Safe to let
   * the kernel run: the launcher is our code, non-dumpable since it dropped
   * privileges (the user cannot write its memory), and the fd it execs is
   * checked here to be the very file the broker verified.
   */
  private launcherExec(n: Notification, target: Target): void {
    const call = { name: n.nr === NR.execve ? 'execve' : 'execveat', args: {} };
    if (n.pid !== this.prog.launcherPid || n.nr !== NR.execveat || (int32(n.args[4]) & AT_EMPTY_PATH) === 0) {
      return this.refuse(n, call, EPERM, 'exec before the launcher ran the verified binary');
    }
    const fd = fetchFd(target, int32(n.args[0]));
    try {
      const st = fstatSync(fd);
      if (st.dev !== this.prog.binary.dev || st.ino !== this.prog.binary.ino) {
        return this.refuse(n, call, EPERM, 'the launcher\'s exec fd is not the verified binary');
      }
    } finally {
      closeOffLoop(fd);
    }
    if (!idValid(this.listener, n.id)) return;
    this.execPending = false;
    continueCall(this.listener, n.id);
  }

  private laterExec(n: Notification, target: Target): void {
    const name = n.nr === NR.execve ? 'execve' : 'execveat';
    const path = readString(target, n.nr === NR.execve ? n.args[0] : n.args[1]);
    this.refuse(n, { name, args: { path } }, EPERM,
      'an elevated program may not execute other programs: they would inherit its grants');
  }

  private socket(n: Notification, target: Target): void {
    const domain = int32(n.args[0]), type = int32(n.args[1]), protocol = int32(n.args[2]);
    const base = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
    const call = {
      name: 'socket',
      args: { domain: domainName(domain), type: typeName(base) + flagNames(type), protocol: protocolName(domain, protocol) },
    };
    const rule = matchSocket(this.prog.program, domain, base, protocol);
    if (!rule) return this.refuse(n, call, EPERM, 'no [socket.*] section of the rule allows these arguments');
    let fd: number;
    try {
      fd = socketAsRoot(target, this.prog.uid, domain, base | (type & SOCK_NONBLOCK), protocol);
    } catch (e) {
      if (!(e instanceof SysError)) throw e;
      this.prog.audit('grant', { pid: n.pid, rule: ruleRef(rule), call, result: -1, errno: e.code, reason: e.message });
      fail(this.listener, n.id, e.errno);
      return;
    }
    try {
      const newFd = addFdAndReturn(this.listener, n.id, fd, (type & SOCK_CLOEXEC) !== 0);
      if (newFd === null) return; // the task died: its fd table is gone with it
      this.prog.audit('grant', { pid: n.pid, rule: ruleRef(rule), call, result: newFd });
    } finally {
      closeOffLoop(fd);
    }
  }

  /**
   * WIDENING_OPTIONS: follow-ups that need no privilege but turn a raw
   * socket into a packet forger. Decided by what the socket is, not by
   * where it came from: on a raw socket they need `header-included = allow`
   * in the rule for that socket kind; on any other socket they change
   * nothing a user could not do, and run as the program asked.
   */
  private setsockopt(n: Notification, target: Target): void {
    // Level and name as the kernel reads them: ints (the filter traps
    // whatever the upper 32 bits hold).
    const fdNum = int32(n.args[0]), level = int32(n.args[1]), name = int32(n.args[2]);
    const optlen = Number(BigInt.asUintN(32, n.args[4]));
    const option = WIDENING_OPTIONS.find((o) => o.level === level && o.name === name)?.text ?? `${level}:${name}`;
    const call = { name: 'setsockopt', args: { fd: fdNum, option } };
    let ours: number;
    try {
      ours = fetchFd(target, fdNum);
    } catch (e) {
      if (!(e instanceof SysError)) throw e;
      fail(this.listener, n.id, e.errno);
      return;
    }
    try {
      const kind = socketKind(ours);
      if (!kind) { fail(this.listener, n.id, ENOTSOCK); return; }
      const rule = kind.type === SOCK_RAW ? matchSocket(this.prog.program, kind.domain, SOCK_RAW, kind.protocol) : undefined;
      if (kind.type === SOCK_RAW && !rule?.headerIncluded) {
        const reason = rule
          ? `[${rule.at.section}] does not allow ${option} (header-included = allow)`
          : `${option} on a raw socket no rule names`;
        return this.refuse(n, call, rule?.errno ?? EPERM, reason, rule);
      }
      if (optlen > 256) { fail(this.listener, n.id, EINVAL); return; }
      const value = readMemory(target, n.args[3], optlen);
      if (!idValid(this.listener, n.id)) return;
      // Acting on our own copy of the fd and of the value: whatever the
      // program does to its fd table or memory now changes nothing here.
      const errno = setsockoptRaw(ours, level, name, value);
      if (rule) this.prog.audit('grant', { pid: n.pid, rule: ruleRef(rule), call, result: errno ? -1 : 0, errno: errno ? errnoName(errno) : undefined });
      if (errno) fail(this.listener, n.id, errno);
      else succeed(this.listener, n.id, 0n);
    } catch (e) {
      if (!(e instanceof SysError)) throw e;
      fail(this.listener, n.id, e.errno);
    } finally {
      // Our dup may be the last reference if the program closed its fd meanwhile.
      closeOffLoop(ours);
    }
  }
}

function flagNames(type: number): string {
  return (type & SOCK_NONBLOCK ? '|nonblock' : '') + (type & SOCK_CLOEXEC ? '|cloexec' : '');
}
