/*
 * The shim that keeps the bare command working: SHIMDIR/NAME is a symlink
 * to the native runner stx-run, which, called as NAME, reads
 * STATE/shims/NAME (a symlink to the stripped binary) and runs that binary
 * through the broker. A shim gives nothing: the broker still checks the
 * rule, the user and the binary.
 *
 * MUST: never replace a SHIMDIR/NAME that is not a shim of ours (a
 * program or a script the admin put there), and never point a shim of
 * another stripped binary elsewhere.
 */
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, realpathSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { shimLinksDir } from './defaults.js';
import { Refusal } from './refusal.js';

export interface Shim {
  /** SHIMDIR/NAME -> runner */
  link: string;
  runner: string;
  /** STATE/shims/NAME -> the stripped binary */
  stateLink: string;
}

/** A runner of any install (a shim made by an older or moved install is still ours). */
const RUNNER_SUFFIX = '/native/build/stx-run';

function linkTarget(path: string): string | undefined {
  try {
    return lstatSync(path).isSymbolicLink() ? readlinkSync(path) : undefined;
  } catch {
    return undefined;
  }
}

function exists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/** The shim for path, or Refusal when its names are taken or the runner is missing. */
export function planShim(path: string, shimDir: string, stateDir: string, runner: string): Shim {
  const name = basename(path);
  const shim = { link: join(resolve(shimDir), name), runner, stateLink: join(shimLinksDir(resolve(stateDir)), name) };
  const link = linkTarget(shim.link);
  if (exists(shim.link) && !(link === runner || link?.endsWith(RUNNER_SUFFIX))) {
    throw new Refusal(`${path}: ${shim.link} exists and is not a stx-elevate shim${link ? ` (it links to ${link})` : ''}; `
      + 'move it away, or put the shim elsewhere (--shim-dir DIR), or strip with --no-shim');
  }
  const runs = linkTarget(shim.stateLink);
  if (exists(shim.stateLink) && runs !== path) {
    throw new Refusal(`${path}: a shim named ${name} already runs ${runs ?? '(not a symlink)'} (${shim.stateLink}); `
      + `one name runs one program: restore that one first, or strip this one with --no-shim`);
  }
  if (!existsSync(runner)) {
    throw new Refusal(`${path}: the shim runner ${runner} is missing (this install is incomplete: run scripts/install.sh); `
      + `or strip with --no-shim, and users run stx-elevate ${name}`);
  }
  return shim;
}

function symlinkAtomic(target: string, path: string): void {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  rmSync(tmp, { force: true });
  symlinkSync(target, tmp);
  renameSync(tmp, path);
}

/** The state link first: a shim that finds no state link fails with a clear message, never runs something else. */
export function createShim(shim: Shim, path: string): void {
  mkdirSync(dirname(shim.stateLink), { recursive: true, mode: 0o755 });
  symlinkAtomic(path, shim.stateLink);
  mkdirSync(dirname(shim.link), { recursive: true, mode: 0o755 });
  symlinkAtomic(shim.runner, shim.link);
}

/** Removes what is still ours of the shim; the lines say what was removed or left. */
export function removeShim(shim: Shim, path: string, dryRun: boolean): string[] {
  const lines: string[] = [];
  const link = linkTarget(shim.link);
  if (link === shim.runner || link?.endsWith(RUNNER_SUFFIX)) {
    if (!dryRun) rmSync(shim.link);
    lines.push(`remove shim ${shim.link}`);
  }
  if (linkTarget(shim.stateLink) === path) {
    if (!dryRun) rmSync(shim.stateLink);
    lines.push(`remove ${shim.stateLink}`);
  }
  return lines;
}

// ---- does the shim come first on users' PATH? ----------------------------

/** Debian's default PATHs: login(1) and su(1) take ENV_PATH from login.defs; shells read /etc/profile. */
function defaultPaths(): { where: string; dirs: string[] }[] {
  const found: { where: string; dirs: string[] }[] = [];
  const scan = (file: string, re: RegExp): void => {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      return;
    }
    text.split('\n').forEach((line, i) => {
      const m = re.exec(line);
      if (m) found.push({ where: `${file}:${i + 1}`, dirs: m[1].split(':').filter(Boolean) });
    });
  };
  scan('/etc/login.defs', /^\s*ENV_PATH\s+(?:PATH=)?(\S+)/);
  scan('/etc/profile', /^\s*PATH="?([^"$\s]+)"?\s*$/);
  return found;
}

/** Warnings for each default PATH on which NAME finds the stripped binary before the shim. */
export function pathOrderWarnings(path: string, shimDir: string): string[] {
  const name = basename(path);
  const shimAt = resolve(shimDir);
  const warnings: string[] = [];
  for (const { where, dirs } of defaultPaths()) {
    const shimIndex = dirs.indexOf(shimAt);
    const binIndex = dirs.findIndex((d) => {
      try {
        return realpathSync(join(d, name)) === path;
      } catch {
        return false;
      }
    });
    if (binIndex === -1 || (shimIndex !== -1 && shimIndex < binIndex)) continue;
    warnings.push(`${where}: this PATH (${dirs.join(':')}) finds ${join(dirs[binIndex], name)} `
      + `${shimIndex === -1 ? `and not ${shimAt} at all` : `before ${shimAt}`}: users with it run the stripped binary, which fails `
      + `without its privilege; put ${shimAt} first there, or users run stx-elevate ${name}`);
  }
  return warnings;
}

/** Other names of the binary in its directory (Debian's ping4 and ping6 link to ping): no shim runs them. */
export function otherNames(path: string): string[] {
  const dir = dirname(path);
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return [];
  }
  return entries.map((e) => join(dir, e)).filter((p) => {
    try {
      return p !== path && lstatSync(p).isSymbolicLink() && realpathSync(p) === path;
    } catch {
      return false; // dangling
    }
  });
}
