/*
 * Reads of a program's memory, off the event loop, with a deadline.
 *
 * process_vm_readv on memory the program maps from a FUSE file waits for
 * the user's FUSE server, for as long as that server likes; nothing
 * interrupts it short of a fatal signal to the reader. So no read of a
 * program's memory runs on the loop: each runs on libuv's thread pool (a
 * koffi .async() call into native/memread.c), and the loop goes on serving
 * everyone, that program's other notifications included.
 *
 * The deadline counts from the moment a worker thread starts the read (the
 * job stamps it), not from the queueing: a read waiting behind other work
 * in the pool (another user's slow close) is not the program's fault, and
 * must not get its session killed. A read that runs past the deadline is
 * delivered as `overrun` at once; its thread stays stuck until the kernel
 * lets go, and the read keeps its places (the user's notification slot, a
 * running place below) until then.
 *
 * The pool is small and shared by every user (and by fd closes), and a
 * stuck read cannot be cancelled. So reads are admitted to the pool in
 * round-robin order over users, at most PER_USER running per user and at
 * most `maxRunning` in all (half the pool: the rest stays free for closes
 * and file system work). A user with stuck reads delays only their own
 * next reads; it takes maxRunning / PER_USER users with stuck reads to
 * stall everyone's, and every such session has been killed by then.
 *
 * MUST: never free a job's memory before its worker returns (it writes
 * into it however late); deliver exactly once per read (data, errno,
 * overrun or cancelled); release the slot it retained only when the work
 * on the pool is over.
 */
import koffi from 'koffi';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Slot, UserQuota } from '../quota.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const lib = koffi.load(path.join(root, 'native/build/stx-memread.so'));
const readJob = lib.func('long stx_read_memory(void *job)');

/** struct stx_read_job (native/memread.c), then the data. */
const JOB = { startedNs: 0, started: 8, pid: 12, nremote: 16, local: 24, remote: 40, data: 128 } as const;
const MAX_IOV = 4;
const PAGE = 4096n;
/** Reads per user running on the pool at once. */
export const PER_USER = 2;
/** Largest read: socket option values (256) and exec paths (4096) fit. */
export const MAX_READ = 8192;
const EIO = 5;

export interface Chunk {
  address: bigint;
  len: number;
}

export interface ReadResult {
  /** The bytes read; fewer than asked when a chunk after the first faulted. */
  data?: Buffer;
  /** The read failed (EFAULT, ESRCH...). */
  errno?: number;
  /** It ran past the deadline; it may still be running. */
  overrun?: boolean;
  /** Cancelled by its owner (the supervisor closed). */
  cancelled?: boolean;
}

export interface ReadHandle {
  cancel(): void;
}

/**
 * [address, address + len) split at page boundaries: a fault ends the read
 * at a whole chunk, so a short result is a clean prefix.
 */
export function pageChunks(address: bigint, len: number): Chunk[] {
  const chunks: Chunk[] = [];
  let at = BigInt.asUintN(64, address);
  let left = len;
  while (left > 0) {
    const toPage = Number(PAGE - (at % PAGE));
    const n = Math.min(toPage, left);
    chunks.push({ address: at, len: n });
    at += BigInt(n);
    left -= n;
  }
  return chunks;
}

interface Job {
  owner: UserQuota;
  pid: number;
  chunks: Chunk[];
  total: number;
  slot: Slot;
  deliver(r: ReadResult): void;
  delivered: boolean;
  mem?: bigint;
  view?: Buffer;
  timer?: NodeJS.Timeout;
}

export class MemoryReader {
  /** Waiting jobs per user; the map's order is the round-robin order. */
  private readonly queues = new Map<UserQuota, Job[]>();
  private readonly runningBy = new Map<UserQuota, number>();
  private running = 0;

  constructor(readonly deadlineMs: number, private readonly maxRunning: number) {}

  /** The admission cap for a pool of `poolSize` threads. */
  static capFor(poolSize: number): number {
    return Math.max(1, Math.floor(poolSize / 2));
  }

