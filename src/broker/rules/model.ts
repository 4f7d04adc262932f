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

/** `[socket.NAME]`: socket(domain, type, protocol) performed as root. */
export interface SocketRule {
  kind: 'socket';
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

export type CallRule = SocketRule;

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
  calls: CallRule[];
}

/** Everything loaded from one rules directory. */
export interface RuleSet {
  dir: string;
  files: string[];                      // files loaded, sorted
  programs: Map<string, ProgramRule>;   // by binary path
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
