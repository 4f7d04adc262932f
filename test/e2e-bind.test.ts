// End to end: bind() to a privileged port through the broker. A real server
// (python3 -m http.server 80) and a C one on [::1]:443 serve a page as the
// unprivileged user; a bind outside the rule (another port, address, family,
// type, protocol, a non-socket, SO_REUSEPORT set) is refused with the rule's
// errno and a refuse record that decodes the address; a bind that needs no
// privilege runs with the user's rights and leaves no grant. A second thread
// rewriting the sockaddr while the broker reads it never gets a forbidden
// port bound. Each refusal has its control: the same call that the rule
// allows is served, and the program run directly cannot bind the port.
import t, { type Test } from 'tap'
import { mkdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { readAudit, waitForAudit, type AuditRecord } from './lib/audit.js'
import { startBroker, type Broker } from './lib/broker.js'
import { runRoot } from './lib/proc.js'
import { bindSection, ruleFile } from './lib/rules.js'
import { jsonLine, runAs, spawnAs, type RunResult } from './lib/run.js'
import { setupE2E, sharedBroker } from './lib/setup.js'
import type { TestUser } from './lib/users.js'

const e = await setupE2E(t)
const { user, fx, tree } = e

/** The program the rule names: python3's real path (the broker resolves symlinks). */
const PYTHON = realpathSync('/usr/bin/python3')
/** Root, for helpers started like the user's commands (spawnAs: bounded, own process group). */
const ROOT: TestUser = { name: 'root', uid: 0, gid: 0 }

const probeSections = (reuseport?: 'allow') => [
  bindSection({ name: 'web4', families: ['inet'], types: ['stream'], ports: [80], addresses: ['127.0.0.1'], reuseport }),
  bindSection({ name: 'web6', families: ['inet6'], types: ['stream'], ports: [443], addresses: ['::1'] }),
  bindSection({ name: 'tftp', families: ['inet'], types: ['dgram'], ports: [69], addresses: ['127.0.0.1'] }),
  bindSection({ name: 'tftp6', families: ['inet6'], types: ['dgram'], ports: [69], addresses: ['::1'], errno: 'EPERM' }),
]
const rules = (reuseport?: 'allow') => ({
  'probe.conf': ruleFile({ path: fx.probe, users: [user.name] }, probeSections(reuseport), 'stx-probe: privileged binds on loopback'),
  'python.conf': ruleFile({ path: PYTHON, users: [user.name] },
    [bindSection({ name: 'http', families: ['inet'], types: ['stream'], ports: [80], addresses: ['127.0.0.1'] })],
    'python3 -m http.server 80 --bind 127.0.0.1'),
})
const broker = sharedBroker(t, tree, () => ({ rules: rules() }))

interface BindOut {
  pid: number
  uid: number
  socket: number | string
  fd_family?: string
  inode?: number
  reuseport?: string
  bind?: string
  address?: string
  port?: number
  listen?: string
}

/**
 * The records of the session whose program had `pid`, once its exit record
 * is written (bounded): then every grant and refusal of the session is in.
 */
async function sessionOf(b: Broker, pid: number): Promise<AuditRecord[]> {
  const launch = await waitForAudit(b.audit, a => a.event === 'launch' && a.pid === pid, 5000, `launch record of pid ${pid}`)
  await waitForAudit(b.audit, a => a.event === 'exit' && a.session === launch.session, 10_000, `exit record of session ${launch.session}`)
  return readAudit(b.audit).filter(a => a.session === launch.session)
}

const bindRecords = (records: AuditRecord[], event: 'grant' | 'refuse') =>
  records.filter(a => a.event === event && a.call?.name === 'bind')

/**
 * `stx-probe bind ... reuseaddr` directly (b undefined) or through the
 * broker; its JSON line and, through the broker, its session's records.
 * SO_REUSEADDR, as servers set it: a connection closed by the server side
 * (http.server's) leaves the port in TIME_WAIT for a minute, which would
 * make a later plain bind of that port fail with EADDRINUSE.
 */
async function probeBind(b: Broker | undefined, args: string[]): Promise<{ r: RunResult, out: BindOut, records: AuditRecord[] }> {
  const argv = ['bind', ...args, 'reuseaddr']
  const r = await runAs(user, b ? e.client(b.socket, fx.probe, ...argv) : [fx.probe, ...argv], { timeoutMs: 30_000 })
  let out: BindOut
  try {
    out = jsonLine<BindOut>(r.stdout, 'socket')
  } catch (err) {
    throw new Error(`stx-probe ${argv.join(' ')}: ${(err as Error).message}\nexit ${r.code} signal ${r.signal}\nstderr: ${r.stderr}`)
  }
  return { r, out, records: b ? await sessionOf(b, out.pid) : [] }
}

/** A refused bind: the errno, nothing bound, one refuse record decoding the call, no grant. */
function assertRefused(t: Test, got: { r: RunResult, out: BindOut, records: AuditRecord[] },
  errno: string, args: { family: string, type: string, address: string, port: number }) {
  t.equal(got.out.bind, errno, `bind: ${errno} (stderr: ${got.r.stderr})`)
  t.equal(got.r.code, 1, 'the probe says the bind failed')
  t.notOk(got.out.address, 'nothing bound')
  t.same(bindRecords(got.records, 'grant'), [], 'no grant record')
  const refused = bindRecords(got.records, 'refuse')
  t.equal(refused.length, 1, `one refuse record: ${JSON.stringify(got.records)}`)
  const rec = refused[0]
  if (!rec) return
  t.match(rec, { uid: user.uid, user: user.name, program: fx.probe, errno, reason: String })
  t.match(rec.call, { name: 'bind', args: { ...args, fd: got.out.socket } }, 'the record decodes family, type, address and port')
  t.type(rec.reason, 'string')
}

/** A granted bind: bound where asked, one grant record with the section and the decoded call. */
function assertGranted(t: Test, got: { r: RunResult, out: BindOut, records: AuditRecord[] },
  section: string, args: { family: string, type: string, address: string, port: number }) {
  t.equal(got.out.bind, 'ok', `bound (stderr: ${got.r.stderr})`)
  t.equal(got.out.address, args.address, 'getsockname: the address asked for')
  t.equal(got.out.port, args.port, 'getsockname: the port asked for')
  t.equal(got.out.uid, user.uid, 'the program runs as the user')
  const granted = bindRecords(got.records, 'grant')
  t.equal(granted.length, 1, `one grant record: ${JSON.stringify(got.records)}`)
  const rec = granted[0]
  if (!rec) return
  t.match(rec, { uid: user.uid, user: user.name, program: fx.probe, rule: { section }, result: 0 })
  t.match(rec.call, { name: 'bind', args: { ...args, fd: got.out.socket } })
  t.same(bindRecords(got.records, 'refuse'), [], 'no refuse record')
}

interface TcpRow { address: string, port: number, state: number, uid: number, inode: number }

/** /proc/net/tcp (IPv4, the reader's namespace): local address, port, state, owner uid, inode. */
function tcp4Rows(): TcpRow[] {
  return readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1).filter(l => l.trim()).map(l => {
    const f = l.trim().split(/\s+/)
    const [hexAddr, hexPort] = f[1].split(':')
    const b = Buffer.from(hexAddr, 'hex')  // host (little-endian) order
    return {
      address: `${b[3]}.${b[2]}.${b[1]}.${b[0]}`, port: parseInt(hexPort, 16), state: parseInt(f[3], 16),
      uid: Number(f[7]), inode: Number(f[9]),
    }
  })
}
const TCP_LISTEN = 0x0a

