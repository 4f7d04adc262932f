/*
 * STX_ELEVATE_TIMING=1: the client prints, on exit, one line to stderr with
 * the milliseconds since the process started (performance.timeOrigin) at
 * which each phase ended, for the benchmarks (bench/). Nothing otherwise.
 */
import { performance } from 'node:perf_hooks';

const on = process.env.STX_ELEVATE_TIMING === '1';
const marks: string[] = [];

export function mark(phase: string): void {
  if (on) marks.push(`${phase}=${performance.now().toFixed(2)}`);
}

/** Called just before process.exit. */
export function report(): void {
  if (on) process.stderr.write(`stx-elevate timing: ${marks.join(' ')} exit=${performance.now().toFixed(2)}\n`);
}
