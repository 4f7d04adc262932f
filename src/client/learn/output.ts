/*
 * The file learn writes its rule to (-o FILE): checked before the program
 * runs, since a learning run can be long and its result must be writable,
 * and written in one step when the program has ended.
 *
 * MUST (learn runs as root; the program and its user may act meanwhile):
 *  - resolve the directory once: it is opened before the run, and the rule
 *    is created, written and renamed into place relative to that open
 *    directory (/proc/self/fd/N/NAME), so no rename or symlink swapped into
 *    the path meanwhile moves the writes elsewhere;
 *  - write only into a directory where no one but root can add, remove or
 *    rename entries (root-owned, not writable by group or other unless
 *    sticky): otherwise a user could replace the temporary file with a
 *    symlink between its creation and its mode change (a root chmod of any
 *    file), or replace the rule before the admin installs it;
 *  - reach it only through directories of the same kind, both on the path
 *    as given and on the path it resolves to (OpenSSH's StrictModes walk):
 *    a user who owns a directory on the way could swap what lies below it
 *    (a symlink to /etc/elevation.d) before learn opens it;
 *  - create the temporary file exclusively, without following a symlink,
 *    and set its mode on the open file;
 *  - replace an existing entry (a symlink is replaced, never followed) only
 *    when the caller allows it; never a directory.
 */
import { type Stats, closeSync, constants, fchmodSync, fstatSync, fsyncSync, lstatSync, openSync, realpathSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { basename, dirname } from 'node:path';

export class OutputError extends Error {}

/** The sticky bit: only an entry's owner (and the directory's) may remove or rename it. */
const S_ISVTX = 0o1000;

const errnoCode = (e: unknown): string | undefined => (e as NodeJS.ErrnoException).code;

/** Why others than root could add, remove or rename entries in a directory; undefined when they cannot. */
function untrusted(st: Stats): string | undefined {
  if (st.uid !== 0) return `is owned by uid ${st.uid}, not root`;
  if ((st.mode & 0o022) !== 0 && (st.mode & S_ISVTX) === 0) return `is writable by group or other (mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')})`;
  return undefined;
}

/** The directories above `dir`, from / down, on the path as given and on the path it resolves to. */
function ancestors(dir: string): string[] {
  const above = (d: string): string[] => (d === '/' ? [] : [...above(dirname(d)), dirname(d)]);
  let real: string | undefined;
  try {
    real = realpathSync(dir);
  } catch {
    // a missing directory is reported when it is opened
  }
  return [...new Set([...above(dir), ...(real === undefined ? [] : above(real))])];
}

function checkWay(file: string, dir: string): void {
  for (const d of ancestors(dir)) {
    let st: Stats;
    try {
      st = lstatSync(d);
    } catch {
      continue; // the open of the directory says what is missing
    }
    // A symlink's own mode says nothing; the directory holding it is on the list, and so is where it leads.
    const why = st.isSymbolicLink() ? undefined : untrusted(st);
    if (why !== undefined) {
      throw new OutputError(`will not write ${file}: ${d} ${why}, so another user could put another directory in the way `
        + 'before learn writes; write it below directories only root can change, or to standard output');
    }
  }
}

export class RuleOutput {
  private constructor(readonly file: string, private readonly dirFd: number, private readonly name: string) {}

  /**
   * Open the directory of `file` (an absolute path) and check it and the
   * entry there. An existing entry is refused with `exists` as the message
   * unless `replace`.
   */
  static open(file: string, opts: { replace: boolean; exists: string }): RuleOutput {
    const dir = dirname(file), name = basename(file);
    if (name === '' || name === '.' || name === '..' || file.endsWith('/')) throw new OutputError(`${file} names a directory; name the file to write`);
    checkWay(file, dir);
    let dirFd: number;
    try {
      dirFd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') throw new OutputError(`cannot write ${file}: the directory ${dir} does not exist; create it first`);
      if (errnoCode(e) === 'ENOTDIR') throw new OutputError(`cannot write ${file}: ${dir} is not a directory`);
      throw new OutputError(`cannot write ${file}: ${(e as Error).message}`);
    }
    const out = new RuleOutput(file, dirFd, name);
    try {
      out.checkDirectory(dir);
      out.checkEntry(opts);
    } catch (e) {
      out.close();
      throw e;
    }
    return out;
  }

  /** Write `text` as a root-owned 0644 file, replacing the entry in one step (rename). */
  write(text: string): void {
    const tmp = `.${this.name}.learn-${process.pid}`;
    let fd: number | undefined;
    try {
      fd = openSync(this.at(tmp), constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
      fchmodSync(fd, 0o644);
      writeFileSync(fd, text);
      fsyncSync(fd);
      closeSync(fd);
      fd = undefined;
      renameSync(this.at(tmp), this.at(this.name));
    } catch (e) {
      if (fd !== undefined) closeSync(fd);
      try { unlinkSync(this.at(tmp)); } catch { /* not there */ }
      throw new OutputError(`cannot write ${this.file}: ${(e as Error).message.replace(/\/proc\/self\/fd\/\d+\//g, `${dirname(this.file)}/`)}`);
    }
  }

  close(): void {
    try { closeSync(this.dirFd); } catch { /* closed */ }
  }

  private at(name: string): string {
    return `/proc/self/fd/${this.dirFd}/${name}`;
  }

  private checkDirectory(dir: string): void {
    const st = fstatSync(this.dirFd);
    const why = untrusted(st);
    if (why !== undefined) {
      throw new OutputError(`will not write ${this.file}: ${dir} ${why}, so another user could replace the rule (or learn's temporary file) `
        + 'before it is installed; write it to a directory only root can change, or to standard output');
    }
  }

  private checkEntry(opts: { replace: boolean; exists: string }): void {
    let st;
    try {
      st = lstatSync(this.at(this.name));
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return;
      throw new OutputError(`cannot write ${this.file}: ${(e as Error).message}`);
    }
    if (st.isDirectory()) throw new OutputError(`${this.file} is a directory; name the file to write`);
    if (!opts.replace) throw new OutputError(opts.exists);
  }
}
