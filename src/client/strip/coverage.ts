/*
 * Which rule covers a binary: strip removes a privilege only where the
 * broker can give the program what it needs instead. A rule covers PATH
 * when its [program] path is PATH's canonical path, among the installed
 * rules (as the broker loads them) or, failing that, the rules this
 * install ships, which strip then installs.
 *
 * Stricter than scan's rule-coverage.ts, which reports what it can: strip
 * is about to take a privilege away, so installed rules with any problem
 * refuse it (the broker would refuse to load them), and so does a rule
 * whose sha256 pin the binary does not match (the broker would refuse to
 * run it).
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { loadRules } from '../../broker/rules/load.js';
import { Refusal } from './refusal.js';

export interface Coverage {
  /** The rule file that covers the binary once strip is done. */
  file: string;
  /** When no installed rule covers it: the shipped file to install as `file`. */
  install?: { from: string; text: Buffer; sha256: string };
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** A pinned rule that does not match the binary would leave users with nothing: refuse. */
function checkPin(path: string, binarySha256: string, rules: { file: string; sha256?: string }[]): void {
  const stale = rules.find((r) => r.sha256 !== undefined && r.sha256 !== binarySha256);
  if (stale) {
    throw new Refusal(`${path}: the rule ${stale.file} pins sha256 ${stale.sha256}, but ${path} hashes to ${binarySha256}: `
      + 'the broker would refuse to run it, so stripping it would leave users without it; check the binary and update the pin first');
  }
}

/** The covering rule, or Refusal naming the missing rule, where rules live and how to get one. */
export function findCoverage(path: string, binarySha256: string, rulesDir: string, shippedDir: string): Coverage {
  const installed = loadRules(rulesDir);
  if (installed.errors.length > 0) {
    throw new Refusal(`the rules in ${installed.rules.dir} are invalid, so strip cannot rely on them:\n  `
      + `${installed.errors.map(String).join('\n  ')}\n(stx-elevate check --rules ${installed.rules.dir} shows every problem); fix them and strip again`);
  }
  const covering = installed.rules.programs.get(path);
  if (covering) {
    checkPin(path, binarySha256, covering);
    return { file: covering[0].file };
  }

  const shipped = existsSync(shippedDir) ? loadRules(shippedDir) : undefined;
  const candidates = shipped && shipped.errors.length === 0 ? shipped.rules.programs.get(path) : undefined;
  if (candidates) {
    checkPin(path, binarySha256, candidates);
    const from = candidates[0].file;
    const text = readFileSync(from);
    const dest = join(installed.rules.dir, basename(from));
    if (existsSync(dest)) {
      throw new Refusal(`${path}: the shipped rule ${from} would be installed as ${dest}, but a different file of that name is there; `
        + `compare the two, then merge them or move ${dest} away, and strip again`);
    }
    return { file: dest, install: { from, text, sha256: sha256(text) } };
  }

  const shippedNote = !shipped ? `${shippedDir} (shipped: missing)`
    : shipped.errors.length > 0 ? `${shippedDir} (shipped: not usable, ${shipped.errors.map(String).join('; ')})`
      : `${shippedDir} (shipped)`;
  throw new Refusal(`${path}: no rule covers it: no file in ${installed.rules.dir} (installed) or ${shippedNote} `
    + `has a [program] with path = ${path}. Without one, the broker cannot give the program what its privilege gave it. `
    + `Learn one from a run of the program (stx-elevate learn -u USER -o ${installed.rules.dir}/NAME.conf -- ${path} ARGS...) `
    + `or write one (see elevation.d(5)), check it with stx-elevate check, and strip again`);
}
