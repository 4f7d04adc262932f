/*
 * Refusal records of one session, rate-limited.
 *
 * A program can make refused calls as fast as the kernel traps them (an
 * exec loop: tens of thousands a second). One record each would let it
 * flood the audit log until the log rotates away or drops other users'
 * records. So:
 *  - the first `logged` refusals of a session are recorded one by one;
 *  - later ones are counted per call name and written as summary records
 *    (event `refuse`, `call: {name}`, `suppressed: COUNT`, reason
 *    "COUNT more refusals of CALL suppressed"), at most once a second per
 *    session, and at the session's end;
 *  - the refusal past `limit` is recorded in full, with why the session is
 *    killed, and the session is killed.
 * Grants never pass through here: they are always recorded.
 *
 * MUST: never drop a count (every refusal is either a record of its own
 * or counted in exactly one summary); write summaries from its own timer,
 * never more often than SUMMARY_MS apart; flush on close.
 */

export const SUMMARY_MS = 1000;

export interface RefusalFields {
  call: { name: string; args?: unknown };
  reason: string;
  [key: string]: unknown;
}

export class RefusalLimiter {
  private total = 0;
  private readonly pending = new Map<string, number>();
  private timer?: NodeJS.Timeout;
  private lastSummary = -Infinity;
  private closed = false;

  constructor(
    private readonly logged: number,
    private readonly limit: number,
    private readonly write: (fields: Record<string, unknown>) => void,
    private readonly overLimit: (reason: string) => void,
  ) {}

  /** Whether the next refusal would get a record of its own (so costly fields are worth reading). */
  get detailed(): boolean {
    return this.total < this.logged || this.total === this.limit;
  }

  /** Refusals seen so far. */
  get count(): number {
    return this.total;
  }

  record(fields: RefusalFields): void {
    this.total++;
    if (this.total === this.limit + 1) {
      // Flush first, so the log reads in order: summaries, then the kill.
      this.flush();
      const why = `more than ${this.limit} refusals in this session`;
      this.write({ ...fields, reason: `${fields.reason}; ${why}: the session is killed` });
      this.overLimit(why);
      return;
    }
    if (this.total <= this.logged) {
      this.write(fields);
      return;
    }
    const name = fields.call.name;
    this.pending.set(name, (this.pending.get(name) ?? 0) + 1);
    this.schedule();
  }

  /** Write the summaries now (session end, or before a record that must follow them). */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending.size === 0) return;
    this.lastSummary = Date.now();
    for (const [name, count] of this.pending) {
      this.write({ call: { name }, suppressed: count, reason: `${count} more refusals of ${name} suppressed` });
    }
    this.pending.clear();
  }

  /** The session ended: flush, and write nothing more from a timer. */
  close(): void {
    this.flush();
    this.closed = true;
  }

  private schedule(): void {
    if (this.closed) return this.flush(); // late stragglers: counted, never lost
    if (this.timer) return;
    const wait = Math.max(0, this.lastSummary + SUMMARY_MS - Date.now());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.flush();
    }, wait);
    this.timer.unref();
  }
}
