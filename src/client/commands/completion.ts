/*
 * stx-elevate completion: print yargs's shell completion script (bash; zsh
 * or fish when $SHELL names them). At each TAB the script runs
 * `stx-elevate --get-yargs-completions WORD...`, answered by `complete`
 * below: before a program, the command names, the programs on PATH and the
 * global options; after a command, its options; after a program's name
 * nothing, so that the shell completes file names, as for the program's own
 * arguments.
 */
import { accessSync, constants as fsConstants, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import yargs from 'yargs';
import { COMPLETION_USAGE } from './usage.js';

/** Each command's options as its --help lists them ('' : before any command); test/client-cli.test.ts compares. */
export const COMMAND_OPTIONS: Record<string, readonly string[]> = {
  '': ['--socket', '--version', '--help'],
  check: ['--rules', '--help'],
  list: ['--json', '--help'],
  scan: ['--rules', '--json', '--help'],
  strip: ['--dry-run', '--rules', '--state-dir', '--shim-dir', '--no-shim', '--reapply', '--help'],
  restore: ['--dry-run', '--state-dir', '--help'],
  learn: ['--user', '--output', '--merge', '--force', '--ask', '--timeout', '--exec-group', '--help'],
  watch: ['--json', '--user', '--program', '--help'],
  completion: ['--help'],
};

/** Options whose value is the next word. */
const TAKES_VALUE = new Set([
  '--socket', '--rules', '--state-dir', '--shim-dir', '-u', '--user', '-o', '--output', '--merge', '--timeout', '--exec-group',
  '--program',
]);

/**
 * The candidates for the last word of `words` (the command line as the
 * shell split it, the command's own name first); the shell keeps those
 * that start with what was typed. `commands`: the commands there are.
 */
export function complete(words: readonly string[], commands: readonly string[]): string[] {
  // bash and zsh pass the command's name first, fish does not.
  const line = words.length > 0 && /(^|\/)stx-elevate$/.test(words[0]) ? words.slice(1) : [...words];
  const current = line.pop() ?? '';
  let command = '';
  for (let i = 0; i < line.length; i++) {
    const w = line[i];
    if (TAKES_VALUE.has(w)) i++;
    else if (w === '--') return []; // a program follows (stx-elevate -- P, learn ... -- P)
    else if (!w.startsWith('-') && command === '') {
      if (!commands.includes(w)) return []; // a program: its arguments are its own
      command = w;
    }
  }
  if (line.length > 0 && TAKES_VALUE.has(line[line.length - 1])) return [];
  if (current.startsWith('-')) return [...(COMMAND_OPTIONS[command] ?? ['--help'])];
  if (command !== '' || current.includes('/')) return [];
  return [...commands.filter((c) => c.startsWith(current)), ...(current === '' ? [] : programsOnPath(current))];
}

/** Executables on $PATH whose names start with prefix (as bash completes a command's name). */
function programsOnPath(prefix: string): string[] {
  const found = new Set<string>();
  for (const dir of (process.env.PATH ?? '').split(':').filter((d) => d.startsWith('/'))) {
    let names: string[];
    try {
      names = readdirSync(dir).filter((n) => n.startsWith(prefix));
    } catch {
      continue;
    }
    for (const name of names) {
      try {
        const file = path.join(dir, name);
        if (statSync(file).isFile()) {
          accessSync(file, fsConstants.X_OK);
          found.add(name);
        }
      } catch {
        // not there or not ours to run
      }
    }
  }
  return [...found].sort();
}

/** `stx-elevate --get-yargs-completions WORD...`: one candidate a line. */
export function answerCompletion(words: string[], commands: readonly string[]): number {
  const list = complete(words, commands);
  if (list.length > 0) process.stdout.write(`${list.join('\n')}\n`);
  return 0;
}

/** `stx-elevate completion`: the script, for ~/.bashrc or /etc/bash_completion.d/stx-elevate. */
export function completionCommand(argv: string[]): number {
  yargs(argv)
    .scriptName('stx-elevate completion')
    .usage(`${COMPLETION_USAGE}\n\nPrint a shell completion script for stx-elevate (bash; zsh or fish when $SHELL names them). `
      + 'Install it with: stx-elevate completion > /etc/bash_completion.d/stx-elevate (or append it to ~/.bashrc).')
    .strict()
    .version(false)
    .help()
    .fail((msg) => {
      process.stderr.write(`stx-elevate completion: ${msg}\nusage: ${COMPLETION_USAGE}\n`);
      process.exit(2);
    })
    .parseSync();
  yargs([]).scriptName('stx-elevate').completion('completion', false).showCompletionScript();
  return 0;
}
