/*
 * [program]: which binary, who may run it, and how: its content (sha256),
 * its arguments (args), the environment it gets (keep-env).
 *
 * MUST guarantee:
 * - path is absolute and canonical (the broker opens exactly that path,
 *   component by component, and never follows a symlink);
 * - user and group names are valid names, and "*" stands alone;
 * - sha256 is 64 hexadecimal digits, kept in lowercase;
 * - args is exact: every word is matched as written against one argument,
 *   `*` is any one argument, `...` (last only) any further arguments; a
 *   value ini would read differently from what it looks like (quotes) is
 *   an error, never a guess;
 * - keep-env never names a variable the broker forbids (LD_*, search
 *   paths of interpreters, ...) or sets itself (environment.ts);
 * - a rule naming an interpreter or plugin loader without an argument pin,
 *   or whose args leave a code-taking option or the script to a wildcard
 *   (code-options.ts), draws a warning: it grants its calls to whatever
 *   code the user runs.
 */
import { posix } from 'node:path';
import { forbiddenReason, keptByDefault } from '../environment.js';
import { codeLeftOpen } from './code-options.js';
import type { ArgsPattern, ProgramRule } from './model.js';
import {
  BAD, type Keys, Problem, type Read, type Report, type Section, at, checkKeys, lineOf, missing, parseAllowDeny, q,
  read, splitList,
} from './values.js';

export const PROGRAM_KEYS: Keys = {
  path: '/absolute/path/of/the/program',
  users: '* or a list of user names',
  groups: 'a list of group names',
  'sandboxed-clients': 'allow or deny',
  sha256: 'the 64 hexadecimal digits sha256sum prints for the binary',
  args: 'the arguments as words ("*" for any one, "..." last for any more), or "" for none',
  'keep-env': 'a list of environment variable names',
};

// ---- path, users, groups ------------------------------------------------------

/** POSIX portable user and group names, as useradd accepts them. */
const NAME = /^[a-z_][a-z0-9_-]*\$?$/;
const NAME_RULE = 'use lowercase letters, digits, "_" and "-" (not first), at most 32 characters';

function parsePath(v: string): string | Problem {
  if (!v.startsWith('/')) return new Problem(`${q(v)} is not absolute; use the full path, e.g. /usr/bin/ping`);
  const parts = v.split('/').slice(1);
  if (parts.every((p) => p !== '' && p !== '.' && p !== '..')) return v;
  const canonical = posix.normalize(v).replace(/\/+$/, '');
  const hint = canonical === '' ? "name the program's file" : `write ${q(canonical)}`;
  return new Problem(`${q(v)} is not canonical (no ".", "..", "//" or trailing "/"); ${hint}`);
}

function badNames(items: string[], what: string): Problem | undefined {
  const bad = items.filter((n) => !NAME.test(n) || n.length > 32);
  if (bad.length === 0) return undefined;
  return new Problem(...bad.map((n) => `${q(n)} is not a valid ${what} name; ${NAME_RULE}`));
}

function parseUsers(v: string): '*' | string[] | Problem {
  const items = splitList(v);
  if (items instanceof Problem) return items;
  if (items.includes('*')) {
    if (items.length === 1) return '*';
    return new Problem('"*" must stand alone; write users = * for every user, or list names without it');
  }
  return badNames(items, 'user') ?? items;
}

function parseGroups(v: string): string[] | Problem {
  const items = splitList(v);
  if (items instanceof Problem) return items;
  if (items.includes('*')) return new Problem('"*" is not a group name; write users = * for every user');
  return badNames(items, 'group') ?? items;
}

// ---- sha256 ----------------------------------------------------------------------

function parseSha256(v: string): string | Problem {
  if (/^[0-9a-fA-F]{64}$/.test(v)) return v.toLowerCase();
  // sha256sum prints "HEX  FILE"; some tools write "sha256:HEX"
  const digest = /^(?:sha256:)?([0-9a-fA-F]{64})(?:\s+\S.*)?$/.exec(v);
  if (digest) return new Problem(`write the 64 hexadecimal digits alone: sha256 = ${digest[1].toLowerCase()}`);
  const digits = v.replace(/[^0-9a-fA-F]/g, '').length;
  if (/^[0-9a-fA-F]+$/.test(v)) {
    return new Problem(`${q(v)} has ${digits} hexadecimal digits; a sha256 digest has 64 (sha256sum PATH prints it)`);
  }
  return new Problem(`${q(v)} is not a sha256 digest; use the 64 hexadecimal digits sha256sum PATH prints`);
}

