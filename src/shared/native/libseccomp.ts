/*
 * Typed bindings to libseccomp 2.5 (libseccomp.so.2) through koffi.
 *
 * MUST guarantee:
 * - every libseccomp failure (a negative errno, a NULL context) becomes a
 *   thrown SeccompError naming the function and the errno: a half-built
 *   filter is never exported as if it were whole;
 * - a filter context is released exactly once (withFilterContext);
 * - exported BPF is read back whole from a private memfd (no file on disk
 *   that another process could swap between write and read).
 *
 * Constant values are those of /usr/include/seccomp.h (libseccomp-dev 2.5.4).
 * The libraries are loaded on first use, not at import, so a program that
 * only imports a module that imports this one (`stx-elevate check` without
 * libseccomp installed) still starts.
 */
import fs from 'node:fs';
import os from 'node:os';
import koffi from 'koffi';

// ---- actions (uint32_t) ------------------------------------------------------

export const SCMP_ACT_KILL_PROCESS = 0x80000000;
export const SCMP_ACT_KILL_THREAD = 0x00000000;
export const SCMP_ACT_TRAP = 0x00030000;
export const SCMP_ACT_NOTIFY = 0x7fc00000;
export const SCMP_ACT_LOG = 0x7ffc0000;
export const SCMP_ACT_ALLOW = 0x7fff0000;
/** SCMP_ACT_ERRNO(x): fail the call with errno x. */
export const SCMP_ACT_ERRNO = (errno: number): number => (0x00050000 | (errno & 0xffff)) >>> 0;

// ---- filter attributes (enum scmp_filter_attr) -------------------------------

export const SCMP_FLTATR_ACT_DEFAULT = 1;
export const SCMP_FLTATR_ACT_BADARCH = 2;
export const SCMP_FLTATR_CTL_NNP = 3;
export const SCMP_FLTATR_CTL_TSYNC = 4;
export const SCMP_FLTATR_API_TSKIP = 5;
export const SCMP_FLTATR_CTL_LOG = 6;
export const SCMP_FLTATR_CTL_SSB = 7;
export const SCMP_FLTATR_CTL_OPTIMIZE = 8;
export const SCMP_FLTATR_API_SYSRAWRC = 9;

// ---- argument comparisons (enum scmp_compare) --------------------------------

export const SCMP_CMP_NE = 1;
export const SCMP_CMP_LT = 2;
export const SCMP_CMP_LE = 3;
export const SCMP_CMP_EQ = 4;
export const SCMP_CMP_GE = 5;
export const SCMP_CMP_GT = 6;
/** (arg & datumA) == datumB */
export const SCMP_CMP_MASKED_EQ = 7;

// ---- architectures (AUDIT_ARCH_*) --------------------------------------------

export const SCMP_ARCH_NATIVE = 0;
export const SCMP_ARCH_X86 = 0x40000003;      // AUDIT_ARCH_I386
export const SCMP_ARCH_X86_64 = 0xc000003e;   // AUDIT_ARCH_X86_64
export const SCMP_ARCH_X32 = 0x4000003e;      // AUDIT_ARCH_X86_64 without __AUDIT_ARCH_64BIT

/** seccomp_syscall_resolve_name's "no such call" (__NR_SCMP_ERROR). */
export const NR_SCMP_ERROR = -1;

/** An opaque scmp_filter_ctx (a pointer: a BigInt in koffi 3). */
export type ScmpFilterCtx = bigint;

/** One struct scmp_arg_cmp: compare argument `arg` (0-5) with `op`. */
export interface ArgCmp {
  arg: number;
  op: number;
  /** 64-bit: the value for EQ/NE/…, the mask for MASKED_EQ. */
  datumA: bigint;
  /** 64-bit: unused except as the expected value for MASKED_EQ. */
  datumB: bigint;
}

/** A libseccomp (or libc) call failed; errno is positive. */
export class SeccompError extends Error {
  readonly errno: number;
  readonly code: string;

