// Fuzzing the rule parser (src/broker/rules/) with fast-check: any text
// yields a rule or errors that name the file and a line of it, never an
// exception; a valid generated rule parses to exactly its model, is
// described as it is written, and grants exactly the calls it names; a
// mutated rule that still parses grants only what its text names; files
// and directories of such texts load the same way. Seeds and runs:
// test/lib/fuzz.ts.
import t from 'tap'
import fc from 'fast-check'
import assert from 'node:assert/strict'
import { writeFileSync, chmodSync } from 'node:fs'
import { parse as parseIni } from 'ini'
import { describeProgram } from '../src/broker/rules/describe.js'
import { loadRuleFile, loadRules } from '../src/broker/rules/load.js'
import { matchArgs, matchBind, matchSetsockopt, matchSocket, mayRun, type OptionRequest } from '../src/broker/rules/match.js'
import { RuleError, type ProgramRule, type Range } from '../src/broker/rules/model.js'
import {
  PRIVILEGED_OPTIONS, RULE_ETHERTYPES, RULE_PROTOCOLS, canonicalAddress, domainName, errnoNumber, htons16, protocolName, typeName,
} from '../src/broker/rules/names.js'
import { parseRuleFile, type ParseResult } from '../src/broker/rules/parse.js'
import { keptByDefault } from '../src/broker/environment.js'
import {
  type BindSpec, type RuleSpec, type SetsockoptSpec, type SocketSpec, anyText, expectedModel, lineSoup, mutatedRuleText, render,
  ruleSpec, style,
} from './lib/rule-arbitraries.js'
import { rulesDirs } from './lib/rules-dir.js'
import { Slowest, fuzzParams } from './lib/fuzz.js'

const F = '/etc/elevation.d/fuzz.conf'
/** A parse this slow is a hang (super-linear work on a text), not a slow machine. */
const HANG_MS = 5000

/** The lines of a text as the parser numbers them. */
const linesOf = (text: string): string[] => text.replace(/^\uFEFF/, '').split(/\r\n|\r|\n/)

const ALL_TEXTS = fc.oneof(anyText, lineSoup, { weight: 3, arbitrary: mutatedRuleText })

// ---- 1. any text ------------------------------------------------------------------------

/** What holds of every outcome: errors name the file and a line of it; errors and a program exclude each other. */
function checkOutcome (file: string, text: string, r: ParseResult): void {
  const n = linesOf(text).length
  for (const e of [...r.errors, ...r.warnings]) {
    assert.ok(e instanceof RuleError)
    assert.equal(e.file, file)
    assert.ok(e.line === undefined || (Number.isInteger(e.line) && e.line >= 1 && e.line <= n), `line ${e.line} of ${n}: ${String(e)}`)
    assert.ok(typeof e.message === 'string' && e.message.length > 0)
    assert.ok(e.section === undefined || typeof e.section === 'string')
    assert.ok(e.key === undefined || typeof e.key === 'string')
    assert.ok(String(e).startsWith(file))
  }
  assert.equal(r.program === undefined, r.errors.length > 0, 'a program exactly when there is no error')
  if (!r.program) return
  const lines = linesOf(text)
  for (const at of [r.program.at, ...r.program.calls.map(c => c.at)]) {
    assert.equal(at.file, file)
    assert.match(lines[at.line - 1], new RegExp(`^\\[\\s*${at.section.replace(/[.]/g, '\\.')}\\s*\\]\\s*$`), `line ${at.line} is the header of [${at.section}]`)
  }
  for (const [key, line] of Object.entries(r.program.keyLines ?? {})) assert.ok(lines[line - 1].trimStart().startsWith(key), `line ${line} holds ${key}`)
}

t.test('parseRuleFile: any text yields a rule or errors naming the file and a line, never an exception', async t => {
  const slowest = new Slowest()
  fc.assert(fc.property(ALL_TEXTS, text => {
    const r = slowest.time(text.length, () => parseRuleFile(F, text))
    checkOutcome(F, text, r)
    assert.deepEqual(parseRuleFile(F, text), r, 'the same text, the same outcome')
  }), fuzzParams(t, 3000))
  t.comment(`slowest parse: ${slowest}`)
  t.ok(slowest.ms < HANG_MS, `no parse hangs (slowest ${slowest})`)
})

// ---- 2. valid rules: the model, the description, the grants ------------------------------------------