// --- a real server on port 80: python3 -m http.server ---------------------------

/** A directory the user's server can serve, with one page. */
function webRoot(): { dir: string, page: string, token: string } {
  const dir = tree.path('www')
  mkdirSync(dir, { recursive: true, mode: 0o755 })
  const token = `stx-elevate e2e page ${process.pid}`
  writeFileSync(join(dir, 'hello.txt'), `${token}\n`, { mode: 0o644 })
  return { dir, page: 'hello.txt', token }
}

/**
 * As root: GET http://HOST:PORT/PATH over a plain socket (no proxy), print
 * "status=N" and the body. The socket is closed with SO_LINGER 0 (a reset):
 * the server's side then never sits in TIME_WAIT, which would keep the port
 * from being bound without SO_REUSEADDR for a minute (by later tests, or
 * other files').
 */
const FETCH = [
  'import socket, struct, sys',
  's = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)',
  's.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))',
  's.sendall(("GET %s HTTP/1.0\\r\\nHost: %s\\r\\n\\r\\n" % (sys.argv[3], sys.argv[1])).encode())',
  'data = b""',
  'while True:',
  '    chunk = s.recv(65536)',
  '    if not chunk: break',
  '    data += chunk',
  's.close()',
  'head, _, body = data.partition(b"\\r\\n\\r\\n")',
  'sys.stdout.write("status=%s\\n" % head.split(b" ")[1].decode() + body.decode())',
].join('\n')