  constructor(readonly call: string, errno: number) {
    const code = errnoName(errno);
    super(`${call}: ${strerror(errno)}${code ? ` (${code})` : ''}`);
    this.name = 'SeccompError';
    this.errno = errno;
    this.code = code;
  }
}

// ---- native bindings, loaded once ---------------------------------------------

interface Native {
  seccomp_init: (defAction: number) => ScmpFilterCtx | null;
  seccomp_release: (ctx: ScmpFilterCtx) => void;
  seccomp_attr_set: (ctx: ScmpFilterCtx, attr: number, value: number) => number;
  seccomp_arch_native: () => number;
  seccomp_arch_exist: (ctx: ScmpFilterCtx, arch: number) => number;
  seccomp_syscall_resolve_name: (name: string) => number;
  seccomp_rule_add_array: (
    ctx: ScmpFilterCtx, action: number, syscall: number, count: number,
    args: NativeArgCmp[] | null) => number;
  seccomp_export_bpf: (ctx: ScmpFilterCtx, fd: number) => number;
  memfd_create: (name: string, flags: number) => number;
  strerror: (errnum: number) => string;
}

/** The C struct's field names, as koffi marshals them. */
interface NativeArgCmp { arg: number; op: number; datum_a: bigint; datum_b: bigint }

let native: Native | undefined;

function bind(): Native {
  if (native) return native;
  const lib = koffi.load('libseccomp.so.2');
  const libc = koffi.load('libc.so.6');
  // Unnamed struct: a koffi type name is global to the process, and another
  // module binding libseccomp must not collide with this one.
  const argCmp = koffi.struct({
    arg: 'unsigned int',
    op: 'int',            // enum scmp_compare
    datum_a: 'uint64_t',  // scmp_datum_t
    datum_b: 'uint64_t',
  });
  const ctx = 'void *';   // scmp_filter_ctx
  native = {
    seccomp_init: lib.func('seccomp_init', ctx, ['uint32_t']),
    seccomp_release: lib.func('seccomp_release', 'void', [ctx]),
    seccomp_attr_set: lib.func('seccomp_attr_set', 'int', [ctx, 'int', 'uint32_t']),
    seccomp_arch_native: lib.func('seccomp_arch_native', 'uint32_t', []),
    seccomp_arch_exist: lib.func('seccomp_arch_exist', 'int', [ctx, 'uint32_t']),
    seccomp_syscall_resolve_name: lib.func('seccomp_syscall_resolve_name', 'int', ['const char *']),
    seccomp_rule_add_array: lib.func('seccomp_rule_add_array', 'int',
      [ctx, 'uint32_t', 'int', 'unsigned int', koffi.pointer(argCmp)]),
    seccomp_export_bpf: lib.func('seccomp_export_bpf', 'int', [ctx, 'int']),
    memfd_create: libc.func('memfd_create', 'int', ['const char *', 'unsigned int']),
    strerror: libc.func('strerror', 'const char *', ['int']),
  };
  return native;
}

// ---- errors --------------------------------------------------------------------

const errnoNames = new Map<number, string>(
  Object.entries(os.constants.errno).map(([name, n]) => [n, name]));

function errnoName(errno: number): string {
  return errnoNames.get(errno) ?? '';
}

function strerror(errno: number): string {
  try {
    return bind().strerror(errno);
  /* c8 ignore next 3: only when libc itself failed to load */
  } catch {
    return `errno ${errno}`;  // still say which errno
  }
}

/** libseccomp returns 0 or a negative errno: throw on the latter. */
function check(call: string, rc: number): number {
  if (rc < 0) throw new SeccompError(call, -rc);
  return rc;
}

// ---- the API -------------------------------------------------------------------

