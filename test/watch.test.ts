// Unit tests of the live audit stream's parts: the protocol's watch
// messages (src/shared/protocol.ts), one watcher's bounded delivery over a
// real socket pair (src/broker/watcher.ts), the fan-out and the shortening
// of records too big to send (watchers.ts), the watcher quotas (quota.ts)
// and the client's human format (src/client/watch-format.ts).
import t from 'tap'
import {
  AF_UNIX, SOCK_CLOEXEC, SOCK_NONBLOCK, SOCK_SEQPACKET, closeQuietly, recvmsg, socketpair,
} from '../src/shared/native/libc.js'
import {
  MAX_MESSAGE, ProtocolError, decodeBrokerMessage, decodeClientMessage, isWatchUser,
} from '../src/shared/protocol.js'
import { DEFAULT_LIMITS, Quotas } from '../src/broker/quota.js'
import { MAX_QUEUED, Watcher } from '../src/broker/watcher.js'
import { Watchers, eventMessage } from '../src/broker/watchers.js'
import { droppedLine, humanLine, printable } from '../src/client/watch-format.js'

const json = (v: unknown) => Buffer.from(JSON.stringify(v))

/** The ProtocolError's message that `f` throws; anything else (or nothing) fails. */
function protocolError(f: () => unknown): string {
  try {
    f()
  } catch (e) {
    if (e instanceof ProtocolError) return e.message
    throw e
  }
  throw new Error('no ProtocolError')
}

t.test('protocol: a watch request has exactly v, type, user and program; the filters are checked', async t => {
  t.same(decodeClientMessage(json({ v: 1, type: 'watch', user: null, program: null })), { v: 1, type: 'watch', user: null, program: null })
  t.same(decodeClientMessage(json({ v: 1, type: 'watch', user: 'alice', program: '/usr/bin/ping' })),
    { v: 1, type: 'watch', user: 'alice', program: '/usr/bin/ping' })
  t.same(decodeClientMessage(json({ v: 1, type: 'watch', user: '1000', program: null })).type, 'watch')
  for (const [bad, why] of [
    [{ v: 1, type: 'watch' }, /watch message lacks "user"/],
    [{ v: 1, type: 'watch', user: null }, /lacks "program"/],
    [{ v: 1, type: 'watch', user: null, program: null, uid: 0 }, /unexpected key "uid"/],
    [{ v: 1, type: 'watch', user: 'a b', program: null }, /watch user must be/],
    [{ v: 1, type: 'watch', user: 7, program: null }, /watch user must be/],
    [{ v: 1, type: 'watch', user: '', program: null }, /watch user must be/],
    [{ v: 1, type: 'watch', user: null, program: 'ping' }, /watch program must be null or an absolute path/],
    [{ v: 1, type: 'watch', user: null, program: '/a\u0000b' }, /watch program must be/],
  ] as const) {
    t.match(protocolError(() => decodeClientMessage(json(bad))), why, JSON.stringify(bad))
  }
})

t.test('protocol: user filters are a name as useradd takes one, or a uid', async t => {
  for (const ok of ['alice', 'www-data', 'a.b_c', 'machine$', '0', '4294967294', 'x'.repeat(256)]) t.ok(isWatchUser(ok), ok)
  for (const bad of ['', '-rf', 'a:b', 'a,b', 'a/b', 'a b', 'a\tb', 'a\u001bb', '4294967295', '12345678901', 'x'.repeat(257), null, 3]) {
    t.notOk(isWatchUser(bad), JSON.stringify(bad))
  }
})

