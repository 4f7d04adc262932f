// End to end: setsockopt of options that need privilege, through the broker.
// SO_MARK inside and outside the section's values, SO_BINDTODEVICE to an
// allowed and a forbidden interface (veth interfaces in a network namespace
// the test creates), SO_PRIORITY above 6, IP_TRANSPARENT, the buffer
// overrides; values that need no privilege run with the user's rights; a
// value flipped by a second thread while the broker reads it never gets a
// forbidden value set. Controls: run directly, each of these needs
// privilege (EPERM), so a success through the broker is the broker's.
import t, { type Test } from 'tap'
import { readAudit, waitForAudit, type AuditRecord } from './lib/audit.js'
import type { Broker } from './lib/broker.js'
import { cleanArgv, mustRunRoot, runRoot } from './lib/proc.js'
import { ruleFile, setsockoptSection } from './lib/rules.js'
import { asUser, jsonLine, userEnv, type RunResult } from './lib/run.js'
import { setupE2E, sharedBroker } from './lib/setup.js'
import { enterNetns, testNetns } from './lib/netns.js'

const e = await setupE2E(t)
const { user, fx, tree } = e

// A network namespace of the test's own, with two veth interfaces: sa0 (the
// section names it) and sb0 (it does not). Deleted in teardown, with them.
const ALLOWED_IF = 'sa0'
const OTHER_IF = 'sb0'
const TEST_NS = await testNetns(t, `stx5-sockopt-${process.pid}`)
const { name: NS, id: NS_ID } = TEST_NS
await mustRunRoot(['ip', '-n', NS, 'link', 'add', ALLOWED_IF, 'type', 'veth', 'peer', 'name', OTHER_IF], { timeoutMs: 15_000 })
for (const dev of [ALLOWED_IF, OTHER_IF]) await mustRunRoot(['ip', '-n', NS, 'link', 'set', dev, 'up'], { timeoutMs: 15_000 })

const broker = sharedBroker(t, tree, () => ({
  rules: {
    'probe.conf': ruleFile({ path: fx.probe, users: [user.name] }, [
      setsockoptSection({ name: 'mark', option: 'SO_MARK', values: ['1-100', '0x1000'] }),
      setsockoptSection({ name: 'device', option: 'SO_BINDTODEVICE', interfaces: [ALLOWED_IF] }),
      setsockoptSection({ name: 'priority', option: 'SO_PRIORITY', values: [7] }),
      setsockoptSection({ name: 'transparent', option: 'IP_TRANSPARENT', values: [1] }),
      setsockoptSection({ name: 'transparent6', option: 'IPV6_TRANSPARENT', values: [1] }),
      setsockoptSection({ name: 'rcvbuf', option: 'SO_RCVBUFFORCE', values: ['65536-1048576'] }),
      setsockoptSection({ name: 'sndbuf', option: 'SO_SNDBUFFORCE', values: [65536], errno: 'EACCES' }),
    ], 'stx-probe: privileged socket options'),
  },
}))

interface OptResult { option: string, value: number | string, set: string, get: number | string }
interface SetoptOut { pid: number, socket: number | string, results: OptResult[] }

/** argv run as root: enter the test's namespace (network only), then become the user. */
const inNs = (argv: string[]) => [...enterNetns(TEST_NS), ...cleanArgv(asUser(user, argv), userEnv(user))]

/** The records of the session whose program had `pid`, once its exit record is written (bounded). */
async function sessionOf(b: Broker, pid: number): Promise<AuditRecord[]> {
  const launch = await waitForAudit(b.audit, a => a.event === 'launch' && a.pid === pid, 5000, `launch record of pid ${pid}`)
  await waitForAudit(b.audit, a => a.event === 'exit' && a.session === launch.session, 10_000, `exit record of session ${launch.session}`)
  return readAudit(b.audit).filter(a => a.session === launch.session)
}

const optRecords = (records: AuditRecord[], event: 'grant' | 'refuse') =>
  records.filter(a => a.event === event && a.call?.name === 'setsockopt')

/**
 * `stx-probe setopt FAMILY TYPE OPT=VALUE...` as the user inside the test's
 * namespace, directly (b undefined) or through the broker.
 */
