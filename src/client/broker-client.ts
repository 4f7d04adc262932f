/*
 * The client's side of the protocol: one function per request, each
 * expecting the matching answers (OpenSSH's monitor_wrap style).
 */
import { openSync } from 'node:fs';
import {
  AF_UNIX, O_DIRECTORY, O_PATH, SOCK_CLOEXEC, SOCK_SEQPACKET, SysError, closeQuietly, connectUnix, recvmsg, sendmsg, socket, strerror,
} from '../shared/native/libc.js';
import { FdWatch, READABLE } from '../shared/native/uvpoll.js';
import {
  MAX_MESSAGE, ProtocolError, decodeBrokerMessage, encode,
  type BrokerMessage, type ForwardedSignal, type Programs, type ProtocolFailure, type Refused,
} from '../shared/protocol.js';
import type { Dropped, WatchedEvent } from '../shared/protocol.js';

/** sizeof(sockaddr_un.sun_path) less its NUL. */
const MAX_SOCKET_PATH = 107;

/**
 * One line saying why connect() failed, in the same words as
 * native/stx-run.c: which socket, and for no listener at all, that the
 * broker is not running and how to start it.
 */
export function unreachable(socketPath: string, e: unknown): string {
  const at = `cannot reach the broker at ${socketPath}`;
  if (!(e instanceof SysError)) return `${at}: ${(e as Error).message}`;
  if (e.code === 'ENOENT' || e.code === 'ECONNREFUSED') {
    return `${at}: ${strerror(e.errno)}: the stx-elevated broker is not running (start it with: systemctl start stx-elevated)`;
  }
  return `${at}: ${strerror(e.errno)}`;
}

export class BrokerConnection {
  private watch?: FdWatch;
  private closed = false;

  private constructor(private readonly fd: number) {}

  /** Connect; throws SysError (ENOENT, ECONNREFUSED, EACCES...) when there is no broker. */
  static connect(socketPath: string): BrokerConnection {
    if (Buffer.byteLength(socketPath) > MAX_SOCKET_PATH) throw new Error(`the socket path is longer than ${MAX_SOCKET_PATH} bytes`);
    const fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    try {
      connectUnix(fd, socketPath);
    } catch (e) {
      closeQuietly(fd);
      throw e;
    }
    return new BrokerConnection(fd);
  }

  /** Ask the broker to run `path`; stdio and the cwd travel as fds. */
  run(path: string, argv: string[], env: Record<string, string>): void {
    const cwd = openSync('.', O_PATH | O_DIRECTORY);
    try {
      sendmsg(this.fd, encode({ v: 1, type: 'run', path, argv, env }), [0, 1, 2, cwd]);
    } finally {
      closeQuietly(cwd);
    }
  }

  /**
   * A message the broker already sent, if any, without waiting: after a
   * failed send, the broker may have said why it closed (a user at the
   * session cap is answered and closed before the request arrives).
   */
  queuedMessage(): BrokerMessage | null {
    try {
      const got = recvmsg(this.fd, MAX_MESSAGE, 0);
      if (!got || got.data.length === 0) return null;
      got.fds.forEach(closeQuietly);
      return decodeBrokerMessage(got.data);
    } catch {
      return null;
    }
  }

