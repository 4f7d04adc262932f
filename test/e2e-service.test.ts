// The installed service on a booted systemd (test/systemd/boot.sh, as in
// e2e-systemd.test.ts): scripts/install-system.sh run inside the container on
// the bound test tree installs the unit, the man pages, the group and the
// directories; `systemctl start stx-elevated` starts the broker as the unit
// says (Type=notify, its capability bounding set, no_new_privs, audit to the
// journal); the container's user pings 127.0.0.1 through it on the default
// socket (ping_group_range is closed, so ping needs the broker); the grant is
// a journal entry of the unit; `systemctl reload` takes a changed rule (a
// removed rule refuses the next run, an invalid one is refused and the old
// rules keep serving); the broker holds exactly the documented capabilities
// and works with them (a negative nice value needs CAP_SYS_NICE); and
// `--audit syslog` lands in the journal through /dev/log.
import t from 'tap'
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs'
import { AUDIT_MESSAGE_ID } from '../src/broker/journal.js'
import type { AuditRecord } from './lib/audit.js'
import { CONTAINER_USER as cuser, systemdContainer, until, type Container } from './lib/container.js'
import { rootEnv, runRoot } from './lib/proc.js'
import { pingRule, probeRule } from './lib/rules.js'
import { jsonLine, runAs } from './lib/run.js'
import { setupE2E } from './lib/setup.js'
import { unitCapabilities } from './lib/unit.js'

const e = await setupE2E(t)
const { fx, tree } = e
// systemd-nspawn 252's own seccomp allow-list, which every service in the
// container inherits, lacks pidfd_getfd (the broker's way to a program's
// fds): allow it, as a .nspawn file would for a broker in a container.
const { container } = systemdContainer(t, tree, [`test -x ${tree.broker} && test -x ${fx.ping} && test -x ${fx.probe}`],
  ['--system-call-filter=pidfd_getfd'])

const UNIT = 'stx-elevated.service'
const UNIT_FILE = '/usr/local/lib/systemd/system/stx-elevated.service'
const RULES = '/etc/elevation.d'
/** The unit's own drop-in directory, for the syslog test. */
const DROP_IN = '/etc/systemd/system/stx-elevated.service.d'

/** A path inside the container, as the host reaches it (through its PID 1's root). */
const inside = (c: Container, path: string) => `/proc/${c.leader}/root${path}`

/** Write a root-owned 0644 file inside the container. */
function writeInside(c: Container, path: string, text: string): void {
  const p = inside(c, path)
  writeFileSync(p, text)
  chownSync(p, 0, 0)
  chmodSync(p, 0o644)
}

async function mustRun(c: Container, argv: string[], timeoutMs = 30_000): Promise<string> {
  const r = await c.run(argv, timeoutMs)
  if (r.code !== 0) throw new Error(`${argv.join(' ')} in the container failed (code ${r.code}): ${r.stderr}${r.stdout}`)
  return r.stdout
}

let installed: Promise<Container> | undefined
/** The container with the system part installed, ping's and the probe's rules in /etc/elevation.d, the service started. */
function service(): Promise<Container> {
  installed ??= (async () => {
    const c = await container()
    await mustRun(c, ['bash', tree.path('scripts', 'install-system.sh'), '--prefix', tree.root])
    writeInside(c, `${RULES}/ping.conf`, pingRule({ path: fx.ping, users: [cuser.name] }))
    writeInside(c, `${RULES}/probe.conf`, probeRule({ path: fx.probe, users: [cuser.name] }))
    // Type=notify: returns once the broker listens (or failed to)
    const r = await c.run(['systemctl', 'start', UNIT], 60_000)
    if (r.code !== 0) throw new Error(`systemctl start ${UNIT} failed (code ${r.code}): ${r.stderr}\n${(await c.run(['journalctl', '-u', UNIT, '--no-pager', '-n', '30'])).stdout}`)
    return c
  })()
  return installed
}

t.teardown(async () => {
  if (!installed || t.passing()) return
  const c = await installed.catch(() => undefined)
  if (c) process.stderr.write(`--- journalctl -u ${UNIT} (in the container):\n${(await c.run(['journalctl', '-u', UNIT, '--no-pager', '-n', '40']).catch(() => ({ stdout: '' }))).stdout}\n`)
})