async function setopt(b: Broker | undefined, family: string, type: string, ...opts: string[]): Promise<{ r: RunResult, out: SetoptOut, records: AuditRecord[] }> {
  const argv = ['setopt', family, type, ...opts]
  const r = await runRoot(inNs(b ? e.client(b.socket, fx.probe, ...argv) : [fx.probe, ...argv]), { timeoutMs: 30_000 })
  let out: SetoptOut
  try {
    out = jsonLine<SetoptOut>(r.stdout, 'results')
  } catch (err) {
    throw new Error(`stx-probe ${argv.join(' ')}: ${(err as Error).message}\nexit ${r.code} signal ${r.signal}\nstderr: ${r.stderr}`)
  }
  return { r, out, records: b ? await sessionOf(b, out.pid) : [] }
}

/** Each set's outcome and the value read back, in order: [set, get]. */
const outcomes = (out: SetoptOut) => out.results.map(x => [x.set, x.get])

function assertGrant(t: Test, rec: AuditRecord | undefined, section: string, fd: number | string, option: string, value: number | string) {
  t.match(rec, { uid: user.uid, user: user.name, program: fx.probe, rule: { section }, result: 0 }, `grant record for ${option} = ${value}`)
  t.match(rec?.call, { name: 'setsockopt', args: { fd, option } })
  t.ok(rec?.call?.args && Object.values(rec.call.args as object).includes(value), `the record has the value ${value}: ${JSON.stringify(rec?.call)}`)
}

function assertRefuse(t: Test, rec: AuditRecord | undefined, fd: number | string, option: string, value: number | string, errno = 'EPERM') {
  t.match(rec, { uid: user.uid, user: user.name, program: fx.probe, errno, reason: String }, `refuse record for ${option} = ${value}`)
  t.match(rec?.call, { name: 'setsockopt', args: { fd, option } })
  t.ok(rec?.call?.args && Object.values(rec.call.args as object).includes(value), `the record has the value ${value}: ${JSON.stringify(rec?.call)}`)
}

// --- controls: without the broker these need privilege ------------------------------

t.test('control: run directly, the options need privilege (EPERM), the harmless values do not', async t => {
  const { out } = await setopt(undefined, 'inet', 'dgram',
    'SO_MARK=5', 'SO_PRIORITY=7', 'SO_PRIORITY=3', 'IP_TRANSPARENT=1', 'IP_TRANSPARENT=0', 'SO_RCVBUFFORCE=65536', 'SO_SNDBUFFORCE=65536')
  t.same(out.results.map(x => [x.option, x.value, x.set]), [
    ['SO_MARK', 5, 'EPERM'],
    ['SO_PRIORITY', 7, 'EPERM'],
    ['SO_PRIORITY', 3, 'ok'],
    ['IP_TRANSPARENT', 1, 'EPERM'],
    ['IP_TRANSPARENT', 0, 'ok'],
    ['SO_RCVBUFFORCE', 65536, 'EPERM'],
    ['SO_SNDBUFFORCE', 65536, 'EPERM'],
  ])
})

t.test('control: run directly, a first SO_BINDTODEVICE needs no privilege, changing it does (EPERM)', async t => {
  const { out } = await setopt(undefined, 'inet', 'dgram', `SO_BINDTODEVICE=${OTHER_IF}`, `SO_BINDTODEVICE=${ALLOWED_IF}`)
  t.same(outcomes(out), [['ok', OTHER_IF], ['EPERM', OTHER_IF]])
})

t.test('the program runs in the test\'s namespace, where sa0 and sb0 exist (the setting of every test here)', async t => {
  const b = await broker()
  const r = await runRoot(inNs(e.client(b.socket, fx.probe, 'netns')), { timeoutMs: 30_000 })
  t.equal(jsonLine(r.stdout, 'netns').netns, NS_ID)
})

// --- SO_MARK -------------------------------------------------------------------------