t.test('control: python3 -m http.server 80 run directly by the user fails: permission denied', async t => {
  const r = await runAs(user, [PYTHON, '-m', 'http.server', '80', '--bind', '127.0.0.1'], { timeoutMs: 30_000 })
  t.not(r.code, 0, 'python3 exits with an error')
  t.match(r.stderr, /PermissionError|Permission denied/, `says why: ${r.stderr.slice(-500)}`)
})

t.test('stx-elevate python3 -m http.server 80 --bind 127.0.0.1 serves a page as the user; SIGINT stops it', async t => {
  const b = await broker()
  const www = webRoot()
  const run = spawnAs(user, e.client(b.socket, PYTHON, '-u', '-m', 'http.server', '80', '--bind', '127.0.0.1', '--directory', www.dir))
  t.teardown(() => run.kill('SIGKILL'))
  await run.waitForLine(/Serving HTTP on 127\.0\.0\.1 port 80\b/, 20_000)

  const grant = await waitForAudit(b.audit, a => a.event === 'grant' && a.call?.name === 'bind' && a.program === PYTHON, 5000, 'grant record of the bind')
  t.match(grant, {
    uid: user.uid, user: user.name, program: PYTHON, rule: { section: 'bind.http' }, result: 0,
    call: { name: 'bind', args: { family: 'inet', type: 'stream', address: '127.0.0.1', port: 80, fd: Number } },
  })

  const got = await runRoot(['python3', '-c', FETCH, '127.0.0.1', '80', `/${www.page}`], { timeoutMs: 15_000 })
  t.equal(got.code, 0, `the page was fetched over loopback (stderr: ${got.stderr})`)
  t.match(got.stdout, /^status=200\n/)
  t.match(got.stdout, www.token, 'the page the user\'s server read')

  // The listening socket is the user's: python3 made it, the broker bound it.
  const rows = tcp4Rows().filter(r => r.address === '127.0.0.1' && r.port === 80 && r.state === TCP_LISTEN)
  t.equal(rows.length, 1, '/proc/net/tcp: one listener on 127.0.0.1:80')
  t.equal(rows[0]?.uid, user.uid, '/proc/net/tcp: owned by the user')
  const ss = await runRoot(['ss', '-Htlne', 'sport = :80'], { timeoutMs: 10_000 })
  t.match(ss.stdout, new RegExp(`127\\.0\\.0\\.1:80\\b[^\\n]*\\buid:${user.uid}\\b`), `ss -e shows uid:${user.uid}: ${ss.stdout}`)

  run.kill('SIGINT')
  const r = await run.wait(15_000)
  t.equal(r.code, 0, `SIGINT, forwarded to python3, ends the server cleanly (signal ${r.signal}; stderr: ${r.stderr.slice(-500)})`)
  t.match(r.stdout, /Keyboard interrupt received, exiting/)
  t.match(r.stderr, new RegExp(`"GET /${www.page} HTTP/1\\.0" 200`), 'the server logged the request')
  const exit = await waitForAudit(b.audit, a => a.event === 'exit' && a.session === grant.session, 5000, 'exit record')
  t.equal(exit.status, 0)
})

