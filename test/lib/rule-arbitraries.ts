/**
 * Rule files for fuzzing the rule parser (src/broker/rules/), as
 * fast-check arbitraries: a spec of a valid rule (the grammar of
 * man/elevation.d.5), its text in one of many spellings (numbers or names,
 * spacing, comments, line ends, section and key order), what the parser
 * must make of it (the model, and which calls it grants: `grants` below),
 * and mutations of such a text at the line level.
 */
import fc from 'fast-check'
import { isIP } from 'node:net'
import { forbiddenReason, keptByDefault } from '../../src/broker/environment.js'
import type { BindRule, CallRule, ProgramRule, Range, SetsockoptRule, SocketRule } from '../../src/broker/rules/model.js'
import { PRIVILEGED_OPTIONS, REFUSAL_ERRNOS, RULE_ETHERTYPES, RULE_PROTOCOLS, canonicalAddress, errnoNumber } from '../../src/broker/rules/names.js'

/** A value as the file writes it, and the number (or text) it stands for. */
export interface W<T> { text: string, value: T }

export interface ProgramSpec {
  path: string
  users?: '*' | string[]
  groups?: string[]
  sandboxed?: 'allow' | 'deny'
  sha256?: string
  /** the words of args; [] is args = "" */
  args?: string[]
  keepEnv?: string[]
}

export interface SocketSpec { kind: 'socket', name: string, domain: W<number>, type: W<number>, protocol: W<number>, headerIncluded?: 'allow' | 'deny', errno?: string }
export interface BindSpec {
  kind: 'bind'
  name: string
  families: Array<W<number>>
  types: Array<W<number>>
  ports: Array<W<Range>>
  addresses?: Array<W<string>>
  reuseport?: 'allow' | 'deny'
  errno?: string
}
export interface SetsockoptSpec { kind: 'setsockopt', name: string, option: string, values?: Array<W<Range>>, interfaces?: string[], errno?: string }
export type CallSpec = SocketSpec | BindSpec | SetsockoptSpec

export interface RuleSpec { program: ProgramSpec, calls: CallSpec[] }

/** How the text is spelled: none of it changes what the file means. */
export interface Style {
  eq: string
  blankLines: boolean
  comments: boolean
  inlineComments: boolean
  eol: '\n' | '\r\n' | '\r'
  bom: boolean
  programLast: boolean
  reverseKeys: boolean
}

// ---- values ------------------------------------------------------------------------

const AF_INET = 2
const AF_INET6 = 10
const AF_PACKET = 17

const num = (n: number, hexOk: boolean, hexMaxDigits = 4): fc.Arbitrary<W<number>> => {
  const hex = n.toString(16)
  return hexOk && hex.length <= hexMaxDigits
    ? fc.constantFrom({ text: String(n), value: n }, { text: `0x${hex}`, value: n }, { text: `0x${hex.toUpperCase()}`, value: n })
    : fc.constant({ text: String(n), value: n })
}

const segment = fc.stringMatching(/^[a-z0-9_-][a-z0-9._-]{0,8}$/)
export const programPath = fc.array(segment, { minLength: 1, maxLength: 4 }).map(s => '/' + s.join('/'))
const userName = fc.stringMatching(/^[a-z_][a-z0-9_-]{0,14}\$?$/)
const errnoName = fc.constantFrom(...REFUSAL_ERRNOS)
const sectionName = fc.stringMatching(/^[a-z0-9][a-z0-9_-]{0,10}$/)
/** args words: none holds white space, a quote, ; or # (a comment), or a backslash but \* and \... */
const argWord = fc.oneof(
  { weight: 4, arbitrary: fc.stringMatching(/^[A-Za-z0-9_./=:,+@%-]{1,10}$/).filter(w => w !== '...') },
  fc.constantFrom('*', '\\*', '\\...', 'true', 'null'),
)
const envName = fc.stringMatching(/^[A-Z_][A-Z0-9_]{0,10}$/).filter(n => forbiddenReason(n) === undefined)

