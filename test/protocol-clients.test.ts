// Both clients of the protocol held to ONE table of cases: the TypeScript
// `stx-elevate`, the C `stx-run`, and `stx-run` as a shim (a link named
// after the program). A fake broker in this process (lib/fake-broker.ts)
// reads the request each sends (JSON, argv, environment, the 4 fds) and
// answers as the case says, including answers the real broker never sends.
// Every case must give the same exit status and the same stderr from all
// three. No real broker, no test user: the clients run as root from the
// checkout (npm run build first).
import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import {
  chmodSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readlinkSync, realpathSync, rmSync, symlinkSync, writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { AF_UNIX, SOCK_CLOEXEC, SOCK_SEQPACKET, bindUnix, closeQuietly, socket } from '../src/shared/native/libc.js'
import { FORWARDED_SIGNALS, MAX_ENV_VALUE, MAX_MESSAGE } from '../src/shared/protocol.js'
import { fakeBroker, type Datagram, type FakeBroker, type FakeConnection } from './lib/fake-broker.js'
import { SAFE_PATH, repoRoot } from './lib/paths.js'
import { cleanArgv } from './lib/proc.js'

const TS_CLIENT = join(repoRoot, 'bin', 'stx-elevate')
const RUNNER = join(repoRoot, 'native', 'build', 'stx-run')
const TRUE = realpathSync('/usr/bin/true')
const NOT_RUNNING = '(start it with: systemctl start stx-elevated)'

// ---- the clients ------------------------------------------------------------------

const work = mkdtempSync(join(tmpdir(), 'stx-protocol-clients.'))
t.teardown(() => rmSync(work, { recursive: true, force: true }))
const cwd = join(work, 'cwd')
const shims = join(work, 'shims')
const state = join(work, 'state')
for (const d of [cwd, shims, join(state, 'shims')]) mkdirSync(d, { recursive: true })
symlinkSync(RUNNER, join(shims, 'true'))
symlinkSync(TRUE, join(state, 'shims', 'true'))
const stdinFile = join(cwd, 'stdin.txt')
writeFileSync(stdinFile, 'input\n')

interface Client {
  name: string
  /** argv that runs `true ARGS...` through this client */
  argv(args: string[]): string[]
}

const CLIENTS: Client[] = [
  { name: 'stx-elevate', argv: args => [process.execPath, TS_CLIENT, 'true', ...args] },
  { name: 'stx-run', argv: args => [RUNNER, 'true', ...args] },
  { name: 'shim', argv: args => [join(shims, 'true'), ...args] },
]

interface Result { code: number | null, signal: NodeJS.Signals | null, stdout: string, stderr: string }

interface Running {
  pid: number
  kill(signal: NodeJS.Signals): void
  /** bounded: SIGKILL to its group and reject after timeoutMs */
  wait(timeoutMs?: number): Promise<Result>
}

/** Start argv with exactly env (through env -i), in cwd, stdin from a file, stdout and stderr piped. */
function start(argv: string[], env: Record<string, string>): Running {
  const full = cleanArgv(argv, env)
  const stdin = openSync(stdinFile, 'r')
  const child = spawn(full[0], full.slice(1), { cwd, stdio: [stdin, 'pipe', 'pipe'], detached: true })
  closeSync(stdin)
  let stdout = ''
  let stderr = ''
  child.stdout!.setEncoding('utf8').on('data', d => { stdout += d })
  child.stderr!.setEncoding('utf8').on('data', d => { stderr += d })
  const closed = new Promise<Result>((resolve, reject) => {
    child.on('error', reject)
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }))
  })
  return {
    pid: child.pid!,
    kill: signal => process.kill(child.pid!, signal),
    wait(timeoutMs = 20_000) {
      let timer: NodeJS.Timeout
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          try { process.kill(-child.pid!, 'SIGKILL') } catch { /* gone */ }
          reject(new Error(`${argv.join(' ')} did not end within ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`))
        }, timeoutMs)
      })
      return Promise.race([closed, timeout]).finally(() => clearTimeout(timer))
    },
  }
}

// ---- the table --------------------------------------------------------------------

interface Script {
  t: Test
  broker: FakeBroker
  client: Running
  /** accept the client's connection, read its request and check it against the case; the connection */
  request(): Promise<FakeConnection>
}