  /**
   * Read `chunks` of task `pid` off the loop; `deliver` runs on the loop,
   * once. `slot` (the notification's) stays taken until the pool is done.
   */
  read(owner: UserQuota, pid: number, chunks: Chunk[], slot: Slot, deliver: (r: ReadResult) => void): ReadHandle {
    const total = chunks.reduce((s, c) => s + c.len, 0);
    if (chunks.length === 0 || chunks.length > MAX_IOV || total > MAX_READ) {
      throw new Error(`memory read of ${total} bytes in ${chunks.length} chunks is out of range`);
    }
    slot.retain();
    const job: Job = { owner, pid, chunks, total, slot, deliver, delivered: false };
    let q = this.queues.get(owner);
    if (!q) this.queues.set(owner, (q = []));
    q.push(job);
    this.pump();
    return { cancel: () => this.cancel(job) };
  }

  private cancel(job: Job): void {
    if (job.delivered) return;
    const q = this.queues.get(job.owner);
    const i = q ? q.indexOf(job) : -1;
    if (q && i >= 0) {
      q.splice(i, 1);
      if (q.length === 0) this.queues.delete(job.owner);
      job.slot.release();
    }
    this.finish(job, { cancelled: true });
  }

  private finish(job: Job, r: ReadResult): void {
    if (job.delivered) return;
    job.delivered = true;
    if (job.timer) clearTimeout(job.timer);
    job.timer = undefined;
    job.deliver(r);
  }

  /** Start waiting jobs, one user at a time in turn, while there is room. */
  private pump(): void {
    while (this.running < this.maxRunning && this.queues.size > 0) {
      let picked: Job | undefined;
      for (const [owner, q] of this.queues) {
        if ((this.runningBy.get(owner) ?? 0) >= PER_USER) continue;
        picked = q.shift();
        // To the back of the line, whether or not it has more waiting.
        this.queues.delete(owner);
        if (q.length > 0) this.queues.set(owner, q);
        break;
      }
      if (!picked) return;
      this.start(picked);
    }
  }

  private start(job: Job): void {
    const size = JOB.data + job.total;
    const mem = koffi.alloc('uint8', size) as unknown as bigint;
    const view = Buffer.from(koffi.view(mem, size));
    view.fill(0, 0, JOB.data);
    view.writeInt32LE(job.pid, JOB.pid);
    view.writeUInt32LE(job.chunks.length, JOB.nremote);
    view.writeBigUInt64LE(mem + BigInt(JOB.data), JOB.local);
    view.writeBigUInt64LE(BigInt(job.total), JOB.local + 8);
    job.chunks.forEach((c, i) => {
      view.writeBigUInt64LE(c.address, JOB.remote + 16 * i);
      view.writeBigUInt64LE(BigInt(c.len), JOB.remote + 16 * i + 8);
    });
    job.mem = mem;
    job.view = view;
    this.running++;
    this.runningBy.set(job.owner, (this.runningBy.get(job.owner) ?? 0) + 1);
    job.timer = setTimeout(() => this.check(job), this.deadlineMs);
    readJob.async(mem, (err: unknown, res: number | bigint) => this.done(job, err, Number(res)));
  }

  /** The deadline timer: overrun only if a worker has run the read that long. */
  private check(job: Job): void {
    job.timer = undefined;
    if (job.delivered || !job.view) return;
    if (job.view[JOB.started] === 0) {
      // Still queued in the pool behind other work: not this read's doing.
      job.timer = setTimeout(() => this.check(job), Math.max(50, this.deadlineMs / 4));
      return;
    }
    const ranMs = Number(process.hrtime.bigint() - job.view.readBigInt64LE(JOB.startedNs)) / 1e6;
    if (ranMs >= this.deadlineMs) {
      this.finish(job, { overrun: true });
      return;
    }
    job.timer = setTimeout(() => this.check(job), Math.max(1, this.deadlineMs - ranMs));
  }

  private done(job: Job, err: unknown, res: number): void {
    this.running--;
    const n = (this.runningBy.get(job.owner) ?? 1) - 1;
    if (n > 0) this.runningBy.set(job.owner, n);
    else this.runningBy.delete(job.owner);
    let r: ReadResult;
    if (err || !Number.isFinite(res)) r = { errno: EIO };
    else if (res < 0) r = { errno: -res };
    else r = { data: Buffer.from(job.view!.subarray(JOB.data, JOB.data + Math.min(res, job.total))) };
    koffi.free(job.mem!);
    job.mem = undefined;
    job.view = undefined;
    job.slot.release();
    this.finish(job, r);
    this.pump();
  }
}
