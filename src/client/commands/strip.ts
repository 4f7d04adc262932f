/*
 * stx-elevate strip PATH...: take the setuid/setgid bits and the file
 * capability off binaries a rule covers, so that users run them through
 * the broker instead (root only).
 *
 * For each PATH, in this order (a crash leaves a record of everything
 * removed, and `restore` undoes any prefix of it):
 *   1. record what will be removed (STATE/stripped/, fsync'd);
 *   2. install the covering rule, when only a shipped one covers PATH;
 *   3. remove the capability and the setuid/setgid bits, through the fd
 *      opened when PATH was checked;
 *   4. on dpkg systems, a stat override so upgrades unpack it stripped;
 *   5. the shim (SHIMDIR/NAME -> stx-run) so the bare name keeps working;
 *   6. the dpkg hook that strips again what maintainer scripts give back.
 * Every PATH is checked before anything changes: one refusal changes
 * nothing. `strip --reapply` (the dpkg hook) does step 3 again for every
 * record whose binary got its privilege back, and never fails.
 */
import { existsSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import yargs from 'yargs';
import { DEFAULT_RULES } from '../../shared/defaults.js';
import { DEFAULT_SHIM_DIR, stateDirPath } from '../strip/defaults.js';
import { CLIENT_SCRIPT, SHIPPED_RULES, STX_RUN } from '../install-location.js';
import { type Change, type Output, type Plan, applyAll, planAll, print, requireRoot } from '../strip/changes.js';
import { findCoverage } from '../strip/coverage.js';
import { type Dpkg, addOverride, findDpkg, overrideFor, overrideOf, overrideText, packageOwning, removeOverride, sameOverride } from '../strip/dpkg.js';
import { hookFileFor, hookInPlace, hookText, installHook } from '../strip/dpkg-hook.js';
import { writeAtomic } from '../strip/atomic-file.js';
import { capabilityText, describePrivilege, hasPrivilege, octal, readPrivilege, removeCapability, setMode, strippedMode } from '../strip/privilege.js';
import { RecordStore, type StripRecord } from '../strip/records.js';
import { Refusal } from '../strip/refusal.js';
import { checkTrustedDir } from '../strip/trusted-dir.js';
import { createShim, otherNames, pathOrderWarnings, planShim } from '../strip/shim.js';
import { canonicalTarget, openTarget, sha256OfTarget } from '../strip/target.js';
import { closeQuietly } from '../../shared/native/libc.js';
import { STRIP_USAGE } from './usage.js';

interface Options {
  dryRun: boolean;
  rules: string;
  stateDir: string;
  shimDir: string;
  shim: boolean;
}

const RELOAD = 'systemctl reload stx-elevated, or send SIGHUP to stx-elevated';

/** Everything strip will do to one binary, checked; Refusal when it must not. */
function planStrip(arg: string, o: Options, store: RecordStore, dpkg: Dpkg | undefined, seen: Map<string, string>, hooks: Set<string>): Plan {
  const { path, note } = canonicalTarget(arg);
  const twice = seen.get(path);
  if (twice !== undefined) throw new Refusal(`${path} is named twice (as ${twice} and as ${arg})`);
  seen.set(path, arg);
  if (existsSync(o.stateDir)) checkTrustedDir(o.stateDir, 'the state directory');
  const done = store.read(path);
  if (done) {
    throw new Refusal(`${path} was stripped by stx-elevate already (${done.time}; ${store.fileFor(path)}); `
      + `if its privilege came back, stx-elevate strip --reapply removes it again; to start over, stx-elevate restore ${path} first`);
  }
  const { fd } = openTarget(path);
  try {
    const before = readPrivilege(fd, path);
    if (!hasPrivilege(before)) {
      throw new Refusal(`${path} has no setuid or setgid bit and no file capability (mode ${octal(before.mode)}): nothing to strip`);
    }
    const sha256 = sha256OfTarget(fd);
    const coverage = findCoverage(path, sha256, o.rules, SHIPPED_RULES);
    const mode = strippedMode(before.mode);
    const owner = dpkg && packageOwning(dpkg, path);
    const previous = (dpkg && owner && overrideOf(dpkg, owner.path)) || null;
    const override = overrideFor(before.uid, before.gid, mode);
    const shim = o.shim ? planShim(path, o.shimDir, o.stateDir, STX_RUN) : null;
    const hook = owner ? hookFileFor(o.stateDir) : null;
    const hookContent = hook ? hookText(process.execPath, CLIENT_SCRIPT, o.stateDir) : '';
    const record: StripRecord = {
      version: 1,
      path,
      time: new Date().toISOString(),
      removed: {
        mode: octal(before.mode),
        uid: before.uid,
        gid: before.gid,
        capability: before.capability && { raw: before.capability.toString('base64'), text: capabilityText(before.capability) },
      },
      strippedMode: octal(mode),
      sha256,
      rule: { file: coverage.file, installed: coverage.install !== undefined, sha256: coverage.install?.sha256 ?? null },
      dpkg: owner ? { package: owner.package, path: owner.path, override, previousOverride: previous } : null,
      shim,
      hook,
    };

    const changes: Change[] = [{
      text: `record ${describePrivilege(before)} of ${path} in ${store.fileFor(path)}`,
      apply: () => store.write(record),
    }];
    const install = coverage.install;
    if (install) {
      changes.push({
        text: `install rule ${coverage.file} (the shipped ${install.from})`,
        apply: () => writeAtomic(coverage.file, install.text, 0o644, true),
      });
    }
    if (before.capability) {
      changes.push({ text: `remove capability ${capabilityText(before.capability)} from ${path}`, apply: () => removeCapability(fd, path) });
    }
    if (mode !== before.mode) {
      changes.push({ text: `chmod ${octal(before.mode)} -> ${octal(mode)} ${path}`, apply: () => setMode(fd, mode) });
    }
    if (dpkg && owner && !(previous && sameOverride(override, previous))) {
      if (previous) {
        changes.push({
          text: `dpkg-statoverride --remove ${owner.path} (was ${overrideText(previous)}; restore puts it back)`,
          apply: () => removeOverride(dpkg, owner.path),
        });
      }
      changes.push({
        text: `dpkg-statoverride --add ${overrideText(override)} ${owner.path} (package ${owner.package}: upgrades unpack it stripped)`,
        apply: () => addOverride(dpkg, owner.path, override),
      });
    }
    if (shim) {
      changes.push({
        text: `create shim ${shim.link} -> ${shim.runner} (runs ${path} through the broker; ${shim.stateLink} -> ${path})`,
        apply: () => createShim(shim, path),
      });
    }
    if (hook && !hooks.has(hook) && !hookInPlace(hook, hookContent)) {
      hooks.add(hook);
      changes.push({
        text: `install dpkg hook ${hook} (after each dpkg run, strips again what a maintainer script gave back)`,
        apply: () => installHook(hook, hookContent),
      });
    }

    const notes: string[] = [];
    if (install) notes.push(`the broker must reload its rules before users can run ${path}: ${RELOAD}`);
    if (!dpkg) notes.push(`no dpkg here: an upgrade of ${path} may give its privilege back; run stx-elevate strip --reapply after upgrades`);
    if (!shim) notes.push(`no shim: users run it as stx-elevate ${basename(path)}`);
    const others = otherNames(path);
    if (others.length > 0) {
      notes.push(`${others.join(', ')} also name ${path}; no shim runs ${others.length === 1 ? 'it' : 'them'}: `
        + `users run ${others.map((p) => `stx-elevate ${basename(p)}`).join(', ')}`);
    }
    const warnings = shim ? pathOrderWarnings(path, o.shimDir) : [];
    return {
      path,
      fd,
      heads: note ? [note] : [],
      changes,
      notes,
      warnings,
      summary: (dry) => `${dry ? 'would strip' : 'stripped'} ${path} (${describePrivilege(before)}); users run it through the broker by the rule ${coverage.file}; `
        + `undo with: stx-elevate restore ${path}`,
      undo: `what was done is recorded in ${store.fileFor(path)}: stx-elevate restore ${path} undoes it`,
    };
  } catch (e) {
    closeQuietly(fd);
    throw e;
  }
}

/**
 * `strip --reapply`, run by the dpkg hook after every dpkg run: removes
 * again the privilege a recorded binary got back. Quiet when there is
 * nothing to do; never fails (exit 0), whatever goes wrong: it must not
 * fail the package manager.
 */
function reapply(stateDir: string, io: Output): number {
  const say = (m: string): void => io.err(`stx-elevate strip --reapply: ${m}`);
  try {
    const store = new RecordStore(stateDir);
    const { records, problems } = store.list();
    for (const p of problems) say(p);
    for (const rec of records) {
      if (!existsSync(rec.path)) continue; // its package was removed: nothing to strip
      let fd = -1;
      try {
        fd = openTarget(rec.path).fd;
        const now = readPrivilege(fd, rec.path);
        if (!hasPrivilege(now)) continue;
        if (now.capability) removeCapability(fd, rec.path);
        if (strippedMode(now.mode) !== now.mode) setMode(fd, strippedMode(now.mode));
        const removed = describePrivilege(now);
        store.write({ ...rec, reapplied: { time: new Date().toISOString(), removed } });
        io.out(`stx-elevate strip --reapply: ${rec.path} had its privilege back (${removed}; a package upgrade or maintainer script?): removed it again`);
      } catch (e) {
        say(`${rec.path}: ${e instanceof Error ? e.message : String(e)}`);
      } finally {
        closeQuietly(fd);
      }
    }
  } catch (e) {
    say(e instanceof Error ? e.message : String(e));
  }
  return 0;
}

/** The command line after `strip`; the exit status: 0 done, 1 refused or failed, 2 usage. */
export function stripCommand(argv: string[]): number {
  const usage = (msg: string): never => {
    process.stderr.write(`stx-elevate strip: ${msg}\nusage: ${STRIP_USAGE}\n`);
    process.exit(2);
  };
  const parsed = yargs(argv)
    .scriptName('stx-elevate strip')
    .usage(`${STRIP_USAGE}\n\nRemove the setuid/setgid bits and the file capability of each PATH that a rule covers `
      + '(installed, or shipped: then strip installs it), record what was removed (stx-elevate restore puts it back), '
      + 'keep it so across package upgrades (dpkg-statoverride and a dpkg hook), and put a shim on PATH so the bare '
      + 'command runs through the broker. Root only. Exit 0 done, 1 refused or failed (nothing changed when refused).')
    .option('dry-run', { type: 'boolean', default: false, describe: 'print what would change, change nothing' })
    .option('rules', { type: 'string', default: DEFAULT_RULES, describe: 'installed rules directory' })
    .option('state-dir', { type: 'string', describe: 'records and shim links (default $STX_ELEVATE_STATE_DIR, else /var/lib/stx-elevate)' })
    .option('shim-dir', { type: 'string', default: DEFAULT_SHIM_DIR, describe: 'where the shim goes (before the binary on users\' PATH)' })
    .option('shim', { type: 'boolean', default: true, describe: 'create a shim (--no-shim: users run stx-elevate NAME)' })
    .option('reapply', { type: 'boolean', default: false, describe: 'strip again every recorded binary whose privilege came back (the dpkg hook)' })
    .parserConfiguration({ 'parse-positional-numbers': false })
    .strictOptions()
    .version(false)
    .help()
    .fail((msg) => usage(msg))
    .parseSync();
  const paths = parsed._.map(String);
  if (!requireRoot('strip', print)) return 1;
  const stateDir = resolve(stateDirPath(parsed.stateDir));
  if (parsed.reapply) {
    if (paths.length > 0 || parsed.dryRun) usage('--reapply takes no PATH and no --dry-run');
    return reapply(stateDir, print);
  }
  if (paths.length === 0) usage('no PATH given');
  const o: Options = { dryRun: parsed.dryRun, rules: resolve(parsed.rules), stateDir, shimDir: resolve(parsed.shimDir), shim: parsed.shim };
  const store = new RecordStore(stateDir);
  const dpkg = findDpkg();
  const seen = new Map<string, string>();
  const hooks = new Set<string>();
  const plans = planAll('strip', paths, (arg) => planStrip(arg, o, store, dpkg, seen, hooks), print);
  if (!plans) return 1;
  return applyAll('strip', plans, o.dryRun, print);
}
