// End to end: stx-elevate learn runs real programs as the test user, and
// the rules it writes are exact, pass check, and work under a real broker.
import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, realpathSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { request } from 'node:http'
import { basename, join } from 'node:path'
import { parseRuleFile } from '../src/broker/rules/parse.js'
import type { ProgramRule, SocketRule } from '../src/broker/rules/model.js'
import { getpwnam } from '../src/shared/native/libc.js'
import { waitForAudit } from './lib/audit.js'
import { startBroker } from './lib/broker.js'
import { PYTHON3 } from './lib/paths.js'
import { cleanArgv, rootEnv, runRoot, sleep } from './lib/proc.js'
import { runAs } from './lib/run.js'
import { setupE2E } from './lib/setup.js'
import { stopTerminals, terminal } from './lib/tmux.js'

const e = await setupE2E(t)
const { user, fx, tree } = e

const out = tree.path('learn-out')
mkdirSync(out, { recursive: true, mode: 0o755 })
chmodSync(out, 0o755)
let files = 0
const outFile = () => join(out, `rule${++files}.conf`)
/** An empty rules directory, so that check judges a learned file alone (not against this machine's /etc/elevation.d). */
const emptyRules = tree.path('learn-empty-rules')
mkdirSync(emptyRules, { recursive: true, mode: 0o755 })
chmodSync(emptyRules, 0o755)

const learn = (args: string[], timeoutMs = 30_000) =>
  runRoot([tree.client, 'learn', '-u', user.name, ...args], { timeoutMs, env: rootEnv() })

const rule = (text: string, file = 'learned.conf'): ProgramRule => {
  const r = parseRuleFile(file, text)
  if (!r.program) throw new Error(`not a valid rule:\n${r.errors.join('\n')}\n${text}`)
  return r.program
}

const sockets = (p: ProgramRule) => p.calls.filter((c): c is SocketRule => c.kind === 'socket')
  .map(c => ({ domain: c.domain, type: c.type, protocol: c.protocol, headerIncluded: c.headerIncluded, errno: c.errno }))
  .sort((a, b) => a.domain - b.domain)

const check = (file: string) => runRoot([tree.client, 'check', '--rules', emptyRules, file], { timeoutMs: 30_000 })

/** The shipped ping rule's socket sections, the reference for what learn should find. */
const shippedPing = rule(readFileSync(join(tree.shippedRules, 'ping.conf'), 'utf8'), 'ping.conf')

t.test('control: ICMP datagram sockets are closed to the user, so ping needs privilege', async t => {
  const r = await runAs(user, [fx.ping, '-c1', '-W2', '127.0.0.1'])
  t.equal(r.code, 2, 'the capability-less ping fails as the user alone')
  t.match(r.stderr, /Operation not permitted/)
})

t.test('learn refuses to run as anyone but root', async t => {
  const r = await runAs(user, [tree.client, 'learn', '--', '/bin/true'])
  t.equal(r.code, 1)
  t.match(r.stderr, /^stx-elevate learn: must run as root/)
  t.equal(r.stdout, '', 'no rule')
})

t.test('learn refuses to learn as root, and a user that does not exist', async t => {
  const asRoot = await runRoot([tree.client, 'learn', '-u', 'root', '--', '/bin/true'], { env: rootEnv() })
  t.equal(asRoot.code, 1)
  t.match(asRoot.stderr, /root: a program run as root needs no rule/)
  const nobody = await runRoot([tree.client, 'learn', '-u', 'no-such-user-stx', '--', '/bin/true'], { env: rootEnv() })
  t.equal(nobody.code, 1)
  t.match(nobody.stderr, /no user no-such-user-stx in the password database/)
})

t.test('learn says why it could not start the program: no exec group, a working directory the user cannot enter', async t => {
  const group = await learn(['--exec-group', 'no-such-group-stx', '--', '/bin/true'])
  t.equal(group.code, 1)
  t.match(group.stderr, /could not start \/usr\/bin\/true: group no-such-group-stx does not exist; create it with: groupadd --system no-such-group-stx/)
  const private_ = tree.path('learn-private')
  mkdirSync(private_, { recursive: true })
  chmodSync(private_, 0o700)
  const cwd = await runRoot([tree.client, 'learn', '-u', user.name, '--', '/bin/true'], { env: rootEnv(), cwd: private_ })
  t.equal(cwd.code, 1)
  t.match(cwd.stderr, new RegExp(`could not start /usr/bin/true: .*fchdir.*Permission denied \\(${user.name} cannot enter the current directory ${private_}; run learn from one it can\\)`))
  t.equal(cwd.stdout, '', 'no rule')
})

