// End to end: a grant is closed over its follow-up calls. On a brokered raw
// socket the unprivileged options that widen it (header-included packets,
// freebind) are refused with the rule's errno and a `refuse` record, at every
// level the kernel takes them (IPV6_HDRINCL at SOL_RAW too) and whatever junk
// sits in the upper 32 bits of level and optname; `header-included = allow`
// lets them through with a `grant` record. The same options on a socket the
// program made itself (UDP) behave as without stx-elevate. io_uring, which
// would run setsockopt past seccomp, is refused inside an elevated program.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { readAudit, waitForAudit, type AuditRecord } from './lib/audit.js'
import type { Broker } from './lib/broker.js'
import { probeRule } from './lib/rules.js'
import { jsonLine, runAs } from './lib/run.js'
import { setupE2E, sharedBroker } from './lib/setup.js'

const e = await setupE2E(t)
const { user, fx, tree } = e

const SOL_IP = 0, SOL_IPV6 = 41, SOL_RAW = 255
const IP_HDRINCL = 3, IPV6_HDRINCL = 36, IP_FREEBIND = 15, IPV6_FREEBIND = 78

interface Option {
  what: string
  /** the probe subcommand that opens the raw socket of the right family */
  raw: 'sockopt4' | 'sockopt6'
  /** the one that opens a UDP socket of that family */
  udp: 'sockopt-udp4' | 'sockopt-udp6'
  level: number
  name: number
  section: 'socket.icmp' | 'socket.icmp6'
}

const WIDENING: Option[] = [
  { what: '(SOL_IP, IP_HDRINCL)', raw: 'sockopt4', udp: 'sockopt-udp4', level: SOL_IP, name: IP_HDRINCL, section: 'socket.icmp' },
  { what: '(SOL_IPV6, IPV6_HDRINCL)', raw: 'sockopt6', udp: 'sockopt-udp6', level: SOL_IPV6, name: IPV6_HDRINCL, section: 'socket.icmp6' },
  { what: '(SOL_RAW, IPV6_HDRINCL)', raw: 'sockopt6', udp: 'sockopt-udp6', level: SOL_RAW, name: IPV6_HDRINCL, section: 'socket.icmp6' },
  { what: '(SOL_IP, IP_FREEBIND)', raw: 'sockopt4', udp: 'sockopt-udp4', level: SOL_IP, name: IP_FREEBIND, section: 'socket.icmp' },
  { what: '(SOL_IPV6, IPV6_FREEBIND)', raw: 'sockopt6', udp: 'sockopt-udp6', level: SOL_IPV6, name: IPV6_FREEBIND, section: 'socket.icmp6' },
]
const VARIANTS = [
  { hi: false, label: '' },
  { hi: true, label: ', junk in the upper 32 bits of level and optname' },
]

const rulesWith = (o: Parameters<typeof probeRule>[1]) => ({
  rules: { 'probe.conf': probeRule({ path: fx.probe, users: [user.name] }, { icmp6: true, ...o }) },
})
const denying = sharedBroker(t, tree, () => rulesWith({}))
const allowing = sharedBroker(t, tree, () => rulesWith({ headerIncluded: 'allow' }))
const eacces = sharedBroker(t, tree, () => rulesWith({ errno: 'EACCES' }))

interface SockoptResult { socket: number | string, level: number, name: number, hi: number, setsockopt: string | null }

function probeArgs(cmd: string, o: Option, hi: boolean): string[] {
  return [cmd, String(o.level), String(o.name), ...(hi ? ['hi'] : [])]
}

/** The probe's setsockopt result, run directly (argv0 = the probe or its setcap copy). */
async function direct(program: string, args: string[]): Promise<SockoptResult> {
  const r = await runAs(user, [program, ...args])
  return jsonLine<SockoptResult>(r.stdout, 'setsockopt')
}

/** The probe under stx-elevate, and its session's launch record. */
async function elevated(b: Broker, args: string[]): Promise<{ o: SockoptResult, code: number | null, stderr: string, launch: AuditRecord }> {
  const r = await runAs(user, e.client(b.socket, fx.probe, ...args))
  const o = jsonLine<SockoptResult>(r.stdout, 'setsockopt')
  const launch = await waitForAudit(b.audit, a => a.event === 'launch' && a.uid === user.uid && a.program === fx.probe &&
    JSON.stringify(a.argv?.slice(1)) === JSON.stringify(args), 5000, `launch record for ${args.join(' ')}`)
  return { o, code: r.code, stderr: r.stderr, launch }
}