export const programSpec: fc.Arbitrary<ProgramSpec> = fc.record({
  path: programPath,
  users: fc.option(fc.oneof(fc.constant('*' as const), fc.array(userName, { minLength: 1, maxLength: 3 })), { nil: undefined }),
  groups: fc.option(fc.array(userName, { minLength: 1, maxLength: 3 }), { nil: undefined }),
  sandboxed: fc.option(fc.constantFrom('allow' as const, 'deny' as const), { nil: undefined }),
  sha256: fc.option(fc.stringMatching(/^[0-9a-fA-F]{64}$/), { nil: undefined }),
  args: fc.option(fc.tuple(fc.array(argWord, { maxLength: 4 }), fc.boolean()).map(([w, rest]) => rest ? [...w, '...'] : w), { nil: undefined }),
  keepEnv: fc.option(fc.array(envName, { minLength: 1, maxLength: 3 }), { nil: undefined }),
}, { requiredKeys: ['path'] }).map(p => (p.users === undefined && p.groups === undefined ? { ...p, users: '*' as const } : p))

/** [socket.NAME] minus its name: inet/inet6 raw, packet, or another domain by number. */
const socketBody: fc.Arbitrary<Omit<SocketSpec, 'name'>> = fc.oneof(
  fc.tuple(fc.constantFrom(AF_INET, AF_INET6), fc.boolean(), fc.oneof(
    fc.constantFrom(...[...RULE_PROTOCOLS].filter(([, n]) => n !== 0)).map(([text, value]) => ({ text, value })),
    fc.integer({ min: 1, max: 255 }).chain(n => num(n, true, 2)),
  ), fc.option(fc.constantFrom('allow' as const, 'deny' as const), { nil: undefined }), fc.option(errnoName, { nil: undefined }))
    .filter(([domain, , p]) => !(domain === AF_INET && p.value === 58) && !(domain === AF_INET6 && p.value === 1))
    .map(([domain, byName, protocol, hi, errno]) => ({
      kind: 'socket' as const,
      domain: { text: byName ? (domain === AF_INET ? 'inet' : 'inet6') : String(domain), value: domain },
      type: byName ? { text: 'raw', value: 3 } : { text: '3', value: 3 },
      protocol,
      headerIncluded: protocol.value === 255 ? 'allow' as const : hi,
      errno,
    })),
  fc.tuple(fc.boolean(), fc.constantFrom(2, 3), fc.oneof(
    fc.constantFrom(...RULE_ETHERTYPES).map(([text, value]) => ({ text, value })),
    fc.integer({ min: 0, max: 0xffff }).chain(n => num(n, true)),
  ), fc.option(errnoName, { nil: undefined })).map(([byName, type, protocol, errno]) => ({
    kind: 'socket' as const,
    domain: byName ? { text: 'packet', value: AF_PACKET } : { text: '17', value: AF_PACKET },
    type: { text: byName ? (type === 3 ? 'raw' : 'dgram') : String(type), value: type },
    protocol,
    errno,
  })),
  fc.tuple(
    fc.integer({ min: 3, max: 45 }).filter(d => d !== AF_INET6 && d !== AF_PACKET),
    fc.oneof(fc.constantFrom(['stream', 1], ['dgram', 2], ['raw', 3], ['rdm', 4], ['seqpacket', 5]).map(([text, value]) => ({ text: text as string, value: value as number })),
      fc.integer({ min: 1, max: 10 }).chain(n => num(n, true, 1))),
    fc.integer({ min: 0, max: 255 }).chain(n => num(n, true, 2)),
    fc.option(errnoName, { nil: undefined }),
  ).map(([domain, type, protocol, errno]) => ({ kind: 'socket' as const, domain: { text: String(domain), value: domain }, type, protocol, errno })),
)

const port = fc.integer({ min: 1, max: 65535 })
const portItem: fc.Arbitrary<W<Range>> = fc.oneof(
  port.map(p => ({ text: String(p), value: { from: p, to: p } })),
  fc.tuple(port, port, fc.constantFrom('-', ' - ', '- ')).map(([a, b, dash]) => {
    const [from, to] = a <= b ? [a, b] : [b, a]
    return { text: `${from}${dash}${to}`, value: { from, to } }
  }),
)

