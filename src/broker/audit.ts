/*
 * The audit trail: one JSON line per event, from the broker's own state.
 *
 * MUST: write every grant and refusal before the answer goes back (sync
 * destination), take no field from what the program says about itself
 * (/proc/PID/comm, cmdline), and use only the fixed event names below.
 * Listeners (the broker's watchers) get each record after it is written,
 * with the same time and fields as its line: one source for both.
 */
import pino from 'pino';

export const AUDIT_EVENTS = [
  'launch', 'grant', 'refuse', 'exit', 'kill', 'client-rejected', 'rules-loaded', 'rules-rejected',
] as const;
export type AuditEvent = (typeof AUDIT_EVENTS)[number];

export type AuditFields = Record<string, unknown>;

/** A written record: its line is `{"time":TIME,"event":EVENT,...fields}`. */
export type AuditListener = (time: string, event: AuditEvent, fields: AuditFields) => void;

export interface Audit {
  record(event: AuditEvent, fields: AuditFields): void;
  flush(): void;
  /** Every record from now on also goes to `listener`, after it is written. */
  listen(listener: AuditListener): void;
}

/** undefined: standard error; `-`: standard output; anything else a file, appended. */
export function openAudit(target: string | undefined): Audit {
  const fd = target === undefined ? 2 : target === '-' ? 1 : undefined;
  const dest = pino.destination({ dest: fd ?? target, sync: true, append: true, mkdir: false });
  // Set by record() before each write: the line and the listeners carry the same time.
  let time = '';
  let listener: AuditListener | undefined;
  const logger = pino(
    {
      base: null,
      // Records carry no level; pino then starts the line with the
      // timestamp, so it takes no leading comma.
      timestamp: () => `"time":"${time}"`,
      messageKey: 'message',
      formatters: { level: () => ({}) },
    },
    dest,
  );
  return {
    record(event, fields) {
      time = new Date().toISOString();
      logger.info({ event, ...fields });
      listener?.(time, event, fields);
    },
    flush() {
      dest.flushSync();
    },
    listen(l) {
      listener = l;
    },
  };
}