/** The session has ended (exit record): every record of its calls is written. */
async function sessionRecords(b: Broker, session: unknown): Promise<AuditRecord[]> {
  await waitForAudit(b.audit, a => a.event === 'exit' && a.session === session, 5000, `exit record of session ${session}`)
  return readAudit(b.audit).filter(a => a.session === session)
}

// --- controls: the options do something the user could otherwise not do -----

for (const { hi, label } of VARIANTS) {
  t.test(`control: on a raw socket of the setcap copy, every widening option succeeds${label}`, async t => {
    for (const o of WIDENING) {
      const r = await direct(fx.probeCap, probeArgs(o.raw, o, hi))
      t.type(r.socket, 'number', `${o.what}: the setcap copy opens a raw socket`)
      t.equal(r.setsockopt, 'ok', `${o.what} succeeds (needs no privilege beyond the socket)`)
      t.equal(r.hi, hi ? 1 : 0)
    }
  })
}

t.test('control: stx-probe run directly gets no raw socket of either family', async t => {
  for (const cmd of ['sockopt4', 'sockopt6']) {
    const r = await direct(fx.probe, [cmd, '0', '3'])
    t.equal(r.socket, 'EPERM', `${cmd}: no raw socket without privilege`)
  }
})

// --- refused under stx-elevate ----------------------------------------------

for (const o of WIDENING) {
  for (const { hi, label } of VARIANTS) {
    t.test(`${o.what} on a brokered raw socket is refused (EPERM), with a refuse record${label}`, async t => {
      const b = await denying()
      const args = probeArgs(o.raw, o, hi)
      const { o: r, code, stderr, launch } = await elevated(b, args)
      t.type(r.socket, 'number', `the broker granted the raw socket (stderr: ${stderr})`)
      t.equal(r.setsockopt, 'EPERM', `${o.what} refused`)
      t.equal(code, 1, "the probe's status for a refused option")
      const rec = await waitForAudit(b.audit, a => a.event === 'refuse' && a.session === launch.session &&
        a.call?.name === 'setsockopt', 5000, `refuse record for setsockopt ${o.what}`)
      t.equal(rec.uid, user.uid)
      t.equal(rec.user, user.name)
      t.equal(rec.program, fx.probe)
      t.equal(rec.errno, 'EPERM')
      t.type(rec.pid, 'number')
      t.type(rec.reason, 'string')
      t.equal(rec.rule?.section, o.section, 'names the socket rule that granted the socket')
      const cargs = rec.call?.args as { fd?: unknown, option?: unknown } | undefined
      t.equal(cargs?.fd, r.socket, 'call.args.fd is the socket the program got')
      t.ok(cargs?.option !== undefined && cargs?.option !== null, `call.args.option says which option: ${JSON.stringify(cargs?.option)}`)
      const records = await sessionRecords(b, launch.session)
      t.notOk(records.some(a => a.event === 'grant' && a.call?.name === 'setsockopt'), 'and no grant record for it')
    })
  }
}

t.test("the refusal carries the rule's errno (errno = EACCES)", async t => {
  const b = await eacces()
  for (const o of WIDENING) {
    for (const { hi } of VARIANTS) {
      const args = probeArgs(o.raw, o, hi)
      const { o: r, stderr, launch } = await elevated(b, args)
      t.type(r.socket, 'number', `${args.join(' ')}: the raw socket is granted (stderr: ${stderr})`)
      t.equal(r.setsockopt, 'EACCES', `${args.join(' ')}: refused with the rule's errno`)
      const rec = await waitForAudit(b.audit, a => a.event === 'refuse' && a.session === launch.session &&
        a.call?.name === 'setsockopt', 5000, `refuse record for ${args.join(' ')}`)
      t.equal(rec.errno, 'EACCES', `${args.join(' ')}: the record says EACCES`)
    }
  }
})

// --- header-included = allow ------------------------------------------------

