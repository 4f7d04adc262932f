// End to end: the broker's event loop never blocks on closing an fd a user
// handed over. A TCP socket with SO_LINGER {on, 30 s} and unsent data blocks
// whoever drops its last reference in close() for up to 30 s. A client sends
// one to the broker (as the fd of a garbage message, or as stdout of a run
// the broker refuses), closes its own copy and disconnects: the broker closes
// the last reference, and the next, normal client must still be served at
// once.
//
// Whoever closes last lingers: were the broker to read the message and close
// its copy before the client closed its own, the client would be the one
// stuck and the test would prove nothing. So the broker is stopped (SIGSTOP)
// while the client sends and closes its copy, and continued after.
import t from 'tap'
import { createServer, type Server, type Socket } from 'node:net'
import type { AddressInfo } from 'node:net'
import { readAudit, waitForAudit } from './lib/audit.js'
import { readFileSync, readdirSync } from 'node:fs'
import { startBroker, type Broker, type TapLike } from './lib/broker.js'
import { PYTHON3 } from './lib/paths.js'
import { probeRule } from './lib/rules.js'
import { jsonLine, runAs, sleep, spawnAs } from './lib/run.js'
import { setupE2E } from './lib/setup.js'

const e = await setupE2E(t)
const { user, fx, tree } = e

/**
 * The lingering-socket client, run as the user:
 *   python3 -c STALL_CLIENT BROKER_SOCKET MODE PROGRAM PORT LINGER
 * Connects a TCP socket to 127.0.0.1:PORT (a listener that never reads),
 * with a small SO_SNDBUF, fills it until send() keeps failing with EAGAIN,
 * sets SO_LINGER {1, LINGER}. Then MODE:
 *   self-close  closes the socket itself and reports how long close() took
 *   garbage     sends a garbage message carrying the socket (SCM_RIGHTS)
 *   run         sends a valid run of PROGRAM with the socket as stdout
 *               (stdin and stderr /dev/null)
 * For garbage and run it first connects to the broker, prints READY and
 * waits for a line on stdin (the test stops the broker meanwhile), then sends,
 * closes its own copy of the socket, prints SENT, reads the broker's replies
 * for at most 5 s, and disconnects. Prints one JSON line.
 */
const STALL_CLIENT = String.raw`
import array, fcntl, json, os, socket, struct, sys, termios, time
path, mode, program, port, linger = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
out = {"pid": os.getpid(), "mode": mode, "filled": 0, "queued": None, "linger": None,
       "close_s": None, "sent": None, "replies": [], "eof": False, "error": None}
try:
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    tcp.settimeout(5)
    tcp.connect(("127.0.0.1", port))
    tcp.setblocking(False)
    chunk = b"x" * 65536
    deadline = time.monotonic() + 20
    stuck = 0
    while stuck < 3:
        if time.monotonic() > deadline:
            raise RuntimeError("the send queue never stayed full")
        try:
            out["filled"] += tcp.send(chunk)
            stuck = 0
        except BlockingIOError:
            stuck += 1
            time.sleep(0.1)
    out["queued"] = struct.unpack("i", fcntl.ioctl(tcp.fileno(), termios.TIOCOUTQ, b"\0" * 4))[0]
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, linger))
    out["linger"] = list(struct.unpack("ii", tcp.getsockopt(socket.SOL_SOCKET, socket.SO_LINGER, 8)))
    if mode == "self-close":
        t0 = time.monotonic()
        tcp.close()
        out["close_s"] = time.monotonic() - t0
    else:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        s.settimeout(5)
        s.connect(path)
        print("READY", flush=True)
        sys.stdin.readline()
        if mode == "garbage":
            data = b"\xff\xfe\x00garbage\x01{{{" + bytes(range(256))
            fds = [tcp.fileno()]
        elif mode == "run":
            data = json.dumps({"v": 1, "type": "run", "path": program, "argv": [program], "env": {}}).encode()
            # not our own stdio: those are the test's pipes, which the
            # broker would hold open while it is stuck
            null = os.open("/dev/null", os.O_RDWR)
            cwd = os.open("/", os.O_PATH | os.O_DIRECTORY)
            fds = [null, tcp.fileno(), null, cwd]
        else:
            raise SystemExit("unknown mode " + mode)
        out["sent"] = s.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
        t0 = time.monotonic()
        tcp.close()  # our copy: the broker's is now the last reference
        out["close_s"] = time.monotonic() - t0
        if mode == "run":
            os.close(null)
            os.close(cwd)
        print("SENT", flush=True)
        s.settimeout(5)
        while True:
            try:
                msg = s.recv(131073)
            except (socket.timeout, ConnectionResetError):
                break
            if not msg:
                out["eof"] = True
                break
            try:
                out["replies"].append(json.loads(msg.decode()))
            except Exception:
                out["replies"].append({"raw": msg.decode("utf-8", "replace")[:300]})
        s.close()
except Exception as e:
    out["error"] = "%s: %s" % (type(e).__name__, e)
print(json.dumps(out), flush=True)
`

interface StallResult {
  pid: number
  mode: string
  filled: number
  queued: number | null
  linger: [number, number] | null
  close_s: number | null
  sent: number | null
  replies: Array<Record<string, unknown>>
  eof: boolean
  error: string | null
}