t.test('SO_MARK within the allowed values is set as root, with a grant record each', async t => {
  const got = await setopt(await broker(), 'inet', 'dgram', 'SO_MARK=5', 'SO_MARK=100', 'SO_MARK=0x1000', 'SO_MARK=1')
  t.same(outcomes(got.out), [['ok', 5], ['ok', 100], ['ok', 0x1000], ['ok', 1]], 'each set, each read back')
  t.equal(got.r.code, 0)
  const grants = optRecords(got.records, 'grant')
  t.equal(grants.length, 4, `four grant records: ${JSON.stringify(grants)}`)
  for (const [i, v] of [5, 100, 0x1000, 1].entries()) assertGrant(t, grants[i], 'setsockopt.mark', got.out.socket, 'SO_MARK', v)
  t.same(optRecords(got.records, 'refuse'), [], 'no refusal')
})

t.test('SO_MARK outside the allowed values is refused with EPERM and a refuse record; the mark stays', async t => {
  const got = await setopt(await broker(), 'inet', 'dgram', 'SO_MARK=7', 'SO_MARK=101', 'SO_MARK=0', 'SO_MARK=0x1001', 'SO_MARK=-1')
  t.same(outcomes(got.out), [['ok', 7], ['EPERM', 7], ['EPERM', 7], ['EPERM', 7], ['EPERM', 7]], 'refused; the mark set first stays')
  const refused = optRecords(got.records, 'refuse')
  t.equal(refused.length, 4, `four refuse records: ${JSON.stringify(refused)}`)
  for (const [i, v] of [101, 0, 0x1001, 0xffffffff].entries()) assertRefuse(t, refused[i], got.out.socket, 'SO_MARK', v)
  t.equal(optRecords(got.records, 'grant').length, 1, 'one grant: the 7')
})

t.test('a thread flipping the SO_MARK value between 5 (allowed) and 200: 200 is never set', async t => {
  const b = await broker()
  const r = await runRoot(inNs(e.client(b.socket, fx.probe, 'setopt-race', 'SO_MARK', '5', '200', '4000', '240')), { timeoutMs: 300_000 })
  t.equal(r.code, 0, `the race ran to its end (stderr: ${r.stderr.slice(-500)})`)
  const out = jsonLine<{ tries: number, flips: number, set: Record<string, number>, ok: number, errors: Record<string, number> }>(r.stdout, 'tries')
  t.equal(out.tries, 4000)
  t.ok(out.flips > out.tries, `the second thread kept flipping (${out.flips})`)
  t.same(Object.keys(out.set), ['5'], `only 5 was ever read back: ${JSON.stringify(out.set)}`)
  t.ok(out.ok > 0 && (out.errors.EPERM ?? 0) > 0, `both outcomes happened (${out.ok} set, ${out.errors.EPERM} refused)`)
  t.same(Object.keys(out.errors).filter(k => k !== 'EPERM'), [], `no other error: ${JSON.stringify(out.errors)}`)
})

// --- SO_BINDTODEVICE -------------------------------------------------------------------

t.test(`SO_BINDTODEVICE to ${ALLOWED_IF} (allowed) is set as root, with a grant record`, async t => {
  const got = await setopt(await broker(), 'inet', 'dgram', `SO_BINDTODEVICE=${ALLOWED_IF}`)
  t.same(outcomes(got.out), [['ok', ALLOWED_IF]])
  const grants = optRecords(got.records, 'grant')
  t.equal(grants.length, 1)
  assertGrant(t, grants[0], 'setsockopt.device', got.out.socket, 'SO_BINDTODEVICE', ALLOWED_IF)
})

t.test(`SO_BINDTODEVICE to ${OTHER_IF} (not in the section) is refused with EPERM and a refuse record`, async t => {
  const got = await setopt(await broker(), 'inet', 'dgram', `SO_BINDTODEVICE=${OTHER_IF}`)
  t.same(outcomes(got.out), [['EPERM', '']], 'refused; the socket is bound to no device')
  const refused = optRecords(got.records, 'refuse')
  t.equal(refused.length, 1)
  assertRefuse(t, refused[0], got.out.socket, 'SO_BINDTODEVICE', OTHER_IF)
  t.same(optRecords(got.records, 'grant'), [], 'no grant')
})