const socketArg = (s: SocketSpec): number => (s.domain.value === 17 ? htons16(s.protocol.value) : s.protocol.value)
const inRanges = (rs: Range[], n: number): boolean => rs.some(r => r.from <= n && n <= r.to)
const ranges = (rs: Range[]): string => rs.map(r => (r.from === r.to ? String(r.from) : `${r.from}-${r.to}`)).join(',')
const uniq = <T>(xs: T[]): T[] => [...new Set(xs)]

/** What `stx-elevate check` must say of the spec (the words of man/elevation.d.5 and describe.ts). */
function expectedDescription (spec: RuleSpec): string {
  const p = spec.program
  const who = [p.users === '*' ? 'users *' : p.users?.length ? `users ${uniq(p.users).join(', ')}` : '', p.groups ? `groups ${uniq(p.groups).join(', ')}` : '']
    .filter(Boolean).join('; ')
  const parts = [who]
  if (p.args) parts.push(p.args.length === 0 ? 'no arguments' : `args ${p.args.join(' ')}`)
  if (p.sha256) parts.push('sha256 pinned')
  const keep = uniq(p.keepEnv ?? []).filter(n => !keptByDefault(n))
  if (keep.length > 0) parts.push(`keep-env ${keep.join(', ')}`)
  if (p.sandboxed === 'allow') parts.push('sandboxed clients too')
  const calls = spec.calls.map(c => {
    if (c.kind === 'socket') {
      const d = c.domain.value
      const words = ['socket', domainName(d)!, typeName(c.type.value) ?? String(c.type.value), protocolName(d, socketArg(c)) ?? String(c.protocol.value)]
      return [...words, ...(c.headerIncluded === 'allow' ? ['header-included'] : [])].join(' ')
    }
    if (c.kind === 'bind') {
      const words = ['bind', uniq(c.families.map(f => f.text)).join('/'), uniq(c.types.map(x => x.text)).join('/'), `port ${ranges(c.ports.map(x => x.value))}`]
      if (c.addresses) words.push(`address ${uniq(c.addresses.map(a => a.value)).join(',')}`)
      if (c.reuseport === 'allow') words.push('reuseport')
      return words.join(' ')
    }
    return `setsockopt ${c.option} ${c.interfaces ? uniq(c.interfaces).join(',') : ranges(c.values!.map(v => v.value))}`
  })
  parts.push(calls.length > 0 ? calls.join(', ') : 'nothing as root')
  return `${p.path}: ${parts.join('; ')}`
}

// The calls a spec names, decided from the spec alone.
const socketFor = (spec: RuleSpec, d: number, ty: number, p: number) =>
  spec.calls.find((c): c is SocketSpec => c.kind === 'socket' && c.domain.value === d && c.type.value === ty && socketArg(c) === p)
function bindFor (spec: RuleSpec, family: number, type: number, address: string, port: number): BindSpec | undefined {
  const canonical = canonicalAddress(address)
  if (canonical === undefined || (canonical.includes(':') ? 10 : 2) !== family) return undefined
  return spec.calls.find((c): c is BindSpec => c.kind === 'bind' && c.families.some(f => f.value === family) && c.types.some(x => x.value === type) &&
    inRanges(c.ports.map(x => x.value), port) && (c.addresses === undefined || c.addresses.some(a => a.value === canonical)))
}
function optionFor (spec: RuleSpec, level: number, option: number, value: OptionRequest): SetsockoptSpec | undefined {
  const c = spec.calls.find((x): x is SetsockoptSpec => x.kind === 'setsockopt' &&
    PRIVILEGED_OPTIONS.get(x.option)!.level === level && PRIVILEGED_OPTIONS.get(x.option)!.option === option)
  if (!c) return undefined
  if ('interface' in value) return c.interfaces?.includes(value.interface) ? c : undefined
  const n = value.int
  if (!c.values || !Number.isInteger(n) || n < 0 || n > 0xffffffff) return undefined
  const asSet = PRIVILEGED_OPTIONS.get(c.option)!.value === 'bool' ? Number(n !== 0) : n
  return inRanges(c.values.map(v => v.value), asSet) ? c : undefined
}
function argsMatch (words: string[] | undefined, args: string[]): boolean {
  if (words === undefined) return true
  const rest = words[words.length - 1] === '...'
  const body = rest ? words.slice(0, -1) : words
  if (args.length < body.length || (!rest && args.length !== body.length)) return false
  return body.every((w, i) => w === '*' || (w === '\\*' ? '*' : w === '\\...' ? '...' : w) === args[i])
}

const near = (ns: number[]): number[] => uniq(ns.flatMap(n => [n - 1, n, n + 1]))

