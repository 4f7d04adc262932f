/*
 * Reads a rules directory (elevation.d) safely.
 *
 * MUST guarantee:
 * - rules come only from root-owned files, not writable by group or other,
 *   in a root-owned directory not writable by group or other, every
 *   directory above it root-owned and not writable by group or other
 *   unless sticky (so no one but root can swap a component);
 * - owner and mode are checked on the open fd (fstat), never on a path;
 * - each component, and each file, is opened relative to the already
 *   checked directory fd and without following a symlink: what was checked
 *   is what is read;
 * - every problem is reported; the caller refuses the whole set on any.
 */
import { closeSync, constants, fstatSync, lstatSync, openSync, readdirSync, readSync, realpathSync, type Stats } from 'node:fs';
import { posix } from 'node:path';
import { RuleError, type ProgramRule, type RuleSet } from './model.js';
import { parseRuleFile } from './parse.js';

const { O_RDONLY, O_DIRECTORY, O_NOFOLLOW, O_NONBLOCK } = constants;
/** Node does not export it; libuv adds it anyway, say it for the reader. */
const O_CLOEXEC = 0o2000000;
const O_PATH = 0o10000000;
const S_ISVTX = 0o1000;
const WRITABLE_BY_OTHERS = 0o022;
/** Rule files are a few lines; this bounds what a mistake can make us read. */
const MAX_FILE_BYTES = 1 << 20;

const DIR_FLAGS = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
// O_NONBLOCK: opening a FIFO named x.conf must not hang the broker
const FILE_FLAGS = O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC;

const fail = (where: string, message: string): RuleError =>
  new RuleError(where, undefined, undefined, undefined, message);

const octal = (mode: number): string => (mode & 0o7777).toString(8).padStart(4, '0');

/**
 * openat(dirFd, name) without following a symlink at name. Node has no
 * openat; the fd's /proc link resolves to the very directory we checked.
 */
function openAt(dirFd: number, name: string, flags: number): number {
  return openSync(`/proc/self/fd/${dirFd}/${name}`, flags);
}

function openError(where: string, e: unknown, code: string | undefined, isFile: boolean): RuleError {
  if (code === 'ELOOP' && isFile) return fail(where, 'is a symbolic link; rule files must be regular files');
  if (code === 'ENOENT' && isFile) return fail(where, 'disappeared while the rules were read; load them again');
  if (code === 'ELOOP') return fail(where, `is a symbolic link; name the real directory${realHint(where)}`);
  if (code === 'ENOENT') return fail(where, 'does not exist; create it (owned by root, mode 0755) or name another directory');
  if (code === 'ENOTDIR') return fail(where, 'is not a directory');
  // Node's message names the /proc path, not the admin's: give the code alone
  return fail(where, `cannot be opened (${code ?? String(e)})`);
}

/** For messages only. */
function exists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

function realHint(where: string): string {
  try {
    return ` (${realpathSync(where)})`;
  } catch {
    return '';
  }
}

// ---- checks on fstat results ----------------------------------------------

function ownerProblem(st: Stats, where: string, what: string): RuleError | undefined {
  return st.uid === 0 ? undefined : fail(where, `is owned by uid ${st.uid}; ${what}`);
}

function modeProblem(st: Stats, where: string): RuleError | undefined {
  if ((st.mode & WRITABLE_BY_OTHERS) === 0) return undefined;
  const right = octal(st.mode & ~WRITABLE_BY_OTHERS);
  return fail(where, `is writable by group or other (mode ${octal(st.mode)}); make it ${right} or stricter`);
}

function checkAncestor(st: Stats, where: string): RuleError[] {
  const out = [ownerProblem(st, where, 'every directory above the rules must be owned by root')];
  // a sticky directory (/tmp) lets no one else rename or remove root's entries
  if ((st.mode & S_ISVTX) === 0) out.push(modeProblem(st, where));
  return out.filter((e) => e !== undefined);
}

function checkOwned(st: Stats, where: string): RuleError[] {
  return [ownerProblem(st, where, 'make root its owner'), modeProblem(st, where)].filter((e) => e !== undefined);
}

