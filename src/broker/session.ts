/*
 * One client connection, from `run` to the program's exit.
 *
 * MUST:
 *  - accept a message only in the phase its row of REQUESTS allows, with
 *    exactly the fds it allows; anything else ends this client only, with a
 *    client-rejected record (the broker never crashes on input);
 *  - close every fd it receives that it does not keep, on the thread pool
 *    (a user's lingering socket must not stall the loop);
 *  - decide with the kernel's identity of the client, the loaded rules and
 *    the binary it opened itself, never with the client's words;
 *  - tie the program to the session: when the client goes away the program
 *    gets SIGHUP, then after a grace period its cgroup is killed (without
 *    cgroups: the program is); when the program ends its cgroup is killed
 *    and its listener closed, and from the moment it has exited no trapped
 *    call of a survivor is granted;
 *  - count every fd it receives against the user's fd quota until its
 *    close has returned, and close a connection that stays in phase `new`
 *    past the idle time (quota.ts);
 *  - never touch a client's fd in a way that can block the loop: the cwd's
 *    type comes from cached attributes (fileTypeCached), never fstat;
 *  - launch only with stdio fds a program can use that hold no connection
 *    to the broker (stdio.ts);
 *  - serve `watch` only to whom Watchers.refusal admits, within the user's
 *    watcher quota; a watcher's records go out through its Watcher, which
 *    never waits for the reader (watcher.ts).
 */
import { constants as osConstants } from 'node:os';
import {
  type Passwd, MSG_NOSIGNAL, POLLHUP, POLLIN, POLLRDHUP, SHUT_RD, SysError, closeOffLoopThen, closeQuietly, fileTypeCached, getgrnamGid, pidfdSendSignal,
  pollNow, reap, recvmsg, sendmsg, shutdown, waitExited,
} from '../shared/native/libc.js';
import { FdWatch, READABLE, WRITABLE } from '../shared/native/uvpoll.js';
import {
  MAX_MESSAGE, ProtocolError, decodeClientMessage, encode,
  type BrokerMessage, type RunRequest, type SignalRequest, type WatchRequest,
} from '../shared/protocol.js';
import type { Audit, AuditEvent } from './audit.js';
import { BinaryError, type OpenBinary, openVerifiedBinary } from './binary.js';
import { digestOf } from './binary-digests.js';
import { CgroupError, type SessionCgroup, type SessionCgroups } from './cgroup.js';
import { programEnvironment } from './environment.js';
import { IdentityError, clientContext, clientStatus, type ClientIdentity } from './identity.js';
import { startLauncher, type Launched } from './launch.js';
import { checkStdio } from './stdio.js';
import { clientSandbox, type SandboxReason } from './sandbox.js';
import { REQUESTS, type Phase } from './requests.js';
import type { ProgramRule, RuleSet } from './rules/model.js';
import { matchArgs, ruleFor } from './rules/match.js';
import { filterFor } from './seccomp/compiled.js';
import type { MemoryReader } from './seccomp/memread.js';
import { Supervisor } from './seccomp/supervisor.js';
import type { Limits, UserQuota } from './quota.js';
import { RefusalLimiter, type RefusalFields } from './refusals.js';
import { currentRule, programsFor, type CurrentRule } from './policy.js';
import type { Watcher } from './watcher.js';
import type { Watchers } from './watchers.js';

/** What every session shares: the broker's state, never the client's. */
export interface BrokerContext {
  rules(): RuleSet;
  audit: Audit;
  execGid: number;
  /** undefined: --no-cgroups. */
  cgroups?: SessionCgroups;
  log(message: string): void;
  /** Per-user caps, idle time, refusal limits, read deadline. */
  limits: Readonly<Limits>;
  /** Reads of programs' memory, on the thread pool. */
  reader: MemoryReader;
  /** The live audit stream's watchers. */
  watchers: Watchers;
  /** The session ended and released everything. */
  ended(session: Session): void;
}