/** Every call a program could ask for that is near one the spec names, and some far from any. */
function checkGrants (spec: RuleSpec, rule: ProgramRule): void {
  const sockets = spec.calls.filter((c): c is SocketSpec => c.kind === 'socket')
  for (const d of uniq([0, 1, 2, 3, 10, 17, 45, 46, ...sockets.map(s => s.domain.value)])) {
    for (const ty of uniq([0, 1, 2, 3, 4, 5, 10, 11, ...sockets.map(s => s.type.value)])) {
      for (const p of uniq([0, 1, 6, 58, 255, 256, htons16(3), htons16(0x0800), ...near(sockets.map(socketArg)), ...sockets.map(s => s.protocol.value)])) {
        const want = socketFor(spec, d, ty, p)
        const got = matchSocket(rule, d, ty, p)
        assert.equal(got?.at.section, want && `socket.${want.name}`, `socket(${d}, ${ty}, ${p})`)
      }
    }
  }
  const binds = spec.calls.filter((c): c is BindSpec => c.kind === 'bind')
  const addresses = uniq(['0.0.0.0', '::', '127.0.0.1', '::1', '::ffff:127.0.0.1', '10.1.2.3', ...binds.flatMap(b => (b.addresses ?? []).flatMap(a => [a.text, a.value]))])
  const ports = uniq([0, 1, 80, 1023, 1024, 65535, 65536, ...near(binds.flatMap(b => b.ports.flatMap(p => [p.value.from, p.value.to])))])
  for (const family of [1, 2, 10]) {
    for (const type of [1, 2, 3]) {
      for (const address of addresses) {
        for (const port of ports) {
          const want = bindFor(spec, family, type, address, port)
          assert.equal(matchBind(rule, family, type, address, port)?.at.section, want && `bind.${want.name}`, `bind(${family}, ${type}, ${address}, ${port})`)
        }
      }
    }
  }
  const options = spec.calls.filter((c): c is SetsockoptSpec => c.kind === 'setsockopt')
  const values = uniq([-1, 0, 1, 2, 6, 7, 0.5, 0xffffffff, 2 ** 32, ...near(options.flatMap(o => (o.values ?? []).flatMap(v => [v.value.from, v.value.to])))])
  const names = uniq(['', 'lo', 'eth0', ...options.flatMap(o => (o.interfaces ?? []).flatMap(i => [i, i + 'x', i.toUpperCase()]))])
  for (const [level, option] of [[0, 19], [1, 12], [1, 25], [1, 32], [1, 33], [1, 36], [41, 75], [1, 2], [0, 3], [255, 3], [6, 36]]) {
    const requests: OptionRequest[] = [...values.map(int => ({ int })), ...names.map(n => ({ interface: n }))]
    for (const value of requests) {
      const want = optionFor(spec, level, option, value)
      assert.equal(matchSetsockopt(rule, level, option, value)?.at.section, want && `setsockopt.${want.name}`, `setsockopt(${level}, ${option}, ${JSON.stringify(value)})`)
    }
  }
  const words = spec.program.args ?? []
  const literal = words.filter(w => w !== '...').map(w => (w === '*' ? 'any' : w === '\\*' ? '*' : w === '\\...' ? '...' : w))
  for (const args of [literal, [...literal, 'x'], literal.slice(0, -1), literal.map((w, i) => (i === 0 ? w + 'x' : w)), ['*'], ['...'], []]) {
    assert.equal(matchArgs(rule, args), argsMatch(spec.program.args, args), `args ${JSON.stringify(args)}`)
  }
  const gid = (g: string): number => 5000 + g.length
  for (const user of [undefined, 'root', 'nobody', ...(Array.isArray(spec.program.users) ? spec.program.users : [])]) {
    for (const gids of [[], [5000 + 1], (spec.program.groups ?? []).map(gid)]) {
      const want = user !== undefined && (spec.program.users === '*' || (spec.program.users ?? []).includes(user))
      const byGroup = (spec.program.groups ?? []).some(g => gids.includes(gid(g)))
      assert.equal(mayRun(rule, { uid: 1000, user, gids }, gid), want || byGroup, `may ${user} (gids ${gids}) run`)
    }
  }
}

t.test('a valid generated rule parses to exactly its model, is described as written, and grants exactly its calls', async t => {
  fc.assert(fc.property(ruleSpec, style, (spec, s) => {
    const r = render(spec, s)
    const parsed = parseRuleFile(F, r.text)
    assert.deepEqual(parsed.errors.map(String), [], 'no error')
    checkOutcome(F, r.text, parsed)
    assert.deepStrictEqual(parsed.program, expectedModel(spec, F, r))
    assert.equal(describeProgram(parsed.program!), expectedDescription(spec))
    checkGrants(spec, parsed.program!)
  }), fuzzParams(t, 300))
})

