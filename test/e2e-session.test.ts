// End to end: a session's containment. The program runs in its own cgroup
// (v2) with the client's audit login uid, nice value, I/O priority, CPU
// affinity and oom_score_adj, none of the broker's; when the program exits
// or the client goes away, everything left in the session's cgroup is
// killed (a `kill` audit record names it) and never gets an elevated call.
import t, { type Test } from 'tap'
import { existsSync, mkdirSync, readFileSync, readdirSync, rmdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { readAudit, waitForAudit, type AuditRecord } from './lib/audit.js'
import { startBroker } from './lib/broker.js'
import { until } from './lib/container.js'
import { runRoot, sleep } from './lib/proc.js'
import { probeRule } from './lib/rules.js'
import { asUser, jsonLine, runAs, spawnAs, userEnv, type RunningAs } from './lib/run.js'
import { setupE2E, sharedBroker } from './lib/setup.js'

const e = await setupE2E(t)
const { user, fx, tree } = e

const rules = () => ({ rules: { 'probe.conf': probeRule({ path: fx.probe, users: [user.name] }) } })
const broker = sharedBroker(t, tree, rules)

/** The v2 line of /proc/PID/cgroup. */
function cgroupOf(pid: number | 'self'): string {
  const m = /^0::(.*)$/m.exec(readFileSync(`/proc/${pid}/cgroup`, 'utf8'))
  if (!m) throw new Error(`no cgroup v2 line for ${pid}`)
  return m[1]
}

/** Where the cgroup v2 hierarchy is mounted (its root; these tests need one). */
function cgroup2Mount(): string {
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = line.split(' ')
    const sep = f.indexOf('-', 6)
    if (sep > 0 && f[sep + 1] === 'cgroup2' && f[3] === '/') return f[4]
  }
  throw new Error('no cgroup2 mount of the hierarchy root')
}
const MOUNT = cgroup2Mount()
const cgroupDir = (name: string) => join(MOUNT, name)

/** Alive: exists and is not a zombie (a killed orphan may wait for init to reap it). */
function running(pid: number): boolean {
  try {
    return !/^State:\s+[ZX]/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'))
  } catch {
    return false
  }
}

