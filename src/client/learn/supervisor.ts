/*
 * The learning supervisor: the broker's listener loop with a learning
 * policy instead of a rule. For each trapped call it finds out whether
 * the call would fail without privilege (privilege.ts); if so it asks the
 * policy, and a granted call is performed as root by the broker's own
 * operations (socketAsRoot, bind and setsockopt on a dup of the program's
 * socket), so that a learned rule behaves the same under the broker. The
 * rest runs with the program's own credentials (CONTINUE).
 *
 * MUST (as the broker's supervisor):
 *  - pin the trapping task and confirm NOTIF_ID_VALID before acting, and
 *    again after every read of its memory or fds, and after waiting for an
 *    answer from the admin;
 *  - act on learn's own copy of the program's memory, read once;
 *  - answer every notification it takes (EPERM when handling fails);
 *  - CONTINUE only where the kernel's own check with the program's
 *    credentials decides what the program may do (a call that needs no
 *    privilege, or a denial);
 *  - let exactly the launcher's exec of the verified binary through, and
 *    refuse every later exec, as the broker does.
 *
 * Unlike the broker it reads the program's memory on the loop: learn
 * serves one program of the admin's choosing, not every user at once.
 */
import { fstatSync } from 'node:fs';
import {
  O_RDONLY, POLLHUP, POLLIN, SOL_SOCKET, SysError, bindRaw, closeOffLoop, closeQuietly, errnoName, getsockoptInt, openat, pollNow,
  readProcessMemory, setsockoptRaw, socketKind,
} from '../../shared/native/libc.js';
import { FdWatch, READABLE } from '../../shared/native/uvpoll.js';
import { needsNoPrivilege } from '../../broker/rules/match.js';
import {
  AF_INET, AF_INET6, IFNAMSIZ, SOCK_DGRAM, SOCK_RAW, SOCK_STREAM, SOL_IP, SOL_IPV6, SO_BINDTODEVICE, SO_REUSEPORT,
  decodeInetSockaddr, optionName, protocolName, typeName,
} from '../../broker/rules/names.js';
import { WIDENING_OPTIONS } from '../../broker/seccomp/filter.js';
import { AUDIT_ARCH_X86_64, addFd, continueCall, fail, idValid, receive, setSyncWakeUp, succeed, type Notification } from '../../broker/seccomp/notify.js';
import { fetchFd, pinTarget, releaseTarget, socketAsRoot, socketNetns, targetNetnsIno, type Target } from '../../broker/seccomp/operations.js';
import { type BindCall, type HeaderCall, type LearnedCall, type OptionValue, type SetsockoptCall, type SocketCall, describeCall, socketKey } from './calls.js';
import { type Answer, Learned } from './record.js';
import { grantable } from './rule-text.js';
import { ownedByOurUserns, portNeedsPrivilege } from './privilege.js';
import { AT_EMPTY_PATH, EPERM, NR, SOCK_CLOEXEC, SOCK_NONBLOCK } from '../../broker/seccomp/numbers.js';

const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;
/** getsockopt(SO_BINDTOIFINDEX): the device a socket is bound to, 0 for none (5.0+). */
const SO_BINDTOIFINDEX = 62;
const PATH_MAX = 4096;
const BATCH = 4;

export interface LearnedProgram {
  uid: number;
  binary: { dev: number; ino: number };
  launcherPid: number;
  /** The program's name for notes. */
  name: string;
}

const int32 = (v: bigint): number => Number(BigInt.asIntN(32, v));

/**
 * What becomes of a trapped call: the kernel decides it with the program's
 * credentials (CONTINUE), it was answered in place, or learn gets the
 * call's answer (the policy's) and acts on it.
 */
type Step = 'continue' | 'answered' | { call: LearnedCall; act: (answer: Answer) => void; done?: () => void };

export class LearningSupervisor {
  private readonly watch: FdWatch;
  private execPending = true;
  private closed = false;

  constructor(private readonly listener: number, private readonly prog: LearnedProgram, private readonly learned: Learned,
    private readonly log: (message: string) => void, private readonly onHangup: () => void) {
    setSyncWakeUp(listener);
    this.watch = new FdWatch(listener, READABLE, () => this.onReadable());
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.watch.close();
  }

  private onReadable(): void {
    for (let i = 0; i < BATCH && !this.closed; i++) {
      const revents = pollNow(this.listener, POLLIN);
      if ((revents & POLLIN) === 0) {
        if (revents & POLLHUP) this.onHangup();
        return;
      }
      const n = receive(this.listener);
      if (n) this.serve(n);
    }
  }

