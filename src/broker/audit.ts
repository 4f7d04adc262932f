/*
 * The audit trail: one JSON line per event, from the broker's own state.
 *
 * MUST: write every grant and refusal before the answer goes back (sync
 * destination), take no field from what the program says about itself
 * (/proc/PID/comm, cmdline), and use only the fixed event names below.
 */
import pino from 'pino';

export const AUDIT_EVENTS = [
  'launch', 'grant', 'refuse', 'exit', 'kill', 'client-rejected', 'rules-loaded', 'rules-rejected',
] as const;
export type AuditEvent = (typeof AUDIT_EVENTS)[number];

export type AuditFields = Record<string, unknown>;

export interface Audit {
  record(event: AuditEvent, fields: AuditFields): void;
  flush(): void;
}

/** undefined: standard error; `-`: standard output; anything else a file, appended. */
export function openAudit(target: string | undefined): Audit {
  const fd = target === undefined ? 2 : target === '-' ? 1 : undefined;
  const dest = pino.destination({ dest: fd ?? target, sync: true, append: true, mkdir: false });
  const logger = pino(
    {
      base: null,
      // Records carry no level; pino then starts the line with the
      // timestamp, so it takes no leading comma.
      timestamp: () => `"time":"${new Date().toISOString()}"`,
      messageKey: 'message',
      formatters: { level: () => ({}) },
    },
    dest,
  );
  return {
    record(event, fields) {
      logger.info({ event, ...fields });
    },
    flush() {
      dest.flushSync();
    },
  };
}
