// bench: one unprivileged process opening COUNT sessions with the broker at
// once (a node client each would need ~40 MB apiece): scale-client.mjs
// TREE SOCKET COUNT PROGRAM ARGS... The programs share our stdio (their
// result lines go to our stdout). Prints "started K" to stderr when every
// session reported started (or failed), and at the end one JSON line to
// stderr: {"sessions","started","exited","ok","statuses","failures"}.
const [tree, socketPath, countText, program, ...args] = process.argv.slice(2)
const { BrokerConnection } = await import(`${tree}/dist/client/broker-client.js`)
const count = Number(countText)
let started = 0, exited = 0, ok = 0, settled = 0
const statuses = {}, failures = []
const env = { PATH: '/usr/bin:/bin' }
const done = () => {
  if (exited + failures.length === count) {
    process.stderr.write(`RESULT ${JSON.stringify({ sessions: count, started, exited, ok, statuses, failures: failures.slice(0, 5), failed: failures.length })}\n`)
    process.exit(0)
  }
}
const startedOne = () => { if (++settled === count) process.stderr.write(`started ${started}\n`) }
for (let i = 0; i < count; i++) {
  let c
  try {
    c = BrokerConnection.connect(socketPath)
    c.run(program, [program, ...args], env)
  } catch (e) {
    failures.push(String(e.message)); startedOne(); done(); continue
  }
  let isStarted = false, finished = false
  c.listen((m) => {
    if (finished) return
    if (m === null) { finished = true; if (!isStarted) startedOne(); failures.push('closed'); return done() }
    if (m.type === 'started') { isStarted = true; started++; return startedOne() }
    if (m.type === 'exit') {
      finished = true
      exited++
      const k = m.code ?? m.signal; statuses[k] = (statuses[k] ?? 0) + 1
      if (m.code === 0) ok++
      setImmediate(() => c.close()); return done()
    }
    finished = true
    failures.push(`${m.type}: ${m.reason}`); if (!isStarted) startedOne(); setImmediate(() => c.close()); done()
  })
}
