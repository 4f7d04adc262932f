/*
 * The seccomp filter, proved on the real kernel: buildFilter()'s bytes are
 * installed by test/fixtures/filter-run.c, which runs one probe under them
 * and plays a minimal supervisor (every trap is printed and refused EPERM).
 * Every "is killed" test has a control run of the same probe with no filter.
 */
import t from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ProgramRule, SocketRule } from '../src/broker/rules/model.js';
import {
  buildFilter, describeFilter, filterTable, IP_HDRINCL, IPV6_HDRINCL, SOCK_CLOEXEC, SOL_IPV6,
} from '../src/broker/seccomp/filter.js';
import { filterFor } from '../src/broker/seccomp/compiled.js';
import {
  SCMP_ACT_ALLOW, SCMP_ACT_ERRNO, SCMP_ACT_NOTIFY, SCMP_ARCH_X32, SCMP_ARCH_X86, SCMP_ARCH_X86_64,
  SCMP_CMP_EQ, SeccompError, seccompArchExist, seccompInit, seccompRuleAdd,
  seccompSyscallResolveName, withFilterContext,
} from '../src/shared/native/libseccomp.js';

const SIGSYS = os.constants.signals.SIGSYS;
const NR = { socket: 41, setsockopt: 54, execve: 59, execveat: 322 };
const AF_INET = 2, SOCK_RAW = 3, IPPROTO_ICMP = 1;

// ---- rules -----------------------------------------------------------------------

const at = (section: string) => ({ file: '/etc/elevation.d/test.conf', line: 1, section });

function socketRule(name: string, domain: number, type: number, protocol: number): SocketRule {
  return { kind: 'socket', name, at: at(`socket.${name}`), domain, type, protocol, headerIncluded: false, errno: 1 };
}

function programRule(calls: SocketRule[]): ProgramRule {
  return { at: at('program'), file: '/etc/elevation.d/test.conf', path: '/usr/bin/ping', users: '*', groups: [], sandboxedClients: false, calls };
}

const icmpProgram = programRule([socketRule('icmp', AF_INET, SOCK_RAW, IPPROTO_ICMP)]);
const bareProgram = programRule([]);

// ---- the fixture -----------------------------------------------------------------

const canRun = process.getuid?.() === 0 && process.arch === 'x64';
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stx-filter-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));

const runner = path.join(dir, 'filter-run');
if (canRun) {
  const src = fileURLToPath(new URL('./fixtures/filter-run.c', import.meta.url));
  execFileSync('cc', ['-O2', '-Wall', '-o', runner, src], { stdio: 'inherit', timeout: 60_000 });
}

interface Outcome {
  traps: { nr: number; args: bigint[] }[];
  result?: string;      // "ok N" or "err ENAME"
  end?: string;         // "exit N" or "signal N"
  stdout: string;
}

let filterCount = 0;

/** Run `probe` under `program`'s filter (null: no filter, the control). */
function run(program: ProgramRule | null, probe: string): Outcome {
  let file = '-';
  if (program) {
    file = path.join(dir, `filter-${filterCount++}.bpf`);
    fs.writeFileSync(file, buildFilter(program));
  }
  const r = spawnSync(runner, [file, probe], { cwd: dir, encoding: 'utf8', timeout: 15_000, killSignal: 'SIGKILL' });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`filter-run ${probe}: status ${r.status} signal ${r.signal}: ${r.stderr}`);
  return parse(r.stdout);
}

function parse(stdout: string): Outcome {
  const out: Outcome = { traps: [], stdout };
  for (const line of stdout.split('\n')) {
    const [word, ...rest] = line.split(' ');
    if (word === 'trapped') out.traps.push({ nr: Number(rest[0]), args: rest.slice(1).map(BigInt) });
    else if (word === 'result') out.result = rest.join(' ');
    else if (word === 'exit' || word === 'signal' || word === 'timeout') out.end = line;
  }
  return out;
}

const runOpts = { skip: canRun ? false : 'needs root on x86_64' };

