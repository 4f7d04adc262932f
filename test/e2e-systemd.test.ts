// End to end on a systemd host. This machine has no systemd as PID 1, so
// test/systemd/boot.sh boots one: Debian 12 minbase (debootstrap'd once into
// /var/tmp/stx-systemd/root, then reused; STX_SYSTEMD_DIR moves it) under
// systemd-nspawn, its writes on a tmpfs, with the installed test tree bound
// in at the same path. The broker runs inside under a scope with
// Delegate=yes (as its unit would), the client as a user of the container.
// Each session must be a transient scope
// stx-elevate-<broker pid>-<session>.scope in user-UID.slice; when the
// program exits, what it left behind is killed (a kill record names it) and
// the scope goes away. Never skipped: a container that does not boot fails
// the tests with the reason.
import t, { type Test } from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { auditTail, readAudit, waitForAudit, type AuditRecord } from './lib/audit.js'
import { CONTAINER_USER as cuser, systemdContainer, until, type Container } from './lib/container.js'
import { cleanArgv, rootEnv } from './lib/proc.js'
import { probeRule } from './lib/rules.js'
import { jsonLine, runAs, spawnAs } from './lib/run.js'
import { setupE2E } from './lib/setup.js'

const e = await setupE2E(t)
const { fx, tree } = e

const EXEC_GID = 4000
/** The broker's own unit (not stx-elevate-*: those are the sessions'). */
let BROKER_UNIT = 'stx-broker-test.scope'
/** A session's scope: as the program sees it (the container's cgroup namespace), or as the host does (prefix /stx-nspawn.P/payload). */
const SCOPE = (session: number | string, prefix = '(/.*)?') =>
  new RegExp(`^${prefix}/user\\.slice/user-${cuser.uid}\\.slice/(stx-elevate-\\d+-${session}\\.scope)$`)

// Registered after setupE2E's: the container is down before the tree it binds is removed.
const { container, booted } = systemdContainer(t, tree, [
  `groupadd -g ${EXEC_GID} stx-elevate`,
  `test -x ${tree.broker} && test -x ${fx.probe}`,
])

/** The v2 line of PID's /proc/PID/cgroup, PID as the container sees it (its /proc, through its PID 1's root). */
function cgroupIn(c: Container, pid: number): string {
  const m = /^0::(.*)$/m.exec(readFileSync(`/proc/${c.leader}/root/proc/${pid}/cgroup`, 'utf8'))
  if (!m) throw new Error(`no cgroup v2 line for ${pid} in the container`)
  return m[1]
}

/** Alive in the container (a zombie is not). */
function runningIn(c: Container, pid: number): boolean {
  try {
    return !/^State:\s+[ZX]/m.test(readFileSync(`/proc/${c.leader}/root/proc/${pid}/status`, 'utf8'))
  } catch {
    return false
  }
}

/** The container's units named stx-elevate-*, loaded in any state (one per line; '' for none). */
async function sessionUnits(c: Container): Promise<string> {
  const r = await c.run(['systemctl', 'list-units', '--all', '--plain', '--no-legend', '--no-pager', 'stx-elevate-*'], 10_000)
  if (r.code !== 0) throw new Error(`systemctl list-units failed (code ${r.code}): ${r.stderr}`)
  return r.stdout.trim()
}

interface InsideBroker { socket: string, audit: string, stdout(): string, stderr(): string }

let brokerStarted: Promise<InsideBroker> | undefined
let brokerProc: ChildProcess | undefined
let brokerExited = false
let brokerOut = ''
let brokerErr = ''
t.teardown(async () => {
  if (!brokerProc) return
  const c = await booted()
  if (c && !brokerExited) await c.run(['systemctl', 'stop', BROKER_UNIT], 15_000).catch(() => undefined)
  await until('the broker to exit', () => brokerExited, 10_000).catch(() => {
    try { process.kill(-brokerProc!.pid!, 'SIGKILL') } catch { /* gone */ }
  })
  if (!t.passing()) {
    const audit = tree.path('systemd', 'audit.jsonl')
    process.stderr.write(`--- stx-elevated (in the container) stdout:\n${brokerOut.slice(-3000)}\n--- stderr:\n${brokerErr.slice(-3000)}\n--- audit (tail):\n${existsSync(audit) ? auditTail(audit, 12) : '(none)'}\n`)
  }
})

/**
 * The broker, inside, under the scope BROKER_UNIT with Delegate=yes, on a
 * socket, rules and audit file in the bound tree (so the host reads the
 * audit file directly). Started on first use.
 */
