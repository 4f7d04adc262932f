/*
 * Is the client sandboxed? The broker starts the program itself, so a
 * program started for a sandboxed client would run outside that sandbox:
 * without its no_new_privs promise, its seccomp filter, its LSM
 * confinement, or its view of the file system.
 *
 * MUST:
 *  - judge from the kernel's view of the client only (/proc/PID, read while
 *    the client's pidfd shows it alive, and checked again afterwards);
 *  - report every reason that applies, not only the first;
 *  - fail closed: anything it cannot read (other than "this kernel has no
 *    LSM label") is an IdentityError, and the launch is refused.
 */
import { readFileSync, statSync } from 'node:fs';
import { IdentityError, alive, type ClientIdentity } from './identity.js';

/** What the kernel says about one process (the client, or the broker itself). */
export interface Confinement {
  noNewPrivs: boolean;
  /** 0 none, 1 strict, 2 filter. */
  seccompMode: number;
  /** Filters attached (Seccomp_filters, Linux 5.9+); undefined when the kernel does not say. */
  seccompFilters: number | undefined;
  /** attr/current without its trailing newline or NUL; '' when there is none. */
  lsmLabel: string;
  mountNs: { dev: bigint; ino: bigint };
}

/** Machine-readable reasons, as the audit records carry them (`sandbox`). */
export type SandboxReason = 'no_new_privs' | 'seccomp' | 'lsm-label' | 'mount-namespace';

export interface Sandboxed {
  reasons: SandboxReason[];
  /** For the client and the audit record: one phrase per reason. */
  phrases: string[];
}

/** AppArmor's label for a process no profile confines. */
const APPARMOR_UNCONFINED = 'unconfined';
const MAX_LABEL = 200;

const who = (pid: number | 'self'): string => (pid === 'self' ? 'the broker' : `client pid ${pid}`);

function statusField(status: string, name: string): string | undefined {
  return new RegExp(`^${name}:\\s+(\\S+)`, 'm').exec(status)?.[1];
}

/**
 * The LSM label, '' when there is none: ENOENT (no LSM support) and EINVAL
 * (no LSM that keeps a "current" label, as on this kernel) are "no label".
 * SELinux ends the label with a NUL, AppArmor with a newline.
 */
function lsmLabel(pid: number | 'self'): string {
  try {
    return readFileSync(`/proc/${pid}/attr/current`, 'utf8').replace(/[\0\n]+$/, '');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'EINVAL') return '';
    throw new IdentityError(`cannot read the LSM label of ${who(pid)}: ${(e as Error).message}`);
  }
}

/**
 * NoNewPrivs, Seccomp, the LSM label and the mount namespace of pid;
 * IdentityError when unreadable. `status`: its /proc/PID/status, when the
 * caller has read it already.
 */
export function readConfinement(pid: number | 'self', status?: string): Confinement {
  try {
    return readUnchecked(pid, status ?? readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch (e) {
    if (e instanceof IdentityError) throw e;
    throw new IdentityError(`cannot read the sandbox of ${who(pid)}: ${(e as Error).message}`);
  }
}

function readUnchecked(pid: number | 'self', status: string): Confinement {
  const nnp = statusField(status, 'NoNewPrivs');
  const mode = statusField(status, 'Seccomp');
  const filters = statusField(status, 'Seccomp_filters');
  const numeric = (v: string | undefined): boolean => v !== undefined && /^\d+$/.test(v);
  if (!numeric(nnp) || !numeric(mode) || (filters !== undefined && !numeric(filters))) {
    throw new IdentityError(`cannot read NoNewPrivs and Seccomp of ${who(pid)}`);
  }
  const ns = statSync(`/proc/${pid}/ns/mnt`, { bigint: true });
  return {
    noNewPrivs: nnp !== '0',
    seccompMode: Number(mode),
    seccompFilters: filters === undefined ? undefined : Number(filters),
    lsmLabel: lsmLabel(pid),
    mountNs: { dev: ns.dev, ino: ns.ino },
  };
}

const quote = (label: string): string =>
  JSON.stringify(label.length > MAX_LABEL ? `${label.slice(0, MAX_LABEL)}...` : label);

/**
 * Every way the client is confined beyond what the broker is: what a
 * program the broker starts would not inherit.
 *
 * - no_new_privs: the client promised never to gain privileges by exec;
 *   an elevated program is exactly such a gain, whatever the broker's own
 *   flag (the program always gets no_new_privs from the launcher anyway).
 * - seccomp: the program inherits the broker's filters, not the client's.
 *   The kernel shows only how many filters a process has, not which, so a
 *   client with as many filters as the broker is taken to share them (the
 *   profile of a container both run in); any other number of filters is
 *   its own, and so is any filter when the kernel does not give the count.
 *   The broker should run with no filter (then any filter counts).
 * - LSM label: the program runs under the broker's label. The defaults are
 *   no label, the broker's own label, and AppArmor's "unconfined".
 * - mount namespace: the program runs in the broker's.
 */
export function sandboxReasons(client: Confinement, broker: Confinement): Sandboxed {
  const out: Sandboxed = { reasons: [], phrases: [] };
  const add = (reason: SandboxReason, phrase: string): void => {
    out.reasons.push(reason);
    out.phrases.push(phrase);
  };
  if (client.noNewPrivs) add('no_new_privs', 'no_new_privs');
  const shared = client.seccompMode === broker.seccompMode && client.seccompFilters !== undefined
    && client.seccompFilters === broker.seccompFilters;
  if (client.seccompMode !== 0 && !shared) {
    add('seccomp', client.seccompMode === 1 ? 'seccomp strict mode' : 'a seccomp filter');
  }
  if (client.lsmLabel !== '' && client.lsmLabel !== broker.lsmLabel && client.lsmLabel !== APPARMOR_UNCONFINED) {
    add('lsm-label', `the LSM label ${quote(client.lsmLabel)}`);
  }
  if (client.mountNs.dev !== broker.mountNs.dev || client.mountNs.ino !== broker.mountNs.ino) {
    add('mount-namespace', "a mount namespace other than the broker's");
  }
  return out;
}

let own: Confinement | undefined;

/**
 * The broker's own confinement, read once. It changes only by the broker's
 * own doing (prctl no_new_privs, seccomp(2), setns or unshare of its mount
 * namespace, a write to its attr/current, an exec), and it does none of
 * these (its only setns is into network namespaces): reading it again per
 * launch would read the same values.
 */
function brokerConfinement(): Confinement {
  own ??= readConfinement('self');
  return own;
}

/**
 * The client's sandbox, read while its pidfd shows it alive; no reasons:
 * not sandboxed. `status`: the client's /proc/PID/status (identity.ts clientStatus).
 */
export function clientSandbox(identity: ClientIdentity, status: string): Sandboxed {
  if (!alive(identity)) throw new IdentityError(`client pid ${identity.pid} has exited`);
  const client = readConfinement(identity.pid, status);
  // Alive after the reads: the pid was the client's all along (not reaped, not reused).
  if (!alive(identity)) throw new IdentityError(`client pid ${identity.pid} exited while it was being read`);
  return sandboxReasons(client, brokerConfinement());
}
