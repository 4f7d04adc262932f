/*
 * One watcher's delivery: the audit records for one connection, sent
 * without ever waiting for its reader.
 *
 * MUST:
 *  - never block the loop and never slow whoever made the record (a
 *    notification handler, a launch): every send is MSG_DONTWAIT;
 *  - hold a bounded queue (MAX_QUEUED messages, MAX_QUEUED_BYTES bytes)
 *    while the socket is full; a record that does not fit is counted as
 *    dropped, never buffered, and the watcher is told the count (`dropped`)
 *    in its place in the stream, as soon as the socket has room;
 *  - keep the order: records as they were written, each drop notice where
 *    its records would have been;
 *  - ask for the socket's writability only while something waits (it is
 *    level-triggered), and report a broken connection once, on a later
 *    tick (the record being written must not end a session under it).
 */
import { constants as osConstants } from 'node:os';
import { MSG_DONTWAIT, MSG_NOSIGNAL, SysError, sendmsg } from '../shared/native/libc.js';
import { encode } from '../shared/protocol.js';

/** Messages queued at most while the socket is full (its kernel buffer holds about a hundred more). */
export const MAX_QUEUED = 256;
/** Bytes queued at most; one message is always let in when the queue is empty. */
export const MAX_QUEUED_BYTES = 256 * 1024;

export interface WatchFilter {
  /** A user name, or a uid in decimal; null: every user (and records of no user). */
  user: string | null;
  /** A program's path; null: every program (and records of none). */
  program: string | null;
}

/** What a Watcher needs of its connection. */
export interface WatcherLink {
  fd: number;
  /** Watch the connection for writability (true) or not. */
  wantWritable(on: boolean): void;
  /** The connection is broken (the reader is gone): end it. Called on a later tick, once. */
  gone(why: string): void;
}

type Sent = 'sent' | 'full' | 'gone';

export class Watcher {
  private readonly queue: Buffer[] = [];
  private queuedBytes = 0;
  /** Records dropped since the last notice (queued or sent). */
  private dropped = 0;
  /** Waiting for writability: something is queued, or a drop notice is owed. */
  private waiting = false;
  private broken = false;
  private closed = false;

  constructor(readonly filter: WatchFilter, private readonly link: WatcherLink) {}

  /** One encoded `event` message. */
  deliver(message: Buffer): void {
    if (this.closed || this.broken) return;
    if (!this.waiting) {
      const sent = this.send(message);
      if (sent !== 'full') return;
      this.waiting = true;
      this.link.wantWritable(true);
    }
    this.enqueue(message);
  }

  /** The socket has room again: send what waits, in order, then the drop notice it owes. */
  writable(): void {
    if (this.closed || this.broken || !this.waiting) return;
    while (this.queue.length > 0) {
      const sent = this.send(this.queue[0]);
      if (sent !== 'sent') return;
      this.queuedBytes -= this.queue.shift()!.length;
    }
    if (this.dropped > 0) {
      if (this.send(droppedNotice(this.dropped)) !== 'sent') return;
      this.dropped = 0;
    }
    this.waiting = false;
    this.link.wantWritable(false);
  }

  /** No more sends; the connection's owner closes it. */
  close(): void {
    this.closed = true;
    this.queue.length = 0;
    this.queuedBytes = 0;
  }

  /** For tests and logs: what waits, and what was dropped since the last notice. */
  get backlog(): { queued: number; bytes: number; dropped: number } {
    return { queued: this.queue.length, bytes: this.queuedBytes, dropped: this.dropped };
  }

  private enqueue(message: Buffer): void {
    const notice = this.dropped > 0 ? droppedNotice(this.dropped) : undefined;
    const bytes = message.length + (notice?.length ?? 0);
    const count = notice ? 2 : 1;
    if (this.queue.length + count > MAX_QUEUED || (this.queue.length > 0 && this.queuedBytes + bytes > MAX_QUEUED_BYTES)) {
      this.dropped++;
      return;
    }
    if (notice) {
      this.queue.push(notice);
      this.dropped = 0;
    }
    this.queue.push(message);
    this.queuedBytes += bytes;
  }

  private send(message: Buffer): Sent {
    try {
      sendmsg(this.link.fd, message, [], MSG_DONTWAIT | MSG_NOSIGNAL);
      return 'sent';
    } catch (e) {
      if (!(e instanceof SysError)) throw e;
      if (e.errno === osConstants.errno.EAGAIN) return 'full';
      this.broken = true;
      this.close();
      this.link.wantWritable(false);
      setImmediate(() => this.link.gone(`cannot send to the watcher: ${e.message}`));
      return 'gone';
    }
  }
}

const droppedNotice = (count: number): Buffer => encode({ v: 1, type: 'dropped', count });
