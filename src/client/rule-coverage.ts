/*
 * Which rule covers a binary: one whose [program] path is the binary's
 * path, among the installed rules (the broker's rules directory) or the
 * rules shipped with stx-elevate (elevation.d/ of the tree this client
 * runs from, which `stx-elevate strip` installs). Both are read as the
 * broker reads a rules directory (rules/load.ts: root-owned files and
 * directories only, every problem reported), so a rule that counts here
 * is one the broker would load.
 */
import { existsSync } from 'node:fs';
import { loadRules } from '../broker/rules/load.js';

/** elevation.d/ beside dist/: the shipped rules of this installation or checkout. */
export { SHIPPED_RULES } from './install-location.js';

export interface Cover {
  /** The rule file. */
  file: string;
  /** installed: in the broker's rules directory; shipped: only among the shipped rules. */
  where: 'installed' | 'shipped';
}

export interface Coverage {
  lookup(path: string): Cover | undefined;
  /** Why a rules directory could not be (fully) read, by directory; the rules that did load still count. */
  problems: Array<{ path: string; message: string }>;
  /** What a reader should know but is no problem (no rules installed yet). */
  notes: string[];
}

/** The rule files by binary path, and what kept any from loading. */
function rulesIn(dir: string, what: string, problems: Coverage['problems']): Map<string, string> {
  const { rules, errors } = loadRules(dir);
  if (errors.length > 0) {
    const n = errors.length === 1 ? 'a problem' : `${errors.length} problems`;
    problems.push({
      path: rules.dir,
      message: `${what}: ${n} (stx-elevate check --rules ${rules.dir} lists every one); first: ${errors[0]}`,
    });
  }
  return new Map([...rules.programs].map(([path, list]) => [path, list[0].file]));
}

/**
 * The installed rules in `installed` (missing is no problem when
 * `optional`: nothing installed yet) and the shipped rules in `shipped`.
 */
export function loadCoverage(installed: string, shipped: string, optional: boolean): Coverage {
  const problems: Coverage['problems'] = [];
  const notes: string[] = [];
  let mine = new Map<string, string>();
  if (optional && !existsSync(installed)) notes.push(`no rules installed (${installed} does not exist)`);
  else mine = rulesIn(installed, 'installed rules', problems);
  const theirs = rulesIn(shipped, 'shipped rules', problems);
  return {
    lookup(path) {
      const file = mine.get(path);
      if (file) return { file, where: 'installed' };
      const ship = theirs.get(path);
      return ship ? { file: ship, where: 'shipped' } : undefined;
    },
    problems,
    notes,
  };
}
