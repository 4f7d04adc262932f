/*
 * The live audit stream: who may watch it, and every written record fanned
 * out to the watchers whose filters it passes.
 *
 * MUST:
 *  - let only root and members of the watch group watch, as the kernel
 *    reports the client (SO_PEERCRED uid and gid, SO_PEERGROUPS) or as its
 *    passwd entry names its primary group; a group that does not exist
 *    admits nobody but root;
 *  - send each watcher the record exactly as the audit log has it (the
 *    audit module hands over its time and fields: audit.ts), within the
 *    protocol's bound: a record too big for one message loses its largest
 *    fields, named in `omitted`, rather than the whole record;
 *  - cost nothing when nobody watches, and never throw into the code that
 *    made the record.
 */
import { getgrnamGid } from '../shared/native/libc.js';
import { ProtocolError, encode, type WatchedRecord } from '../shared/protocol.js';
import type { AuditEvent, AuditFields } from './audit.js';
import type { ClientIdentity } from './identity.js';
import { Watcher, type WatchFilter, type WatcherLink } from './watcher.js';

/** A field whose JSON is longer than this is the first to go from a record too big to send. */
const SMALL_FIELD = 1024;

export class Watchers {
  private readonly all = new Set<Watcher>();

  /** `group`: the watch group's name (--watch-group); `log` for what no watcher can be told. */
  constructor(readonly group: string, private readonly log: (message: string) => void) {}

  /** Why this client may not watch, or undefined when it may. */
  refusal(client: ClientIdentity): string | undefined {
    if (client.uid === 0) return undefined;
    const who = client.passwd?.name ?? `uid ${client.uid}`;
    const gid = getgrnamGid(this.group);
    if (gid === undefined) return `${who} may not watch the audit stream: only root may (the watch group ${this.group} does not exist)`;
    if (client.gids.includes(gid) || client.passwd?.gid === gid) return undefined;
    return `${who} may not watch the audit stream: only root and members of the group ${this.group} may`;
  }

  /** Start sending records to a connection. */
  add(filter: WatchFilter, link: WatcherLink): Watcher {
    const w = new Watcher(filter, link);
    this.all.add(w);
    return w;
  }

  remove(w: Watcher): void {
    w.close();
    this.all.delete(w);
  }

  get size(): number {
    return this.all.size;
  }

  /** An AuditListener: a record as it was written. */
  publish(time: string, event: AuditEvent, fields: AuditFields): void {
    if (this.all.size === 0) return;
    try {
      let message: Buffer | undefined;
      for (const w of this.all) {
        if (!passes(w.filter, fields)) continue;
        message ??= eventMessage({ time, event, ...fields });
        w.deliver(message);
      }
    } catch (e) {
      this.log(`watchers: a ${event} record could not be sent: ${(e as Error).stack}`);
    }
  }
}

/**
 * The program a record is about: its `program`; for a refused run, which
 * has none (no rule named it), the path the client asked for.
 */
function programOf(fields: AuditFields): unknown {
  if (fields.program !== undefined) return fields.program;
  const call = fields.call as { name?: unknown; args?: { path?: unknown } } | undefined;
  return call?.name === 'run' ? call.args?.path : undefined;
}

function passes(filter: WatchFilter, fields: AuditFields): boolean {
  if (filter.program !== null && programOf(fields) !== filter.program) return false;
  if (filter.user === null) return true;
  return /^[0-9]+$/.test(filter.user) ? fields.uid === Number(filter.user) : fields.user === filter.user;
}

/** The `event` message for a record; its largest fields left out (and named) when the whole does not fit. */
export function eventMessage(record: WatchedRecord): Buffer {
  try {
    return encode({ v: 1, type: 'event', record });
  } catch (e) {
    if (!(e instanceof ProtocolError)) throw e;
  }
  const kept: WatchedRecord = { time: record.time, event: record.event };
  const omitted: string[] = [];
  for (const [key, value] of Object.entries(record)) {
    if (key === 'time' || key === 'event') continue;
    if ((JSON.stringify(value)?.length ?? 0) > SMALL_FIELD) omitted.push(key);
    else kept[key] = value;
  }
  kept.omitted = omitted;
  return encode({ v: 1, type: 'event', record: kept });
}