t.test(`SO_BINDTODEVICE: from ${ALLOWED_IF} to ${OTHER_IF}, or unbinding, is refused; the binding stays`, async t => {
  const got = await setopt(await broker(), 'inet6', 'stream', `SO_BINDTODEVICE=${ALLOWED_IF}`, `SO_BINDTODEVICE=${OTHER_IF}`, 'SO_BINDTODEVICE=')
  t.same(outcomes(got.out), [['ok', ALLOWED_IF], ['EPERM', ALLOWED_IF], ['EPERM', ALLOWED_IF]])
  const refused = optRecords(got.records, 'refuse')
  t.equal(refused.length, 2, 'two refuse records')
  assertRefuse(t, refused[0], got.out.socket, 'SO_BINDTODEVICE', OTHER_IF)
})

// --- SO_PRIORITY, IP_TRANSPARENT, buffers -------------------------------------------------

t.test('SO_PRIORITY: 3 runs as the user (no record), 7 is granted, 8 is refused', async t => {
  const got = await setopt(await broker(), 'inet', 'stream', 'SO_PRIORITY=3', 'SO_PRIORITY=7', 'SO_PRIORITY=8')
  t.same(outcomes(got.out), [['ok', 3], ['ok', 7], ['EPERM', 7]])
  const grants = optRecords(got.records, 'grant')
  t.equal(grants.length, 1, `one grant record (7): ${JSON.stringify(grants)}`)
  assertGrant(t, grants[0], 'setsockopt.priority', got.out.socket, 'SO_PRIORITY', 7)
  const refused = optRecords(got.records, 'refuse')
  t.equal(refused.length, 1, 'one refuse record (8)')
  assertRefuse(t, refused[0], got.out.socket, 'SO_PRIORITY', 8)
})

t.test('IP_TRANSPARENT and IPV6_TRANSPARENT: on is granted, off runs as the user', async t => {
  const b = await broker()
  const v4 = await setopt(b, 'inet', 'stream', 'IP_TRANSPARENT=1', 'IP_TRANSPARENT=0')
  t.same(outcomes(v4.out), [['ok', 1], ['ok', 0]])
  const g4 = optRecords(v4.records, 'grant')
  t.equal(g4.length, 1, 'one grant record (on)')
  assertGrant(t, g4[0], 'setsockopt.transparent', v4.out.socket, 'IP_TRANSPARENT', 1)
  const v6 = await setopt(b, 'inet6', 'stream', 'IPV6_TRANSPARENT=1')
  t.same(outcomes(v6.out), [['ok', 1]])
  const g6 = optRecords(v6.records, 'grant')
  t.equal(g6.length, 1)
  assertGrant(t, g6[0], 'setsockopt.transparent6', v6.out.socket, 'IPV6_TRANSPARENT', 1)
})

t.test('SO_RCVBUFFORCE and SO_SNDBUFFORCE: allowed sizes are set; others refused with the section\'s errno', async t => {
  const got = await setopt(await broker(), 'inet', 'dgram', 'SO_RCVBUFFORCE=65536', 'SO_RCVBUFFORCE=8388608', 'SO_SNDBUFFORCE=65536', 'SO_SNDBUFFORCE=4096')
  t.same(got.out.results.map(x => x.set), ['ok', 'EPERM', 'ok', 'EACCES'])
  t.equal(got.out.results[0].get, 131072, 'SO_RCVBUF reads twice the size set (the kernel\'s bookkeeping)')
  t.equal(got.out.results[1].get, 131072, 'unchanged by the refused call')
  t.equal(got.out.results[2].get, 131072, 'SO_SNDBUF likewise')
  const refused = optRecords(got.records, 'refuse')
  t.equal(refused.length, 2)
  assertRefuse(t, refused[0], got.out.socket, 'SO_RCVBUFFORCE', 8388608)
  assertRefuse(t, refused[1], got.out.socket, 'SO_SNDBUFFORCE', 4096, 'EACCES')
  t.equal(optRecords(got.records, 'grant').length, 2)
})

t.test('setsockopt of a trapped option on a file descriptor that is not a socket: ENOTSOCK, nothing granted', async t => {
  const got = await setopt(await broker(), 'devnull', '-', 'SO_MARK=5')
  t.same(outcomes(got.out), [['ENOTSOCK', 'ENOTSOCK']])
  t.same(optRecords(got.records, 'grant'), [], 'no grant record')
})
