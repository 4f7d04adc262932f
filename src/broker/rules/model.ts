/*
 * The validated rule model: what the parser produces and everything else
 * (matching, the seccomp filter, the supervisor, the audit) consumes.
 * Every value here has been checked; numbers are the kernel's numbers.
 */

/** Where a rule or a key came from, for error messages and audit records. */
export interface Location {
  file: string;     // absolute path of the .conf file
  line: number;     // 1-based line of the section header or the key
  section: string;  // e.g. "program", "socket.icmp"
}

/** `[socket.NAME]`: socket(domain, type, protocol) performed as root (or, as = deny, refused). */
export interface SocketRule {
  kind: 'socket';
  /** as = deny: matched calls are refused with errno, never performed. */
  deny?: true;
  name: string;            // NAME of [socket.NAME]
  at: Location;            // the section header
  domain: number;          // AF_* number, e.g. 2 for inet
  type: number;            // SOCK_* base type (no SOCK_NONBLOCK/SOCK_CLOEXEC bits)
  protocol: number;        // IPPROTO_* or ethertype number
  /** IP_HDRINCL / IPV6_HDRINCL allowed on this socket (forging headers). */
  headerIncluded: boolean;
  /** errno answered when a trapped call on this rule is refused (default EPERM). */
  errno: number;
}

/** An inclusive range of numbers: a port range, or values of an option. */
export interface Range {
  from: number;
  to: number;              // >= from; a single number is { from: n, to: n }
}

/**
 * `[bind.NAME]`: bind() of the program's own inet/inet6 socket to a
 * privileged port, performed as root. Sections may overlap: the first that
 * matches a bind decides (with its reusePort), in file order.
 */
export interface BindRule {
  kind: 'bind';
  /** as = deny: matched calls are refused with errno, never performed. */
  deny?: true;
  name: string;            // NAME of [bind.NAME]
  at: Location;            // the section header
  families: number[];      // AF_INET and/or AF_INET6, as written, no repeats
  types: number[];         // SOCK_STREAM and/or SOCK_DGRAM, as written, no repeats
  ports: Range[];          // as written, within 1-65535
  /**
   * Canonical address texts (names.ts canonicalAddress) the socket may be
   * bound to; 0.0.0.0 and :: stand for the wildcard bind only. undefined:
   * any address, the wildcard included. Every listed family has one.
   */
  addresses: string[] | undefined;
  /** A socket with SO_REUSEPORT set (joining a port group) may be bound. */
  reusePort: boolean;
  /** errno for a refused bind (default EACCES, bind's own answer). */
  errno: number;
}

/**
 * `[setsockopt.NAME]`: setsockopt() of an option that needs privilege,
 * performed as root on the program's socket. At most one section per
 * (level, option) in a file.
 */
export interface SetsockoptRule {
  kind: 'setsockopt';
  /** as = deny: matched calls are refused with errno, never performed. */
  deny?: true;
  name: string;            // NAME of [setsockopt.NAME]
  at: Location;            // the section header
  level: number;           // SOL_SOCKET, SOL_IP or SOL_IPV6, following from the option
  option: number;          // SO_MARK, ...
  optionName: string;      // 'SO_MARK', ...
  /** Allowed values, as written (0 and 1 for on/off options); undefined for SO_BINDTODEVICE. */
  values: Range[] | undefined;
  /** SO_BINDTODEVICE only: allowed interface names, as written, no repeats. */
  interfaces: string[] | undefined;
  /** errno for a refused call (default EPERM). */
  errno: number;
}

export type CallRule = SocketRule | BindRule | SetsockoptRule;

/**
 * `args = ...`: what argv[1..] must be. Word i matches argument i exactly,
 * or any one argument where it is `*` (null here); `...` as the last word
 * lets any number of further arguments follow.
 */
export interface ArgsPattern {
  /** One entry per argument from argv[1]: its exact text, or null for `*`. */
  words: Array<string | null>;
  /** The pattern ended with `...`: any further arguments (none included). */
  rest: boolean;
  /** The value as written (after ini), for messages and summaries. */
  text: string;
}

/** One `[program]` with its call rules: one .conf file. */
export interface ProgramRule {
  at: Location;            // the [program] header
  file: string;            // the .conf file (same as at.file)
  path: string;            // absolute, canonical path of the binary
  users: '*' | string[];   // user names; '*' = every user with a passwd entry
  groups: string[];        // group names; membership by the client's kernel-reported groups
  /**
   * sandboxed-clients = allow: serve a client under no_new_privs, its own
   * seccomp filter, another LSM label or another mount namespace (the
   * program then runs outside that sandbox). Default false: refused.
   */
  sandboxedClients: boolean;
  /** sha256 = HEX: the binary's content must hash to this (lowercase hex); absent: not pinned. */
  sha256?: string;
  /** args = ...: the arguments argv[1..] must match; absent: any arguments. */
  args?: ArgsPattern;
  /**
   * keep-env = NAME, ...: names kept from the client's environment on top
   * of the broker's allow-list (environment.ts), values as the client gave
   * them; absent: none.
   */
  keepEnv?: string[];
  /** The line of each key of [program] as written, for errors found across files. */
  keyLines?: Readonly<Record<string, number>>;
  calls: CallRule[];
}

/** Everything loaded from one rules directory. */
export interface RuleSet {
  dir: string;
  files: string[];                      // files loaded, sorted
  /**
   * By binary path: the rules for it, in file name order. Several files
   * may name one binary only for disjoint users and groups (load.ts);
   * match.ts ruleFor picks the one that serves a client.
   */
  programs: Map<string, ProgramRule[]>;
}

/** A problem in a rule file: file:line: [section] key: message. */
export class RuleError {
  constructor(
    readonly file: string,
    readonly line: number | undefined,
    readonly section: string | undefined,
    readonly key: string | undefined,
    readonly message: string,
  ) {}

  toString(): string {
    const where = this.line === undefined ? this.file : `${this.file}:${this.line}`;
    const what = [this.section === undefined ? '' : `[${this.section}]`, this.key ?? '']
      .filter(Boolean).join(' ');
    return what ? `${where}: ${what}: ${this.message}` : `${where}: ${this.message}`;
  }
}
