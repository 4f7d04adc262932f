/*
 * Sessions in transient scopes of the user's slice, on hosts where systemd
 * is the init system: what `systemd-run --scope --slice=user-UID.slice`
 * does, over D-Bus (the system bus, @jellybrick/dbus-next). The user's
 * slice limits (memory, tasks, firewall) then hold for the program, and
 * whatever stops the user's slice (loginctl terminate-user, a logout with
 * KillUserProcesses=yes) stops it.
 *
 * A scope cannot be made empty: systemd moves given pids into it. So the
 * launcher starts with --cgroup-fd control and waits; the broker asks for
 * the scope stx-elevate-<broker pid>-<session>.scope in user-UID.slice
 * with the launcher's pid (not reaped yet, so not reused), waits for the
 * job, then sends the scope's cgroup (v2) directory on the control socket;
 * the launcher joins it (already in it: a no-op that proves the fd) and
 * goes on. The session's end kills the scope's cgroup (cgroup.kill) as the
 * own-subtree path does, then stops the unit (systemd would collect the
 * empty scope anyway).
 *
 * MUST:
 *  - never block the loop on the bus: every call has a deadline;
 *  - name only units of our own (the stx-elevate-<broker pid>- prefix) in
 *    calls that change anything, and other brokers' only when their pid no
 *    longer runs: at start, the scopes a broker killed with SIGKILL left in
 *    the users' slices are killed (their programs would keep their grants);
 *  - tell the launcher nothing but the scope's directory, and only once the
 *    job is done.
 */
import { openSync, readFileSync, writeFileSync, constants as fsConstants } from 'node:fs';
import type { EventEmitter } from 'node:events';
import path from 'node:path';
import { Message, MessageType, Variant, systemBus, type MessageBus } from '@jellybrick/dbus-next';
import { CgroupError, pidAlive, treeProcs, type Cgroup2, type OnReaped, type SessionCgroup, type SessionCgroups } from './cgroup.js';

type Log = (message: string) => void;

const SYSTEMD = 'org.freedesktop.systemd1';
const MANAGER_PATH = '/org/freedesktop/systemd1';
const MANAGER = 'org.freedesktop.systemd1.Manager';
/** A bus call, and the wait for a scope's job. */
const CALL_TIMEOUT_MS = 5000;
export const SYSTEM_BUS_SOCKET = '/run/dbus/system_bus_socket';

const code = (e: unknown): string | undefined => (e as NodeJS.ErrnoException).code;

function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p,
    new Promise<T>((_, reject) => { timer = setTimeout(() => reject(new CgroupError(`${what}: no answer from systemd within ${ms} ms`)), ms); }),
  ]).finally(() => clearTimeout(timer));
}

/** The system bus, connected once, with the Manager's JobRemoved signals routed to waiters. */
class SystemdBus {
  private readonly jobs = new Map<string, (result: string) => void>();
  /** JobRemoved seen before its waiter (the job can end before StartTransientUnit's reply is read). */
  private readonly ended = new Map<string, string>();

  private constructor(readonly bus: MessageBus) {
    bus.on('message', (m: Message) => {
      if (m.type !== MessageType.SIGNAL || m.interface !== MANAGER || m.member !== 'JobRemoved') return;
      const [, job, , result] = m.body as [number, string, string, string];
      const waiter = this.jobs.get(job);
      if (waiter) {
        this.jobs.delete(job);
        waiter(result);
      } else {
        this.ended.set(job, result);
        if (this.ended.size > 1000) this.ended.delete(this.ended.keys().next().value!);
      }
    });
  }

  static async connect(): Promise<SystemdBus> {
    const bus = systemBus();
    const events = bus as unknown as EventEmitter; // 'error' is emitted but not in its typed events
    const ready = new Promise<void>((resolve, reject) => {
      events.once('connect', () => resolve());
      events.once('error', reject);
    });
    events.on('error', () => { /* a later error fails the calls in flight */ });
    await withDeadline(ready, CALL_TIMEOUT_MS, 'connecting to the system bus');
    const self = new SystemdBus(bus);
    await self.call('/org/freedesktop/DBus', 'org.freedesktop.DBus', 'AddMatch', 's',
      [`type='signal',sender='${SYSTEMD}',path='${MANAGER_PATH}',interface='${MANAGER}',member='JobRemoved'`], 'org.freedesktop.DBus');
    await self.call(MANAGER_PATH, MANAGER, 'Subscribe', '', []);
    return self;
  }

