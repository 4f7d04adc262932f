// Unit tests of src/broker/policy.ts (the `list` answer and the rule a
// running program gets after a reload) and of the list/programs messages
// in src/shared/protocol.ts.
import t from 'tap'
import { parseRuleFile } from '../src/broker/rules/parse.js'
import type { ProgramRule, RuleSet } from '../src/broker/rules/model.js'
import type { ClientIdentity } from '../src/broker/identity.js'
import { currentRule, describeCall, programsFor } from '../src/broker/policy.js'
import { MAX_MESSAGE, ProtocolError, decodeBrokerMessage, decodeClientMessage, encode } from '../src/shared/protocol.js'

function rule(path: string, who: string, sections = '', file = `/etc/elevation.d/${path.split('/').pop()}.conf`): ProgramRule {
  const r = parseRuleFile(file, `[program]\npath = ${path}\n${who}\n${sections}`)
  if (!r.program) throw new Error(r.errors.join('\n'))
  return r.program
}

function ruleSet(...rules: ProgramRule[]): RuleSet {
  return { dir: '/etc/elevation.d', files: rules.map(r => r.file), programs: rules.reduce((m, r) => m.set(r.path, [...(m.get(r.path) ?? []), r]), new Map<string, ProgramRule[]>()) }
}

/** A client as identity.ts would report it; `name` undefined: no passwd entry. */
function client(uid: number, name: string | undefined, gids: number[] = [uid]): ClientIdentity {
  return {
    pid: 1, uid, gid: gids[0], gids, supplementary: gids.slice(1), pidfd: -1,
    passwd: name === undefined ? undefined : { name, uid, gid: gids[0], dir: '/', shell: '/bin/sh' },
  }
}

const ICMP = '[socket.icmp]\nas = root\ndomain = inet\ntype = raw\nprotocol = icmp\n'
const ICMP6 = '[socket.icmp6]\nas = root\ndomain = inet6\ntype = raw\nprotocol = ipv6-icmp\n'

t.test('describeCall: each kind of section in the rule\'s words', async t => {
  const r = rule('/usr/sbin/x', 'users = *', ICMP
    + '[socket.all]\nas = root\ndomain = packet\ntype = raw\nprotocol = all\n'
    + '[socket.forge]\nas = root\ndomain = inet6\ntype = raw\nprotocol = raw\nheader-included = allow\n'
    + '[bind.web]\nas = root\nfamily = inet, inet6\ntype = stream, dgram\nport = 80, 443, 600-700\n'
    + '[bind.local]\nas = root\nfamily = inet\ntype = stream\nport = 25\naddress = 127.0.0.1\nreuseport = allow\n'
    + '[setsockopt.mark]\nas = root\noption = SO_MARK\nvalue = 1, 5-9\n'
    + '[setsockopt.tproxy]\nas = root\noption = IP_TRANSPARENT\nvalue = 1\n'
    + '[setsockopt.dev]\nas = root\noption = SO_BINDTODEVICE\ninterface = eth0, wg0\n')
  t.same(r.calls.map(describeCall), [
    'socket inet raw icmp',
    'socket packet raw all',
    'socket inet6 raw raw header-included',
    'bind inet/inet6 stream/dgram port 80,443,600-700',
    'bind inet stream port 25 address 127.0.0.1 reuseport',
    'setsockopt SO_MARK 1,5-9',
    'setsockopt IP_TRANSPARENT 1',
    'setsockopt SO_BINDTODEVICE eth0,wg0',
  ])
})

