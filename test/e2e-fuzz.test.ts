// End to end: a live broker under fuzzed client datagrams (issue 10). The
// datagrams of test/lib/protocol-arbitraries.ts (valid runs of the probe,
// lists, signals, and their mutations, bytes, JSON), each with fds of many
// kinds attached, go to the broker as the unprivileged user from
// test/fixtures/fuzz-client.py, over fresh and reused connections. Then:
// every message was answered as the decoder says it must be, every refusal
// has its audit record and every record its refusal, nothing failed
// inside the broker, and the broker serves as before: its fds back to
// their count before, the user's session and fd quotas whole again, ping
// through it as the user works. FUZZ_SEED, FUZZ_SCALE: test/lib/fuzz.ts.
import t from 'tap'
import fc from 'fast-check'
import { copyFileSync, readdirSync } from 'node:fs'
import { MAX_MESSAGE, ProtocolError, decodeClientMessage } from '../src/shared/protocol.js'
import { readAudit, type AuditRecord } from './lib/audit.js'
import { startBroker, type Broker } from './lib/broker.js'
import { fixturesSrc, PYTHON3 } from './lib/paths.js'
import { sleep } from './lib/proc.js'
import { Arr, Obj, ascii, asciiJson, clientDatagram, jsonText, validRun, validSignal } from './lib/protocol-arbitraries.js'
import { pingRule, probeRule } from './lib/rules.js'
import { jsonLine, runAs } from './lib/run.js'
import { setupE2E } from './lib/setup.js'
import { fuzzRuns, fuzzSeed } from './lib/fuzz.js'

const e = await setupE2E(t)
const { user, fx, tree } = e

/** Low caps, so that a count that drifts shows at once (and the fuzz meets the caps). */
const MAX_SESSIONS = 4
const MAX_FDS = 8
const LIMITS = ['--max-sessions-per-user', String(MAX_SESSIONS), '--max-fds-per-user', String(MAX_FDS), '--idle-timeout', '2']

// ---- the plan -----------------------------------------------------------------------------

const FD_KINDS = ['null', 'dir', 'opath', 'cwd', 'stdin', 'stdout', 'stderr', 'pipe-r', 'pipe-w', 'socketpair', 'tcp-listen', 'udp',
  'eventfd', 'memfd', 'epoll', 'pidfd', 'file', 'self']
const RUN_FDS = ['stdin', 'stdout', 'stderr', 'cwd']

/** quiet: a valid signal without fds, the one message a running session does not answer. */
interface Step { data: string, fds: string[], quiet?: boolean }

function isSignal (data: Buffer): boolean {
  try {
    return decodeClientMessage(data).type === 'signal'
  } catch {
    return false
  }
}
interface Connection { mode: 'lockstep' | 'burst' | 'parallel' | 'close' | 'silent', steps: Step[] }

function steps (min: number, max: number): fc.Arbitrary<Step[]> {
  const fds = fc.oneof(
    { weight: 3, arbitrary: fc.constant(RUN_FDS) },
    { weight: 4, arbitrary: fc.constant([]) },
    { weight: 4, arbitrary: fc.array(fc.constantFrom(...FD_KINDS), { maxLength: 6 }) },
    { weight: 1, arbitrary: fc.array(fc.constantFrom(...FD_KINDS), { minLength: 7, maxLength: 40 }) },
  )
  const step = fc.oneof(
    { weight: 4, arbitrary: fc.tuple(clientDatagram(fx.probe), fds) },
    // a run of the probe as the real client sends it: the launcher gets the fuzzed argv and environment
    { weight: 1, arbitrary: validRun(fx.probe).map(m => [Buffer.from(jsonText(m)), RUN_FDS] as const) },
  ).map(([data, kinds]) => ({ data: data.toString('base64'), fds: [...kinds], quiet: kinds.length === 0 && isSignal(data) }))
  return fc.array(step, { minLength: min, maxLength: max })
}

/** Connections of the given kinds, drawn until they hold `datagrams` datagrams. */
function plan (seed: number, datagrams: number, kinds: fc.Arbitrary<Connection>): Connection[] {
  const out: Connection[] = []
  let n = 0
  for (let round = 0; n < datagrams; round++) {
    for (const c of fc.sample(kinds, { seed: seed + round, numRuns: 50 })) {
      if (n >= datagrams) break
      out.push(c)
      n += c.steps.length
    }
  }
  return out
}

