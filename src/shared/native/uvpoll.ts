/*
 * Readiness of arbitrary fds from Node's own event loop (libuv uv_poll_t,
 * through the tiny N-API addon in native/uvpoll.c): no thread per session,
 * no thread hop per event.
 *
 * MUST: stop watching before the fd is closed (libuv registers by fd
 * number, a reused number would fire the old handle); FdWatch.close() does
 * both, in that order.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { closeOffLoop, closeQuietly } from './libc.js';

interface Addon {
  watch(fd: number, events: number, cb: (status: number, events: number) => void): object;
  unwatch(handle: object): void;
  ref(handle: object, on: boolean): void;
}

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const addon = createRequire(import.meta.url)(path.join(root, 'build/Release/stx_uvpoll.node')) as Addon;

export const READABLE = 1;
export const WRITABLE = 2;
export const DISCONNECT = 4;

/** Watches one fd it owns; close() unwatches, then closes the fd. */
export class FdWatch {
  private handle: object | null;

  constructor(readonly fd: number, events: number, private readonly onEvent: (status: number, events: number) => void) {
    this.handle = addon.watch(fd, events, onEvent);
  }

  /**
   * Watch for other events from now on (e.g. WRITABLE only while there is
   * something to send: it is level-triggered). A new handle on the same fd:
   * the old one is unregistered from the loop's epoll at once (uv_close),
   * so the two never overlap.
   */
  events(events: number): void {
    if (this.closed) return;
    this.stop();
    this.handle = addon.watch(this.fd, events, this.onEvent);
  }

  /** Whether this watch alone keeps the process alive. */
  ref(on: boolean): void {
    if (this.handle) addon.ref(this.handle, on);
  }

  /** Stop watching but keep the fd open. */
  stop(): void {
    if (this.handle) addon.unwatch(this.handle);
    this.handle = null;
  }

  /** Unwatch, then close the fd; idempotent. `offLoop` for fds a user controls (see closeOffLoop). */
  close(offLoop = false): void {
    if (this.closed) return;
    this.stop();
    this.closed = true;
    if (offLoop) closeOffLoop(this.fd);
    else closeQuietly(this.fd);
  }

  private closed = false;
}
