/*
 * Finds the files that hold privilege under a set of roots: regular files
 * with the setuid or setgid bit or a security.capability attribute. It
 * only reads metadata, so any user may run it.
 *
 * Like find -xdev: a walk stays on its root's file system (a scan of /
 * does not descend into /proc, /sys, /dev or /run), and the mount points
 * it did not cross are reported so they can be named as roots. Symbolic
 * links are never followed below a root (a link to a setuid file is not
 * that file); a root itself is resolved to its real path, so /bin on a
 * merged-/usr system is /usr/bin and each file is reported once, by that
 * path. A directory reached twice (a root inside another root, a bind
 * mount) is walked once.
 */
import { type Dirent, lstatSync, readdirSync, realpathSync, type Stats, statfsSync } from 'node:fs';
import { posix } from 'node:path';
import { SysError } from '../shared/native/libc.js';
import { lgetxattr } from '../shared/native/xattr.js';
import { CAPABILITY_XATTR } from './file-caps.js';

export interface PrivilegedFile {
  /** Canonical: the real path of its root, then names that are no symbolic links. */
  path: string;
  mode: number;
  uid: number;
  gid: number;
  /** The raw security.capability value, or null. */
  caps: Buffer | null;
}

/** A directory, root or file that could not be read, and why. */
export interface Problem {
  path: string;
  message: string;
}

export interface Found {
  /** The roots walked, as real paths. */
  roots: string[];
  files: PrivilegedFile[];
  /** Roots that could not be scanned at all. */
  rootProblems: Problem[];
  /** Directories and files below the roots that could not be read. */
  problems: Problem[];
  /** Mount points below a root, left alone (another file system). */
  notCrossed: string[];
}

const S_ISUID = 0o4000;
const S_ISGID = 0o2000;
const EOPNOTSUPP = 95;
const ENOENT = 2;

/**
 * File systems that hold no programs and must not be walked (statfs(2)
 * magic numbers, linux/magic.h): kernel views whose files are generated
 * on read, some of them endless.
 */
const PSEUDO_FILE_SYSTEMS: ReadonlyMap<number, string> = new Map([
  [0x9fa0, 'proc'], [0x62656572, 'sysfs'], [0x1cd1, 'devpts'], [0x27e0eb, 'cgroup'], [0x63677270, 'cgroup2'],
  [0x64626720, 'debugfs'], [0x74726163, 'tracefs'], [0x73636673, 'securityfs'], [0xcafe4a11, 'bpf'],
  [0x6165676c, 'pstore'], [0x62656570, 'configfs'], [0x65735543, 'fusectl'], [0xde5e81e4, 'efivarfs'],
  [0x42494e4d, 'binfmt_misc'], [0x19800202, 'mqueue'],
]);

const key = (st: Stats): string => `${st.dev}:${st.ino}`;
const code = (e: unknown): string | undefined => (e as NodeJS.ErrnoException).code;

function describe(e: unknown): string {
  switch (code(e)) {
    case 'EACCES': return 'permission denied';
    case 'ENOENT': return 'does not exist';
    case 'ENOTDIR': return 'a component of the path is not a directory';
    case 'ELOOP': return 'too many symbolic links';
    default: return code(e) ?? String(e);
  }
}

/** Whether the file holds privilege: the bits, or a capability attribute (read only then). */
function privileged(path: string, st: Stats, problems: Problem[]): PrivilegedFile | undefined {
  let caps: Buffer | null = null;
  try {
    caps = lgetxattr(path, CAPABILITY_XATTR);
  } catch (e) {
    // a file system without extended attributes has no capabilities either;
    // a file removed since its directory was read holds nothing
    if (!(e instanceof SysError) || (e.errno !== EOPNOTSUPP && e.errno !== ENOENT)) {
      problems.push({ path, message: `its capabilities cannot be read (${e instanceof SysError ? e.message : String(e)})` });
    }
  }
  if ((st.mode & (S_ISUID | S_ISGID)) === 0 && caps === null) return undefined;
  return { path, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, caps };
}

/** lstat, or undefined for a file gone since its directory was read (the tree may change under us). */
function lstatQuietly(path: string, problems: Problem[]): Stats | undefined {
  try {
    return lstatSync(path);
  } catch (e) {
    if (code(e) !== 'ENOENT') problems.push({ path, message: `cannot be examined (${describe(e)})` });
    return undefined;
  }
}

