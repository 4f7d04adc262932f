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