for (const o of WIDENING) {
  t.test(`${o.what} is allowed with a grant record where the rule says header-included = allow`, async t => {
    const b = await allowing()
    for (const { hi } of VARIANTS) {
      const args = probeArgs(o.raw, o, hi)
      const { o: r, code, stderr, launch } = await elevated(b, args)
      t.type(r.socket, 'number', `${args.join(' ')}: the raw socket is granted (stderr: ${stderr})`)
      t.equal(r.setsockopt, 'ok', `${args.join(' ')}: allowed`)
      t.equal(code, 0)
      const rec = await waitForAudit(b.audit, a => a.event === 'grant' && a.session === launch.session &&
        a.call?.name === 'setsockopt', 5000, `grant record for ${args.join(' ')}`)
      t.equal(rec.uid, user.uid)
      t.equal(rec.program, fx.probe)
      t.equal(rec.rule?.section, o.section)
      t.equal((rec.call?.args as { fd?: unknown } | undefined)?.fd, r.socket, 'call.args.fd is the socket')
      t.equal(rec.result, 0, 'result 0')
      const records = await sessionRecords(b, launch.session)
      t.notOk(records.some(a => a.event === 'refuse'), 'nothing refused in that session')
    }
  })
}

// --- normal programs are not broken ------------------------------------------

t.test('control: IP_FREEBIND and IPV6_FREEBIND on a UDP socket need no privilege', async t => {
  for (const o of WIDENING.filter(x => x.name === IP_FREEBIND || x.name === IPV6_FREEBIND)) {
    const r = await direct(fx.probe, probeArgs(o.udp, o, false))
    t.type(r.socket, 'number')
    t.equal(r.setsockopt, 'ok', `${o.udp} ${o.what}`)
  }
})

t.test('on a UDP socket the program made itself the same options behave as without stx-elevate', async t => {
  const b = await denying()
  for (const o of WIDENING) {
    for (const { hi } of VARIANTS) {
      const args = probeArgs(o.udp, o, hi)
      const want = await direct(fx.probe, args)
      const { o: r, stderr, launch } = await elevated(b, args)
      t.type(r.socket, 'number', `${args.join(' ')}: the program's own UDP socket (stderr: ${stderr})`)
      t.equal(r.setsockopt, want.setsockopt, `${args.join(' ')} (${o.what} on UDP): ${want.setsockopt}, as run directly`)
      const records = await sessionRecords(b, launch.session)
      t.notOk(records.some(a => a.event === 'refuse'), `${args.join(' ')}: no refuse record`)
    }
  }
})

// --- io_uring -----------------------------------------------------------------

interface UringResult { uring_setup: string, uring_enter: string, uring_register: string }

t.test('control: io_uring is enabled on this machine and works for the user run directly', async t => {
  const disabled = readFileSync('/proc/sys/kernel/io_uring_disabled', 'utf8').trim()
  t.equal(disabled, '0', 'kernel.io_uring_disabled must be 0 here, or the io_uring test below proves nothing (set it to 0 to run it)')
  const r = await runAs(user, [fx.probe, 'uring'])
  const o = jsonLine<UringResult>(r.stdout, 'uring_setup')
  t.equal(o.uring_setup, 'ok', 'io_uring_setup')
  t.equal(o.uring_enter, 'ok', 'io_uring_enter on the ring')
  t.not(o.uring_register, 'EPERM', `io_uring_register reaches the ring (${o.uring_register})`)
  t.equal(r.code, 0)
})

t.test('io_uring_setup, io_uring_enter and io_uring_register get EPERM inside an elevated program', async t => {
  const b = await denying()
  const r = await runAs(user, e.client(b.socket, fx.probe, 'uring'))
  const o = jsonLine<UringResult>(r.stdout, 'uring_setup')
  t.equal(o.uring_setup, 'EPERM', `io_uring_setup (stderr: ${r.stderr})`)
  t.equal(o.uring_enter, 'EPERM', 'io_uring_enter')
  t.equal(o.uring_register, 'EPERM', 'io_uring_register')
  t.equal(r.code, 1)
  // the filter answers these itself: nothing to check in the audit, but the
  // program ran under the broker (its launch record) and was not killed
  await waitForAudit(b.audit, a => a.event === 'launch' && a.program === fx.probe &&
    JSON.stringify(a.argv?.slice(1)) === '["uring"]', 5000, 'launch record of the uring probe')
})