// ---- 3. mutated rules that still parse grant only what their text names ---------------------------------

/** key -> value of the section whose header is at `line`, each value as ini reads its own line. */
function sectionValues (lines: string[], line: number): Map<string, string> {
  const out = new Map<string, string>()
  for (const raw of lines.slice(line)) {
    if (/^\s*\[/.test(raw)) break
    if (/^\s*([;#]|$)/.test(raw) || !raw.includes('=')) continue
    const key = raw.slice(0, raw.indexOf('=')).trim()
    const value: unknown = parseIni(raw)[key]
    out.set(key, key === 'args' && raw.slice(raw.indexOf('=') + 1).trim() === '""' ? '""' : String(value))
  }
  return out
}

const items = (v: string | undefined): string[] => uniq((v ?? '').split(',').map(x => x.trim()))
function numberOf (v: string): number {
  const n = /^0x[0-9a-f]+$/i.test(v) ? parseInt(v.slice(2), 16) : /^[0-9]+$/.test(v) ? Number(v) : NaN
  assert.ok(Number.isFinite(n), `${JSON.stringify(v)} is a number`)
  return n
}
const NAMED_DOMAINS: Record<string, number> = { inet: 2, inet6: 10, packet: 17 }
const NAMED_TYPES: Record<string, number> = { stream: 1, dgram: 2, raw: 3, rdm: 4, seqpacket: 5 }
const named = (table: Record<string, number> | ReadonlyMap<string, number>, v: string): number =>
  (table instanceof Map ? table.get(v) : Object.hasOwn(table, v) ? (table as Record<string, number>)[v] : undefined) ?? numberOf(v)
const rangeOf = (item: string): Range => {
  const m = /^(.*?)\s*-\s*(.*)$/.exec(item)
  return m ? { from: numberOf(m[1]), to: numberOf(m[2]) } : { from: numberOf(item), to: numberOf(item) }
}

/**
 * The rule as its text says, read line by line with ini and a few name
 * tables, independently of the parser's own reading; the parser's model
 * must say the same, call for call.
 */
function checkAgainstText (text: string, rule: ProgramRule): void {
  const lines = linesOf(text)
  const headers = lines.map((l, i) => [/^\s*\[\s*(.*?)\s*\]\s*$/.exec(l)?.[1], i + 1] as const).filter(([name]) => name !== undefined)
  const callSections = headers.filter(([name]) => name !== 'program').map(([name]) => name)
  assert.deepEqual(rule.calls.map(c => c.at.section).sort(), [...callSections].sort(), 'one call for each call section of the text, and none else')
  const p = sectionValues(lines, rule.at.line)
  assert.equal(rule.path, p.get('path'))
  const users = items(p.get('users'))
  assert.deepEqual(rule.users, !p.has('users') ? [] : users.length === 1 && users[0] === '*' ? '*' : users)
  assert.deepEqual(rule.groups, p.has('groups') ? items(p.get('groups')) : [])
  assert.equal(rule.sandboxedClients, p.get('sandboxed-clients') === 'allow')
  assert.equal(rule.sha256, p.get('sha256')?.toLowerCase())
  const args = p.get('args')
  assert.equal(rule.args?.text, args)
  if (args !== undefined) {
    const words = args === '""' ? [] : args.split(/[ \t]+/)
    const rest = words[words.length - 1] === '...'
    assert.deepEqual([rule.args!.words, rule.args!.rest],
      [(rest ? words.slice(0, -1) : words).map(w => (w === '*' ? null : w === '\\*' || w === '\\...' ? w.slice(1) : w)), rest])
  }
  assert.deepEqual(rule.keepEnv, p.has('keep-env') ? items(p.get('keep-env')).filter(n => !keptByDefault(n)) : undefined)
  for (const c of rule.calls) {
    const v = sectionValues(lines, c.at.line)
    assert.equal(v.get('as'), 'root')
    const errno = v.has('errno') ? errnoNumber(v.get('errno')!) : undefined
    if (c.kind === 'socket') {
      const domain = named(NAMED_DOMAINS, v.get('domain')!)
      const table = domain === 2 || domain === 10 ? RULE_PROTOCOLS : domain === 17 ? RULE_ETHERTYPES : new Map<string, number>()
      assert.deepEqual([c.domain, c.type, c.protocol], [domain, named(NAMED_TYPES, v.get('type')!), named(table, v.get('protocol')!)], `[${c.at.section}]`)
      assert.equal(c.headerIncluded, v.get('header-included') === 'allow')
      assert.equal(c.errno, errno ?? 1)
    } else if (c.kind === 'bind') {
      assert.deepEqual(c.families, items(v.get('family')).map(f => NAMED_DOMAINS[f]))
      assert.deepEqual(c.types, items(v.get('type')).map(x => NAMED_TYPES[x]))
      assert.deepEqual(c.ports, items(v.get('port')).map(rangeOf))
      assert.deepEqual(c.addresses, v.has('address') ? uniq(items(v.get('address')).map(a => canonicalAddress(a)!)) : undefined)
      assert.equal(c.reusePort, v.get('reuseport') === 'allow')
      assert.equal(c.errno, errno ?? 13)
    } else {
      const o = PRIVILEGED_OPTIONS.get(v.get('option')!)!
      assert.deepEqual([c.level, c.option, c.optionName], [o.level, o.option, o.name])
      assert.deepEqual(c.values, v.has('value') ? items(v.get('value')).map(rangeOf) : undefined)
      assert.deepEqual(c.interfaces, v.has('interface') ? items(v.get('interface')) : undefined)
      assert.equal(c.errno, errno ?? 1)
    }
  }
}

t.test('a mutated rule that still parses grants only what its text names', async t => {
  let parsed = 0
  fc.assert(fc.property(mutatedRuleText, text => {
    const r = parseRuleFile(F, text)
    checkOutcome(F, text, r)
    if (!r.program) return
    parsed++
    checkAgainstText(text, r.program)
  }), fuzzParams(t, 1500))
  t.comment(`${parsed} mutated texts still parsed`)
  t.ok(parsed > 0, 'some mutated texts still parse (else the property is idle)')
})

// ---- 4. files and directories ---------------------------------------------------------------------

const { make: rulesDir } = rulesDirs(t, '/tmp/stx-fuzz-rules-')

t.test('loadRuleFile: any bytes in a file yield what parseRuleFile makes of them, errors naming the file', async t => {
  const dir = rulesDir()
  const path = `${dir}/fuzz.conf`
  const contents = fc.oneof(ALL_TEXTS.map(s => Buffer.from(s)), fc.uint8Array({ maxLength: 200 }).map(a => Buffer.from(a)),
    fc.tuple(ruleSpec, style).map(([spec, s]) => Buffer.from(render(spec, s).text)))
  fc.assert(fc.property(contents, bytes => {
    writeFileSync(path, bytes)
    chmodSync(path, 0o644)
    const r = loadRuleFile(path)
    let text: string | undefined
    try { text = new TextDecoder('utf-8', { fatal: true }).decode(bytes) } catch { text = undefined }
    if (text === undefined) {
      assert.deepEqual(r.errors.map(String), [`${path}: is not valid UTF-8 text`])
      return
    }
    checkOutcome(path, text, r)
    assert.deepEqual(r, parseRuleFile(path, text))
  }), fuzzParams(t, 300))
})

t.test('loadRules: a directory of such files yields rules or errors naming its files; a loaded rule is its file\'s', async t => {
  // a few paths, so that files often name the same program (conflicts are errors naming both files)
  const file = fc.tuple(fc.oneof({ weight: 3, arbitrary: fc.tuple(ruleSpec, style).map(([spec, s]) => render(spec, s).text) }, mutatedRuleText),
    fc.constantFrom('/usr/bin/a', '/usr/bin/b')).map(([text, path]) => text.replace(/^(path\s*=\s*).*$/m, `$1${path}`))
  fc.assert(fc.property(fc.array(file, { minLength: 1, maxLength: 3 }), texts => {
    const files = Object.fromEntries(texts.map((text, i) => [`r${i}.conf`, text]))
    const dir = rulesDir(files)
    const { rules, errors } = loadRules(dir)
    for (const e of errors) {
      assert.ok(e instanceof RuleError)
      assert.ok(Object.keys(files).some(f => e.file === `${dir}/${f}`), `an error names one of the files: ${String(e)}`)
    }
    if (errors.length > 0) return
    for (const [name, text] of Object.entries(files)) {
      const own = parseRuleFile(`${dir}/${name}`, text).program!
      assert.ok(rules.programs.get(own.path)?.some(p => JSON.stringify(p) === JSON.stringify(own)), `${name}'s rule is loaded as parsed`)
    }
    assert.equal([...rules.programs.values()].flat().length, texts.length, 'one rule per file, none else')
  }), fuzzParams(t, 150))
})
