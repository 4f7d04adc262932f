/*
 * The shape strip and restore share: plan every path first (any refusal
 * changes nothing), then apply the planned changes in order, printing one
 * line per change made (`would ...` under --dry-run, which applies none).
 */
import { closeQuietly } from '../../shared/native/libc.js';
import { Refusal } from './refusal.js';

export interface Change {
  /** What it does, in the imperative: "chmod 4755 -> 0755 /usr/bin/ping". */
  text: string;
  apply(): void;
}

export interface Plan {
  path: string;
  /** The binary's fd, open since the checks; -1 when it is gone (restore). */
  fd: number;
  /** Printed before the changes, "note: ..." on standard output (which file a symlink led to). */
  heads: string[];
  changes: Change[];
  /** Printed after the changes, "note: ..." on standard output. */
  notes: string[];
  /** Printed on standard error, "warning: ...". */
  warnings: string[];
  /** The last line for this path: what was done, or (dryRun) what would be. */
  summary(dryRun: boolean): string;
  /** Said when something failed half-way: how to undo what was done. */
  undo: string;
}

export interface Output {
  out(line: string): void;
  err(line: string): void;
}

/** Output to the terminal: changes on standard output, problems on standard error. */
export const print: Output = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
};

/** Plans each path; on any refusal prints them all, closes every fd, and returns undefined. */
export function planAll(command: string, args: string[], plan: (arg: string) => Plan, io: Output): Plan[] | undefined {
  const plans: Plan[] = [];
  let refused = false;
  for (const arg of args) {
    try {
      plans.push(plan(arg));
    } catch (e) {
      if (!(e instanceof Refusal)) throw e;
      io.err(`stx-elevate ${command}: ${e.message}`);
      refused = true;
    }
  }
  if (!refused) return plans;
  for (const p of plans) closeQuietly(p.fd);
  io.err(`stx-elevate ${command}: nothing changed`);
  return undefined;
}

/** Applies (or, dry, prints) each plan's changes in order; 0, or 1 when a change failed (later ones are not tried). */
export function applyAll(command: string, plans: Plan[], dryRun: boolean, io: Output): number {
  try {
    for (const p of plans) {
      for (const h of p.heads) io.out(`note: ${h}`);
      for (const [i, c] of p.changes.entries()) {
        if (dryRun) {
          io.out(`would ${c.text}`);
          continue;
        }
        try {
          c.apply();
        } catch (e) {
          const why = e instanceof Error ? e.message : String(e);
          io.err(`stx-elevate ${command}: ${p.path}: ${c.text}: failed: ${why}`);
          io.err(`stx-elevate ${command}: ${i === 0 ? `nothing of ${p.path} was changed` : p.undo}`);
          return 1;
        }
        io.out(c.text);
      }
      for (const w of p.warnings) io.err(`stx-elevate ${command}: warning: ${w}`);
      for (const n of p.notes) io.out(`note: ${n}`);
      io.out(p.summary(dryRun));
    }
    if (dryRun) io.out('dry run: nothing changed');
    return 0;
  } finally {
    for (const p of plans) closeQuietly(p.fd);
  }
}

/** Root only: both commands change system binaries, dpkg's database and /etc. */
export function requireRoot(command: string, io: Output): boolean {
  if (process.getuid?.() === 0) return true;
  io.err(`stx-elevate ${command}: must be run as root: it changes the mode and attributes of system binaries, `
    + `dpkg's stat overrides and /etc (try: sudo stx-elevate ${command} ...)`);
  return false;
}
