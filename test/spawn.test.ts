/*
 * src/broker/spawn.ts (native/spawn.c): the launcher's start, proved on
 * real children: exactly the given fds at 0..n-1, an empty environment, no
 * blocked or caught signal, born in the cgroup it is given, a pidfd that
 * tells its exit, and an exec failure reported as an error.
 */
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnInCgroup } from '../src/broker/spawn.js';
import { closeQuietly, setCloexec, waitExited } from '../src/shared/native/libc.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stx-spawn-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Run argv with stdout to a file and fds[3..] as given; its exit and output. */
async function run(argv: string[], extraFds: number[] = [], cgroupFd = -1): Promise<{ code: number | null; out: string }> {
  const outFile = path.join(dir, `out-${Math.random()}`);
  const out = fs.openSync(outFile, 'w');
  const nul = fs.openSync('/dev/null', 'r');
  let spawned;
  try {
    spawned = spawnInCgroup(argv[0], argv, [nul, out, 2, ...extraFds], cgroupFd);
  } finally {
    fs.closeSync(out);
    fs.closeSync(nul);
  }
  const deadline = Date.now() + 10_000;
  for (;;) {
    const exited = waitExited(spawned.pidfd);
    if (exited) {
      closeQuietly(spawned.pidfd);
      return { code: exited.code, out: fs.readFileSync(outFile, 'utf8') };
    }
    if (Date.now() > deadline) throw new Error(`${argv.join(' ')} did not exit within 10 s`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

t.test('exactly the given fds, at 0..n-1; nothing else of ours, close-on-exec or not', async (t) => {
  const stray = fs.openSync('/dev/null', 'r');
  setCloexec(stray, false); // an fd of ours that an exec would keep
  t.teardown(() => fs.closeSync(stray));
  const given = fs.openSync('/dev/zero', 'r'); // close-on-exec, as every fd Node opens
  t.teardown(() => fs.closeSync(given));
  const r = await run(['/usr/bin/find', '/proc/self/fd/', '-mindepth', '1', '-maxdepth', '1', '-printf', '%f %l\n'], [given]);
  t.equal(r.code, 0);
  const fds: Record<string, string> = Object.fromEntries(r.out.trim().split('\n').map((l) => l.split(' ') as [string, string]));
  t.equal(fds['3'], '/dev/zero', 'fd 3 is the fd given 4th');
  t.equal(fds['1']?.startsWith(dir), true, 'fd 1 is the output file');
  // find's own fds: the directories it walks and the one it started in
  const others = Object.entries(fds).filter(([n, target]) => Number(n) > 3 && !target.startsWith('/proc/') && target !== process.cwd());
  t.same(others, [], `no other fd (find's own aside): ${r.out}`);
  t.not(fds[String(stray)], '/dev/null', `our stray fd ${stray} (not close-on-exec) did not reach it`);
});

t.test('an empty environment, no blocked and no caught signal', async (t) => {
  process.on('SIGUSR2', () => {}); // a handler of ours: must not reach the child
  t.teardown(() => process.removeAllListeners('SIGUSR2'));
  const r = await run(['/bin/cat', '/proc/self/status', '/proc/self/environ']);
  t.equal(r.code, 0);
  const field = (name: string) => new RegExp(`^${name}:\\s+(\\S+)`, 'm').exec(r.out)?.[1];
  t.equal(BigInt(`0x${field('SigBlk')}`), 0n, 'nothing blocked');
  t.equal(BigInt(`0x${field('SigCgt')}`), 0n, 'nothing caught');
  t.notOk(r.out.includes('PATH='), 'no environment');
});

t.test('born in the cgroup given, and an exec failure is an error', async (t) => {
  const mount = /^\S+ (\S+) cgroup2 /m.exec(fs.readFileSync('/proc/mounts', 'utf8'))?.[1];
  if (!t.ok(mount, 'a cgroup v2 hierarchy is mounted (the broker needs one too)')) return;
  const own = /^0::(\S+)$/m.exec(fs.readFileSync('/proc/self/cgroup', 'utf8'))![1];
  const cg = path.join(mount!, own, `stx-spawn-test-${process.pid}`);
  fs.mkdirSync(cg);
  t.teardown(() => fs.rmdirSync(cg));
  const cgFd = fs.openSync(cg, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  t.teardown(() => fs.closeSync(cgFd));
  const r = await run(['/bin/cat', '/proc/self/cgroup'], [], cgFd);
  t.match(r.out, new RegExp(`^0::${path.posix.join(own, `stx-spawn-test-${process.pid}`)}$`, 'm'), 'the child\'s cgroup');
  const mine = await run(['/bin/cat', '/proc/self/cgroup']);
  t.match(mine.out, new RegExp(`^0::${own}$`, 'm'), 'without one: ours (control)');
  t.throws(() => spawnInCgroup(path.join(dir, 'missing'), ['missing'], [0, 1, 2], -1), /execve of .*missing.*No such file/);
});
