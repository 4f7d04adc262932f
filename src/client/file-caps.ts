/*
 * File capabilities: the security.capability attribute (struct
 * vfs_cap_data, linux/capability.h) decoded to sets and to the text getcap
 * prints, so that scan can judge them and strip can record exactly what it
 * removed (the raw bytes are kept too: restore writes those back).
 */

export const CAPABILITY_XATTR = 'security.capability';

/** Capability numbers 0..40 (linux/capability.h), named as getcap names them. */
export const CAPABILITY_NAMES = [
  'cap_chown', 'cap_dac_override', 'cap_dac_read_search', 'cap_fowner', 'cap_fsetid', 'cap_kill',
  'cap_setgid', 'cap_setuid', 'cap_setpcap', 'cap_linux_immutable', 'cap_net_bind_service',
  'cap_net_broadcast', 'cap_net_admin', 'cap_net_raw', 'cap_ipc_lock', 'cap_ipc_owner', 'cap_sys_module',
  'cap_sys_rawio', 'cap_sys_chroot', 'cap_sys_ptrace', 'cap_sys_pacct', 'cap_sys_admin', 'cap_sys_boot',
  'cap_sys_nice', 'cap_sys_resource', 'cap_sys_time', 'cap_sys_tty_config', 'cap_mknod', 'cap_lease',
  'cap_audit_write', 'cap_audit_control', 'cap_setfcap', 'cap_mac_override', 'cap_mac_admin', 'cap_syslog',
  'cap_wake_alarm', 'cap_block_suspend', 'cap_audit_read', 'cap_perfmon', 'cap_bpf', 'cap_checkpoint_restore',
] as const;

const REVISION_MASK = 0xff000000;
const FLAG_EFFECTIVE = 0x000001;
const REVISIONS: Record<number, { size: number; words: number }> = {
  0x01000000: { size: 12, words: 1 },
  0x02000000: { size: 20, words: 2 },
  0x03000000: { size: 24, words: 2 },
};

export interface FileCaps {
  /** 1, 2 or 3 (3: namespaced, with a root uid). */
  revision: number;
  permitted: string[];
  inheritable: string[];
  effective: boolean;
  /** The user namespace root a revision-3 value belongs to. */
  rootid?: number;
  /** In setcap's syntax, e.g. "cap_net_raw=ep" (getcap prints a single clause the same way). */
  text: string;
}

export class FileCapsError extends Error {}

function names(bits: bigint): string[] {
  const out: string[] = [];
  for (let i = 0; i < 64; i++) {
    if ((bits >> BigInt(i)) & 1n) out.push(CAPABILITY_NAMES[i] ?? `cap_${i}`);
  }
  return out;
}

function text(permitted: string[], inheritable: string[], effective: boolean): string {
  const groups = new Map<string, string[]>();
  for (const cap of new Set([...permitted, ...inheritable])) {
    const flags = (effective && permitted.includes(cap) ? 'e' : '')
      + (inheritable.includes(cap) ? 'i' : '') + (permitted.includes(cap) ? 'p' : '');
    groups.set(flags, [...(groups.get(flags) ?? []), cap]);
  }
  return [...groups].map(([flags, caps]) => `${caps.join(',')}=${flags}`).join(' ');
}

/** Decode a security.capability value; FileCapsError for a value the kernel would not accept either. */
export function decodeFileCaps(raw: Buffer): FileCaps {
  if (raw.length < 4) throw new FileCapsError(`security.capability of ${raw.length} bytes is too short`);
  const magic = raw.readUInt32LE(0);
  const revision = REVISIONS[magic & REVISION_MASK];
  if (!revision || raw.length !== revision.size) {
    throw new FileCapsError(`security.capability has revision 0x${(magic >>> 24).toString(16)} and ${raw.length} bytes, which the kernel does not define`);
  }
  let permitted = 0n;
  let inheritable = 0n;
  for (let w = 0; w < revision.words; w++) {
    permitted |= BigInt(raw.readUInt32LE(4 + 8 * w)) << BigInt(32 * w);
    inheritable |= BigInt(raw.readUInt32LE(8 + 8 * w)) << BigInt(32 * w);
  }
  const effective = (magic & FLAG_EFFECTIVE) !== 0;
  const p = names(permitted);
  const i = names(inheritable);
  const caps: FileCaps = { revision: magic >>> 24, permitted: p, inheritable: i, effective, text: text(p, i, effective) };
  if (revision.size === 24) caps.rootid = raw.readUInt32LE(20);
  return caps;
}