const base64 = (m: Obj): string => Buffer.from(jsonText(m)).toString('base64')

/**
 * A probe that holds for a second (its stdin an eventfd, never readable)
 * after a brokered raw socket, then datagrams while it runs: mostly valid
 * signals, which end it, and fuzz.
 */
const holding: fc.Arbitrary<Connection> = fc.array(fc.oneof(
  { weight: 2, arbitrary: validSignal.map(m => ({ data: base64(m), fds: [] as string[], quiet: true })) },
  { weight: 1, arbitrary: steps(1, 1).map(s => s[0]) },
), { minLength: 1, maxLength: 4 }).map(s => ({
  mode: 'lockstep' as const,
  steps: [{ data: base64(new Obj([['v', 1], ['type', 'run'], ['path', fx.probe], ['argv', new Arr([fx.probe, 'hold', '1'])], ['env', new Obj([])]])), fds: ['eventfd', 'null', 'null', 'cwd'] }, ...s],
}))

const lockstep: fc.Arbitrary<Connection> = fc.oneof(
  { weight: 4, arbitrary: steps(1, 4).map(s => ({ mode: 'lockstep' as const, steps: s })) },
  { weight: 1, arbitrary: holding },
)
const mixed: fc.Arbitrary<Connection> = fc.oneof(
  { weight: 3, arbitrary: steps(1, 6).map(s => ({ mode: 'burst' as const, steps: s })) },
  { weight: 2, arbitrary: steps(2, MAX_SESSIONS + 3).map(s => ({ mode: 'parallel' as const, steps: s })) },
  { weight: 2, arbitrary: steps(1, 3).map(s => ({ mode: 'close' as const, steps: s })) },
)

// ---- running it ----------------------------------------------------------------------------

interface Reply { type?: string, reason?: string, raw?: string, [k: string]: unknown }
interface StepResult { sent?: number | null, fds?: number, error?: string | null, skipped?: boolean, replies?: Reply[], eof?: boolean, timeout?: boolean }
interface ConnectionResult { mode: string, connect_error: string | null, steps: StepResult[], replies: Reply[], eof: boolean, timeout: boolean }
interface Result { pid: number, connections: ConnectionResult[] }

const client = tree.path('fixtures-bin', 'fuzz-client.py')
copyFileSync(`${fixturesSrc}/fuzz-client.py`, client)

async function fuzzClient (b: Broker, connections: Connection[]): Promise<Result> {
  const r = await runAs(user, [PYTHON3, client, b.socket], { input: JSON.stringify({ connections }), timeoutMs: 600_000 })
  if (r.code !== 0) throw new Error(`fuzz-client.py failed (code ${r.code}): ${r.stderr.slice(-2000)}`)
  return jsonLine<Result>(r.stdout, 'connections')
}

const fdCount = (pid: number): number => readdirSync(`/proc/${pid}/fd`).length

/** Poll (bounded) until f() holds; the last value either way. */
async function eventually<T> (f: () => T, ok: (v: T) => boolean, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = f()
    if (ok(v) || Date.now() > deadline) return v
    await sleep(100)
  }
}

/** What the broker must answer a datagram in phase new that the decoder refuses; undefined: the decoder accepts it. */
function refusal (data: Buffer): string | undefined {
  if (data.length > MAX_MESSAGE) return `message longer than ${MAX_MESSAGE} bytes`
  try {
    decodeClientMessage(data)
    return undefined
  } catch (err) {
    if (!(err instanceof ProtocolError)) throw err
    return err.message
  }
}

const quotaReason = /^too many (fds held|sessions) for /

/** Reasons as a sorted list, to compare as multisets. */
const sorted = (xs: Array<string | undefined>): string[] => xs.map(x => x ?? '(none)').sort()

const repliesOf = (c: ConnectionResult): Reply[] => [...c.steps.flatMap(s => s.replies ?? []), ...c.replies]

// ---- the tests ---------------------------------------------------------------------------------

const seed = fuzzSeed()
const datagrams = fuzzRuns(300)
t.comment(`fuzz seed ${seed}, ${datagrams} datagrams in lockstep and ${Math.round(datagrams / 2)} in bursts (replay: FUZZ_SEED=${seed}${process.env.FUZZ_SCALE ? ` FUZZ_SCALE=${process.env.FUZZ_SCALE}` : ''})`)

