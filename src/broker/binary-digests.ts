/*
 * The sha256 of a pinned binary, remembered while the file is unchanged:
 * without it every launch of a pinned program reads its whole binary (a
 * language runtime is 100 MB) before it can start.
 *
 * MUST: never answer with the digest of content other than what the open
 * file holds now. Why a remembered digest is still the file's:
 *  - only root can change the file: openVerifiedBinary has refused, on this
 *    very launch and before the cache is asked, any file or directory on
 *    the way that anyone else could write;
 *  - the digest is keyed by the open fd's inode (device, inode number) and
 *    given only while size, mtime and ctime are what they were, to the
 *    nanosecond, when it was hashed. Every change of content through the
 *    file system (write, truncate, fallocate, copy_file_range, a write
 *    through a shared mapping) sets ctime to the current time, and nothing
 *    sets ctime back (utimensat sets it to now too). A replaced file (a
 *    rename, a new copy) is another inode; an inode number reused later
 *    gets a later ctime;
 *  - timestamps move in ticks, so a change in the same tick as the one
 *    before it can leave ctime as it was: a digest is remembered only for a
 *    file whose ctime is SETTLE_MS older than the start of its hashing (as
 *    git treats "racily clean" files). Any later change then lands in a
 *    later tick; a change during the hashing shows as a stamp after it other
 *    than the one before it, and nothing is remembered;
 *  - only file systems whose timestamps this kernel sets itself (LOCAL):
 *    on a network file system another host changes the file, and attributes
 *    may be served from a cache.
 * Setting the clock back takes root, who can change the pin anyway.
 */
import { fstatSync, statfsSync } from 'node:fs';
import { sha256OfBinary } from './binary.js';

/** How much older than the start of its hashing a file's ctime must be for its digest to be kept. */
export const SETTLE_MS = 2000;
const MAX_ENTRIES = 1024;

/** statfs f_type of the file systems whose inodes this kernel stamps itself. */
const LOCAL = new Set([
  0xef53,     // ext2/3/4
  0x58465342, // xfs
  0x9123683e, // btrfs
  0x01021994, // tmpfs
  0xf2f52010, // f2fs
  0x794c7630, // overlayfs (its inodes' times are those of the local layers)
  0x73717368, // squashfs (read-only)
  0xe0f5e1e2, // erofs (read-only)
]);

/** What must be unchanged for a remembered digest to hold. */
export interface Stamp {
  dev: bigint;
  ino: bigint;
  size: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
  local: boolean;
}

export function stampOf(fd: number): Stamp {
  const st = fstatSync(fd, { bigint: true });
  // /proc/self/fd/N is the open file itself, not a path looked up again.
  const local = LOCAL.has(Number(statfsSync(`/proc/self/fd/${fd}`, { bigint: true }).type));
  return { dev: st.dev, ino: st.ino, size: st.size, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs, local };
}

export const sameStamp = (a: Stamp, b: Stamp): boolean =>
  a.dev === b.dev && a.ino === b.ino && a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs && a.local === b.local;

/**
 * Whether a digest read from a file stamped `before` (hashing started at
 * `startedMs`, wall clock) and `after` may be remembered.
 */
export function mayRemember(before: Stamp, after: Stamp, startedMs: number): boolean {
  return before.local && sameStamp(before, after) && before.ctimeNs <= BigInt(startedMs - SETTLE_MS) * 1_000_000n;
}

const remembered = new Map<string, { stamp: Stamp; digest: string }>();
const key = (s: Stamp): string => `${s.dev}:${s.ino}`;

/** stampOf, or undefined when the fd cannot be stat'ed: then nothing is remembered or answered. */
function stampOrNothing(fd: number): Stamp | undefined {
  try {
    return stampOf(fd);
  } catch {
    return undefined;
  }
}

/** The remembered digest of the open binary `fd`, or undefined (then hash it). */
export function rememberedDigest(fd: number): string | undefined {
  const stamp = stampOrNothing(fd);
  if (!stamp) return undefined;
  const entry = remembered.get(key(stamp));
  if (entry && sameStamp(entry.stamp, stamp)) return entry.digest;
  if (entry) remembered.delete(key(stamp)); // changed: the old content's digest is of no use any more
  return undefined;
}

/**
 * sha256OfBinary(fd), or the digest remembered for it; remembered for later
 * launches when mayRemember allows. Same contract as sha256OfBinary: on a
 * rejection the fd is closed (by it), otherwise the caller keeps it.
 */
export async function digestOf(fd: number, deadlineMs: number): Promise<string> {
  const known = rememberedDigest(fd);
  if (known !== undefined) return known;
  const before = stampOrNothing(fd);
  const startedMs = Date.now();
  const digest = await sha256OfBinary(fd, deadlineMs);
  const after = stampOrNothing(fd);
  if (before && after && mayRemember(before, after, startedMs)) {
    if (remembered.size >= MAX_ENTRIES) remembered.delete(remembered.keys().next().value!);
    remembered.set(key(before), { stamp: before, digest });
  }
  return digest;
}
