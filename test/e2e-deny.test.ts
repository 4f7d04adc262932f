// End to end: `as = deny` sections. The broker traps the call the section
// names and answers it with the section's errno, never performing it, and
// writes a refuse record naming the section. Each refusal has its control:
// the same section with as = root serves the same call. The binds run in a
// network namespace of the test's own (loopback up), so nothing else on the
// machine listening on, or lingering at, port 80 can get in their way.
import t, { type Test } from 'tap'
import { readAudit, waitForAudit, type AuditRecord } from './lib/audit.js'
import { startBroker, type Broker } from './lib/broker.js'
import { enterNetns, testNetns } from './lib/netns.js'
import { ruleFile } from './lib/rules.js'
import { jsonLine, runAs } from './lib/run.js'
import { setupE2E } from './lib/setup.js'

const e = await setupE2E(t)
const { user, fx, tree } = e
const NS = await testNetns(t, `stx5-deny-${process.pid}`)
/** The probe's bind, run as the user inside the test's namespace: the broker binds in the program's namespace. */
const bindInNs = (b: Broker, address: string, port: string) =>
  runAs(user, e.client(b.socket, fx.probe, 'bind', 'inet', 'stream', address, port), { timeoutMs: 15_000, via: enterNetns(NS) })

const icmp = (as: 'root' | 'deny', errno?: string) =>
  ['[socket.icmp]', `as = ${as}`, 'domain = inet', 'type = raw', 'protocol = icmp', ...(errno ? [`errno = ${errno}`] : []), ''].join('\n')
const icmp6 = (as: 'root' | 'deny', errno?: string) =>
  ['[socket.icmp6]', `as = ${as}`, 'domain = inet6', 'type = raw', 'protocol = ipv6-icmp', ...(errno ? [`errno = ${errno}`] : []), ''].join('\n')

async function brokerFor(t: Test, path: string, sections: string[]): Promise<Broker> {
  return startBroker(t, tree, { rules: { 'deny.conf': ruleFile({ path, users: [user.name] }, sections, 'as = deny sections') } })
}

/** The user's records for `call` once the session has ended (the client has returned by then). */
async function recordsOf(b: Broker, call: string): Promise<AuditRecord[]> {
  await waitForAudit(b.audit, a => a.event === 'exit' && a.uid === user.uid, 10_000, 'exit record of the session')
  return readAudit(b.audit).filter(a => a.uid === user.uid && a.call?.name === call && (a.event === 'grant' || a.event === 'refuse'))
}

function assertDenied(t: Test, records: AuditRecord[], b: Broker, section: string, errno: string) {
  t.equal(records.length, 1, `one record: ${JSON.stringify(records)}`)
  t.match(records[0], { event: 'refuse', errno, reason: `[${section}] denies it`, rule: { section } })
  t.match(records[0].rule?.file, /deny\.conf$/, 'the record names the rule file')
  t.notOk(readAudit(b.audit).some(a => a.event === 'grant'), 'nothing was granted')
}

for (const errno of ['EACCES', undefined]) {
  t.test(`a socket an as = deny section names gets ${errno ?? 'the default EPERM'}`, async t => {
    const b = await brokerFor(t, fx.probe, [icmp('deny', errno)])
    const r = await runAs(user, e.client(b.socket, fx.probe, 'raw4'), { timeoutMs: 15_000 })
    t.equal(r.code, 1, `the probe saw the refusal (stderr: ${r.stderr})`)
    t.same(jsonLine(r.stdout, 'raw4'), { raw4: errno ?? 'EPERM' })
    assertDenied(t, await recordsOf(b, 'socket'), b, 'socket.icmp', errno ?? 'EPERM')
  })
}

t.test('control: the same section with as = root creates the socket', async t => {
  const b = await brokerFor(t, fx.probe, [icmp('root', 'EACCES')])
  const r = await runAs(user, e.client(b.socket, fx.probe, 'raw4'), { timeoutMs: 15_000 })
  t.equal(r.code, 0, `stderr: ${r.stderr}`)
  t.type(jsonLine(r.stdout, 'raw4').raw4, 'number')
  t.match(await recordsOf(b, 'socket'), [{ event: 'grant', rule: { section: 'socket.icmp' } }])
})