function broker(): Promise<InsideBroker> {
  brokerStarted ??= (async () => {
    const c = await container()
    const dir = tree.path('systemd')
    const rulesDir = join(dir, 'rules')
    mkdirSync(rulesDir, { recursive: true, mode: 0o755 })
    for (const d of [dir, rulesDir]) { chownSync(d, 0, 0); chmodSync(d, 0o755) }
    const rule = join(rulesDir, 'probe.conf')
    writeFileSync(rule, probeRule({ path: fx.probe, users: [cuser.name] }))
    chownSync(rule, 0, 0)
    chmodSync(rule, 0o644)
    const socket = join(dir, 'broker.sock')
    const audit = join(dir, 'audit.jsonl')
    const argv = cleanArgv([...c.via, 'systemd-run', '--quiet', '--scope', '-p', 'Delegate=yes', `--unit=${BROKER_UNIT}`,
      '/usr/local/bin/node', tree.broker, '--socket', socket, '--rules', rulesDir, '--audit', audit], rootEnv())
    const proc = spawn(argv[0], argv.slice(1), { cwd: '/', stdio: ['ignore', 'pipe', 'pipe'], detached: true })
    brokerProc = proc
    proc.stdout!.setEncoding('utf8').on('data', d => { brokerOut = (brokerOut + d).slice(-200_000) })
    proc.stderr!.setEncoding('utf8').on('data', d => { brokerErr = (brokerErr + d).slice(-200_000) })
    proc.on('exit', () => { brokerExited = true })
    proc.on('error', () => { brokerExited = true })
    // its log (pino, on stderr) says when it listens
    const listening = () => brokerErr.includes(`"listening on ${socket}"`)
    await until('the broker to listen', () => brokerExited || listening(), 15_000).catch(() => undefined)
    if (!listening()) {
      throw new Error(`stx-elevated in the container ${brokerExited ? 'exited' : 'did not listen within 15 s'}\nstdout:\n${brokerOut.slice(-3000)}\nstderr:\n${brokerErr.slice(-3000)}`)
    }
    return { socket, audit, stdout: () => brokerOut, stderr: () => brokerErr }
  })()
  return brokerStarted
}

const records = (file: string, pred: (r: AuditRecord) => boolean) => readAudit(file).filter(pred)

t.test('control: the container\'s systemd puts a scope of systemd-run --slice=user-UID.slice there', async t => {
  const c = await container()
  const r = await c.run(['systemd-run', '--quiet', '--scope', `--slice=user-${cuser.uid}.slice`, 'cat', '/proc/self/cgroup'])
  t.equal(r.code, 0, r.stderr)
  t.match(r.stdout, new RegExp(`^0::(/.*)?/user\\.slice/user-${cuser.uid}\\.slice/run-[^/]+\\.scope$`, 'm'))
})

t.test('the program runs in a transient scope stx-elevate-PID-SESSION.scope of user-UID.slice, gone once it exits', async t => {
  const c = await container()
  const b = await broker()
  t.match(b.stderr(), /sessions in transient scopes stx-elevate-\*\.scope/, 'the broker took the systemd path')
  const r = await runAs(cuser, e.client(b.socket, fx.probe, 'session'), { via: c.via })
  t.equal(r.code, 0, r.stderr)
  const probe = jsonLine(r.stdout, 'cgroup')
  const launch = await waitForAudit(b.audit, a => a.event === 'launch' && a.pid === probe.pid, 5000, 'the launch record')
  t.match(probe.cgroup, SCOPE(launch.session!, ''), `the session's scope in user-${cuser.uid}.slice, as the program sees it: ${probe.cgroup}`)
  await until('no stx-elevate-* unit is left', async () => await sessionUnits(c) === '')
  t.same(records(b.audit, a => a.event === 'kill' && a.session === launch.session), [], 'nothing was left to kill: no kill record')
})

