// End to end: faults and fd hygiene (issue 10; doc/FAULTS.md maps every
// item). The broker killed with SIGKILL: a program waiting in a trapped
// call gets ENOSYS from the kernel (the listener's last fd closed, so the
// program fails closed), and so does every later trapped call; its client
// says what happened and exits 1; a new broker on the same socket path
// serves at once. A killed client's program is reaped, not left a zombie.
// A program holds no fd of another session while sessions come and go. A
// run carrying 253 fds, or one whose fds the broker cannot all take
// (MSG_CTRUNC), closes that client with every received fd closed.
import t from 'tap'
import { existsSync, readFileSync, readdirSync, readlinkSync } from 'node:fs'
import { readAudit, waitForAudit } from './lib/audit.js'
import { startBroker } from './lib/broker.js'
import { brokerSubtree, killSubtree, pidsUnder } from './lib/cgroup.js'
import { mustRunRoot, sleep } from './lib/proc.js'
import { rawClient as rawClientAs } from './lib/raw-client.js'
import { probeRule } from './lib/rules.js'
import { jsonLine, runAs, spawnAs, type RunningAs } from './lib/run.js'
import { setupE2E, sharedBroker } from './lib/setup.js'

const e = await setupE2E(t)
const { user, fx, tree } = e

const rules = () => ({ rules: { 'probe.conf': probeRule({ path: fx.probe, users: [user.name] }) } })
const broker = sharedBroker(t, tree, rules)
const rawClient = (socket: string, kase: string) => rawClientAs(user, fx, socket, kase)

const fdCount = (pid: number): number => readdirSync(`/proc/${pid}/fd`).length