// ---- args ----------------------------------------------------------------------------

/** What `args = ""` stands for: no argument at all (sudo's "" too). */
const NO_ARGUMENTS = '""';
const ARGS_HINT = 'words are separated by white space and matched as written; write args = "" alone on its line for no arguments, and * for an argument that holds white space or quotes';

function parseArgs(v: string): ArgsPattern | Problem {
  const words = v.split(/[ \t]+/);
  const problems: string[] = [];
  const out: Array<string | null> = [];
  let rest = false;
  const quoted = words.filter((w) => /["']/.test(w));
  if (quoted.length > 0) problems.push(`quotes do not group words in args, found ${quoted.join(' ')}; ${ARGS_HINT}`);
  words.forEach((w, i) => {
    if (quoted.includes(w)) return;
    if (w === '...' && i !== words.length - 1) {
      problems.push('"..." stands for all further arguments, so it can only be the last word; use * for any one argument');
    } else if (w === '...') rest = true;
    else if (w === '*') out.push(null);
    // \* and \... are the words * and ... themselves
    else out.push(w === '\\*' || w === '\\...' ? w.slice(1) : w);
  });
  if (problems.length > 0) return new Problem(...problems);
  return { words: out, rest, text: v };
}

/**
 * args = "" is no argument at all. ini reads "" (and "a b" or 'a b')
 * without its quotes, which would turn one quoted argument into several
 * words: such a value is refused here, from the line as written.
 */
function readArgs(s: Section, r: Report): Read<ArgsPattern> {
  const entry = s.entries.get('args');
  if (entry && !entry.unreadable) {
    const written = entry.text.slice(entry.text.indexOf('=') + 1).trim();
    if (written === NO_ARGUMENTS) return { words: [], rest: false, text: NO_ARGUMENTS };
    if (/^["']/.test(written)) {
      r.add(entry.line, s.name, 'args', `quotes do not group words in args, found ${written}; ${ARGS_HINT}`);
      return BAD;
    }
  }
  return read(s, PROGRAM_KEYS, 'args', r, parseArgs);
}

// ---- keep-env ------------------------------------------------------------------------------

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

function parseKeepEnv(v: string): string[] | Problem {
  const items = splitList(v);
  if (items instanceof Problem) return items;
  const problems: string[] = [];
  for (const name of items) {
    const why = ENV_NAME.test(name) && name.length <= 128 ? forbiddenReason(name) : undefined;
    if (!ENV_NAME.test(name) || name.length > 128) {
      problems.push(`${q(name)} is not a variable name; use letters, digits and "_", not starting with a digit, at most 128 characters`);
    } else if (why) {
      problems.push(`${name} ${why}: it is never kept; remove it`);
    }
  }
  return problems.length > 0 ? new Problem(...problems) : items;
}

function warnKeptAnyway(s: Section, names: string[], r: Report): void {
  const kept = names.filter(keptByDefault);
  if (kept.length === 0) return;
  r.warn(lineOf(s, 'keep-env'), s.name, 'keep-env',
    `${kept.join(', ')} ${kept.length === 1 ? 'is' : 'are'} kept anyway (when the value is not a path); remove ${kept.length === 1 ? 'it' : 'them'} from keep-env`);
}

// ---- interpreters and plugin loaders ---------------------------------------------------------

/**
 * Programs that run whatever code they are given, in their own process
 * (so with its grants): in their arguments, or read from standard input
 * when they have none. Matched on the binary's file name.
 */
const INTERPRETER = new RegExp('^(?:'
  + '(?:python|pypy|perl|ruby|jruby|lua|luajit|php|tclsh|wish|guile)[0-9.]*(?:-[a-z0-9.]+)?'
  + '|(?:ba|da|z|k|mk|c|tc|a|y)?sh|ksh93|fish|busybox|node|nodejs|deno|bun|g?awk|mawk|nawk|expect'
  + '|Rscript|R|julia|pwsh|jshell|gdb|sbcl|racket|erl|escript|ocaml'
  + ')$');

/**
 * Programs that load modules or plugins their command line names (nginx
 * -g "load_module ...", java -cp, httpd -C "LoadModule ...", openssl
 * -engine): with their arguments pinned (even to none) they read only
 * root's configuration.
 */
const LOADER = /^(?:nginx|apache2|httpd|lighttpd|haproxy|java|uwsgi|openssl|php-fpm[0-9.]*|php-cgi[0-9.]*)$/;

/** An interpreter or plugin loader (by file name), whose rule should pin its arguments. */
export function runsCodeItIsGiven(path: string): boolean {
  const name = posix.basename(path);
  return INTERPRETER.test(name) || LOADER.test(name);
}

/** An interpreter (by file name): with no arguments it runs the code on its standard input. */
export function isInterpreter(path: string): boolean {
  return INTERPRETER.test(posix.basename(path));
}

function warnUnpinned(s: Section, path: string, args: ArgsPattern | undefined, r: Report): void {
  const name = posix.basename(path);
  const interpreter = INTERPRETER.test(name);
  if (!interpreter && !LOADER.test(name)) return;
  const what = interpreter ? `${name} is an interpreter` : `${name} loads the modules its command line names`;
  const why = 'so this rule grants its calls to whatever code the user makes it run';
  if (args === undefined) {
    r.warn(lineOf(s, 'path'), s.name, 'path',
      `${what} and args is not set, ${why}; pin what it runs with args (the script or configuration, and the options around it), see elevation.d(5)`);
  } else if (interpreter && !args.words.some((w) => w !== null)) {
    r.warn(lineOf(s, 'args'), s.name, 'args',
      `${what} and args = ${args.text} names none of its arguments (with none it reads code from standard input), ${why}; pin the script it runs`);
  } else {
    const open = codeLeftOpen(name, args);
    if (open) r.warn(lineOf(s, 'args'), s.name, 'args', `${open.problem}, so this rule grants its calls to any code the user writes there; ${open.fix}`);
  }
}

// ---- the section ----------------------------------------------------------------------------------

export type Program = Omit<ProgramRule, 'calls'>;

export function buildProgram(s: Section, file: string, r: Report): Program | undefined {
  checkKeys(s, PROGRAM_KEYS, r);
  const path = read(s, PROGRAM_KEYS, 'path', r, parsePath) ?? missing(s, PROGRAM_KEYS, 'path', r);
  const users = read(s, PROGRAM_KEYS, 'users', r, parseUsers);
  const groups = read(s, PROGRAM_KEYS, 'groups', r, parseGroups);
  const sandboxed = read(s, PROGRAM_KEYS, 'sandboxed-clients', r, parseAllowDeny);
  const sha256 = read(s, PROGRAM_KEYS, 'sha256', r, parseSha256);
  const args = readArgs(s, r);
  const keepEnv = read(s, PROGRAM_KEYS, 'keep-env', r, parseKeepEnv);
  if (users === undefined && groups === undefined && !s.repeat) {
    r.add(s.line, s.name, undefined,
      'names no users or groups; add users = * (every user), users = a list of names, or groups = a list of groups');
  }
  if (path !== BAD && args !== BAD && !s.repeat) warnUnpinned(s, path, args, r);
  if (keepEnv !== BAD && keepEnv !== undefined) warnKeptAnyway(s, keepEnv, r);
  if (path === BAD || users === BAD || groups === BAD || sandboxed === BAD || sha256 === BAD || args === BAD
    || keepEnv === BAD) {
    return undefined;
  }
  if (users === undefined && groups === undefined) return undefined;
  return {
    at: at(file, s), file, path, users: users ?? [], groups: groups ?? [], sandboxedClients: sandboxed ?? false,
    keyLines: Object.fromEntries([...s.entries.values()].map((e) => [e.key, e.line])),
    // only what is set, so a rule without these keys is the model it always was
    ...(sha256 !== undefined && { sha256 }),
    ...(args !== undefined && { args }),
    ...(keepEnv !== undefined && { keepEnv: keepEnv.filter((n) => !keptByDefault(n)) }),
  };
}
