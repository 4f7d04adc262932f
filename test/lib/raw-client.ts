/**
 * test/fixtures/raw-client.py, run as a user against a broker: the
 * protocol spoken by hand, to send what the real client never would.
 */
import type { Fixtures } from './fixtures.js'
import { PYTHON3 } from './paths.js'
import { jsonLine, runAs } from './run.js'
import type { TestUser } from './users.js'

/** What raw-client.py prints: what it sent and every reply until the broker closed. */
export interface RawResult {
  pid: number
  case: string
  sent: number
  fds: number
  replies: Array<Record<string, unknown>>
  eof: boolean
  timeout: boolean
  error: string | null
}

export async function rawClient(user: TestUser, fx: Fixtures, socket: string, kase: string): Promise<RawResult> {
  const r = await runAs(user, [PYTHON3, fx.rawClient, socket, kase, fx.probe], { timeoutMs: 20_000 })
  if (r.code !== 0) throw new Error(`raw-client.py ${kase} failed (code ${r.code}): ${r.stderr}`)
  return jsonLine<RawResult>(r.stdout, 'replies')
}