function entries(dir: string, problems: Problem[]): Dirent[] {
  try {
    return readdirSync(dir, { withFileTypes: true });
  } catch (e) {
    if (code(e) !== 'ENOENT') problems.push({ path: dir, message: `cannot be read (${describe(e)}); the files in it were not scanned` });
    return [];
  }
}

class Walk {
  readonly found: Found = { roots: [], files: [], rootProblems: [], problems: [], notCrossed: [] };
  /** dev:ino (key()) of every directory walked. */
  private readonly seen = new Set<string>();

  /**
   * Walks the tree below top (whose entries are given) on the file system
   * `dev`, without recursion: trees may be deep.
   */
  private tree(top: string, listing: Dirent[], dev: number): void {
    const stack: Array<[string, Dirent[] | undefined]> = [[top, listing]];
    for (let next = stack.pop(); next !== undefined; next = stack.pop()) {
      const [dir, given] = next;
      for (const entry of given ?? entries(dir, this.found.problems)) {
        // symbolic links, devices, sockets and fifos hold no privilege of
        // their own; a file system without d_type says none of these, and
        // then lstat tells
        if (entry.isSymbolicLink() || entry.isBlockDevice() || entry.isCharacterDevice() || entry.isFIFO() || entry.isSocket()) continue;
        const path = dir === '/' ? `/${entry.name}` : `${dir}/${entry.name}`;
        const st = lstatQuietly(path, this.found.problems);
        if (!st) continue;
        if (st.isDirectory()) {
          if (st.dev !== dev) this.found.notCrossed.push(path);
          else if (this.firstVisit(st)) stack.push([path, undefined]);
        } else if (st.isFile()) {
          this.add(privileged(path, st, this.found.problems));
        }
      }
    }
  }

  private add(file: PrivilegedFile | undefined): void {
    if (file) this.found.files.push(file);
  }

  private firstVisit(st: Stats): boolean {
    if (this.seen.has(key(st))) return false;
    this.seen.add(key(st));
    return true;
  }

  private rootProblem(path: string, message: string): void {
    this.found.rootProblems.push({ path, message });
  }

  /** One root: a directory is walked, a regular file checked; anything else is a root problem. */
  root(given: string, optional: boolean): void {
    let real: string;
    let st: Stats;
    try {
      real = realpathSync(given);
      st = lstatSync(real);
    } catch (e) {
      if (!(optional && code(e) === 'ENOENT')) this.rootProblem(given, `cannot be scanned: ${describe(e)}`);
      return;
    }
    const pseudo = PSEUDO_FILE_SYSTEMS.get(statfsSync(real).type);
    if (pseudo) return this.rootProblem(real, `is on a ${pseudo} file system, which holds no programs; not scanned`);
    if (st.isFile()) {
      // a file in a directory walked before was judged there
      if (this.seen.has(key(lstatSync(posix.dirname(real))))) return;
      this.found.roots.push(real);
      this.add(privileged(real, st, this.found.problems));
      return;
    }
    if (!st.isDirectory()) return this.rootProblem(given, 'is neither a directory nor a regular file; not scanned');
    let listing: Dirent[];
    try {
      listing = readdirSync(real, { withFileTypes: true });
    } catch (e) {
      return this.rootProblem(real, `cannot be scanned: ${describe(e)}`);
    }
    // a root inside one walked before (/bin in /usr on merged /usr) adds nothing
    if (!this.firstVisit(st)) return;
    this.found.roots.push(real);
    this.tree(real, listing, st.dev);
  }
}

/**
 * Every privileged file under the roots. `optional` roots that do not
 * exist are passed over (the defaults: not every system has /lib32).
 * Files come sorted by path. roots lists the roots walked (a root already
 * walked as part of another is left out), and a mount point that is itself
 * a root is not reported as not crossed.
 */
export function findPrivilegedFiles(roots: string[], optional = false): Found {
  const walk = new Walk();
  for (const root of roots) walk.root(root, optional);
  const found = walk.found;
  found.roots = [...new Set(found.roots)];
  found.notCrossed = [...new Set(found.notCrossed)].filter((p) => !found.roots.includes(p)).sort();
  found.files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  // a file named as a root may also lie under another root
  found.files = found.files.filter((f, i, all) => i === 0 || all[i - 1].path !== f.path);
  return found;
}
