/*
 * The broker's listening socket: accept, identify from the kernel, hand to
 * a Session.
 *
 * MUST: identify every client from the socket itself (SO_PEERCRED,
 * SO_PEERPIDFD, SO_PEERGROUPS) at accept time; a client that cannot be
 * identified is closed with a client-rejected record, and nothing a client
 * does stops the accept loop. A user at their session cap is turned away
 * at accept time (a `refused` message and a client-rejected record),
 * holding nothing of the broker's afterwards. Those records are
 * rate-limited per user like a session's refusals (refusals.ts): a user
 * connecting in a loop must not flood the audit log.
 */
import { chmodSync, mkdirSync, unlinkSync, lstatSync } from 'node:fs';
import path from 'node:path';
import {
  AF_UNIX, MSG_NOSIGNAL, SHUT_RD, SOCK_CLOEXEC, SOCK_NONBLOCK, SOCK_SEQPACKET, SysError, accept, bindUnix, closeOffLoop,
  closeOffLoopThen, closeQuietly, connectUnix, listen, recvmsg, sendmsg, shutdown, socket,
} from '../shared/native/libc.js';
import { FdWatch, READABLE } from '../shared/native/uvpoll.js';
import { encode } from '../shared/protocol.js';
import { peerIdentity, type ClientIdentity } from './identity.js';
import { Quotas, type UserQuota } from './quota.js';
import { RefusalLimiter } from './refusals.js';
import { Session, type BrokerContext } from './session.js';

const BACKLOG = 128;
const SCM_MAX_FD = 253;
/** Datagrams read off a turned-away connection at most (the kernel queues few more). */
const DRAIN_MAX = 1024;

export class Server {
  private readonly watch: FdWatch;
  readonly sessions = new Set<Session>();
  readonly quotas: Quotas;
  /** Per uid, while the user is at the session cap: the turned-away records. */
  private readonly turnedAway = new Map<number, RefusalLimiter>();

  constructor(readonly socketPath: string, private readonly ctx: Omit<BrokerContext, 'ended'>) {
    this.quotas = new Quotas(ctx.limits);
    prepareSocketPath(socketPath);
    const fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    try {
      bindUnix(fd, socketPath);
      // Anyone may connect: who they are comes from the kernel, what they
      // may do from the rules.
      chmodSync(socketPath, 0o666);
      listen(fd, BACKLOG);
    } catch (e) {
      closeQuietly(fd);
      throw e;
    }
    this.watch = new FdWatch(fd, READABLE, () => this.onAcceptable());
  }

  private onAcceptable(): void {
    for (;;) {
      let conn: number | null;
      try {
        conn = accept(this.watch.fd);
      } catch (e) {
        this.ctx.log(`accept: ${(e as Error).message}`);
        return;
      }
      if (conn === null) return;
      this.admit(conn);
    }
  }

  private admit(conn: number): void {
    let identity;
    try {
      identity = peerIdentity(conn);
    } catch (e) {
      this.ctx.audit.record('client-rejected', { reason: `cannot identify the client: ${(e as Error).message}` });
      closeQuietly(conn);
      return;
    }
    const quota = this.quotas.forUser(identity.uid, identity.passwd?.name);
    const over = quota.openSession();
    if (over) return this.turnAway(conn, identity, quota, over);
    const session = new Session(conn, identity, {
      ...this.ctx,
      ended: (s) => {
        this.sessions.delete(s);
        quota.closeSession();
        // Below the cap again: the summary of this spell goes out now.
        this.turnedAway.get(identity.uid)?.close();
        this.turnedAway.delete(identity.uid);
      },
    }, quota);
    this.sessions.add(session);
  }

  /**
   * A user at their session cap: say why and close, holding nothing. Shut
   * the reading side first, so the client's run either is already queued
   * (read and dropped here) or fails with EPIPE (the client then reads this
   * answer); closing with data still queued would reset the connection and
   * lose the answer.
   */
  private turnAway(conn: number, identity: ClientIdentity, quota: UserQuota, reason: string): void {
    this.turnAwayRecords(identity).record({ call: { name: 'connect' }, pid: identity.pid, reason });
    try {
      shutdown(conn, SHUT_RD);
      for (let i = 0; i < DRAIN_MAX; i++) {
        const got = recvmsg(conn, 1, SCM_MAX_FD);
        if (!got || (got.data.length === 0 && got.fds.length === 0)) break;
        quota.holdFds(got.fds.length);
        for (const fd of got.fds) closeOffLoopThen(fd, () => quota.releaseFds(1));
      }
      sendmsg(conn, encode({ v: 1, type: 'refused', reason }), [], MSG_NOSIGNAL);
    } catch (e) {
      this.ctx.log(`turning away pid ${identity.pid}: ${(e as Error).message}`);
    } finally {
      closeOffLoop(conn);
      closeQuietly(identity.pidfd);
    }
  }

  /**
   * The limiter of a user's turned-away records: each one in full up to
   * the session refusals' count, then summaries (`suppressed`), never a
   * kill (the connections are closed already).
   */
  private turnAwayRecords(identity: ClientIdentity): RefusalLimiter {
    let limiter = this.turnedAway.get(identity.uid);
    if (!limiter) {
      const who = { uid: identity.uid, user: identity.passwd?.name ?? null };
      limiter = new RefusalLimiter(this.ctx.limits.refusalsLogged, Infinity, (fields) => {
        const { call: _call, suppressed, ...rest } = fields;
        if (typeof suppressed !== 'number') return this.ctx.audit.record('client-rejected', { ...who, ...rest });
        this.ctx.audit.record('client-rejected', {
          ...who, suppressed, reason: `${suppressed} more connections turned away (too many sessions for ${who.user ?? `uid ${who.uid}`})`,
        });
      }, () => {});
      this.turnedAway.set(identity.uid, limiter);
    }
    return limiter;
  }

  close(): void {
    for (const limiter of this.turnedAway.values()) limiter.close();
    this.turnedAway.clear();
    this.watch.close();
    try {
      unlinkSync(this.socketPath);
    } catch {
      // already gone
    }
    for (const s of this.sessions) s.shutdown();
  }
}

/** Create the socket's directory; remove a stale socket, never a live broker's. */
function prepareSocketPath(socketPath: string): void {
  mkdirSync(path.dirname(socketPath), { recursive: true, mode: 0o755 });
  let st;
  try {
    st = lstatSync(socketPath);
  } catch {
    return;
  }
  if (!st.isSocket()) throw new Error(`${socketPath} exists and is not a socket; remove it or choose another --socket`);
  const probe = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  try {
    connectUnix(probe, socketPath);
    throw new Error(`another broker is already listening at ${socketPath}`);
  } catch (e) {
    if (!(e instanceof SysError)) throw e;
  } finally {
    closeQuietly(probe);
  }
  unlinkSync(socketPath);
}
