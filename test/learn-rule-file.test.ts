/*
 * The rule learn writes from --ask's answers (src/client/learn/rule-file.ts):
 * permitted always -> a grant section, denied -> an as = deny section (with
 * the errno chosen), a denial that would conflict -> a comment. Every text
 * is parsed by the broker's own parser.
 */
import t from 'tap'
import { parseRuleFile } from '../src/broker/rules/parse.js'
import type { ProgramRule } from '../src/broker/rules/model.js'
import type { BindCall, HeaderCall, SetsockoptCall, SocketCall } from '../src/client/learn/calls.js'
import type { Answer, Entry } from '../src/client/learn/record.js'
import { mergeRule, newRuleText } from '../src/client/learn/rule-file.js'

const FILE = '/etc/elevation.d/learned.conf'
const SHA = 'a'.repeat(64)
const P = { path: '/usr/bin/prog', user: 'alice', sha256: SHA, args: [] }
const BASE = newRuleText({ path: P.path, user: P.user, sha256: SHA, origin: 'learned by a test' })

const ICMP: SocketCall = { kind: 'socket', domain: 2, type: 3, protocol: 1 }
const ICMP6: SocketCall = { kind: 'socket', domain: 10, type: 3, protocol: 58 }
const bind = (address: string, port: number): BindCall => ({ kind: 'bind', family: 2, type: 1, address, port, reusePort: false })
const mark = (n: number): SetsockoptCall => ({ kind: 'setsockopt', level: 1, option: 36, optionName: 'SO_MARK', value: { int: n } })
const HDRINCL: HeaderCall = { kind: 'header', option: 'IP_HDRINCL', socket: ICMP }

const ALWAYS: Answer = { act: 'root', keep: true }
const DENY: Answer = { act: 'deny' }
const errno = (n: number): Answer => ({ act: 'errno', errno: n })
const EACCES = 13, EINVAL = 22

const entry = (call: Entry['call'], answer: Answer, count = 1): Entry => ({ call, answer, count })

function merged(entries: Entry[], base = BASE): { text: string, rule: ProgramRule } {
  const { text } = mergeRule(FILE, base, entries, P)
  const r = parseRuleFile(FILE, text)
  if (!r.program) throw new Error(`not a rule: ${r.errors.join('; ')}\n${text}`)
  return { text, rule: r.program }
}

const summary = (rule: ProgramRule) => rule.calls.map(c => [c.kind, c.name, c.deny ?? false, c.errno])

t.test('deny and deny with an errno become as = deny sections; permit always a grant', async t => {
  const { text, rule } = merged([
    entry(ICMP, ALWAYS),
    entry(ICMP6, errno(EACCES), 2),
    entry(bind('127.0.0.1', 80), DENY),
    entry(mark(5), errno(EINVAL)),
    entry(mark(6), errno(EINVAL)),
  ])
  t.strictSame(summary(rule), [
    ['socket', 'icmp', false, 1],
    ['socket', 'icmp6', true, EACCES],
    ['bind', 'http', true, EACCES],
    ['setsockopt', 'mark', true, EINVAL],
  ])
  t.match(text, '[socket.icmp6]\n; learn: seen 2 times: socket(inet6, raw, ipv6-icmp)\nas = deny\ndomain = inet6\ntype = raw\nprotocol = ipv6-icmp\nerrno = EACCES\n')
  t.match(text, '[bind.http]\n; learn: seen 1 time: bind(inet stream 127.0.0.1:80)\nas = deny\nfamily = inet\ntype = stream\nport = 80\naddress = 127.0.0.1\n',
    'a plain deny takes the default errno: no errno line')
  t.match(text, 'as = deny\noption = SO_MARK\nvalue = 5, 6\nerrno = EINVAL\n', 'the denied values of an option in one section')
  t.notMatch(text, /answered while learning/, 'no comment: every answer is a section')
})