t.test('protocol: watching, event and dropped answers, exact shapes', async t => {
  t.same(decodeBrokerMessage(json({ v: 1, type: 'watching' })), { v: 1, type: 'watching' })
  const record = { time: '2026-01-01T00:00:00.000Z', event: 'grant', uid: 1000, call: { name: 'socket', args: {} } }
  t.same(decodeBrokerMessage(json({ v: 1, type: 'event', record })), { v: 1, type: 'event', record })
  t.same(decodeBrokerMessage(json({ v: 1, type: 'dropped', count: 12 })), { v: 1, type: 'dropped', count: 12 })
  for (const bad of [
    { v: 1, type: 'watching', user: 'x' },
    { v: 1, type: 'event' },
    { v: 1, type: 'event', record: [] },
    { v: 1, type: 'event', record: { event: 'grant' } },
    { v: 1, type: 'event', record: { time: 't', event: 3 } },
    { v: 1, type: 'event', record, extra: 1 },
    { v: 1, type: 'dropped', count: 0 },
    { v: 1, type: 'dropped', count: -1 },
    { v: 1, type: 'dropped', count: 1.5 },
    { v: 1, type: 'dropped' },
  ]) t.type(protocolError(() => decodeBrokerMessage(json(bad))), 'string', JSON.stringify(bad))
})

t.test('an event message is the record itself; a record too big for one message loses its big fields, named', async t => {
  const small = { time: 't', event: 'launch', uid: 1, argv: ['a', 'b'] }
  t.same(JSON.parse(eventMessage(small).toString()), { v: 1, type: 'event', record: small })
  const argv = Array.from({ length: 4000 }, (_, i) => `argument-${i}-${'x'.repeat(30)}`)
  const big = { time: 't', event: 'launch', uid: 1, user: 'alice', program: '/usr/bin/x', argv, rule: { file: 'f', section: 'program' } }
  const m = eventMessage(big)
  t.ok(m.length <= MAX_MESSAGE)
  t.same(JSON.parse(m.toString()).record, { time: 't', event: 'launch', uid: 1, user: 'alice', program: '/usr/bin/x', rule: { file: 'f', section: 'program' }, omitted: ['argv'] })
})

/** A connected SOCK_SEQPACKET pair: the broker's end (non-blocking) and the watcher's. */
function pair(t: { teardown(fn: () => void): void }): { broker: number, reader: number } {
  const [broker, reader] = socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC)
  t.teardown(() => { closeQuietly(broker); closeQuietly(reader) })
  return { broker, reader }
}

/** Everything waiting on the reader's end, decoded. */
function readAll(fd: number): Array<Record<string, any>> {
  const out: Array<Record<string, any>> = []
  for (;;) {
    const got = recvmsg(fd, MAX_MESSAGE, 0)
    if (!got || got.data.length === 0) return out
    out.push(JSON.parse(got.data.toString()))
  }
}

const record = (n: number) => eventMessage({ time: 't', event: 'grant', n, pad: 'p'.repeat(300) })

t.test('a watcher sends at once while the socket has room; when full, queues a bounded number, counts the rest, and tells', async t => {
  const { broker, reader } = pair(t)
  const writable: boolean[] = []
  const gone: string[] = []
  const w = new Watcher({ user: null, program: null }, { fd: broker, wantWritable: on => writable.push(on), gone: why => gone.push(why) })
  let n = 0
  while (writable.length === 0 && n < 100_000) w.deliver(record(n++))
  t.same(writable, [true], 'asked for writability once the socket was full')
  const inKernel = n - 1
  t.ok(inKernel > 0, `the socket took ${inKernel} records first`)
  for (let i = 0; i < MAX_QUEUED + 500; i++) w.deliver(record(n++))
  t.equal(w.backlog.queued, MAX_QUEUED, 'the queue holds MAX_QUEUED messages, no more')
  t.equal(w.backlog.dropped, n - inKernel - MAX_QUEUED, 'the rest are counted')
  const droppedFirst = w.backlog.dropped

  // the reader reads; the socket has room; the queue goes out, then the notice
  const seen: Array<Record<string, any>> = []
  while (w.backlog.queued > 0 || w.backlog.dropped > 0) {
    seen.push(...readAll(reader))
    w.writable()
  }
  seen.push(...readAll(reader))
  t.same(writable, [true, false], 'stopped asking once nothing waits')
  const events = seen.filter(m => m.type === 'event').map(m => m.record.n)
  t.same(events, Array.from({ length: inKernel + MAX_QUEUED }, (_, i) => i), 'the records that fit, in order, none twice')
  t.same(seen.at(-1), { v: 1, type: 'dropped', count: droppedFirst }, 'then how many were dropped')

  // a later record goes straight out again
  w.deliver(record(n))
  t.same(readAll(reader).map(m => m.record?.n), [n])
  t.same(gone, [])
})