  async call(objectPath: string, iface: string, member: string, signature: string, body: unknown[], destination = SYSTEMD): Promise<unknown[]> {
    const reply = await withDeadline(this.bus.call(new Message({ destination, path: objectPath, interface: iface, member, signature, body })),
      CALL_TIMEOUT_MS, `${member}`);
    return (reply?.body ?? []) as unknown[];
  }

  waitJob(job: string): Promise<string> {
    const done = this.ended.get(job);
    if (done !== undefined) {
      this.ended.delete(job);
      return Promise.resolve(done);
    }
    return withDeadline(new Promise<string>((resolve) => this.jobs.set(job, resolve)), CALL_TIMEOUT_MS, `the job ${job}`)
      .finally(() => this.jobs.delete(job));
  }

  disconnect(): void {
    this.bus.disconnect();
  }
}

/** Where the scopes' cgroups are, in the v2 hierarchy the broker sees. */
function cgroupDir(cg: Cgroup2, cgroup: string): string {
  const rel = path.posix.relative(cg.own, cgroup);
  return path.posix.join(cg.dir, rel);
}

export class SystemdScopes implements SessionCgroups {
  readonly description = 'sessions in transient scopes stx-elevate-*.scope of the users\' slices (user-UID.slice), through systemd over the system bus';
  private busPromise?: Promise<SystemdBus>;
  private readonly live = new Set<ScopeSession>();

  constructor(private readonly cg: Cgroup2, private readonly log: Log, onReaped: OnReaped) {
    // Connect now, so that the first session does not wait; a failure is
    // reported here and retried by the next session.
    this.bus().then(() => this.reapStale(onReaped)).catch((e) => log(`cannot reach systemd over the system bus: ${(e as Error).message}`));
  }

  /** Kill the scopes of brokers that are gone (not this one's, not a running pid's). */
  private async reapStale(onReaped: OnReaped): Promise<void> {
    const bus = await this.bus();
    const [units] = await bus.call(MANAGER_PATH, MANAGER, 'ListUnitsByPatterns', 'asas', [[], ['stx-elevate-*.scope']]) as [unknown[][]];
    for (const [name] of units as [string][]) {
      const m = /^stx-elevate-(\d+)-\d+\.scope$/.exec(name);
      const broker = Number(m?.[1]);
      if (!m || broker === process.pid || pidAlive(broker)) continue;
      try {
        const [unitPath] = await bus.call(MANAGER_PATH, MANAGER, 'GetUnit', 's', [name]) as [string];
        const [cgroup] = await bus.call(unitPath, 'org.freedesktop.DBus.Properties', 'Get', 'ss', ['org.freedesktop.systemd1.Scope', 'ControlGroup']) as [Variant<string>];
        let pids: number[] = [];
        try {
          pids = treeProcs(cgroupDir(this.cg, cgroup.value));
        } catch {
          // an empty scope's cgroup may be gone already
        }
        // Emptied, the scope is collected (CollectMode=inactive-or-failed): no StopUnit to race that.
        await bus.call(MANAGER_PATH, MANAGER, 'KillUnit', 'ssi', [name, 'all', 9]);
        this.log(`killed ${name} of a dead broker (pid ${broker}): ${pids.length} processes`);
        onReaped({ broker, cgroup: cgroup.value, pids });
      } catch (e) {
        this.log(`cannot kill ${name} of a dead broker: ${(e as Error).message}`);
      }
    }
  }

  bus(): Promise<SystemdBus> {
    if (!this.busPromise) {
      this.busPromise = SystemdBus.connect();
      this.busPromise.catch(() => { this.busPromise = undefined; });
    }
    return this.busPromise;
  }

