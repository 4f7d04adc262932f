// End to end: network namespaces and packet sockets. The test builds its own
// little network: namespaces A and B joined by a veth pair, with addresses
// that exist only there (10.200.N.1 in A, .2 in B), and C, whose loopback is
// down. In the host's namespace the test's /24 is an `unreachable` route for
// the test's duration, so nothing aimed at it can leave the host, whatever
// the product does. A client inside A (nsenter --net: the network namespace
// only) gets its program in A, and every socket the broker makes or binds
// for it is made or bound in A: a ping reaches B, a bind takes A's address
// and A's ip_unprivileged_port_start, a packet socket sees A's frames and
// arping gets B's answer. A socket made in another namespace and handed to
// the program as stdin is refused.
import t, { type Test } from 'tap'
import { readFileSync, readlinkSync } from 'node:fs'
import { readAudit, waitForAudit, type AuditRecord } from './lib/audit.js'
import type { Broker } from './lib/broker.js'
import { binaryWithoutCaps } from './lib/fixtures.js'
import { cleanArgv, mustRunRoot, runRoot, type Captured } from './lib/proc.js'
import { bindSection, icmp4, packetSocket, pingRule, ruleFile } from './lib/rules.js'
import { asUser, jsonLine, spawnAs, userEnv } from './lib/run.js'
import { setupE2E, sharedBroker } from './lib/setup.js'
import { enterNetns, testNetns } from './lib/netns.js'
import type { TestUser } from './lib/users.js'

const e = await setupE2E(t)
const { user, fx, tree } = e
const ROOT: TestUser = { name: 'root', uid: 0, gid: 0 }
const arping = await binaryWithoutCaps(tree, '/usr/bin/arping', 'iputils-arping')

const ip = (...args: string[]) => mustRunRoot(['ip', ...args], { timeoutMs: 15_000 })

// --- the test's network ------------------------------------------------------------

/**
 * A /24 under 10.200.0.0/16 that the host routes only by its default route
 * (no address, no more specific route here): blocking it for the test's
 * duration changes nothing else.
 */
async function freeSubnet(): Promise<string> {
  for (let n = 200; n < 255; n++) {
    const prefix = `10.200.${n}`
    const r = await ip('-j', 'route', 'show', 'match', `${prefix}.0/24`)
    const routes = JSON.parse(r.stdout || '[]') as Array<{ dst: string }>
    if (routes.every(x => x.dst === 'default')) return prefix
  }
  throw new Error('no free /24 in 10.200.200.0-10.200.254.0')
}

const NET = await freeSubnet()
const A_ADDR = `${NET}.1`
const B_ADDR = `${NET}.2`
// Registered before the namespaces: removed after them (teardowns run last in, first out).
await ip('route', 'add', 'unreachable', `${NET}.0/24`)
t.teardown(() => runRoot(['ip', 'route', 'del', 'unreachable', `${NET}.0/24`], { timeoutMs: 15_000 }))

/** The test's namespace for `role`, loopback down (A and B bring theirs up below; C keeps it down). */
const netns = (role: string) => testNetns(t, `stx5-${role}-${process.pid}`, { loopback: 'down' })
const A = await netns('a')
const B = await netns('b')
const C = await netns('c')  // loopback left down
await ip('-n', A.name, 'link', 'add', 'a0', 'type', 'veth', 'peer', 'name', 'b0', 'netns', B.name)
await ip('-n', A.name, 'addr', 'add', `${A_ADDR}/24`, 'dev', 'a0')
await ip('-n', B.name, 'addr', 'add', `${B_ADDR}/24`, 'dev', 'b0')
for (const [ns, dev] of [[A, 'lo'], [A, 'a0'], [B, 'lo'], [B, 'b0']] as const) await ip('-n', ns.name, 'link', 'set', dev, 'up')