const HANGUP_GRACE_MS = 2000;
/** How long reading a pinned binary to hash it may take (binary.ts sha256OfBinary says why there is one). */
const PIN_DEADLINE_MS = 30_000;
const SCM_MAX_FD = 253;
/** Datagrams read off a connection after its last answer at most (the kernel queues few more). */
const DRAIN_MAX = 1024;
const S_IFDIR = 0o040000;
/** Signal numbers to names as Node reported them (SIGABRT, not its alias SIGIOT: the first name of a number). */
const SIGNAL_NAMES = new Map<number, string>();
for (const [name, n] of Object.entries(osConstants.signals)) if (!SIGNAL_NAMES.has(n)) SIGNAL_NAMES.set(n, name);

let lastId = 0;

export class Session {
  readonly id = ++lastId;
  phase: Phase = 'new';
  private readonly conn: FdWatch;
  private clientGone = false;
  private rule?: ProgramRule;
  /** The launcher, then the program: our child, reaped in onPidfd. */
  private pid?: number;
  private programPidfd = -1;
  /** Watches programPidfd (and owns it): readable once the program exited. */
  private exitWatch?: FdWatch;
  private control?: FdWatch;
  private supervisor?: Supervisor;
  private launchError?: string;
  private listenerReceived = false;
  private execDone = false;
  private killTimer?: NodeJS.Timeout;
  private binary?: { dev: number; ino: number };
  private argv: string[] = [];
  /** How the client is sandboxed, when its rule serves it anyway (sandboxed-clients = allow). */
  private sandbox: SandboxReason[] = [];
  private cgroup?: SessionCgroup;
  private killed = false;
  private idleTimer?: NodeJS.Timeout;
  private readonly refusals: RefusalLimiter;
  /** The program's rule in the rules loaded now, decided again after each reload (policy.ts). */
  private current?: { rules: RuleSet; state: CurrentRule };
  /** Phase `watching`: where this connection's records go. */
  private watcher?: Watcher;

  /** `quota`: the user's counts, with this session already counted in them (Server.admit). */
  constructor(connFd: number, private readonly client: ClientIdentity, private readonly ctx: BrokerContext, private readonly quota: UserQuota) {
    const { limits } = ctx;
    this.refusals = new RefusalLimiter(limits.refusalsLogged, limits.refusalLimit,
      (fields) => this.audit('refuse', fields), (why) => this.kill(why));
    this.conn = new FdWatch(connFd, READABLE, (status, events) => {
      // WRITABLE is asked for only while a watcher has records waiting.
      if (status === 0 && (events & WRITABLE) !== 0) this.watcher?.writable();
      if (status !== 0 || (events & ~WRITABLE) !== 0) this.onClientReadable();
    });
    // A connection that never asks holds a session of the user's quota.
    this.idleTimer = setTimeout(() => {
      if (this.phase === 'new' && !this.clientGone) this.reject(`no request within ${limits.idleMs / 1000} s`);
    }, limits.idleMs);
    this.idleTimer.unref();
  }

  /** Identity fields every record of this session carries. */
  private who(): Record<string, unknown> {
    return { session: this.id, uid: this.client.uid, user: this.client.passwd?.name ?? null };
  }

  audit(event: AuditEvent, fields: Record<string, unknown>): void {
    this.ctx.audit.record(event, { ...this.who(), program: this.rule?.path, ...fields });
  }

  /* ---- the client's side ---- */

  private onClientReadable(): void {
    if (this.clientGone) return;
    let got;
    try {
      // Room for every fd a datagram can carry (SCM_MAX_FD): fds the kernel
      // drops for lack of room are closed in this thread, and a lingering
      // socket would stall the loop there.
      got = recvmsg(this.conn.fd, MAX_MESSAGE + 1, SCM_MAX_FD);
    } catch (e) {
      return this.onClientGone(`receive failed: ${(e as Error).message}`);
    }
    if (!got) return;
    if (got.data.length === 0 && got.fds.length === 0 && this.clientHungUp()) return this.onClientGone('client closed the connection');
    // Held from now until their closes return, whatever becomes of the message.
    this.quota.holdFds(got.fds.length);
    const over = this.quota.fdsOver();
    if (over) {
      this.closeClientFds(got.fds);
      return this.refuseQuota(over);
    }
    try {
      if (got.truncated) throw new ProtocolError(`message longer than ${MAX_MESSAGE} bytes`);
      if (got.ctruncated) throw new ProtocolError('too many fds');
      const message = decodeClientMessage(got.data);
      const row = REQUESTS[message.type];
      if (!row.phases.includes(this.phase)) throw new ProtocolError(`${message.type} is not allowed now (${this.phase})`);
      if (got.fds.length !== row.fds) throw new ProtocolError(`${message.type} takes ${row.fds} fds, got ${got.fds.length}`);
      const kept = row.handle(this, message, got.fds);
      if (!kept) this.closeClientFds(got.fds);
    } catch (e) {
      this.closeClientFds(got.fds);
      if (!(e instanceof ProtocolError)) this.ctx.log(`session ${this.id}: ${(e as Error).stack}`);
      this.reject(e instanceof ProtocolError ? e.message : `internal error: ${(e as Error).message}`);
    }
  }

