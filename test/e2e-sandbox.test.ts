// End to end: sandboxed clients stay sandboxed. The broker starts the
// program itself, outside whatever sandbox the client is in, so a client
// under no_new_privs, its own seccomp filter or another mount namespace is
// refused, with one line and a refuse record, unless its rule says
// sandboxed-clients = allow. Each refusal has its control: the same chain of
// wrappers without the sandbox is served, and so is the sandboxed client
// when its rule opts in.
import t, { type Test } from 'tap'
import { readlinkSync } from 'node:fs'
import { join } from 'node:path'
import { readAudit, type AuditRecord } from './lib/audit.js'
import type { Broker } from './lib/broker.js'
import { runRoot, sleep } from './lib/proc.js'
import { pingRule, probeRule } from './lib/rules.js'
import { asUser, escapeRe, jsonLine, runAs, userEnv, type RunResult } from './lib/run.js'
import { setupE2E, sharedBroker } from './lib/setup.js'

const e = await setupE2E(t)
const { user, fx, tree } = e

const READLINK = '/usr/bin/readlink'

function rules(sandboxedClients?: 'allow') {
  const who = { users: [user.name], sandboxedClients }
  return {
    'ping.conf': pingRule({ path: fx.ping, ...who }),
    'probe.conf': probeRule({ path: fx.probe, ...who }),
    // no call as root: only to show where the program runs
    'readlink.conf': `[program]\npath = ${READLINK}\nusers = ${user.name}\n${sandboxedClients ? `sandboxed-clients = ${sandboxedClients}\n` : ''}`,
  }
}
/** The rules as shipped: sandboxed clients refused (the default). */
const strict = sharedBroker(t, tree, () => ({ rules: rules() }))
/** The same rules with sandboxed-clients = allow. */
const optIn = sharedBroker(t, tree, () => ({ rules: rules('allow') }))

/** Commands as root that end in `setpriv` to the user, then argv: the sandbox is made before the user gets it. */
function rootThenUser(wrapper: string[], argv: string[]): Promise<RunResult> {
  return runRoot([...wrapper, ...asUser(user, argv)], { env: userEnv(user), timeoutMs: 30_000 })
}

const NNP = ['setpriv', '--no-new-privs', '--']
const PLAIN_SETPRIV = ['setpriv', '--']
const SECCOMP = () => [fx.seccompExec, 'filter']
const NO_SECCOMP = () => [fx.seccompExec, 'none']
const MOUNT_NS = ['unshare', '--mount', '--']
const UTS_NS = ['unshare', '--uts', '--']

const PING = ['-4', '-c1', '-W2', '127.0.0.1']

/** The records written after `since` (an index into the audit file) that satisfy pred; bounded wait for the first. */
async function recordAfter(b: Broker, since: number, pred: (r: AuditRecord) => boolean, what: string, timeoutMs = 5000): Promise<AuditRecord> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const hit = readAudit(b.audit).slice(since).find(pred)
    if (hit) return hit
    if (Date.now() > deadline) {
      throw new Error(`no ${what} in ${b.audit} within ${timeoutMs} ms; records since:\n${readAudit(b.audit).slice(since).map(r => JSON.stringify(r)).join('\n')}`)
    }
    await sleep(50)
  }
}

/**
 * The client's one line and exit 1, the program did not run, and one refuse
 * record naming the run, the rule's [program] and exactly `reasons`.
 */
async function assertSandboxRefused(t: Test, b: Broker, since: number, r: RunResult,
  program: string, conf: string, phrases: string, reasons: string[]) {
  const file = join(b.rulesDir, conf)
  t.equal(r.code, 1, `the client exits 1 (signal ${r.signal}; stderr: ${r.stderr})`)
  t.match(r.stderr, new RegExp(`^stx-elevate: the broker refused to run ${escapeRe(program)}: you are in a sandbox \\(${escapeRe(phrases)}\\); `
    + `the rule ${escapeRe(file)} does not serve sandboxed clients \\(sandboxed-clients = allow\\)\\n?$`))
  t.equal(r.stderr.trim().split('\n').length, 1, 'one line on stderr')
  t.equal(r.stdout, '', 'the program did not run')
  const rec = await recordAfter(b, since, a => a.event === 'refuse' && a.call?.name === 'run', 'refuse record')
  t.equal(rec.uid, user.uid)
  t.equal(rec.user, user.name)
  t.same(rec.call, { name: 'run', args: { path: program } })
  t.equal(rec.errno, 'EPERM')
  t.same(rec.rule, { file, section: 'program' })
  t.same(rec.sandbox, reasons, `sandbox: ${reasons.join(', ')}`)
  t.type(rec.pid, 'number', "the client's pid")
  t.ok(rec.reason?.includes(`you are in a sandbox (${phrases})`), `the reason names what was detected: ${rec.reason}`)
  await sleep(100)
  t.notOk(readAudit(b.audit).slice(since).some(a => a.event === 'launch'), 'no launch record')
}