/** ipV6 literals Node takes, without a zone. */
const v6 = fc.oneof(fc.ipV6(), fc.constantFrom('::', '::1', '::0001', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1', 'FE80::1')).filter(a => isIP(a) === 6 && !a.includes('%'))
const v4 = fc.oneof(fc.ipV4(), fc.constantFrom('0.0.0.0', '127.0.0.1', '255.255.255.255'))

const bindBody: fc.Arbitrary<Omit<BindSpec, 'name' | 'errno'>> = fc.tuple(
  fc.array(fc.constantFrom<W<number>>({ text: 'inet', value: AF_INET }, { text: 'inet6', value: AF_INET6 }), { minLength: 1, maxLength: 3 }),
  fc.array(fc.constantFrom<W<number>>({ text: 'stream', value: 1 }, { text: 'dgram', value: 2 }), { minLength: 1, maxLength: 3 }),
  fc.uniqueArray(portItem, { minLength: 1, maxLength: 4, selector: p => p.text }),
  fc.option(fc.tuple(fc.array(v4, { minLength: 1, maxLength: 2 }), fc.array(v6, { minLength: 1, maxLength: 2 })), { nil: undefined }),
  fc.option(fc.constantFrom('allow' as const, 'deny' as const), { nil: undefined }),
).map(([families, types, ports, addrs, reuseport]) => {
  const has = (f: number): boolean => families.some(x => x.value === f)
  const addresses = addrs && [...(has(AF_INET) ? addrs[0] : []), ...(has(AF_INET6) ? addrs[1] : [])]
    .map(a => ({ text: a, value: canonicalAddress(a)! }))
  return { kind: 'bind' as const, families, types, ports, addresses, reuseport }
})

const u32Item: fc.Arbitrary<W<Range>> = fc.oneof(
  fc.integer({ min: 0, max: 0xffffffff }).chain(n => num(n, true, 8)).map(w => ({ text: w.text, value: { from: w.value, to: w.value } })),
  fc.tuple(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 0xffffffff })).map(([a, b]) => {
    const [from, to] = a <= b ? [a, b] : [b, a]
    return { text: `${from}-${to}`, value: { from, to } }
  }),
)
const boolItem: fc.Arbitrary<W<Range>> = fc.constantFrom(
  { text: '0', value: { from: 0, to: 0 } }, { text: '1', value: { from: 1, to: 1 } }, { text: '0-1', value: { from: 0, to: 1 } },
)
const interfaceName = fc.stringMatching(/^[a-z][a-z0-9_-]{0,14}$/)

const setsockoptBody: fc.Arbitrary<Omit<SetsockoptSpec, 'name'>> = fc.constantFrom(...PRIVILEGED_OPTIONS.values()).chain(o => fc.record({
  values: o.value === 'interface' ? fc.constant(undefined) : fc.uniqueArray(o.value === 'bool' ? boolItem : u32Item, { minLength: 1, maxLength: 3, selector: v => v.text }),
  interfaces: o.value === 'interface' ? fc.uniqueArray(interfaceName, { minLength: 1, maxLength: 3 }) : fc.constant(undefined),
  errno: fc.option(errnoName, { nil: undefined }),
}).map(r => ({ kind: 'setsockopt' as const, option: o.name, ...r })))

/** A valid rule: distinct sockets and options, one errno for all its binds (overlapping binds must agree). */
export const ruleSpec: fc.Arbitrary<RuleSpec> = fc.record({
  program: programSpec,
  sockets: fc.uniqueArray(socketBody, { maxLength: 3, selector: s => `${s.domain.value}/${s.type.value}/${s.protocol.value}` }),
  binds: fc.array(bindBody, { maxLength: 3 }),
  bindErrno: fc.option(errnoName, { nil: undefined }),
  options: fc.uniqueArray(setsockoptBody, { maxLength: 3, selector: s => s.option }),
  names: fc.uniqueArray(sectionName, { minLength: 9, maxLength: 9 }),
  order: fc.array(fc.nat(), { minLength: 9, maxLength: 9 }),
}).map(r => {
  const calls: CallSpec[] = [
    ...r.sockets.map(s => ({ ...s })),
    ...r.binds.map(b => ({ ...b, errno: r.bindErrno })),
    ...r.options.map(o => ({ ...o })),
  ].map((c, i) => ({ ...c, name: r.names[i] }) as CallSpec)
  // sections in any order: the grants do not depend on it (socket triples and options are distinct, binds agree on errno)
  const order = calls.map((_, i) => i).sort((a, b) => r.order[a] - r.order[b] || a - b)
  return { program: r.program, calls: order.map(i => calls[i]) }
})

export const style: fc.Arbitrary<Style> = fc.record({
  eq: fc.constantFrom(' = ', '=', '  =  ', '\t=\t', ' =', '= '),
  blankLines: fc.boolean(),
  comments: fc.boolean(),
  inlineComments: fc.boolean(),
  eol: fc.constantFrom('\n' as const, '\r\n' as const, '\r' as const),
  bom: fc.boolean(),
  programLast: fc.boolean(),
  reverseKeys: fc.boolean(),
})

