/**
 * A broker that is not one: a SOCK_SEQPACKET listener in the test process
 * that hands each connection to the test, which reads what the client sent
 * (with the fds it passed, described before they are closed) and answers
 * whatever it likes, well-formed or not. For test/protocol-clients.test.ts:
 * every client against the same answers, bytes the real broker never sends
 * included.
 */
import { fstatSync, mkdtempSync, readFileSync, readlinkSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  AF_UNIX, POLLIN, SHUT_RD, SOCK_CLOEXEC, SOCK_NONBLOCK, SOCK_SEQPACKET, accept, bindUnix, closeQuietly, listen, recvmsg,
  pollNow, sendmsg, shutdown, socket,
} from '../../src/shared/native/libc.js'
import { FdWatch, READABLE } from '../../src/shared/native/uvpoll.js'
import { MAX_MESSAGE } from '../../src/shared/protocol.js'
import type { TapLike } from './broker.js'

const O_PATH = 0o10000000

/** An fd a client passed, as the kernel describes it. */
export interface PassedFd {
  /** what /proc/self/fd/N links to: a path, or e.g. "pipe:[1234]" */
  link: string
  kind: 'file' | 'directory' | 'fifo' | 'socket' | 'char' | 'other'
  /** opened with O_PATH */
  oPath: boolean
}

export interface Datagram {
  data: Buffer
  /** the data parsed as JSON, or undefined if it is not JSON */
  json: any
  fds: PassedFd[]
}

export interface FakeConnection {
  /** The next datagram, or null when the client closed; rejects after timeoutMs. */
  next(timeoutMs?: number): Promise<Datagram | null>
  /** A datagram waiting right now, without waiting (null: none, or closed). */
  pending(): Datagram | null
  /** Send an answer: an object as JSON, or exact bytes. */
  send(message: object | Buffer): void
  /** shutdown(SHUT_RD): the client's later sends fail with EPIPE. */
  shutdownRead(): void
  /** Read nothing more: what the client sends stays queued (closing then resets the client's end). */
  stopReading(): void
  /** Whether a datagram is queued unread (after stopReading). */
  unread(): boolean
  close(): void
}

export interface FakeBroker {
  socket: string
  /** The next connection a client made; rejects after timeoutMs. */
  connection(timeoutMs?: number): Promise<FakeConnection>
  /** How many connections were accepted. */
  accepted(): number
}

function describeFd(fd: number): PassedFd {
  const st = fstatSync(fd)
  const flags = parseInt(/^flags:\s+([0-7]+)/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))?.[1] ?? '0', 8)
  const kind = st.isFile() ? 'file' : st.isDirectory() ? 'directory' : st.isFIFO() ? 'fifo' : st.isSocket() ? 'socket' : st.isCharacterDevice() ? 'char' : 'other'
  return { link: readlinkSync(`/proc/self/fd/${fd}`), kind, oPath: (flags & O_PATH) !== 0 }
}

/** A queue of values that callers wait on, each wait bounded. */
class Waiting<T> {
  private items: T[] = []
  private waiters: Array<(v: T) => void> = []
  push(v: T): void {
    const w = this.waiters.shift()
    if (w) w(v)
    else this.items.push(v)
  }
  take(): T | undefined { return this.items.shift() }
  wait(timeoutMs: number, what: string): Promise<T> {
    if (this.items.length) return Promise.resolve(this.items.shift()!)
    return new Promise((resolve, reject) => {
      const w = (v: T) => { clearTimeout(timer); resolve(v) }
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1)
        reject(new Error(`fake broker: no ${what} within ${timeoutMs} ms`))
      }, timeoutMs)
      this.waiters.push(w)
    })
  }
}

function connection(fd: number, watches: Set<FdWatch>): FakeConnection {
  const datagrams = new Waiting<Datagram | null>()
  let closed = false
  const watch = new FdWatch(fd, READABLE, () => {
    for (;;) {
      const got = recvmsg(fd, MAX_MESSAGE, 8)
      if (!got) return
      // describe, then close at once: a client's stdout held here would keep its reader waiting
      const fds = got.fds.map(describeFd)
      got.fds.forEach(closeQuietly)
      if (got.data.length === 0 && got.fds.length === 0) {
        datagrams.push(null)
        return close()
      }
      let json: any
      try { json = JSON.parse(got.data.toString('utf8')) } catch { json = undefined }
      datagrams.push({ data: got.data, json, fds })
    }
  })
  watches.add(watch)
  const close = () => {
    if (closed) return
    closed = true
    watches.delete(watch)
    watch.close()
  }
  return {
    next: (timeoutMs = 10_000) => datagrams.wait(timeoutMs, 'datagram'),
    pending: () => datagrams.take() ?? null,
    send(message) {
      sendmsg(fd, Buffer.isBuffer(message) ? message : Buffer.from(JSON.stringify(message)))
    },
    shutdownRead: () => shutdown(fd, SHUT_RD),
    stopReading: () => watch.stop(),
    unread: () => (pollNow(fd, POLLIN) & POLLIN) !== 0,
    close,
  }
}

/** Listen on a fresh socket in a private directory; everything closed and removed in t's teardown. */
export function fakeBroker(t: TapLike): FakeBroker {
  const dir = mkdtempSync(join(tmpdir(), 'stx-fake-broker.'))
  const path = join(dir, 'broker.sock')
  const listener = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)
  bindUnix(listener, path)
  listen(listener, 16)
  const watches = new Set<FdWatch>()
  const connections = new Waiting<FakeConnection>()
  let accepted = 0
  const listening = new FdWatch(listener, READABLE, () => {
    for (let fd = accept(listener); fd !== null; fd = accept(listener)) {
      accepted++
      connections.push(connection(fd, watches))
    }
  })
  t.teardown(() => {
    listening.close()
    for (const w of watches) w.close()
    rmSync(dir, { recursive: true, force: true })
  })
  return {
    socket: path,
    connection: (timeoutMs = 10_000) => connections.wait(timeoutMs, 'connection'),
    accepted: () => accepted,
  }
}
