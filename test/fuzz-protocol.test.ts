// Fuzzing the wire protocol's decoders (src/shared/protocol.ts) with
// fast-check: every input either decodes to a message of exactly the
// documented shape, within the limits, that says what the bytes say and
// survives a re-encoding, or is refused with a ProtocolError of a bounded
// message; never another exception, never a hang, never a change to
// Object.prototype. decodeClientMessage is the broker's only entry for
// client bytes. Seeds and runs: test/lib/fuzz.ts.
import t from 'tap'
import fc from 'fast-check'
import assert from 'node:assert/strict'
import {
  FORWARDED_SIGNALS, MAX_ARGS, MAX_CALL_TEXT, MAX_ENV, MAX_LISTED_CALLS, MAX_LISTED_PROGRAMS, MAX_MESSAGE, MAX_PATH,
  ProtocolError, decodeBrokerMessage, decodeClientMessage, encode, isWatchUser, type BrokerMessage, type ClientMessage,
} from '../src/shared/protocol.js'
import { brokerDatagram, clientDatagram } from './lib/protocol-arbitraries.js'
import { Slowest, fuzzParams } from './lib/fuzz.js'

/** Longest refusal message: it names the client's value, shortened, never all of it. */
const MAX_REASON = 512
/** A decode this slow is a hang (super-linear work on an input), not a slow machine. */
const HANG_MS = 5000

type Json = Record<string, unknown>

const noNul = (s: unknown): boolean => typeof s === 'string' && !s.includes('\0')
const isPath = (s: unknown): boolean => noNul(s) && (s as string).startsWith('/') && (s as string).length <= MAX_PATH
const keysAre = (o: object, keys: string[]): void => assert.deepEqual(Object.keys(o).sort(), [...keys].sort())

/** What the bytes say, read independently of the decoder: it accepted them, so they are UTF-8 JSON. */
function parsed (data: Buffer): Json {
  const value: unknown = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(data))
  assert.ok(typeof value === 'object' && value !== null && !Array.isArray(value), 'a JSON object was accepted')
  assert.ok(data.length <= MAX_MESSAGE)
  return value as Json
}

function checkClient (data: Buffer, m: ClientMessage): void {
  const p = parsed(data)
  assert.equal(m.v, 1)
  keysAre(p, Object.keys(m))
  assert.equal(p.v, 1)
  assert.equal(p.type, m.type)
  if (m.type === 'run') {
    keysAre(m, ['v', 'type', 'path', 'argv', 'env'])
    assert.ok(isPath(m.path), 'path is absolute, without NUL, at most MAX_PATH')
    assert.ok(Array.isArray(m.argv) && m.argv.length >= 1 && m.argv.length <= MAX_ARGS, 'argv 1..MAX_ARGS')
    assert.ok(m.argv.every(noNul), 'argv strings without NUL')
    assert.equal(Object.getPrototypeOf(m.env), null, 'env has no prototype')
    const env = Object.entries(m.env)
    assert.ok(env.length <= MAX_ENV)
    for (const [k, v] of env) assert.ok(/^[A-Za-z_][A-Za-z0-9_]*$/.test(k) && noNul(v), `env ${JSON.stringify(k)}`)
    assert.equal(m.path, p.path)
    assert.deepEqual(m.argv, p.argv)
    assert.deepEqual(env, Object.entries(p.env as Json))
  } else if (m.type === 'watch') {
    keysAre(m, ['v', 'type', 'user', 'program'])
    assert.ok(m.user === null || isWatchUser(m.user), 'user null, a name or a uid')
    assert.ok(m.program === null || isPath(m.program), 'program null or an absolute path')
    assert.equal(m.user, p.user)
    assert.equal(m.program, p.program)
  } else if (m.type === 'signal') {
    keysAre(m, ['v', 'type', 'signal'])
    assert.ok(FORWARDED_SIGNALS.includes(m.signal))
    assert.equal(m.signal, p.signal)
  } else {
    assert.equal(m.type, 'list')
    keysAre(m, ['v', 'type'])
  }
}

