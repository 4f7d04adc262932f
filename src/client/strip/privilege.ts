/*
 * A binary's privilege: the setuid and setgid bits and the
 * security.capability attribute, read from, removed from and put back on
 * an open fd.
 *
 * MUST:
 *  - read and change through the fd only (fstat, fgetxattr,
 *    fremovexattr, fchmod, fchown, fsetxattr);
 *  - put back the exact bytes of the attribute, not a re-encoding of its
 *    text, and the owner before the mode and the attribute: the kernel
 *    clears the setuid bits and the capability on a change of owner;
 *  - check what it put back by reading it again.
 */
import { fchmodSync, fchownSync, fstatSync } from 'node:fs';
import { fgetxattr, fremovexattr, fsetxattr } from '../../shared/native/xattr.js';
import { CAPABILITY_XATTR, FileCapsError, decodeFileCaps } from '../file-caps.js';
import { Refusal } from './refusal.js';

const S_ISUID = 0o4000;
const S_ISGID = 0o2000;
const PRIVILEGE_BITS = S_ISUID | S_ISGID;

export interface Privilege {
  /** Permission bits (07777). */
  mode: number;
  uid: number;
  gid: number;
  /** The raw security.capability value; null when there is none. */
  capability: Buffer | null;
}

export const octal = (mode: number): string => (mode & 0o7777).toString(8).padStart(4, '0');

export function readPrivilege(fd: number, path: string): Privilege {
  const st = fstatSync(fd);
  return { mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, capability: fgetxattr(fd, CAPABILITY_XATTR, path) };
}

export function hasPrivilege(p: Privilege): boolean {
  return (p.mode & PRIVILEGE_BITS) !== 0 || p.capability !== null;
}

/** The mode strip leaves: the same without setuid and setgid. */
export function strippedMode(mode: number): number {
  return mode & ~PRIVILEGE_BITS;
}

/** getcap's text for a capability value, or what is wrong with it (the raw bytes are kept either way). */
export function capabilityText(raw: Buffer): string {
  try {
    return decodeFileCaps(raw).text;
  } catch (e) {
    if (e instanceof FileCapsError) return `an undecodable value (${e.message})`;
    throw e;
  }
}

/** e.g. "setuid (mode 4755)", "capability cap_net_raw=ep", both joined by ", ". */
export function describePrivilege(p: Privilege): string {
  const bits = [(p.mode & S_ISUID) && 'setuid', (p.mode & S_ISGID) && 'setgid'].filter(Boolean).join(' and ');
  return [
    bits && `${bits} (mode ${octal(p.mode)}, owner ${p.uid}:${p.gid})`,
    p.capability && `capability ${capabilityText(p.capability)}`,
  ].filter(Boolean).join(', ');
}

export function removeCapability(fd: number, path: string): void {
  fremovexattr(fd, CAPABILITY_XATTR, path);
}

export function setMode(fd: number, mode: number): void {
  fchmodSync(fd, mode);
}

/** Owner, then mode, then the attribute, exactly; Refusal when reading back shows anything else. */
export function putBack(fd: number, path: string, p: Privilege): void {
  const st = fstatSync(fd);
  if (st.uid !== p.uid || st.gid !== p.gid) fchownSync(fd, p.uid, p.gid);
  fchmodSync(fd, p.mode);
  if (p.capability) fsetxattr(fd, CAPABILITY_XATTR, p.capability, path);
  else fremovexattr(fd, CAPABILITY_XATTR, path);
  const now = readPrivilege(fd, path);
  const same = now.mode === p.mode && now.uid === p.uid && now.gid === p.gid
    && (now.capability === null ? p.capability === null : p.capability !== null && now.capability.equals(p.capability));
  if (!same) {
    throw new Refusal(`${path}: put back ${describePrivilege(p) || `mode ${octal(p.mode)}`}, but it reads back as `
      + `${describePrivilege(now) || `mode ${octal(now.mode)} owner ${now.uid}:${now.gid}`}`
      + (p.capability && now.capability ? ' (the kernel rewrote the capability value: a namespaced value, revision 3, becomes revision 2 for the initial namespace)' : ''));
  }
}