/** Served: a launch record after `since` for this program, with the sandbox it was served in. */
async function assertLaunched(t: Test, b: Broker, since: number, program: string, sandbox: string[] | undefined) {
  const rec = await recordAfter(b, since, a => a.event === 'launch' && a.program === program, 'launch record')
  t.equal(rec.uid, user.uid)
  t.same(rec.sandbox, sandbox, sandbox ? `the launch record says the client was in a sandbox: ${sandbox.join(', ')}` : 'no sandbox on the launch record')
}

const since = (b: Broker) => readAudit(b.audit).length

/* ---- controls: the wrappers make the sandbox they claim to (nothing of the product) ---- */

const status = (text: string, field: string) => new RegExp(`^${field}:\\s+(\\S+)`, 'm').exec(text)?.[1]

t.test('control: setpriv --no-new-privs sets NoNewPrivs for the user, plain setpriv does not', async t => {
  const nnp = await runAs(user, [...NNP, 'cat', '/proc/self/status'])
  t.equal(status(nnp.stdout, 'NoNewPrivs'), '1')
  t.equal(status(nnp.stdout, 'Seccomp'), '0')
  const plain = await runAs(user, [...PLAIN_SETPRIV, 'cat', '/proc/self/status'])
  t.equal(status(plain.stdout, 'NoNewPrivs'), '0')
})

t.test('control: seccomp-exec gives the user a seccomp filter without no_new_privs', async t => {
  const f = await rootThenUser(SECCOMP(), ['cat', '/proc/self/status'])
  t.equal(f.code, 0, f.stderr)
  t.equal(status(f.stdout, 'Uid')?.toString(), String(user.uid), 'runs as the user')
  t.equal(status(f.stdout, 'Seccomp'), '2', 'filter mode')
  t.equal(status(f.stdout, 'Seccomp_filters'), '1')
  t.equal(status(f.stdout, 'NoNewPrivs'), '0', 'no no_new_privs')
  const none = await rootThenUser(NO_SECCOMP(), ['cat', '/proc/self/status'])
  t.equal(status(none.stdout, 'Seccomp'), '0', 'seccomp-exec none: no filter')
  t.equal(status(none.stdout, 'NoNewPrivs'), '0')
})

t.test('control: unshare --mount gives the user another mount namespace, unshare --uts does not', async t => {
  const ours = readlinkSync('/proc/self/ns/mnt')
  const mnt = await rootThenUser(MOUNT_NS, [READLINK, '/proc/self/ns/mnt', '/proc/self/ns/uts'])
  t.equal(mnt.code, 0, mnt.stderr)
  t.not(mnt.stdout.split('\n')[0], ours, `another mount namespace than ${ours}`)
  const uts = await rootThenUser(UTS_NS, [READLINK, '/proc/self/ns/mnt', '/proc/self/ns/uts'])
  t.equal(uts.stdout.split('\n')[0], ours, 'unshare --uts: our mount namespace')
  t.not(uts.stdout.split('\n')[1], readlinkSync('/proc/self/ns/uts'), 'in another uts namespace')
})

/* ---- no_new_privs ---- */

t.test('a client under no_new_privs running ping is refused, with its audit record', async t => {
  const b = await strict()
  const n = since(b)
  const r = await runAs(user, [...NNP, ...e.client(b.socket, fx.ping, ...PING)])
  await assertSandboxRefused(t, b, n, r, fx.ping, 'ping.conf', 'no_new_privs', ['no_new_privs'])
  t.notMatch(r.stdout, /bytes from/, 'ping did not run')
})

t.test('the same setpriv client without --no-new-privs is served', async t => {
  const b = await strict()
  const n = since(b)
  const r = await runAs(user, [...PLAIN_SETPRIV, ...e.client(b.socket, fx.ping, ...PING)])
  t.equal(r.code, 0, `ping exits 0; stderr: ${r.stderr}`)
  t.match(r.stdout, /1 packets transmitted, 1 received/)
  await assertLaunched(t, b, n, fx.ping, undefined)
})