/** A loopback TCP listener whose connections are never read; reset in t's teardown. */
async function deafListener(t: TapLike): Promise<{ port: number, server: Server, conns: Socket[] }> {
  const conns: Socket[] = []
  const server = createServer({ pauseOnConnect: true }, c => {
    c.on('error', () => { /* reset by the peer */ })
    conns.push(c)
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  // destroying a connection with unread data sends a reset: that ends any
  // lingering close still waiting on the other end
  t.teardown(() => {
    for (const c of conns) c.destroy()
    server.close()
  })
  return { port: (server.address() as AddressInfo).port, server, conns }
}

function stallArgv(socket: string, mode: string, port: number, linger: number): string[] {
  return [PYTHON3, '-c', STALL_CLIENT, socket, mode, fx.attack, String(port), String(linger)]
}

function parseStall(r: { code: number | null, stdout: string, stderr: string }, mode: string): StallResult {
  const o = jsonLine<StallResult>(r.stdout, 'mode')
  if (r.code !== 0 || o.error !== null) throw new Error(`stall client ${mode} failed (code ${r.code}): ${o.error ?? ''}\n${r.stderr}`)
  return o
}

/** Every thread of pid is stopped (state T), within timeoutMs. */
async function waitStopped(pid: number, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const states = readdirSync(`/proc/${pid}/task`).map(tid => {
      try { return /^\d+ \(.*\) (\S)/s.exec(readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8'))?.[1] } catch { return 'gone' }
    })
    if (states.every(st => st === 'T' || st === 'gone')) return
    if (Date.now() > deadline) throw new Error(`pid ${pid} not stopped within ${timeoutMs} ms: ${states.join('')}`)
    await sleep(10)
  }
}

/**
 * The lingering client's hand-off, with the broker stopped while the client
 * sends the socket and closes its own copy: the broker's copy is the last.
 */
async function handOff(t: TapLike, b: Broker, mode: string, port: number): Promise<StallResult> {
  const pid = b.proc.pid!
  const c = spawnAs(user, stallArgv(b.socket, mode, port, LINGER))
  let stopped = false
  const resume = () => { if (stopped) { stopped = false; try { process.kill(pid, 'SIGCONT') } catch { /* gone */ } } }
  t.teardown(() => {
    resume()
    c.kill('SIGKILL')  // a no-op once it has ended
  })
  try {
    await c.waitForLine(l => l === 'READY', 30_000)
    process.kill(pid, 'SIGSTOP')
    stopped = true
    await waitStopped(pid)
    c.write('go\n')
    await c.waitForLine(l => l === 'SENT', 10_000)
  } finally {
    resume()
  }
  return parseStall(await c.wait(15_000), mode)
}

const LINGER = 30
const SERVED_WITHIN_MS = 3000

t.test('control: closing a TCP socket with SO_LINGER and unsent data blocks its closer (linger 2 s)', async t => {
  const { port } = await deafListener(t)
  const o = parseStall(await runAs(user, stallArgv('/nonexistent', 'self-close', port, 2), { timeoutMs: 40_000 }), 'self-close')
  t.ok((o.queued ?? 0) > 0, `unsent data in the send queue: ${o.queued} bytes (${o.filled} written)`)
  t.same(o.linger, [1, 2], 'SO_LINGER {1, 2}')
  t.ok((o.close_s ?? 0) >= 1.5, `close() blocked for the linger time: ${o.close_s?.toFixed(2)} s`)
})

const CASES = [
  { mode: 'garbage', what: "as a garbage message's fd", reply: 'error' },
  { mode: 'run', what: 'as stdout of a run the broker refuses (no rule)', reply: 'refused' },
]

for (const { mode, what, reply } of CASES) {
  t.test(`a lingering TCP socket handed over ${what} does not stall the broker: the next client is served at once`, async t => {
    const b = await startBroker(t, tree, { rules: { 'probe.conf': probeRule({ path: fx.probe, users: [user.name] }) } })
    const { port } = await deafListener(t)
    const o = await handOff(t, b, mode, port)
    t.ok((o.queued ?? 0) > 0, `unsent data in the send queue: ${o.queued} bytes`)
    t.same(o.linger, [1, LINGER], `SO_LINGER {1, ${LINGER}}`)
    t.ok((o.sent ?? 0) > 0, 'the message went out with the socket')
    t.ok((o.close_s ?? 99) < 1, `the client's close of its own copy did not linger (${o.close_s?.toFixed(3)} s): the broker holds the last reference`)

    // right after the lingering client disconnected: a normal client
    const t0 = Date.now()
    let served: Awaited<ReturnType<typeof runAs>> | Error
    try {
      served = await runAs(user, e.client(b.socket, fx.probe, 'exit', '0'), { timeoutMs: SERVED_WITHIN_MS })
    } catch (err) {
      served = err as Error
    }
    const ms = Date.now() - t0
    if (served instanceof Error) {
      t.fail(`the next client was not served within ${SERVED_WITHIN_MS} ms (the broker is stuck closing the socket)`)
    } else {
      t.equal(served.code, 0, `the next client's program ran and exited 0 (stderr: ${served.stderr})`)
      t.ok(ms < SERVED_WITHIN_MS, `served in ${ms} ms`)
    }

    t.match(o.replies[0], { v: 1, type: reply }, `the lingering client got its ${reply} reply at once: ${JSON.stringify(o.replies)}`)
    t.ok(b.alive(), 'the broker is still running')
    if (mode === 'garbage') {
      await waitForAudit(b.audit, a => a.event === 'client-rejected' && a.pid === o.pid, 5000, `client-rejected record for pid ${o.pid}`)
    } else {
      await waitForAudit(b.audit, a => a.event === 'refuse' && a.uid === user.uid && a.call?.name === 'run', 5000, 'refuse record for the run')
    }
    t.notOk(readAudit(b.audit).some(a => a.event === 'launch' && a.client?.pid === o.pid), 'nothing was launched for the lingering client')
  })
}