/** The audit records in the journal (MESSAGE_ID, the unit's identifier), oldest first; every entry must be one JSON record. */
async function journalAudit(c: Container, ...match: string[]): Promise<AuditRecord[]> {
  const out = await mustRun(c, ['journalctl', '--no-pager', '-o', 'cat', '-t', 'stx-elevated', ...match], 10_000)
  return out.split('\n').filter(Boolean).map(line => {
    try {
      return JSON.parse(line) as AuditRecord
    } catch {
      throw new Error(`a journal entry of the audit trail is not one JSON record: ${line}`)
    }
  })
}
const auditEntries = (c: Container, ...match: string[]) => journalAudit(c, `MESSAGE_ID=${AUDIT_MESSAGE_ID}`, ...match)

/** Wait (bounded) for a record among those `entries` gives. */
async function waitFor(what: string, entries: () => Promise<AuditRecord[]>, pred: (r: AuditRecord) => boolean): Promise<AuditRecord> {
  let found: AuditRecord | undefined
  await until(what, async () => (found = (await entries()).find(pred)) !== undefined, 10_000)
  return found!
}
const waitForJournal = (c: Container, what: string, pred: (r: AuditRecord) => boolean) => waitFor(what, () => auditEntries(c), pred)

/** `systemctl reload`, then the record of that reload (the n-th rules-* record from the start). */
async function reload(c: Container): Promise<AuditRecord> {
  const before = (await auditEntries(c)).filter(a => /^rules-/.test(a.event ?? '')).length
  await mustRun(c, ['systemctl', 'reload', UNIT])
  let recs: AuditRecord[] = []
  await until('the reload\'s rules-loaded or rules-rejected record', async () =>
    (recs = (await auditEntries(c)).filter(a => /^rules-/.test(a.event ?? ''))).length > before, 10_000)
  return recs[before]
}

async function show(c: Container, property: string): Promise<string> {
  return (await mustRun(c, ['systemctl', 'show', '--value', `--property=${property}`, UNIT])).trim()
}

/** Wait (bounded) until a property matches: sd_notify messages reach systemd after the records reach the journal. */
async function showUntil(c: Container, property: string, want: RegExp): Promise<string> {
  let value = ''
  await until(`${property} to match ${want} (last: ${JSON.stringify(value)})`, async () => want.test(value = await show(c, property)), 10_000)
  return value
}

const ping = (c: Container) => runAs(cuser, [tree.client, fx.ping, '-c1', '-W5', '127.0.0.1'], { via: c.via, timeoutMs: 20_000 })

t.test('control: inside the container, the user\'s ping cannot open its socket without the broker', async t => {
  const c = await container()
  const r = await runAs(cuser, [fx.ping, '-c1', '-W5', '127.0.0.1'], { via: c.via })
  t.not(r.code, 0, 'ping fails')
  t.match(r.stderr, /Operation not permitted|socket/i, r.stderr)
})

t.test('install-system.sh: the unit (daemon-reloaded), the man pages, the group, /etc/elevation.d and /var/lib/stx-elevate', async t => {
  const c = await service()
  const unit = readFileSync(inside(c, UNIT_FILE), 'utf8')
  t.match(unit, new RegExp(`^ExecStart=/usr/local/bin/node ${tree.root}/bin/stx-elevated --audit journal$`, 'm'), 'ExecStart: the tree\'s broker, by the node on PATH')
  t.notMatch(unit, /@[A-Z]+@/, 'every placeholder filled in')
  t.equal(await show(c, 'FragmentPath'), UNIT_FILE, 'systemd knows the unit from there')
  for (const page of ['man1/stx-elevate.1', 'man5/elevation.d.5', 'man8/stx-elevated.8']) {
    t.equal(readFileSync(inside(c, `/usr/local/share/man/${page}`), 'utf8'), readFileSync(tree.path('man', page.split('/')[1]), 'utf8'), page)
  }
  t.match(await mustRun(c, ['getent', 'group', 'stx-elevate']), /^stx-elevate:x:\d+:$/m, 'the group stx-elevate, with no member')
  for (const dir of [RULES, '/var/lib/stx-elevate']) {
    const st = statSync(inside(c, dir))
    t.same({ uid: st.uid, mode: st.mode & 0o7777 }, { uid: 0, mode: 0o755 }, `${dir} root 0755`)
  }
  const again = await c.run(['bash', tree.path('scripts', 'install-system.sh'), '--prefix', tree.root])
  t.equal(again.code, 0, `a second run succeeds: ${again.stderr}`)
  t.equal(again.stderr, '', 'and warns of nothing')
})