function checkBroker (data: Buffer, m: BrokerMessage): void {
  const p = parsed(data)
  assert.equal(m.v, 1)
  keysAre(p, Object.keys(m))
  assert.equal(p.type, m.type)
  switch (m.type) {
    case 'started':
      assert.ok(Number.isInteger(m.pid))
      assert.equal(m.pid, p.pid)
      break
    case 'refused':
    case 'error':
      assert.equal(typeof m.reason, 'string')
      assert.equal(m.reason, p.reason)
      break
    case 'exit':
      assert.ok(m.code === null || (Number.isInteger(m.code) && m.code >= 0 && m.code <= 255))
      assert.ok(m.signal === null || typeof m.signal === 'string')
      assert.equal(m.code, p.code)
      assert.equal(m.signal, p.signal)
      break
    case 'programs':
      assert.ok(Number.isInteger(m.uid) && m.uid >= 0 && m.uid <= 0xffffffff)
      assert.ok(m.user === null || (noNul(m.user) && m.user !== ''))
      assert.ok(Number.isSafeInteger(m.omitted) && m.omitted >= 0)
      assert.ok(m.programs.length <= MAX_LISTED_PROGRAMS)
      for (const e of m.programs) {
        keysAre(e, ['path', 'args', 'calls'])
        assert.ok(isPath(e.path))
        assert.ok(e.args === null || (noNul(e.args) && e.args.length <= MAX_CALL_TEXT))
        assert.ok(e.calls.length <= MAX_LISTED_CALLS)
        assert.ok(e.calls.every(c => noNul(c) && c !== '' && c.length <= MAX_CALL_TEXT))
      }
      assert.deepEqual(m.programs, p.programs)
      break
    case 'watching':
      keysAre(m, ['v', 'type'])
      break
    case 'event':
      keysAre(m, ['v', 'type', 'record'])
      assert.ok(typeof m.record === 'object' && m.record !== null && !Array.isArray(m.record))
      assert.ok(typeof m.record.time === 'string' && m.record.time !== '' && typeof m.record.event === 'string' && m.record.event !== '')
      assert.deepEqual(m.record, p.record)
      break
    case 'dropped':
      keysAre(m, ['v', 'type', 'count'])
      assert.ok(Number.isSafeInteger(m.count) && m.count > 0)
      assert.equal(m.count, p.count)
      break
    default:
      assert.fail(`decoded an unknown type: ${JSON.stringify(m)}`)
  }
}

/** The value as JSON writes it: -0 is written 0 (a decoded -0 is harmless: 0 to every use). */
function asWritten (v: unknown): unknown {
  if (typeof v === 'number') return Object.is(v, -0) ? 0 : v
  if (Array.isArray(v)) return v.map(asWritten)
  if (typeof v !== 'object' || v === null) return v
  const out = Object.create(Object.getPrototypeOf(v) as object | null) as Json
  // defineProperty: a "__proto__" key JSON.parse made an own property stays one
  for (const [k, x] of Object.entries(v)) Object.defineProperty(out, k, { value: asWritten(x), enumerable: true, writable: true, configurable: true })
  return out
}

/** Encoded again and decoded again, it is the same message; encode refuses only what is too big. */
function checkRoundTrip<M> (m: M, decode: (b: Buffer) => M): void {
  const again = Buffer.from(JSON.stringify(m))
  assert.deepStrictEqual(decode(again), asWritten(m))
  try {
    assert.deepEqual(encode(m as ClientMessage), again)
  } catch (e) {
    assert.ok(e instanceof ProtocolError && again.length > MAX_MESSAGE, `encode: ${(e as Error).message}`)
  }
}

function checkRefusal (e: unknown): void {
  if (!(e instanceof ProtocolError)) throw new Error(`not a ProtocolError: ${(e as Error)?.stack ?? String(e)}`)
  assert.ok(e.message.length > 0 && e.message.length <= MAX_REASON, `a refusal of ${e.message.length} characters: ${e.message.slice(0, 200)}…`)
}

/** The property: decode, then either the message checks or the refusal does. */
function decodes<M> (decode: (b: Buffer) => M, check: (data: Buffer, m: M) => void, slowest: Slowest) {
  return (data: Buffer): void => {
    let m: M
    try {
      m = slowest.time(data.length, () => decode(data))
    } catch (e) {
      checkRefusal(e)
      return
    }
    check(data, m)
    checkRoundTrip(m, decode)
  }
}

const prototypeKeys = (): string[] => Object.getOwnPropertyNames(Object.prototype).sort()

t.test('decodeClientMessage: a valid message of the exact shape, or a ProtocolError', async t => {
  const before = prototypeKeys()
  const slowest = new Slowest()
  fc.assert(fc.property(clientDatagram(), decodes(decodeClientMessage, checkClient, slowest)), fuzzParams(t, 3000))
  t.same(prototypeKeys(), before, 'Object.prototype untouched')
  t.comment(`slowest decode: ${slowest}`)
  t.ok(slowest.ms < HANG_MS, `no decode hangs (slowest ${slowest})`)
})

t.test('decodeBrokerMessage: a valid message of the exact shape, or a ProtocolError', async t => {
  const before = prototypeKeys()
  const slowest = new Slowest()
  fc.assert(fc.property(brokerDatagram(), decodes(decodeBrokerMessage, checkBroker, slowest)), fuzzParams(t, 2000))
  t.same(prototypeKeys(), before, 'Object.prototype untouched')
  t.comment(`slowest decode: ${slowest}`)
  t.ok(slowest.ms < HANG_MS, `no decode hangs (slowest ${slowest})`)
})

t.test('the generators reach every outcome (else the fuzz proves little)', async t => {
  // Which messages the client generator yields that decode, by type, and how many are refused.
  const counts: Record<string, number> = {}
  for (const data of fc.sample(clientDatagram(), { seed: 1, numRuns: 2000 })) {
    let kind: string
    try {
      kind = decodeClientMessage(data).type
    } catch (e) {
      kind = e instanceof ProtocolError ? 'refused' : 'other'
    }
    counts[kind] = (counts[kind] ?? 0) + 1
  }
  t.comment(`client datagrams: ${JSON.stringify(counts)}`)
  for (const kind of ['run', 'signal', 'list', 'watch', 'refused']) t.ok((counts[kind] ?? 0) >= 20, `${kind}: ${counts[kind] ?? 0} of 2000`)
})
