/*
 * Per-user quotas: how much of the broker one user may hold at once.
 *
 * A root broker that every local user can reach must not let one user
 * exhaust what all users share (its fds, its event loop, its thread pool,
 * its audit log). Each user, by the uid the kernel gives (SO_PEERCRED), may
 * hold at most:
 *  - `sessionsPerUser` connections, from accept to the session's end
 *    (phase `new` included: a connection that never speaks is one);
 *  - `fdsPerUser` fds of theirs: fds their clients passed (SCM_RIGHTS)
 *    and fds taken from or made for their programs (pidfd_getfd, brokered
 *    sockets), each until its close on the thread pool has returned (a
 *    lingering socket stays counted while its close blocks);
 *  - `notificationsPerUser` trapped calls in flight: received and not yet
 *    answered, or answered but with a read of the program's memory still
 *    running on the thread pool (a read stuck on FUSE stays counted);
 *  - `watchersPerUser` connections watching the audit stream (each also a
 *    session), and all users together at most `watchers`: each holds a
 *    bounded queue of records (watcher.ts), so their number bounds the
 *    broker's memory for them.
 *
 * MUST: key every count by the kernel's uid, never by the client's words;
 * give every refusal a reason naming the user, the resource and the limit;
 * release exactly what was taken (counts never drift; a user whose counts
 * are all zero is forgotten, so the table does not grow with every uid).
 */

export interface Limits {
  sessionsPerUser: number;
  fdsPerUser: number;
  notificationsPerUser: number;
  /** A session still in phase `new` after this long is closed. */
  idleMs: number;
  /** Refusals of a session recorded one by one; later ones go to summary records. */
  refusalsLogged: number;
  /** Refusals after which a session is killed. */
  refusalLimit: number;
  /** A read of a program's memory running longer than this kills the session. */
  readDeadlineMs: number;
  /** Connections of one user watching the audit stream. */
  watchersPerUser: number;
  /** Connections watching the audit stream, all users together. */
  watchers: number;
}

export const DEFAULT_LIMITS: Readonly<Limits> = {
  sessionsPerUser: 32,
  fdsPerUser: 256,
  notificationsPerUser: 64,
  idleMs: 10_000,
  refusalsLogged: 20,
  refusalLimit: 10_000,
  readDeadlineMs: 2000,
  watchersPerUser: 4,
  watchers: 64,
};

/** What all users hold together. */
interface Totals { watchers: number }

/** One unit of a user's notifications in flight; freed when its last holder lets go. */
export class Slot {
  private refs = 1;

  constructor(private readonly owner: UserQuota) {}

  /** Another holder (a read on the thread pool) keeps the slot taken. */
  retain(): void {
    if (this.refs > 0) this.refs++;
  }

  release(): void {
    if (this.refs <= 0) return;
    if (--this.refs === 0) this.owner.releaseNotification();
  }
}

export class UserQuota {
  sessions = 0;
  fds = 0;
  notifications = 0;
  watchers = 0;

  constructor(
    readonly uid: number,
    readonly name: string,
    private readonly limits: Readonly<Limits>,
    private readonly idle: (q: UserQuota) => void,
    private readonly totals: Totals = { watchers: 0 },
  ) {}

  /** Take a session, or say why not. */
  openSession(): string | undefined {
    if (this.sessions >= this.limits.sessionsPerUser) {
      return `too many sessions for ${this.name} (limit ${this.limits.sessionsPerUser})`;
    }
    this.sessions++;
    return undefined;
  }

  closeSession(): void {
    if (this.sessions > 0) this.sessions--;
    this.maybeIdle();
  }

  /** Count fds the broker already holds (received: the kernel gave them, refused or not). */
  holdFds(n: number): void {
    this.fds += n;
  }

  /** Why the fds held are over the limit, if they are. */
  fdsOver(): string | undefined {
    return this.fds > this.limits.fdsPerUser ? this.fdReason() : undefined;
  }

  /** Take one fd before the broker fetches or makes it, or say why not. */
  takeFd(): string | undefined {
    if (this.fds >= this.limits.fdsPerUser) return this.fdReason();
    this.fds++;
    return undefined;
  }

  releaseFds(n: number): void {
    this.fds = Math.max(0, this.fds - n);
    this.maybeIdle();
  }

  /** Take a notification slot, or say why not. */
  takeNotification(): Slot | string {
    if (this.notifications >= this.limits.notificationsPerUser) {
      return `too many notifications in flight for ${this.name} (limit ${this.limits.notificationsPerUser})`;
    }
    this.notifications++;
    return new Slot(this);
  }

  /** Only through Slot.release. */
  releaseNotification(): void {
    if (this.notifications > 0) this.notifications--;
    this.maybeIdle();
  }

  /** Take a watcher (of this user's and of all users'), or say why not. */
  openWatcher(): string | undefined {
    if (this.watchers >= this.limits.watchersPerUser) {
      return `too many watchers for ${this.name} (limit ${this.limits.watchersPerUser})`;
    }
    if (this.totals.watchers >= this.limits.watchers) {
      return `too many watchers (limit ${this.limits.watchers} for all users)`;
    }
    this.watchers++;
    this.totals.watchers++;
    return undefined;
  }

  closeWatcher(): void {
    if (this.watchers === 0) return;
    this.watchers--;
    this.totals.watchers--;
    this.maybeIdle();
  }

  private fdReason(): string {
    return `too many fds held for ${this.name} (limit ${this.limits.fdsPerUser})`;
  }

  private maybeIdle(): void {
    if (this.sessions === 0 && this.fds === 0 && this.notifications === 0 && this.watchers === 0) this.idle(this);
  }
}

export class Quotas {
  private readonly users = new Map<number, UserQuota>();
  private readonly totals: Totals = { watchers: 0 };

  constructor(readonly limits: Readonly<Limits>) {}

  /** The user's counts; `name` is the passwd name when there is one. */
  forUser(uid: number, name: string | undefined): UserQuota {
    let q = this.users.get(uid);
    if (!q) {
      q = new UserQuota(uid, name ?? `uid ${uid}`, this.limits, (idle) => {
        if (this.users.get(idle.uid) === idle) this.users.delete(idle.uid);
      }, this.totals);
      this.users.set(uid, q);
    }
    return q;
  }

  /** Watchers of all users. */
  get watchers(): number {
    return this.totals.watchers;
  }

  /** Users with anything held (for tests and logs). */
  get size(): number {
    return this.users.size;
  }
}