async function until(what: string, cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`)
    await sleep(25)
  }
}

/** SIGKILL a pid in teardown if it still runs (never our own processes: these are the user's). */
function reap(t: Test, pid: () => number | undefined): void {
  t.teardown(() => {
    const p = pid()
    if (p && running(p)) try { process.kill(p, 'SIGKILL') } catch { /* gone */ }
  })
}

const records = (file: string, pred: (r: AuditRecord) => boolean) => readAudit(file).filter(pred)

/** The client's run wrapped by a root shell that sets its context first: sh -c 'SETUP && exec "$@"' setpriv ... */
function runWithContext(setup: string, argv: string[], timeoutMs = 30_000) {
  return runRoot(['sh', '-c', `${setup} && exec "$@"`, 'sh', ...asUser(user, argv)], { env: userEnv(user), timeoutMs })
}

t.test('control: a program run directly is in the client\'s cgroup', async t => {
  const r = await runAs(user, [fx.probe, 'session'])
  t.equal(r.code, 0, r.stderr)
  t.equal(jsonLine(r.stdout, 'cgroup').cgroup, cgroupOf('self'), 'the probe inherits the cgroup of its parent (the test)')
})

t.test('the program runs in its own session cgroup under the broker\'s, removed once it exits', async t => {
  const b = await broker()
  const r = await runAs(user, e.client(b.socket, fx.probe, 'session'))
  t.equal(r.code, 0, r.stderr)
  const probe = jsonLine(r.stdout, 'cgroup')
  const launch = await waitForAudit(b.audit, a => a.event === 'launch' && a.pid === probe.pid, 5000, 'the launch record')
  const own = cgroupOf(b.proc.pid!)
  const expected = `${own === '/' ? '' : own}/stx-elevated.${b.proc.pid}/session-${launch.session}`
  t.equal(probe.cgroup, expected, 'the session\'s cgroup')
  t.not(probe.cgroup, own, 'not the broker\'s own cgroup')
  t.not(probe.cgroup, cgroupOf('self'), 'not the client\'s either')
  await until(`${expected} is removed`, () => !existsSync(cgroupDir(expected)))
  t.ok(existsSync(cgroupDir(`${own === '/' ? '' : own}/stx-elevated.${b.proc.pid}`)), 'the broker\'s subtree stays while it runs')
  t.same(records(b.audit, a => a.event === 'kill' && a.session === launch.session), [], 'nothing was left to kill: no kill record')
})

t.test('control: the wrapper gives the client loginuid 1234, nice 7, I/O best-effort 3, CPU 0, oom_score_adj 500', async t => {
  const r = await runWithContext(CONTEXT_SETUP, [fx.probe, 'session'])
  t.equal(r.code, 0, r.stderr)
  t.match(jsonLine(r.stdout, 'cgroup'), CONTEXT)
})

// What the client runs with, all different from the broker's own (asserted below).
const CONTEXT_SETUP = 'echo 1234 > /proc/self/loginuid && echo 500 > /proc/self/oom_score_adj && ' +
  'renice -n 7 -p $$ >/dev/null && ionice -c 2 -n 3 -p $$ && taskset -cp 0 $$ >/dev/null'
const CONTEXT = { loginuid: 1234, nice: 7, ioprio: (2 << 13) | 3, cpus: '0', oom_score_adj: 500 }

t.test('the program gets the client\'s loginuid, nice, I/O priority, affinity and oom_score_adj, not the broker\'s', async t => {
  const b = await broker()
  const pid = b.proc.pid!
  const brokerSide = {
    loginuid: Number(readFileSync(`/proc/${pid}/loginuid`, 'utf8')),
    nice: Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')[16]),
    cpus: /^Cpus_allowed_list:\s+(\S+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1],
    oom_score_adj: Number(readFileSync(`/proc/${pid}/oom_score_adj`, 'utf8')),
  }
  t.not(brokerSide.loginuid, CONTEXT.loginuid, 'the broker\'s loginuid differs')
  t.not(brokerSide.nice, CONTEXT.nice, 'the broker\'s nice value differs')
  t.ok(brokerSide.oom_score_adj < CONTEXT.oom_score_adj, 'the broker\'s oom_score_adj is lower')
  if (brokerSide.cpus === CONTEXT.cpus) t.comment('one CPU only: the affinity check proves nothing here')
  const r = await runWithContext(CONTEXT_SETUP, e.client(b.socket, fx.probe, 'session'))
  t.equal(r.code, 0, r.stderr)
  const probe = jsonLine(r.stdout, 'cgroup')
  t.match(probe, CONTEXT)
  t.match(probe.cgroup, /\/session-\d+$/, 'through the broker')
})

t.test('without the wrapper the program\'s loginuid is still the client\'s (here the test\'s own)', async t => {
  const b = await broker()
  const r = await runAs(user, e.client(b.socket, fx.probe, 'session'))
  t.equal(r.code, 0, r.stderr)
  t.equal(jsonLine(r.stdout, 'cgroup').loginuid, Number(readFileSync('/proc/self/loginuid', 'utf8')))
})

/** The child's line, if it printed one: its raw socket attempt must have failed. */
function childRawFailed(t: Test, stdout: string): void {
  const line = stdout.split('\n').find(l => l.startsWith('{"child":'))
  if (line === undefined) {
    t.pass('the child was killed before it could try a raw socket')
    return
  }
  t.match(JSON.parse(line).raw, /^(EPERM|ENOSYS)$/, `the child got no socket: ${line}`)
}

t.test('a program that forks and exits: the child is killed and never gets an elevated call', async t => {
  const b = await broker()
  let child: number | undefined
  reap(t, () => child)
  const r = await runAs(user, e.client(b.socket, fx.probe, 'fork', 'exit', '20'), { timeoutMs: 15_000 })
  t.equal(r.code, 0, `the client exits with the parent's status; stderr: ${r.stderr}`)
  const ids = jsonLine(r.stdout, 'parent')
  child = ids.child
  await until(`child ${child} is gone`, () => !running(child!))
  childRawFailed(t, r.stdout)
  const kill = await waitForAudit(b.audit, a => a.event === 'kill' && (a.pids as number[] | undefined)?.includes(child!) === true, 5000, 'a kill record naming the child')
  t.match(kill, { uid: user.uid, user: user.name, program: fx.probe, reason: 'the program exited' })
  t.notOk((kill.pids as number[]).includes(ids.parent), 'the parent had exited already')
  const exit = records(b.audit, a => a.event === 'exit' && a.pid === ids.parent)
  t.equal(exit.length, 1, 'one exit record for the parent')
  t.equal(exit[0]?.session, kill.session, 'same session')
  t.same(records(b.audit, a => a.event === 'grant' && a.pid === child), [], 'no grant to the child')
  const refused = records(b.audit, a => a.event === 'refuse' && a.pid === child)
  if (refused.length > 0) t.match(refused[0], { call: { name: 'socket' }, errno: 'EPERM', reason: /program has exited/ }, 'its trapped call was refused')
})

