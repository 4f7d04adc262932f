/**
 * A terminal for tests of interactive commands: a tmux server on a private
 * socket, one session running a command in a pseudo-terminal, its screen
 * read with capture-pane and keys typed with send-keys. Every wait is
 * bounded; the server is killed in teardown.
 */
import { cleanArgv, rootEnv, runRoot, sleep } from './proc.js'
import type { TapLike } from './broker.js'

export interface Terminal {
  /** What the pane shows, scrollback included, lines joined. */
  screen(): Promise<string>
  /** Resolves with the screen once it matches `re`; rejects after timeoutMs with what it showed. */
  waitFor(re: RegExp, timeoutMs?: number): Promise<string>
  /** Types `text` and Enter. */
  type(text: string): Promise<void>
  /** Presses a key by tmux's name for it, e.g. C-c. */
  press(key: string): Promise<void>
}

let sessions = 0

/** Runs argv (as root, with a clean environment) in a new tmux pane of `socket`; when it ends the pane shows `[exit N]`. */
export async function terminal(t: TapLike, socket: string, argv: string[]): Promise<Terminal> {
  const tmux = (...args: string[]) => runRoot(['tmux', '-S', socket, ...args], { timeoutMs: 10_000, env: rootEnv({ TERM: 'xterm' }) })
  const name = `learn${++sessions}`
  const quoted = cleanArgv(argv, rootEnv({ TERM: 'xterm' })).map(a => `'${a.replace(/'/g, `'\\''`)}'`).join(' ')
  // The pane outlives the command (the session is killed in teardown), and shows its exit status.
  const started = await tmux('new-session', '-d', '-s', name, '-x', '200', '-y', '50', `${quoted}; echo "[exit $?]"; sleep 600`)
  if (started.code !== 0) throw new Error(`tmux new-session: ${started.stderr}`)
  t.teardown(async () => { await tmux('kill-session', '-t', name) })
  const screen = async () => (await tmux('capture-pane', '-p', '-J', '-S', '-500', '-t', name)).stdout
  return {
    screen,
    async waitFor(re, timeoutMs = 20_000) {
      const until = Date.now() + timeoutMs
      for (;;) {
        const s = await screen()
        if (re.test(s)) return s
        if (Date.now() > until) throw new Error(`the terminal did not show ${re} within ${timeoutMs} ms; it shows:\n${s}`)
        await sleep(100)
      }
    },
    async type(text) {
      const r = await tmux('send-keys', '-t', name, '-l', text)
      if (r.code !== 0) throw new Error(`tmux send-keys: ${r.stderr}`)
      await tmux('send-keys', '-t', name, 'Enter')
    },
    async press(key) {
      const r = await tmux('send-keys', '-t', name, key)
      if (r.code !== 0) throw new Error(`tmux send-keys ${key}: ${r.stderr}`)
    },
  }
}

/** Stops the tmux server of `socket` (every session on it). */
export async function stopTerminals(socket: string): Promise<void> {
  await runRoot(['tmux', '-S', socket, 'kill-server'], { timeoutMs: 10_000 }).catch(() => undefined)
}