const broker = sharedBroker(t, tree, () => ({
  rules: {
    'ping.conf': pingRule({ path: fx.ping, users: [user.name] }),
    'probe.conf': ruleFile({ path: fx.probe, users: [user.name] }, [
      icmp4(),
      packetSocket({ name: 'packet', type: 'raw', protocol: 'all' }),
      bindSection({ name: 'web', families: ['inet'], types: ['stream'], ports: [80, 1500], addresses: ['127.0.0.1', A_ADDR] }),
    ], 'stx-probe: raw ICMP, packet sockets, binds in namespaces'),
    'arping.conf': ruleFile({ path: arping, users: [user.name] }, [packetSocket({ name: 'arp', type: 'dgram', protocol: 0 })], 'arping: ARP over a packet socket'),
  },
}))

/** argv as root: enter the namespace (network only: the mount namespace stays the host's), then become the user. */
const inNs = (ns: { path: string }, argv: string[]) => [...enterNetns(ns), ...cleanArgv(asUser(user, argv), userEnv(user))]
const runIn = (ns: { path: string }, argv: string[], timeoutMs = 30_000) => runRoot(inNs(ns, argv), { timeoutMs })
/** As root inside a namespace (ip netns exec: fine for root's helpers). */
const rootIn = (ns: { name: string }, argv: string[], timeoutMs = 30_000) => runRoot(['ip', 'netns', 'exec', ns.name, ...argv], { timeoutMs })

/** The records of the session whose program had `pid`, once its exit record is written (bounded). */
async function sessionOf(b: Broker, pid: number): Promise<AuditRecord[]> {
  const launch = await waitForAudit(b.audit, a => a.event === 'launch' && a.pid === pid, 5000, `launch record of pid ${pid}`)
  await waitForAudit(b.audit, a => a.event === 'exit' && a.session === launch.session, 10_000, `exit record of session ${launch.session}`)
  return readAudit(b.audit).filter(a => a.session === launch.session)
}

/** The launch record of the last session for `program` whose argv ends with `args`, and its records once it exited. */
async function lastSession(b: Broker, program: string, args: string[]): Promise<AuditRecord[]> {
  const same = (a: AuditRecord) => a.event === 'launch' && a.program === program && JSON.stringify(a.argv?.slice(1)) === JSON.stringify(args)
  await waitForAudit(b.audit, same, 5000, `launch record of ${program} ${args.join(' ')}`)
  const launch = readAudit(b.audit).filter(same).pop()!
  return sessionOf(b, launch.pid!)
}

/** The program ran (the client did not fail for its own reasons). */
function ran(t: Test, r: Captured) {
  t.notOk(r.code === 1 && /^stx-elevate: /m.test(r.stderr), `the program ran (not a client failure): ${r.stderr}`)
}

// --- reachability: a destination only the client's namespace can reach ---------------

const PING_B = ['-4', '-c1', '-W2', B_ADDR]

t.test(`control: in the host's namespace ${B_ADDR} is unreachable (nothing leaves the host)`, async t => {
  const route = await runRoot(['ip', 'route', 'get', B_ADDR], { timeoutMs: 10_000 })
  t.not(route.code, 0, `no route: ${route.stderr.trim()}`)
  const r = await runRoot(['/usr/bin/ping', ...PING_B], { timeoutMs: 15_000 })
  t.not(r.code, 0, 'the setcap ping fails')
  t.notMatch(r.stdout, /bytes from/)
})

t.test(`control: inside A, the setcap /usr/bin/ping as the user reaches ${B_ADDR} in B`, async t => {
  const r = await runIn(A, ['/usr/bin/ping', ...PING_B])
  t.equal(r.code, 0, `stderr: ${r.stderr}`)
  t.match(r.stdout, /1 received/)
})

t.test('control: run directly inside A, the copy of ping without capability cannot ping', async t => {
  const r = await runIn(A, [fx.ping, ...PING_B])
  t.not(r.code, 0)
  t.match(r.stderr, /Operation not permitted|socket/i, r.stderr)
})