// ---- building --------------------------------------------------------------------

t.test('buildFilter returns struct sock_filter[]', async (t) => {
  const bpf = buildFilter(icmpProgram);
  t.ok(bpf.length > 0, 'not empty');
  t.equal(bpf.length % 8, 0, '8 bytes per instruction');
  t.ok(bpf.length / 8 <= 4096, 'within BPF_MAXINSNS');
  t.equal(bpf.readUInt32LE(4), 4, 'first instruction loads seccomp_data.arch');
});

t.test('describeFilter names every trap and why', async (t) => {
  const lines = describeFilter(icmpProgram);
  t.match(lines[0], /default: ALLOW/);
  t.match(lines[1], /KILL_PROCESS/);
  t.ok(lines.some((l) => /^socket\(domain == 2, .*== 3, protocol == 1\) -> NOTIFY: \[socket\.icmp\]/.test(l)));
  t.ok(lines.some((l) => l.startsWith('execve() -> NOTIFY')));
  t.ok(lines.some((l) => l.startsWith('execveat() -> NOTIFY')));
  t.ok(lines.some((l) => l.includes(`(int)optname == ${IP_HDRINCL}`)));
  t.ok(lines.some((l) => l.includes(`(int)level == ${SOL_IPV6}`) && l.includes(`${IPV6_HDRINCL}`)));
  t.equal(filterTable(bareProgram).filter((r) => r.syscall === 'socket').length, 0, 'no rule, no socket trap');
});

t.test('a rule the filter cannot express exactly is refused', async (t) => {
  t.throws(() => buildFilter(programRule([socketRule('x', AF_INET, SOCK_RAW | SOCK_CLOEXEC, 1)])),
    /type .* SOCK_NONBLOCK\/SOCK_CLOEXEC/);
  t.throws(() => buildFilter(programRule([socketRule('x', AF_INET, SOCK_RAW, -1)])),
    /test\.conf:1: \[socket\.x\]: protocol -1 is not a non-negative int/);
  t.throws(() => buildFilter(programRule([socketRule('x', 2 ** 31, SOCK_RAW, 1)])), /domain/);
});

t.test('filterFor compiles once per rule object; a reloaded rule (a new object) is compiled from its own content', async (t) => {
  const loaded = programRule([socketRule('icmp', AF_INET, SOCK_RAW, IPPROTO_ICMP)]);
  const first = filterFor(loaded);
  t.same(first, buildFilter(loaded), 'the bytes buildFilter makes');
  t.equal(filterFor(loaded), first, 'the second launch takes the same compiled bytes');
  // What a SIGHUP makes of an edited file: new objects (rules are never changed in place).
  const AF_INET6 = 10, IPPROTO_ICMPV6 = 58;
  const reloaded = programRule([socketRule('icmp', AF_INET, SOCK_RAW, IPPROTO_ICMP), socketRule('icmp6', AF_INET6, SOCK_RAW, IPPROTO_ICMPV6)]);
  const second = filterFor(reloaded);
  t.same(second, buildFilter(reloaded), 'the reloaded rule gets its own filter');
  t.notSame(second, first, 'which differs from the one compiled before');
  t.same(filterFor(loaded), buildFilter(loaded), 'and the old rule\'s bytes are untouched');
  const unchanged = programRule([socketRule('icmp', AF_INET, SOCK_RAW, IPPROTO_ICMP)]);
  t.not(filterFor(unchanged), first, 'an equal rule reloaded is compiled again, not looked up by content');
});

t.test('the same socket rule twice builds', async (t) => {
  const rule = socketRule('icmp', AF_INET, SOCK_RAW, IPPROTO_ICMP);
  t.ok(buildFilter(programRule([rule, { ...rule, name: 'again' }])).length > 0);
});