interface Case {
  name: string
  /** the program's arguments (after `true`) */
  args?: string[]
  /** added to the client's environment */
  env?: Record<string, string>
  /** the environment the request must carry (default: the client's whole environment) */
  sentEnv?: (env: Record<string, string>) => Record<string, string>
  /** the socket the client is told of (default: the fake broker's) */
  socket?: () => string
  /** a root command the client runs under (e.g. strace) */
  wrap?: string[]
  /** what the fake broker does (default: nothing) */
  broker?: (s: Script) => Promise<void>
  status: number
  /** stderr, exactly (SOCKET: the socket path) */
  stderr: string
  /** the fake broker must see no connection at all */
  noConnection?: boolean
}

const started = { v: 1, type: 'started', pid: 4242 }
const exit = (code: number | null, signal: string | null = null) => ({ v: 1, type: 'exit', code, signal })
const answer = (m: object | Buffer) => async (s: Script) => { (await s.request()).send(m) }
const startedThen = (m: object | Buffer) => async (s: Script) => {
  const c = await s.request()
  c.send(started)
  c.send(m)
}

const ARGS = ['-c1', 'two words', 'quote " backslash \\ newline \n tab \t bell \x07 slash /', 'ü € 😀', '', '--socket', '/elsewhere', '--']
const LONG = 'a'.repeat(MAX_ENV_VALUE)
const LONG_UTF8 = 'é'.repeat(MAX_ENV_VALUE / 2) // MAX_ENV_VALUE bytes, half as many characters

const undecodable = (what: string, message: object | Buffer, reason: string): Case => ({
  name: `an answer with ${what} is refused as undecodable`,
  broker: answer(message),
  status: 1,
  stderr: `stx-elevate: the broker sent a message this client cannot decode: ${reason}\n`,
})

