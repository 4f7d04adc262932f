/**
 * The knobs every fuzz test shares. `npm test` runs each with a fixed seed
 * and a few runs (seconds); `npm run fuzz` raises the runs and draws a new
 * seed. A failure names the seed, and fast-check prints the counterexample
 * and its path, so `FUZZ_SEED=S npx tap test/FILE.test.ts` replays it.
 *
 *   FUZZ_SEED=N      the seed (default: the fixed one; "random": a new one)
 *   FUZZ_SCALE=X     runs (and, for the live broker, datagrams) times X
 *   FUZZ_SECONDS=N   how long libFuzzer runs on the launcher's arguments
 */
import type { Parameters } from 'fast-check'

export const FIXED_SEED = 20250610

export function fuzzSeed (): number {
  const s = process.env.FUZZ_SEED
  if (s === undefined || s === '') return FIXED_SEED
  if (s === 'random') return (Math.random() * 2 ** 31) | 0
  const n = Number(s)
  if (!Number.isSafeInteger(n)) throw new Error(`FUZZ_SEED must be an integer or "random", not ${JSON.stringify(s)}`)
  return n
}

export function fuzzScale (): number {
  const s = process.env.FUZZ_SCALE
  if (s === undefined || s === '') return 1
  const n = Number(s)
  if (!(n > 0)) throw new Error(`FUZZ_SCALE must be a positive number, not ${JSON.stringify(s)}`)
  return n
}

/** Runs for a property whose `npm test` share is `runs`. */
export function fuzzRuns (runs: number): number {
  return Math.max(1, Math.round(runs * fuzzScale()))
}

interface Commenter { comment(...args: unknown[]): void }

/** fast-check parameters, announced so that a log names what ran. */
export function fuzzParams (t: Commenter, runs: number): Parameters<unknown> {
  const seed = fuzzSeed()
  const numRuns = fuzzRuns(runs)
  t.comment(`fast-check seed ${seed}, ${numRuns} runs (replay: FUZZ_SEED=${seed}${process.env.FUZZ_SCALE ? ` FUZZ_SCALE=${process.env.FUZZ_SCALE}` : ''})`)
  return { seed, numRuns }
}

/** The slowest of many calls: a hang guard, not a speed test. */
export class Slowest {
  ms = 0
  size = 0

  time<T> (size: number, f: () => T): T {
    const start = process.hrtime.bigint()
    try {
      return f()
    } finally {
      const ms = Number(process.hrtime.bigint() - start) / 1e6
      if (ms > this.ms) {
        this.ms = ms
        this.size = size
      }
    }
  }

  toString (): string {
    return `${this.ms.toFixed(2)} ms (an input of ${this.size} bytes)`
  }
}