  private serve(n: Notification): void {
    const target = pinTarget(this.listener, n.id, n.pid);
    if (!target) return;
    let step: Step;
    try {
      step = this.step(n, target);
    } catch (e) {
      releaseTarget(target);
      return this.failSafe(n, e);
    }
    if (step === 'continue' || step === 'answered') {
      releaseTarget(target);
      if (step === 'continue') continueCall(this.listener, n.id);
      return;
    }
    const { call, act, done } = step;
    const finish = (answer: Answer): void => {
      try {
        // The admin may have taken a while: the task must still be waiting.
        if (this.closed || !idValid(this.listener, n.id)) return;
        act(answer);
      } catch (e) {
        this.failSafe(n, e);
      } finally {
        done?.();
        releaseTarget(target);
      }
    };
    const answer = this.learned.answer(call);
    if (answer instanceof Promise) {
      answer.then(finish, (e: unknown) => {
        done?.();
        releaseTarget(target);
        this.failSafe(n, e);
      });
    } else {
      finish(answer);
    }
  }

  private failSafe(n: Notification, e: unknown): void {
    this.log(`call ${n.nr} of pid ${n.pid}: ${(e as Error).message}; answered EPERM`);
    if (!this.closed) fail(this.listener, n.id, EPERM);
  }

  private step(n: Notification, target: Target): Step {
    if (n.arch !== AUDIT_ARCH_X86_64) throw new Error('foreign architecture');
    switch (n.nr) {
      case NR.execve:
      case NR.execveat: return this.exec(n, target);
      case NR.socket: return this.socket(n, target);
      case NR.bind: return this.withSocket(n, target, (fd) => this.bind(n, target, fd));
      case NR.setsockopt: {
        const level = int32(n.args[1]), name = int32(n.args[2]);
        const widening = WIDENING_OPTIONS.find((o) => o.level === level && o.name === name);
        return this.withSocket(n, target, (fd) => (widening ? this.header(n, fd, widening.text) : this.setsockopt(n, target, fd)));
      }
      default: throw new Error(`call ${n.nr} is not one learn traps`);
    }
  }

  /** The launcher's one exec of the verified binary; any later exec is refused, as the broker refuses it. */
  private exec(n: Notification, target: Target): Step {
    if (this.execPending && n.pid === this.prog.launcherPid && n.nr === NR.execveat && (int32(n.args[4]) & AT_EMPTY_PATH) !== 0) {
      const fd = fetchFd(target, int32(n.args[0]));
      try {
        const st = fstatSync(fd);
        if (st.dev !== this.prog.binary.dev || st.ino !== this.prog.binary.ino) throw new Error('the launcher\'s exec fd is not the verified binary');
      } finally {
        closeQuietly(fd);
      }
      this.execPending = false;
      return 'continue';
    }
    const path = readString(target, n.nr === NR.execve ? n.args[0] : n.args[1]);
    this.learned.note(`${this.prog.name} tried to execute ${path ?? 'a program'}: refused (EPERM), as the broker refuses every exec `
      + 'inside an elevated program (what it runs would inherit its grants)');
    if (idValid(this.listener, n.id)) fail(this.listener, n.id, EPERM);
    return 'answered';
  }

  private socket(n: Notification, target: Target): Step {
    const domain = int32(n.args[0]), type = int32(n.args[1]), protocol = int32(n.args[2]);
    const base = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
    const nsFd = openat(target.procFd, 'ns/net', O_RDONLY, `/proc/${target.tid}/ns/net`);
    try {
      if (!ownedByOurUserns(nsFd)) return 'continue';
    } finally {
      closeQuietly(nsFd);
    }
    const call: SocketCall = { kind: 'socket', domain, type: base, protocol };
    if (!this.canGrant(call)) return 'continue';
    return {
      call,
      act: (answer) => {
        if (this.refused(n, call, answer)) return;
        let fd: number;
        try {
          fd = socketAsRoot(target, this.prog.uid, domain, base | (type & SOCK_NONBLOCK), protocol);
        } catch (e) {
          if (!(e instanceof SysError)) throw e;
          this.failedAsRoot(call, e.errno);
          fail(this.listener, n.id, e.errno);
          return;
        }
        try {
          const newFd = addFd(this.listener, n.id, fd, (type & SOCK_CLOEXEC) !== 0);
          if (newFd === null) return;
          this.learned.count(call);
          succeed(this.listener, n.id, BigInt(newFd));
        } finally {
          closeQuietly(fd);
        }
      },
    };
  }