  /**
   * An empty datagram reads as the close does (0 bytes, no fds); only the
   * close (or the client's shutdown of its sending side) is a hang-up. The
   * empty datagram is a malformed message like any other.
   */
  private clientHungUp(): boolean {
    return (pollNow(this.conn.fd, POLLRDHUP) & (POLLHUP | POLLRDHUP)) !== 0;
  }

  private send(message: BrokerMessage): void {
    if (this.clientGone) return;
    try {
      sendmsg(this.conn.fd, encode(message), [], MSG_NOSIGNAL);
    } catch (e) {
      this.ctx.log(`session ${this.id}: cannot answer the client: ${(e as Error).message}`);
    }
  }

  /** Close fds a client passed, on the thread pool; each leaves the user's count when its close returns. */
  private closeClientFds(fds: number[]): void {
    for (const fd of fds) closeOffLoopThen(fd, () => this.quota.releaseFds(1));
  }

  /** Over one of the user's caps: a clear answer, a record, and this client ends. */
  private refuseQuota(reason: string): void {
    this.ctx.audit.record('client-rejected', { ...this.who(), pid: this.client.pid, reason });
    this.send({ v: 1, type: 'refused', reason });
    this.onClientGone(reason);
  }

  /** A malformed or out-of-phase message: end this client only. */
  private reject(reason: string): void {
    this.ctx.audit.record('client-rejected', { ...this.who(), pid: this.client.pid, reason });
    this.send({ v: 1, type: 'error', reason });
    this.onClientGone(reason);
  }

  private onClientGone(reason: string): void {
    if (this.clientGone) return;
    this.clientGone = true;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.stopWatching();
    // Off the loop: fds still queued on the connection are released by its close.
    this.conn.close(true);
    if (this.programPidfd >= 0) {
      this.ctx.log(`session ${this.id}: ${reason}; sending SIGHUP to pid ${this.pid}`);
      this.signalProgram(osConstants.signals.SIGHUP);
      this.killTimer = setTimeout(() => this.kill('the client went away'), HANGUP_GRACE_MS);
    }
    this.maybeEnd();
  }

  /* ---- requests (rows of REQUESTS) ---- */

  /** `run`: decide, verify, launch. Returns true: the fds are dealt with here. */
  run(req: RunRequest, fds: number[]): boolean {
    const user = this.client.passwd;
    const rule = user && ruleFor(this.ctx.rules(), req.path, { uid: this.client.uid, user: user.name, gids: this.client.gids }, getgrnamGid);
    const name = user?.name ?? `uid ${this.client.uid}`;
    if (!user || !rule) {
      return this.refuseRun(req.path, `no rule lets ${name} run ${req.path}`, fds);
    }
    this.rule = rule;
    if (!matchArgs(rule, req.argv.slice(1))) {
      return this.refuseRun(req.path, `the broker refused to run ${req.path}: the arguments do not match the rule ${rule.file} `
        + `(args = ${rule.args!.text})`, fds);
    }
    let cwdType: number;
    try {
      cwdType = fileTypeCached(fds[3]);
    } catch (e) {
      if (!(e instanceof SysError)) throw e;
      throw new ProtocolError(`cannot inspect the cwd fd: ${e.message}`);
    }
    if (cwdType !== S_IFDIR) throw new ProtocolError('the cwd fd is not a directory');
    checkStdio(fds);
    if (rule.sha256) return this.launchPinned(req, fds, rule, user);
    return this.launch(req, fds, rule, user);
  }

