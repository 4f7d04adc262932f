// End to end: reloading the rules on SIGHUP. A rules directory with any
// error is refused as a whole (a rules-rejected record with the errors) and
// the rules in force keep serving; a valid one replaces them at once, and
// programs already running get their next trapped call decided by the
// current rules: a narrowed rule, a rule that no longer names the user, or
// a removed rule refuses it, with a refuse record saying which.
import t, { type Test } from 'tap'
import { chmodSync, chownSync, unlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { readAudit, waitForAudit, type AuditRecord } from './lib/audit.js'
import { startBroker, type Broker } from './lib/broker.js'
import { probeRule } from './lib/rules.js'
import { jsonLine, runAs, spawnAs, type RunningAs } from './lib/run.js'
import { setupE2E } from './lib/setup.js'

const e = await setupE2E(t)
const { user, other, fx, tree } = e

/** Replace (or add) a rule file as root would: root-owned, 0644. */
function writeRule(b: Broker, name: string, text: string): string {
  const file = join(b.rulesDir, name)
  writeFileSync(file, text)
  chownSync(file, 0, 0)
  chmodSync(file, 0o644)
  return file
}

/** SIGHUP the broker and wait (bounded) for the record of that reload. */
async function reload(b: Broker, expect: 'rules-loaded' | 'rules-rejected'): Promise<AuditRecord> {
  const count = (event: string) => readAudit(b.audit).filter(a => a.event === event).length
  const loaded = count('rules-loaded'), rejected = count('rules-rejected')
  process.kill(b.proc.pid!, 'SIGHUP')
  const deadline = Date.now() + 5000
  for (;;) {
    const recs = readAudit(b.audit)
    const l = recs.filter(a => a.event === 'rules-loaded'), r = recs.filter(a => a.event === 'rules-rejected')
    if (l.length > loaded || r.length > rejected) {
      const got = l.length > loaded ? l[l.length - 1] : r[r.length - 1]
      if (got.event !== expect) throw new Error(`expected ${expect} after SIGHUP, got ${JSON.stringify(got)}`)
      return got
    }
    if (Date.now() > deadline) throw new Error(`no ${expect} record within 5000 ms of SIGHUP`)
    await new Promise(r => setTimeout(r, 25))
  }
}

/** Poll cond (bounded); whether it held in time. */
async function until(cond: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > deadline) return false
    await new Promise(r => setTimeout(r, 25))
  }
  return true
}

/** A fresh client's probe raw4|raw6: the fd number, or the errno name. */
async function freshRaw(b: Broker, family: 'raw4' | 'raw6'): Promise<number | string> {
  const r = await runAs(user, e.client(b.socket, fx.probe, family))
  return jsonLine(r.stdout, family)[family]
}

/** The probe's raw-lines, run through the broker: one raw socket per line written. */
class RawLines {
  private n = 0
  private constructor(readonly run: RunningAs, readonly session: number) {}

  static async start(t: Test, b: Broker): Promise<RawLines> {
    const run = spawnAs(user, e.client(b.socket, fx.probe, 'raw-lines'))
    t.teardown(() => run.kill('SIGKILL'))
    const launch = await waitForAudit(b.audit, a => a.event === 'launch' && a.argv?.[1] === 'raw-lines', 10_000, 'the raw-lines launch')
    return new RawLines(run, launch.session!)
  }

  /** One line: "4" or "6"; the probe's answer (fd number or errno name). */
  async socket(family: 4 | 6): Promise<number | string> {
    const n = ++this.n
    this.run.write(`${family}\n`)
    const line = await this.run.waitForLine(l => l.startsWith(`{"n":${n},`), 10_000)
    return JSON.parse(line)[`raw${family}`]
  }

  async end(t: Test): Promise<void> {
    this.run.closeStdin()
    const r = await this.run.wait(10_000)
    t.equal(r.code, 0, `raw-lines exits 0 at EOF: ${r.stderr}`)
  }
}

const socketArgs = (family: 4 | 6) => family === 4
  ? { domain: 'inet', type: 'raw', protocol: 'icmp' }
  : { domain: 'inet6', type: 'raw', protocol: 'ipv6-icmp' }

const isSocketCall = (a: AuditRecord, session: number, event: string, family: 4 | 6) =>
  a.event === event && a.session === session && a.call?.name === 'socket' && (a.call.args as { domain?: string })?.domain === socketArgs(family).domain

