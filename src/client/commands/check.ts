/*
 * stx-elevate check [--rules DIR] [FILE...]: validate rules as the broker
 * would load them, like visudo -c, and say what each rule lets whom do as
 * root. Runs as any user who can read the files (root, typically).
 *
 * Without FILE: the whole directory, every problem the broker would refuse
 * it for. With FILEs: those files as if installed into DIR (each replacing
 * the file of its name there): their own problems, and their conflicts
 * with DIR's other rules.
 *
 * Beyond what the broker checks at load, it opens each rule's binary as
 * the broker does at launch (binary.ts: missing, not root-owned, writable
 * by others, reached through a symlink, not executable) and checks a
 * sha256 pin against the binary's content. Every problem is printed, not
 * only the first; exit 0 valid (warnings allowed), 1 invalid.
 */
import { createHash } from 'node:crypto';
import { readSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import yargs from 'yargs';
import { DEFAULT_RULES } from '../../shared/defaults.js';
import { closeQuietly } from '../../shared/native/libc.js';
import { BinaryError, openVerifiedBinary } from '../../broker/binary.js';
import { describeProgram } from '../../broker/rules/describe.js';
import { type Found, addProgram, loadRuleFile, loadRules } from '../../broker/rules/load.js';
import { type ProgramRule, RuleError, type RuleSet } from '../../broker/rules/model.js';
import { CHECK_USAGE } from './usage.js';


interface Outcome extends Found {
  rules: RuleSet;
  /** How many rule files were read. */
  files: number;
}

/** The whole directory, as the broker loads it. */
function checkDir(dir: string): Outcome {
  const { rules, errors, warnings } = loadRules(dir);
  const files = new Set([...errors, ...warnings].map((e) => e.file).filter((f) => f.startsWith(`${rules.dir}/`)));
  for (const f of rules.files) files.add(f);
  return { rules, errors, warnings, files: files.size };
}

/** FILEs as if installed into dir: their own problems and their conflicts with dir's other rules. */
function checkFiles(dir: string, paths: string[]): Outcome {
  const installed = loadRules(dir).rules;
  const replaced = new Set(paths.map((p) => basename(p)));
  const rules: RuleSet = { dir: installed.dir, files: [], programs: new Map() };
  for (const [path, list] of installed.programs) {
    const kept = list.filter((p) => !replaced.has(basename(p.file)));
    if (kept.length > 0) rules.programs.set(path, kept);
  }
  const found: Found = { errors: [], warnings: [] };
  const mine: RuleSet = { dir: installed.dir, files: [], programs: new Map() };
  for (const path of paths.map((p) => resolve(p))) {
    const { program, errors, warnings } = loadRuleFile(path);
    found.errors.push(...errors);
    found.warnings.push(...warnings);
    if (!program) continue;
    const before = found.errors.length;
    addProgram(program, rules, found);
    if (found.errors.length === before) mine.programs.set(program.path, [...(mine.programs.get(program.path) ?? []), program]);
  }
  return { rules: mine, ...found, files: paths.length };
}

// ---- the binaries ------------------------------------------------------------

const err = (rule: ProgramRule, key: string, message: string): RuleError =>
  new RuleError(rule.file, rule.keyLines?.[key] ?? rule.at.line, rule.at.section, key, message);

function sha256(fd: number): string {
  const hash = createHash('sha256');
  const buf = Buffer.allocUnsafe(1 << 20);
  for (let n, at = 0; (n = readSync(fd, buf, 0, buf.length, at)) > 0; at += n) hash.update(buf.subarray(0, n));
  return hash.digest('hex');
}

/** The broker's own checks of the binary (binary.ts), and the pin. */
function checkBinary(rule: ProgramRule): RuleError | undefined {
  let fd = -1;
  try {
    fd = openVerifiedBinary(rule.path).fd;
    if (!rule.sha256) return undefined;
    const digest = sha256(fd);
    if (digest === rule.sha256) return undefined;
    return err(rule, 'sha256', `${rule.path} hashes to ${digest}, not to the pin: the binary changed since the rule was written; `
      + 'the broker refuses to run it (check the new binary, then update the pin)');
  } catch (e) {
    if (!(e instanceof BinaryError)) throw e;
    return err(rule, 'path', `${e.message}; the broker refuses to run it`);
  } finally {
    closeQuietly(fd);
  }
}

// ---- the report --------------------------------------------------------------------

const byPlace = (a: RuleError, b: RuleError): number =>
  a.file < b.file ? -1 : a.file > b.file ? 1 : (a.line ?? 0) - (b.line ?? 0);

const count = (n: number, what: string): string => `${n} ${what}${n === 1 ? '' : 's'}`;

/** Checks, prints the report with `print`, and returns the exit status. */
export function check(dir: string, files: string[], print: (line: string) => void): number {
  const outcome = files.length > 0 ? checkFiles(dir, files) : checkDir(dir);
  const rules = [...outcome.rules.programs.values()].flat();
  const errors = [...outcome.errors, ...rules.map(checkBinary).filter((e) => e !== undefined)];
  const lines = [
    ...errors.map((e) => ({ e, text: String(e) })),
    ...outcome.warnings.map((e) => ({ e, text: `warning: ${e}` })),
  ].sort((a, b) => byPlace(a.e, b.e));
  for (const l of lines) print(l.text);
  const byPath = (a: ProgramRule, b: ProgramRule): number =>
    a.path < b.path ? -1 : a.path > b.path ? 1 : a.file < b.file ? -1 : a.file > b.file ? 1 : 0;
  for (const rule of rules.sort(byPath)) print(describeProgram(rule));
  const what = files.length > 0 ? count(files.length, 'file') : `${outcome.rules.dir} (${count(outcome.files, 'file')})`;
  const warned = outcome.warnings.length > 0 ? `, ${count(outcome.warnings.length, 'warning')}` : '';
  if (errors.length > 0) {
    print(`${what}: invalid: ${count(errors.length, 'error')}${warned}`);
    return 1;
  }
  print(`${what}: valid: ${count(rules.length, 'rule')}${warned}`);
  return 0;
}

/** The command line after `check`; the exit status. Usage errors exit 2. */
export function checkCommand(argv: string[]): number {
  const parsed = yargs(argv)
    .scriptName('stx-elevate check')
    .usage(`${CHECK_USAGE}\n\nValidate the rules (every error and warning), check each rule's binary as the broker would, `
      + 'and print what each rule lets whom do as root. Exit 0 valid, 1 invalid.\n'
      + 'With FILEs: those files, as if installed into DIR (replacing the files of their names there).')
    .option('rules', { type: 'string', default: DEFAULT_RULES, describe: 'rules directory' })
    .parserConfiguration({ 'parse-positional-numbers': false })
    .strictOptions()
    .version(false)
    .help()
    .fail((msg) => {
      process.stderr.write(`stx-elevate check: ${msg}\nusage: ${CHECK_USAGE}\n`);
      process.exit(2);
    })
    .parseSync();
  return check(parsed.rules, parsed._.map(String), (line) => process.stdout.write(`${line}\n`));
}