t.test(`stx-elevate ping from inside A reaches ${B_ADDR}: the raw socket is made in the client's namespace`, async t => {
  const b = await broker()
  const r = await runIn(A, e.client(b.socket, fx.ping, ...PING_B))
  ran(t, r)
  t.equal(r.code, 0, `stderr: ${r.stderr}`)
  t.match(r.stdout, /1 received/)
  const records = await lastSession(b, fx.ping, PING_B)
  t.ok(records.some(a => a.event === 'grant' && a.rule?.section === 'socket.icmp'), 'a grant record for [socket.icmp]')
})

t.test(`stx-elevate ping from the host's namespace does not reach ${B_ADDR}`, async t => {
  const b = await broker()
  const r = await runRoot(cleanArgv(asUser(user, e.client(b.socket, fx.ping, ...PING_B)), userEnv(user)), { timeoutMs: 30_000 })
  ran(t, r)
  t.not(r.code, 0, 'ping fails')
  t.notMatch(r.stdout, /bytes from/, 'no reply')
})

t.test('the program runs in the client\'s namespace (A), not the broker\'s', async t => {
  const b = await broker()
  const r = await runIn(A, e.client(b.socket, fx.probe, 'netns'))
  t.equal(r.code, 0, `stderr: ${r.stderr}`)
  t.equal(jsonLine(r.stdout, 'netns').netns, A.id)
  t.not(A.id, readlinkSync(`/proc/${b.proc.pid}/ns/net`), 'control: A is not the broker\'s namespace')
})

// --- a namespace whose loopback is down ------------------------------------------------

const PING_LO = ['-4', '-c1', '-W2', '127.0.0.1']

t.test('control: in C (loopback down) the setcap /usr/bin/ping cannot reach 127.0.0.1', async t => {
  const r = await runIn(C, ['/usr/bin/ping', ...PING_LO])
  t.not(r.code, 0)
  t.match(r.stderr, /Network is unreachable/i, r.stderr)
})

t.test('stx-elevate ping in C (loopback down) fails as it should: network unreachable', async t => {
  const b = await broker()
  const r = await runIn(C, e.client(b.socket, fx.ping, ...PING_LO))
  ran(t, r)
  t.not(r.code, 0, 'ping fails')
  t.match(r.stderr, /Network is unreachable/i, `ping says why: ${r.stderr}`)
  t.notMatch(r.stdout, /bytes from/, 'no reply: the socket was not made in the broker\'s namespace')
})

// --- binds in the client's namespace ----------------------------------------------------

interface BindOut { pid: number, socket: number | string, fd_family?: string, fd_netns_cookie?: number | string, own_netns_cookie?: number | string, bind?: string, address?: string, port?: number }

async function probeBindIn(ns: { path: string } | undefined, args: string[]): Promise<{ out: BindOut, records: AuditRecord[] }> {
  const b = await broker()
  const argv = e.client(b.socket, fx.probe, 'bind', ...args, 'reuseaddr')  // SO_REUSEADDR: see e2e-bind.test.ts
  const r = ns ? await runIn(ns, argv) : await runRoot(cleanArgv(asUser(user, argv), userEnv(user)), { timeoutMs: 30_000 })
  const out = jsonLine<BindOut>(r.stdout, 'socket')
  return { out, records: await sessionOf(b, out.pid) }
}
const bindRecords = (records: AuditRecord[], event: string) => records.filter(a => a.event === event && a.call?.name === 'bind')

t.test(`a bind to ${A_ADDR}:80 (an address only A has) works from inside A, not from the host's namespace`, async t => {
  const inA = await probeBindIn(A, ['inet', 'stream', A_ADDR, '80'])
  t.equal(inA.out.bind, 'ok', 'bound in A')
  t.match(inA.out, { address: A_ADDR, port: 80 })
  t.match(bindRecords(inA.records, 'grant'), [{ rule: { section: 'bind.web' }, result: 0, call: { args: { address: A_ADDR, port: 80 } } }])
  const inHost = await probeBindIn(undefined, ['inet', 'stream', A_ADDR, '80'])
  t.equal(inHost.out.bind, 'EADDRNOTAVAIL', 'the host\'s namespace has no such address')
})

