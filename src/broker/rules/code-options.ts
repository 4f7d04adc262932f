/*
 * Where a rule's args let the user choose the code an interpreter or a
 * plugin loader runs: an option that takes code (or a module, or where
 * modules come from) followed by a wildcard, or a wildcard where the
 * program still reads its options or its script.
 *
 * MUST guarantee:
 * - the table holds only options each program's manual documents as taking
 *   code, a module or a module directory (checked against python3(1),
 *   perlrun(1), ruby(1), node(1), lua(1), php(1), bash(1), dash(1),
 *   mawk(1), gawk(1), nginx's and httpd's command-line parameters,
 *   openssl(1ssl), java(1));
 * - a pattern without * or ... never draws a warning (learn writes such
 *   patterns, and they pin every word);
 * - it is advice for `check`, never a refusal: options it does not know
 *   can still hide code (the manual page says so).
 */
import type { ArgsPattern } from './model.js';

/** What an option's value is; the warning says it. */
type Takes = 'code' | 'a script' | 'a module' | 'a module directory' | 'a configuration';

interface Family {
  /** The binary's file name. */
  names: RegExp;
  /** Options whose value is code, or names the code the program loads. */
  options: ReadonlyMap<string, Takes>;
  /** Options whose value is the program itself and after which the program reads no option. */
  ends?: ReadonlySet<string>;
  /** Options whose value is the program, so no operand is taken as the script (awk -f). */
  program?: ReadonlySet<string>;
  /** The first operand is the code (a script, awk's program text), or where options end (java's main class); nginx has none. */
  operand?: string;
  /** Options that take a value but no code (so that value is not read as the script). */
  valued?: ReadonlySet<string>;
}

const FAMILIES: readonly Family[] = [
  {
    // python3(1): -c command and -m module-name end the option list ("following
    // options are passed as arguments"); -m runs any installed module (pdb, code) as main.
    names: /^(?:python|pypy)[0-9.]*(?:-[a-z0-9.]+)?$/,
    options: new Map([['-c', 'code'], ['-m', 'a module']]),
    ends: new Set(['-c', '-m']),
    operand: 'script',
    valued: new Set(['-W', '-X', '--check-hash-based-pycs']),
  },
  {
    // perlrun(1): -e/-E commandline (several allowed, options go on after them);
    // -I directory puts the user's modules before the script's own.
    names: /^perl[0-9.]*$/,
    options: new Map([['-e', 'code'], ['-E', 'code'], ['-I', 'a module directory']]),
    program: new Set(['-e', '-E']),
    operand: 'script',
  },
  {
    // ruby(1): -e command (several allowed), -r library (required first), -I directory (load path).
    names: /^j?ruby[0-9.]*$/,
    options: new Map([['-e', 'code'], ['-r', 'a module'], ['-I', 'a module directory']]),
    program: new Set(['-e']),
    operand: 'script',
    valued: new Set(['-C', '-F', '-X']),
  },
  {
    // node(1): -e/--eval and -p/--print take the script as a string (a later -e
    // replaces it, so options go on); -r/--require, --import and --loader preload a module.
    names: /^(?:node|nodejs)$/,
    options: new Map([
      ['-e', 'code'], ['--eval', 'code'], ['-p', 'code'], ['--print', 'code'], ['-r', 'a module'], ['--require', 'a module'],
      ['--import', 'a module'], ['--loader', 'a module'], ['--experimental-loader', 'a module'],
    ]),
    program: new Set(['-e', '--eval', '-p', '--print']),
    operand: 'script',
  },
  {
    // lua(1): -e stat runs a statement, -l name requires a library; both before the script.
    names: /^(?:lua|luajit)[0-9.]*$/,
    options: new Map([['-e', 'code'], ['-l', 'a module']]),
    program: new Set(['-e']),
    operand: 'script',
  },
  {
    // php(1): -r code, -B/-R/-E code, -f/-F file; -d foo=bar sets any ini entry
    // (auto_prepend_file), -c names the php.ini, -z loads a Zend extension.
    names: /^php[0-9.]*$/,
    options: new Map([
      ['-r', 'code'], ['-B', 'code'], ['-R', 'code'], ['-E', 'code'], ['-f', 'a script'], ['-F', 'a script'],
      ['-d', 'a configuration'], ['-c', 'a configuration'], ['-z', 'a module'],
    ]),
    ends: new Set(['-r', '-f']),
    program: new Set(['-R', '-F']),
    operand: 'script',
  },
  {
    // bash(1), dash(1): -c reads commands from the first operand; the rest are $0, $1, ...
    names: /^(?:(?:ba|da|z|k|mk|c|tc|a|y)?sh|ksh93)$/,
    options: new Map([['-c', 'code']]),
    ends: new Set(['-c']),
    operand: 'script',
    valued: new Set(['-o', '-O', '+o', '+O']),
  },
  {
    // mawk(1): -f file (several allowed) replaces the program text, the first operand.
    names: /^(?:mawk|nawk|awk)$/,
    options: new Map([['-f', 'a script']]),
    program: new Set(['-f']),
    operand: 'program text',
    valued: new Set(['-F', '-v', '-W']),
  },
  {
    // gawk(1): as awk, and -e/--source program-text, -E/--exec file, -i/--include
    // a source library, -l/--load a shared-library extension.
    names: /^gawk$/,
    options: new Map([
      ['-f', 'a script'], ['--file', 'a script'], ['-e', 'code'], ['--source', 'code'], ['-E', 'a script'], ['--exec', 'a script'],
      ['-i', 'a module'], ['--include', 'a module'], ['-l', 'a module'], ['--load', 'a module'],
    ]),
    ends: new Set(['-E', '--exec']),
    program: new Set(['-f', '--file', '-e', '--source']),
    operand: 'program text',
    valued: new Set(['-F', '--field-separator', '-v', '--assign']),
  },
  {
    // nginx: -g directives (load_module), -c file (a configuration can load modules).
    names: /^nginx$/,
    options: new Map([['-g', 'a configuration'], ['-c', 'a configuration']]),
    valued: new Set(['-p', '-e', '-s']),
  },
  {
    // httpd(8): -C/-c directive (LoadModule) before/after the configuration, -f config.
    names: /^(?:apache2|httpd)$/,
    options: new Map([['-C', 'a configuration'], ['-c', 'a configuration'], ['-f', 'a configuration']]),
    valued: new Set(['-d', '-D', '-e', '-E', '-k']),
  },
  {
    // openssl(1ssl): -engine id and -provider name load a shared object, -provider-path says
    // from where; its first word is a command, and options may follow anywhere.
    names: /^openssl$/,
    options: new Map([['-engine', 'a module'], ['-provider', 'a module'], ['-provider-path', 'a module directory']]),
  },
  {
    // java(1): -cp/-classpath/--class-path and -p/--module-path say where classes
    // come from; -jar names the application itself; options end at the main class.
    names: /^java$/,
    options: new Map([
      ['-cp', 'a module directory'], ['-classpath', 'a module directory'], ['--class-path', 'a module directory'],
      ['-p', 'a module directory'], ['--module-path', 'a module directory'], ['-jar', 'a script'],
    ]),
    ends: new Set(['-jar']),
    operand: 'main class',
  },
];