  /**
   * Ask which programs we may run elevated. Resolves with the broker's one
   * answer (`programs`, or `refused`/`error`, after which it closes);
   * rejects with ProtocolError on anything else, or when no answer comes
   * within timeoutMs.
   */
  list(timeoutMs: number): Promise<Programs | Refused | ProtocolFailure> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.close();
        reject(new ProtocolError(`no answer within ${timeoutMs / 1000} s`));
      }, timeoutMs);
      const settle = (f: () => void): void => {
        clearTimeout(timer);
        this.close();
        f();
      };
      try {
        sendmsg(this.fd, encode({ v: 1, type: 'list' }));
      } catch (e) {
        const why = this.queuedMessage();
        if (why?.type === 'refused' || why?.type === 'error') return settle(() => resolve(why));
        return settle(() => reject(e));
      }
      this.watch = new FdWatch(this.fd, READABLE, () => {
        let got;
        try {
          got = recvmsg(this.fd, MAX_MESSAGE, 0);
          if (!got) return;
          got.fds.forEach(closeQuietly);
          if (got.data.length === 0) return settle(() => reject(new ProtocolError('the broker closed the connection without an answer')));
          const m = decodeBrokerMessage(got.data);
          if (m.type !== 'programs' && m.type !== 'refused' && m.type !== 'error') {
            throw new ProtocolError(`unexpected ${m.type} message in answer to list`);
          }
          settle(() => resolve(m));
        } catch (e) {
          settle(() => reject(e));
        }
      });
    });
  }

  /**
   * Ask for the broker's live audit stream. `onMessage` gets the answer
   * (`watching`, or `refused`/`error`), then, after `watching`, each
   * `event` and `dropped` message, and null when the broker closed; a
   * message out of that order rejects with ProtocolError through `onError`,
   * as does a failed receive.
   */
  watchAudit(user: string | null, program: string | null, onMessage: (m: WatchMessage | null) => void, onError: (e: Error) => void): void {
    try {
      sendmsg(this.fd, encode({ v: 1, type: 'watch', user, program }));
    } catch (e) {
      const why = this.queuedMessage();
      this.close();
      if (why?.type === 'refused' || why?.type === 'error') return onMessage(why);
      return onError(e as Error);
    }
    let answered = false;
    const fail = (e: Error): void => {
      this.close();
      onError(e);
    };
    this.watch = new FdWatch(this.fd, READABLE, () => {
      for (;;) {
        let m;
        try {
          const got = recvmsg(this.fd, MAX_MESSAGE, 0);
          if (!got) return;
          got.fds.forEach(closeQuietly);
          if (got.data.length === 0) {
            this.close();
            return onMessage(null);
          }
          m = decodeBrokerMessage(got.data);
        } catch (e) {
          return fail(e as Error);
        }
        const expected = answered ? ['event', 'dropped'] : ['watching', 'refused', 'error'];
        if (!expected.includes(m.type)) {
          return fail(new ProtocolError(`unexpected ${m.type} message ${answered ? 'in the audit stream' : 'in answer to watch'}`));
        }
        answered = true;
        onMessage(m as WatchMessage);
        if (this.closed) return; // onMessage ended the watch
      }
    });
  }

  signal(signal: ForwardedSignal): void {
    sendmsg(this.fd, encode({ v: 1, type: 'signal', signal }));
  }

  /**
   * Every broker message in order; `null` when the broker closed the
   * connection. A message that does not decode (ProtocolError) or a failed
   * receive (SysError) closes the connection and goes to onError.
   */
  listen(onMessage: (m: BrokerMessage | null) => void, onError: (e: Error) => void): void {
    this.watch = new FdWatch(this.fd, READABLE, () => {
      for (;;) {
        let m: BrokerMessage | null;
        try {
          const got = recvmsg(this.fd, MAX_MESSAGE, 0);
          if (!got) return;
          got.fds.forEach(closeQuietly);
          if (got.truncated) throw new ProtocolError(`message exceeds ${MAX_MESSAGE} bytes`);
          m = got.data.length === 0 ? null : decodeBrokerMessage(got.data);
        } catch (e) {
          // ECONNRESET: the broker closed with a message of ours unread (a
          // signal we forwarded as the program ended). The kernel reports
          // that once, before what the broker sent last (its exit message),
          // so read on.
          if (e instanceof SysError && e.code === 'ECONNRESET') continue;
          this.close();
          return onError(e as Error);
        }
        if (m === null) {
          this.close();
          return onMessage(null);
        }
        onMessage(m);
      }
    });
  }

  close(): void {
    this.closed = true;
    if (this.watch) this.watch.close();
    else closeQuietly(this.fd);
  }
}

/** What a watch gets, in order: `watching` (or refused/error, then the end), then events and drop notices. */
export type WatchMessage = BrokerMessage & { type: 'watching' | 'refused' | 'error' } | WatchedEvent | Dropped;