/** seccomp_init: a context for the native ABI with `defAction` as default. */
export function seccompInit(defAction: number): ScmpFilterCtx {
  const ctx = bind().seccomp_init(defAction >>> 0);
  // seccomp_init gives NULL, not an errno; EINVAL (bad action) or ENOMEM.
  if (ctx === null || ctx === 0n) throw new SeccompError('seccomp_init', os.constants.errno.EINVAL);
  return ctx;
}

export function seccompRelease(ctx: ScmpFilterCtx): void {
  bind().seccomp_release(ctx);
}

/** Create a context, run fn on it, release it whatever happens. */
export function withFilterContext<T>(defAction: number, fn: (ctx: ScmpFilterCtx) => T): T {
  const ctx = seccompInit(defAction);
  try {
    return fn(ctx);
  } finally {
    seccompRelease(ctx);
  }
}

export function seccompAttrSet(ctx: ScmpFilterCtx, attr: number, value: number): void {
  check(`seccomp_attr_set(${attr})`, bind().seccomp_attr_set(ctx, attr, value >>> 0));
}

/** The AUDIT_ARCH_* token of the architecture this process runs on. */
export function seccompArchNative(): number {
  return bind().seccomp_arch_native() >>> 0;
}

/**
 * Is `arch` in the filter? Mind libseccomp's inverted convention: 0 means
 * present and -EEXIST means *absent*; other negative values are failures.
 */
export function seccompArchExist(ctx: ScmpFilterCtx, arch: number): boolean {
  const rc = bind().seccomp_arch_exist(ctx, arch >>> 0);
  if (rc === -os.constants.errno.EEXIST) return false;
  check('seccomp_arch_exist', rc);
  return true;
}

/** The native ABI's number for a system call; throws for an unknown name. */
export function seccompSyscallResolveName(name: string): number {
  const nr = bind().seccomp_syscall_resolve_name(name);
  if (nr === NR_SCMP_ERROR) {
    throw new SeccompError(`seccomp_syscall_resolve_name(${name})`, os.constants.errno.ENOENT);
  }
  return nr;
}

/**
 * seccomp_rule_add_array: `action` on syscall `nr` when every comparison in
 * `args` holds. `label` names the call in errors (e.g. "socket").
 */
export function seccompRuleAdd(
  ctx: ScmpFilterCtx, action: number, nr: number, args: readonly ArgCmp[], label: string,
): void {
  const cmps = args.map((a): NativeArgCmp => ({
    arg: a.arg, op: a.op, datum_a: BigInt.asUintN(64, a.datumA), datum_b: BigInt.asUintN(64, a.datumB),
  }));
  const rc = bind().seccomp_rule_add_array(ctx, action >>> 0, nr, cmps.length, cmps.length ? cmps : null);
  check(`seccomp_rule_add(${label})`, rc);
}

const MFD_CLOEXEC = 0x0001;

/**
 * seccomp_export_bpf into a private memfd, read back: the BPF program as an
 * array of struct sock_filter (8 bytes each), ready for seccomp(2).
 */
export function seccompExportBpf(ctx: ScmpFilterCtx): Buffer {
  const n = bind();
  const fd = n.memfd_create('stx-seccomp-bpf', MFD_CLOEXEC);
  /* c8 ignore next: out of fds or memory */
  if (fd < 0) throw new SeccompError('memfd_create', koffi.errno());
  try {
    check('seccomp_export_bpf', n.seccomp_export_bpf(ctx, fd));
    return readWhole(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Read an fd's whole content from offset 0 (its size from fstat). */
function readWhole(fd: number): Buffer {
  const size = fs.fstatSync(fd).size;
  const buf = Buffer.alloc(size);
  let done = 0;
  while (done < size) {
    const got = fs.readSync(fd, buf, done, size - done, done);
    /* c8 ignore next 4: a memfd only we hold does not shrink */
    if (got === 0) break;
    done += got;
  }
  if (done !== size) throw new Error(`seccomp_export_bpf: short read (${done} of ${size} bytes)`);
  return buf;
}