  /** bind() of an inet socket to a port that needs privilege in the socket's namespace. */
  private bind(n: Notification, target: Target, fd: number): Step {
    const kind = socketKind(fd);
    if (!kind || (kind.domain !== AF_INET && kind.domain !== AF_INET6)) return 'continue';
    if (kind.type !== SOCK_STREAM && kind.type !== SOCK_DGRAM) return 'continue'; // raw sockets have no ports
    const data = readOnce(target, n.args[1], Number(BigInt.asUintN(32, n.args[2])));
    if (!data) return 'continue'; // unreadable: the kernel's EFAULT
    const addr = decodeInetSockaddr(data);
    if (!addr || addr.family !== kind.domain) return 'continue';
    const nsFd = socketNetns(fd);
    let needs: boolean;
    try {
      needs = portNeedsPrivilege(nsFd, addr.port);
      if (needs && fstatSync(nsFd).ino !== targetNetnsIno(target)) {
        this.learned.note(`${this.prog.name} binds a socket of another network namespace than its own to port ${addr.port}: `
          + 'the broker refuses that, so learn left it to the kernel');
        return 'continue';
      }
    } finally {
      closeQuietly(nsFd);
    }
    if (!needs) return 'continue';
    const expected = kind.type === SOCK_STREAM ? IPPROTO_TCP : IPPROTO_UDP;
    if (kind.protocol !== expected) {
      this.learned.note(`${this.prog.name} binds a ${typeName(kind.type)} socket of protocol ${protocolName(kind.domain, kind.protocol) ?? kind.protocol} `
        + `to port ${addr.port}: the broker binds only the default protocol (${expected === IPPROTO_TCP ? 'tcp' : 'udp'}), so learn left it to the kernel`);
      return 'continue';
    }
    const reusePort = getsockoptInt(fd, SOL_SOCKET, SO_REUSEPORT, 'SO_REUSEPORT') !== 0;
    const call: BindCall = { kind: 'bind', family: kind.domain, type: kind.type, address: addr.address, port: addr.port, reusePort };
    if (!this.canGrant(call)) return 'continue';
    return {
      call,
      act: (answer) => {
        if (this.refused(n, call, answer)) return;
        const errno = bindRaw(fd, data);
        if (errno) {
          this.failedAsRoot(call, errno);
          fail(this.listener, n.id, errno);
        } else {
          this.learned.count(call);
          succeed(this.listener, n.id, 0n);
        }
      },
    };
  }

  /** setsockopt() of an option a [setsockopt.*] section can grant, with a value that needs privilege. */
  private setsockopt(n: Notification, target: Target, fd: number): Step {
    const level = int32(n.args[1]), name = int32(n.args[2]);
    const optlen = Number(BigInt.asUintN(32, n.args[4]));
    const isDevice = level === SOL_SOCKET && name === SO_BINDTODEVICE;
    const len = Math.min(optlen, isDevice ? IFNAMSIZ - 1 : 4);
    if (len === 0 || (!isDevice && len < 4 && level === SOL_SOCKET)) return 'continue'; // the kernel's EINVAL
    const data = readOnce(target, n.args[3], len);
    if (!data || data.length !== len) return 'continue'; // the kernel's EFAULT
    const value = optionValue(data, level, isDevice);
    const nsFd = socketNetns(fd);
    let needs: boolean;
    try {
      // Binding a device needs no privilege; changing a binding does (sock_bindtoindex_locked).
      needs = (isDevice ? getsockoptInt(fd, SOL_SOCKET, SO_BINDTOIFINDEX, 'SO_BINDTOIFINDEX') !== 0 : !needsNoPrivilege(level, name, value))
        && ownedByOurUserns(nsFd);
    } finally {
      closeQuietly(nsFd);
    }
    if (!needs) return 'continue';
    const call: SetsockoptCall = { kind: 'setsockopt', level, option: name, optionName: optionName(level, name) ?? `${level}:${name}`, value };
    if (!this.canGrant(call)) return 'continue';
    return {
      call,
      act: (answer) => {
        if (this.refused(n, call, answer)) return;
        const errno = setsockoptRaw(fd, level, name, data);
        if (errno) {
          this.failedAsRoot(call, errno);
          fail(this.listener, n.id, errno);
        } else {
          this.learned.count(call);
          succeed(this.listener, n.id, 0n);
        }
      },
    };
  }

