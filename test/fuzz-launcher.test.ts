// Fuzzing the launcher's command line (native/launch-args.c, step 1 of
// native/stx-launch.c) with libFuzzer under ASan and UBSan: a bounded run
// (FUZZ_SECONDS, default 15) from the seeds of native/fuzz/, which fails on
// a crash, a leak, undefined behaviour or a plan that breaks the grammar's
// promises (native/fuzz/launch-args-fuzz.c checks them). `npm run fuzz`
// runs it longer. Needs clang and its sanitizer runtimes (.ci/run installs
// clang and libclang-rt-dev).
//
// What of this is untrusted: the broker builds the whole command line
// (src/broker/launch.ts); the client's words in it are its argv after "--"
// (never parsed, only counted) and the values of --env (the names are the
// broker's allow-list, the values the client's, checked for "=" and
// duplicates). Everything else comes from the kernel or the broker.
import t from 'tap'
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { repoRoot } from './lib/paths.js'
import { rootEnv, runRoot } from './lib/proc.js'
import { fuzzSeed } from './lib/fuzz.js'

const NATIVE = join(repoRoot, 'native')
const FUZZER = join(NATIVE, 'build', 'fuzz', 'launch-args-fuzz')
const CONTROL = join(NATIVE, 'build', 'fuzz', 'launch-args-fuzz-control')
const SECONDS = Number(process.env.FUZZ_SECONDS ?? 15)
if (!(SECONDS > 0)) throw new Error(`FUZZ_SECONDS must be a positive number, not ${JSON.stringify(process.env.FUZZ_SECONDS)}`)

const work = mkdtempSync('/tmp/stx-fuzz-launch-')
t.teardown(() => rmSync(work, { recursive: true, force: true }))

/** native/fuzz/launch-args.seeds, one input file a line, the arguments joined by NUL. */
function writeSeeds (dir: string): number {
  const lines = readFileSync(join(NATIVE, 'fuzz', 'launch-args.seeds'), 'utf8').split('\n').filter(l => l !== '' && !l.startsWith('#'))
  lines.forEach((line, i) => writeFileSync(join(dir, `seed${i}`), line.split(' ').map(a => (a === "''" ? '' : a)).join('\0')))
  return lines.length
}

const seeds = join(work, 'seeds')
const corpus = process.env.FUZZ_CORPUS ?? join(work, 'corpus')

t.before(async () => {
  const make = await runRoot(['make', '-C', NATIVE, 'fuzz'], { timeoutMs: 180_000, env: rootEnv() })
  if (make.code !== 0) {
    throw new Error(`make -C native fuzz failed (clang with -fsanitize=fuzzer needs: apt-get install clang libclang-rt-dev):\n${make.stdout}${make.stderr}`)
  }
  mkdirSync(seeds, { recursive: true })
  mkdirSync(corpus, { recursive: true })
  writeSeeds(seeds)
})

const tail = (s: string): string => s.split('\n').slice(-40).join('\n')

t.test('control: the harness reaches the end of a parse from the seeds, and an abort there fails the run', async t => {
  const r = await runRoot([CONTROL, `-artifact_prefix=${work}/control-`, '-runs=0', seeds], { timeoutMs: 60_000, env: rootEnv() })
  t.not(r.code, 0, 'the control fuzzer fails')
  t.match(r.stderr, /FUZZ_CONTROL: a command line parsed/, 'a seed parsed to the end')
  t.match(r.stderr, /deadly signal|ERROR: libFuzzer/, 'libFuzzer reported the abort')
})

t.test(`libFuzzer on the launcher's command line for ${SECONDS} s: no crash, leak, undefined behaviour or broken plan`, async t => {
  const seed = fuzzSeed()
  t.comment(`libFuzzer -seed=${seed} -max_total_time=${SECONDS} (again: FUZZ_SEED=${seed} FUZZ_SECONDS=${SECONDS}; a crash input is printed below)`)
  const r = await runRoot([
    FUZZER, `-seed=${seed >>> 0}`, `-max_total_time=${SECONDS}`, '-timeout=10', '-rss_limit_mb=2048', '-print_final_stats=1',
    `-dict=${join(NATIVE, 'fuzz', 'launch-args.dict')}`, `-artifact_prefix=${work}/`, corpus, seeds,
  ], { timeoutMs: (SECONDS + 120) * 1000, env: rootEnv() })
  const artifacts = readdirSync(work).filter(f => /^(crash|leak|timeout|oom|slow-unit)-/.test(f))
  for (const a of artifacts) t.comment(`${a}: ${readFileSync(join(work, a)).toString('base64')} (base64; its arguments are separated by NUL)`)
  if (r.code !== 0) t.comment(tail(r.stderr))
  t.equal(r.code, 0, 'libFuzzer exits 0')
  t.same(artifacts, [], 'no crash, leak or timeout input')
  const runs = /Done (\d+) runs/.exec(r.stderr)
  t.ok(runs && Number(runs[1]) > 0, `it ran: ${runs?.[0] ?? tail(r.stderr)}`)
})
