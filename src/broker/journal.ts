/*
 * Audit records as journal entries (systemd's native protocol) and as
 * syslog messages (/dev/log, facility authpriv): `--audit journal|syslog`.
 *
 * MUST: one record per entry, its JSON line unchanged (without the newline)
 * as the message; the same identifier, stx-elevated, on both paths.
 */
import type { AuditEvent } from './audit.js';

export const JOURNAL_SOCKET = '/run/systemd/journal/socket';
export const SYSLOG_SOCKET = '/dev/log';
export const SYSLOG_IDENTIFIER = 'stx-elevated';
/** MESSAGE_ID= of every audit record: `journalctl MESSAGE_ID=...` lists them and nothing else. */
export const AUDIT_MESSAGE_ID = '7aeda9d17b884ded8547f8940b1a1cec';
/** LOG_AUTHPRIV: where authorization records belong (sudo and su log there too). */
const FACILITY = 10;

/** syslog severities: refusals are notices, rejected rules a warning, the rest information. */
const SEVERITY: Record<AuditEvent, number> = {
  launch: 6, grant: 6, exit: 6, 'rules-loaded': 6,
  refuse: 5, 'client-rejected': 5, kill: 5,
  'rules-rejected': 4,
};

/** One field of the native protocol: NAME=value, or NAME, a 64-bit length and the bytes when the value holds a newline. */
function field(name: string, value: string): Buffer {
  const bytes = Buffer.from(value);
  if (!bytes.includes(0x0a)) return Buffer.from(`${name}=${value}\n`);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(bytes.length));
  return Buffer.concat([Buffer.from(`${name}\n`), len, bytes, Buffer.from('\n')]);
}

/** The datagram for journald's native socket. */
export function journalEntry(event: AuditEvent, record: string): Buffer {
  return Buffer.concat([
    field('MESSAGE', record),
    field('MESSAGE_ID', AUDIT_MESSAGE_ID),
    field('PRIORITY', String(SEVERITY[event])),
    field('SYSLOG_FACILITY', String(FACILITY)),
    field('SYSLOG_IDENTIFIER', SYSLOG_IDENTIFIER),
    field('STX_ELEVATE_EVENT', event),
  ]);
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const two = (n: number): string => String(n).padStart(2, '0');

/** The datagram for /dev/log, as glibc's syslog(3) writes it: "<PRI>Mmm dd hh:mm:ss IDENT[PID]: MESSAGE". */
export function syslogMessage(event: AuditEvent, record: string, now: Date, pid: number): Buffer {
  const stamp = `${MONTHS[now.getMonth()]} ${String(now.getDate()).padStart(2, ' ')} `
    + `${two(now.getHours())}:${two(now.getMinutes())}:${two(now.getSeconds())}`;
  return Buffer.from(`<${FACILITY * 8 + SEVERITY[event]}>${stamp} ${SYSLOG_IDENTIFIER}[${pid}]: ${record}`);
}