  create(id: number, uid: number): SessionCgroup {
    const session = new ScopeSession(this, this.cg, `stx-elevate-${process.pid}-${id}.scope`, uid, this.log, () => this.live.delete(session));
    this.live.add(session);
    return session;
  }

  async close(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.live.size > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    if (this.live.size > 0) this.log(`left ${[...this.live].map((s) => s.unit).join(', ')}: still stopping`);
    const bus = this.busPromise;
    this.busPromise = undefined;
    if (bus) (await bus.catch(() => undefined))?.disconnect();
  }
}

class ScopeSession implements SessionCgroup {
  private cgroup?: string;
  private dir?: string;
  private released = false;

  constructor(private readonly owner: SystemdScopes, private readonly cg: Cgroup2, readonly unit: string,
    private readonly uid: number, private readonly log: Log, private readonly removed: () => void) {}

  get name(): string {
    return this.cgroup ?? `(${this.unit}, not started)`;
  }

  readonly placedByBroker = true;

  /**
   * The scope, with `pid` (the launcher, waiting for its cgroup) in it.
   * Rejects with a CgroupError when systemd refuses or does not answer.
   */
  async place(pid: number): Promise<void> {
    const bus = await this.owner.bus();
    const slice = `user-${this.uid}.slice`;
    const [job] = await bus.call(MANAGER_PATH, MANAGER, 'StartTransientUnit', 'ssa(sv)a(sa(sv))', [
      this.unit, 'fail',
      [
        ['Description', new Variant('s', `stx-elevate session of uid ${this.uid}`)],
        ['Slice', new Variant('s', slice)],
        ['PIDs', new Variant('au', [pid])],
        ['CollectMode', new Variant('s', 'inactive-or-failed')],
      ],
      [],
    ]) as [string];
    const result = await bus.waitJob(job);
    if (result !== 'done') throw new CgroupError(`systemd could not start ${this.unit} in ${slice}: job ${result}`);
    const [unitPath] = await bus.call(MANAGER_PATH, MANAGER, 'GetUnit', 's', [this.unit]) as [string];
    const [cgroup] = await bus.call(unitPath, 'org.freedesktop.DBus.Properties', 'Get', 'ss', ['org.freedesktop.systemd1.Scope', 'ControlGroup']) as [Variant<string>];
    if (!cgroup?.value?.startsWith('/')) throw new CgroupError(`${this.unit} has no cgroup`);
    this.cgroup = cgroup.value;
    this.dir = cgroupDir(this.cg, cgroup.value);
    if (this.released) this.stop();
  }

  openDir(): number {
    if (!this.dir) throw new CgroupError(`${this.unit} is not started`);
    try {
      return openSync(this.dir, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY);
    } catch (e) {
      throw new CgroupError(`cannot open the session's cgroup ${this.dir}: ${(e as Error).message}`);
    }
  }

  kill(): number[] {
    if (!this.dir) return []; // no scope yet: the caller signals the launcher, and an empty scope goes by itself
    let pids: number[];
    try {
      pids = readFileSync(path.join(this.dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
    } catch (e) {
      if (code(e) === 'ENOENT') return [];
      throw e;
    }
    if (pids.length > 0) writeFileSync(path.join(this.dir, 'cgroup.kill'), '1');
    return pids;
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    if (this.dir) this.stop();
    else this.removed(); // never started (or still starting: place() stops it)
  }

  /** Stop the unit: systemd kills what is left and removes the scope. No such unit: gone already. */
  private stop(): void {
    this.owner.bus()
      .then((bus) => bus.call(MANAGER_PATH, MANAGER, 'StopUnit', 'ss', [this.unit, 'replace']))
      .catch((e) => {
        if (!/NoSuchUnit|not loaded/.test(String((e as { type?: string }).type ?? (e as Error).message))) this.log(`cannot stop ${this.unit}: ${(e as Error).message}`);
      })
      .finally(() => this.removed());
  }
}