t.test(`a server in A on ${A_ADDR}:80 answers a client in B`, async t => {
  const b = await broker()
  const run = spawnAs(ROOT, inNs(A, e.client(b.socket, fx.probe, 'serve', A_ADDR, '80', '20')))
  t.teardown(() => run.kill('SIGKILL'))
  const ready = jsonLine(await run.waitForLine(l => l.includes('"serve"'), 15_000), 'serve')
  t.match(ready, { serve: 'ok', address: A_ADDR, port: 80 })
  const READ_LINE = 'import socket, sys\ns = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)\nsys.stdout.write(s.makefile("r").readline())'
  const got = await rootIn(B, ['python3', '-c', READ_LINE, A_ADDR, '80'])
  t.equal(got.code, 0, `connected from B (stderr: ${got.stderr})`)
  t.equal(got.stdout, `hello from stx-probe on [${A_ADDR}]:80 uid=${user.uid}\n`)
  const r = await run.wait(15_000)
  t.equal(r.code, 0, r.stderr)
})

t.test('ip_unprivileged_port_start is the one of the socket\'s namespace', async t => {
  await rootIn(A, ['sh', '-c', 'echo 2000 > /proc/sys/net/ipv4/ip_unprivileged_port_start'])
  await rootIn(B, ['sh', '-c', 'echo 80 > /proc/sys/net/ipv4/ip_unprivileged_port_start'])
  const inA = (await rootIn(A, ['cat', '/proc/sys/net/ipv4/ip_unprivileged_port_start'])).stdout.trim()
  const inB = (await rootIn(B, ['cat', '/proc/sys/net/ipv4/ip_unprivileged_port_start'])).stdout.trim()
  t.same([inA, inB], ['2000', '80'], 'control: set in A and B only (the namespaces go away with the test)')

  await t.test('in A (2000), port 1500 needs privilege: granted by the rule, bound as root', async t => {
    const got = await probeBindIn(A, ['inet', 'stream', '127.0.0.1', '1500'])
    t.equal(got.out.bind, 'ok')
    t.equal(bindRecords(got.records, 'grant').length, 1, 'a grant record: it was elevated')
  })
  await t.test('in A (2000), port 1600 needs privilege and no section names it: EACCES, refuse record', async t => {
    const got = await probeBindIn(A, ['inet', 'stream', '127.0.0.1', '1600'])
    t.equal(got.out.bind, 'EACCES')
    t.match(bindRecords(got.records, 'refuse'), [{ errno: 'EACCES', call: { args: { address: '127.0.0.1', port: 1600 } } }])
  })
  await t.test('the comparison: in the host\'s namespace (1024), port 1600 needs no privilege: bound, no record', async t => {
    const got = await probeBindIn(undefined, ['inet', 'stream', '127.0.0.1', '1600'])
    t.equal(got.out.bind, 'ok')
    t.same(bindRecords(got.records, 'grant'), [])
    t.same(bindRecords(got.records, 'refuse'), [])
  })
  await t.test('in B (80), port 80 needs no privilege: bound with the user\'s rights, no grant record', async t => {
    const got = await probeBindIn(B, ['inet', 'stream', '127.0.0.1', '80'])
    t.equal(got.out.bind, 'ok')
    t.same(bindRecords(got.records, 'grant'), [], 'no grant: the kernel let the user bind it')
  })
  await t.test('in B (80), port 79 needs privilege and no section names it: EACCES', async t => {
    const got = await probeBindIn(B, ['inet', 'stream', '127.0.0.1', '79'])
    t.equal(got.out.bind, 'EACCES')
    t.equal(bindRecords(got.records, 'refuse').length, 1)
  })
})