const CASES: Case[] = [
  {
    name: 'the request: run, the canonical path, argv as given, the environment, stdin/stdout/stderr/cwd; exit 7 passes through',
    args: ARGS,
    broker: startedThen(exit(7)),
    status: 7,
    stderr: '',
  },
  { name: 'exit 0 passes through', broker: startedThen(exit(0)), status: 0, stderr: '' },
  { name: 'exit 255 passes through', broker: startedThen(exit(255)), status: 255, stderr: '' },
  { name: 'killed by SIGTERM: 143', broker: startedThen(exit(null, 'SIGTERM')), status: 143, stderr: '' },
  { name: 'killed by SIGKILL: 137', broker: startedThen(exit(null, 'SIGKILL')), status: 137, stderr: '' },
  { name: 'killed by a signal of no known name: 128', broker: startedThen(exit(null, 'SIGNOTONE')), status: 128, stderr: '' },
  {
    name: 'numbers are read as JavaScript reads them: 1.0 and 3.0 are integers',
    broker: startedThen(Buffer.from('{"v":1.0,"type":"exit","code":3.0,"signal":null}')),
    status: 3,
    stderr: '',
  },
  {
    name: 'the environment: names as ENV_NAME, values up to MAX_ENV_VALUE bytes, escaped as JSON',
    env: {
      GOOD: 'x', _UNDER: 'y', EMPTY: '', 'BAD-NAME': 'x', '1BAD': 'x', 'A.B': 'x',
      AT_LIMIT: LONG, OVER_LIMIT: `${LONG}a`, UTF8_AT_LIMIT: LONG_UTF8, UTF8_OVER_LIMIT: `${LONG_UTF8}é`,
      ESCAPES: 'q " b \\ n \n t \t c \x01 ü 😀 /',
    },
    sentEnv: env => {
      const sent = { ...env }
      for (const k of ['BAD-NAME', '1BAD', 'A.B', 'OVER_LIMIT', 'UTF8_OVER_LIMIT']) delete sent[k]
      return sent
    },
    broker: startedThen(exit(0)),
    status: 0,
    stderr: '',
  },
  {
    name: 'SIGINT, SIGTERM, SIGHUP and SIGQUIT are forwarded as signal messages; killed by SIGINT: 130',
    broker: async s => {
      const c = await s.request()
      c.send(started)
      for (const signal of FORWARDED_SIGNALS) {
        s.client.kill(signal)
        const m = await c.next()
        s.t.same(m?.json, { v: 1, type: 'signal', signal }, `${signal} forwarded`)
        s.t.same(m?.fds, [], 'with no fd')
      }
      c.send(exit(null, 'SIGINT'))
    },
    status: 130,
    stderr: '',
  },
  {
    name: 'refused: the reason, one line, exit 1',
    broker: answer({ v: 1, type: 'refused', reason: 'no rule lets stxtest run /usr/bin/true' }),
    status: 1,
    stderr: 'stx-elevate: no rule lets stxtest run /usr/bin/true\n',
  },
  {
    name: 'refused after started',
    broker: startedThen({ v: 1, type: 'refused', reason: 'too many fds held for stxtest (limit 1)' }),
    status: 1,
    stderr: 'stx-elevate: too many fds held for stxtest (limit 1)\n',
  },
  {
    name: 'error: the broker rejected the request',
    broker: answer({ v: 1, type: 'error', reason: 'run path must be an absolute path' }),
    status: 1,
    stderr: 'stx-elevate: the broker rejected the request: run path must be an absolute path\n',
  },
  {
    name: 'the broker closes after started, before the exit message',
    broker: async s => {
      const c = await s.request()
      c.send(started)
      c.close()
    },
    status: 1,
    stderr: 'stx-elevate: the broker closed the connection before true finished\n',
  },
  {
    // the kernel reports ECONNRESET once, before the exit message still queued
    name: 'the broker sends the exit and closes with a forwarded signal unread: the exit status still comes through',
    broker: async s => {
      const c = await s.request()
      c.stopReading()
      c.send(started)
      s.client.kill('SIGINT')
      for (const deadline = Date.now() + 5000; !c.unread();) {
        if (Date.now() > deadline) throw new Error('the forwarded SIGINT never arrived')
        await new Promise(r => setTimeout(r, 10))
      }
      c.send(exit(null, 'SIGINT'))
      c.close()
    },
    status: 130,
    stderr: '',
  },
  {
    name: 'the broker closes without a word',
    broker: async s => { (await s.request()).close() },
    status: 1,
    stderr: 'stx-elevate: the broker closed the connection before true finished\n',
  },
  {
    // strace holds the client's sendmsg for 1.5 s, so the answer and the
    // close are there before the request goes, as when the real broker
    // turns a user at the session cap away at accept time
    name: 'the broker answered and closed before the request: the send fails, the queued answer is shown',
    wrap: ['strace', '-f', '-qq', '-o', '/dev/null', '-e', 'trace=sendmsg', '-e', 'inject=sendmsg:delay_enter=1500000'],
    broker: async s => {
      const c = await s.broker.connection()
      s.t.equal(c.pending(), null, 'nothing arrived before the answer')
      c.shutdownRead()
      c.send({ v: 1, type: 'refused', reason: 'too many sessions for stxtest (limit 1)' })
      c.close()
    },
    status: 1,
    stderr: 'stx-elevate: too many sessions for stxtest (limit 1)\n',
  },
  {
    name: 'arguments over MAX_MESSAGE: a clear error, nothing sent',
    args: ['a'.repeat(70_000), 'b'.repeat(70_000)],
    broker: async s => {
      const c = await s.broker.connection()
      s.t.equal(await c.next(), null, 'the client closed without sending anything')
    },
    status: 1,
    stderr: `stx-elevate: true: arguments and environment exceed ${MAX_MESSAGE} bytes\n`,
  },
  {
    name: 'no broker: no socket file',
    socket: () => join(work, 'no-such.sock'),
    status: 1,
    stderr: `stx-elevate: cannot reach the broker at SOCKET: No such file or directory: the stx-elevated broker is not running ${NOT_RUNNING}\n`,
    noConnection: true,
  },
  {
    name: 'no broker: a socket nobody listens on',
    socket: () => {
      const path = join(work, `unheard-${Math.random().toString(36).slice(2)}.sock`)
      const fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0)
      bindUnix(fd, path)
      closeQuietly(fd)
      return path
    },
    status: 1,
    stderr: `stx-elevate: cannot reach the broker at SOCKET: Connection refused: the stx-elevated broker is not running ${NOT_RUNNING}\n`,
    noConnection: true,
  },
  {
    name: 'a socket path longer than sun_path',
    socket: () => join(work, 'x'.repeat(120)),
    status: 1,
    stderr: 'stx-elevate: cannot reach the broker at SOCKET: the socket path is longer than 107 bytes\n',
    noConnection: true,
  },
  undecodable('bytes that are not JSON', Buffer.from('garbage'), 'message is not valid UTF-8 JSON'),
  undecodable('a string that is not UTF-8', Buffer.concat([Buffer.from('{"v":1,"type":"refused","reason":"'), Buffer.from([0xc3, 0x28]), Buffer.from('"}')]),
    'message is not valid UTF-8 JSON'),
  undecodable('JSON that is not an object', [1, 2], 'message is not a JSON object'),
  undecodable('another protocol version', { v: 2, type: 'exit', code: 0, signal: null }, 'unsupported protocol version 2; expected 1'),
  undecodable('no version', { type: 'exit', code: 0, signal: null }, 'unsupported protocol version undefined; expected 1'),
  undecodable('a version that is a string', { v: '1', type: 'exit', code: 0, signal: null }, 'unsupported protocol version "1"; expected 1'),
  undecodable('no type', { v: 1 }, 'message has no type'),
  undecodable('an unknown type', { v: 1, type: 'bogus' }, 'unknown message type "bogus"'),
  undecodable('an unknown key', { v: 1, type: 'exit', code: 0, signal: null, extra: 1 }, 'unexpected key "extra" in exit message'),
  undecodable('a missing key', { v: 1, type: 'exit', code: 0 }, 'exit message lacks "signal"'),
  undecodable('exit.code a string', { v: 1, type: 'exit', code: '0', signal: null }, 'exit.code must be 0-255 or null'),
  undecodable('exit.code 256', exit(256), 'exit.code must be 0-255 or null'),
  undecodable('exit.code -1', exit(-1), 'exit.code must be 0-255 or null'),
  undecodable('exit.code 1.5', exit(1.5), 'exit.code must be 0-255 or null'),
  undecodable('exit.signal a number', { v: 1, type: 'exit', code: null, signal: 9 }, 'exit.signal must be a string or null'),
  undecodable('started.pid a string', { v: 1, type: 'started', pid: '1' }, 'started.pid must be an integer'),
  undecodable('refused.reason a number', { v: 1, type: 'refused', reason: 1 }, 'refused.reason must be a string'),
  undecodable('error.reason null', { v: 1, type: 'error', reason: null }, 'error.reason must be a string'),
  undecodable('more than MAX_MESSAGE bytes', Buffer.from(JSON.stringify({ v: 1, type: 'refused', reason: 'r'.repeat(MAX_MESSAGE) })),
    `message exceeds ${MAX_MESSAGE} bytes`),
  undecodable('the answer to list', { v: 1, type: 'programs', uid: 0, user: 'root', programs: [], omitted: 0 },
    'unexpected programs message in answer to run'),
]