async function until(what: string, cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`)
    await sleep(25)
  }
}

/** The broker's fd count once it settles back to `baseline` (closes run off the loop), bounded. */
async function fdsBackTo(pid: number, baseline: number, timeoutMs = 10_000): Promise<number> {
  const deadline = Date.now() + timeoutMs
  let n = fdCount(pid)
  while (n !== baseline && Date.now() < deadline) {
    await sleep(50)
    n = fdCount(pid)
  }
  return n
}

/** What a program has open: fd number → link target. */
function fdsOf(pid: number): Record<string, string> {
  const out: Record<string, string> = {}
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try { out[fd] = readlinkSync(`/proc/${pid}/fd/${fd}`) } catch { /* closed meanwhile */ }
  }
  return out
}

/** The syscall a process is in ("41 0x2 0x3 0x1 ..." while in socket(AF_INET, SOCK_RAW, IPPROTO_ICMP)). */
const syscallOf = (pid: number): string => {
  try { return readFileSync(`/proc/${pid}/syscall`, 'utf8') } catch { return '' }
}

/** The client's own exit (the program outlives it, holding the stdout pipe). */
function clientExit(run: RunningAs): Promise<{ code: number | null, signal: NodeJS.Signals | null }> {
  return new Promise(resolve => {
    if (run.child.exitCode !== null || run.child.signalCode !== null) resolve({ code: run.child.exitCode, signal: run.child.signalCode })
    else run.child.once('exit', (code, signal) => resolve({ code, signal }))
  })
}

const rawLine = (run: RunningAs, n: number) => run.waitForLine(l => l.startsWith(`{"n":${n},`), 15_000).then(l => JSON.parse(l))

t.test('kill -9 of the broker: a program waiting in a trapped call gets ENOSYS, so does every later one; its client exits 1 saying why', async t => {
  const b = await startBroker(t, tree, rules())
  const subtree = brokerSubtree(b.proc.pid!)
  t.teardown(() => killSubtree(subtree))
  const run = spawnAs(user, e.client(b.socket, fx.probe, 'sockets', '3', '60'))
  t.teardown(() => run.kill('SIGKILL'))
  const exited = clientExit(run)
  const pid = JSON.parse(await run.waitForLine(/"ready":true/)).pid
  const grant = spawnAs(user, e.client(b.socket, fx.probe, 'raw4'))
  t.equal((await grant.wait(15_000)).code, 0, 'control: the broker grants a raw socket before it is killed')

  process.kill(b.proc.pid!, 'SIGSTOP')
  run.write('x')
  await until(`pid ${pid} waits in socket(AF_INET, SOCK_RAW, IPPROTO_ICMP)`, () => /^41 0x2 0x3 0x1 /.test(syscallOf(pid)))
  const grantsBefore = readAudit(b.audit).filter(a => a.event === 'grant').length
  process.kill(b.proc.pid!, 'SIGKILL')

  const line = JSON.parse(await run.waitForLine(/"calls":/))
  t.match(line, { pid, calls: 3, sockets: 0, wrong: 0, errors: { ENOSYS: 3 } }, 'the waiting call and the two after it fail with ENOSYS: no hang, no socket')
  t.same(await exited, { code: 1, signal: null }, 'the client exits 1')
  t.match(run.stderr(), /^stx-elevate: the broker closed the connection before \S*stx-probe finished\n$/, 'with one line saying why')
  t.equal(readAudit(b.audit).filter(a => a.event === 'grant').length, grantsBefore, 'no grant record after the kill')
  await run.wait(10_000)
})

/** The client with its stdin (and so its program's) a pipe nobody writes to or closes for 60 s. */
const heldOpen = (argv: string[]) => ['bash', '-c', 'exec "$@" < <(exec sleep 60)', 'bash', ...argv]

t.test('kill -9 of the broker: a program holding a brokered raw socket keeps it, and gets no other', async t => {
  const b = await startBroker(t, tree, rules())
  const subtree = brokerSubtree(b.proc.pid!)
  t.teardown(() => killSubtree(subtree))
  const run = spawnAs(user, heldOpen(e.client(b.socket, fx.probe, 'hold', '60')))
  t.teardown(() => { try { process.kill(-run.pid, 'SIGKILL') } catch { /* gone */ } })
  const ready = JSON.parse(await run.waitForLine(/"ready":true/))
  t.type(ready.raw, 'number', 'the raw socket was granted')
  process.kill(b.proc.pid!, 'SIGKILL')
  t.same(await clientExit(run), { code: 1, signal: null }, 'the client exits 1')
  // DESIGN.md: a broker gone means trapped calls fail (ENOSYS); a socket
  // handed out before is the program's, as a setcap program's would be.
  // Under systemd the unit's cgroup, sessions included, is killed when the
  // broker dies (KillMode=control-group); here the test cleans up.
  t.match(fdsOf(ready.pid)[String(ready.raw)], /^socket:\[\d+\]$/, 'the handed-out socket stays open in the program (as designed: not revoked)')
  t.notOk(Object.values(fdsOf(ready.pid)).some(l => /seccomp/.test(l)), 'no listener of any session in it')
})

t.test('a restarted broker on the same socket path serves at once', async t => {
  const b1 = await startBroker(t, tree, rules())
  const subtree = brokerSubtree(b1.proc.pid!)
  t.teardown(() => killSubtree(subtree))
  process.kill(b1.proc.pid!, 'SIGKILL')
  await until('the broker is dead', () => !b1.alive())
  t.ok(existsSync(b1.socket), 'the dead broker\'s socket file is left behind')
  const dead = await runAs(user, e.client(b1.socket, fx.probe, 'exit', '0'))
  t.equal(dead.code, 1, 'a client meanwhile exits 1')
  t.match(dead.stderr, /^stx-elevate: cannot reach the broker at .*: Connection refused: the stx-elevated broker is not running/, 'saying it cannot reach the broker')

  const b2 = await startBroker(t, tree, { ...rules(), socket: b1.socket })
  const r = await runAs(user, e.client(b2.socket, fx.probe, 'raw4'))
  t.equal(r.code, 0, `the first client is served (stderr: ${r.stderr})`)
  t.type(jsonLine(r.stdout, 'raw4').raw4, 'number', 'with its raw socket')
  await waitForAudit(b2.audit, a => a.event === 'grant', 5000, 'the new broker\'s grant record')
})

t.test('the client is killed: the program is reaped, not left a zombie', async t => {
  const b = await broker()
  const run = spawnAs(user, heldOpen(e.client(b.socket, fx.probe, 'fork', 'hold-nohup', '60')))
  t.teardown(() => { try { process.kill(-run.pid, 'SIGKILL') } catch { /* gone */ } })
  const ids = JSON.parse(await run.waitForLine(/^\{"parent":/))
  t.teardown(() => { try { process.kill(ids.child, 'SIGKILL') } catch { /* gone */ } })
  run.kill('SIGKILL')
  const exit = await waitForAudit(b.audit, a => a.event === 'exit' && a.pid === ids.parent, 15_000, 'the exit record')
  t.match(exit, { signal: 'SIGKILL', status: 137 }, 'killed after the grace period')
  await until(`/proc/${ids.parent} is gone`, () => !existsSync(`/proc/${ids.parent}`))
  t.pass('the program is reaped')
})

t.test('a long-running program\'s fds stay its own while other sessions come and go', async t => {
  const b = await broker()
  const run = spawnAs(user, e.client(b.socket, fx.probe, 'hold', '60'))
  t.teardown(() => run.kill('SIGKILL'))
  const ready = JSON.parse(await run.waitForLine(/"ready":true/))
  const before = fdsOf(ready.pid)
  t.same(Object.keys(before).sort(), ['0', '1', '2', String(ready.raw)].sort(), 'stdio and its raw socket, nothing else')
  const snapshots: Array<Record<string, string>> = []
  let others = 0
  for (let round = 0; round < 5; round++) {
    const batch = Array.from({ length: 6 }, () => spawnAs(user, e.client(b.socket, fx.probe, 'raw4')))
    const sampling = (async () => {
      while (batch.some(r => r.child.exitCode === null)) {
        snapshots.push(fdsOf(ready.pid))
        await sleep(5)
      }
    })()
    for (const r of batch) {
      const res = await r.wait(15_000)
      if (res.code === 0) others++
    }
    await sampling
  }
  t.equal(others, 30, 'the 30 other sessions ran and got their sockets')
  t.ok(snapshots.length > 0, `${snapshots.length} looks at /proc/${ready.pid}/fd meanwhile`)
  t.same(snapshots.filter(s => JSON.stringify(s) !== JSON.stringify(before)), [], 'every look saw the same fds')
  run.closeStdin()
  t.equal((await run.wait(10_000)).code, 0, 'the held program ends well')
})

t.test('control: the kernel passes at most 253 fds in one message (254: the send fails)', async t => {
  const b = await broker()
  const r = await rawClient(b.socket, 'run-254fds')
  t.match(r.error, /^OSError: .*Invalid argument/, 'sendmsg: EINVAL')
  t.equal(r.sent, 0, 'nothing sent')
})

t.test('a run carrying 253 fds: an error, a client-rejected record, and every fd closed', async t => {
  const b = await broker()
  await runAs(user, e.client(b.socket, fx.probe, 'exit', '0'))
  const baseline = fdCount(b.proc.pid!)
  const r = await rawClient(b.socket, 'run-253fds')
  t.equal(r.error, null, 'sent')
  t.equal(r.fds, 253, 'with 253 fds')
  t.same(r.replies, [{ v: 1, type: 'error', reason: 'run takes 4 fds, got 253' }], 'answered: the broker took all 253')
  t.ok(r.eof, 'then the broker closes')
  const rec = await waitForAudit(b.audit, a => a.event === 'client-rejected' && a.pid === r.pid, 5000, 'the client-rejected record')
  t.match(rec, { uid: user.uid, reason: 'run takes 4 fds, got 253' }, 'uid from the kernel, the reason')
  t.equal(await fdsBackTo(b.proc.pid!, baseline), baseline, `the broker's fds are back to ${baseline}`)
  const ok = await runAs(user, e.client(b.socket, fx.probe, 'exit', '0'))
  t.equal(ok.code, 0, 'the next client is served')
})