// --- a socket smuggled in from another namespace ------------------------------------------

/**
 * As root, in the host's namespace: enter the namespace at argv[1] (setns
 * through ctypes), make a TCP socket there, come back, put the socket on fd
 * 0 and exec the rest of argv. The mount namespace is never changed, so the
 * client is an ordinary client whose stdin happens to be that socket.
 */
const SMUGGLE = [
  'import ctypes, os, socket, sys',
  'CLONE_NEWNET = 0x40000000',
  'libc = ctypes.CDLL(None, use_errno=True)',
  'def setns(fd):',
  '    if libc.setns(fd, CLONE_NEWNET) != 0:',
  '        raise OSError(ctypes.get_errno(), "setns")',
  'home = os.open("/proc/self/ns/net", os.O_RDONLY)',
  'setns(os.open(sys.argv[1], os.O_RDONLY))',
  's = socket.socket(socket.AF_INET, socket.SOCK_STREAM)',
  'setns(home)',
  'os.dup2(s.fileno(), 0)',
  'os.execvp(sys.argv[2], sys.argv[2:])',
].join('\n')

async function smuggled(nsPath: string): Promise<{ out: BindOut, records: AuditRecord[] }> {
  const b = await broker()
  const client = cleanArgv(asUser(user, e.client(b.socket, fx.probe, 'bind', 'inet', 'stream', '127.0.0.1', '80', 'fd=0', 'reuseaddr')), userEnv(user))
  const r = await runRoot(['python3', '-c', SMUGGLE, nsPath, ...client], { timeoutMs: 30_000 })
  const out = jsonLine<BindOut>(r.stdout, 'socket')
  return { out, records: await sessionOf(b, out.pid) }
}

t.test('a TCP socket made in A, passed to the program as stdin, cannot be bound to 127.0.0.1:80', async t => {
  const got = await smuggled(A.path)
  t.equal(got.out.socket, 0)
  t.equal(got.out.fd_family, 'inet', 'stdin is an inet socket')
  t.not(got.out.fd_netns_cookie, got.out.own_netns_cookie, 'from another namespace than the program\'s')
  t.equal(got.out.bind, 'EACCES')
  const refused = bindRecords(got.records, 'refuse')
  t.equal(refused.length, 1, `a refuse record: ${JSON.stringify(got.records)}`)
  t.match(refused[0], { uid: user.uid, errno: 'EACCES', call: { args: { fd: 0, family: 'inet', address: '127.0.0.1', port: 80 } } })
  t.match(refused[0]?.reason, /namespace/i, `the reason says why: ${refused[0]?.reason}`)
  t.same(bindRecords(got.records, 'grant'), [], 'no grant')
})

t.test('the comparison: the same hand-over with a socket made in the program\'s own namespace is bound', async t => {
  const got = await smuggled('/proc/self/ns/net')
  t.equal(got.out.fd_family, 'inet')
  t.equal(got.out.fd_netns_cookie, got.out.own_netns_cookie, 'same namespace')
  t.equal(got.out.bind, 'ok')
  t.equal(bindRecords(got.records, 'grant').length, 1)
})

// --- packet sockets --------------------------------------------------------------------------

/** Rows of /proc/PID/net/packet (the namespace of PID): owner uid and inode. */
function packetRows(pid: number): Array<{ uid: number, inode: number }> {
  return readFileSync(`/proc/${pid}/net/packet`, 'utf8').split('\n').slice(1).filter(l => l.trim()).map(l => {
    const f = l.trim().split(/\s+/)  // sk RefCnt Type Proto Iface R Rmem User Inode
    return { uid: Number(f[7]), inode: Number(f[8]) }
  })
}