t.test('denials a section cannot hold stay comments', async t => {
  const { text, rule } = merged([
    entry(mark(1), ALWAYS),
    entry(mark(2), DENY),
    entry(HDRINCL, errno(EACCES)),
    entry(bind('127.0.0.1', 80), ALWAYS),
    entry({ ...bind('127.0.0.1', 80), reusePort: true }, DENY),
  ])
  t.strictSame(summary(rule), [['bind', 'http', false, EACCES], ['setsockopt', 'mark', false, 1]], 'only the grants')
  t.match(text, /^; setsockopt\(SO_MARK, 2\), seen 1 time: denied \(no deny section: one would conflict/m, 'the option has a grant section')
  t.match(text, /^; setsockopt\(IP_HDRINCL\) on socket\(inet, raw, icmp\), seen 1 time: denied with EACCES \(header-included decides it/m)
  t.match(text, /^; bind\(inet stream 127\.0\.0\.1:80, SO_REUSEPORT set\), seen 1 time: denied \(no deny section/m, 'the same bind is granted')

  const mixed = merged([entry(mark(2), DENY), entry(mark(3), errno(EINVAL))])
  t.strictSame(summary(mixed.rule), [], 'two answers for one option: no section')
  t.match(mixed.text, /^; setsockopt\(SO_MARK, 3\), seen 1 time: denied with EINVAL \(no deny section.*, not necessarily with EINVAL\)$/m)
})

t.test('--merge: a denial of a call the rule already has a section for stays a comment', async t => {
  const base = merged([entry(ICMP, ALWAYS)]).text
  const { text, rule } = merged([entry(ICMP, DENY), entry(ICMP6, DENY)], base)
  t.strictSame(summary(rule), [['socket', 'icmp', false, 1], ['socket', 'icmp6', true, 1]])
  t.match(text, /^; socket\(inet, raw, icmp\), seen 1 time: denied \(no deny section/m)
})

t.test('permit once stays a comment', async t => {
  const { text, rule } = merged([entry(ICMP, { act: 'root', keep: false })])
  t.strictSame(rule.calls, [])
  t.match(text, /^; socket\(inet, raw, icmp\), seen 1 time: permitted as root for that run only$/m)
})

t.test('--merge keeps a hand-written line\'s comment: users and an option\'s values grow in front of it', async t => {
  const base = ['[program]', `path = ${P.path}`, 'users = bob ; the on-call admin', '', '[setsockopt.mark]', 'as = root', 'option = SO_MARK',
    'value = 5 # the VPN table', ''].join('\n')
  const { text, rule } = merged([entry(mark(6), ALWAYS)], base)
  t.same(rule.users, ['bob', 'alice'], 'the learned user is added')
  t.match(text, /^users = bob, alice ; the on-call admin$/m, 'the comment stays, after the list')
  const [section] = rule.calls
  t.same(section.kind === 'setsockopt' && section.values, [{ from: 5, to: 5 }, { from: 6, to: 6 }], 'the learned value is granted, not commented out')
  t.match(text, /^value = 5, 6 # the VPN table$/m)
})

t.test('--merge: a call granted while learning that the admin\'s file denies stays denied, and says so; no deny section grows', async t => {
  const base = ['[program]', `path = ${P.path}`, 'users = alice', '', '[socket.icmp]', 'as = deny', 'domain = inet', 'type = raw', 'protocol = icmp', '',
    '[setsockopt.mark]', 'as = deny', 'option = SO_MARK', 'value = 5', ''].join('\n')
  const { text, rule } = merged([entry(ICMP, ALWAYS), entry(mark(5), ALWAYS), entry(mark(6), ALWAYS)], base)
  t.strictSame(summary(rule), [['socket', 'icmp', true, 1], ['setsockopt', 'mark', true, 1]], 'the admin\'s denials are kept, and nothing more')
  const [, mark_] = rule.calls
  t.same(mark_.kind === 'setsockopt' && mark_.values, [{ from: 5, to: 5 }], 'the value granted while learning did not join the deny section')
  t.notMatch(text, /^; learn: seen/m, 'no count on a deny section for calls it did not answer')
  t.match(text, /^; socket\(inet, raw, icmp\), seen 1 time: permitted as root while learning, but \[socket\.icmp\] denies it: not granted$/m)
  t.match(text, /^; setsockopt\(SO_MARK, 6\), seen 1 time: permitted as root while learning, but \[setsockopt\.mark\] denies SO_MARK: not granted$/m)
})
