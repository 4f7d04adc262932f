/*
 * Debian's package manager, as strip needs it: which package owns a binary
 * (under the name dpkg knows it by), and the stat override that makes
 * dpkg install it with the stripped mode on every upgrade.
 *
 * dpkg names files as their package ships them: on a merged-/usr system
 * (Debian 12) /usr/bin/ping is /bin/ping to dpkg, and an override or a
 * query must use that name. dpkg applies an override when it unpacks the
 * file; a maintainer script that runs setcap or chmod afterwards
 * (iputils-ping's postinst does, on every configure) is not covered: see
 * dpkg-hook.ts.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, readdirSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { getgrgidName, getpwuid } from '../../shared/native/libc.js';
import type { Override } from './records.js';
import { Refusal } from './refusal.js';

/** Where dpkg's tools are when root's PATH is short (a dpkg hook's, a cron job's). */
const SYSTEM_DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];
const TIMEOUT_MS = 60_000;

function which(tool: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(':').filter((d) => d.startsWith('/')), ...SYSTEM_DIRS];
  return dirs.map((d) => join(d, tool)).find((p) => existsSync(p));
}

export interface Dpkg {
  query: string;
  statoverride: string;
}

/** dpkg's tools, or undefined on a system without dpkg. */
export function findDpkg(): Dpkg | undefined {
  const query = which('dpkg-query');
  const statoverride = which('dpkg-statoverride');
  return query && statoverride ? { query, statoverride } : undefined;
}

function run(argv: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', timeout: TIMEOUT_MS, stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.error) throw new Refusal(`${argv.join(' ')} failed: ${r.error.message}`);
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/**
 * The names a canonical path may have in dpkg's database: itself, and the
 * same file through the top-level directory links of a merged /usr
 * (/bin -> usr/bin, /sbin -> usr/sbin, /lib -> usr/lib, ...).
 */
export function dpkgNames(path: string): string[] {
  const names = [path];
  for (const entry of readdirSync('/')) {
    const link = `/${entry}`;
    try {
      if (!lstatSync(link).isSymbolicLink()) continue;
      const real = realpathSync(link);
      if (path.startsWith(`${real}/`)) names.push(`${link}${path.slice(real.length)}`);
    } catch {
      // a dangling link names nothing
    }
  }
  return names;
}

export interface Owner {
  package: string;
  /** The path as dpkg names it. */
  path: string;
}

/** The package that ships path, or undefined when none does. */
export function packageOwning(dpkg: Dpkg, path: string): Owner | undefined {
  for (const name of dpkgNames(path)) {
    const r = run([dpkg.query, '--search', name]);
    if (r.status !== 0) continue;
    // "pkg1, pkg2: /path"; "diversion by pkg from/to: /path" lines name no owner
    for (const line of r.stdout.split('\n')) {
      const m = /^([^:]+): (.*)$/.exec(line);
      if (!m || m[2] !== name || m[1].startsWith('diversion by ')) continue;
      return { package: m[1].split(', ')[0], path: name };
    }
  }
  return undefined;
}

/** dpkg-statoverride --list takes a glob: match this one path only. */
const globEscape = (path: string): string => path.replace(/[\\*?[\]]/g, '\\$&');

/** The override dpkg has for path (as dpkg names it), or undefined. */
export function overrideOf(dpkg: Dpkg, path: string): Override | undefined {
  const r = run([dpkg.statoverride, '--list', globEscape(path)]);
  if (r.status === 1) return undefined;
  if (r.status !== 0) throw new Refusal(`dpkg-statoverride --list ${path} failed (status ${r.status}): ${r.stderr.trim()}`);
  for (const line of r.stdout.split('\n')) {
    const m = /^(\S+) (\S+) ([0-7]+) (.*)$/.exec(line);
    if (m && m[4] === path) return { owner: m[1], group: m[2], mode: m[3].padStart(4, '0') };
  }
  return undefined;
}

export function addOverride(dpkg: Dpkg, path: string, o: Override): void {
  // no --update: strip changed the file itself, through its fd
  const r = run([dpkg.statoverride, '--add', o.owner, o.group, o.mode, path]);
  if (r.status !== 0) throw new Refusal(`dpkg-statoverride --add ${o.owner} ${o.group} ${o.mode} ${path} failed (status ${r.status}): ${r.stderr.trim()}`);
}

export function removeOverride(dpkg: Dpkg, path: string): void {
  const r = run([dpkg.statoverride, '--remove', path]);
  if (r.status !== 0) throw new Refusal(`dpkg-statoverride --remove ${path} failed (status ${r.status}): ${r.stderr.trim()}`);
}

/** The names dpkg-statoverride takes: names, or "#N" for an id with no name. */
export function overrideFor(uid: number, gid: number, mode: number): Override {
  return {
    owner: getpwuid(uid)?.name ?? `#${uid}`,
    group: getgrgidName(gid) ?? `#${gid}`,
    mode: (mode & 0o7777).toString(8).padStart(4, '0'),
  };
}

export const overrideText = (o: Override): string => `${o.owner} ${o.group} ${o.mode}`;

/**
 * Whether the override dpkg lists is the one strip set. dpkg lists names
 * where strip may have given "#N": a numeric side matches any name.
 */
export function sameOverride(set: Override, listed: Override): boolean {
  const same = (a: string, b: string): boolean => a === b || a.startsWith('#') || b.startsWith('#');
  return parseInt(set.mode, 8) === parseInt(listed.mode, 8) && same(set.owner, listed.owner) && same(set.group, listed.group);
}
