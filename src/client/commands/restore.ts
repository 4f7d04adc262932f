/*
 * stx-elevate restore PATH...: put back exactly what `strip` removed from
 * each PATH, from its record, and take away what strip added (the stat
 * override, the shim, the rule it installed, the dpkg hook once no
 * stripped binary needs it). Root only.
 *
 * For each PATH, in this order (the record goes last, so a crash leaves
 * it, and restore can run again):
 *   1. owner, mode and the capability's exact bytes, through the fd opened
 *      when the binary was checked (as strip checks it: a binary others
 *      could change gets no setuid bit back);
 *   2. dpkg's override: ours removed (only if it is still the one strip
 *      set), the one strip replaced put back;
 *   3. the shim and its state link, if still ours;
 *   4. the rule file, only if strip installed it and it is unchanged;
 *   5. the record; then the dpkg hook, when no record needs it any more.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import yargs from 'yargs';
import { stateDirPath } from '../strip/defaults.js';
import { type Change, type Plan, applyAll, planAll, print, requireRoot } from '../strip/changes.js';
import { type Dpkg, addOverride, findDpkg, overrideOf, overrideText, removeOverride, sameOverride } from '../strip/dpkg.js';
import { removeHook } from '../strip/dpkg-hook.js';
import { removeDurably } from '../strip/atomic-file.js';
import { type Privilege, capabilityText, octal, putBack, readPrivilege } from '../strip/privilege.js';
import { RecordStore, type StripRecord } from '../strip/records.js';
import { Refusal } from '../strip/refusal.js';
import { removeShim } from '../strip/shim.js';
import { canonicalTarget, openTarget, sha256OfTarget } from '../strip/target.js';
import { closeQuietly } from '../../shared/native/libc.js';
import { RESTORE_USAGE } from './usage.js';

const RELOAD = 'systemctl reload stx-elevated, or send SIGHUP to stx-elevated';

/** What strip removed, as restore puts it back: "mode 4755, owner 0:0, capability cap_net_raw=ep". */
const exactly = (rec: StripRecord): string => `mode ${rec.removed.mode}, owner ${rec.removed.uid}:${rec.removed.gid}`
  + (rec.removed.capability ? `, capability ${rec.removed.capability.text}` : '');

function removedPrivilege(rec: StripRecord): Privilege {
  const cap = rec.removed.capability;
  return { mode: parseInt(rec.removed.mode, 8), uid: rec.removed.uid, gid: rec.removed.gid, capability: cap ? Buffer.from(cap.raw, 'base64') : null };
}

/** The record of what the admin named: by its canonical path, or as written when the binary is gone. */
function findRecord(arg: string, store: RecordStore): StripRecord {
  const candidates = [resolve(arg)];
  try {
    candidates.unshift(canonicalTarget(arg).path);
  } catch (e) {
    if (!(e instanceof Refusal)) throw e;
  }
  for (const path of candidates) {
    const rec = store.read(path);
    if (rec) return rec;
  }
  throw new Refusal(`${candidates[0]}: nothing to restore: stx-elevate has not stripped it (no record in ${store.dir})`);
}

function dpkgChanges(rec: StripRecord, dpkg: Dpkg | undefined, changes: Change[], notes: string[]): void {
  const d = rec.dpkg;
  if (!d) return;
  if (!dpkg) {
    notes.push(`dpkg is gone: could not remove the override ${overrideText(d.override)} ${d.path} strip set`);
    return;
  }
  const current = overrideOf(dpkg, d.path);
  const ours = current !== undefined && sameOverride(d.override, current);
  if (ours) changes.push({ text: `dpkg-statoverride --remove ${d.path}`, apply: () => removeOverride(dpkg, d.path) });
  else if (current) notes.push(`left the override ${overrideText(current)} ${d.path} alone: strip set ${overrideText(d.override)}, someone changed it since`);
  const previous = d.previousOverride;
  if (previous && (ours || !current)) {
    changes.push({
      text: `dpkg-statoverride --add ${overrideText(previous)} ${d.path} (the override strip replaced)`,
      apply: () => addOverride(dpkg, d.path, previous),
    });
  }
}

function ruleChanges(rec: StripRecord, changes: Change[], notes: string[]): void {
  const { file, installed, sha256 } = rec.rule;
  if (!installed || !existsSync(file)) return;
  if (createHash('sha256').update(readFileSync(file)).digest('hex') !== sha256) {
    notes.push(`kept the rule ${file}: strip installed it, but it was changed since`);
    return;
  }
  changes.push({ text: `remove rule ${file} (strip installed it)`, apply: () => removeDurably(file) });
  notes.push(`the broker keeps the rule until it reloads its rules: ${RELOAD}`);
}