/** The request every client must send for `true ARGS` with this environment. */
function checkRequest(t: Test, d: Datagram | null, client: Running, args: string[], sentEnv: Record<string, string>) {
  if (!d) return t.fail('the client closed without a request')
  t.same(d.json, { v: 1, type: 'run', path: TRUE, argv: ['true', ...args], env: sentEnv }, 'the run request')
  t.same(d.json && Object.keys(d.json), ['v', 'type', 'path', 'argv', 'env'], 'its keys, in order')
  t.equal(d.fds.length, 4, 'with 4 fds')
  const own = (n: number) => readlinkSync(`/proc/${client.pid}/fd/${n}`)
  t.match(d.fds[0], { kind: 'file', link: stdinFile }, 'fd 0: the client\'s stdin')
  t.match(d.fds[1], { kind: 'socket', link: own(1) }, 'fd 1: the client\'s stdout')
  t.match(d.fds[2], { kind: 'socket', link: own(2) }, 'fd 2: the client\'s stderr')
  t.match(d.fds[3], { kind: 'directory', link: cwd, oPath: true }, 'fd 3: the working directory, O_PATH')
}

t.test('control: the clients are built', async t => {
  t.ok(existsSync(RUNNER), `${RUNNER} (npm run build)`)
  t.ok(existsSync(join(repoRoot, 'dist', 'client', 'main.js')), 'dist/client/main.js (npm run build)')
})

t.test('control: strace can delay a call (the queued-answer case needs it)', async t => {
  const r = await start(['strace', '-qq', '-o', '/dev/null', '-e', 'trace=getpid', '-e', 'inject=getpid:delay_enter=1', '/usr/bin/true'], { PATH: SAFE_PATH }).wait()
  t.equal(r.code, 0, `strace runs (apt-get install strace): ${r.stderr}`)
})