t.test('libseccomp errors name the function and the errno', async (t) => {
  const err = withFilterContext(SCMP_ACT_ALLOW, (ctx) => {
    try {
      seccompRuleAdd(ctx, SCMP_ACT_NOTIFY, NR.socket, [{ arg: 9, op: SCMP_CMP_EQ, datumA: 0n, datumB: 0n }], 'socket');
    } catch (e) {
      return e;
    }
    return undefined;
  });
  t.type(err, SeccompError);
  t.match((err as SeccompError).message, /^seccomp_rule_add\(socket\): Invalid argument/);
  t.equal((err as SeccompError).code, 'EINVAL');
  t.throws(() => seccompSyscallResolveName('no_such_call'), /seccomp_syscall_resolve_name\(no_such_call\)/);
  t.equal(seccompSyscallResolveName('socket'), NR.socket);
  t.throws(() => seccompInit(0x12345), /^seccomp_init: Invalid argument \(EINVAL\)$/, 'bad default action');
  t.equal(new SeccompError('f', 4000).message, 'f: Unknown error 4000', 'an errno with no name');
});

t.test('a fresh context holds the native ABI only', async (t) => {
  withFilterContext(SCMP_ACT_ALLOW, (ctx) => {
    t.equal(seccompArchExist(ctx, SCMP_ARCH_X86_64), true, 'x86_64 (0 from libseccomp)');
    t.equal(seccompArchExist(ctx, SCMP_ARCH_X86), false, 'no i386 (-EEXIST from libseccomp)');
    t.equal(seccompArchExist(ctx, SCMP_ARCH_X32), false, 'no x32');
  });
  t.equal(SCMP_ACT_ERRNO(1), 0x00050001);
});

// ---- running: what is trapped ----------------------------------------------------

t.test('a raw ICMP socket rule traps exactly that socket', runOpts, async (t) => {
  const o = run(icmpProgram, 'socket-raw-icmp');
  t.equal(o.traps.length, 1, o.stdout);
  t.equal(o.traps[0].nr, NR.socket);
  t.same(o.traps[0].args.slice(0, 3), [2n, BigInt(SOCK_RAW | SOCK_CLOEXEC), 1n], 'AF_INET, SOCK_RAW|SOCK_CLOEXEC, ICMP');
  t.equal(o.result, 'err EPERM', 'the supervisor\'s answer reached the program');
  t.equal(o.end, 'exit 0');
});

t.test('an as = deny socket section traps its socket like a grant does (the broker answers it)', runOpts, async (t) => {
  const denied = programRule([{ ...socketRule('icmp', AF_INET, SOCK_RAW, IPPROTO_ICMP), deny: true, errno: 13 }]);
  t.ok(describeFilter(denied).some((l) => /^socket\(domain == 2, .*protocol == 1\) -> NOTIFY: \[socket\.icmp\] icmp: the broker refuses this socket with EACCES \(as = deny\)/.test(l)),
    'the table says the broker refuses it');
  const o = run(denied, 'socket-raw-icmp');
  t.equal(o.traps.length, 1, o.stdout);
  t.same(o.traps[0].args.slice(0, 3), [2n, BigInt(SOCK_RAW | SOCK_CLOEXEC), 1n], 'AF_INET, SOCK_RAW|SOCK_CLOEXEC, ICMP');
  t.equal(run(denied, 'socket-dgram-udp').traps.length, 0, 'other sockets are not trapped');
  // Control: without the section, root (this test) would create the socket itself.
  t.match(run(bareProgram, 'socket-raw-icmp').result, /^ok \d+$/, 'control: untrapped, the kernel creates it');
});

t.test('calls no rule names are not trapped', runOpts, async (t) => {
  for (const probe of ['socket-dgram-udp', 'getppid', 'setsockopt-tos']) {
    const o = run(icmpProgram, probe);
    t.equal(o.traps.length, 0, `${probe} not trapped`);
    t.match(o.result, /^ok \d+$/, `${probe} succeeds`);
    t.equal(o.end, 'exit 0');
  }
});

