// End to end: `stx-elevate list`. The broker answers from its loaded rules
// and the kernel's view of the caller (uid, groups, passwd entry): each user
// sees only the programs its rules name (by user, by group, or `*`) with
// their calls as root; a user with none gets an empty list and exit 0. A
// served list is not audited; a malformed one is (client-rejected). The
// name `list` is reserved: `stx-elevate -- list` runs a program called list.
import t from 'tap'
import { chmodSync, chownSync, copyFileSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { readAudit, waitForAudit } from './lib/audit.js'
import { startBroker } from './lib/broker.js'
import { SAFE_PATH, SUPP_GROUP } from './lib/paths.js'
import { pingRule, probeRule } from './lib/rules.js'
import { jsonLine, runAs } from './lib/run.js'
import { rawClient as rawClientAs } from './lib/raw-client.js'
import { setupE2E, sharedBroker } from './lib/setup.js'

const e = await setupE2E(t)
const { user, other, fx, tree } = e

// Named differently: the probe by user, ping by a group only `user` is in,
// the attacker by the other user, seccomp-exec for everyone.
const attackRule = [
  '[program]', `path = ${fx.attack}`, `users = ${other.name}`, '',
  '[bind.web]', 'as = root', 'family = inet, inet6', 'type = stream', 'port = 80, 443', 'address = 127.0.0.1, ::1', '',
].join('\n')
const everyoneRule = [
  '[program]', `path = ${fx.seccompExec}`, 'users = *', '',
  '[setsockopt.mark]', 'as = root', 'option = SO_MARK', 'value = 1-10', '',
].join('\n')

const broker = sharedBroker(t, tree, () => ({
  rules: {
    'probe.conf': probeRule({ path: fx.probe, users: [user.name] }, { icmp6: true }),
    'ping.conf': pingRule({ path: fx.ping, groups: [SUPP_GROUP] }),
    'attack.conf': attackRule,
    'everyone.conf': everyoneRule,
  },
}))

const ICMP = ['socket inet raw icmp', 'socket inet6 raw ipv6-icmp']
const expected = {
  [user.name]: [
    { path: fx.ping, args: null, calls: ICMP },
    { path: fx.probe, args: null, calls: ICMP },
    { path: fx.seccompExec, args: null, calls: ['setsockopt SO_MARK 1-10'] },
  ],
  [other.name]: [
    { path: fx.attack, args: null, calls: ['bind inet/inet6 stream port 80,443 address 127.0.0.1,::1'] },
    { path: fx.seccompExec, args: null, calls: ['setsockopt SO_MARK 1-10'] },
  ],
}
const sorted = (ps: Array<{ path: string, args: string | null, calls: string[] }>) => [...ps].sort((a, b) => (a.path < b.path ? -1 : 1))

function humanList(name: string, programs: Array<{ path: string, args: string | null, calls: string[] }>): string {
  return [
    `${name} may run through stx-elevate, with these calls as root:`,
    ...sorted(programs).flatMap(p => [`    ${p.path}`, ...p.calls.map(c => `        ${c}`)]),
    '',
  ].join('\n')
}

for (const who of [user, other]) {
  t.test(`list as ${who.name}: only the programs its rules name, with their calls`, async t => {
    const b = await broker()
    const r = await runAs(who, e.client(b.socket, 'list'))
    t.equal(r.code, 0, r.stderr)
    t.equal(r.stderr, '')
    t.equal(r.stdout, humanList(who.name, expected[who.name]))
  })

  t.test(`list --json as ${who.name}: one JSON object`, async t => {
    const b = await broker()
    const r = await runAs(who, e.client(b.socket, 'list', '--json'))
    t.equal(r.code, 0, r.stderr)
    t.equal(r.stdout.trim().split('\n').length, 1, 'one line')
    t.same(JSON.parse(r.stdout), { uid: who.uid, user: who.name, programs: sorted(expected[who.name]), omitted: 0 })
  })
}

t.test('a served list writes no audit record; the broker keeps serving', async t => {
  const b = await broker()
  const before = readAudit(b.audit).length
  const r = await runAs(user, e.client(b.socket, 'list'))
  t.equal(r.code, 0, r.stderr)
  const ok = await runAs(user, e.client(b.socket, fx.probe, 'exit', '0'))
  t.equal(ok.code, 0, `a run right after is served: ${ok.stderr}`)
  await waitForAudit(b.audit, a => a.event === 'exit' && a.uid === user.uid, 5000, 'the run\'s exit record')
  const recs = readAudit(b.audit).slice(before)
  t.same(recs.map(a => a.event), ['launch', 'exit'], 'only the run\'s records')
})

t.test('a user no rule names gets an empty list, a line saying so, and exit 0', async t => {
  const b = await startBroker(t, tree, { rules: { 'probe.conf': probeRule({ path: fx.probe, users: [user.name] }) } })
  const r = await runAs(other, e.client(b.socket, 'list'))
  t.equal(r.code, 0, r.stderr)
  t.equal(r.stderr, '')
  t.equal(r.stdout, `${other.name} may not run any program through stx-elevate.\n`)
  const j = await runAs(other, e.client(b.socket, 'list', '--json'))
  t.equal(j.code, 0, j.stderr)
  t.same(JSON.parse(j.stdout), { uid: other.uid, user: other.name, programs: [], omitted: 0 })
  t.same(readAudit(b.audit).map(a => a.event), ['rules-loaded'], 'nothing recorded')
})

t.test('list is a reserved name: `stx-elevate -- list` runs a program called list', async t => {
  const dir = tree.path('commands-bin')
  mkdirSync(dir, { recursive: true, mode: 0o755 })
  chownSync(dir, 0, 0)
  chmodSync(dir, 0o755)
  const list = join(dir, 'list')
  copyFileSync(fx.probe, list)
  chownSync(list, 0, 0)
  chmodSync(list, 0o755)
  const b = await startBroker(t, tree, { rules: { 'list.conf': probeRule({ path: list, users: [user.name] }) } })
  const env = { env: { PATH: `${dir}:${SAFE_PATH}` } }

  const run = await runAs(user, e.client(b.socket, '--', 'list', 'raw4'), env)
  t.equal(run.code, 0, `the program ran: ${run.stderr}`)
  t.type(jsonLine(run.stdout, 'raw4').raw4, 'number', 'and got its raw socket')
  const launch = await waitForAudit(b.audit, a => a.event === 'launch', 5000, 'launch record')
  t.equal(launch.program, list)

  const listed = await runAs(user, e.client(b.socket, 'list'), env)
  t.equal(listed.code, 0, listed.stderr)
  t.equal(listed.stdout, humanList(user.name, [{ path: list, args: null, calls: ['socket inet raw icmp'] }]), 'without -- it is the command')

  const extra = await runAs(user, e.client(b.socket, 'list', 'raw4'), env)
  t.equal(extra.code, 2, 'list takes no operand: a usage error')
  t.match(extra.stderr, /^stx-elevate list: Unknown argument: raw4\nusage: stx-elevate \[--socket PATH\] list \[--json\]\n$/)
})

t.test('a rule with an argument pattern: list shows the arguments it allows', async t => {
  const withArgs = (rule: string, args: string) => rule.replace(`users = ${user.name}\n`, `users = ${user.name}\nargs = ${args}\n`)
  const b = await startBroker(t, tree, {
    rules: {
      'probe.conf': withArgs(probeRule({ path: fx.probe, users: [user.name] }), 'raw4'),
      'ping.conf': withArgs(pingRule({ path: fx.ping, users: [user.name] }), '""'),
    },
  })
  const r = await runAs(user, e.client(b.socket, 'list'))
  t.equal(r.code, 0, r.stderr)
  t.equal(r.stdout, [
    `${user.name} may run through stx-elevate, with these calls as root:`,
    `    ${fx.ping} (with no arguments)`, ...ICMP.map(c => `        ${c}`),
    `    ${fx.probe} (with the arguments raw4)`, '        socket inet raw icmp',
    '',
  ].join('\n'))
  const j = await runAs(user, e.client(b.socket, 'list', '--json'))
  t.same(JSON.parse(j.stdout).programs, [
    { path: fx.ping, args: '""', calls: ICMP },
    { path: fx.probe, args: 'raw4', calls: ['socket inet raw icmp'] },
  ])
})

t.test('a rule with an as = deny section: list shows the call as denied, with its errno', async t => {
  const denying = probeRule({ path: fx.probe, users: [user.name] }, { icmp6: true })
    .replace('[socket.icmp6]\nas = root\n', '[socket.icmp6]\nas = deny\nerrno = EAFNOSUPPORT\n')
  t.match(denying, /as = deny/, 'the rule has the deny section')
  const b = await startBroker(t, tree, { rules: { 'probe.conf': denying } })
  const j = await runAs(user, e.client(b.socket, 'list', '--json'))
  t.equal(j.code, 0, j.stderr)
  t.same(JSON.parse(j.stdout).programs, [
    { path: fx.probe, args: null, calls: ['socket inet raw icmp', 'socket inet6 raw ipv6-icmp denied with EAFNOSUPPORT'] },
  ])
  const h = await runAs(user, e.client(b.socket, 'list'))
  t.equal(h.code, 0, h.stderr)
  t.equal(h.stdout, [
    `${user.name} may run through stx-elevate, with these calls as root (or refused, where it says denied):`,
    `    ${fx.probe}`,
    '        socket inet raw icmp',
    '        socket inet6 raw ipv6-icmp denied with EAFNOSUPPORT',
    '',
  ].join('\n'), 'the heading does not call the denied call one performed as root')
})

t.test('list with no broker: one line, exit 1', async t => {
  const socket = tree.path('no-broker.sock')
  const r = await runAs(user, e.client(socket, 'list'))
  t.equal(r.code, 1)
  t.equal(r.stderr, `stx-elevate: cannot reach the broker at ${socket}: No such file or directory: the stx-elevated broker is not running (start it with: systemctl start stx-elevated)\n`)
  t.equal(r.stdout, '')
})

/** raw-client.py as the user against the broker. */
const rawClient = (socket: string, kase: string) => rawClientAs(user, fx, socket, kase)

t.test('protocol: a list request is answered by one programs message, then the broker closes', async t => {
  const b = await broker()
  // list-twice: whatever the client sends after its list is dropped, never the answer (20 tries: it is a race)
  for (const kase of ['list', ...Array(20).fill('list-twice')]) {
    const r = await rawClient(b.socket, kase)
    t.equal(r.error, null, kase)
    t.equal(r.replies.length, 1, `${kase}: one reply: ${JSON.stringify(r.replies)}`)
    t.same(r.replies[0], { v: 1, type: 'programs', uid: user.uid, user: user.name, programs: sorted(expected[user.name]), omitted: 0 })
    t.ok(r.eof, `${kase}: then the broker closes`)
    t.notOk(r.timeout)
  }
  t.ok(b.alive())
})

for (const { kase, what } of [{ kase: 'list-fds', what: 'a list carrying an fd' }, { kase: 'list-key', what: 'a list with an extra key' }]) {
  t.test(`protocol: ${what} is an error and a client-rejected record`, async t => {
    const b = await broker()
    const r = await rawClient(b.socket, kase)
    t.equal(r.error, null)
    t.equal(r.replies.length, 1, JSON.stringify(r.replies))
    t.match(r.replies[0], { v: 1, type: 'error', reason: String })
    t.ok(r.eof)
    const rec = await waitForAudit(b.audit, a => a.event === 'client-rejected' && a.pid === r.pid, 5000, `client-rejected for pid ${r.pid}`)
    t.equal(rec.uid, user.uid)
    t.match(rec.reason, kase === 'list-fds' ? /^list takes 0 fds, got 1$/ : /unexpected key "user" in list message/)
  })
}