// --- an IPv6 server below 1024: stx-probe serve6 ---------------------------------

/** As root: connect to [ADDR]:PORT, print the first line the server sends, close with a reset (see FETCH). */
const READ_LINE = [
  'import socket, struct, sys',
  's = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)',
  's.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))',
  'f = s.makefile("r")',
  'sys.stdout.write(f.readline())',
  'f.close()',
  's.close()',
].join('\n')

t.test('control: stx-probe serve6 443 run directly cannot bind [::1]:443 (EACCES)', async t => {
  const r = await runAs(user, [fx.probe, 'serve6', '443', '2'], { timeoutMs: 15_000 })
  t.equal(jsonLine(r.stdout, 'serve').serve, 'EACCES')
  t.equal(r.code, 1)
})

t.test('stx-elevate stx-probe serve6 443: a C server on [::1]:443 answers a client over loopback', async t => {
  const b = await broker()
  const run = spawnAs(user, e.client(b.socket, fx.probe, 'serve6', '443', '20'))
  t.teardown(() => run.kill('SIGKILL'))
  const ready = jsonLine(await run.waitForLine(l => l.includes('"serve"'), 15_000), 'serve')
  t.match(ready, { serve: 'ok', address: '::1', port: 443 }, 'bound and listening on [::1]:443')
  const got = await runRoot(['python3', '-c', READ_LINE, '::1', '443'], { timeoutMs: 15_000 })
  t.equal(got.code, 0, `connected (stderr: ${got.stderr})`)
  t.equal(got.stdout, `hello from stx-probe on [::1]:443 uid=${user.uid}\n`, 'the user\'s server answered')
  const r = await run.wait(15_000)
  t.equal(r.code, 0, `served one connection (stderr: ${r.stderr})`)
  const records = await sessionOf(b, ready.pid)
  const grants = bindRecords(records, 'grant')
  t.equal(grants.length, 1)
  t.match(grants[0], { rule: { section: 'bind.web6' }, result: 0, call: { args: { family: 'inet6', type: 'stream', address: '::1', port: 443, fd: ready.socket } } })
})

// --- the port, the address, the family and type, the protocol --------------------

t.test('control: run directly, the probe cannot bind 127.0.0.1:80 (EACCES) and can bind 8080', async t => {
  const low = await probeBind(undefined, ['inet', 'stream', '127.0.0.1', '80'])
  t.equal(low.out.bind, 'EACCES')
  const high = await probeBind(undefined, ['inet', 'stream', '127.0.0.1', '8080'])
  t.equal(high.out.bind, 'ok')
  t.equal(high.out.port, 8080)
})

t.test('through the broker, 127.0.0.1:80 is bound for the user, with a grant record', async t => {
  const got = await probeBind(await broker(), ['inet', 'stream', '127.0.0.1', '80'])
  assertGranted(t, got, 'bind.web4', { family: 'inet', type: 'stream', address: '127.0.0.1', port: 80 })
})

t.test('port 81 when the rule says 80: EACCES and a refuse record with the address and port', async t => {
  const got = await probeBind(await broker(), ['inet', 'stream', '127.0.0.1', '81'])
  assertRefused(t, got, 'EACCES', { family: 'inet', type: 'stream', address: '127.0.0.1', port: 81 })
})

t.test('ports that need no privilege (8080, 0) are bound with the user\'s rights: no grant, no refusal', async t => {
  const b = await broker()
  for (const port of ['8080', '0']) {
    const got = await probeBind(b, ['inet', 'stream', '127.0.0.1', port])
    t.equal(got.out.bind, 'ok', `port ${port} bound (stderr: ${got.r.stderr})`)
    if (port === '0') t.ok((got.out.port ?? 0) >= 1024, `port 0: the kernel picked an unprivileged port (${got.out.port})`)
    else t.equal(got.out.port, 8080)
    t.same(bindRecords(got.records, 'grant'), [], `port ${port}: no grant record`)
    t.same(bindRecords(got.records, 'refuse'), [], `port ${port}: no refuse record`)
  }
})