const b = await startBroker(t, tree, {
  rules: {
    'probe.conf': probeRule({ path: fx.probe, users: [user.name] }),
    'ping.conf': pingRule({ path: fx.ping, users: [user.name] }),
  },
  extraArgs: LIMITS,
})

let baselineFds = 0

t.test('before the fuzz, the broker serves ping and the probe; its fd count is the baseline', async t => {
  const ping = await runAs(user, e.client(b.socket, fx.ping, '-c1', '-W2', '127.0.0.1'))
  t.equal(ping.code, 0, `ping -c1 127.0.0.1 through the broker (stderr: ${ping.stderr})`)
  const probe = await runAs(user, e.client(b.socket, fx.probe, 'exit', '7'))
  t.equal(probe.code, 7, 'the probe exits 7')
  baselineFds = await eventually(() => fdCount(b.proc.pid!), () => false, 1000)
  t.comment(`broker pid ${b.proc.pid}: ${baselineFds} fds`)
})

t.test('lockstep: each datagram answered as the decoder says, each refusal recorded, each record a refusal', async t => {
  const connections = plan(seed, datagrams, lockstep)
  const r = await fuzzClient(b, connections)
  t.equal(r.connections.length, connections.length, 'every connection was made')
  const outcomes: Record<string, number> = {}
  connections.forEach((c, i) => {
    const got = r.connections[i]
    t.equal(got.connect_error, null, `connection ${i} connected`)
    t.notOk(got.timeout, `connection ${i}: the broker closed it`)
    let started = false
    c.steps.forEach((step, j) => {
      const s = got.steps[j]
      if (!s || s.skipped) return
      // not sent (a datagram bigger than the socket's send buffer): nothing to answer
      if (s.error) return
      const where = `connection ${i} step ${j} (${step.fds.length} fds: ${ascii(Buffer.from(step.data, 'base64').subarray(0, 120))})`
      t.notOk(s.timeout, `${where}: answered`)
      const first = s.replies?.[0]
      const kind = first?.type ?? (s.eof ? 'closed' : s.error ? 'send-error' : 'none')
      outcomes[kind] = (outcomes[kind] ?? 0) + 1
      if (!started) {
        const want = refusal(Buffer.from(step.data, 'base64'))
        if (want !== undefined) {
          const ok = (first?.type === 'error' && first.reason === want) || (first?.type === 'refused' && quotaReason.test(first.reason ?? ''))
          t.ok(ok, `${where}: refused with ${asciiJson(want)}, got ${asciiJson(s.replies)}${s.eof ? ' and the close' : ''}${s.error ? ` (send: ${asciiJson(s.error)})` : ''}`)
        } else {
          t.ok(first !== undefined && ['started', 'refused', 'error', 'programs'].includes(first.type ?? ''), `${where}: answered, got ${asciiJson(s.replies)}`)
        }
      }
      started ||= (s.replies ?? []).some(m => m.type === 'started')
    })
  })
  t.comment(`first answers: ${JSON.stringify(outcomes)}`)

  const replies = r.connections.flatMap(repliesOf)
  const errors = replies.filter(m => m.type === 'error')
  const refused = replies.filter(m => m.type === 'refused')
  t.notOk(replies.some(m => /^internal error/.test(m.reason ?? '')), 'no internal error answered')
  const audit = await eventually(() => readAudit(b.audit),
    recs => recs.filter(a => a.event === 'client-rejected' && a.pid === r.pid).length >= errors.length, 5000)
  const events: Record<string, number> = {}
  for (const a of audit) events[a.event ?? '?'] = (events[a.event ?? '?'] ?? 0) + 1
  t.comment(`audit records so far: ${JSON.stringify(events)}`)
  const mine = (a: AuditRecord): boolean => a.pid === r.pid || a.client?.pid === r.pid
  const rejected = audit.filter(a => a.event === 'client-rejected' && a.pid === r.pid)
  t.strictSame(sorted(rejected.map(a => a.reason)), sorted([...errors, ...refused.filter(m => quotaReason.test(m.reason ?? ''))].map(m => m.reason)),
    'a client-rejected record for each error and quota answer, and none else')
  const refusedRuns = audit.filter(a => a.event === 'refuse' && mine(a) && ['run', 'watch'].includes(a.call?.name ?? ''))
  t.strictSame(sorted(refusedRuns.map(a => a.reason)), sorted(refused.filter(m => !quotaReason.test(m.reason ?? '')).map(m => m.reason)),
    'a refuse record for each refused run or watch, and none else')
  t.equal(audit.filter(a => a.event === 'launch' && a.client?.pid === r.pid).length, replies.filter(m => m.type === 'started').length,
    'a launch record for each started')
  t.ok(b.alive(), 'the broker is still running')
})