for (const c of CASES) {
  for (const client of CLIENTS) {
    t.test(`${client.name}: ${c.name}`, async t => {
      const broker = fakeBroker(t)
      const socketPath = c.socket ? c.socket() : broker.socket
      const env = { PATH: SAFE_PATH, LANG: 'C.UTF-8', STX_ELEVATE_SOCKET: socketPath, STX_ELEVATE_STATE_DIR: state, ...c.env }
      const args = c.args ?? []
      const run = start([...(c.wrap ?? []), ...client.argv(args)], env)
      t.teardown(() => { try { process.kill(-run.pid, 'SIGKILL') } catch { /* gone */ } })
      const script: Script = {
        t,
        broker,
        client: run,
        async request() {
          const conn = await broker.connection()
          checkRequest(t, await conn.next(), run, args, c.sentEnv ? c.sentEnv(env) : env)
          return conn
        },
      }
      const [r] = await Promise.all([run.wait(), c.broker?.(script)])
      t.equal(r.code, c.status, 'exit status')
      t.equal(r.signal, null, 'the client exits, it is not killed')
      t.equal(r.stderr, c.stderr.replace('SOCKET', socketPath), 'stderr')
      t.equal(r.stdout, '', 'nothing on stdout')
      if (c.noConnection) t.equal(broker.accepted(), 0, 'no connection reached the fake broker')
    })
  }
}

// ---- what only some clients have ------------------------------------------------------

/** Run a client to its end against a fresh fake broker that answers a request with exit 0. */
async function runOnce(t: Test, argv: string[], env: Record<string, string> = {}) {
  const broker = fakeBroker(t)
  const run = start(argv, { PATH: SAFE_PATH, LANG: 'C.UTF-8', STX_ELEVATE_SOCKET: broker.socket, STX_ELEVATE_STATE_DIR: state, ...env })
  t.teardown(() => { try { process.kill(-run.pid, 'SIGKILL') } catch { /* gone */ } })
  let request: Datagram | null | undefined
  const serving = (async () => {
    const conn = await broker.connection(20_000)
    request = await conn.next(20_000)
    if (request) conn.send(exit(0))
  })().catch(() => { /* no connection: the caller checks accepted() */ })
  const r = await run.wait()
  if (broker.accepted() > 0) await serving
  return { r, request, broker }
}

const MODE1 = CLIENTS.filter(c => c.name !== 'shim')
const direct = (client: Client, ...argv: string[]) => [...client.argv([]).slice(0, -1), ...argv]

for (const client of MODE1) {
  t.test(`${client.name}: --socket comes before $STX_ELEVATE_SOCKET; the program's own --socket is its argument`, async t => {
    const broker = fakeBroker(t)
    const run = start(direct(client, '--socket', broker.socket, 'true', '--socket', 'x'),
      { PATH: SAFE_PATH, STX_ELEVATE_SOCKET: join(work, 'no-such.sock') })
    const conn = await broker.connection()
    const d = await conn.next()
    t.same(d?.json.argv, ['true', '--socket', 'x'])
    conn.send(exit(0))
    t.equal((await run.wait()).code, 0)
  })

  t.test(`${client.name}: -- before a program`, async t => {
    const { r, request } = await runOnce(t, direct(client, '--', 'true', 'x'))
    t.equal(r.code, 0, r.stderr)
    t.same(request?.json.argv, ['true', 'x'])
  })

  t.test(`${client.name}: a program on no PATH directory: command not found, exit 1, no connection`, async t => {
    const { r, broker } = await runOnce(t, direct(client, 'no-such-program-here'))
    t.equal(r.code, 1)
    t.equal(r.stderr, 'stx-elevate: no-such-program-here: command not found\n')
    t.equal(broker.accepted(), 0)
  })

  t.test(`${client.name}: a path with ".." after a symbolic link resolves as the kernel does`, async t => {
    // cwd/far/x and cwd/x both exist; cwd/near -> far/sub: near/../x is far/x to the kernel, ./x to a lexical resolver
    const far = join(cwd, 'far')
    mkdirSync(join(far, 'sub'), { recursive: true })
    for (const f of [join(far, 'x'), join(cwd, 'x')]) { writeFileSync(f, '#!/bin/sh\n'); chmodSync(f, 0o755) }
    if (!existsSync(join(cwd, 'near'))) symlinkSync(join(far, 'sub'), join(cwd, 'near'))
    const { r, request } = await runOnce(t, direct(client, 'near/../x'))
    t.equal(r.code, 0, r.stderr)
    t.equal(request?.json.path, join(realpathSync(far), 'x'))
    t.same(request?.json.argv, ['near/../x'])
  })

  t.test(`${client.name}: usage errors exit 2 and connect to nothing`, async t => {
    for (const argv of [[], ['--bogus', 'true'], ['--socket']]) {
      const { r, broker } = await runOnce(t, direct(client, ...argv))
      t.equal(r.code, 2, `${JSON.stringify(argv)}: ${r.stderr}`)
      t.equal(broker.accepted(), 0)
    }
  })
}

