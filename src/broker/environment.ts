/*
 * The program's environment, built from nothing (as doas and sudo do).
 *
 * MUST: pass nothing from the client but the names below, with values that
 * cannot point an interpreter or library at the user's files: PYTHONPATH,
 * PERL5LIB, LD_* and the like are honoured by interpreters even under
 * AT_SECURE, so they are never kept. Identity variables come from the
 * passwd entry, not from the client. A rule's keep-env adds names (never
 * one of FORBIDDEN, never an identity variable: the parser refuses them),
 * whose values the admin has chosen to trust as the client gives them.
 */
import type { Passwd } from '../shared/native/libc.js';

export const SAFE_PATH = '/usr/local/bin:/usr/bin:/bin';

/** Kept from the client when their values pass `safeValue`. */
const KEPT = new Set(['TERM', 'COLORTERM', 'LANG', 'LANGUAGE', 'TZ', 'COLUMNS', 'LINES', 'NO_COLOR']);
const KEPT_PREFIX = 'LC_';
const MAX_VALUE = 1024;

/** Set by the broker from the passwd entry, never taken from the client. */
export const SET_BY_BROKER: readonly string[] = ['HOME', 'LOGNAME', 'USER', 'SHELL', 'PATH'];

/**
 * Names no rule may keep: each makes a program, an interpreter or a
 * library load code, read a file, or run a command the user chose (glibc's
 * own list for secure execs, sudo's env_delete, the interpreters' search
 * paths and option variables). A prefix ends with "_" or stands for every
 * name it starts.
 */
const FORBIDDEN_PREFIXES: readonly string[] = [
  'LD_', 'DYLD_', 'MALLOC_', 'GLIBC_', 'BASH_FUNC_', 'PYTHON', 'PERL', 'RUBY', 'NODE_', 'NPM_', 'LUA_',
  'PHP', 'JAVA', '_JAVA', 'JDK_', 'TCL', 'TK_', 'GUILE_', 'OPENSSL_', 'GNUTLS_', 'SSL', 'KRB5', 'GIO_', 'GTK_',
  'GDK_', 'QT_', 'GST_', 'GI_', 'GCONV', 'TERMINFO', 'GIT_',
];
const FORBIDDEN: ReadonlySet<string> = new Set([
  'IFS', 'ENV', 'BASH_ENV', 'SHELLOPTS', 'BASHOPTS', 'PS4', 'CDPATH', 'GLOBIGNORE', 'PROMPT_COMMAND',
  'TMPDIR', 'TZDIR', 'LOCPATH', 'NLSPATH', 'GETCONF_DIR', 'HOSTALIASES', 'LOCALDOMAIN', 'RES_OPTIONS',
  'RESOLV_HOST_CONF', 'NIS_PATH', 'TERMCAP', 'CLASSPATH', 'EDITOR', 'VISUAL', 'PAGER', 'BROWSER',
  'MANPAGER', 'LESSOPEN', 'LESSCLOSE', 'GMON_OUT_PREFIX', 'SEGFAULT_OUTPUT_NAME', 'XDG_CONFIG_DIRS',
  'XDG_DATA_DIRS', 'XDG_CONFIG_HOME', 'XDG_DATA_HOME',
]);

/** A zone name such as Europe/Paris or UTC: never a file (":/path", "/path", ".."). */
const TZ_NAME = /^[A-Za-z0-9_+-]+(\/[A-Za-z0-9_+-]+)*$/;

/** Values are names, never paths or format strings (sudo's env_check). */
function safeValue(name: string, value: string): boolean {
  if (value.length > MAX_VALUE || value.includes('%')) return false;
  if (name === 'TZ') return TZ_NAME.test(value);
  return !value.includes('/');
}

/** The broker keeps this name anyway (its value checked): a keep-env entry for it changes nothing. */
export function keptByDefault(name: string): boolean {
  return KEPT.has(name) || name.startsWith(KEPT_PREFIX);
}

/** Why a rule may not keep this name, or undefined. */
export function forbiddenReason(name: string): string | undefined {
  if (SET_BY_BROKER.includes(name)) return 'is set by the broker from the password database';
  if (FORBIDDEN.has(name) || FORBIDDEN_PREFIXES.some((p) => name.startsWith(p))) {
    return 'can make the program load code or read files the user chooses';
  }
  return undefined;
}

export function programEnvironment(client: Record<string, string>, user: Passwd, keep: readonly string[] = []): Record<string, string> {
  const env: Record<string, string> = Object.create(null);
  for (const [name, value] of Object.entries(client)) {
    if (keptByDefault(name) && safeValue(name, value)) env[name] = value;
  }
  // the parser refused FORBIDDEN names and identity names; check again, it costs nothing
  for (const name of keep) {
    if (Object.hasOwn(client, name) && !keptByDefault(name) && forbiddenReason(name) === undefined) env[name] = client[name];
  }
  env.HOME = user.dir;
  env.LOGNAME = user.name;
  env.USER = user.name;
  env.SHELL = user.shell;
  env.PATH = SAFE_PATH;
  return env;
}
