// The test runner itself: a failure must read as a failure even when its
// report holds a Unicode line separator (fuzzed strings do). tap-parser
// 18.3.4 read such a subtest as passing; patches/tap-parser+18.3.4.patch
// (applied by `npm ci` through patch-package) fixes its line splitting.
import t from 'tap'
import { join } from 'node:path'
import { repoRoot } from './lib/paths.js'
import { rootEnv, runRoot } from './lib/proc.js'

t.test('failures reported with U+2028 / U+2029 are failures', async t => {
  const r = await runRoot([process.execPath, join(repoRoot, 'test', 'fixtures', 'tap-line-separator.mjs')],
    { env: rootEnv({ TAP: '1' }), timeoutMs: 60_000 })
  const top = r.stdout.split('\n').filter((l) => /^(not )?ok \d+ /.test(l))
  t.same(top.map((l) => l.replace(/ # time=.*$/, '')), [
    'not ok 1 - a message with a line separator',
    'not ok 2 - a found value with a paragraph separator',
    'ok 3 - a passing neighbour',
  ], 'each subtest as it ran')
  t.equal(r.code, 1, 'the file fails')
})
