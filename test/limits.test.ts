// Unit tests of the per-user quotas, the refusal rate limiter and the
// off-loop memory reader (src/broker/quota.ts, refusals.ts, seccomp/memread.ts).
import t from 'tap'
import koffi from 'koffi'
import { DEFAULT_LIMITS, Quotas } from '../src/broker/quota.js'
import { RefusalLimiter, SUMMARY_MS } from '../src/broker/refusals.js'
import { MemoryReader, pageChunks, type ReadResult } from '../src/broker/seccomp/memread.js'

const sleep = (ms: number) => new Promise(r => setTimeout(r, ms))

t.test('quotas: sessions, fds and notification slots per user, with reasons naming user and limit', async t => {
  const q = new Quotas({ ...DEFAULT_LIMITS, sessionsPerUser: 2, fdsPerUser: 3, notificationsPerUser: 1 })
  const alice = q.forUser(1000, 'alice')
  t.equal(alice.openSession(), undefined)
  t.equal(alice.openSession(), undefined)
  t.equal(alice.openSession(), 'too many sessions for alice (limit 2)')
  const bob = q.forUser(1001, undefined)
  t.equal(bob.openSession(), undefined, 'another user has places of their own')
  t.equal(q.forUser(1001, 'ignored').name, 'uid 1001', 'a user without a passwd entry is named by uid')

  alice.holdFds(4)
  t.equal(alice.fdsOver(), 'too many fds held for alice (limit 3)')
  t.equal(alice.takeFd(), 'too many fds held for alice (limit 3)')
  alice.releaseFds(2)
  t.equal(alice.fdsOver(), undefined)
  t.equal(alice.takeFd(), undefined)
  t.equal(alice.fds, 3)

  const slot = alice.takeNotification()
  t.type(slot, 'object')
  t.equal(alice.takeNotification(), 'too many notifications in flight for alice (limit 1)')
  if (typeof slot === 'string') throw new Error('no slot')
  slot.retain()          // a read on the pool
  slot.release()         // the call answered
  t.equal(alice.notifications, 1, 'held while the read runs')
  slot.release()         // the read returned
  slot.release()         // extra releases change nothing
  t.equal(alice.notifications, 0)

  alice.releaseFds(3)
  alice.closeSession()
  alice.closeSession()
  t.equal(q.size, 1, 'a user holding nothing is forgotten')
  bob.closeSession()
  t.equal(q.size, 0)
  t.not(q.forUser(1001, 'bob'), bob, 'and starts afresh')
})

t.test('refusal limiter: the first N one by one, then summaries per call, then the kill past the limit', async t => {
  const written: Record<string, unknown>[] = []
  const kills: string[] = []
  const lim = new RefusalLimiter(3, 10, f => written.push(f), why => kills.push(why))
  const refuse = (name: string) => lim.record({ call: { name, args: { x: 1 } }, reason: 'no', errno: 'EPERM' })
  for (let i = 0; i < 3; i++) {
    t.ok(lim.detailed)
    refuse('execve')
  }
  t.notOk(lim.detailed, 'past N: details are not worth reading')
  refuse('execve')
  refuse('setsockopt')
  refuse('execve')
  t.equal(written.length, 3, 'later refusals are only counted')
  await sleep(50)
  t.same(written.slice(3), [
    { call: { name: 'execve' }, suppressed: 2, reason: '2 more refusals of execve suppressed' },
    { call: { name: 'setsockopt' }, suppressed: 1, reason: '1 more refusals of setsockopt suppressed' },
  ], 'the first summary soon after')
  refuse('execve')
  await sleep(50)
  t.equal(written.length, 5, 'the next summary waits for its second')
  for (let i = 0; i < 3; i++) refuse('execve') // 10 refusals in all
  t.ok(lim.detailed, 'the refusal past the limit is recorded in full')
  refuse('execve')                            // the 11th
  t.same(kills, ['more than 10 refusals in this session'])
  t.same(written.slice(5), [
    { call: { name: 'execve' }, suppressed: 4, reason: '4 more refusals of execve suppressed' },
    { call: { name: 'execve', args: { x: 1 } }, errno: 'EPERM', reason: 'no; more than 10 refusals in this session: the session is killed' },
  ], 'summaries flushed first, then the kill record')
  refuse('execve')
  lim.close()
  t.same(written[written.length - 1], { call: { name: 'execve' }, suppressed: 1, reason: '1 more refusals of execve suppressed' }, 'flushed at the end')
  refuse('execve')
  t.same(written[written.length - 1], { call: { name: 'execve' }, suppressed: 1, reason: '1 more refusals of execve suppressed' }, 'stragglers after the end are still counted')
  t.equal(lim.count, 13)
  t.equal(kills.length, 1, 'killed once')
  t.ok(SUMMARY_MS >= 1000)
})

t.test('pageChunks splits at page boundaries', async t => {
  t.same(pageChunks(0x1000n, 16), [{ address: 0x1000n, len: 16 }])
  t.same(pageChunks(0x1ff8n, 16), [{ address: 0x1ff8n, len: 8 }, { address: 0x2000n, len: 8 }])
  t.same(pageChunks(0x1000n, 8192), [{ address: 0x1000n, len: 4096 }, { address: 0x2000n, len: 4096 }])
})

t.test('memory reader: reads on the thread pool, a short read at a fault, errors as errno', async t => {
  const q = new Quotas(DEFAULT_LIMITS).forUser(process.getuid!(), 'me')
  q.openSession()
  const reader = new MemoryReader(2000, 2)
  const mem = koffi.alloc('uint8', 8192) as unknown as bigint
  t.teardown(() => koffi.free(mem))
  Buffer.from(koffi.view(mem, 16)).write('hello\0world', 'latin1')
  const read = (chunks: ReturnType<typeof pageChunks>) => new Promise<ReadResult>(resolve => {
    const slot = q.takeNotification()
    if (typeof slot === 'string') throw new Error(slot)
    reader.read(q, process.pid, chunks, slot, r => { slot.release(); resolve(r) })
  })
  const ok = await read(pageChunks(mem, 11))
  t.equal(ok.data?.toString('latin1'), 'hello\0world')
  // two pages mapped, the second unmapped again: a read across stops at the boundary
  const libc = koffi.load('libc.so.6')
  const mmap = libc.func('void *mmap(void *addr, size_t len, int prot, int flags, int fd, long off)')
  const munmap = libc.func('int munmap(void *addr, size_t len)')
  const pages = koffi.address(mmap(null, 8192, 3 /* PROT_READ|PROT_WRITE */, 0x22 /* MAP_PRIVATE|MAP_ANONYMOUS */, -1, 0)) as bigint
  t.teardown(() => munmap(pages, 4096))
  t.equal(munmap(pages + 4096n, 4096), 0)
  Buffer.from(koffi.view(pages + 4092n, 4)).write('abcd', 'latin1')
  const short = await read(pageChunks(pages + 4092n, 8))
  t.equal(short.data?.toString('latin1'), 'abcd', 'a short read at the fault')
  const bad = await read(pageChunks(8n, 4))
  t.equal(bad.errno, 14, 'EFAULT')
  const many = await Promise.all([1, 2, 3, 4, 5].map(() => read(pageChunks(mem, 5))))
  t.ok(many.every(r => r.data?.toString('latin1') === 'hello'), 'more reads than running places all complete')
  await sleep(10)
  t.equal(q.notifications, 0, 'every slot released')
  t.throws(() => reader.read(q, process.pid, pageChunks(mem, 9000), q.takeNotification() as never, () => {}), /out of range/)
})