t.test('garbage above a socket int is not trapped: it runs as the caller', runOpts, async (t) => {
  const o = run(icmpProgram, 'socket-raw-icmp-hi');
  t.equal(o.traps.length, 0, 'a 64-bit mismatch is not trapped');
  // Control: the kernel truncates to int and creates the raw socket, with
  // the caller's credentials (root here; EPERM for a user): fail-safe.
  t.match(run(null, 'socket-raw-icmp-hi').result, /^ok \d+$/, 'control: the kernel reads the int');
});

t.test('exec is trapped, always', runOpts, async (t) => {
  for (const program of [icmpProgram, bareProgram]) {
    const label = program.calls.length ? 'icmp rule' : 'no socket rule';
    const e = run(program, 'execve');
    t.same(e.traps.map((x) => x.nr), [NR.execve], `execve trapped (${label})`);
    t.equal(e.result, 'err EPERM');
    const at = run(program, 'execveat');
    t.same(at.traps.map((x) => x.nr), [NR.execveat], `execveat trapped (${label})`);
    t.equal(at.result, 'err EPERM');
  }
  const control = run(null, 'execve');
  t.equal(control.result, undefined, 'control: the exec replaced the probe');
  t.equal(control.end, 'exit 0', 'control: /bin/true ran');
});

t.test('a program with no socket rule traps no socket', runOpts, async (t) => {
  const o = run(bareProgram, 'socket-raw-icmp');
  t.equal(o.traps.length, 0);
  t.match(o.result, /^ok \d+$/);
});

t.test('IP_HDRINCL and IPV6_HDRINCL are trapped, always', runOpts, async (t) => {
  for (const program of [icmpProgram, bareProgram]) {
    const v4 = run(program, 'setsockopt-hdrincl');
    t.equal(v4.traps.length, 1, v4.stdout);
    t.equal(v4.traps[0].nr, NR.setsockopt);
    t.same(v4.traps[0].args.slice(1, 3), [0n, 3n], 'SOL_IP, IP_HDRINCL');
    t.equal(v4.result, 'err EPERM');
    const v6 = run(program, 'setsockopt-hdrincl6');
    t.equal(v6.traps.length, 1, v6.stdout);
    t.same(v6.traps[0].args.slice(1, 3), [41n, 36n], 'SOL_IPV6, IPV6_HDRINCL');
    t.equal(v6.result, 'err EPERM');
  }
});

t.test('IP_HDRINCL with garbage above the ints is still trapped', runOpts, async (t) => {
  // Control first: the kernel truncates level and optname to int and sets
  // IP_HDRINCL, so a 64-bit comparison here would be a bypass.
  t.equal(run(null, 'setsockopt-hdrincl-hi').result, 'ok 0', 'control: the kernel reads the ints');
  const o = run(icmpProgram, 'setsockopt-hdrincl-hi');
  t.equal(o.traps.length, 1, o.stdout);
  t.same(o.traps[0].args.slice(1, 3), [1n << 32n, (1n << 32n) | 3n], 'raw 64-bit values reach the broker');
  t.equal(o.result, 'err EPERM');
});

// ---- running: what is killed -----------------------------------------------------

t.test('i386 int 0x80 kills the process', runOpts, async (t) => {
  t.equal(run(null, 'int80').end, 'exit 0', 'control: int 0x80 works on this kernel');
  t.match(run(null, 'int80').result, /^ok \d+$/, 'control: i386 socket() returns an fd');
  for (const program of [icmpProgram, bareProgram]) {
    const o = run(program, 'int80');
    t.equal(o.end, `signal ${SIGSYS}`, 'SIGSYS');
    t.equal(o.traps.length, 0);
    t.equal(o.result, undefined, 'the probe never returned');
  }
});

t.test('x32 system calls kill the process', runOpts, async (t) => {
  const control = run(null, 'x32');
  t.equal(control.result, 'err ENOSYS', 'control: no x32 on this kernel, and no death');
  t.equal(control.end, 'exit 0');
  for (const program of [icmpProgram, bareProgram]) {
    const o = run(program, 'x32');
    t.equal(o.end, `signal ${SIGSYS}`, 'SIGSYS');
    t.equal(o.result, undefined, 'the probe never returned');
  }
});
