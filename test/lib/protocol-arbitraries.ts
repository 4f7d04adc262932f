/**
 * Datagrams for fuzzing the wire protocol (src/shared/protocol.ts), as
 * fast-check arbitraries: arbitrary bytes, arbitrary JSON, and valid
 * messages mutated at the structure level (keys added, removed, repeated,
 * renamed; values of the wrong type, at the limits, deeply nested;
 * __proto__ and constructor keys; numbers written at their edges) and then
 * at the byte level (truncated, invalid UTF-8, NUL, a BOM, garbage after).
 *
 * JSON is written by hand from a small tree (J below) rather than by
 * JSON.stringify, so that a key can repeat or be __proto__ and a number
 * keeps the form it is written in ("1.0", "1e0", "1e309").
 */
import fc from 'fast-check'
import { FORWARDED_SIGNALS, MAX_ARGS, MAX_ENV, MAX_LISTED_CALLS, MAX_MESSAGE, MAX_PATH } from '../../src/shared/protocol.js'

/** A number as written in the JSON text. */
export class Num { constructor (readonly text: string) {} }
/** JSON text inserted as is (deep nesting, written without recursion). */
export class Raw { constructor (readonly text: string) {} }
export class Arr { constructor (readonly items: J[]) {} }
/** An object as its entries in order: keys may repeat. */
export class Obj { constructor (readonly entries: Array<[string, J]>) {} }
export type J = null | boolean | number | string | Num | Raw | Arr | Obj

/** The JSON text of a tree (strings escaped as JSON.stringify does). */
export function jsonText (j: J): string {
  if (j === null || typeof j === 'boolean' || typeof j === 'number' || typeof j === 'string') return JSON.stringify(j)
  if (j instanceof Num || j instanceof Raw) return j.text
  if (j instanceof Arr) return `[${j.items.map(jsonText).join(',')}]`
  return `{${j.entries.map(([k, v]) => `${JSON.stringify(k)}:${jsonText(v)}`).join(',')}}`
}

// ---- values ---------------------------------------------------------------------

/** Numbers at the edges of what JSON.parse and Number.isInteger make of them. */
export const EDGE_NUMBERS = [
  '0', '-0', '1', '1.0', '1e0', '10e-1', '1.0000000000000001', '0.9999999999999999', '-1', '255', '256',
  '2147483647', '2147483648', '4294967295', '4294967296', '9007199254740991', '9007199254740993',
  '1e15', '1e21', '1e308', '1e309', '-1e309', '5e-324', '1e-400', '123456789012345678901234567890',
]

const SPECIAL_KEYS = [
  'v', 'type', 'path', 'argv', 'env', 'signal', 'uid', 'gid', 'pid', 'user', 'reason', 'code', 'programs', 'omitted',
  'args', 'calls', '__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf', '', 'V', 'Type',
  'type\u0000', ' type',
]

const SPECIAL_STRINGS = [
  '', '\u0000', '/\u0000', '/usr/bin/ping\u0000x', '\uD800', '\uDFFF', '\uDBFF\uDFFF', '\u2028', '\u2029', '\uFEFF',
  '__proto__', 'constructor', 'run', 'list', 'signal', 'started', 'refused', 'error', 'exit', 'programs',
  'SIGINT', 'SIGKILL', 'sigint', 'SIGINT ', '/', '//', '/..', 'relative/path', 'A', 'LD_PRELOAD', 'TERM', 'PATH',
  '%n%s', '$(id)', '\\', '"', 'é', '\u{1F600}',
]

export const weirdString: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  { weight: 3, arbitrary: fc.constantFrom(...SPECIAL_STRINGS) },
  { weight: 1, arbitrary: fc.constantFrom(MAX_PATH - 1, MAX_PATH, MAX_PATH + 1, 2000).map(n => '/' + 'a'.repeat(n)) },
)

export const weirdKey: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...SPECIAL_KEYS) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 12 }) },
)

/** Nesting past any recursion limit, as raw text within a datagram (2 bytes a level in arrays, 6 in objects). */
export const deepValue: fc.Arbitrary<J> = fc.tuple(fc.constantFrom(10, 1000, 20_000, 60_000), fc.boolean()).map(([n, objects]) =>
  new Raw(objects ? '{"a":'.repeat(n / 3) + '1' + '}'.repeat(n / 3) : '['.repeat(n) + ']'.repeat(n)))