/** Where a pattern leaves the code to the user: what is wrong, and what would be right. */
export interface CodeLeftOpen {
  problem: string;
  fix: string;
}

type Word = string | { wild: '*' | '...' };

function doing(option: string, takes: Takes): string {
  switch (takes) {
    case 'code': return `runs the code ${option} gives it`;
    case 'a script': return `runs the file ${option} names`;
    case 'a module': return `loads the module ${option} names`;
    case 'a module directory': return `loads code from where ${option} says`;
    case 'a configuration': return `reads the configuration ${option} gives it, which can load modules`;
  }
}

/**
 * The first place where `args` lets the user choose the code the program
 * `name` (a file name) runs, or undefined. Reads the words as the program
 * would: options and their values up to the first operand (the script,
 * awk's program text, java's main class), or to an option that ends them
 * (python -c, sh -c, java -jar), or to --.
 */
export function codeLeftOpen(name: string, args: ArgsPattern): CodeLeftOpen | undefined {
  const f = FAMILIES.find((x) => x.names.test(name));
  if (!f) return undefined;
  const words: Word[] = args.words.map((w) => w ?? { wild: '*' });
  if (args.rest) words.push({ wild: '...' });
  const script = f.operand === 'script' || f.operand === 'program text';
  const pinCode = script ? 'pin the code: put it in a root-owned script and name the script'
    : 'pin the code: name a root-owned file, or write the value itself';
  let given: string | undefined; // the option that gave the program (perl -e, awk -f): options go on after it
  for (let i = 0; i < words.length; i++) {
    const w = words[i];
    if (typeof w !== 'string') {
      // A * right after an option the table does not know is read as that option's value.
      const prev = words[i - 1];
      if (w.wild === '*' && typeof prev === 'string' && /^-./.test(prev) && !f.options.has(prev)) continue;
      const where = given ? `reads options after ${given} and its code`
        : f.operand ? `reads options up to its ${f.operand}` : 'reads options in all its arguments';
      const own = f.operand && !given ? [`a ${f.operand} of their own`] : [];
      const some = [...[...f.options.keys()].slice(0, 3), ...own];
      const codeOptions = some.length === 1 ? some[0] : `${some.slice(0, -1).join(', ')} or ${some[some.length - 1]}`;
      return {
        problem: `${name} ${where}, and args = ${args.text} has ${w.wild} there, where the user can add ${codeOptions}`,
        fix: f.operand ? `${pinCode} before any * or ... (or end the options with -- before them)`
          : 'write out every option (a wildcard among them can hold one that loads code)',
      };
    }
    if (w === '--') {
      const next = words[i + 1];
      if (given || !f.operand || next === undefined || typeof next === 'string') return undefined;
      return { problem: `${name} takes its ${f.operand} after --, and args = ${args.text} leaves it to the user`, fix: pinCode };
    }
    const takes = f.options.get(w);
    if (takes !== undefined) {
      const value = words[i + 1];
      if (value === undefined) return undefined; // no value: the program refuses to start
      if (typeof value !== 'string') {
        const at = args.text === `${w} ${value.wild}` ? '' : ` (${w} ${value.wild})`;
        return { problem: `${name} ${doing(w, takes)}, and args = ${args.text} leaves it to the user${at}`, fix: pinCode };
      }
      i++;
      if (f.ends?.has(w)) return undefined;
      if (f.program?.has(w)) given = w;
      continue;
    }
    if (f.valued?.has(w)) {
      i++;
      continue;
    }
    if (/^-./.test(w)) continue;
    // the first operand: past it, the words are the program's own arguments
    if (f.operand) return undefined;
  }
  return undefined;
}