t.test('a program that exits leaving a child: the child is killed, a kill record names it, no stx-elevate-* unit is left', async (t: Test) => {
  const c = await container()
  const b = await broker()
  // The parent holds (time to look at the scope) until the test ends it
  // with SIGTERM; the child stays. (Not a shorter hold that runs out: the
  // child gives up on a parent that outlives the same SECONDS, a race.)
  const run = spawnAs(cuser, e.client(b.socket, fx.probe, 'fork', 'hold', '60'), { via: c.via })
  t.teardown(() => { run.kill('SIGKILL') })
  const ids = JSON.parse(await run.waitForLine(/^\{"parent":/, 15_000)) as { parent: number, child: number }

  const launch = await waitForAudit(b.audit, a => a.event === 'launch' && a.pid === ids.parent, 5000, 'the launch record')
  const cgroup = cgroupIn(c, ids.parent)
  const m = SCOPE(launch.session!).exec(cgroup)
  t.ok(m, `the program is in its session's scope in user-${cuser.uid}.slice: ${cgroup}`)
  t.equal(cgroupIn(c, ids.child), cgroup, 'so is its child')
  const unit = m?.[2] ?? '(none)'
  t.match(await sessionUnits(c), new RegExp(`^${unit.replace(/\./g, '\\.')}\\s+loaded\\s+active\\s+running`), 'systemctl lists the scope while it runs')
  const slice = await c.run(['systemctl', 'show', '--property=Slice', '--value', unit], 10_000)
  t.equal(slice.stdout.trim(), `user-${cuser.uid}.slice`, 'in the user\'s slice')

  const term = await c.run(['sh', '-c', 'kill -TERM "$1"', 'sh', String(ids.parent)], 10_000)
  t.equal(term.code, 0, `kill -TERM ${ids.parent} (the program) inside: ${term.stderr}`)
  const r = await run.wait(20_000)
  const exit = await waitForAudit(b.audit, a => a.event === 'exit' && a.pid === ids.parent, 5000, 'the program\'s exit record')
  t.match(exit, { session: launch.session, signal: 'SIGTERM', status: 143 }, 'the program exited of the SIGTERM')
  const kill = await waitForAudit(b.audit, a => a.event === 'kill' && a.session === launch.session, 5000, 'the kill record')
  t.match(kill, { uid: cuser.uid, user: cuser.name, program: fx.probe, reason: 'the program exited' })
  t.same(kill.pids, [ids.child], 'it names the child, what was left')
  await until(`the child ${ids.child} is gone`, () => !runningIn(c, ids.child))
  t.same(records(b.audit, a => a.event === 'grant' && a.pid === ids.child), [], 'no grant to the child')
  const childLine = r.stdout.split('\n').find(l => l.startsWith('{"child":'))
  if (childLine) t.match(JSON.parse(childLine).raw, /^(EPERM|ENOSYS)$/, `the child got no socket: ${childLine}`)
  await until('no stx-elevate-* unit is left', async () => await sessionUnits(c) === '')
  t.equal(await sessionUnits(c), '', 'systemctl list-units \'stx-elevate-*\' lists nothing')
})

t.test('a broker killed with SIGKILL leaves its sessions\' scopes running; the next broker kills them, with a kill record', async (t: Test) => {
  const c = await container()
  const b = await broker()
  // hold ends at its stdin's end: give it one that stays open after the client is gone
  const run = spawnAs(cuser, ['bash', '-c', 'exec "$@" < <(exec sleep 60)', 'bash', ...e.client(b.socket, fx.probe, 'hold', '60')], { via: c.via })
  t.teardown(() => { run.kill('SIGKILL') })
  const ready = JSON.parse(await run.waitForLine(/"ready":true/, 15_000)) as { pid: number, raw: number | string }
  t.type(ready.raw, 'number', 'the program holds a brokered raw socket')
  const launch = await waitForAudit(b.audit, a => a.event === 'launch' && a.pid === ready.pid, 5000, 'the launch record')
  const unit = SCOPE(launch.session!).exec(cgroupIn(c, ready.pid))?.[2] ?? ''
  const dead = Number(/^stx-elevate-(\d+)-/.exec(unit)?.[1])
  t.ok(dead > 0, `the program runs in its scope ${unit}, named after the broker's pid`)

  const kill9 = await c.run(['sh', '-c', 'kill -KILL "$1"', 'sh', String(dead)], 10_000)
  t.equal(kill9.code, 0, `kill -KILL ${dead} (the broker) inside: ${kill9.stderr}`)
  await until('the broker to die', () => brokerExited, 10_000)
  t.ok(runningIn(c, ready.pid), 'the program runs on in its scope, in the user\'s slice, outside the broker\'s')

  // the next broker, under a scope of another name (the dead one's may linger as failed)
  brokerStarted = undefined
  brokerExited = false
  BROKER_UNIT = 'stx-broker-test-2.scope'
  const b2 = await broker()
  const kill = await waitForAudit(b2.audit, a => a.event === 'kill' && a.reason === `left running by a dead broker (pid ${dead})`, 10_000, 'the kill record')
  t.ok((kill.pids as number[]).includes(ready.pid), `it names the program: ${JSON.stringify(kill.pids)}`)
  await until(`the program ${ready.pid} is gone`, () => !runningIn(c, ready.pid), 10_000)
  await until('no stx-elevate-* unit is left', async () => await sessionUnits(c) === '', 10_000)
})