t.test('a drop notice keeps its place: records after a gap come after the notice of that gap', async t => {
  const { broker, reader } = pair(t)
  const w = new Watcher({ user: null, program: null }, { fd: broker, wantWritable: () => {}, gone: () => {} })
  const seen: Array<Record<string, any>> = []
  const drain = () => {
    while (w.backlog.queued > 0 || w.backlog.dropped > 0) {
      seen.push(...readAll(reader))
      w.writable()
    }
    seen.push(...readAll(reader))
  }
  let n = 0
  for (const gap of [1, 2]) {
    while (w.backlog.dropped < 10 * gap) w.deliver(record(n++))
    drain()
  }
  const notices = seen.map((m, i) => [m, i] as const).filter(([m]) => m.type === 'dropped')
  t.equal(notices.length, 2, 'one notice per gap')
  // between consecutive events, the missing numbers are exactly the notice's count
  let last = -1
  let pending = 0
  const wrong: string[] = []
  for (const m of seen) {
    if (m.type === 'dropped') { pending += m.count; continue }
    if (m.record.n !== last + 1 + pending) wrong.push(`record ${m.record.n} after ${last} and ${pending} dropped`)
    last = m.record.n
    pending = 0
  }
  t.same(wrong, [], 'each gap exactly its notice\'s count')
  t.equal(last + 1 + pending, n, 'every record sent or counted')
})

t.test('a watcher whose reader is gone stops sending and reports it once, on a later tick', async t => {
  const { broker, reader } = pair(t)
  const gone: string[] = []
  const w = new Watcher({ user: null, program: null }, { fd: broker, wantWritable: () => {}, gone: why => gone.push(why) })
  closeQuietly(reader)
  w.deliver(record(1))
  w.deliver(record(2))
  t.same(gone, [], 'not from inside the record being written')
  await new Promise(r => setImmediate(r))
  t.equal(gone.length, 1)
  t.match(gone[0], /^cannot send to the watcher: sendmsg: /)
})

t.test('the fan-out: filters by user name, uid and program (a refused run by its path); nothing built without watchers', async t => {
  const ws = new Watchers('stx-no-such-group', m => t.fail(m))
  ws.publish('t', 'grant', { get uid (): number { throw new Error('read without a watcher') } })
  const got = new Map<string, number[]>()
  const make = (name: string, user: string | null, program: string | null) => {
    const { broker, reader } = pair(t)
    ws.add({ user, program }, { fd: broker, wantWritable: () => {}, gone: () => {} })
    got.set(name, [])
    return () => got.set(name, readAll(reader).map(m => m.record.n))
  }
  const reads = [
    make('all', null, null), make('alice', 'alice', null), make('uid1001', '1001', null),
    make('ping', null, '/usr/bin/ping'), make('alice-ping', 'alice', '/usr/bin/ping'),
  ]
  ws.publish('t', 'grant', { n: 0, uid: 1000, user: 'alice', program: '/usr/bin/ping' })
  ws.publish('t', 'grant', { n: 1, uid: 1001, user: 'bob', program: '/usr/bin/ping' })
  ws.publish('t', 'exit', { n: 2, uid: 1000, user: 'alice', program: '/usr/bin/fping' })
  ws.publish('t', 'refuse', { n: 3, uid: 1001, user: 'bob', call: { name: 'run', args: { path: '/usr/bin/ping' } } })
  ws.publish('t', 'rules-loaded', { n: 4, dir: '/etc/elevation.d' })
  reads.forEach(r => r())
  t.same(Object.fromEntries(got), {
    all: [0, 1, 2, 3, 4], alice: [0, 2], uid1001: [1, 3], ping: [0, 1, 3], 'alice-ping': [0],
  })
  t.equal(ws.size, 5)
})

