/*
 * The program's environment, built from nothing (as doas and sudo do).
 *
 * MUST: pass nothing from the client but the names below, with values that
 * cannot point an interpreter or library at the user's files: PYTHONPATH,
 * PERL5LIB, LD_* and the like are honoured by interpreters even under
 * AT_SECURE, so they are never kept. Identity variables come from the
 * passwd entry, not from the client.
 */
import type { Passwd } from '../shared/native/libc.js';

export const SAFE_PATH = '/usr/local/bin:/usr/bin:/bin';

/** Kept from the client when their values pass `safeValue`. */
const KEPT = new Set(['TERM', 'COLORTERM', 'LANG', 'LANGUAGE', 'TZ', 'COLUMNS', 'LINES', 'NO_COLOR']);
const KEPT_PREFIX = 'LC_';
const MAX_VALUE = 1024;

/** A zone name such as Europe/Paris or UTC: never a file (":/path", "/path", ".."). */
const TZ_NAME = /^[A-Za-z0-9_+-]+(\/[A-Za-z0-9_+-]+)*$/;

/** Values are names, never paths or format strings (sudo's env_check). */
function safeValue(name: string, value: string): boolean {
  if (value.length > MAX_VALUE || value.includes('%')) return false;
  if (name === 'TZ') return TZ_NAME.test(value);
  return !value.includes('/');
}

export function programEnvironment(client: Record<string, string>, user: Passwd): Record<string, string> {
  const env: Record<string, string> = Object.create(null);
  for (const [name, value] of Object.entries(client)) {
    if ((KEPT.has(name) || name.startsWith(KEPT_PREFIX)) && safeValue(name, value)) env[name] = value;
  }
  env.HOME = user.dir;
  env.LOGNAME = user.name;
  env.USER = user.name;
  env.SHELL = user.shell;
  env.PATH = SAFE_PATH;
  return env;
}