t.test('a broken rules directory keeps the old rules: rules-rejected with the errors, and new clients are served', async t => {
  const b = await startBroker(t, tree, { rules: { 'probe.conf': probeRule({ path: fx.probe, users: [user.name] }, { icmp6: true }) } })
  t.type(await freshRaw(b, 'raw6'), 'number', 'before: raw ICMPv6 granted')

  // 1. The file itself broken.
  const probe = writeRule(b, 'probe.conf', probeRule({ path: fx.probe, users: [user.name] }, { icmp6: true }).replace('protocol = icmp\n', 'protocol = icmpp\n'))
  const rejected = await reload(b, 'rules-rejected')
  t.equal(rejected.dir, b.rulesDir)
  t.match(rejected.errors, [new RegExp(`^${probe}:\\d+: \\[socket\\.icmp\\] protocol: `)], 'the error names file, line, section and key')
  // The broker writes the record first; its stderr arrives through a pipe.
  const printed = await until(() => b.stderr().includes(`${rejected.errors![0]}\n`), 5000)
  t.ok(printed, `and the error goes to the broker's stderr: ${b.stderr().slice(-2000)}`)
  t.ok(b.alive(), 'the broker keeps running')
  t.type(await freshRaw(b, 'raw4'), 'number', 'a new client is served by the old rules (raw4)')
  t.type(await freshRaw(b, 'raw6'), 'number', 'a new client is served by the old rules (raw6)')

  // 2. A valid, narrower file beside a broken one: refused as a whole, so the narrowing waits too.
  writeRule(b, 'probe.conf', probeRule({ path: fx.probe, users: [user.name] }))
  const extra = writeRule(b, 'extra.conf', '[program]\npath = /usr/bin/true\nusers = nobody\ncolour = blue\n')
  const rejected2 = await reload(b, 'rules-rejected')
  t.ok(rejected2.errors?.length, 'errors listed')
  t.ok(rejected2.errors?.every(x => x.startsWith(`${extra}:`)), `only extra.conf is wrong: ${JSON.stringify(rejected2.errors)}`)
  t.type(await freshRaw(b, 'raw6'), 'number', 'the old rules still grant raw6: the valid file was not taken alone')

  // 3. Fixed: the narrower rule now serves.
  unlinkSync(extra)
  const loaded = await reload(b, 'rules-loaded')
  t.same(loaded.programs, [fx.probe])
  t.type(await freshRaw(b, 'raw4'), 'number', 'raw4 still granted')
  t.equal(await freshRaw(b, 'raw6'), 'EPERM', 'raw6 now refused')
  const listed = await runAs(user, e.client(b.socket, 'list', '--json'))
  t.same(JSON.parse(listed.stdout).programs, [{ path: fx.probe, args: null, calls: ['socket inet raw icmp'] }], 'list shows the reloaded rule')
})

t.test('a narrowed rule: a running program\'s next call is refused, its earlier call was granted', async t => {
  const b = await startBroker(t, tree, { rules: { 'probe.conf': probeRule({ path: fx.probe, users: [user.name] }, { icmp6: true }) } })
  const file = join(b.rulesDir, 'probe.conf')
  const p = await RawLines.start(t, b)

  t.type(await p.socket(6), 'number', 'before the reload: raw ICMPv6 granted')
  const grant = await waitForAudit(b.audit, a => isSocketCall(a, p.session, 'grant', 6), 5000, 'grant of raw6')
  t.same(grant.rule, { file, section: 'socket.icmp6' })

  // The [socket.icmp6] section removed.
  writeRule(b, 'probe.conf', probeRule({ path: fx.probe, users: [user.name] }))
  await reload(b, 'rules-loaded')

  t.equal(await p.socket(6), 'EPERM', 'after the reload: the same call of the same program is refused')
  const refuse = await waitForAudit(b.audit, a => isSocketCall(a, p.session, 'refuse', 6), 5000, 'refuse of raw6')
  t.same(refuse.call, { name: 'socket', args: socketArgs(6) })
  t.equal(refuse.errno, 'EPERM')
  t.same(refuse.rule, { file, section: 'program' }, 'names the current rule that decided')
  t.equal(refuse.reason, 'no [socket.*] section of the rule allows these arguments')

  t.type(await p.socket(4), 'number', 'what the current rule still allows is still granted')
  const grant4 = await waitForAudit(b.audit, a => isSocketCall(a, p.session, 'grant', 4), 5000, 'grant of raw4')
  t.same(grant4.rule, { file, section: 'socket.icmp' })
  await p.end(t)
})

