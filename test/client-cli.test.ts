// The commands' own interface, no broker needed: --version (package.json's),
// --help of every command (usage on stdout, exit 0), and
// shell completion (yargs's script, answered by `complete`; the candidates
// are each command's options as its --help lists them).
import t, { type Test } from 'tap'
import { chmodSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { COMMAND_OPTIONS, complete } from '../src/client/commands/completion.js'
import { repoRoot } from './lib/paths.js'
import { rootEnv, runRoot } from './lib/proc.js'

const client = join(repoRoot, 'bin', 'stx-elevate')
const broker = join(repoRoot, 'bin', 'stx-elevated')
const version = (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version
/** No broker at all: a command that tried to reach one would fail. */
const env = rootEnv({ SHELL: '/bin/bash', STX_ELEVATE_SOCKET: '/nonexistent/broker.sock' })
const run = (...argv: string[]) => runRoot(argv, { env, timeoutMs: 30_000 })

/** The commands, in the COMMANDS table's order. */
const COMMANDS = ['check', 'list', 'learn', 'watch', 'scan', 'strip', 'restore', 'completion']

t.test('--version: the package\'s version, exit 0, for both commands', async t => {
  for (const [bin, name] of [[client, 'stx-elevate'], [broker, 'stx-elevated']]) {
    const r = await run(bin, '--version')
    t.equal(r.code, 0, r.stderr)
    t.equal(r.stdout, `${name} ${version}\n`)
    t.equal(r.stderr, '')
  }
})

t.test('stx-elevate PROGRAM --version is the program\'s option, not ours', async t => {
  const r = await run(client, 'true', '--version')
  t.equal(r.code, 1, 'it tries to run true through the (absent) broker')
  t.match(r.stderr, /cannot reach the broker/)
})

t.test('global options: the quick path (yargs-parser alone) and yargs agree, and running a program never loads yargs', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'stx-cli-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const trace = join(dir, 'imports')
  const hook = join(repoRoot, 'test', 'fixtures', 'trace-imports.mjs')
  const unreachable = (at: string) =>
    `stx-elevate: cannot reach the broker at ${at}: No such file or directory: the stx-elevated broker is not running (start it with: systemctl start stx-elevated)\n`
  const usage = (message: string) => `stx-elevate: ${message}\nTry 'stx-elevate --help'.\n`
  const cases: Array<{ argv: string[]; code: number; stderr: string; yargs: boolean }> = [
    { argv: ['--socket', '/nonexistent/a', 'ping', '-c3'], code: 1, stderr: unreachable('/nonexistent/a'), yargs: false },
    { argv: ['--socket=/nonexistent/a', 'ping', '--socket', '/nonexistent/b'], code: 1, stderr: unreachable('/nonexistent/a'), yargs: false },
    { argv: ['ping'], code: 1, stderr: unreachable('/nonexistent/broker.sock'), yargs: false },
    { argv: ['--', 'true'], code: 1, stderr: unreachable('/nonexistent/broker.sock'), yargs: false },
    // after --, a command's name is a program's (here none on PATH)
    { argv: ['--', 'list'], code: 1, stderr: 'stx-elevate: list: command not found\n', yargs: false },
    { argv: ['--socket', '/nonexistent/a', '--socket', '/nonexistent/b', 'ping'], code: 2, stderr: usage('--socket given more than once; give it once'), yargs: true },
    { argv: ['--socket=', 'ping'], code: 2, stderr: usage('--socket needs a path, e.g. --socket /run/stx-elevate/broker.sock'), yargs: true },
    { argv: ['--socket'], code: 2, stderr: usage('Not enough arguments following: socket'), yargs: true },
    { argv: ['--bogus', 'ping'], code: 2, stderr: usage('Unknown argument: bogus'), yargs: true },
    { argv: ['-c3', 'ping'], code: 2, stderr: usage('Unknown argument: c'), yargs: true },
    { argv: [], code: 2, stderr: 'stx-elevate: no program given\nusage: stx-elevate [--socket PATH] PROGRAM [ARGS...]\n', yargs: true },
  ]
  for (const c of cases) {
    writeFileSync(trace, '')
    const r = await runRoot([client, ...c.argv], {
      env: { ...env, STX_TRACE_IMPORTS: trace, NODE_OPTIONS: `--import=${hook}` }, timeoutMs: 30_000,
    })
    const name = JSON.stringify(c.argv)
    t.equal(r.code, c.code, `${name}: exit status`)
    t.equal(r.stderr, c.stderr, `${name}: message`)
    t.equal(r.stdout, '', `${name}: nothing on stdout`)
    const imports = readFileSync(trace, 'utf8')
    t.match(imports, /\/yargs-parser\//, `${name}: the trace saw the client's imports`)
    t.equal(/\/node_modules\/yargs\//.test(imports), c.yargs, `${name}: yargs ${c.yargs ? 'loaded (it words usage errors)' : 'not loaded'}`)
  }
})

t.test('--help of stx-elevate and of each command: usage on stdout, exit 0', async t => {
  const top = await run(client, '--help')
  t.equal(top.code, 0, top.stderr)
  for (const c of COMMANDS) t.match(top.stdout, new RegExp(`^stx-elevate (\\[--socket PATH\\] )?${c}\\b`, 'm'), `the usage names ${c}`)
  t.match(top.stdout, /--version/)
  for (const c of COMMANDS) {
    const r = await run(client, c, '--help')
    t.equal(r.code, 0, `${c} --help: ${r.stderr}`)
    t.match(r.stdout, new RegExp(`^stx-elevate (\\[--socket PATH\\] )?${c}\\b`), `${c} --help starts with its usage`)
    t.equal(r.stderr, '')
  }
  const b = await run(broker, '--help')
  t.equal(b.code, 0, b.stderr)
  t.match(b.stdout, /--audit[\s\S]*journal[\s\S]*syslog/, 'stx-elevated --help names the journal and syslog')
})

/** The long options a --help lists ("  --json", "  -u, --user"). */
function helpOptions(help: string): string[] {
  return [...help.split(/^Options:$/m)[1].matchAll(/^ {2}(?:-[a-z], | {4})?(--[a-z-]+)/gm)].map(m => m[1]).sort()
}

t.test('completion offers each command\'s options exactly as its --help lists them', async t => {
  t.same(Object.keys(COMMAND_OPTIONS).filter(Boolean).sort(), [...COMMANDS].sort(), 'a row for each command')
  for (const [command, options] of Object.entries(COMMAND_OPTIONS)) {
    const r = await run(client, ...(command ? [command] : []), '--help')
    const help = helpOptions(r.stdout)
    // a boolean that defaults to on is offered as its --no- form (strip --no-shim)
    const offered = options.map(o => (help.includes(o) || !o.startsWith('--no-') ? o : `--${o.slice(5)}`))
    t.same(offered.sort(), help, `stx-elevate ${command} --help`.replace('  ', ' '))
  }
})

/** A PATH directory of our own: node and stx-elevate (for the script), awk (yargs's script uses it), and two files named list*. */
function ownPath(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'stx-cli-test.'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  chmodSync(dir, 0o755)
  symlinkSync(process.execPath, join(dir, 'node'))
  symlinkSync(client, join(dir, 'stx-elevate'))
  symlinkSync('/usr/bin/awk', join(dir, 'awk'))
  writeFileSync(join(dir, 'listful'), '#!/bin/sh\n')
  chmodSync(join(dir, 'listful'), 0o755)
  writeFileSync(join(dir, 'listless'), 'not a program\n')
  chmodSync(join(dir, 'listless'), 0o644)
  return dir
}

t.test('complete: commands and programs first, options by context, nothing after a program', async t => {
  const saved = process.env.PATH
  process.env.PATH = ownPath(t)
  t.teardown(() => { process.env.PATH = saved })
  const c = (...words: string[]) => complete(['stx-elevate', ...words], COMMANDS)
  t.same(c(''), COMMANDS, 'the commands (not the reserved names), no program for an empty word')
  t.same(c('li'), ['list', 'listful'], 'commands, then executables on PATH by prefix')
  t.same(c('no'), ['node'])
  t.same(c('-'), ['--socket', '--version', '--help'])
  t.same(c('--socket', ''), [], 'the socket\'s path: file names')
  t.same(c('--socket', '/run/x.sock', 'ch'), ['check'])
  t.same(c('check', 'li'), [], 'check\'s FILEs')
  t.same(c('check', '-'), ['--rules', '--help'])
  t.same(c('check', ''), [], 'check\'s FILEs: file names')
  t.same(c('list', '--j'), ['--json', '--help'])
  t.same(c('ping', '-'), [], 'ping\'s own options are ping\'s')
  t.same(c('ping', 'li'), [], 'ping\'s arguments are ping\'s')
  t.same(c('--', 'li'), [], 'after --, a program')
  t.same(c('learn', '-u', 'alice', '--', 'ping', '-'), [], 'after learn\'s --, the program\'s')
  t.same(c('learn', '--o'), ['--user', '--output', '--merge', '--force', '--ask', '--timeout', '--exec-group', '--help'])
  t.same(c('./x'), [], 'a path: file names')
  t.same(complete(['check', '-'], COMMANDS), ['--rules', '--help'], 'fish passes the words without the command\'s name')
})

t.test('stx-elevate completion prints yargs\'s bash script, which completes through stx-elevate itself', async t => {
  const r = await run(client, 'completion')
  t.equal(r.code, 0, r.stderr)
  t.match(r.stdout, /^complete -o bashdefault -o default -F _stx-elevate_yargs_completions stx-elevate$/m)
  // bash sources it and completes `stx-elevate li<TAB>` and `stx-elevate check --r<TAB>`
  const script = 'eval "$(stx-elevate completion)"; for line in "stx-elevate li" "stx-elevate check --r" "stx-elevate ping -"; do '
    + 'read -ra COMP_WORDS <<<"$line"; [ "${line: -1}" = " " ] && COMP_WORDS+=(""); COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 )); '
    + 'COMPREPLY=(); _stx-elevate_yargs_completions; echo "$line => ${COMPREPLY[*]}"; done'
  const b = await runRoot(['/bin/bash', '-c', script], { env: rootEnv({ SHELL: '/bin/bash', PATH: ownPath(t) }), timeoutMs: 30_000 })
  t.equal(b.code, 0, b.stderr)
  t.same(b.stdout.replace(/\n$/, '').split('\n'), [
    'stx-elevate li => list listful',
    'stx-elevate check --r => --rules',
    'stx-elevate ping - => ',
  ])
})
