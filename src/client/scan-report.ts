/*
 * scan's two outputs: a table for people, and one JSON document for
 * scripts (its schema is in stx-elevate(1), SCAN OUTPUT).
 */
import type { Judgement, Judged, Verdict } from './privileges.js';

export interface Entry {
  path: string;
  /** Octal, four digits: "4755". */
  mode: string;
  uid: number;
  /** null: no such user in the user database. */
  user: string | null;
  gid: number;
  group: string | null;
  setuid: boolean;
  setgid: boolean;
  capabilities: { text: string; permitted: string[]; inheritable: string[]; effective: boolean; rootid?: number } | null;
  /** What it holds, in words: "setuid root", "setgid shadow", "cap_net_raw=ep". */
  privilege: string;
  verdict: Verdict;
  /** The verdict on the privilege alone, without the rules. */
  judged: Judged;
  /** Why (the rule for covered files). */
  reason: string;
  rule: { file: string; where: 'installed' | 'shipped' } | null;
  /** Each privilege judged on its own. */
  privileges: Judgement[];
}

export interface ScanError {
  /** root: a root not scanned at all; file: a directory or file below a root not read; rules: a rules directory. */
  kind: 'root' | 'file' | 'rules';
  path: string;
  message: string;
}

export interface Report {
  roots: string[];
  rules: { installed: string; shipped: string };
  files: Entry[];
  errors: ScanError[];
  /** Mount points below the roots that were not crossed. */
  notCrossed: string[];
  notes: string[];
}

export const VERDICTS: readonly Verdict[] = ['covered', 'network', 'not replaceable', 'unknown'];

export function summary(files: Entry[]): Record<Verdict, number> & { files: number } {
  const counts = Object.fromEntries(VERDICTS.map((v) => [v, files.filter((f) => f.verdict === v).length])) as Record<Verdict, number>;
  return { files: files.length, ...counts };
}

export function asJson(r: Report): object {
  return { roots: r.roots, rules: r.rules, files: r.files, summary: summary(r.files), errors: r.errors, notCrossed: r.notCrossed, notes: r.notes };
}

const HEADER = ['PATH', 'MODE', 'PRIVILEGE', 'VERDICT', 'REASON/RULE'];

/** Columns padded to the widest cell, two spaces apart; the last column is not padded. */
function table(rows: string[][]): string[] {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]))).join('  '));
}

const plural = (n: number, what: string): string => `${n} ${what}${n === 1 ? '' : 's'}`;

/** The table and summary (standard output), and the problems (standard error), as lines. */
export function humanReport(r: Report): { out: string[]; err: string[] } {
  const out: string[] = [];
  if (r.files.length > 0) {
    const owner = (e: Entry): string => `${e.user ?? e.uid}:${e.group ?? e.gid}`;
    out.push(...table([HEADER, ...r.files.map((e) => [e.path, `${e.mode} ${owner(e)}`, e.privilege, e.verdict, e.reason])]));
  }
  const s = summary(r.files);
  const counts = VERDICTS.map((v) => `${s[v]} ${v}`).join(', ');
  const where = r.roots.length > 0 ? ` under ${r.roots.join(' ')}` : '';
  out.push(`${plural(s.files, 'privileged file')}${where}: ${counts}`);
  if (r.notCrossed.length > 0) {
    out.push(`not crossed (other file systems; name them as roots to scan them): ${r.notCrossed.join(' ')}`);
  }
  for (const note of r.notes) out.push(`note: ${note}`);
  const err = r.errors.map((e) => `${e.path}: ${e.message}`);
  return { out, err };
}
