/*
 * What scan knows about privileged binaries: which privileges the broker
 * can perform in a program's stead (network calls it does as root), which
 * it cannot (credentials, files, devices, the rest of the kernel), and
 * which known programs use their privilege for what. The verdict rests on
 * these tables; each entry says why it is what it is.
 *
 * What the broker performs, and so what a rule can replace (DESIGN.md,
 * elevation.d(5), seccomp/filter.ts): socket() of raw and packet sockets
 * ([socket.NAME]), bind() to ports below ip_unprivileged_port_start
 * ([bind.NAME]), and setsockopt() of SO_MARK, SO_PRIORITY,
 * SO_BINDTODEVICE, SO_RCVBUFFORCE, SO_SNDBUFFORCE, IP_TRANSPARENT and
 * IPV6_TRANSPARENT ([setsockopt.NAME]). Nothing else: no netlink
 * configuration, no ioctl, no file, no credential.
 */
import type { FileCaps } from './file-caps.js';

/** covered: a rule names the path; the others judge the privilege itself. */
export type Verdict = 'covered' | 'network' | 'not replaceable' | 'unknown';
export type Judged = Exclude<Verdict, 'covered'>;

/** What a file holds, as scan found it. */
export interface Held {
  /** The file's name: known programs are recognised by it. */
  name: string;
  /** setuid: the owner's name (or uid as text), and whether that is root. */
  setuid?: { user: string; root: boolean };
  /** setgid: the group's name (or gid as text). */
  setgid?: { group: string };
  caps?: FileCaps;
}

/** One privilege of a file, judged. */
export interface Judgement {
  /** e.g. "setuid root", "setgid shadow", "cap_net_raw". */
  privilege: string;
  verdict: Judged;
  reason: string;
}

const LEARN = 'find out with stx-elevate learn';

// ---- capabilities -------------------------------------------------------------

/** Capabilities whose every use is a call the broker performs as root. */
const NETWORK_CAPABILITIES: ReadonlyMap<string, string> = new Map([
  // raw and packet sockets, and the options that need it (SO_MARK,
  // IP_TRANSPARENT, rebinding SO_BINDTODEVICE), are all brokered calls
  ['cap_net_raw', 'raw and packet sockets: [socket.NAME] rules (privileged options: [setsockopt.NAME])'],
  ['cap_net_bind_service', 'binding ports below 1024: [bind.NAME] rules'],
  // capabilities(7): "(Unused)"; the kernel checks it nowhere, so a rule
  // has nothing to replace
  ['cap_net_broadcast', 'unused by the kernel: nothing to grant'],
]);

/**
 * CAP_NET_ADMIN mostly configures the network (interfaces, routes,
 * firewall, over netlink and ioctl), which the broker does not do; it
 * performs only the socket options that need it. Without knowing which
 * a program uses, the verdict is unknown.
 */
const NET_ADMIN_UNKNOWN = 'cap_net_admin: the broker performs only the socket options that need it '
  + '(SO_MARK, SO_PRIORITY, SO_RCVBUFFORCE, SO_SNDBUFFORCE, IP_TRANSPARENT), not interface, route or firewall '
  + `configuration; which the program needs is unknown, ${LEARN}`;

/**
 * Every other capability, and what it lets a program do that no call the
 * broker performs can stand in for (capabilities(7)).
 */