t.test('who may watch: root, a member of the group by its gids or its passwd primary group; a missing group admits only root', async t => {
  const id = (uid: number, gids: number[], pgid = 5000) => ({
    pid: 1, uid, gid: gids[0], gids, supplementary: gids.slice(1), pidfd: -1,
    passwd: { name: `u${uid}`, uid, gid: pgid, dir: '/', shell: '/bin/sh' },
  })
  const root = new Watchers('root', () => {})       // gid 0 exists everywhere
  t.equal(root.refusal(id(0, [0])), undefined)
  t.equal(root.refusal(id(1000, [1000, 0])), undefined, 'a supplementary group')
  t.equal(root.refusal(id(1000, [0])), undefined, 'the kernel gid')
  t.equal(root.refusal(id(1000, [1000], 0)), undefined, 'the passwd primary group')
  t.equal(root.refusal(id(1000, [1000, 4])), 'u1000 may not watch the audit stream: only root and members of the group root may')
  const none = new Watchers('stx-no-such-group', () => {})
  t.equal(none.refusal(id(0, [0])), undefined)
  t.equal(none.refusal(id(1000, [1000])), 'u1000 may not watch the audit stream: only root may (the watch group stx-no-such-group does not exist)')
})

t.test('quotas: watchers per user and in all; released on close, then the user is forgotten', async t => {
  const q = new Quotas({ ...DEFAULT_LIMITS, watchersPerUser: 2, watchers: 3 })
  const alice = q.forUser(1000, 'alice')
  const bob = q.forUser(1001, 'bob')
  t.equal(alice.openWatcher(), undefined)
  t.equal(alice.openWatcher(), undefined)
  t.equal(alice.openWatcher(), 'too many watchers for alice (limit 2)')
  t.equal(bob.openWatcher(), undefined)
  t.equal(bob.openWatcher(), 'too many watchers (limit 3 for all users)')
  t.equal(q.watchers, 3)
  alice.closeWatcher()
  t.equal(bob.openWatcher(), undefined, 'a place freed is anyone\'s')
  alice.closeWatcher()
  alice.closeWatcher() // extra closes change nothing
  t.equal(alice.watchers, 0)
  t.equal(q.watchers, 2)
  bob.closeWatcher()
  bob.closeWatcher()
  t.equal(q.size, 0, 'users holding nothing are forgotten')
})