// ---- text -------------------------------------------------------------------------------

export interface Rendered {
  text: string
  /** section name -> line of its header */
  headers: Map<string, number>
  /** section name -> key -> line */
  keys: Map<string, Map<string, number>>
}

const list = (items: string[]): string => items.join(', ')

function programKeys (p: ProgramSpec): Array<[string, string]> {
  const out: Array<[string, string]> = [['path', p.path]]
  if (p.users !== undefined) out.push(['users', p.users === '*' ? '*' : list(p.users)])
  if (p.groups !== undefined) out.push(['groups', list(p.groups)])
  if (p.sandboxed !== undefined) out.push(['sandboxed-clients', p.sandboxed])
  if (p.sha256 !== undefined) out.push(['sha256', p.sha256])
  if (p.args !== undefined) out.push(['args', p.args.length === 0 ? '""' : p.args.join(' ')])
  if (p.keepEnv !== undefined) out.push(['keep-env', list(p.keepEnv)])
  return out
}

function callKeys (c: CallSpec): Array<[string, string]> {
  const out: Array<[string, string]> = [['as', 'root']]
  if (c.kind === 'socket') {
    out.push(['domain', c.domain.text], ['type', c.type.text], ['protocol', c.protocol.text])
    if (c.headerIncluded) out.push(['header-included', c.headerIncluded])
  } else if (c.kind === 'bind') {
    out.push(['family', list(c.families.map(f => f.text))], ['type', list(c.types.map(t => t.text))], ['port', list(c.ports.map(p => p.text))])
    if (c.addresses) out.push(['address', list(c.addresses.map(a => a.text))])
    if (c.reuseport) out.push(['reuseport', c.reuseport])
  } else {
    out.push(['option', c.option])
    if (c.values) out.push(['value', list(c.values.map(v => v.text))])
    if (c.interfaces) out.push(['interface', list(c.interfaces)])
  }
  if (c.errno) out.push(['errno', c.errno])
  return out
}

export const sectionOf = (c: CallSpec): string => `${c.kind}.${c.name}`

export function render (spec: RuleSpec, s: Style): Rendered {
  const lines: string[] = []
  const headers = new Map<string, number>()
  const keys = new Map<string, Map<string, number>>()
  const section = (name: string, entries: Array<[string, string]>): void => {
    if (s.comments) lines.push(`; the ${name} section`)
    lines.push(`[${name}]`)
    headers.set(name, lines.length)
    const at = new Map<string, number>()
    for (const [k, v] of s.reverseKeys ? [...entries].reverse() : entries) {
      // args = "" must stand alone; other values may end in a comment
      const comment = s.inlineComments && k !== 'args' ? ' ; why' : ''
      lines.push(`${k}${s.eq}${v}${comment}`)
      at.set(k, lines.length)
      if (s.comments) lines.push('# a comment')
    }
    keys.set(name, at)
    if (s.blankLines) lines.push('')
  }
  const program = (): void => section('program', programKeys(spec.program))
  if (!s.programLast) program()
  for (const c of spec.calls) section(sectionOf(c), callKeys(c))
  if (s.programLast) program()
  return { text: (s.bom ? '\uFEFF' : '') + lines.join(s.eol) + s.eol, headers, keys }
}

// ---- what the parser must make of it ----------------------------------------------------------

const unique = <T>(xs: T[], key: (x: T) => unknown = x => x): T[] => {
  const seen = new Set<unknown>()
  return xs.filter(x => !seen.has(key(x)) && (seen.add(key(x)), true))
}

function expectedArgs (words: string[]): ProgramRule['args'] {
  if (words.length === 0) return { words: [], rest: false, text: '""' }
  const rest = words[words.length - 1] === '...'
  const body = rest ? words.slice(0, -1) : words
  return {
    words: body.map(w => (w === '*' ? null : w === '\\*' || w === '\\...' ? w.slice(1) : w)),
    rest,
    text: words.join(' '),
  }
}