t.test('MSG_CTRUNC: fds the broker cannot all take (its fd limit) close that client, every fd it took closed', async t => {
  const b = await broker()
  const pid = b.proc.pid!
  await runAs(user, e.client(b.socket, fx.probe, 'exit', '0'))
  const baseline = fdCount(pid)
  const limit = /^Max open files\s+(\d+)\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'))!
  // new fds take the lowest free numbers: room for the connection, its
  // pidfd and some 40 of the 253 (an fd numbered above stays usable)
  const low = baseline + 48
  await mustRunRoot(['prlimit', `--pid=${pid}`, `--nofile=${low}:${limit[2]}`])
  t.comment(`broker fds ${readdirSync(`/proc/${pid}/fd`).join(' ')}; limit now ${/^Max open files.*$/m.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'))![0]}`)
  t.teardown(() => mustRunRoot(['prlimit', `--pid=${pid}`, `--nofile=${limit[1]}:${limit[2]}`]))
  const r = await rawClient(b.socket, 'run-253fds')
  await mustRunRoot(['prlimit', `--pid=${pid}`, `--nofile=${limit[1]}:${limit[2]}`])
  t.equal(r.error, null, 'sent')
  t.equal(r.fds, 253, 'with 253 fds')
  t.same(r.replies, [{ v: 1, type: 'error', reason: 'too many fds' }], 'answered: too many fds')
  t.ok(r.eof, 'then the broker closes')
  await waitForAudit(b.audit, a => a.event === 'client-rejected' && a.pid === r.pid && a.reason === 'too many fds', 5000, 'the client-rejected record')
  t.equal(await fdsBackTo(pid, baseline), baseline, `the broker's fds are back to ${baseline}`)
  const ok = await runAs(user, e.client(b.socket, fx.probe, 'exit', '0'))
  t.equal(ok.code, 0, 'the next client is served')
})