  /**
   * A header-including option: no privilege needed, but on a raw socket
   * the broker refuses it unless the socket's section has
   * header-included = allow. On a raw socket of a kind granted for the
   * rule, learn asks for that; on any other raw socket it refuses, as the
   * broker would; on other sockets it changes nothing.
   */
  private header(n: Notification, fd: number, option: string): Step {
    const kind = socketKind(fd);
    if (!kind || kind.type !== SOCK_RAW) return 'continue';
    const socket: SocketCall = { kind: 'socket', domain: kind.domain, type: SOCK_RAW, protocol: kind.protocol };
    if (!this.learned.grantedSocket(socketKey(socket))) {
      this.learned.note(`${this.prog.name} set ${option} on a raw socket that is not in the rule: refused (EPERM), as the broker refuses it`);
      fail(this.listener, n.id, EPERM);
      return 'answered';
    }
    const call: HeaderCall = { kind: 'header', option, socket };
    return {
      call,
      act: (answer) => {
        this.learned.count(call);
        if (answer.act === 'errno') fail(this.listener, n.id, answer.errno);
        else if (answer.act === 'deny') fail(this.listener, n.id, EPERM); // the broker's answer without header-included
        else continueCall(this.listener, n.id); // needs no privilege: the kernel sets it with the program's credentials
      },
    };
  }

  /**
   * Fetch the program's fd args[0] for `body`; a fetch that fails, or an
   * fd that is no socket, is the kernel's to answer. The dup is closed
   * when the call has its answer.
   */
  private withSocket(n: Notification, target: Target, body: (fd: number) => Step): Step {
    let fd: number;
    try {
      fd = fetchFd(target, int32(n.args[0]));
    } catch (e) {
      if (e instanceof SysError) return 'continue';
      throw e;
    }
    let step: Step;
    try {
      step = socketKind(fd) ? body(fd) : 'continue';
    } catch (e) {
      closeOffLoop(fd);
      throw e;
    }
    if (step === 'continue' || step === 'answered') {
      closeOffLoop(fd);
      return step;
    }
    return { ...step, done: () => closeOffLoop(fd) };
  }

  /** A denial: the broker's answer to a call no section grants (the kernel's, with the program's credentials), or the admin's errno. */
  private refused(n: Notification, call: LearnedCall, answer: Answer): boolean {
    if (answer.act === 'root') return false;
    this.learned.count(call);
    if (answer.act === 'errno') fail(this.listener, n.id, answer.errno);
    else continueCall(this.listener, n.id);
    return true;
  }

  /** Whether a rule can grant `call`; if not, a note, and the kernel decides. */
  private canGrant(call: LearnedCall): boolean {
    const why = grantable(call);
    if (why === undefined) return true;
    this.learned.note(`${describeCall(call)}: no rule can grant it (${why}); left to the kernel`);
    return false;
  }

  private failedAsRoot(call: LearnedCall, errno: number): void {
    this.learned.forget(call);
    this.learned.note(`${describeCall(call)} failed even as root (${errnoName(errno)}): not in the rule`);
  }
}

/** The value as the kernel would read it from these bytes (as the broker's supervisor reads it). */
function optionValue(data: Buffer, level: number, isDevice: boolean): OptionValue {
  if (isDevice) {
    const nul = data.indexOf(0);
    return { interface: data.subarray(0, nul < 0 ? data.length : nul).toString('latin1') };
  }
  if (data.length >= 4) return { int: data.readUInt32LE(0) };
  return { int: level === SOL_IP ? data[0] : level === SOL_IPV6 ? 0 : data[0] };
}

/**
 * `len` bytes of the program's memory, read once into learn's own copy
 * (what is acted on); undefined if they cannot be read.
 */
function readOnce(target: Target, address: bigint, len: number): Buffer | undefined {
  try {
    return readProcessMemory(target.tid, address, len);
  } catch (e) {
    if (e instanceof SysError) return undefined;
    throw e;
  }
}

/** A NUL-terminated path from the program's memory, for a note; undefined if unreadable. */
function readString(target: Target, address: bigint): string | undefined {
  let text = Buffer.alloc(0);
  for (let at = address; text.length < PATH_MAX;) {
    const room = 4096 - Number(at % 4096n);
    let chunk: Buffer;
    try {
      chunk = readProcessMemory(target.tid, at, room);
    } catch {
      break;
    }
    const nul = chunk.indexOf(0);
    if (nul >= 0) return Buffer.concat([text, chunk.subarray(0, nul)]).toString('utf8');
    text = Buffer.concat([text, chunk]);
    if (chunk.length < room) break;
    at += BigInt(room);
  }
  return text.length > 0 ? `${text.toString('utf8')}…` : undefined;
}