/** Start `fork MODE` through the broker and read the parent's line. */
async function forked(socket: string, mode: string): Promise<{ run: RunningAs, parent: number, child: number }> {
  const run = spawnAs(user, e.client(socket, fx.probe, 'fork', mode, '20'))
  const ids = JSON.parse(await run.waitForLine(/^\{"parent":/, 15_000))
  return { run, parent: ids.parent, child: ids.child }
}

t.test('the client is killed: the program gets SIGHUP, then everything in its cgroup is killed', async t => {
  const b = await broker()
  const s = await forked(b.socket, 'hold')
  reap(t, () => s.parent)
  reap(t, () => s.child)
  s.run.kill('SIGKILL')
  const exit = await waitForAudit(b.audit, a => a.event === 'exit' && a.pid === s.parent, 5000, 'the parent\'s exit record')
  t.match(exit, { signal: 'SIGHUP', status: 129 }, 'the program died of the SIGHUP')
  await until(`child ${s.child} is gone`, () => !running(s.child))
  const kill = await waitForAudit(b.audit, a => a.event === 'kill' && a.session === exit.session, 5000, 'the kill record')
  t.match(kill, { uid: user.uid, user: user.name, program: fx.probe, reason: 'the client went away' })
  t.same(kill.pids, [s.child], 'the child, which ignores SIGHUP, was what was left')
  const r = await s.run.wait(10_000)
  t.equal(r.signal, 'SIGKILL')
  childRawFailed(t, r.stdout)
  t.same(records(b.audit, a => a.event === 'grant' && a.pid === s.child), [], 'no grant to the child')
})

t.test('the client is killed and the program ignores SIGHUP: after the grace period the whole cgroup is killed', async t => {
  const b = await broker()
  const s = await forked(b.socket, 'hold-nohup')
  reap(t, () => s.parent)
  reap(t, () => s.child)
  s.run.kill('SIGKILL')
  await sleep(500)
  t.ok(running(s.parent) && running(s.child), 'both survive the SIGHUP during the grace period')
  const kill = await waitForAudit(b.audit, a => a.event === 'kill' && (a.pids as number[] | undefined)?.includes(s.parent) === true, 8000, 'the kill record')
  t.match(kill, { reason: 'the client went away', uid: user.uid, program: fx.probe })
  t.same([...(kill.pids as number[])].sort((x, y) => x - y), [s.parent, s.child].sort((x, y) => x - y), 'the program and its child')
  await until('both are gone', () => !running(s.parent) && !running(s.child))
  await waitForAudit(b.audit, a => a.event === 'exit' && a.pid === s.parent && a.signal === 'SIGKILL', 5000, 'the exit record (SIGKILL)')
  await s.run.wait(10_000)
})

t.test('broker shutdown kills every session and removes the broker\'s subtree', async t => {
  const b = await startBroker(t, tree, rules())
  const subtree = join(cgroupOf(b.proc.pid!) === '/' ? '' : cgroupOf(b.proc.pid!), `stx-elevated.${b.proc.pid}`)
  t.ok(existsSync(cgroupDir(subtree)), `${subtree} exists while the broker runs`)
  const s = await forked(b.socket, 'hold-nohup')
  reap(t, () => s.parent)
  reap(t, () => s.child)
  const stopped = await b.stop()
  t.equal(stopped.code, 0, 'the broker exits 0 on SIGTERM')
  const kill = await waitForAudit(b.audit, a => a.event === 'kill', 1000, 'the kill record')
  t.match(kill, { reason: 'the broker is shutting down' })
  t.same([...(kill.pids as number[])].sort((x, y) => x - y), [s.parent, s.child].sort((x, y) => x - y))
  await until('both are gone', () => !running(s.parent) && !running(s.child))
  t.notOk(existsSync(cgroupDir(subtree)), 'the subtree is gone')
  await s.run.wait(10_000)
})

t.test('at start, a broker removes empty subtrees of dead brokers, kills what a dead broker left running (a kill record), and touches nothing else', async t => {
  const own = cgroupOf('self')  // the broker inherits the test's cgroup
  const base = own === '/' ? '' : own
  // pids of processes that have exited: no broker lives there
  const deadPids: number[] = []
  for (let i = 0; i < 2; i++) {
    const r = await runRoot(['sh', '-c', 'echo $$'])
    deadPids.push(Number(r.stdout.trim()))
  }
  const emptyStale = `${base}/stx-elevated.${deadPids[0]}`
  const busyStale = `${base}/stx-elevated.${deadPids[1]}`
  const live = `${base}/stx-elevated.${process.pid}.7`  // a live pid: not stale, whatever is in it
  const other = `${base}/stx-test-other.${process.pid}` // another name: never the broker's
  for (const d of [emptyStale, `${emptyStale}/session-1`, `${emptyStale}/session-2`, busyStale, `${busyStale}/session-3`, live, `${live}/session-1`, other]) {
    mkdirSync(cgroupDir(d))
  }
  // a process in the busy stale subtree: a session a killed broker left running, which must not outlive it
  const sleeper = spawnAs(user, ['sleep', '30'])
  t.teardown(async () => {
    sleeper.kill('SIGKILL')
    await sleeper.wait(5000).catch(() => {})
    for (const d of [`${busyStale}/session-3`, busyStale, `${live}/session-1`, live, other, `${emptyStale}/session-1`, `${emptyStale}/session-2`, emptyStale]) {
      try { rmdirSync(cgroupDir(d)) } catch { /* gone */ }
    }
  })
  writeFileSync(join(cgroupDir(`${busyStale}/session-3`), 'cgroup.procs'), String(sleeper.pid))
  const b = await startBroker(t, tree, rules())
  t.notOk(existsSync(cgroupDir(emptyStale)), 'the empty subtree of a dead broker is removed')
  const kill = await waitForAudit(b.audit, a => a.event === 'kill', 5000, 'the kill record')
  t.match(kill, { reason: `left running by a dead broker (pid ${deadPids[1]})`, cgroup: busyStale, pids: [sleeper.pid] })
  t.match(await sleeper.wait(5000), { code: null, signal: 'SIGKILL' }, 'the dead broker\'s session was killed')
  await until(`${busyStale} is removed once empty`, () => !existsSync(cgroupDir(busyStale)))
  t.ok(existsSync(cgroupDir(`${live}/session-1`)), 'a subtree named after a live pid stays')
  t.ok(existsSync(cgroupDir(other)), 'a cgroup of another name stays')
  t.ok(existsSync(cgroupDir(`${base}/stx-elevated.${b.proc.pid}`)), 'the broker made its own')
  await b.stop()
})

t.test('--no-cgroups: the program runs in the broker\'s cgroup; a surviving child is not killed but gets no elevated call', async t => {
  const b = await startBroker(t, tree, { ...rules(), extraArgs: ['--no-cgroups'] })
  t.notOk(readdirSync(cgroupDir(cgroupOf(b.proc.pid!))).includes(`stx-elevated.${b.proc.pid}`), 'no subtree')
  const r = await runAs(user, e.client(b.socket, fx.probe, 'session'))
  t.equal(jsonLine(r.stdout, 'cgroup').cgroup, cgroupOf(b.proc.pid!), 'the broker\'s own cgroup')
  const run = spawnAs(user, e.client(b.socket, fx.probe, 'fork', 'exit', '20'))
  let child: number | undefined
  reap(t, () => child)
  child = JSON.parse(await run.waitForLine(/^\{"parent":/, 15_000)).child
  const line = await run.waitForLine(/^\{"child":/, 15_000)
  t.match(JSON.parse(line).raw, /^(EPERM|ENOSYS)$/, `the child got no socket: ${line}`)
  await sleep(300)
  t.ok(running(child!), 'the child still runs (nothing kills it without cgroups)')
  t.same(records(b.audit, a => a.event === 'grant' && a.pid === child), [], 'no grant to the child')
  t.same(records(b.audit, a => a.event === 'kill'), [], 'no kill record: nothing was killed')
  process.kill(child!, 'SIGKILL')
  await run.wait(10_000)
})