  /**
   * A rule with a sha256 pin: open the binary, hash that very fd off the
   * loop (binary.ts) unless its digest is remembered for that unchanged
   * file (binary-digests.ts), and launch it only if the digest matches. The
   * session is `launching` meanwhile: no second run, and a signal has no
   * program to reach yet.
   */
  private launchPinned(req: RunRequest, fds: number[], rule: ProgramRule, user: Passwd): boolean {
    this.phase = 'launching';
    if (this.idleTimer) clearTimeout(this.idleTimer);
    let binary: OpenBinary;
    try {
      binary = openVerifiedBinary(rule.path);
    } catch (e) {
      if (!(e instanceof BinaryError)) throw e;
      return this.refuseRun(req.path, `the broker refused to run ${req.path}: ${e.message}`, fds);
    }
    digestOf(binary.fd, PIN_DEADLINE_MS).then((digest) => {
      if (this.clientGone) {
        closeQuietly(binary.fd);
        this.closeClientFds(fds);
      } else if (digest !== rule.sha256) {
        closeQuietly(binary.fd);
        this.refuseRun(req.path, `the broker refused to run ${req.path}: its content does not match the sha256 pin in ${rule.file} `
          + `(it hashes to ${digest})`, fds);
      } else {
        this.afterPin(() => this.launch(req, fds, rule, user, binary), fds);
      }
    }, (e: Error) => {
      // digestOf (sha256OfBinary) closed the fd
      if (this.clientGone) this.closeClientFds(fds);
      else this.refuseRun(req.path, `the broker refused to run ${req.path}: ${e.message}`, fds);
    });
    return true;
  }

  /** What onClientReadable does for a request that throws, for the launch that follows a pin check. */
  private afterPin(launch: () => boolean, fds: number[]): void {
    try {
      launch();
    } catch (e) {
      this.closeClientFds(fds);
      if (!(e instanceof ProtocolError)) this.ctx.log(`session ${this.id}: ${(e as Error).stack}`);
      this.reject(e instanceof ProtocolError ? e.message : `internal error: ${(e as Error).message}`);
    }
  }

  /** Verify (unless a pin check already opened the binary) and launch. */
  private launch(req: RunRequest, fds: number[], rule: ProgramRule, user: Passwd, opened?: OpenBinary): boolean {
    const [stdin, stdout, stderr, cwd] = fds;
    let binaryFd = opened?.fd ?? -1, netnsFd = -1, cgroupFd = -1;
    try {
      const status = clientStatus(this.client);
      const sandbox = clientSandbox(this.client, status);
      if (sandbox.reasons.length > 0 && !rule.sandboxedClients) {
        return this.refuseRun(req.path, `the broker refused to run ${req.path}: you are in a sandbox (${sandbox.phrases.join(', ')}); `
          + `the rule ${rule.file} does not serve sandboxed clients (sandboxed-clients = allow)`, fds, { sandbox: sandbox.reasons });
      }
      this.sandbox = sandbox.reasons;
      const context = clientContext(this.client, status);
      netnsFd = context.netnsFd;
      const binary = opened ?? openVerifiedBinary(rule.path);
      binaryFd = binary.fd;
      this.binary = { dev: binary.dev, ino: binary.ino };
      if (this.ctx.cgroups) {
        this.cgroup = this.ctx.cgroups.create(this.id, this.client.uid);
        if (!this.cgroup.place) cgroupFd = this.cgroup.openDir();
      }
      const launched = startLauncher({
        uid: this.client.uid, gid: this.client.gid, execGid: this.ctx.execGid,
        groups: this.client.supplementary, umask: context.umask, rlimits: context.rlimits,
        env: programEnvironment(req.env, user, rule.keepEnv), argv: req.argv,
        stdio: [stdin, stdout, stderr], cwdFd: cwd, netnsFd, binaryFd, filter: filterFor(rule), cgroupFd,
        cgroupFromControl: this.cgroup?.place !== undefined,
        loginuid: context.loginuid, nice: context.nice, ioprio: context.ioprio, affinity: context.affinity,
        oomScoreAdj: context.oomScoreAdj,
      });
      this.started(launched, req);
      if (this.cgroup?.place) this.placeInCgroup(this.cgroup);
    } catch (e) {
      if (e instanceof BinaryError || e instanceof IdentityError || e instanceof CgroupError) {
        return this.refuseRun(req.path, `the broker refused to run ${req.path}: ${e.message}`, fds);
      }
      throw e;
    } finally {
      closeQuietly(binaryFd);
      closeQuietly(netnsFd);
      closeQuietly(cgroupFd);
    }
    this.closeClientFds(fds);
    return true;
  }

