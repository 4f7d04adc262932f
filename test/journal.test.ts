// The journal's native protocol and the syslog line, as the broker builds
// them for --audit journal|syslog: the record's JSON line unchanged as the
// message, the fields stx-elevated(8) documents.
import t from 'tap'
import { AUDIT_EVENTS } from '../src/broker/audit.js'
import { AUDIT_MESSAGE_ID, journalEntry, syslogMessage } from '../src/broker/journal.js'

const record = '{"time":"2026-11-23T07:00:00.000Z","event":"grant","uid":1001,"user":"stxtest","call":{"name":"socket"}}'

/** Parse a native-protocol datagram back into its fields (both encodings). */
function fields(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {}
  let at = 0
  while (at < data.length) {
    const nl = data.indexOf(0x0a, at)
    const line = data.subarray(at, nl).toString()
    const eq = line.indexOf('=')
    if (eq >= 0) {
      out[line.slice(0, eq)] = line.slice(eq + 1)
      at = nl + 1
    } else {
      const len = Number(data.readBigUInt64LE(nl + 1))
      out[line] = data.subarray(nl + 9, nl + 9 + len).toString()
      if (data[nl + 9 + len] !== 0x0a) throw new Error('a binary field must end with a newline')
      at = nl + 10 + len
    }
  }
  return out
}

t.test('a journal entry: MESSAGE is the record, with the documented fields', async t => {
  t.same(fields(journalEntry('grant', record)), {
    MESSAGE: record,
    MESSAGE_ID: AUDIT_MESSAGE_ID,
    PRIORITY: '6',
    SYSLOG_FACILITY: '10',
    SYSLOG_IDENTIFIER: 'stx-elevated',
    STX_ELEVATE_EVENT: 'grant',
  })
  t.match(AUDIT_MESSAGE_ID, /^[0-9a-f]{32}$/, 'a journal message id: 128 bits in hex')
})

t.test('priorities: refusals notice, rejected rules warning, the rest info', async t => {
  const want: Record<string, string> = {
    launch: '6', grant: '6', exit: '6', 'rules-loaded': '6', refuse: '5', 'client-rejected': '5', kill: '5', 'rules-rejected': '4',
  }
  t.same(Object.keys(want).sort(), [...AUDIT_EVENTS].sort(), 'every event has one')
  for (const ev of AUDIT_EVENTS) t.equal(fields(journalEntry(ev, record)).PRIORITY, want[ev], ev)
})

t.test('a message with a newline is sent length-prefixed, unchanged', async t => {
  const odd = '{"reason":"line one\nline two"}'
  t.equal(fields(journalEntry('refuse', odd)).MESSAGE, odd)
})

t.test('a syslog message as syslog(3) writes it: <PRI>Mmm dd hh:mm:ss stx-elevated[PID]: record', async t => {
  const at = new Date(2026, 10, 3, 7, 5, 9)
  t.equal(syslogMessage('refuse', record, at, 4242).toString(), `<85>Nov  3 07:05:09 stx-elevated[4242]: ${record}`)
  t.match(syslogMessage('launch', record, at, 1).toString(), /^<86>/, 'authpriv.info')
})