const OTHER_CAPABILITIES: ReadonlyMap<string, string> = new Map([
  ['cap_chown', 'changes the owner of any file (file privilege)'],
  ['cap_dac_override', 'bypasses file permission checks (file privilege)'],
  ['cap_dac_read_search', 'reads any file and directory (file privilege)'],
  ['cap_fowner', 'acts as the owner of any file (file privilege)'],
  ['cap_fsetid', 'keeps setuid and setgid bits on files it changes (file privilege)'],
  ['cap_kill', 'signals other users\' processes'],
  ['cap_setgid', 'changes group ids (credentials)'],
  ['cap_setuid', 'changes user ids (credentials)'],
  ['cap_setpcap', 'changes capability sets (credentials)'],
  ['cap_linux_immutable', 'sets the immutable and append-only flags of files (file privilege)'],
  ['cap_ipc_lock', 'locks memory beyond RLIMIT_MEMLOCK'],
  ['cap_ipc_owner', 'bypasses the permissions of System V IPC objects'],
  ['cap_sys_module', 'loads kernel modules'],
  ['cap_sys_rawio', 'raw I/O on devices and I/O ports'],
  ['cap_sys_chroot', 'changes its root directory (chroot)'],
  ['cap_sys_ptrace', 'traces other users\' processes'],
  ['cap_sys_pacct', 'switches process accounting'],
  ['cap_sys_admin', 'mounts, namespaces and most system administration'],
  ['cap_sys_boot', 'reboots and loads new kernels'],
  ['cap_sys_nice', 'raises priorities and real-time scheduling'],
  ['cap_sys_resource', 'exceeds resource limits and quotas'],
  ['cap_sys_time', 'sets the system clock'],
  ['cap_sys_tty_config', 'configures terminals (vhangup, console ioctls)'],
  ['cap_mknod', 'creates device files'],
  ['cap_lease', 'takes leases on other users\' files (file privilege)'],
  ['cap_audit_write', 'writes audit records'],
  ['cap_audit_control', 'configures the audit system'],
  ['cap_setfcap', 'sets file capabilities (credentials)'],
  ['cap_mac_override', 'overrides mandatory access control'],
  ['cap_mac_admin', 'configures mandatory access control'],
  ['cap_syslog', 'reads and configures the kernel log'],
  ['cap_wake_alarm', 'sets wake-up alarms'],
  ['cap_block_suspend', 'blocks system suspend'],
  ['cap_audit_read', 'reads the audit log'],
  ['cap_perfmon', 'performance monitoring of other processes and the kernel'],
  ['cap_bpf', 'loads BPF programs and maps'],
  ['cap_checkpoint_restore', 'checkpoint and restore of processes'],
]);

// ---- known programs -------------------------------------------------------------

/**
 * network: the program's privilege goes only into calls the broker
 * performs (`uses`); `netAdmin` says what it needs CAP_NET_ADMIN for, when
 * that too is a brokered call.
 * not replaceable: why no socket broker can stand in (credentials, files,
 * devices, mounts).
 */
type Known =
  | { kind: 'network'; uses: string; netAdmin?: string }
  | { kind: 'not replaceable'; reason: string };

const network = (uses: string, netAdmin?: string): Known => ({ kind: 'network', uses, netAdmin });
const fixed = (reason: string): Known => ({ kind: 'not replaceable', reason });

const CREDENTIALS = (what: string): Known => fixed(`changes credentials: ${what}`);
const MOUNTS = fixed('mounts file systems (cap_sys_admin)');
const SHADOW_READ = fixed('reads /etc/shadow (setgid shadow: file privilege)');
const TERMINALS = fixed('writes to other users\' terminals (setgid tty)');
const MAIL_LOCKS = fixed('creates lock files in /var/mail (setgid mail: file privilege)');
const LOCATE_DB = fixed('reads the file name database, which lists files the user may not see (file privilege)');
// iputils ping asks for SO_MARK with -m, which needs CAP_NET_ADMIN or
// CAP_NET_RAW: a [setsockopt.NAME] rule; distributions that gave ping
// cap_net_admin did so for that option
const PING = network('raw ICMP sockets (iputils)', 'SO_MARK (-m): a [setsockopt.NAME] rule');

