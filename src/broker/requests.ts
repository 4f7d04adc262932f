/*
 * Everything a client may ask, as one table (OpenSSH's monitor style): the
 * message type, the phases in which it is allowed, the fds it must carry,
 * and its handler. Anything not in a row ends the connection.
 */
import type { ClientMessage, RunRequest, SignalRequest, WatchRequest } from '../shared/protocol.js';
import { RUN_FDS } from '../shared/protocol.js';
import type { Session } from './session.js';

/** new -> launching -> running -> ended -> gone; new -> watching -> gone */
export type Phase = 'new' | 'launching' | 'running' | 'ended' | 'watching' | 'gone';

export interface RequestRow {
  phases: readonly Phase[];
  fds: number;
  /** Returns true when it took charge of the fds (else the session closes them). */
  handle(session: Session, message: ClientMessage, fds: number[]): boolean;
}

export const REQUESTS: Record<ClientMessage['type'], RequestRow> = {
  run: {
    phases: ['new'],
    fds: RUN_FDS,
    handle: (session, message, fds) => session.run(message as RunRequest, fds),
  },
  signal: {
    phases: ['launching', 'running'],
    fds: 0,
    handle: (session, message) => session.signal(message as SignalRequest),
  },
  /** Which programs may this client run: answered, then the connection ends. */
  list: {
    phases: ['new'],
    fds: 0,
    handle: (session) => session.list(),
  },
  /** The live audit stream: answered, then records until either side closes; nothing more may come from the client. */
  watch: {
    phases: ['new'],
    fds: 0,
    handle: (session, message) => session.watch(message as WatchRequest),
  },
};