t.test('addresses the rule does not list are refused: 0.0.0.0:80, 127.0.0.2:80, ::1:80, ::ffff:127.0.0.1:80', async t => {
  const b = await broker()
  const cases = [
    { family: 'inet', address: '0.0.0.0', why: 'the wildcard is allowed only where it is written' },
    { family: 'inet', address: '127.0.0.2', why: 'another loopback address' },
    { family: 'inet6', address: '::1', why: 'port 80 is for inet only' },
    { family: 'inet6', address: '::ffff:127.0.0.1', why: 'an IPv4-mapped address matches only if written so' },
  ]
  for (const c of cases) {
    await t.test(`${c.family} [${c.address}]:80 (${c.why})`, async t => {
      const got = await probeBind(b, [c.family, 'stream', c.address, '80'])
      assertRefused(t, got, 'EACCES', { family: c.family, type: 'stream', address: c.address, port: 80 })
    })
  }
})

t.test('a socket of the wrong family or type is refused; the errno is the one its sections name', async t => {
  const b = await broker()
  await t.test('inet dgram 127.0.0.1:80 (the rule says inet stream): EACCES', async t => {
    const got = await probeBind(b, ['inet', 'dgram', '127.0.0.1', '80'])
    assertRefused(t, got, 'EACCES', { family: 'inet', type: 'dgram', address: '127.0.0.1', port: 80 })
  })
  await t.test('inet6 stream [::1]:69 (69 is for dgram): EACCES', async t => {
    const got = await probeBind(b, ['inet6', 'stream', '::1', '69'])
    assertRefused(t, got, 'EACCES', { family: 'inet6', type: 'stream', address: '::1', port: 69 })
  })
  await t.test('inet6 dgram [::1]:80 (the rule says inet stream): EPERM, the errno of the inet6 dgram section', async t => {
    const got = await probeBind(b, ['inet6', 'dgram', '::1', '80'])
    assertRefused(t, got, 'EPERM', { family: 'inet6', type: 'dgram', address: '::1', port: 80 })
  })
  await t.test('the comparison: the dgram sections grant what they name: inet 127.0.0.1:69 and inet6 [::1]:69', async t => {
    assertGranted(t, await probeBind(b, ['inet', 'dgram', '127.0.0.1', '69']), 'bind.tftp',
      { family: 'inet', type: 'dgram', address: '127.0.0.1', port: 69 })
    assertGranted(t, await probeBind(b, ['inet6', 'dgram', '::1', '69']), 'bind.tftp6',
      { family: 'inet6', type: 'dgram', address: '::1', port: 69 })
  })
})

t.test('a stream socket of another protocol than TCP (MPTCP) is refused', async t => {
  const direct = await probeBind(undefined, ['inet', 'mptcp', '127.0.0.1', '8080'])
  t.type(direct.out.socket, 'number', `control: the user can make an MPTCP socket (${direct.out.socket})`)
  t.equal(direct.out.bind, 'ok', 'control: and bind it to an unprivileged port')
  const got = await probeBind(await broker(), ['inet', 'mptcp', '127.0.0.1', '80'])
  assertRefused(t, got, 'EACCES', { family: 'inet', type: 'stream', address: '127.0.0.1', port: 80 })
})

t.test('bind on a file descriptor that is not a socket: ENOTSOCK, nothing granted', async t => {
  const direct = await probeBind(undefined, ['inet', 'stream', '127.0.0.1', '80', 'devnull'])
  t.equal(direct.out.bind, 'ENOTSOCK', 'control: the kernel\'s answer')
  const got = await probeBind(await broker(), ['inet', 'stream', '127.0.0.1', '80', 'devnull'])
  t.equal(got.out.fd_family, 'ENOTSOCK', 'the fd is /dev/null')
  t.equal(got.out.bind, 'ENOTSOCK')
  t.same(bindRecords(got.records, 'grant'), [], 'no grant record')
})