  private refuseRun(path: string, reason: string, fds: number[], extra: Record<string, unknown> = {}): boolean {
    this.audit('refuse', { pid: this.client.pid, call: { name: 'run', args: { path } }, errno: 'EPERM', reason, rule: this.rule ? { file: this.rule.file, section: 'program' } : undefined, ...extra });
    this.send({ v: 1, type: 'refused', reason });
    this.closeClientFds(fds);
    this.onClientGone('refused');
    return true;
  }

  /**
   * `list`: the programs this client's user may run, from the loaded rules
   * and the kernel's identity. Not audited: it grants nothing and tells the
   * user only what their own runs would (doc/CONTRACTS.md).
   */
  list(): boolean {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.send(programsFor(this.ctx.rules(), this.client));
    this.dropUnread();
    this.onClientGone('answered');
    return false;
  }

  /**
   * After the last answer: stop the client's sends and drop what it already
   * queued (its fds closed off the loop, counted until then). Closing with
   * unread data would reset the connection, and the client would lose the
   * answer.
   */
  private dropUnread(): void {
    try {
      shutdown(this.conn.fd, SHUT_RD);
      for (let i = 0; i < DRAIN_MAX; i++) {
        const got = recvmsg(this.conn.fd, 1, SCM_MAX_FD);
        if (!got || (got.data.length === 0 && got.fds.length === 0)) return;
        this.quota.holdFds(got.fds.length);
        this.closeClientFds(got.fds);
      }
    } catch (e) {
      this.ctx.log(`session ${this.id}: dropping what the client sent after its request: ${(e as Error).message}`);
    }
  }

  /**
   * `watch`: root and the watch group's members get every audit record
   * from now on (as their filters narrow it) until either side closes. A
   * refusal is recorded (`refuse`, call watch); a watcher over its quota is
   * turned away like any client over one (`client-rejected`). A served
   * watch writes no record, as a read of the audit log writes none.
   */
  watch(req: WatchRequest): boolean {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    const watchers = this.ctx.watchers;
    const refusal = watchers.refusal(this.client);
    if (refusal) {
      this.audit('refuse', {
        pid: this.client.pid, call: { name: 'watch', args: { user: req.user, program: req.program } }, errno: 'EPERM',
        reason: refusal, group: watchers.group,
      });
      this.send({ v: 1, type: 'refused', reason: refusal });
      this.dropUnread();
      this.onClientGone('refused');
      return false;
    }
    const over = this.quota.openWatcher();
    if (over) {
      this.dropUnread();
      this.refuseQuota(over);
      return false;
    }
    this.phase = 'watching';
    this.send({ v: 1, type: 'watching' });
    this.watcher = watchers.add({ user: req.user, program: req.program }, {
      fd: this.conn.fd,
      wantWritable: (on) => this.conn.events(on ? READABLE | WRITABLE : READABLE),
      gone: (why) => this.onClientGone(why),
    });
    return false;
  }

  /** The watcher sends nothing more, and leaves the user's count. */
  private stopWatching(): void {
    if (!this.watcher) return;
    this.ctx.watchers.remove(this.watcher);
    this.watcher = undefined;
    this.quota.closeWatcher();
  }

  signal(req: SignalRequest): boolean {
    this.signalProgram(osConstants.signals[req.signal]);
    return false;
  }

  /**
   * End everything the session runs: its cgroup (cgroup.kill), and the
   * program itself by its pidfd (the launcher may not have joined the
   * cgroup yet; without cgroups that is all there is). Audited once, with
   * the pids that were there, unless there were none. Also how the broker
   * ends a session that overran a limit (refusals.ts) or a deadline (a read
   * of its memory, memread.ts).
   */
  kill(reason: string): void {
    if (this.killed) return;
    this.killed = true;
    let pids: number[] = [];
    if (this.cgroup) {
      try {
        pids = this.cgroup.kill();
      } catch (e) {
        this.ctx.log(`session ${this.id}: cannot kill its cgroup: ${(e as Error).message}`);
      }
    }
    if (this.programAlive() && !pids.includes(this.pid!)) pids.push(this.pid!);
    this.signalProgram(osConstants.signals.SIGKILL);
    if (pids.length > 0) this.audit('kill', { reason, pids });
  }