/** Any JSON value (small), with the special keys, strings and numbers above. */
export const anyJson: fc.Arbitrary<J> = fc.letrec<{ j: J }>(tie => ({
  j: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constant(null),
    fc.boolean(),
    weirdString,
    fc.constantFrom(...EDGE_NUMBERS).map(t => new Num(t)),
    fc.double().filter(Number.isFinite),
    fc.array(tie('j'), { maxLength: 4 }).map(items => new Arr(items)),
    fc.array(fc.tuple(weirdKey, tie('j')), { maxLength: 4 }).map(entries => new Obj(entries)),
  ),
})).j

// ---- valid messages ----------------------------------------------------------------

const noNul = (s: string): boolean => !s.includes('\0')
const envName = fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,12}$/)
const argString = fc.oneof(fc.string({ unit: 'binary', maxLength: 30 }), fc.constantFrom(...SPECIAL_STRINGS)).filter(noNul)
const absPath = fc.oneof(
  fc.constantFrom('/usr/bin/ping', '/bin/true', '/nonexistent/x', '/'),
  fc.string({ unit: 'binary', maxLength: 40 }).filter(noNul).map(s => '/' + s),
)

/**
 * A valid run. `program`: the path to run (a rule-covered probe in the
 * live fuzz, given `exit N` so that it ends at once), else any path.
 */
export function validRun (program?: string): fc.Arbitrary<Obj> {
  const argv = program === undefined
    ? fc.array(argString, { minLength: 1, maxLength: 6 })
    : fc.tuple(argString, fc.oneof(fc.constantFrom('0', '1', '255', '256', '-1'), argString), fc.array(argString, { maxLength: 4 }))
      .map(([zero, code, rest]) => [zero, 'exit', code, ...rest])
  const env = fc.uniqueArray(fc.tuple(envName, argString), { maxLength: 6, selector: ([k]) => k })
  return fc.record({ path: program === undefined ? absPath : fc.constant(program), argv, env }).map(r => new Obj([
    ['v', 1], ['type', 'run'], ['path', r.path], ['argv', new Arr(r.argv)], ['env', new Obj(r.env)],
  ]))
}

export const validSignal: fc.Arbitrary<Obj> = fc.constantFrom(...FORWARDED_SIGNALS).map(s => new Obj([['v', 1], ['type', 'signal'], ['signal', s]]))
export const validList: fc.Arbitrary<Obj> = fc.constant(new Obj([['v', 1], ['type', 'list']]))
export const validWatch: fc.Arbitrary<Obj> = fc.tuple(
  fc.oneof(fc.constant(null), fc.constantFrom('stxtest', 'root', '0', '1001', '4294967294', '4294967295', '-x', 'a b', 'a:b'), weirdString),
  fc.oneof(fc.constant(null), absPath, weirdString),
).map(([user, program]) => new Obj([['v', 1], ['type', 'watch'], ['user', user], ['program', program]]))

// ---- structure-level mutations -----------------------------------------------------------

type Mutation = (o: Obj) => Obj

const at = (n: number, i: number): number => n === 0 ? 0 : i % n

/** The value of key made as big as the limits allow, or one more. */
function atLimit (key: string, over: boolean): J {
  const extra = over ? 1 : 0
  if (key === 'argv') return new Arr(Array.from({ length: MAX_ARGS + extra }, () => 'a'))
  if (key === 'env') return new Obj(Array.from({ length: MAX_ENV + extra }, (_, i) => [`N${i}`, 'v']))
  if (key === 'path') return '/' + 'p'.repeat(MAX_PATH - 1 + extra)
  if (key === 'calls') return new Arr(Array.from({ length: MAX_LISTED_CALLS + extra }, () => 'c'))
  return 'x'.repeat(MAX_MESSAGE - 64 + extra * 128)
}

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.tuple(weirdKey, anyJson, fc.nat()).map(([k, v, i]): Mutation => o => {
    const e = [...o.entries]
    e.splice(at(e.length + 1, i), 0, [k, v])
    return new Obj(e)
  }),
  fc.nat().map((i): Mutation => o => new Obj(o.entries.filter((_, j) => j !== at(o.entries.length, i)))),
  fc.tuple(fc.nat(), fc.oneof({ weight: 5, arbitrary: anyJson }, { weight: 1, arbitrary: deepValue })).map(([i, v]): Mutation => o =>
    new Obj(o.entries.map(([k, w], j) => [k, j === at(o.entries.length, i) ? v : w]))),
  fc.tuple(fc.nat(), fc.boolean()).map(([i, inArray]): Mutation => o =>
    new Obj(o.entries.map(([k, w], j) => [k, j === at(o.entries.length, i) ? (inArray ? new Arr([w]) : new Obj([[k, w]])) : w]))),
  fc.tuple(fc.nat(), weirdKey).map(([i, name]): Mutation => o =>
    new Obj(o.entries.map(([k, w], j) => [j === at(o.entries.length, i) ? name : k, w]))),
  fc.tuple(fc.nat(), fc.boolean()).map(([i, over]): Mutation => o =>
    new Obj(o.entries.map(([k, w], j) => [k, j === at(o.entries.length, i) ? atLimit(k, over) : w]))),
  fc.nat().map((i): Mutation => o => {
    const e = o.entries[at(o.entries.length, i)]
    return e ? new Obj([...o.entries, e]) : o
  }),
)

