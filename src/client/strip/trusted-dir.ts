/*
 * Directories whose content root acts on later (the state directory with
 * strip's records): only root may be able to change them.
 *
 * MUST: refuse a directory that anyone but root could write, or that sits
 * below one (a sticky directory such as /tmp excepted above it: no one
 * else can rename or remove root's entries there). A forged record would
 * make `restore` put a setuid bit on the file it names.
 */
import { chmodSync, lstatSync, mkdirSync, realpathSync } from 'node:fs';
import { resolve } from 'node:path';
import { octal } from './privilege.js';
import { Refusal } from './refusal.js';

const S_ISVTX = 0o1000;
const WRITABLE_BY_OTHERS = 0o022;

/** What is wrong with dir and the directories above it; [] when only root can change them. */
export function trustProblems(dir: string): string[] {
  const real = realpathSync(resolve(dir));
  const parts = real.split('/').filter(Boolean);
  const problems: string[] = [];
  for (let i = 0; i <= parts.length; i++) {
    const where = `/${parts.slice(0, i).join('/')}`;
    const st = lstatSync(where);
    const last = i === parts.length;
    if (!st.isDirectory()) problems.push(`${where} is not a directory`);
    else if (st.uid !== 0) problems.push(`${where} is owned by uid ${st.uid}; make root its owner`);
    else if ((st.mode & WRITABLE_BY_OTHERS) && (last || !(st.mode & S_ISVTX))) {
      problems.push(`${where} is writable by group or other (mode ${octal(st.mode)}); make it ${octal(st.mode & ~WRITABLE_BY_OTHERS)}`);
    }
  }
  return problems;
}

/** Refusal unless dir exists and only root can change it. */
export function checkTrustedDir(dir: string, what: string): void {
  const problems = trustProblems(dir);
  if (problems.length > 0) throw new Refusal(`${what} ${dir} is not safe: ${problems.join('; ')}`);
}

/** Creates dir (and the missing directories above it) root-owned 0755, then checks it. */
export function ensureTrustedDir(dir: string, what: string): void {
  const created = mkdirSync(dir, { recursive: true, mode: 0o755 });
  if (created !== undefined) chmodSync(dir, 0o755);
  checkTrustedDir(dir, what);
}
