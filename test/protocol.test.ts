// The wire protocol's decoders on inputs the fuzzer (test/fuzz-protocol.test.ts)
// found wanting, kept as plain regression tests.
import t from 'tap'
import { ProtocolError, decodeBrokerMessage, decodeClientMessage } from '../src/shared/protocol.js'

const deepArray = (n: number): string => '['.repeat(n) + ']'.repeat(n)

t.test('a version nested 60000 deep is a ProtocolError naming its kind, not a stack overflow', async t => {
  for (const decode of [decodeClientMessage, decodeBrokerMessage]) {
    t.throws(() => decode(Buffer.from(`{"v":${deepArray(60_000)},"type":"list"}`)),
      new ProtocolError('unsupported protocol version an array; expected 1'))
    t.throws(() => decode(Buffer.from(`{"v":{"a":${deepArray(60_000)}},"type":"list"}`)),
      new ProtocolError('unsupported protocol version an object; expected 1'))
  }
})

t.test('a refusal quotes at most 64 characters of a client string: a whole one made the answer too big to send', async t => {
  const long = 'x'.repeat(130_000)
  const cut = `"${'x'.repeat(64)}"…`
  const cases: Array<[string, string]> = [
    [`{"v":"${long}","type":"list"}`, `unsupported protocol version ${cut}; expected 1`],
    [`{"v":1,"type":"${long}"}`, `unknown message type ${cut}`],
    [`{"v":1,"type":"list","${long}":1}`, `unexpected key ${cut} in list message`],
    [`{"v":1,"type":"run","path":"/x","argv":["x"],"env":{"${long}":1}}`, `env entry ${cut} is not NAME=string`],
  ]
  for (const [text, message] of cases) t.throws(() => decodeClientMessage(Buffer.from(text)), new ProtocolError(message))
  t.throws(() => decodeBrokerMessage(Buffer.from(`{"v":1,"type":"programs","uid":1,"user":null,"programs":[{"path":"/x","args":null,"calls":[],"${long}":1}],"omitted":0}`)),
    new ProtocolError(`unexpected key ${cut} in a listed program`))
  t.throws(() => decodeClientMessage(Buffer.from(`{"v":1,"type":"${'x'.repeat(64)}"}`)),
    new ProtocolError(`unknown message type "${'x'.repeat(64)}"`), '64 characters are quoted whole')
})

t.test('a watched record is JSON the audit log could hold: no 1e309 (Infinity), no nesting past 8 levels', async t => {
  const event = (record: string) => decodeBrokerMessage(Buffer.from(`{"v":1,"type":"event","record":${record}}`))
  const ok = '{"time":"2026-01-01T00:00:00.000Z","event":"grant","call":{"name":"bind","args":{"addr":{"port":80}}},"pids":[1,2]}'
  t.same(event(ok).type, 'event', 'a record as the broker writes it')
  const refusal = new ProtocolError('event.record must be JSON as the audit log writes it: finite numbers, nested at most 8 deep')
  t.throws(() => event('{"time":"t","event":"e","x":1e309}'), refusal)
  t.throws(() => event('{"time":"t","event":"e","x":[-1e309]}'), refusal)
  t.throws(() => event(`{"time":"t","event":"e","x":${deepArray(20_000)}}`), refusal)
  t.same(event(`{"time":"t","event":"e","x":${deepArray(7)}}`).type, 'event', '8 levels, the record counted')
  t.throws(() => event(`{"time":"t","event":"e","x":${deepArray(8)}}`), refusal, '9 levels')
})