/** A message with 0-3 mutations. */
export function mutated (message: fc.Arbitrary<Obj>): fc.Arbitrary<Obj> {
  return fc.tuple(message, fc.array(mutation, { maxLength: 3 })).map(([m, ms]) => ms.reduce((o, f) => f(o), m))
}

// ---- byte-level mutations --------------------------------------------------------------------

const BAD_BYTES: number[][] = [
  [0x00], [0xff], [0xfe], [0x80], [0xc0, 0x80], [0xc0, 0xaf], [0xe0, 0x80, 0xaf], [0xed, 0xa0, 0x80],
  [0xf4, 0x90, 0x80, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80], [0xef, 0xbb, 0xbf], [0x22], [0x5c], [0x7b], [0x7d], [0x2c],
]

type ByteMutation = (b: Buffer) => Buffer

const byteMutation: fc.Arbitrary<ByteMutation> = fc.oneof(
  fc.nat().map((i): ByteMutation => b => b.subarray(0, at(b.length + 1, i))),
  fc.tuple(fc.nat(), fc.constantFrom(...BAD_BYTES)).map(([i, bytes]): ByteMutation => b => {
    const p = at(b.length + 1, i)
    return Buffer.concat([b.subarray(0, p), Buffer.from(bytes), b.subarray(p)])
  }),
  fc.tuple(fc.nat(), fc.integer({ min: 0, max: 7 })).map(([i, bit]): ByteMutation => b => {
    if (b.length === 0) return b
    const c = Buffer.from(b)
    c[at(c.length, i)] ^= 1 << bit
    return c
  }),
  fc.constantFrom<ByteMutation>(
    b => Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), b]),
    b => Buffer.concat([Buffer.from(' \t\r\n'), b, Buffer.from('\n ')]),
    b => Buffer.concat([b, Buffer.from([0])]),
    b => Buffer.concat([b, Buffer.from('{}')]),
    b => Buffer.concat([b, b]),
    b => Buffer.concat([Buffer.from('['), b, Buffer.from(']')]),
  ),
)

/** Bytes with 0-2 byte-level mutations, most of the time none. */
export function byteMutated (data: fc.Arbitrary<Buffer>): fc.Arbitrary<Buffer> {
  return fc.tuple(data, fc.oneof({ weight: 3, arbitrary: fc.constant([]) }, { weight: 2, arbitrary: fc.array(byteMutation, { minLength: 1, maxLength: 2 }) }))
    .map(([b, ms]) => ms.reduce((x, f) => f(x), b))
}

// ---- datagrams ----------------------------------------------------------------------------------

const text = (o: J): Buffer => Buffer.from(jsonText(o))

/**
 * Bytes as printable ASCII, the rest as \xNN: safe in a test's name (a
 * raw newline, CR or NEL there breaks the TAP stream).
 */