t.test('bursts, parallel connections past the session cap, clients that close at once: the broker stays whole', async t => {
  const connections = plan(seed + 1_000_000, Math.round(datagrams / 2), mixed)
  connections.splice(connections.length >> 1, 0, { mode: 'silent', steps: [] })
  const r = await fuzzClient(b, connections)
  t.equal(r.connections.length, connections.length, 'every connection was tried')
  const replies = r.connections.flatMap(c => c.mode === 'parallel' ? c.steps.flatMap(s => s.replies ?? []) : repliesOf(c))
  t.notOk(replies.some(m => /^internal error/.test(m.reason ?? '')), 'no internal error answered')
  const silent = r.connections.find(c => c.mode === 'silent')!
  t.match(silent.replies, [{ type: 'error', reason: 'no request within 2 s' }], 'a silent connection is closed at the idle time')
  const audit = readAudit(b.audit)
  for (const m of replies.filter(x => x.type === 'error' || (x.type === 'refused' && quotaReason.test(x.reason ?? '')))) {
    t.ok(audit.some(a => a.event === 'client-rejected' && a.pid === r.pid && a.reason === m.reason), `a client-rejected record for ${asciiJson(m.reason)}`)
  }
  t.ok(b.alive(), 'the broker is still running')
})

t.test('afterwards the broker serves as before', async t => {
  t.notMatch(b.stderr(), /internal error|\n\s+at /, 'nothing failed inside the broker (no internal error, no stack on its stderr)')
  const fds = await eventually(() => fdCount(b.proc.pid!), n => n <= baselineFds, 20_000)
  t.equal(fds, baselineFds, `the broker's fds are back to ${baselineFds}`)

  // every fd of the user's released: exactly the cap's worth of fds is not over it
  const fdsWhole = await fuzzClient(b, [{ mode: 'lockstep', steps: [{ data: Buffer.from('{"v":1,"type":"list"}').toString('base64'), fds: Array(MAX_FDS).fill('null') }] }])
  t.match(fdsWhole.connections[0].steps[0].replies, [{ type: 'error', reason: `list takes 0 fds, got ${MAX_FDS}` }], `${MAX_FDS} fds are within the user's fd cap`)

  // every session of the user's released: the cap's worth of connections is served, one more is not
  const list = { data: Buffer.from('{"v":1,"type":"list"}').toString('base64'), fds: [] }
  const sessions = await fuzzClient(b, [{ mode: 'parallel', steps: Array(MAX_SESSIONS + 1).fill(list) }])
  const firsts = sessions.connections[0].steps.map(s => s.replies?.[0]?.type ?? 'none')
  t.same(firsts.slice(0, MAX_SESSIONS), Array(MAX_SESSIONS).fill('programs'), `${MAX_SESSIONS} sessions at once are served`)
  t.match(sessions.connections[0].steps[MAX_SESSIONS].replies, [{ type: 'refused', reason: `too many sessions for ${user.name} (limit ${MAX_SESSIONS})` }], 'one more is turned away')

  const ping = await runAs(user, e.client(b.socket, fx.ping, '-c1', '-W2', '127.0.0.1'))
  t.equal(ping.code, 0, `ping -c1 127.0.0.1 through the broker works (stderr: ${ping.stderr})`)
  t.match(ping.stdout, /1 packets transmitted, 1 received/, 'one echo answered')
  const probe = await runAs(user, e.client(b.socket, fx.probe, 'exit', '7'))
  t.equal(probe.code, 7, 'the probe exits 7')
  t.ok(b.alive(), 'the broker is still running')
  const after = await eventually(() => fdCount(b.proc.pid!), n => n <= baselineFds, 20_000)
  t.equal(after, baselineFds, 'and its fds are back to the baseline again')
})