/** By file name (basename), as the distributions ship them. */
const KNOWN_PROGRAMS: ReadonlyMap<string, Known> = new Map([
  // Network programs: old Debian ping, ping6 and traceroute6 were setuid
  // root for a raw socket alone; the rest hold cap_net_raw for the same.
  ['ping', PING],
  ['ping4', PING],
  ['ping6', PING],
  ['traceroute6', network('raw ICMPv6 sockets (iputils)')],
  ['traceroute6.iputils', network('raw ICMPv6 sockets (iputils)')],
  ['arping', network('a packet socket for ARP (iputils)')],
  ['clockdiff', network('raw ICMP sockets for timestamp requests (iputils)')],
  ['fping', network('raw ICMP sockets')],
  ['fping6', network('raw ICMPv6 sockets')],
  ['mtr-packet', network('raw ICMP, UDP and TCP probe sockets')],

  // Credentials: each becomes another user or group, which a broker
  // handing back sockets cannot make a process.
  ['su', CREDENTIALS('runs a shell as another user')],
  ['sudo', CREDENTIALS('runs commands as another user')],
  ['sudoedit', CREDENTIALS('edits files as another user')],
  ['doas', CREDENTIALS('runs commands as another user')],
  ['ksu', CREDENTIALS('runs a shell as another user (Kerberos)')],
  ['pkexec', CREDENTIALS('runs commands as another user (polkit)')],
  ['newgrp', CREDENTIALS('starts a shell with another group')],
  ['sg', CREDENTIALS('runs a command with another group')],
  ['newuidmap', CREDENTIALS('writes the uid map of a user namespace')],
  ['newgidmap', CREDENTIALS('writes the gid map of a user namespace')],
  ['dbus-daemon-launch-helper', CREDENTIALS('starts system services as their own users')],
  ['suexec', CREDENTIALS('runs CGI programs as their owners')],
  ['exim4', CREDENTIALS('delivers mail as its recipients')],
  ['at', fixed('writes the at spool as user daemon (setuid daemon: file privilege)')],
  ['busybox', fixed('a multi-call binary: su, passwd, mount and more in one file')],

  // Authentication: reading the password hashes is a file privilege.
  ['passwd', fixed('writes /etc/shadow (file privilege)')],
  ['chsh', fixed('writes /etc/passwd (file privilege)')],
  ['chfn', fixed('writes /etc/passwd (file privilege)')],
  ['gpasswd', fixed('writes /etc/group and /etc/gshadow (file privilege)')],
  ['chage', SHADOW_READ],
  ['expiry', SHADOW_READ],
  ['unix_chkpwd', fixed('reads /etc/shadow to check the caller\'s password (setgid shadow: file privilege)')],
  ['polkit-agent-helper-1', fixed('authenticates users through PAM, reading /etc/shadow (file privilege)')],
  ['pam_timestamp_check', fixed('reads PAM timestamp files of other sessions (file privilege)')],
  ['ssh-keysign', fixed('reads the host\'s private keys in /etc/ssh (file privilege)')],
  // Debian's ssh-agent is setgid _ssh only so that the user's other
  // processes cannot ptrace it and read its keys
  ['ssh-agent', fixed('setgid so that the user\'s other processes cannot read its keys (ptrace protection), not for a call')],

  // Mounts and namespaces: cap_sys_admin.
  ['mount', MOUNTS],
  ['umount', MOUNTS],
  ['fusermount', fixed('mounts FUSE file systems (cap_sys_admin)')],
  ['fusermount3', fixed('mounts FUSE file systems (cap_sys_admin)')],
  ['mount.nfs', MOUNTS],
  ['mount.cifs', MOUNTS],
  ['mount.ecryptfs_private', MOUNTS],
  ['ntfs-3g', fixed('mounts NTFS through FUSE and opens block devices (cap_sys_admin)')],
  ['bwrap', fixed('creates namespaces and mounts for a sandbox (cap_sys_admin)')],
  ['chrome-sandbox', fixed('creates namespaces for a sandbox (cap_sys_admin)')],
  ['snap-confine', fixed('creates namespaces and mounts for snaps (cap_sys_admin)')],

  // Spool, log and lock files owned by a group.
  ['crontab', fixed('writes the spool directory /var/spool/cron/crontabs (setgid crontab: file privilege)')],
  ['wall', TERMINALS],
  ['write', TERMINALS],
  ['bsd-write', TERMINALS],
  ['utempter', fixed('writes /var/run/utmp and /var/log/wtmp (setgid utmp: file privilege)')],
  ['screen', fixed('writes utmp (setgid utmp) or joins other users\' sessions (setuid root)')],
  ['dotlockfile', MAIL_LOCKS],
  ['lockfile', MAIL_LOCKS],
  ['mail-lock', MAIL_LOCKS],
  ['mail-unlock', MAIL_LOCKS],
  ['mail-touchlock', MAIL_LOCKS],
  ['procmail', fixed('delivers mail into other users\' mailboxes (file privilege)')],
  ['locate', LOCATE_DB],
  ['plocate', LOCATE_DB],
  ['mlocate', LOCATE_DB],

  // Devices and network configuration beyond sockets.
  ['Xorg.wrap', fixed('starts the X server as root for input and graphics devices (device privilege)')],
  ['Xorg', fixed('opens input and graphics devices and sets video modes (device privilege)')],
  ['pppd', fixed('configures network interfaces and routes (cap_net_admin beyond socket options)')],
  ['qemu-bridge-helper', fixed('attaches tap devices to bridges (cap_net_admin beyond socket options)')],
  ['lxc-user-nic', fixed('creates network devices and moves them between namespaces (cap_net_admin beyond socket options)')],
  ['spice-client-glib-usb-acl-helper', fixed('changes the access control lists of USB devices (file privilege)')],
  ['nvidia-modprobe', fixed('loads kernel modules and creates device files')],
]);

