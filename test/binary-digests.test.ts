/*
 * Remembered digests of pinned binaries (src/broker/binary-digests.ts): a
 * digest is answered only while the open file's inode, size, mtime and
 * ctime are those it was hashed with, and remembered only for a file whose
 * ctime had settled before the hashing began.
 */
import t, { type Test } from 'tap';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SETTLE_MS, digestOf, mayRemember, rememberedDigest, stampOf, type Stamp } from '../src/broker/binary-digests.js';

const sha256 = (p: string) => createHash('sha256').update(fs.readFileSync(p)).digest('hex');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stx-digests-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Open read-only; closed at the end of the test. */
function open(t: Test, file: string): number {
  const fd = fs.openSync(file, 'r');
  t.teardown(() => fs.closeSync(fd));
  return fd;
}

const stamp = (over: Partial<Stamp> = {}): Stamp =>
  ({ dev: 1n, ino: 2n, size: 3n, mtimeNs: 4n, ctimeNs: 1_000_000_000_000_000n, local: true, ...over });

t.test('mayRemember: settled, unchanged while hashed, on a local file system', async (t) => {
  const ctimeMs = 1_000_000_000;
  t.ok(mayRemember(stamp(), stamp(), ctimeMs + SETTLE_MS), 'ctime SETTLE_MS before the hashing began');
  t.notOk(mayRemember(stamp(), stamp(), ctimeMs + SETTLE_MS - 1), 'a ctime that recent could be shared by a change in the same tick');
  for (const k of ['dev', 'ino', 'size', 'mtimeNs', 'ctimeNs'] as const) {
    t.notOk(mayRemember(stamp(), stamp({ [k]: stamp()[k] + 1n }), ctimeMs + 10 * SETTLE_MS), `${k} changed while it was hashed`);
  }
  t.notOk(mayRemember(stamp({ local: false }), stamp({ local: false }), ctimeMs + 10 * SETTLE_MS), 'not a local file system');
});

t.test('a settled file: remembered; changed in place with its size and mtime kept, asked again and hashed again', async (t) => {
  const file = path.join(dir, 'settled');
  fs.writeFileSync(file, 'first content\n');
  const T = 1_700_000_000; // whole seconds: put back exactly below
  fs.utimesSync(file, T, T);
  const old = fs.statSync(file, { bigint: true });
  await sleep(SETTLE_MS + 200); // let its ctime settle (bounded)
  const fd = open(t, file);
  t.equal(rememberedDigest(fd), undefined, 'nothing remembered before the first hash');
  t.equal(await digestOf(fd, 10_000), sha256(file), 'the digest of its content');
  t.equal(rememberedDigest(fd), sha256(file), 'remembered for the next launch');

  // Same inode, same size, mtime put back: only ctime tells.
  fs.writeFileSync(file, 'other content\n', { flag: 'r+' });
  fs.utimesSync(file, T, T);
  const now = fs.statSync(file, { bigint: true });
  t.equal(now.mtimeNs, old.mtimeNs, 'mtime as before, to the nanosecond');
  t.equal(now.size, old.size, 'size as before');
  t.equal(now.ino, old.ino, 'the same inode');
  t.equal(rememberedDigest(fd), undefined, 'the remembered digest is not given for the changed file');
  t.equal(await digestOf(fd, 10_000), sha256(file), 'hashed again: the new content\'s digest');
  t.not(sha256(file), createHash('sha256').update('first content\n').digest('hex'));
  t.equal(rememberedDigest(fd), undefined, 'just changed: not remembered until it settles again');
});

t.test('a file replaced by another (rename): another inode, hashed again', async (t) => {
  const file = path.join(dir, 'replaced');
  fs.writeFileSync(file, 'before\n');
  await sleep(SETTLE_MS + 200);
  const fd1 = open(t, file);
  t.equal(await digestOf(fd1, 10_000), sha256(file));
  t.equal(rememberedDigest(fd1), sha256(file), 'remembered');
  fs.writeFileSync(`${file}.new`, 'after!\n');
  fs.renameSync(`${file}.new`, file);
  const fd2 = open(t, file);
  t.equal(rememberedDigest(fd2), undefined, 'nothing remembered for the new inode');
  t.equal(await digestOf(fd2, 10_000), sha256(file), 'the new file\'s digest');
});

t.test('a file changed within SETTLE_MS before its hashing is not remembered', async (t) => {
  const file = path.join(dir, 'fresh');
  fs.writeFileSync(file, 'fresh\n');
  const fd = open(t, file);
  t.equal(await digestOf(fd, 10_000), sha256(file));
  t.equal(rememberedDigest(fd), undefined, 'not remembered');
  t.ok(stampOf(fd).local, `the test directory ${dir} is on a local file system, so this is the settle rule at work`);
});