t.test('ping under as = deny sections exits non-zero with its own "Permission denied"', async t => {
  const b = await brokerFor(t, fx.ping, [icmp('deny', 'EACCES'), icmp6('deny', 'EACCES')])
  const r = await runAs(user, e.client(b.socket, fx.ping, '-c1', '-W1', '127.0.0.1'), { timeoutMs: 15_000 })
  t.not(r.code, 0, `ping failed (stdout: ${r.stdout})`)
  t.match(r.stderr, /Permission denied/, 'ping reports EACCES')
  const records = await recordsOf(b, 'socket')
  t.ok(records.length > 0, 'ping asked for its socket')
  t.ok(records.every(a => a.event === 'refuse' && a.errno === 'EACCES' && /^\[socket\.icmp6?\] denies it$/.test(String(a.reason))),
    `every socket call refused by its section: ${JSON.stringify(records)}`)
})

t.test('a bind an as = deny section matches first is refused with its errno', async t => {
  const b = await brokerFor(t, fx.probe, [
    ['[bind.local]', 'as = root', 'family = inet', 'type = stream', 'port = 80', 'address = 127.0.0.1', ''].join('\n'),
    ['[bind.rest]', 'as = deny', 'family = inet', 'type = stream', 'port = 80', ''].join('\n'),
  ])
  const denied = await bindInNs(b, '127.0.0.2', '80')
  t.equal(jsonLine(denied.stdout, 'socket').bind, 'EACCES', `stderr: ${denied.stderr}`)
  assertDenied(t, await recordsOf(b, 'bind'), b, 'bind.rest', 'EACCES')
})

t.test('control: the bind the earlier grant section matches is served', async t => {
  const b = await brokerFor(t, fx.probe, [
    ['[bind.local]', 'as = root', 'family = inet', 'type = stream', 'port = 80', 'address = 127.0.0.1', ''].join('\n'),
    ['[bind.rest]', 'as = deny', 'family = inet', 'type = stream', 'port = 80', ''].join('\n'),
  ])
  const served = await bindInNs(b, '127.0.0.1', '80')
  t.equal(jsonLine(served.stdout, 'socket').bind, 'ok', `stderr: ${served.stderr}`)
  t.match(await recordsOf(b, 'bind'), [{ event: 'grant', rule: { section: 'bind.local' } }])
})

t.test('a setsockopt value an as = deny section lists is refused with its errno', async t => {
  const b = await brokerFor(t, fx.probe, [
    ['[setsockopt.mark]', 'as = deny', 'option = SO_MARK', 'value = 1-10', 'errno = EACCES', ''].join('\n'),
  ])
  const r = await runAs(user, e.client(b.socket, fx.probe, 'setopt', 'inet', 'dgram', 'SO_MARK=5'), { timeoutMs: 15_000 })
  t.match(jsonLine(r.stdout, 'results').results, [{ option: 'SO_MARK', set: 'EACCES' }], `stderr: ${r.stderr}`)
  assertDenied(t, await recordsOf(b, 'setsockopt'), b, 'setsockopt.mark', 'EACCES')
})

t.test('a setsockopt value outside the as = deny section is refused with setsockopt\'s own EPERM, not the section\'s errno', async t => {
  const b = await brokerFor(t, fx.probe, [
    ['[setsockopt.mark]', 'as = deny', 'option = SO_MARK', 'value = 1-10', 'errno = EACCES', ''].join('\n'),
  ])
  const r = await runAs(user, e.client(b.socket, fx.probe, 'setopt', 'inet', 'dgram', 'SO_MARK=20'), { timeoutMs: 15_000 })
  t.match(jsonLine(r.stdout, 'results').results, [{ option: 'SO_MARK', set: 'EPERM' }], `stderr: ${r.stderr}`)
  t.match(await recordsOf(b, 'setsockopt'), [{ event: 'refuse', errno: 'EPERM', reason: 'no section grants the value ([setsockopt.mark] denies other values)' }])
})

t.test('a bind no section matches gets the kernel\'s EACCES, not a deny section\'s errno', async t => {
  const b = await brokerFor(t, fx.probe, [
    ['[bind.www]', 'as = deny', 'family = inet', 'type = stream', 'port = 80', 'errno = EPERM', ''].join('\n'),
  ])
  const other = await bindInNs(b, '127.0.0.1', '81')
  t.equal(jsonLine(other.stdout, 'socket').bind, 'EACCES', `stderr: ${other.stderr}`)
  t.match(await recordsOf(b, 'bind'), [{ event: 'refuse', errno: 'EACCES' }])
})