t.test('a client under no_new_privs is served when its rule says sandboxed-clients = allow', async t => {
  const b = await optIn()
  const n = since(b)
  const r = await runAs(user, [...NNP, ...e.client(b.socket, fx.ping, ...PING)])
  t.equal(r.code, 0, `ping exits 0; stderr: ${r.stderr}`)
  t.match(r.stdout, /1 packets transmitted, 1 received/, 'ping got its raw socket')
  await assertLaunched(t, b, n, fx.ping, ['no_new_privs'])
  const grant = await recordAfter(b, n, a => a.event === 'grant' && a.program === fx.ping, 'grant record')
  t.equal(grant.call?.name, 'socket')
})

/* ---- a seccomp filter of its own (no no_new_privs) ---- */

t.test('a client with its own seccomp filter is refused, naming the filter only', async t => {
  const b = await strict()
  const n = since(b)
  const r = await rootThenUser(SECCOMP(), e.client(b.socket, fx.probe, 'raw4'))
  await assertSandboxRefused(t, b, n, r, fx.probe, 'probe.conf', 'a seccomp filter', ['seccomp'])
})

t.test('the same seccomp-exec chain without the filter is served', async t => {
  const b = await strict()
  const n = since(b)
  const r = await rootThenUser(NO_SECCOMP(), e.client(b.socket, fx.probe, 'raw4'))
  t.equal(r.code, 0, `stderr: ${r.stderr}`)
  t.type(jsonLine(r.stdout, 'raw4').raw4, 'number', 'the probe got its raw socket')
  await assertLaunched(t, b, n, fx.probe, undefined)
})

t.test('a client with its own seccomp filter is served when its rule opts in', async t => {
  const b = await optIn()
  const n = since(b)
  const r = await rootThenUser(SECCOMP(), e.client(b.socket, fx.probe, 'raw4'))
  t.equal(r.code, 0, `stderr: ${r.stderr}`)
  t.type(jsonLine(r.stdout, 'raw4').raw4, 'number', 'the probe got its raw socket')
  await assertLaunched(t, b, n, fx.probe, ['seccomp'])
})

/* ---- another mount namespace ---- */

t.test('a client in another mount namespace is refused, naming the mount namespace', async t => {
  const b = await strict()
  const n = since(b)
  const r = await rootThenUser(MOUNT_NS, e.client(b.socket, fx.probe, 'raw4'))
  await assertSandboxRefused(t, b, n, r, fx.probe, 'probe.conf', "a mount namespace other than the broker's", ['mount-namespace'])
})

t.test('the same unshare chain for another namespace kind (uts) is served', async t => {
  const b = await strict()
  const n = since(b)
  const r = await rootThenUser(UTS_NS, e.client(b.socket, fx.probe, 'raw4'))
  t.equal(r.code, 0, `stderr: ${r.stderr}`)
  t.type(jsonLine(r.stdout, 'raw4').raw4, 'number', 'the probe got its raw socket')
  await assertLaunched(t, b, n, fx.probe, undefined)
})

t.test('a client in another mount namespace is served when its rule opts in; the program runs in the broker\'s', async t => {
  const b = await optIn()
  const n = since(b)
  const r = await rootThenUser(MOUNT_NS, e.client(b.socket, fx.probe, 'raw4'))
  t.equal(r.code, 0, `stderr: ${r.stderr}`)
  t.type(jsonLine(r.stdout, 'raw4').raw4, 'number', 'the probe got its raw socket')
  await assertLaunched(t, b, n, fx.probe, ['mount-namespace'])

  const broker = readlinkSync(`/proc/${b.proc.pid}/ns/mnt`)
  // the client's own namespace first, then the program's, from the same shell
  const where = await rootThenUser(MOUNT_NS, ['/bin/sh', '-c', `${READLINK} /proc/self/ns/mnt && exec "$@"`, 'sh',
    ...e.client(b.socket, READLINK, '/proc/self/ns/mnt')])
  t.equal(where.code, 0, `stderr: ${where.stderr}`)
  const [client, program] = where.stdout.trim().split('\n')
  t.not(client, broker, `the client is in ${client}`)
  t.equal(program, broker, `the program runs in the broker's mount namespace ${broker}, outside the client's`)
})

/* ---- every reason at once ---- */

t.test('a client in every sandbox at once is refused with every reason', async t => {
  const b = await strict()
  const n = since(b)
  const r = await runRoot([...MOUNT_NS, ...SECCOMP(), ...asUser(user, [...NNP, ...e.client(b.socket, fx.probe, 'raw4')])],
    { env: userEnv(user), timeoutMs: 30_000 })
  await assertSandboxRefused(t, b, n, r, fx.probe, 'probe.conf',
    "no_new_privs, a seccomp filter, a mount namespace other than the broker's", ['no_new_privs', 'seccomp', 'mount-namespace'])
})