t.test('programsFor: what run would allow, by user, group or *, sorted by path', async t => {
  const rules = ruleSet(
    rule('/usr/bin/ping', 'users = *', ICMP + ICMP6),
    rule('/usr/sbin/b', 'users = alice'),
    rule('/usr/sbin/a', 'groups = root', ICMP),        // gid 0, looked up through NSS
    rule('/usr/sbin/c', 'users = bob'),
  )
  const alice = programsFor(rules, client(1000, 'alice', [1000, 0]))
  t.same(alice, {
    v: 1, type: 'programs', uid: 1000, user: 'alice', omitted: 0,
    programs: [
      { path: '/usr/bin/ping', args: null, calls: ['socket inet raw icmp', 'socket inet6 raw ipv6-icmp'] },
      { path: '/usr/sbin/a', args: null, calls: ['socket inet raw icmp'] },
      { path: '/usr/sbin/b', args: null, calls: [] },
    ],
  })
  t.same(programsFor(rules, client(1001, 'carol')).programs.map(p => p.path), ['/usr/bin/ping'], 'carol: only *')
  t.same(programsFor(rules, client(1002, undefined, [1002, 0])), { v: 1, type: 'programs', uid: 1002, user: null, programs: [], omitted: 0 },
    'no passwd entry: nothing, not even by group (run refuses such a uid)')
  t.same(programsFor(ruleSet(), client(1000, 'alice')).programs, [], 'no rules: empty')
})

t.test('programsFor: an answer that would not fit leaves programs out and counts them', async t => {
  const long = (i: number) => `/${'d'.repeat(200)}/${'p'.repeat(3800)}${String(i).padStart(4, '0')}`
  const rules = ruleSet(...Array.from({ length: 40 }, (_, i) => rule(long(i), 'users = *', ICMP)))
  const a = programsFor(rules, client(1000, 'alice'))
  t.ok(a.programs.length > 0 && a.programs.length < 40, `${a.programs.length} listed`)
  t.equal(a.programs.length + a.omitted, 40)
  t.same(a.programs.map(p => p.path), Array.from({ length: a.programs.length }, (_, i) => long(i)), 'the first ones by path')
  t.ok(encode(a).length <= MAX_MESSAGE)
  t.same(decodeBrokerMessage(encode(a)), a, 'and the client accepts it')
})

t.test('currentRule: the rule for the same path in the rules loaded now, if it still serves the client', async t => {
  const launched = rule('/usr/bin/ping', 'users = alice', ICMP + ICMP6)
  const alice = client(1000, 'alice')
  const narrowed = rule('/usr/bin/ping', 'users = alice', ICMP, '/etc/elevation.d/moved.conf')
  t.equal(currentRule(ruleSet(narrowed), launched, ['ping'], alice, false).rule, narrowed, 'narrowed, even moved to another file: it decides')
  t.same(currentRule(ruleSet(rule('/usr/bin/other', 'users = *')), launched, ['ping'], alice, false),
    { reason: 'no rule names /usr/bin/ping since the rules were reloaded' })
  const bobOnly = rule('/usr/bin/ping', 'users = bob', ICMP)
  t.same(currentRule(ruleSet(bobOnly), launched, ['ping'], alice, false),
    { reason: `no rule lets alice run /usr/bin/ping since the rules were reloaded`, at: bobOnly.at })
  t.same(currentRule(ruleSet(launched), launched, ['ping'], client(1002, undefined), false).reason,
    `no rule lets uid 1002 run /usr/bin/ping since the rules were reloaded`)
  t.same(currentRule(ruleSet(launched), launched, ['ping'], alice, true),
    { reason: `the rule ${launched.file} no longer serves sandboxed clients since the rules were reloaded`, at: launched.at })
  const sandboxOk = rule('/usr/bin/ping', 'users = alice\nsandboxed-clients = allow', ICMP)
  t.equal(currentRule(ruleSet(sandboxOk), launched, ['ping'], alice, true).rule, sandboxOk)
})

t.test('protocol: list takes no key but v and type', async t => {
  t.same(decodeClientMessage(Buffer.from('{"v":1,"type":"list"}')), { v: 1, type: 'list' })
  t.throws(() => decodeClientMessage(Buffer.from('{"v":1,"type":"list","uid":0}')), { message: 'unexpected key "uid" in list message' })
})