function expectedCall (c: CallSpec, file: string, line: number): CallRule {
  const at = { file, line, section: sectionOf(c) }
  if (c.kind === 'socket') {
    return {
      kind: 'socket', name: c.name, at, domain: c.domain.value, type: c.type.value, protocol: c.protocol.value,
      headerIncluded: c.headerIncluded === 'allow', errno: errnoNumber(c.errno ?? 'EPERM')!,
    } satisfies SocketRule
  }
  if (c.kind === 'bind') {
    return {
      kind: 'bind', name: c.name, at,
      families: unique(c.families.map(f => f.value)),
      types: unique(c.types.map(t => t.value)),
      ports: c.ports.map(p => p.value),
      addresses: c.addresses && unique(unique(c.addresses, a => a.text).map(a => a.value)),
      reusePort: c.reuseport === 'allow',
      errno: errnoNumber(c.errno ?? 'EACCES')!,
    } satisfies BindRule
  }
  const o = PRIVILEGED_OPTIONS.get(c.option)!
  return {
    kind: 'setsockopt', name: c.name, at, level: o.level, option: o.option, optionName: o.name,
    values: c.values?.map(v => v.value), interfaces: c.interfaces && unique(c.interfaces), errno: errnoNumber(c.errno ?? 'EPERM')!,
  } satisfies SetsockoptRule
}

/** The model parseRuleFile must return for render(spec): every number and name as the spec means it. */
export function expectedModel (spec: RuleSpec, file: string, r: Rendered): ProgramRule {
  const p = spec.program
  const keepEnv = p.keepEnv && unique(p.keepEnv).filter(n => !keptByDefault(n))
  return {
    at: { file, line: r.headers.get('program')!, section: 'program' },
    file,
    path: p.path,
    users: p.users === '*' ? '*' : unique(p.users ?? []),
    groups: unique(p.groups ?? []),
    sandboxedClients: p.sandboxed === 'allow',
    keyLines: Object.fromEntries(r.keys.get('program')!),
    ...(p.sha256 !== undefined && { sha256: p.sha256.toLowerCase() }),
    ...(p.args !== undefined && { args: expectedArgs(p.args) }),
    ...(keepEnv !== undefined && { keepEnv }),
    calls: spec.calls.map(c => expectedCall(c, file, r.headers.get(sectionOf(c))!)),
  }
}

// ---- mutations of a text ----------------------------------------------------------------------

/** Values of every kind the grammar has, valid somewhere, and junk. */
const VALUES = [
  'root', 'user', 'inet', 'inet6', 'packet', 'unix', '0', '1', '2', '10', '17', '45', '46', 'raw', 'dgram', 'stream', 'seqpacket',
  'rdm', 'icmp', 'ipv6-icmp', 'ip', 'tcp', 'all', 'arp', '0x0800', '0x10000', '0x', '255', '256', '65535', '65536', '4294967295',
  '4294967296', '80', '1-1023', '1023-1', '1-', '-1', '80,,443', ' , ', '127.0.0.1', '::1', 'fe80::1%eth0', '0.0.0.0', 'localhost',
  'allow', 'deny', 'EPERM', 'EACCES', 'EAGAIN', 'EFOO', 'SO_MARK', 'SO_BINDTODEVICE', 'so_mark', 'SO_REUSEADDR', 'IP_HDRINCL',
  'eth0', 'a/b', '.', '..', 'x'.repeat(16), '*', '*, alice', 'alice', 'root$', '9lives', '/usr/bin/ping', 'usr/bin/ping',
  '/usr//bin', '/usr/bin/', '/./x', '""', '"quoted"', "'single'", '"open', 'a "b"', '...', '... x', '\\*', '\\...', '\\;', 'a;b',
  'a # b', 'true', 'false', 'null', '__proto__', 'constructor', 'toString', '', ' ', 'é', '\u00a0', 'LD_PRELOAD', 'TERM', 'PATH',
  'sha256:' + 'a'.repeat(64), 'A'.repeat(64), 'a'.repeat(63), 'x'.repeat(3000),
]
const KEYS = [
  'path', 'users', 'groups', 'sandboxed-clients', 'sha256', 'args', 'keep-env', 'as', 'domain', 'type', 'protocol', 'header-included',
  'errno', 'family', 'port', 'address', 'reuseport', 'option', 'value', 'interface', 'Path', 'PORT', '__proto__', 'constructor',
  'toString', 'hasOwnProperty', 'valueOf', 'a.b', 'x y', '[x]', ' ',
]
const HEADERS = [
  '[program]', '[socket.x]', '[bind.x]', '[setsockopt.x]', '[socket.]', '[socket.X]', '[socket.a.b]', '[socket._x]', '[sockets.x]',
  '[program] ; comment', '[ program ]', '[program', 'program]', '[[program]]', '[]', '[__proto__]', '[constructor]', '[toString]',
  '[socket.__proto__]', '[bind.constructor]', '[program]]', '\t[program]',
]
const CONTROL = ['\u0000', '\u0001', '\u001b', '\u007f', '\u0085', '\u2028', '\u2029', '\r', '\t', '\v', '\f', '\uFEFF', '\u00a0']