export function ascii (b: Buffer): string {
  return b.toString('latin1').replace(/[^\x20-\x7e]|\\/g, c => (c === '\\' ? '\\\\' : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`))
}

/** A value as JSON, every character outside printable ASCII escaped (U+2028 and U+2029 end a TAP line too). */
export function asciiJson (v: unknown): string {
  return (JSON.stringify(v) ?? 'undefined').replace(/[^\x20-\x7e]/g, c => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
}

/**
 * The datagram as fast-check prints a counterexample: a literal when it is
 * small, else its size and beginning (replay the seed and path for all of it).
 */
export function printable (b: Buffer): Buffer {
  const show = b.length <= 512
    ? `Buffer.from(${JSON.stringify(b.toString('base64'))}, 'base64') /* ${ascii(b)} */`
    : `/* ${b.length} bytes: */ ${ascii(b.subarray(0, 160))}…`
  return Object.defineProperty(b, fc.toStringMethod, { value: () => show })
}

/**
 * A client datagram: arbitrary bytes, arbitrary JSON, or (mostly) a valid
 * run, signal or list mutated. `program`: as for validRun.
 */
export function clientDatagram (program?: string): fc.Arbitrary<Buffer> {
  const message = fc.oneof({ weight: 3, arbitrary: validRun(program) }, validSignal, validList, validWatch)
  return fc.oneof(
    { weight: 2, arbitrary: fc.uint8Array({ maxLength: 300 }).map(a => Buffer.from(a)) },
    { weight: 2, arbitrary: fc.jsonValue().map(v => Buffer.from(JSON.stringify(v) ?? 'null')) },
    { weight: 2, arbitrary: anyJson.map(text) },
    { weight: 12, arbitrary: byteMutated(mutated(message).map(text)) },
    { weight: 3, arbitrary: message.map(text) },
    { weight: 1, arbitrary: deepValue.map(text) },
  ).map(printable)
}

/** A broker datagram: the same kinds of input, from valid broker messages. */
export function brokerDatagram (): fc.Arbitrary<Buffer> {
  const call = fc.oneof(fc.constantFrom('socket inet raw icmp', 'bind inet stream port 80'), weirdString)
  const program = fc.record({
    path: absPath,
    args: fc.oneof(fc.constant(null), argString),
    calls: fc.array(call, { maxLength: 4 }),
  }).map(p => new Obj([['path', p.path], ['args', p.args], ['calls', new Arr(p.calls)]]))
  const message = fc.oneof(
    fc.integer({ min: 1, max: 4194304 }).map(pid => new Obj([['v', 1], ['type', 'started'], ['pid', pid]])),
    weirdString.map(r => new Obj([['v', 1], ['type', 'refused'], ['reason', r]])),
    weirdString.map(r => new Obj([['v', 1], ['type', 'error'], ['reason', r]])),
    fc.tuple(fc.oneof(fc.constant(null), fc.integer({ min: 0, max: 255 })), fc.oneof(fc.constant(null), fc.constantFrom('SIGTERM', 'SIGKILL')))
      .map(([code, signal]) => new Obj([['v', 1], ['type', 'exit'], ['code', code], ['signal', signal]])),
    fc.record({
      uid: fc.integer({ min: 0, max: 0xffffffff }),
      user: fc.oneof(fc.constant(null), fc.constantFrom('alice', 'stxtest')),
      programs: fc.array(program, { maxLength: 3 }),
      omitted: fc.nat(),
    }).map(p => new Obj([['v', 1], ['type', 'programs'], ['uid', p.uid], ['user', p.user], ['programs', new Arr(p.programs)], ['omitted', p.omitted]])),
    fc.constant(new Obj([['v', 1], ['type', 'watching']])),
    fc.tuple(fc.constantFrom('launch', 'grant', 'refuse', 'exit', 'kill', 'client-rejected'), fc.array(fc.tuple(weirdKey, anyJson), { maxLength: 4 }))
      .map(([event, fields]) => new Obj([['v', 1], ['type', 'event'], ['record', new Obj([['time', '2026-01-01T00:00:00.000Z'], ['event', event], ...fields])]])),
    fc.oneof(fc.nat(), fc.constantFrom(...EDGE_NUMBERS).map(t => new Num(t))).map(count => new Obj([['v', 1], ['type', 'dropped'], ['count', count]])),
  )
  return fc.oneof(
    { weight: 2, arbitrary: fc.uint8Array({ maxLength: 300 }).map(a => Buffer.from(a)) },
    { weight: 2, arbitrary: anyJson.map(text) },
    { weight: 12, arbitrary: byteMutated(mutated(message).map(text)) },
    { weight: 3, arbitrary: message.map(text) },
    { weight: 1, arbitrary: deepValue.map(text) },
  ).map(printable)
}