t.test('a rule that no longer names the user: every trapped call refused; named again, granted again', async t => {
  const b = await startBroker(t, tree, { rules: { 'probe.conf': probeRule({ path: fx.probe, users: [user.name] }) } })
  const file = join(b.rulesDir, 'probe.conf')
  const p = await RawLines.start(t, b)
  t.type(await p.socket(4), 'number', 'before: granted')

  writeRule(b, 'probe.conf', probeRule({ path: fx.probe, users: [other.name] }))
  await reload(b, 'rules-loaded')
  t.equal(await p.socket(4), 'EPERM', 'after the user is removed: refused')
  const refuse = await waitForAudit(b.audit, a => isSocketCall(a, p.session, 'refuse', 4), 5000, 'refuse of raw4')
  t.equal(refuse.errno, 'EPERM')
  t.same(refuse.rule, { file, section: 'program' })
  t.equal(refuse.reason, `no rule lets ${user.name} run ${fx.probe} since the rules were reloaded`)
  t.same(refuse.call, { name: 'socket', args: socketArgs(4) })

  writeRule(b, 'probe.conf', probeRule({ path: fx.probe, users: [other.name], groups: ['stxtestgrp'] }))
  await reload(b, 'rules-loaded')
  t.type(await p.socket(4), 'number', 'named again (by a group): granted again')
  await p.end(t)
})

t.test('a removed rule: every trapped call of the running program refused', async t => {
  const b = await startBroker(t, tree, {
    rules: {
      'probe.conf': probeRule({ path: fx.probe, users: [user.name] }),
      'other.conf': probeRule({ path: fx.attack, users: [other.name] }),
    },
  })
  const p = await RawLines.start(t, b)
  t.type(await p.socket(4), 'number', 'before: granted')

  unlinkSync(join(b.rulesDir, 'probe.conf'))
  const loaded = await reload(b, 'rules-loaded')
  t.same(loaded.programs, [fx.attack])
  t.equal(await p.socket(4), 'EPERM', 'after the rule is gone: refused')
  const refuse = await waitForAudit(b.audit, a => isSocketCall(a, p.session, 'refuse', 4), 5000, 'the refusal')
  t.equal(refuse.reason, `no rule names ${fx.probe} since the rules were reloaded`)
  t.equal(refuse.rule, undefined, 'no rule to name')
  t.equal(refuse.errno, 'EPERM')
  await p.end(t)

  const again = await runAs(user, e.client(b.socket, fx.probe, 'raw4'))
  t.equal(again.code, 1, 'a new run is refused')
  t.match(again.stderr, `no rule lets ${user.name} run ${fx.probe}`)
})

t.test('a rule whose args no longer match the running program\'s arguments: every trapped call refused', async t => {
  const b = await startBroker(t, tree, { rules: { 'probe.conf': probeRule({ path: fx.probe, users: [user.name] }) } })
  const file = join(b.rulesDir, 'probe.conf')
  const p = await RawLines.start(t, b)
  t.type(await p.socket(4), 'number', 'before: granted')

  writeRule(b, 'probe.conf', probeRule({ path: fx.probe, users: [user.name] }).replace(`users = ${user.name}\n`, `users = ${user.name}\nargs = raw4\n`))
  await reload(b, 'rules-loaded')
  t.equal(await p.socket(4), 'EPERM', 'raw-lines is no longer an argument the rule allows')
  const refuse = await waitForAudit(b.audit, a => isSocketCall(a, p.session, 'refuse', 4), 5000, 'refuse of raw4')
  t.equal(refuse.reason, `the arguments do not match the rule ${file} (args = raw4) since the rules were reloaded`)
  t.same(refuse.rule, { file, section: 'program' })
  await p.end(t)
  t.type(await freshRaw(b, 'raw4'), 'number', 'a new run with the allowed arguments is served')
})

t.test('a widened rule: a new program runs under the filter compiled from the reloaded rule, not one compiled before', async t => {
  const b = await startBroker(t, tree, { rules: { 'probe.conf': probeRule({ path: fx.probe, users: [user.name] }) } })
  const file = join(b.rulesDir, 'probe.conf')
  // The broker compiles the filter once per loaded rule: this run fills its cache.
  t.type(await freshRaw(b, 'raw4'), 'number', 'before: raw4 granted')
  t.equal(await freshRaw(b, 'raw6'), 'EPERM', 'before: raw6 is not trapped, and the kernel refuses the user')
  t.notOk(readAudit(b.audit).some(a => a.call?.name === 'socket' && (a.call.args as { domain?: string })?.domain === 'inet6'),
    'before: no record of a raw6 call: the filter did not trap it')

  writeRule(b, 'probe.conf', probeRule({ path: fx.probe, users: [user.name] }, { icmp6: true }))
  await reload(b, 'rules-loaded')
  // A filter kept from before the reload would not trap raw6: the kernel would say EPERM again.
  t.type(await freshRaw(b, 'raw6'), 'number', 'after: raw6 is trapped and granted')
  const grant = await waitForAudit(b.audit, a => a.event === 'grant' && a.call?.name === 'socket' && (a.call.args as { domain?: string })?.domain === 'inet6', 5000, 'grant of raw6')
  t.same(grant.rule, { file, section: 'socket.icmp6' })
  t.type(await freshRaw(b, 'raw4'), 'number', 'after: raw4 still granted')
})