t.test('systemctl start: the user pings through the broker on the default socket; the grant is in the unit\'s journal', async t => {
  const c = await service()
  t.equal(await show(c, 'ActiveState'), 'active')
  t.ok(await showUntil(c, 'StatusText', /^serving 2 programs from \/etc\/elevation\.d$/), 'STATUS= from sd_notify')
  const r = await ping(c)
  t.equal(r.code, 0, r.stderr)
  t.match(r.stdout, /1 packets transmitted, 1 received/)
  const grant = await waitForJournal(c, 'the grant record', a => a.event === 'grant' && a.program === fx.ping)
  t.match(grant, { user: cuser.name, uid: cuser.uid, call: { name: 'socket' } })
  const byUnit = await auditEntries(c, '-u', UNIT, 'STX_ELEVATE_EVENT=grant')
  t.ok(byUnit.some(a => a.time === grant.time && a.pid === grant.pid), 'journalctl -u stx-elevated STX_ELEVATE_EVENT=grant has it')
  const launch = (await auditEntries(c)).find(a => a.event === 'launch' && a.pid === grant.pid)
  t.ok(launch, 'and its launch record')
})

t.test('systemctl reload: a removed rule refuses the next run; an invalid rule is refused and the old rules kept', async t => {
  const c = await service()
  unlinkSync(inside(c, `${RULES}/ping.conf`))
  const loaded = await reload(c)
  t.match(loaded, { event: 'rules-loaded', programs: [fx.probe] }, 'the reload loaded the probe\'s rule alone')
  const refused = await ping(c)
  t.equal(refused.code, 1, 'stx-elevate fails')
  t.match(refused.stderr, /^stx-elevate: /, `one line of its own: ${refused.stderr}`)
  await waitForJournal(c, 'the refuse record', a => a.event === 'refuse' && a.call?.name === 'run'
    && (a.call.args as { path?: string } | undefined)?.path === fx.ping)

  writeInside(c, `${RULES}/ping.conf`, `${pingRule({ path: fx.ping, users: [cuser.name] })}\nnot a line of any section\n`)
  const rejected = await reload(c)
  t.match(rejected, { event: 'rules-rejected' }, 'the reload was refused')
  t.ok(await showUntil(c, 'StatusText', /^kept the previous rules: /), 'STATUS= says so')
  t.ok(await showUntil(c, 'ActiveState', /^active$/), 'the broker runs on')
  t.equal((await ping(c)).code, 1, 'the rules in force (no ping rule) still decide')

  writeInside(c, `${RULES}/ping.conf`, pingRule({ path: fx.ping, users: [cuser.name] }))
  t.match(await reload(c), { event: 'rules-loaded' }, 'the fixed rule is loaded')
  const r = await ping(c)
  t.equal(r.code, 0, `ping works again: ${r.stderr}`)
})

/** capsh --decode of a capability mask: the names, sorted. */
async function decode(mask: string | undefined): Promise<string[]> {
  const r = await runRoot(['capsh', `--decode=${mask}`])
  if (r.code !== 0 || mask === undefined) throw new Error(`capsh --decode=${mask} failed: ${r.stderr}`)
  return r.stdout.trim().replace(/^.*=/, '').split(',').filter(Boolean).sort()
}

