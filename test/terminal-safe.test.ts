// Audit lines and watch output escape what terminals misread (C1 controls,
// line separators, bidi controls) without changing the JSON's value.
// Assertions here never show a raw U+2028 (tap's parser stalls on one and
// would read a failure as a pass): values are compared in escaped form.
import t from 'tap'
import fc from 'fast-check'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openAudit } from '../src/broker/audit.js'
import { terminalSafeJson } from '../src/shared/terminal-safe.js'
import { humanLine, printable } from '../src/client/watch-format.js'

/** What must never appear raw in a line an admin's terminal shows. */
const RAW = /[\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069\u200b-\u200f\ufeff]/
const HOSTILE = ['\u009b2J', 'a\u2028b\u2029c', '\u202eexe.txt', 'x\u2066y\u2069', 'zero\u200bwidth', '\u007f', '\ufeffbom']

t.test('terminalSafeJson: the escapes, exactly', async t => {
  t.equal(terminalSafeJson(JSON.stringify({ argv: ['\u009b2J', 'a\u2028b', '\u202eexe'] })),
    '{"argv":["\\u009b2J","a\\u2028b","\\u202eexe"]}')
  t.equal(terminalSafeJson('{"plain":"ascii and \u00e9\u00e8 \u4e2d\u6587 stay"}'), '{"plain":"ascii and \u00e9\u00e8 \u4e2d\u6587 stay"}',
    'letters of any script are not escaped')
})

t.test('terminalSafeJson: any value comes back the same from JSON.parse, with none of those characters raw', async t => {
  const bad = fc.check(fc.property(fc.jsonValue(), fc.array(fc.constantFrom(...HOSTILE)), (value, extra) => {
    const v = { value, extra }
    const line = terminalSafeJson(JSON.stringify(v))
    return !RAW.test(line) && JSON.stringify(JSON.parse(line)) === JSON.stringify(v)
  }), { numRuns: 2000 })
  t.notOk(bad.failed, `no counterexample: ${terminalSafeJson(JSON.stringify(bad.counterexample))}`)
})

t.test('the audit file: a user\'s argv with a CSI, line separators and a bidi override is written escaped, and parses back whole', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'stx-audit-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'audit.jsonl')
  const audit = openAudit(file)
  audit.record('launch', { uid: 1000, user: 'alice', program: '/usr/bin/ping', pid: 42, argv: ['ping', ...HOSTILE] })
  audit.flush()
  const text = readFileSync(file, 'utf8')
  t.notOk(RAW.test(text), `no raw character: ${terminalSafeJson(JSON.stringify(text))}`)
  const lines = text.split('\n')
  t.equal(lines.length, 2, 'one record, one line (U+2028 breaks no line)')
  t.equal(lines[1], '')
  const record = JSON.parse(lines[0])
  t.equal(terminalSafeJson(JSON.stringify(record.argv)), terminalSafeJson(JSON.stringify(['ping', ...HOSTILE])), 'the argv as the user gave it')
  t.match(lines[0], /"\\u009b2J","a\\u2028b\\u2029c","\\u202eexe.txt"/)
})

t.test('watch\'s human format: line separators and bidi controls are shown as \\u{...}, in reading order', async t => {
  t.equal(printable('a\u2028b \u202eexe.txt \u009b'), 'a\\u{2028}b \\u{202e}exe.txt \\x9b')
  const line = humanLine({ time: 't', event: 'launch', uid: 1, user: 'a', program: '/p', pid: 2, argv: ['/p', ...HOSTILE] })
  t.notOk(RAW.test(line), terminalSafeJson(JSON.stringify(line)))
})