t.test('a sockaddr length the filter does not trap (20) runs with the user\'s rights: EACCES for port 80', async t => {
  const got = await probeBind(await broker(), ['inet', 'stream', '127.0.0.1', '80', 'addrlen=20'])
  t.equal(got.out.bind, 'EACCES')
  t.same(bindRecords(got.records, 'grant'), [], 'no grant record')
})

// --- the race: the sockaddr changes while the broker reads it ---------------------

interface RaceOut { tries: number, flips: number, bound: Record<string, number>, other: number, ok: number, errors: Record<string, number> }

const RACE_TRIES = 4000

async function race(t: Test, a: [string, number], b: [string, number]): Promise<RaceOut> {
  const br = await broker()
  const r = await runAs(user, e.client(br.socket, fx.probe, 'bind-race', a[0], String(a[1]), b[0], String(b[1]), String(RACE_TRIES), '240'), { timeoutMs: 300_000 })
  t.equal(r.code, 0, `the race ran to its end (signal ${r.signal}; stderr: ${r.stderr.slice(-500)})`)
  const out = jsonLine<RaceOut>(r.stdout, 'tries')
  t.equal(out.tries, RACE_TRIES, `${RACE_TRIES} tries`)
  t.ok(out.flips > out.tries, `the second thread kept flipping (${out.flips} flips)`)
  t.equal(out.other, 0)
  return out
}

t.test('a thread flipping the port between 80 (allowed) and 81 while bind() runs: never bound to 81', async t => {
  const out = await race(t, ['127.0.0.1', 80], ['127.0.0.1', 81])
  t.same(Object.keys(out.bound), ['127.0.0.1:80'], `only 127.0.0.1:80 was ever bound: ${JSON.stringify(out.bound)}`)
  t.ok(out.ok > 0, `some binds read port 80 and were granted (${out.ok})`)
  t.ok((out.errors.EACCES ?? 0) > 0, `some read port 81 and were refused (${out.errors.EACCES})`)
  // EADDRINUSE would only mean the broker's dup of the previous socket (bound
  // to 80) was not closed yet: harmless, but nothing else may happen.
  t.same(Object.keys(out.errors).filter(k => k !== 'EACCES' && k !== 'EADDRINUSE'), [], `every try bound 80 or was refused: ${JSON.stringify(out.errors)}`)
})

t.test('a thread flipping the address between 127.0.0.1 (allowed) and 127.0.0.2 on port 80: never bound to 127.0.0.2', async t => {
  const out = await race(t, ['127.0.0.1', 80], ['127.0.0.2', 80])
  t.same(Object.keys(out.bound), ['127.0.0.1:80'], `only 127.0.0.1:80 was ever bound: ${JSON.stringify(out.bound)}`)
  t.ok(out.ok > 0 && (out.errors.EACCES ?? 0) > 0, `both outcomes happened (${out.ok} bound, ${out.errors.EACCES} refused)`)
})

t.test('a thread flipping the port between 8080 (no privilege) and 81: never bound to 81 (the kernel checks again)', async t => {
  const out = await race(t, ['127.0.0.1', 8080], ['127.0.0.1', 81])
  t.notOk('127.0.0.1:81' in out.bound, `never bound to 81: ${JSON.stringify(out.bound)}`)
  t.same(Object.keys(out.bound).filter(k => k !== '127.0.0.1:8080'), [], 'nothing but 8080 was bound')
})

// --- SO_REUSEPORT: joining another service's port group ---------------------------

/**
 * As root: a service on 127.0.0.1:80 with SO_REUSEPORT whose socket belongs
 * to the user (made with the user's euid, bound as root), as a server of
 * the user started through the broker would be: the kernel lets another
 * socket of the same user with SO_REUSEPORT join its group. Prints
 * "ready", holds until stdin closes.
 */