t.test('shim: every argument is the program\'s, --socket and -- included', async t => {
  const { r, request } = await runOnce(t, [join(shims, 'true'), '--socket', '/x', '--', '-h'])
  t.equal(r.code, 0, r.stderr)
  t.same(request?.json.argv, ['true', '--socket', '/x', '--', '-h'])
  t.equal(request?.json.path, TRUE)
})

t.test('shim: the program is where STATE/shims/NAME leads, whatever PATH holds', async t => {
  const { r, request } = await runOnce(t, [join(shims, 'true')], { PATH: '/nowhere' })
  t.equal(r.code, 0, r.stderr)
  t.equal(request?.json.path, TRUE)
})

t.test('shim: no link for it in the state directory: one line naming the link and strip, exit 1, no connection', async t => {
  const link = join(state, 'shims', 'false')
  symlinkSync(RUNNER, join(shims, 'false'))
  const { r, broker } = await runOnce(t, [join(shims, 'false')])
  t.equal(r.code, 1)
  t.equal(r.stderr, `stx-elevate: false: cannot find the program this shim stands for: ${link}: No such file or directory ('stx-elevate strip' creates that link)\n`)
  t.equal(broker.accepted(), 0)
})

t.test('shim: a link to a program that is gone: one line naming both, exit 1', async t => {
  const link = join(state, 'shims', 'gone')
  symlinkSync(RUNNER, join(shims, 'gone'))
  symlinkSync('/nonexistent/gone', link)
  const { r, broker } = await runOnce(t, [join(shims, 'gone')])
  t.equal(r.code, 1)
  t.equal(r.stderr, `stx-elevate: gone: ${link} links to /nonexistent/gone, which cannot be resolved: No such file or directory\n`)
  t.equal(broker.accepted(), 0)
})

t.test('shim: the state directory defaults to /var/lib/stx-elevate', async t => {
  symlinkSync(RUNNER, join(shims, 'stx-no-such-shim'))
  const { r } = await runOnce(t, [join(shims, 'stx-no-such-shim')], { STX_ELEVATE_STATE_DIR: '' })
  t.equal(r.code, 1)
  t.match(r.stderr, /^stx-elevate: stx-no-such-shim: cannot find the program this shim stands for: \/var\/lib\/stx-elevate\/shims\/stx-no-such-shim: /)
})

// stx-run never alters an argument: the broker takes only UTF-8, so one
// that is not is an error. (Node hands the TypeScript client such an
// argument with U+FFFD in place of the bad bytes; it sends that.)
t.test('stx-run: an argument that is not UTF-8: one line, exit 1, nothing sent', async t => {
  const { r, request } = await runOnce(t, ['/bin/bash', '-c', 'exec "$0" true ok "$(printf "\\xff")"', RUNNER])
  t.equal(r.code, 1)
  t.equal(r.stderr, 'stx-elevate: true: argument 2 is not valid UTF-8, which the broker requires\n')
  t.equal(request, null, 'the connection closed with nothing sent')
})

t.test('stx-run: a variable that is not UTF-8 is left out of the environment', async t => {
  const { r, request } = await runOnce(t, ['/bin/bash', '-c', 'export BAD="$(printf "\\xff")"; exec "$0" true', RUNNER], { GOOD: 'yes' })
  t.equal(r.code, 0, r.stderr)
  t.equal(request?.json.env.GOOD, 'yes')
  t.notOk('BAD' in (request?.json.env ?? {}), 'BAD is not sent')
})