t.test('protocol: a programs answer is validated like every message', async t => {
  const ok = { v: 1, type: 'programs', uid: 1000, user: 'alice', programs: [{ path: '/usr/bin/ping', args: null, calls: ['socket inet raw icmp'] }], omitted: 0 }
  const dec = (m: unknown) => decodeBrokerMessage(Buffer.from(JSON.stringify(m)))
  t.same(dec(ok), ok)
  t.same(dec({ ...ok, user: null }), { ...ok, user: null })
  const withArgs = { ...ok, programs: [{ path: '/usr/bin/python3', args: '-m http.server 80', calls: [] }] }
  t.same(dec(withArgs), withArgs)
  const bad: Array<[string, unknown]> = [
    ['no omitted', { v: 1, type: 'programs', uid: 1000, user: 'alice', programs: [] }],
    ['an extra key', { ...ok, extra: 1 }],
    ['a negative uid', { ...ok, uid: -1 }],
    ['an empty user', { ...ok, user: '' }],
    ['a fractional omitted', { ...ok, omitted: 0.5 }],
    ['programs not an array', { ...ok, programs: {} }],
    ['a relative path', { ...ok, programs: [{ path: 'ping', args: null, calls: [] }] }],
    ['a program without calls', { ...ok, programs: [{ path: '/x', args: null }] }],
    ['a program without args', { ...ok, programs: [{ path: '/x', calls: [] }] }],
    ['args not a string', { ...ok, programs: [{ path: '/x', args: ['-v'], calls: [] }] }],
    ['args too long', { ...ok, programs: [{ path: '/x', args: 'a'.repeat(1025), calls: [] }] }],
    ['a program with an extra key', { ...ok, programs: [{ path: '/x', args: null, calls: [], rule: 'x' }] }],
    ['an empty call', { ...ok, programs: [{ path: '/x', args: null, calls: [''] }] }],
    ['a call too long', { ...ok, programs: [{ path: '/x', args: null, calls: ['c'.repeat(1025)] }] }],
    ['too many calls', { ...ok, programs: [{ path: '/x', args: null, calls: Array(1025).fill('c') }] }],
    ['too many programs', { ...ok, programs: Array(4097).fill({ path: '/x', args: null, calls: [] }) }],
  ]
  for (const [what, m] of bad) {
    let error: unknown
    try { dec(m) } catch (e) { error = e }
    t.ok(error instanceof ProtocolError, `${what}: ${String(error)}`)
  }
})

t.test('full grammar: list shows args; a reload re-checks args and the sha256 pin', async t => {
  const pin = 'a'.repeat(64), other = 'b'.repeat(64)
  const web = rule('/usr/bin/python3', 'users = alice\nargs = -m http.server 80', '[bind.http]\nas = root\nfamily = inet\ntype = stream\nport = 80\n')
  const none = rule('/usr/bin/true', 'users = alice\nargs = ""')
  t.same(programsFor(ruleSet(web, none), client(1000, 'alice')).programs, [
    { path: '/usr/bin/python3', args: '-m http.server 80', calls: ['bind inet stream port 80'] },
    { path: '/usr/bin/true', args: '""', calls: [] },
  ])
  const alice = client(1000, 'alice')
  t.equal(currentRule(ruleSet(web), web, ['python3', '-m', 'http.server', '80'], alice, false).rule, web, 'argv still matches')
  t.same(currentRule(ruleSet(web), web, ['python3', '-m', 'http.server', '8080'], alice, false),
    { reason: `the arguments do not match the rule ${web.file} (args = -m http.server 80) since the rules were reloaded`, at: web.at })
  const pinned = rule('/usr/bin/ping', `users = alice\nsha256 = ${pin}`, ICMP)
  const repinned = rule('/usr/bin/ping', `users = alice\nsha256 = ${other}`, ICMP)
  const unpinned = rule('/usr/bin/ping', 'users = alice', ICMP)
  t.equal(currentRule(ruleSet(pinned), pinned, ['ping'], alice, false).rule, pinned, 'the same pin')
  t.equal(currentRule(ruleSet(unpinned), pinned, ['ping'], alice, false).rule, unpinned, 'a pin dropped')
  t.same(currentRule(ruleSet(repinned), pinned, ['ping'], alice, false).reason,
    `the rule ${repinned.file} pins another sha256 than the one the program was started under, since the rules were reloaded`)
  t.same(currentRule(ruleSet(pinned), unpinned, ['ping'], alice, false).reason,
    `the rule ${pinned.file} pins another sha256 than the one the program was started under, since the rules were reloaded`, 'a pin added')
})