type LineMutation = (lines: string[]) => string[]

const at = (n: number, i: number): number => (n === 0 ? 0 : i % n)
const setLine = (lines: string[], i: number, f: (l: string) => string): string[] => lines.map((l, j) => (j === at(lines.length, i) ? f(l) : l))

const lineMutation: fc.Arbitrary<LineMutation> = fc.oneof(
  fc.nat().map((i): LineMutation => l => l.filter((_, j) => j !== at(l.length, i))),
  fc.nat().map((i): LineMutation => l => { const c = [...l]; c.splice(at(l.length, i), 0, l[at(l.length, i)] ?? ''); return c }),
  fc.tuple(fc.nat(), fc.nat()).map(([i, j]): LineMutation => l => {
    const c = [...l]; const a = at(l.length, i); const b = at(l.length, j);
    [c[a], c[b]] = [c[b], c[a]]
    return c
  }),
  fc.tuple(fc.nat(), fc.oneof(fc.constantFrom(...VALUES), fc.string({ unit: 'binary', maxLength: 12 }))).map(([i, v]): LineMutation => l =>
    setLine(l, i, x => (x.includes('=') ? `${x.slice(0, x.indexOf('=') + 1)} ${v}` : x))),
  fc.tuple(fc.nat(), fc.constantFrom(...KEYS)).map(([i, k]): LineMutation => l =>
    setLine(l, i, x => (x.includes('=') ? `${k} ${x.slice(x.indexOf('='))}` : x))),
  fc.tuple(fc.nat(), fc.constantFrom(...HEADERS)).map(([i, h]): LineMutation => l =>
    setLine(l, i, x => (x.trim().startsWith('[') ? h : x))),
  fc.tuple(fc.nat(), fc.nat(), fc.constantFrom(...CONTROL)).map(([i, p, ch]): LineMutation => l =>
    setLine(l, i, x => x.slice(0, at(x.length + 1, p)) + ch + x.slice(at(x.length + 1, p)))),
  fc.tuple(fc.nat(), fc.oneof(fc.constantFrom(...HEADERS, ...KEYS.map(k => `${k} = ${VALUES[k.length % VALUES.length]}`), '=', ' = x', 'junk', ';', '#'),
    fc.string({ unit: 'binary', maxLength: 20 }))).map(([i, line]): LineMutation => l => {
    const c = [...l]; c.splice(at(l.length + 1, i), 0, line); return c
  }),
)

/** A rendered valid rule with 1-3 line mutations, joined by one of the line ends. */
export const mutatedRuleText: fc.Arbitrary<string> = fc.tuple(ruleSpec, style, fc.array(lineMutation, { minLength: 1, maxLength: 3 }))
  .map(([spec, s, ms]) => {
    const lines = render(spec, s).text.split(/\r\n|\r|\n/)
    return ms.reduce((l, f) => f(l), lines).join(s.eol)
  })

/** Lines drawn from the grammar's headers, keys and values, and junk: text that reaches deep into the parser. */
export const lineSoup: fc.Arbitrary<string> = fc.tuple(
  fc.array(fc.oneof(
    fc.constantFrom(...HEADERS),
    fc.tuple(fc.constantFrom(...KEYS), fc.constantFrom(...VALUES)).map(([k, v]) => `${k} = ${v}`),
    fc.string({ unit: 'binary', maxLength: 30 }),
    fc.constantFrom('', '; comment', '# comment', '   '),
  ), { maxLength: 30 }),
  fc.constantFrom('\n', '\r\n', '\r', '\n\r'),
).map(([lines, eol]) => lines.join(eol))

/** Any text at all. */
export const anyText: fc.Arbitrary<string> = fc.oneof(fc.string({ unit: 'binary', maxLength: 400 }), fc.string({ unit: 'grapheme-ascii', maxLength: 400 }))