// ---- judging ---------------------------------------------------------------------

/** Worst first: one not-replaceable privilege makes the whole file so. */
const ORDER: readonly Judged[] = ['not replaceable', 'unknown', 'network'];

function judgeCapability(cap: string, known: Known | undefined): Judgement {
  const net = NETWORK_CAPABILITIES.get(cap);
  if (net) return { privilege: cap, verdict: 'network', reason: `${cap}: ${net}` };
  if (cap === 'cap_net_admin') {
    if (known?.kind === 'network' && known.netAdmin) {
      return { privilege: cap, verdict: 'network', reason: `cap_net_admin: ${known.netAdmin}` };
    }
    return { privilege: cap, verdict: 'unknown', reason: NET_ADMIN_UNKNOWN };
  }
  const other = OTHER_CAPABILITIES.get(cap);
  return { privilege: cap, verdict: 'not replaceable', reason: `${cap}: ${other ?? 'a capability this version does not know'}` };
}

/** Each privilege the file holds, with its verdict and why. */
export function judge(held: Held): Judgement[] {
  const known = KNOWN_PROGRAMS.get(held.name);
  const out: Judgement[] = [];
  if (held.setuid) {
    const privilege = `setuid ${held.setuid.user}`;
    if (known?.kind === 'not replaceable') out.push({ privilege, verdict: 'not replaceable', reason: known.reason });
    else if (!held.setuid.root) {
      out.push({ privilege, verdict: 'not replaceable', reason: `runs as user ${held.setuid.user} (credentials)` });
    } else if (known?.kind === 'network') out.push({ privilege, verdict: 'network', reason: `setuid root for ${known.uses} only` });
    else out.push({ privilege, verdict: 'unknown', reason: `setuid root, use of privilege unknown; ${LEARN}` });
  }
  if (held.setgid) {
    const privilege = `setgid ${held.setgid.group}`;
    // a socket broker cannot give a process a group's access to files
    const reason = known?.kind === 'not replaceable' ? known.reason : `file access as group ${held.setgid.group}`;
    out.push({ privilege, verdict: 'not replaceable', reason });
  }
  if (held.caps) {
    const caps = [...new Set([...held.caps.permitted, ...held.caps.inheritable])];
    if (caps.length === 0) {
      // setcap can write an attribute with empty sets: it grants nothing
      out.push({ privilege: 'security.capability', verdict: 'network', reason: 'an empty capability set: nothing to grant' });
    }
    for (const cap of caps) {
      const j = judgeCapability(cap, known);
      // a known program's own reason says more than its capability's
      if (known?.kind === 'not replaceable') out.push({ ...j, verdict: 'not replaceable', reason: known.reason });
      else out.push(j);
    }
  }
  return out;
}

/** The file's verdict: its worst privilege's, with the reasons for that verdict (each once). */
export function overall(judgements: Judgement[]): { verdict: Judged; reasons: string[] } {
  const verdict = ORDER.find((v) => judgements.some((j) => j.verdict === v)) ?? 'network';
  const reasons = [...new Set(judgements.filter((j) => j.verdict === verdict).map((j) => j.reason))];
  return { verdict, reasons };
}