t.test('human format: one line per record, as TIME EVENT USER PROGRAM DETAIL', async t => {
  const base = { time: '2026-01-01T00:00:00.000Z', session: 3, uid: 1000, user: 'alice', program: '/usr/bin/ping' }
  const call = { name: 'socket', args: { domain: 'inet', type: 'raw', protocol: 'icmp' } }
  const T = base.time
  t.equal(humanLine({ ...base, event: 'grant', pid: 9, call, result: 3 }),
    `${T} grant alice /usr/bin/ping socket(domain=inet, type=raw, protocol=icmp) = 3`)
  t.equal(humanLine({ ...base, event: 'refuse', pid: 9, call, errno: 'EPERM', reason: 'no [socket.*] section of the rule allows these arguments' }),
    `${T} refuse alice /usr/bin/ping socket(domain=inet, type=raw, protocol=icmp) refused EPERM: no [socket.*] section of the rule allows these arguments`)
  t.equal(humanLine({ ...base, event: 'refuse', call: { name: 'socket' }, suppressed: 40, reason: '40 more refusals of socket suppressed' }),
    `${T} refuse alice /usr/bin/ping socket() refused: 40 more refusals of socket suppressed`)
  t.equal(humanLine({ ...base, event: 'launch', pid: 9, argv: ['ping', '-c1', 'a b', ''] }), `${T} launch alice /usr/bin/ping pid 9: ping -c1 'a b' ''`)
  t.equal(humanLine({ ...base, event: 'exit', pid: 9, code: 0, signal: null, status: 0 }), `${T} exit alice /usr/bin/ping pid 9: status 0`)
  t.equal(humanLine({ ...base, event: 'exit', pid: 9, code: null, signal: 'SIGKILL', status: 137 }), `${T} exit alice /usr/bin/ping pid 9: killed by SIGKILL, status 137`)
  t.equal(humanLine({ ...base, event: 'kill', reason: 'the program exited', pids: [10, 11] }), `${T} kill alice /usr/bin/ping the program exited (pids 10, 11)`)
  t.equal(humanLine({ time: T, event: 'client-rejected', uid: 1001, user: null, pid: 7, reason: 'too many sessions for uid 1001 (limit 32)' }),
    `${T} client-rejected uid 1001 - pid 7: too many sessions for uid 1001 (limit 32)`)
  t.equal(humanLine({ time: T, event: 'rules-loaded', dir: '/etc/elevation.d', files: ['a', 'b'], programs: ['p'] }),
    `${T} rules-loaded - - /etc/elevation.d: 2 files, 1 program`)
  t.equal(humanLine({ time: T, event: 'rules-rejected', dir: '/etc/elevation.d', errors: ['f:1: [program] path: bad'] }),
    `${T} rules-rejected - - /etc/elevation.d: 1 error, first: f:1: [program] path: bad`)
  t.equal(humanLine({ time: T, event: 'launch', uid: 1, user: 'a', program: '/p', pid: 2, omitted: ['argv'] }),
    `${T} launch a /p pid 2: - (too big to send whole: argv left out)`)
  t.equal(humanLine({ time: T, event: 'something-new', uid: 1, user: 'a', extra: 1 }), `${T} something-new a - {"extra":1}`)
  t.equal(droppedLine(1), '1 event dropped: this watcher did not read them in time')
  t.equal(droppedLine(12), '12 events dropped: this watcher did not read them in time')
})

t.test('human format: no control character of a record reaches the terminal', async t => {
  t.equal(printable('a\u001b[2Jb\\c\r\n\u009b\u007f'), 'a\\x1b[2Jb\\\\c\\x0d\\x0a\\x9b\\x7f')
  const line = humanLine({
    time: 't', event: 'launch', uid: 1, user: 'a\u001b]0;x\u0007', program: '/p\u001b[1m', pid: 2, argv: ['/p', '\u001b[31mred', 'a\nb'],
  })
  t.notMatch(line, /[\u0000-\u001f\u007f-\u009f]/, JSON.stringify(line))
  t.equal(line, "t launch a\\x1b]0;x\\x07 /p\\x1b[1m pid 2: /p \\x1b[31mred a\\x0ab")
  t.notMatch(humanLine({ time: 't', event: 'refuse', call: { name: 'run', args: { path: '/x\u001b' } }, reason: 'r\u001b', errno: 'E\u001b' }),
    /[\u0000-\u001f]/)
})

t.test('the man pages document watch, its options, the watch group and the watcher limits', async t => {
  const { readFileSync } = await import('node:fs')
  const page = (name: string) => readFileSync(new URL(`../man/${name}`, import.meta.url), 'utf8')
  const client = page('stx-elevate.1')
  t.match(client, /^\.B watch$/m)
  for (const option of ['user', 'program']) t.match(client, new RegExp(`^\\.BI \\\\-\\\\-${option} " ${option}"$`, 'm'))
  const broker = page('stx-elevated.8')
  t.match(broker, /^\.SH WATCHING$/m)
  for (const option of ['watch\\\\-group " name"', 'max\\\\-watchers\\\\-per\\\\-user " n"', 'max\\\\-watchers " n"']) {
    t.match(broker, new RegExp(`^\\.BI \\\\-\\\\-${option}$`, 'm'), option)
  }
})