t.test('learn on ping: the shipped rule\'s raw ICMP and ICMPv6 sockets, and ping works under it through a broker', async t => {
  const r = await learn(['--', fx.ping, '-c1', '-W2', '127.0.0.1'])
  t.equal(r.code, 0, `learn exits 0; stderr: ${r.stderr}`)
  t.match(r.stderr, /1 packets transmitted, 1 received/, 'ping worked while learning (its output on standard error)')
  t.match(r.stderr, /stx-elevate learn: ping exited with status 0/)
  const learned = rule(r.stdout)
  t.equal(learned.path, fx.ping)
  t.same(learned.users, [user.name], 'users: the user it ran as')
  t.match(r.stdout, /^sha256 = [0-9a-f]{64}$/m, 'the binary is pinned')
  t.same(sockets(learned), sockets(shippedPing), 'the same socket sections as elevation.d/ping.conf')
  t.same(learned.calls.map(c => c.name).sort(), ['icmp', 'icmp6'])
  t.match(r.stdout, /^; learn: seen 1 time: socket\(inet, raw, icmp\)$/m, 'a count comment')
  t.notMatch(r.stdout, /bytes from/, 'nothing of ping\'s output in the rule')

  const file = outFile()
  writeFileSync(file, r.stdout)
  const c = await check(file)
  t.equal(c.code, 0, `stx-elevate check passes: ${c.stdout}`)
  t.match(c.stdout, /socket inet raw icmp, socket inet6 raw ipv6-icmp/)

  const b = await startBroker(t, tree, { rules: { 'ping.conf': r.stdout } })
  const brokerCheck = await runRoot([tree.broker, '--check', '--rules', b.rulesDir], { timeoutMs: 30_000 })
  t.equal(brokerCheck.code, 0, `stx-elevated --check passes: ${brokerCheck.stderr}`)
  const run = await runAs(user, e.client(b.socket, fx.ping, '-c1', '-W2', '127.0.0.1'))
  t.equal(run.code, 0, `ping runs as ${user.name} under the learned rule: ${run.stderr}`)
  t.match(run.stdout, /1 received/)
  const other = await runAs(e.other, e.client(b.socket, fx.ping, '-c1', '-W2', '127.0.0.1'))
  t.equal(other.code, 1, 'the rule is for the learned user only')
})