function fileKind(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a fifo';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  return 'not a plain file';
}

// ---- the directory ----------------------------------------------------------

/** For messages only: whether name in dirFd is a symlink, seen through an O_PATH fd. */
function isSymlinkAt(dirFd: number, name: string): boolean {
  let fd: number | undefined;
  try {
    fd = openAt(dirFd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    return fstatSync(fd).isSymbolicLink();
  } catch {
    return false;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** openAt, or the reason it failed as an error naming `where`. */
function tryOpenAt(dirFd: number, name: string, flags: number, where: string, errors: RuleError[]): number | undefined {
  try {
    return openAt(dirFd, name, flags);
  } catch (e) {
    // O_DIRECTORY|O_NOFOLLOW on a symlink fails with ENOTDIR: say what it is
    const code = isSymlinkAt(dirFd, name) ? 'ELOOP' : (e as NodeJS.ErrnoException).code;
    errors.push(openError(where, e, code, (flags & O_DIRECTORY) === 0));
    return undefined;
  }
}

/**
 * Opens dir one component at a time from "/", checking each directory on
 * its fd before opening the next one inside it. Returns the fd of dir, or
 * undefined when any check failed.
 */
function openRulesDir(dir: string, errors: RuleError[]): number | undefined {
  const parts = dir.split('/').filter(Boolean);
  let fd = openSync('/', DIR_FLAGS);
  let ok = true;
  for (let i = 0; ; i++) {
    const where = '/' + parts.slice(0, i).join('/');
    const last = i === parts.length;
    const problems = checkDir(fd, where, last);
    errors.push(...problems);
    ok &&= problems.length === 0;
    if (last) break;
    const next = tryOpenAt(fd, parts[i], DIR_FLAGS, posix.join(where, parts[i]), errors);
    closeSync(fd);
    if (next === undefined) return undefined;
    fd = next;
  }
  if (ok) return fd;
  closeSync(fd);
  return undefined;
}

function checkDir(fd: number, where: string, isRulesDir: boolean): RuleError[] {
  const st = fstatSync(fd);
  return isRulesDir ? checkOwned(st, where) : checkAncestor(st, where);
}

/** *.conf names, hidden files left out, in name order. */
function ruleFileNames(dirFd: number): string[] {
  return readdirSync(`/proc/self/fd/${dirFd}`)
    .filter((n) => n.endsWith('.conf') && !n.startsWith('.'))
    .sort();
}

/** A rule file's text, read from the fd whose owner and mode were checked. */
function readRuleFile(dirFd: number, name: string, where: string, errors: RuleError[]): string | undefined {
  const fd = tryOpenAt(dirFd, name, FILE_FLAGS, where, errors);
  if (fd === undefined) return undefined;
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) {
      errors.push(fail(where, `is ${fileKind(st)}; rule files must be regular files`));
      return undefined;
    }
    const problems = checkOwned(st, where);
    errors.push(...problems);
    return problems.length === 0 ? readText(fd, where, errors) : undefined;
  } finally {
    closeSync(fd);
  }
}

function readText(fd: number, where: string, errors: RuleError[]): string | undefined {
  const buf = Buffer.alloc(MAX_FILE_BYTES + 1);
  let n = 0;
  for (let got; n < buf.length && (got = readSync(fd, buf, n, buf.length - n, null)) > 0;) n += got;
  if (n > MAX_FILE_BYTES) {
    errors.push(fail(where, 'is larger than 1 MiB; a rule file is a few lines'));
    return undefined;
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(buf.subarray(0, n));
  } catch {
    errors.push(fail(where, 'is not valid UTF-8 text'));
    return undefined;
  }
}

/** What keeps two rules for one binary apart, or the key and message saying they are not. */
function conflict(first: ProgramRule, second: ProgramRule): [key: string, message: string] | undefined {
  const where = (key: string): string => `${first.file}:${first.keyLines?.[key] ?? first.at.line}`;
  const choose = 'keep one file for it, or name users and groups in each';
  if (second.users === '*') {
    return ['users', `users = * gives every user a rule for ${second.path}, which ${first.file}:${first.at.line} also has; ${choose}`];
  }
  if (first.users === '*') return ['users', `${where('users')} gives every user (users = *) a rule for ${second.path}; ${choose}`];
  const user = second.users.find((u) => (first.users as string[]).includes(u));
  if (user) return ['users', `${user} also has a rule for ${second.path} in ${where('users')}; merge the two, or name each user in one file only`];
  const group = second.groups.find((g) => first.groups.includes(g));
  if (group) return ['groups', `group ${group} also has a rule for ${second.path} in ${where('groups')}; merge the two, or name each group in one file only`];
  return undefined;
}

/**
 * Several files may name one binary, each a complete rule for its own
 * users and groups: a user or group named in two of them, or users = * in
 * one of several, is an error naming both files. A client in groups of two
 * of them gets the first in file name order (match.ts ruleFor): a warning.
 */
export function addProgram(program: ProgramRule, rules: RuleSet, found: Found): void {
  const others = rules.programs.get(program.path) ?? [];
  for (const first of others) {
    const c = conflict(first, program);
    if (!c) continue;
    const [key, message] = c;
    found.errors.push(new RuleError(program.file, program.keyLines?.[key] ?? program.at.line, program.at.section, key, message));
    return;
  }
  const grouped = others.find((o) => o.groups.length > 0);
  if (grouped && program.groups.length > 0) {
    found.warnings.push(new RuleError(program.file, program.keyLines?.groups ?? program.at.line, program.at.section, 'groups',
      `${grouped.file}:${grouped.keyLines?.groups ?? grouped.at.line} also gives groups a rule for ${program.path}; a user in groups of both gets the rule of the file first in name order (${grouped.file})`));
  }
  rules.programs.set(program.path, [...others, program]);
  rules.files.push(program.file);
}

export interface Found { errors: RuleError[]; warnings: RuleError[] }

function loadFile(dirFd: number, name: string, where: string, rules: RuleSet, found: Found): void {
  const text = readRuleFile(dirFd, name, where, found.errors);
  if (text === undefined) return;
  const { program, errors, warnings } = parseRuleFile(where, text);
  found.errors.push(...errors);
  found.warnings.push(...warnings);
  if (program) addProgram(program, rules, found);
}

/**
 * Loads every *.conf file of dir. Errors name the file (and line) and say
 * what would be right; with any error, the caller must not use the rules
 * (rules holds what did load, for `check` to report on). Warnings are
 * for the admin only: a rule that is valid but probably not what was meant.
 */
export function loadRules(dir: string): { rules: RuleSet; errors: RuleError[]; warnings: RuleError[] } {
  const abs = posix.resolve(dir);
  const rules: RuleSet = { dir: abs, files: [], programs: new Map() };
  const found: Found = { errors: [], warnings: [] };
  const fd = openRulesDir(abs, found.errors);
  if (fd === undefined) return { rules, ...found };
  try {
    for (const name of ruleFileNames(fd)) loadFile(fd, name, posix.join(abs, name), rules, found);
  } finally {
    closeSync(fd);
  }
  return { rules, ...found };
}

/**
 * One rule file anywhere (stx-elevate check FILE): read from its fd with
 * the same checks as in a rules directory (regular file, owned by root, not
 * writable by group or other), and parsed. Its directory is not judged:
 * the file is checked as it would be once installed.
 */
export function loadRuleFile(path: string): { program?: ProgramRule; errors: RuleError[]; warnings: RuleError[] } {
  const abs = posix.resolve(path);
  const found: Found = { errors: [], warnings: [] };
  let dirFd: number;
  try {
    dirFd = openSync(posix.dirname(abs), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return { errors: [fail(abs, code === 'ENOENT' ? 'does not exist' : `cannot be opened (${code ?? String(e)})`)], warnings: [] };
  }
  try {
    if (!exists(abs)) return { errors: [fail(abs, 'does not exist')], warnings: [] };
    const text = readRuleFile(dirFd, posix.basename(abs), abs, found.errors);
    if (text === undefined) return found;
    return parseRuleFile(abs, text);
  } finally {
    closeSync(dirFd);
  }
}
