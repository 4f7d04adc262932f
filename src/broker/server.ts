/*
 * The broker's listening socket: accept, identify from the kernel, hand to
 * a Session.
 *
 * MUST: identify every client from the socket itself (SO_PEERCRED,
 * SO_PEERPIDFD, SO_PEERGROUPS) at accept time; a client that cannot be
 * identified is closed with a client-rejected record, and nothing a client
 * does stops the accept loop.
 */
import { chmodSync, mkdirSync, unlinkSync, lstatSync } from 'node:fs';
import path from 'node:path';
import {
  AF_UNIX, SOCK_CLOEXEC, SOCK_NONBLOCK, SOCK_SEQPACKET, SysError, accept, bindUnix, closeQuietly, connectUnix, listen, socket,
} from '../shared/native/libc.js';
import { FdWatch, READABLE } from '../shared/native/uvpoll.js';
import { peerIdentity } from './identity.js';
import { Session, type BrokerContext } from './session.js';

const BACKLOG = 128;

export class Server {
  private readonly watch: FdWatch;
  readonly sessions = new Set<Session>();

  constructor(readonly socketPath: string, private readonly ctx: Omit<BrokerContext, 'ended'>) {
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
    const session = new Session(conn, identity, { ...this.ctx, ended: (s) => this.sessions.delete(s) });
    this.sessions.add(session);
  }

  close(): void {
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