/** Resolves once something accepts on 127.0.0.1:port; bounded. */
async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs
  for (;;) {
    const up = await new Promise<boolean>(res => {
      const s = connect(port, '127.0.0.1')
      s.on('connect', () => { s.destroy(); res(true) })
      s.on('error', () => res(false))
    })
    if (up) return
    if (Date.now() > until) throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`)
    await sleep(100)
  }
}

const httpStatus = (port: number) => new Promise<number>((res, rej) => {
  const req = request({ host: '127.0.0.1', port, path: '/', timeout: 5000 }, r => { r.resume(); res(r.statusCode ?? 0) })
  req.on('error', rej)
  req.on('timeout', () => req.destroy(new Error('timed out')))
  req.end()
})

t.test('learn on python\'s http.server on port 80: a bind rule for exactly that port and address; SIGINT to learn ends it cleanly', async t => {
  const file = outFile()
  const argv = cleanArgv([tree.client, 'learn', '-u', user.name, '-o', file, '--', PYTHON3, '-m', 'http.server', '80', '--bind', '127.0.0.1'], rootEnv())
  const child = spawn(argv[0], argv.slice(1), { cwd: '/', stdio: ['ignore', 'pipe', 'pipe'], detached: true })
  let stderr = ''
  child.stderr!.setEncoding('utf8').on('data', d => { stderr += d })
  child.stdout!.resume()
  const closed = new Promise<number | null>(res => child.on('close', code => res(code)))
  const killer = setTimeout(() => { try { process.kill(-child.pid!, 'SIGKILL') } catch { /* gone */ } }, 40_000)
  t.teardown(() => clearTimeout(killer))
  try {
    await waitForPort(80, 20_000)
    t.equal(await httpStatus(80), 200, 'the server, run as the user, serves on port 80 while learning')
  } finally {
    child.kill('SIGINT')
  }
  t.equal(await closed, 0, `learn exits 0 after its program ended; stderr: ${stderr}`)
  t.match(stderr, /python3\.\d+ exited with status 0/, 'SIGINT reached the server, which exited cleanly')
  t.match(stderr, new RegExp(`wrote ${file}`))
  const text = readFileSync(file, 'utf8')
  const learned = rule(text)
  t.match(learned.path, /^\/usr\/bin\/python3\.\d+$/, 'the real binary, not the python3 link')
  t.same(learned.args?.text, '-m http.server 80 --bind 127.0.0.1', 'the interpreter\'s arguments are pinned')
  t.same(learned.calls.map(c => c.kind === 'bind' && { name: c.name, families: c.families, types: c.types, ports: c.ports, addresses: c.addresses, reusePort: c.reusePort }),
    [{ name: 'http', families: [2], types: [1], ports: [{ from: 80, to: 80 }], addresses: ['127.0.0.1'], reusePort: false }],
    'one bind section: inet stream 127.0.0.1 port 80')
  const c = await check(file)
  t.equal(c.code, 0, `check passes: ${c.stdout}`)
  t.notMatch(c.stdout, /warning/, 'no warning: the interpreter is pinned')
})

t.test('learn on privileged socket options: the values that need privilege, and not those that do not; they work under a broker', async t => {
  const argv = [fx.probe, 'setopt', 'inet', 'dgram', 'SO_MARK=5', 'SO_PRIORITY=3', 'SO_PRIORITY=7', 'SO_MARK=6']
  const r = await learn(['--', ...argv])
  t.equal(r.code, 0, r.stderr)
  t.match(r.stderr, /stx-probe exited with status 0/, 'every option was set while learning')
  const learned = rule(r.stdout)
  t.same(learned.calls.map(c => c.kind === 'setsockopt' && { name: c.name, option: c.optionName, values: c.values }), [
    { name: 'mark', option: 'SO_MARK', values: [{ from: 5, to: 5 }, { from: 6, to: 6 }] },
    { name: 'priority', option: 'SO_PRIORITY', values: [{ from: 7, to: 7 }] },
  ], 'SO_MARK 5 and 6 in one section; SO_PRIORITY 7 only (3 needs no privilege)')
  const b = await startBroker(t, tree, { rules: { 'probe.conf': r.stdout } })
  const run = await runAs(user, e.client(b.socket, ...argv))
  t.equal(run.code, 0, `the same run works under the broker: ${run.stdout} ${run.stderr}`)
  const refused = await runAs(user, e.client(b.socket, fx.probe, 'setopt', 'inet', 'dgram', 'SO_MARK=7'))
  t.equal(refused.code, 1, 'a value not seen while learning is refused')
})

t.test('learn on a raw socket with IP_HDRINCL: header-included = allow on that socket\'s section', async t => {
  const r = await learn(['--', fx.probe, 'hdrincl'])
  t.equal(r.code, 0, r.stderr)
  const learned = rule(r.stdout)
  t.same(sockets(learned), [{ domain: 2, type: 3, protocol: 1, headerIncluded: true, errno: 1 }])
  t.match(r.stdout, /; learn: seen 1 time: setsockopt\(IP_HDRINCL\) on socket\(inet, raw, icmp\)/)
  const b = await startBroker(t, tree, { rules: { 'probe.conf': r.stdout } })
  const run = await runAs(user, e.client(b.socket, fx.probe, 'hdrincl'))
  t.match(run.stdout, /"hdrincl":"ok"|"setsockopt":"ok"/, `IP_HDRINCL is set under the broker: ${run.stdout}`)
})

t.test('learn refuses a later exec as the broker does, and says so', async t => {
  const r = await learn(['--', fx.probe, 'exec', '/bin/true'])
  t.equal(r.code, 0, r.stderr)
  t.match(r.stderr, /note: stx-probe tried to execute \/bin\/true: refused \(EPERM\), as the broker refuses every exec/)
  t.match(r.stderr, /stx-probe exited with status 3/, 'the probe saw its exec fail')
  t.same(rule(r.stdout).calls, [])
})

t.test('learn leaves unprivileged binds to the kernel, and records SO_REUSEPORT on a privileged one', async t => {
  const high = await learn(['--', fx.probe, 'bind', 'inet', 'stream', '127.0.0.1', '8087'])
  t.equal(high.code, 0, high.stderr)
  t.match(high.stderr, /stx-probe exited with status 0/)
  t.same(rule(high.stdout).calls, [], 'port 8087 needs no privilege')
  const low = await learn(['--', fx.probe, 'bind', 'inet6', 'dgram', '::1', '81', 'reuseport'])
  t.equal(low.code, 0, low.stderr)
  t.match(low.stderr, /stx-probe exited with status 0/)
  t.same(rule(low.stdout).calls.map(c => c.kind === 'bind' && { name: c.name, families: c.families, types: c.types, addresses: c.addresses, reusePort: c.reusePort }),
    [{ name: 'port-81', families: [10], types: [2], addresses: ['::1'], reusePort: true }])
})

t.test('learn on a program that needs no privilege: no section as root, and it says so', async t => {
  const file = outFile()
  const r = await learn(['-o', file, '--', '/bin/true'])
  t.equal(r.code, 0, r.stderr)
  t.match(r.stderr, /stx-elevate learn: \/usr\/bin\/true made no call that needs privilege: it needs no rule/)
  t.equal(r.stdout, '', 'with -o, nothing on standard output')
  const learned = rule(readFileSync(file, 'utf8'))
  t.same(learned.calls, [], 'no call section')
  t.notMatch(readFileSync(file, 'utf8'), /as = root/)
  const c = await check(file)
  t.equal(c.code, 0, c.stdout)
  t.match(c.stdout, /nothing as root/)
})

t.test('without -u, learn runs the program as the user who ran sudo, else as nobody', async t => {
  const nobody = getpwnam('nobody')!
  for (const [env, who] of [[{ SUDO_USER: user.name }, user], [{}, nobody]] as const) {
    const r = await runRoot([tree.client, 'learn', '--', '/usr/bin/id', '-u'], { timeoutMs: 30_000, env: rootEnv(env) })
    t.equal(r.code, 0, r.stderr)
    t.match(r.stderr, new RegExp(`^${who.uid}$`, 'm'), `id -u printed ${who.uid} (${who.name})`)
    t.match(r.stdout, new RegExp(`^users = ${who.name}$`, 'm'), `the rule is for ${who.name}`)
  }
  const root = await runRoot([tree.client, 'learn', '--', '/usr/bin/id', '-u'], { timeoutMs: 30_000, env: rootEnv({ SUDO_USER: 'root' }) })
  t.equal(root.code, 1)
  t.equal(root.stderr, 'stx-elevate learn: root is root: a program run as root needs no rule; name the user it is for with -u USER\n')
})

t.test('--timeout ends a program that does not end by itself (SIGTERM), and the rule is still written', async t => {
  const r = await learn(['--timeout', '1', '--', '/bin/sleep', '60'])
  t.equal(r.code, 0, r.stderr)
  t.match(r.stderr, /--timeout 1: sending SIGTERM to sleep/)
  t.match(r.stderr, /sleep exited with status 143/)
  t.same(rule(r.stdout).calls, [])
})

t.test('-o refuses to replace a file without --force or --merge, before running anything', async t => {
  const file = outFile()
  writeFileSync(file, 'precious\n')
  const r = await learn(['-o', file, '--', fx.ping, '-c1', '-W2', '127.0.0.1'])
  t.equal(r.code, 1)
  t.match(r.stderr, /exists; give --force to replace it, or --merge/)
  t.notMatch(r.stderr, /PING/, 'the program did not run')
  t.equal(readFileSync(file, 'utf8'), 'precious\n')
  const forced = await learn(['-o', file, '--force', '--', '/bin/true'])
  t.equal(forced.code, 0, forced.stderr)
  t.ok(rule(readFileSync(file, 'utf8')))
})

t.test('-o is checked before the program runs: a missing directory, a directory, one another user can write; a symlink is replaced, never followed', async t => {
  const ping = ['--', fx.ping, '-c1', '-W2', '127.0.0.1']
  const refused = async (t: Test, args: string[], message: RegExp) => {
    const r = await learn([...args, ...ping])
    t.equal(r.code, 1, r.stderr)
    t.match(r.stderr, message)
    t.notMatch(r.stderr, /PING/, 'the program did not run')
    t.equal(r.stdout, '', 'no rule')
  }
  await refused(t, ['-o', join(out, 'no-such-dir', 'x.conf')], /cannot write .*x\.conf: the directory .*no-such-dir does not exist; create it first/)
  await refused(t, ['-o', out, '--force'], new RegExp(`${out} is a directory; name the file to write`))

  const userDir = tree.path('learn-user-dir')
  mkdirSync(userDir, { recursive: true })
  chownSync(userDir, user.uid, user.gid)
  await refused(t, ['-o', join(userDir, 'ping.conf')], new RegExp(`will not write .*: ${userDir} is owned by uid ${user.uid}, not root, so another user could replace the rule`))
  const groupDir = tree.path('learn-group-dir')
  mkdirSync(groupDir, { recursive: true })
  chmodSync(groupDir, 0o775)
  await refused(t, ['-o', join(groupDir, 'ping.conf')], /is writable by group or other \(mode 0775\)/)
  t.same(readdirSync(userDir).concat(readdirSync(groupDir)), [], 'nothing was created in either')

  // Below a directory the user owns, a root-owned directory is no safer: the user can swap it, or a symlink in
  // its place can lead elsewhere; through a root-owned link, the directory it leads to counts.
  const rootBelowUser = join(userDir, 'root-owned')
  mkdirSync(rootBelowUser, { mode: 0o755 })
  const linkInUserDir = join(userDir, 'to-out')
  symlinkSync(out, linkInUserDir)
  const linkToUserDir = tree.path('learn-link-to-user-dir')
  symlinkSync(rootBelowUser, linkToUserDir)
  const way = new RegExp(`will not write .*: ${userDir} is owned by uid ${user.uid}, not root, so another user could put another directory in the way`)
  await refused(t, ['-o', join(rootBelowUser, 'ping.conf')], way)
  await refused(t, ['-o', join(linkInUserDir, 'ping.conf')], way)
  await refused(t, ['-o', join(linkToUserDir, 'ping.conf')], way)
  t.same(readdirSync(rootBelowUser).concat(readdirSync(out).filter(f => f === 'ping.conf')), [], 'nothing was written below or through them')

  const sticky = tree.path('learn-sticky-dir')
  mkdirSync(sticky, { recursive: true })
  chmodSync(sticky, 0o1777)
  const target = join(sticky, 'target')
  writeFileSync(target, 'the file the link points to\n', { mode: 0o600 })
  const link = join(sticky, 'ping.conf')
  symlinkSync(target, link)
  await refused(t, ['-o', link], /ping\.conf exists; give --force to replace it/)
  const forced = await learn(['-o', link, '--force', '--', '/bin/true'])
  t.equal(forced.code, 0, `a sticky directory only root owns will do: ${forced.stderr}`)
  t.ok(lstatSync(link).isFile(), 'the symlink was replaced by the rule')
  t.equal(lstatSync(link).mode & 0o7777, 0o644)
  t.equal(readFileSync(target, 'utf8'), 'the file the link points to\n', 'what it pointed to is untouched')
  t.equal(statSync(target).mode & 0o7777, 0o600, 'and keeps its mode')
  t.ok(rule(readFileSync(link, 'utf8')))
})

t.test('--merge: runs of ping -4 and ping -6 give both sections once, with counts; the result passes check', async t => {
  const file = outFile()
  const four = await learn(['-o', file, '--', fx.ping, '-4', '-c1', '-W2', '127.0.0.1'])
  t.equal(four.code, 0, four.stderr)
  t.same(rule(readFileSync(file, 'utf8')).calls.map(c => c.name), ['icmp'], 'ping -4 opens the IPv4 socket only')
  const six = await learn(['--merge', file, '-o', file, '--', fx.ping, '-6', '-c1', '-W2', '::1'])
  t.equal(six.code, 0, six.stderr)
  const again = await learn(['--merge', file, '-o', file, '--', fx.ping, '-4', '-c1', '-W2', '127.0.0.1'])
  t.equal(again.code, 0, again.stderr)
  const text = readFileSync(file, 'utf8')
  const merged = rule(text)
  t.same(merged.calls.map(c => c.name), ['icmp', 'icmp6'], 'each section once')
  t.same(sockets(merged), sockets(shippedPing))
  t.match(text, /^; learn: seen 2 times: socket\(inet, raw, icmp\)$/m, 'the IPv4 socket was seen in two runs')
  t.match(text, /^; learn: seen 1 time: socket\(inet6, raw, ipv6-icmp\)$/m)
  t.equal((text.match(/^\[program\]$/mg) ?? []).length, 1)
  const c = await check(file)
  t.equal(c.code, 0, c.stdout)
})

/** learn running in the background: its output so far, a wait for a line of it, and its exit status. */
function learnInBackground(t: Test, args: string[]) {
  const argv = cleanArgv([tree.client, 'learn', '-u', user.name, ...args], rootEnv())
  const child = spawn(argv[0], argv.slice(1), { cwd: '/', stdio: ['ignore', 'pipe', 'pipe'], detached: true })
  const out = { stdout: '', stderr: '' }
  child.stdout!.setEncoding('utf8').on('data', d => { out.stdout += d })
  child.stderr!.setEncoding('utf8').on('data', d => { out.stderr += d })
  const closed = new Promise<number | null>(res => child.on('close', code => res(code)))
  const killer = setTimeout(() => { try { process.kill(-child.pid!, 'SIGKILL') } catch { /* gone */ } }, 40_000)
  t.teardown(() => { clearTimeout(killer); try { process.kill(-child.pid!, 'SIGKILL') } catch { /* gone */ } })
  const waitFor = async (re: RegExp) => {
    for (const deadline = Date.now() + 20_000; !re.test(out.stdout + out.stderr); await sleep(50)) {
      if (Date.now() > deadline) throw new Error(`no ${re} from learn within 20 s: ${JSON.stringify(out)}`)
    }
  }
  return { out, closed, waitFor }
}

t.test('--merge reads its file again at the end: an edit made during the run is kept', async t => {
  const file = outFile()
  t.equal((await learn(['-o', file, '--', fx.ping, '-4', '-c1', '-W2', '127.0.0.1'])).code, 0)
  const l = learnInBackground(t, ['--merge', file, '-o', file, '--', fx.ping, '-6', '-c3', '-i0.5', '-W2', '::1'])
  await l.waitFor(/bytes from ::1/)
  writeFileSync(file, readFileSync(file, 'utf8') + '; edited while learn ran\n')
  t.equal(await l.closed, 0, l.out.stderr)
  t.match(l.out.stderr, new RegExp(`note: ${file} changed while ${basename(fx.ping)} ran: merging into its text as it is now`))
  const text = readFileSync(file, 'utf8')
  t.match(text, /^; edited while learn ran$/m, 'the edit is kept')
  t.same(rule(text).calls.map(c => c.name), ['icmp', 'icmp6'], 'and the run\'s calls are merged in')
})

t.test('--merge: a file edited during the run so that it no longer takes the calls is left as edited; the rule goes to standard output', async t => {
  const file = outFile()
  t.equal((await learn(['-o', file, '--', fx.ping, '-4', '-c1', '-W2', '127.0.0.1'])).code, 0)
  const before = readFileSync(file, 'utf8')
  const l = learnInBackground(t, ['--merge', file, '-o', file, '--', fx.ping, '-4', '-c3', '-i0.5', '-W2', '127.0.0.1'])
  await l.waitFor(/bytes from 127\.0\.0\.1/)
  const edited = before.replace(/^path = .*$/m, 'path = /usr/bin/true')
  writeFileSync(file, edited)
  t.equal(await l.closed, 1, l.out.stderr)
  t.match(l.out.stderr, new RegExp(`stx-elevate learn: ${file} changed while ${basename(fx.ping)} ran and no longer takes the learned calls: .*; `
    + `nothing written: the rule merged into ${file} as it was when learn started is on standard output`))
  t.equal(readFileSync(file, 'utf8'), edited, 'the admin\'s edit stands')
  const printed = l.out.stdout.slice(l.out.stdout.indexOf('[program]'))
  t.equal(rule(printed).path, fx.ping, 'the run is not lost: its rule is printed')
  t.match(printed, /^; learn: seen 2 times: socket\(inet, raw, icmp\)$/m)
})

t.test('--merge keeps a hand-written rule as written, and adds the learned user', async t => {
  const file = outFile()
  const hand = ['; written by hand', '[program]', `path = ${fx.ping}`, `users = ${e.other.name}`, '', '[socket.v4]', '; the admin\'s note', 'as = root',
    'domain = inet', 'type = raw', 'protocol = icmp', ''].join('\n')
  writeFileSync(file, hand)
  const r = await learn(['--merge', file, '-o', file, '--', fx.ping, '-c1', '-W2', '127.0.0.1'])
  t.equal(r.code, 0, r.stderr)
  const text = readFileSync(file, 'utf8')
  const merged = rule(text)
  t.same(merged.users, [e.other.name, user.name])
  t.same(merged.calls.map(c => c.name), ['v4', 'icmp6'], 'the hand-written section covers IPv4; IPv6 gets its own')
  t.match(text, /; written by hand\n/)
  t.match(text, /\[socket\.v4\]\n; learn: seen 1 time: socket\(inet, raw, icmp\)\n; the admin's note\n/)
})

t.test('--merge refuses a rule whose args pin would refuse this run, before running anything', async t => {
  const python = realpathSync(PYTHON3)
  const file = outFile()
  writeFileSync(file, ['[program]', `path = ${python}`, `users = ${user.name}`, 'args = -m http.server 80 --bind 127.0.0.1', ''].join('\n'))
  const r = await learn(['--merge', file, '--', PYTHON3, '-c', 'print("ran")'])
  t.equal(r.code, 1)
  t.match(r.stderr, /pins args = -m http\.server 80 --bind 127\.0\.0\.1, and this run's arguments \(-c print\("ran"\)\) do not match/)
  t.notMatch(r.stderr, /^ran$/m, 'the program did not run')
})

t.test('learn refuses an interpreter whose code argument a rule cannot pin, or that reads code from standard input, before running anything', async t => {
  const r = await learn(['--', PYTHON3, '-c', 'print("ran")'])
  t.equal(r.code, 1, r.stderr)
  t.equal(r.stderr, `stx-elevate learn: ${basename(realpathSync(PYTHON3))} runs the code its arguments give, and the rule cannot pin "print(\\"ran\\")" `
    + '(args words hold no white space, quote or backslash): args = -c * would grant the calls as root to any code in its place; '
    + 'put that code in a root-owned script and learn the interpreter running the script\n')
  t.equal(r.stdout, '', 'no rule')
  const stdin = await learn(['--', PYTHON3])
  t.equal(stdin.code, 1, stdin.stderr)
  t.equal(stdin.stderr, `stx-elevate learn: ${basename(realpathSync(PYTHON3))} with no arguments runs the code on its standard input, so a rule for it `
    + 'would grant the calls as root to any code; put that code in a root-owned script and learn the interpreter running the script\n')
  const plain = await learn(['--', PYTHON3, '-c', 'print(1)'])
  t.equal(plain.code, 0, `an argument the rule can write is pinned as it is: ${plain.stderr}`)
  t.match(plain.stdout, /^args = -c print\(1\)$/m)
})

t.test('--merge refuses a file for another program, before running anything', async t => {
  const file = outFile()
  writeFileSync(file, ['[program]', 'path = /usr/bin/true', 'users = *', ''].join('\n'))
  const r = await learn(['--merge', file, '--', fx.ping, '-c1', '-W2', '127.0.0.1'])
  t.equal(r.code, 1)
  t.match(r.stderr, new RegExp(`is the rule for /usr/bin/true, not for ${fx.ping}`))
  t.notMatch(r.stderr, /PING/)
})

t.test('--ask without a terminal refuses with a clear message', async t => {
  const r = await runRoot(['setsid', '-w', tree.client, 'learn', '--ask', '-u', user.name, '--', fx.ping, '-c1', '127.0.0.1'], { env: rootEnv() })
  t.equal(r.code, 1)
  t.match(r.stderr, /--ask needs the admin's terminal to ask on, and there is none/)
  t.notMatch(r.stderr, /PING/, 'the program did not run')
})

t.test('--ask through a terminal: permit always, deny, deny with an errno', async t => {
  const socket = tree.path('learn-tmux.sock')
  t.teardown(() => stopTerminals(socket))
  const question = /asks for socket\(inet, raw, icmp\), which needs privilege\.[\s\S]*answer \[p\/a\/d\/e\]:/
  const ask = async (answers: string[]) => {
    const file = outFile()
    const term = await terminal(t, socket, [tree.client, 'learn', '--ask', '-u', user.name, '-o', file, '--', fx.ping, '-4', '-c1', '-W2', '127.0.0.1'])
    await term.waitFor(question)
    for (const a of answers) {
      await term.type(a)
      if (a === 'e') await term.waitFor(/errno \(EPERM, EACCES/)
    }
    const screen = await term.waitFor(/\[exit \d+\]/)
    return { screen, text: existsSync(file) ? readFileSync(file, 'utf8') : '' }
  }

  await t.test('permit always: ping works, and the rule has the section', async t => {
    const { screen, text } = await ask(['a'])
    t.match(screen, /1 packets transmitted, 1 received/)
    t.match(screen, /ping exited with status 0/)
    t.match(screen, /\[exit 0\]/)
    t.match(screen, /^--- 127\.0\.0\.1 ping statistics ---$/m, 'the terminal is left as it was (no raw mode: lines start at the margin)')
    t.same(sockets(rule(text)), sockets(shippedPing).filter(s => s.domain === 2))
  })

  /**
   * The learned rule passes check, and a broker started on it gives ping
   * what it saw while learning: the section's errno, with a refuse record.
   */
  const underBroker = async (t: Test, text: string, errno: string, message: RegExp) => {
    const file = outFile()
    writeFileSync(file, text)
    const c = await check(file)
    t.equal(c.code, 0, `stx-elevate check passes: ${c.stdout}${c.stderr}`)
    t.match(c.stdout, new RegExp(`socket inet raw icmp denied with ${errno}`))
    const b = await startBroker(t, tree, { rules: { 'ping.conf': text } })
    const run = await runAs(user, e.client(b.socket, fx.ping, '-4', '-c1', '-W2', '127.0.0.1'))
    t.not(run.code, 0, 'ping fails under the broker')
    t.match(run.stderr, message)
    const rec = await waitForAudit(b.audit, a => a.event === 'refuse' && a.call?.name === 'socket', 5000, 'refuse record of the socket')
    t.match(rec, { errno, rule: { section: 'socket.icmp' }, reason: '[socket.icmp] denies it' })
  }

  await t.test('deny: ping sees the kernel\'s refusal; the rule denies the socket with that errno (EPERM), and so does the broker', async t => {
    const { screen, text } = await ask(['d'])
    t.match(screen, /Operation not permitted/)
    t.match(screen, /ping exited with status 2/)
    t.match(rule(text).calls, [{ kind: 'socket', name: 'icmp', deny: true, errno: 1, domain: 2, type: 3, protocol: 1 }])
    t.match(text, /^\[socket\.icmp\]\n; learn: seen 1 time: socket\(inet, raw, icmp\)\nas = deny\ndomain = inet\ntype = raw\nprotocol = icmp\n/m)
    t.notMatch(text, /^errno/m, 'the default errno, the kernel\'s own')
    await underBroker(t, text, 'EPERM', /Operation not permitted/)
  })

  await t.test('deny with EACCES: ping sees EACCES; the rule denies the socket with EACCES, and so does the broker', async t => {
    const { screen, text } = await ask(['e', 'EACCES'])
    t.match(screen, /Permission denied/)
    t.notMatch(screen, /Operation not permitted/)
    t.match(screen, /ping exited with status 2/)
    t.match(rule(text).calls, [{ kind: 'socket', name: 'icmp', deny: true, errno: 13 }])
    t.match(text, /^as = deny$[\s\S]*^errno = EACCES$/m)
    t.notMatch(text, /denied with EACCES \(/, 'no comment in place of the section')
    await underBroker(t, text, 'EACCES', /Permission denied/)
  })

  await t.test('Ctrl-C on the terminal stops the program, and the rule is written', async t => {
    const file = outFile()
    const term = await terminal(t, socket, [tree.client, 'learn', '--ask', '-u', user.name, '-o', file, '--', fx.ping, '-4', '-i0.2', '127.0.0.1'])
    await term.waitFor(question)
    await term.type('a')
    await term.waitFor(/icmp_seq=2 /)
    await term.press('C-c')
    const screen = await term.waitFor(/\[exit \d+\]/)
    t.match(screen, /packets transmitted, \d+ received/, 'ping got SIGINT and printed its statistics')
    t.match(screen, /ping exited with status 0/)
    t.match(screen, /\[exit 0\]/)
    t.same(rule(readFileSync(file, 'utf8')).calls.map(c => c.name), ['icmp'])
  })

  await t.test('Ctrl-C while a question waits: the program ends, and learn does not claim it needed no privilege', async t => {
    const file = outFile()
    const term = await terminal(t, socket, [tree.client, 'learn', '--ask', '-u', user.name, '-o', file, '--', fx.ping, '-4', '-c1', '-W2', '127.0.0.1'])
    await term.waitFor(question)
    await term.press('C-c')
    const screen = await term.waitFor(/\[exit \d+\]/)
    t.match(screen, /ping exited with status 130/, 'SIGINT ended ping in its socket call')
    t.match(screen, /note: socket\(inet, raw, icmp\) was still waiting for an answer when ping ended: not in the rule/)
    t.notMatch(screen, /made no call that needs privilege/)
    const text = readFileSync(file, 'utf8')
    t.same(rule(text).calls, [])
    t.notMatch(text, /needs no rule/)
  })

  await t.test('the same call again reuses the answer: one question for two sockets, while the program reads the same terminal', async t => {
    const file = outFile()
    const term = await terminal(t, socket, [tree.client, 'learn', '--ask', '-u', user.name, '-o', file, '--', fx.probe, 'raw-lines'])
    await sleep(300) // let the probe wait for its first line
    await term.type('4')
    await term.waitFor(question)
    await term.type('a')
    await term.waitFor(/"n":1,"raw4":\d+/)
    await term.type('4')
    await term.waitFor(/"n":2,"raw4":\d+/)
    await term.press('C-d')
    const screen = await term.waitFor(/\[exit \d+\]/)
    t.equal((screen.match(/asks for socket\(inet, raw, icmp\)/g) ?? []).length, 1, 'asked once')
    t.match(screen, /stx-probe exited with status 0/)
    const text = readFileSync(file, 'utf8')
    t.match(text, /^; learn: seen 2 times: socket\(inet, raw, icmp\)$/m)
  })

  await t.test('permit once: ping works, and the rule does not grant it', async t => {
    const { screen, text } = await ask(['p'])
    t.match(screen, /1 received/)
    t.same(rule(text).calls, [])
    t.match(text, /^; socket\(inet, raw, icmp\), seen 1 time: permitted as root for that run only$/m)
  })
})
