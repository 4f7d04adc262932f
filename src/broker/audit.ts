/*
 * The audit trail: one JSON line per event, from the broker's own state.
 *
 * MUST: write every grant and refusal before the answer goes back (sync
 * destination), take no field from what the program says about itself
 * (/proc/PID/comm, cmdline), use only the fixed event names below, and
 * write the same record wherever it goes (file, stream, journal, syslog),
 * with the characters terminals misread escaped (shared/terminal-safe.ts).
 * Listeners (the broker's watchers) get each record after it is written,
 * with the same time and fields as its line: one source for both.
 */
import { existsSync, writeSync } from 'node:fs';
import pino, { type DestinationStream } from 'pino';
import { UnixDatagram } from './datagram.js';
import { JOURNAL_SOCKET, SYSLOG_SOCKET, journalEntry, syslogMessage } from './journal.js';
import { SysError } from '../shared/native/libc.js';
import { terminalSafeJson } from '../shared/terminal-safe.js';

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

/** The audit destination cannot be opened (the message says which and why). */
export class AuditError extends Error {}

/**
 * Writes records to dest; `write` sets the time before each record, so
 * the line and the listeners carry the same time.
 */
function recorder(dest: DestinationStream): { write(event: AuditEvent, fields: AuditFields): void; listen(l: AuditListener): void } {
  let time = '';
  let listener: AuditListener | undefined;
  const log = pino(
    {
      base: null,
      // Records carry no level; pino then starts the line with the
      // timestamp, so it takes no leading comma.
      timestamp: () => `"time":"${time}"`,
      messageKey: 'message',
      formatters: { level: () => ({}) },
      hooks: { streamWrite: terminalSafeJson },
    },
    dest,
  );
  return {
    write(event, fields) {
      time = new Date().toISOString();
      log.info({ event, ...fields });
      listener?.(time, event, fields);
    },
    listen(l) {
      listener = l;
    },
  };
}

/**
 * Where records go when --audit is not given: the journal when journald
 * listens here, else syslog when /dev/log is there, else standard error.
 */
export function defaultAuditTarget(): string | undefined {
  if (existsSync(JOURNAL_SOCKET)) return 'journal';
  if (existsSync(SYSLOG_SOCKET)) return 'syslog';
  return undefined;
}

/**
 * `journal`: journald's native socket; `syslog`: /dev/log; `-`: standard
 * output; undefined: standard error; anything else a file, appended.
 * Throws AuditError when the journal or syslog socket cannot be reached.
 */
export function openAudit(target: string | undefined): Audit {
  if (target === 'journal' || target === 'syslog') return datagramAudit(target);
  const fd = target === undefined ? 2 : target === '-' ? 1 : undefined;
  const dest = pino.destination({ dest: fd ?? target, sync: true, append: true, mkdir: false });
  const log = recorder(dest);
  return {
    record(event, fields) {
      log.write(event, fields);
    },
    flush() {
      dest.flushSync();
    },
    listen(l) {
      log.listen(l);
    },
  };
}

/** Each record one datagram: a journal entry with its own fields, or a syslog message. */
function datagramAudit(kind: 'journal' | 'syslog'): Audit {
  const address = kind === 'journal' ? JOURNAL_SOCKET : SYSLOG_SOCKET;
  let socket: UnixDatagram;
  try {
    socket = new UnixDatagram(address);
  } catch (e) {
    if (!(e instanceof SysError)) throw e;
    throw new AuditError(`cannot send audit records to ${kind} (${e.message}); `
      + `is ${kind === 'journal' ? 'systemd-journald' : 'a syslog daemon'} running? Else give --audit FILE`);
  }
  let event: AuditEvent = 'launch';
  const log = recorder({
    write(line: string) {
      const record = line.endsWith('\n') ? line.slice(0, -1) : line;
      const data = kind === 'journal' ? journalEntry(event, record) : syslogMessage(event, record, new Date(), process.pid);
      try {
        socket.send(data);
      } catch (e) {
        // Not lost: standard error is the journal's stream under systemd, and the admin's terminal otherwise.
        writeSync(2, `stx-elevated: ${address} did not take an audit record (${(e as Error).message}): ${record}\n`);
      }
    },
  });
  return {
    record(e, fields) {
      event = e;
      log.write(e, fields);
    },
    flush() {
      // every record was sent when it was made
    },
    listen(l) {
      log.listen(l);
    },
  };
}