  /** The program (or the launcher before it) has not exited. */
  private programAlive(): boolean {
    return this.programPidfd >= 0 && (pollNow(this.programPidfd, POLLIN) & POLLIN) === 0;
  }

  private signalProgram(signal: number): void {
    if (this.programPidfd < 0) return;
    try {
      pidfdSendSignal(this.programPidfd, signal);
    } catch (e) {
      if (!(e instanceof SysError && e.code === 'ESRCH')) throw e;
    }
  }

  /* ---- the program's side ---- */

  private started(launched: Launched, req: RunRequest): void {
    this.phase = 'launching';
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.argv = req.argv;
    try {
      this.exitWatch = new FdWatch(launched.pidfd, READABLE, () => this.onPidfd(req));
    } catch (e) {
      // Nobody would ever reap it: end it and reap it now.
      pidfdSendSignal(launched.pidfd, osConstants.signals.SIGKILL);
      reap(launched.pid);
      closeQuietly(launched.pidfd);
      closeQuietly(launched.control);
      throw e;
    }
    this.pid = launched.pid;
    this.programPidfd = launched.pidfd;
    try {
      this.control = new FdWatch(launched.control, READABLE, () => this.onControl());
    } catch (e) {
      // Nobody could answer its exec: end it; onExit cleans up.
      closeQuietly(launched.control);
      this.signalProgram(osConstants.signals.SIGKILL);
      throw e;
    }
  }

  /** The pidfd is readable: the launcher or the program has exited; reap it. */
  private onPidfd(req: RunRequest): void {
    let exited;
    try {
      exited = waitExited(this.programPidfd);
    } catch (e) {
      // Not ours to reap any more (cannot happen: only this session waits for it): stop watching.
      this.ctx.log(`session ${this.id}: ${(e as Error).message}`);
      exited = { code: null, signal: osConstants.signals.SIGKILL };
    }
    if (exited) this.onExit(exited.code, exited.signal, req);
  }

  /**
   * A cgroup made with the launcher in it (a systemd scope): once it is
   * there, send its directory to the launcher, which waits for it before it
   * changes anything. Failure: the launcher is killed and the client told.
   */
  private placeInCgroup(cgroup: SessionCgroup): void {
    cgroup.place!(this.pid!).then(() => {
      if (this.killed || !this.control) return;
      const fd = cgroup.openDir();
      try {
        sendmsg(this.control.fd, Buffer.from('cgroup'), [fd]);
      } finally {
        closeQuietly(fd);
      }
    }).catch((e: unknown) => {
      if (this.killed) return;
      this.launchError = `the session's cgroup: ${(e as Error).message}`;
      this.signalProgram(osConstants.signals.SIGKILL);
    });
  }

  /** The launcher's datagrams: the listener fd, or why it failed; end of file once it exec'd. */
  private onControl(): void {
    const control = this.control;
    if (!control) return;
    for (;;) {
      let got;
      try {
        got = recvmsg(control.fd, 4096, 1);
      } catch {
        got = { data: Buffer.alloc(0), fds: [], truncated: false, ctruncated: false };
      }
      if (!got) return;
      if (got.data.length === 0 && got.fds.length === 0) {
        control.close();
        this.control = undefined;
        // The control fd is close-on-exec: end of file without an error
        // report means the exec of the verified binary went through.
        if (!this.launchError && this.listenerReceived) this.running();
        return;
      }
      const text = got.data.toString('utf8');
      if (text === 'listener' && got.fds.length === 1 && !this.listenerReceived) {
        this.listenerReceived = true;
        this.supervise(got.fds[0]);
      } else {
        got.fds.forEach(closeQuietly);
        this.launchError = text.startsWith('error ') ? text.slice(6) : `unexpected launcher message ${JSON.stringify(text.slice(0, 80))}`;
      }
    }
  }