t.test('control: run directly inside A, a packet socket needs privilege (EPERM), and arping fails', async t => {
  const r = await runIn(A, [fx.probe, 'packet', 'raw', 'all'])
  t.equal(jsonLine(r.stdout, 'packet').packet, 'EPERM')
  const a = await runIn(A, [arping, '-c1', '-w2', '-I', 'a0', B_ADDR])
  t.not(a.code, 0)
  t.match(a.stderr, /Operation not permitted/, a.stderr)
})

t.test('stx-probe packet raw all a0 inside A: made in A for the user, it sees A\'s frames', async t => {
  const b = await broker()
  const run = spawnAs(ROOT, inNs(A, e.client(b.socket, fx.probe, 'packet', 'raw', 'all', 'a0', '15')))
  t.teardown(() => run.kill('SIGKILL'))
  const first = jsonLine(await run.waitForLine(l => l.includes('"packet"'), 15_000), 'packet')
  t.type(first.packet, 'number', `a packet socket: ${JSON.stringify(first)}`)
  t.equal(first.netns, A.id, 'the program is in A')
  t.equal(first.bind, 'ok', 'bound to a0, which exists only in A')
  const row = packetRows(first.pid).find(r => r.inode === first.inode)
  t.ok(row, `the socket (inode ${first.inode}) is in A's /proc/net/packet`)
  t.equal(row?.uid, user.uid, 'owned by the user (made with the user\'s fsuid)')
  t.notOk(readFileSync('/proc/net/packet', 'utf8').split('\n').some(l => l.trim().split(/\s+/)[8] === String(first.inode)),
    'not in the host\'s namespace')

  const ping = await rootIn(B, ['/usr/bin/ping', '-4', '-c3', '-i0.2', '-W1', A_ADDR])
  t.equal(ping.code, 0, `B pings A: ${ping.stderr}`)
  const r = await run.wait(20_000)
  t.equal(r.code, 0, `a frame came in (stderr: ${r.stderr})`)
  t.match(jsonLine(r.stdout, 'frames'), { frames: 1, ifindex: first.ifindex })
  const records = await sessionOf(b, first.pid)
  t.match(records.filter(a => a.event === 'grant'), [{ rule: { section: 'socket.packet' }, call: { name: 'socket', args: { domain: 'packet' } }, result: first.packet }])
})

t.test(`stx-elevate arping -I a0 ${B_ADDR} inside A gets B's answer`, async t => {
  const b = await broker()
  const args = ['-c1', '-w5', '-I', 'a0', B_ADDR]
  const r = await runIn(A, e.client(b.socket, arping, ...args))
  ran(t, r)
  t.equal(r.code, 0, `stdout: ${r.stdout} stderr: ${r.stderr}`)
  t.match(r.stdout, /Received 1 response/)
  const records = await lastSession(b, arping, args)
  t.ok(records.some(a => a.event === 'grant' && a.rule?.section === 'socket.arp'), 'a grant record for [socket.arp]')
})

t.test('a raw ICMP socket the broker made for a program in A belongs to the user', async t => {
  const b = await broker()
  const run = spawnAs(ROOT, inNs(A, e.client(b.socket, fx.probe, 'hold', '20')))
  t.teardown(() => run.kill('SIGKILL'))
  const ready = jsonLine(await run.waitForLine(l => l.includes('"ready"'), 15_000), 'ready')
  t.type(ready.raw, 'number')
  const inode = Number(/^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${ready.pid}/fd/${ready.raw}`))?.[1])
  const rows = readFileSync(`/proc/${ready.pid}/net/raw`, 'utf8').split('\n').slice(1).filter(l => l.trim()).map(l => l.trim().split(/\s+/))
  const row = rows.find(f => Number(f[9]) === inode)
  t.ok(row, `the socket (inode ${inode}) is in A's /proc/net/raw`)
  t.equal(Number(row?.[7]), user.uid, 'owned by the user')
  run.closeStdin()
  t.equal((await run.wait(10_000)).code, 0)
})
