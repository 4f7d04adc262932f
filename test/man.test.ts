// The three man pages render without a single groff warning (what `man -l`
// runs), and document what the code accepts.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { basename } from 'node:path'
import { PROGRAM_KEYS } from '../src/broker/rules/parse-program.js'
import { MAN_PAGES } from './lib/man.js'

function groff(args: string[], page: string) {
  return spawnSync('groff', [...args, page], { encoding: 'utf8', timeout: 30_000, env: { PATH: '/usr/bin:/bin', LANG: 'C.UTF-8' } })
}

t.test('control: groff is installed (apt-get install groff-base)', async t => {
  const r = spawnSync('groff', ['--version'], { encoding: 'utf8' })
  t.equal(r.error, undefined, `groff runs: ${r.error?.message ?? ''}`)
  t.equal(r.status, 0)
})

for (const page of MAN_PAGES) {
  for (const device of [[], ['-Tutf8']]) {
    const args = ['-ww', '-z', '-man', ...device]
    t.test(`groff ${args.join(' ')} ${basename(page)}: no warning`, async t => {
      const r = groff(args, page)
      t.equal(r.error, undefined)
      t.equal(r.status, 0, 'exit status 0')
      t.equal(r.stderr, '', 'nothing on stderr')
    })
  }
}

const text = (name: string) => readFileSync(MAN_PAGES.find(p => basename(p) === name)!, 'utf8')

t.test('elevation.d(5) documents every key of [program] with its type', async t => {
  const man = text('elevation.d.5')
  for (const key of Object.keys(PROGRAM_KEYS)) {
    t.match(man, new RegExp(`^\\.BI ${key.replace(/-/g, '\\\\-')} " \\(`, 'm'), key)
  }
  for (const section of ['SEVERAL FILES FOR ONE PROGRAM', 'INTERPRETERS AND PLUGIN LOADERS']) t.match(man, `.SS ${section}`)
})

t.test('stx-elevate(1) documents check; stx-elevated(8) --check and status 78', async t => {
  t.match(text('stx-elevate.1'), /^\.B stx-elevate check$/m)
  t.match(text('stx-elevate.1'), /stx-elevate \\-\\- scan/)
  t.match(text('stx-elevated.8'), /^\.B \\-\\-check$/m)
  t.match(text('stx-elevated.8'), /^\.B 78$/m)
})

t.test('stx-elevate(1) documents strip, strip --reapply and restore, their options and FILES', async t => {
  const man = text('stx-elevate.1')
  for (const line of ['.B strip', '.B strip \\-\\-reapply', '.B restore', '.SH FILES', '.I /etc/dpkg/dpkg.cfg.d/stx\\-elevate']) {
    t.match(man, new RegExp(`^${line.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm'), line)
  }
  for (const option of ['dry\\-run', 'state\\-dir', 'shim\\-dir', 'no\\-shim']) t.match(man, `\\-\\-${option}`, `--${option.replace('\\', '')}`)
})