  private supervise(listener: number): void {
    try {
      this.supervisor = new Supervisor(listener, this.supervisedView(), () => this.closeSupervisor());
    } catch (e) {
      closeQuietly(listener);
      // The launcher waits in its trapped exec for an answer nobody can give.
      this.launchError = `cannot supervise the program: ${(e as Error).message}`;
      this.signalProgram(osConstants.signals.SIGKILL);
    }
  }

  private supervisedView() {
    const rule = this.rule!;
    return {
      uid: this.client.uid,
      rule: () => this.currentRule(rule),
      binary: this.binary!,
      launcherPid: this.pid!,
      ended: () => !this.programAlive(),
      quota: this.quota,
      reader: this.ctx.reader,
      audit: (event: 'grant', fields: Record<string, unknown>) => this.audit(event, fields),
      refuse: (fields: RefusalFields, always = false) => (always ? this.audit('refuse', fields) : this.refusals.record(fields)),
      refusalDetailed: () => this.refusals.detailed,
      kill: (reason: string) => this.kill(reason),
      log: (m: string) => this.ctx.log(`session ${this.id}: ${m}`),
    };
  }

  /** Looked up again only when the rules were reloaded (a new RuleSet): its group lookups are NSS calls. */
  private currentRule(launched: ProgramRule): CurrentRule {
    const rules = this.ctx.rules();
    if (this.current?.rules !== rules) this.current = { rules, state: currentRule(rules, launched, this.argv, this.client, this.sandbox.length > 0) };
    return this.current.state;
  }

  /** The exec went through: the program runs. */
  private running(): void {
    if (this.execDone) return;
    this.execDone = true;
    this.phase = 'running';
    this.audit('launch', {
      pid: this.pid, argv: this.argv, rule: { file: this.rule!.file, section: 'program' }, client: { pid: this.client.pid },
      sandbox: this.sandbox.length > 0 ? this.sandbox : undefined,
    });
    this.send({ v: 1, type: 'started', pid: this.pid! });
  }

  private onExit(code: number | null, signal: number | null, req: RunRequest): void {
    this.onControl(); // the exec's end of file may still be queued
    // Its children go with it; the grant check already refuses them.
    this.kill(this.clientGone ? 'the client went away' : 'the program exited');
    this.closeSupervisor();
    this.refusals.close(); // summaries before the exit record
    if (this.killTimer) clearTimeout(this.killTimer);
    this.exitWatch?.close(); // and its pidfd
    this.exitWatch = undefined;
    this.programPidfd = -1;
    const pid = this.pid;
    const signalName = signal === null ? null : SIGNAL_NAMES.get(signal) ?? `signal ${signal}`;
    if (!this.execDone) {
      const why = this.launchError ?? (signalName ? `the launcher was killed by ${signalName}` : `the launcher exited with ${code}`);
      this.audit('refuse', { pid, call: { name: 'run', args: { path: req.path } }, errno: 'EPERM', reason: `could not start: ${why}`, rule: { file: this.rule!.file, section: 'program' } });
      this.send({ v: 1, type: 'refused', reason: `the broker could not start ${req.path}: ${why}` });
    } else {
      const status = code ?? 128 + (signal ?? 0);
      this.audit('exit', { pid, code, signal: signalName, status });
      this.send({ v: 1, type: 'exit', code, signal: signalName });
    }
    this.phase = 'ended';
    if (!this.clientGone) this.conn.close(true);
    this.clientGone = true;
    this.maybeEnd();
  }

  private closeSupervisor(): void {
    this.supervisor?.close();
    this.supervisor = undefined;
  }

  private maybeEnd(): void {
    if (!this.clientGone || this.phase === 'gone') return;
    if (this.pid !== undefined && this.phase !== 'ended') return; // the program's exit comes later
    this.control?.close();
    this.control = undefined;
    this.cgroup?.release();
    closeQuietly(this.client.pidfd);
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.refusals.close();
    this.stopWatching();
    this.phase = 'gone';
    this.ctx.ended(this);
  }

  /** Broker shutdown: the program loses its elevated calls and its session. */
  shutdown(): void {
    this.onClientGone('broker shutting down');
    this.kill('the broker is shutting down');
  }
}