const REUSEPORT_SERVICE = [
  'import os, socket, sys',
  'os.seteuid(int(sys.argv[1]))',
  's = socket.socket(socket.AF_INET, socket.SOCK_STREAM)',
  's.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)',
  's.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)',
  'os.seteuid(0)',
  's.bind(("127.0.0.1", 80))',
  's.listen(8)',
  'print("ready", flush=True)',
  'sys.stdin.read()',
].join('\n')

t.test('SO_REUSEPORT hijack: a program may not join a service\'s port group unless its section says reuseport = allow', async t => {
  const service = spawnAs(ROOT, ['python3', '-c', REUSEPORT_SERVICE, String(user.uid)])
  t.teardown(() => service.kill('SIGKILL'))
  await service.waitForLine(/^ready$/, 15_000)
  const rows = tcp4Rows().filter(r => r.address === '127.0.0.1' && r.port === 80 && r.state === TCP_LISTEN)
  t.equal(rows.length, 1, 'control: the service listens on 127.0.0.1:80')
  t.equal(rows[0]?.uid, user.uid, 'control: its socket is the user\'s (the kernel would let the user\'s sockets join its group)')
  const b = await broker()

  await t.test('without SO_REUSEPORT the port is taken (EADDRINUSE): the service holds it', async t => {
    const got = await probeBind(b, ['inet', 'stream', '127.0.0.1', '80'])
    t.equal(got.out.bind, 'EADDRINUSE')
  })

  await t.test('with SO_REUSEPORT set, the bind to 127.0.0.1:80 is refused with a refuse record', async t => {
    const got = await probeBind(b, ['inet', 'stream', '127.0.0.1', '80', 'reuseport', 'listen'])
    t.equal(got.out.reuseport, 'ok', 'the program set SO_REUSEPORT (no privilege needed)')
    assertRefused(t, got, 'EACCES', { family: 'inet', type: 'stream', address: '127.0.0.1', port: 80 })
    const rec = bindRecords(got.records, 'refuse')[0]
    t.match(rec?.reason, /reuseport|SO_REUSEPORT/i, `the reason names SO_REUSEPORT: ${rec?.reason}`)
    t.match(rec?.rule, { section: 'bind.web4' })
  })

  await t.test('the comparison: with reuseport = allow, the same bind joins the group', async t => {
    const allow = await startBroker(t, tree, { rules: rules('allow') })
    const got = await probeBind(allow, ['inet', 'stream', '127.0.0.1', '80', 'reuseport', 'listen'])
    assertGranted(t, got, 'bind.web4', { family: 'inet', type: 'stream', address: '127.0.0.1', port: 80 })
    t.equal(got.out.listen, 'ok', 'and listens beside the service')
  })

  service.closeStdin()
  const s = await service.wait(10_000)
  t.equal(s.code, 0, `the service ended (stderr: ${s.stderr})`)
})

// --- the owner of a brokered socket -------------------------------------------------

t.test('the socket the broker bound belongs to the user (/proc/net/tcp)', async t => {
  const b = await broker()
  const run = spawnAs(user, e.client(b.socket, fx.probe, 'bind', 'inet', 'stream', '127.0.0.1', '80', 'reuseaddr', 'listen', 'hold=20'))
  t.teardown(() => run.kill('SIGKILL'))
  const out = jsonLine<BindOut>(await run.waitForLine(l => l.includes('"bind"'), 15_000), 'bind')
  t.equal(out.bind, 'ok')
  t.equal(out.listen, 'ok')
  const row = tcp4Rows().find(r => r.inode === out.inode)
  t.ok(row, `the probe's socket (inode ${out.inode}) is in /proc/net/tcp`)
  t.match(row, { address: '127.0.0.1', port: 80, state: TCP_LISTEN, uid: user.uid }, 'listening on 127.0.0.1:80, owned by the user')
  run.closeStdin()
  const r = await run.wait(10_000)
  t.equal(r.code, 0)
  const records = await sessionOf(b, out.pid)
  t.equal(bindRecords(records, 'grant').length, 1, 'it was a brokered bind')
})