function planRestore(arg: string, store: RecordStore, dpkg: Dpkg | undefined, seen: Set<string>): Plan {
  const rec = findRecord(arg, store);
  const path = rec.path;
  if (seen.has(path)) throw new Refusal(`${path} is named twice`);
  seen.add(path);
  const changes: Change[] = [];
  const notes: string[] = [];
  const removed = removedPrivilege(rec);
  let fd = -1;
  try {
    if (existsSync(path)) {
      fd = openTarget(path).fd;
      const binFd = fd;
      const sha256 = sha256OfTarget(fd);
      if (sha256 !== rec.sha256) {
        notes.push(`${path} changed since strip (sha256 ${rec.sha256} then, ${sha256} now: an upgrade?); put back what strip removed all the same`);
      }
      const now = readPrivilege(fd, path);
      changes.push({
        text: `put back ${exactly(rec)} on ${path} (now mode ${octal(now.mode)}, owner ${now.uid}:${now.gid}`
          + `${now.capability ? `, capability ${capabilityText(now.capability)}` : ', no capability'})`,
        apply: () => putBack(binFd, path, removed),
      });
    } else {
      notes.push(`${path} no longer exists (its package removed?): nothing to put back on it`);
    }
    dpkgChanges(rec, dpkg, changes, notes);
    if (rec.shim) {
      const shim = rec.shim;
      const lines = removeShim(shim, path, true);
      if (lines.length > 0) changes.push({ text: lines.join('; '), apply: () => void removeShim(shim, path, false) });
    }
    ruleChanges(rec, changes, notes);
    changes.push({ text: `remove record ${store.fileFor(path)}`, apply: () => store.remove(path) });
    return {
      path,
      fd,
      heads: [],
      changes,
      notes,
      warnings: [],
      summary: (dry) => `${dry ? 'would restore' : 'restored'} ${path}: ${exactly(rec)}`,
      undo: `the record ${store.fileFor(path)} is kept: run stx-elevate restore ${path} again once the problem is fixed`,
    };
  } catch (e) {
    closeQuietly(fd);
    throw e;
  }
}

/** The hook goes with the last record that names it: attached to the last plan restoring such a record. */
function hookChange(plans: Plan[], store: RecordStore, restoring: StripRecord[]): void {
  const { records, problems } = store.list();
  if (problems.length > 0) return; // a record we cannot read may need it
  const leaving = new Set(restoring.map((r) => r.path));
  for (const hook of new Set(restoring.map((r) => r.hook).filter((h): h is string => h !== null))) {
    if (records.some((r) => !leaving.has(r.path) && r.hook === hook) || !existsSync(hook)) continue;
    const last = [...plans].reverse().find((p) => restoring.find((r) => r.path === p.path)?.hook === hook);
    last?.changes.push({ text: `remove dpkg hook ${hook} (no stripped binary needs it now)`, apply: () => removeHook(hook) });
  }
}

/** The command line after `restore`; the exit status: 0 done, 1 refused or failed, 2 usage. */
export function restoreCommand(argv: string[]): number {
  const usage = (msg: string): never => {
    process.stderr.write(`stx-elevate restore: ${msg}\nusage: ${RESTORE_USAGE}\n`);
    process.exit(2);
  };
  const parsed = yargs(argv)
    .scriptName('stx-elevate restore')
    .usage(`${RESTORE_USAGE}\n\nPut back exactly what stx-elevate strip removed from each PATH (mode, owner, file capability), `
      + 'and remove the stat override, the shim, the rule strip installed (if unchanged) and, with the last record, the dpkg hook. '
      + 'Root only. Exit 0 done, 1 refused or failed.')
    .option('dry-run', { type: 'boolean', default: false, describe: 'print what would change, change nothing' })
    .option('state-dir', { type: 'string', describe: 'where strip recorded it (default $STX_ELEVATE_STATE_DIR, else /var/lib/stx-elevate)' })
    .parserConfiguration({ 'parse-positional-numbers': false })
    .strictOptions()
    .version(false)
    .help()
    .fail((msg) => usage(msg))
    .parseSync();
  const paths = parsed._.map(String);
  if (!requireRoot('restore', print)) return 1;
  if (paths.length === 0) usage('no PATH given');
  const store = new RecordStore(resolve(stateDirPath(parsed.stateDir)));
  const dpkg = findDpkg();
  const seen = new Set<string>();
  const restoring: StripRecord[] = [];
  const plans = planAll('restore', paths, (arg) => {
    const plan = planRestore(arg, store, dpkg, seen);
    restoring.push(store.read(plan.path)!);
    return plan;
  }, print);
  if (!plans) return 1;
  try {
    hookChange(plans, store, restoring);
  } catch (e) {
    if (!(e instanceof Refusal)) throw e;
    print.err(`stx-elevate restore: ${e.message}`);
  }
  return applyAll('restore', plans, parsed.dryRun, print);
}