t.test('the capability bounding set is the documented one, the broker holds no more, and works with it', async t => {
  const c = await service()
  const documented = unitCapabilities().map(n => n.toLowerCase()).sort()
  t.same((await show(c, 'CapabilityBoundingSet')).split(/\s+/).sort(), documented, 'systemctl show -p CapabilityBoundingSet')
  const pid = Number(await show(c, 'MainPID'))
  t.ok(pid > 1, `the broker's pid in the container: ${pid}`)
  const statusOf = (p: number) => readFileSync(inside(c, `/proc/${p}/status`), 'utf8')
  const field = (status: string, name: string) => new RegExp(`^${name}:\\s+(\\S+)$`, 'm').exec(status)?.[1]
  const status = statusOf(pid), init = statusOf(1)
  // The container itself has fewer (systemd-nspawn keeps CAP_NET_ADMIN without --private-network): what both allow.
  const containerSet = await decode(field(init, 'CapBnd'))
  const expected = documented.filter(cap => containerSet.includes(cap))
  t.comment(`documented but not in the container's bounding set: ${documented.filter(cap => !containerSet.includes(cap)).join(', ') || 'none'}`)
  for (const set of ['CapBnd', 'CapEff', 'CapPrm']) t.same(await decode(field(status, set)), expected, `the broker's ${set}`)
  t.equal(field(status, 'NoNewPrivs'), '1', 'no_new_privs')
  t.equal(field(status, 'Seccomp_filters'), field(init, 'Seccomp_filters'), 'no seccomp filter of its own (the container\'s only): clients would look sandboxed')
  const ns = (p: number | string) => statSync(inside(c, `/proc/${p}/ns/mnt`)).ino
  t.equal(ns(pid), ns(1), 'the mount namespace of the container\'s PID 1 (clients would look sandboxed otherwise)')

  // CAP_SYS_NICE: the program keeps a client's negative nice value. The
  // loginuid needs no CAP_AUDIT_CONTROL: the service's own is unset.
  t.equal(readFileSync(inside(c, `/proc/${pid}/loginuid`), 'utf8').trim(), '4294967295', 'the broker\'s loginuid is unset')
  const wrapper = [...c.via, 'sh', '-c', 'echo 1234 > /proc/self/loginuid && renice -n -5 -p $$ >/dev/null && exec "$@"', 'sh']
  const r = await runAs(cuser, [tree.client, fx.probe, 'session'], { via: wrapper })
  t.equal(r.code, 0, r.stderr)
  t.match(jsonLine(r.stdout, 'cgroup'), { loginuid: 1234, nice: -5 }, 'the client\'s loginuid and nice value -5')
})

t.test('--audit syslog (a drop-in): the records reach the journal through /dev/log, facility authpriv', async t => {
  const c = await service()
  const dropIn = `${DROP_IN}/syslog.conf`
  await mustRun(c, ['mkdir', '-p', DROP_IN])
  writeInside(c, dropIn, `[Service]\nExecStart=\nExecStart=/usr/local/bin/node ${tree.root}/bin/stx-elevated --audit syslog\n`)
  t.teardown(async () => {
    if (existsSync(inside(c, dropIn))) unlinkSync(inside(c, dropIn))
    await c.run(['systemctl', 'daemon-reload']).catch(() => undefined)
  })
  await mustRun(c, ['systemctl', 'daemon-reload'])
  await mustRun(c, ['systemctl', 'restart', UNIT], 60_000)
  const r = await ping(c)
  t.equal(r.code, 0, r.stderr)
  const pid = Number(await show(c, 'MainPID'))
  // syslog messages carry no MESSAGE_ID: this broker's, by facility and pid (its standard error is facility 3)
  const grant = await waitFor('the grant record through syslog', () => journalAudit(c, 'SYSLOG_FACILITY=10', `SYSLOG_PID=${pid}`),
    a => a.event === 'grant' && a.program === fx.ping)
  t.match(grant, { user: cuser.name })
  t.same(await auditEntries(c, `_PID=${pid}`), [], 'no native journal entry from this broker')
})

t.test('--audit journal where no journald listens: the broker refuses to start, saying so (exit 1)', async t => {
  // A mount namespace of its own with an empty /run: no journal socket there, whatever the host runs.
  const rules = tree.path('no-journal-rules')
  mkdirSync(rules, { mode: 0o755 })
  const r = await runRoot(['unshare', '--mount', '--propagation', 'private', 'sh', '-c', 'mount -t tmpfs tmpfs /run && exec "$@"', 'sh',
    process.execPath, tree.broker, '--audit', 'journal', '--rules', rules, '--socket', tree.path('no-journal.sock')],
  { env: rootEnv(), timeoutMs: 30_000 })
  t.equal(r.code, 1, r.stderr)
  t.match(r.stderr, /^stx-elevated: cannot send audit records to journal \(connect\(\/run\/systemd\/journal\/socket\): No such file or directory\); is systemd-journald running\? Else give --audit FILE$/m)
  t.notOk(existsSync(tree.path('no-journal.sock')), 'it never listened')
})
