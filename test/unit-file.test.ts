// The shipped unit (systemd/stx-elevated.service.in) and what documents it:
// every capability of its bounding set has its reason in the unit's
// comments and in stx-elevated(8)'s CAPABILITIES, which lists no other; the
// journal's MESSAGE_ID in the man page is the one the broker sends.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { basename } from 'node:path'
import { AUDIT_MESSAGE_ID } from '../src/broker/journal.js'
import { MAN_PAGES } from './lib/man.js'
import { UNIT_TEMPLATE, unitCapabilities } from './lib/unit.js'

const unit = readFileSync(UNIT_TEMPLATE, 'utf8')
const man = readFileSync(MAN_PAGES.find(p => basename(p) === 'stx-elevated.8')!, 'utf8')

t.test('the unit\'s comments give each capability of its bounding set a reason', async t => {
  const caps = unitCapabilities()
  t.ok(caps.length > 0)
  for (const cap of caps) t.match(unit, new RegExp(`^#\\s+(CAP_[A-Z_]+, )*${cap}(, CAP_[A-Z_]+)*\\s{2,}\\S`, 'm'), `${cap}: a comment line naming it, then why`)
})

t.test('stx-elevated(8) CAPABILITIES describes exactly the unit\'s capabilities', async t => {
  const section = /^\.SS CAPABILITIES$([\s\S]*?)^\.S[SH] /m.exec(man)?.[1]
  t.ok(section, 'the section is there')
  // the tags: .TP, then .B CAP_X or .BR CAP_X ", " CAP_Y
  const tagged = [...(section ?? '').matchAll(/^\.TP\n\.BR? (.*)$/gm)].flatMap(m => m[1].match(/CAP_[A-Z_]+/g) ?? [])
  t.same(tagged.sort(), unitCapabilities().sort())
})

t.test('the MESSAGE_ID the man page gives is the broker\'s', async t => {
  t.match(man, `MESSAGE_ID=${AUDIT_MESSAGE_ID}`)
  t.notMatch(man.replaceAll(AUDIT_MESSAGE_ID, ''), /MESSAGE_ID=[0-9a-f]{32}/, 'and no other')
})

t.test('ExecStart runs the broker with --audit journal; ExecReload sends SIGHUP', async t => {
  t.match(unit, /^ExecStart=@NODE@ @PREFIX@\/bin\/stx-elevated --audit journal$/m)
  t.match(unit, /^ExecReload=\/bin\/sh -c 'kill -HUP \$MAINPID'$/m)
  t.match(unit, /^Type=notify$/m)
})
