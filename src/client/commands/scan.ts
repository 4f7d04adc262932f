/*
 * stx-elevate scan [--rules DIR] [--json] [ROOT...]: every setuid, setgid
 * and file-capability binary under the roots, what privilege it holds,
 * and whether a rule covers it, a rule could replace it (network calls
 * the broker performs), or it needs what a socket broker cannot give
 * (credentials, files, devices). Reads metadata only: any user may run it.
 *
 * Exit 0 when every root was scanned (directories that could not be read
 * and rules that could not be loaded are reported, and counted in the
 * JSON's errors), 1 when a root could not be scanned, 2 on usage errors.
 */
import yargs from 'yargs';
import { DEFAULT_RULES } from '../../shared/defaults.js';
import { getgrgidName, getpwuid } from '../../shared/native/libc.js';
import { decodeFileCaps, type FileCaps, FileCapsError } from '../file-caps.js';
import { type Found, findPrivilegedFiles, type PrivilegedFile } from '../privileged-files.js';
import { type Held, type Judgement, judge, overall } from '../privileges.js';
import { type Coverage, loadCoverage, SHIPPED_RULES } from '../rule-coverage.js';
import { asJson, type Entry, humanReport, type Report } from '../scan-report.js';
import { SCAN_USAGE } from './usage.js';

/**
 * Where distributions and admins put programs. All of /usr (Electron
 * apps ship setuid chrome-sandbox under /usr/share), /usr/local again for
 * systems that mount it apart (the walk does not cross file systems), and
 * the top-level directories that are links into /usr on merged-/usr
 * systems but real on others. /home, /var and /tmp are left out: scan /
 * (or name them) for those.
 */
export const DEFAULT_ROOTS = ['/usr', '/usr/local', '/opt', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32'];

const S_ISUID = 0o4000;
const S_ISGID = 0o2000;

/** uid/gid to name, each looked up once. */
function namer(lookup: (id: number) => string | undefined): (id: number) => string | null {
  const cache = new Map<number, string | null>();
  return (id) => {
    if (!cache.has(id)) cache.set(id, lookup(id) ?? null);
    return cache.get(id)!;
  };
}
const userName = namer((uid) => getpwuid(uid)?.name);
const groupName = namer(getgrgidName);

const basename = (path: string): string => path.slice(path.lastIndexOf('/') + 1);

function capsText(caps: FileCaps): string {
  // a revision-3 value acts only in the user namespace whose root is rootid
  return caps.rootid ? `${caps.text} (in the user namespace of uid ${caps.rootid})` : caps.text;
}

/** One file: what it holds, the verdict on that, and the rule that covers it. */
function entry(file: PrivilegedFile, coverage: Coverage): Entry {
  const user = userName(file.uid);
  const group = groupName(file.gid);
  const setuid = (file.mode & S_ISUID) !== 0;
  const setgid = (file.mode & S_ISGID) !== 0;
  const held: Held = {
    name: basename(file.path),
    setuid: setuid ? { user: user ?? `uid ${file.uid}`, root: file.uid === 0 } : undefined,
    setgid: setgid ? { group: group ?? `gid ${file.gid}` } : undefined,
  };
  const privileges: Judgement[] = [];
  let caps: FileCaps | undefined;
  if (file.caps) {
    try {
      caps = decodeFileCaps(file.caps);
      held.caps = caps;
    } catch (e) {
      if (!(e instanceof FileCapsError)) throw e;
      // the kernel refuses to exec such a file: no privilege, but odd enough to show
      privileges.push({ privilege: 'security.capability', verdict: 'unknown', reason: `an invalid security.capability: ${e.message}` });
    }
  }
  privileges.unshift(...judge(held));
  const { verdict: judged, reasons } = overall(privileges);
  const words = [held.setuid && `setuid ${held.setuid.user}`, held.setgid && `setgid ${held.setgid.group}`, caps && capsText(caps)]
    .filter((w): w is string => Boolean(w));
  if (file.caps && !caps) words.push('security.capability (invalid)');
  const rule = coverage.lookup(file.path) ?? null;
  return {
    path: file.path,
    mode: file.mode.toString(8).padStart(4, '0'),
    uid: file.uid,
    user,
    gid: file.gid,
    group,
    setuid,
    setgid,
    capabilities: caps ? { text: caps.text, permitted: caps.permitted, inheritable: caps.inheritable, effective: caps.effective, ...(caps.rootid === undefined ? {} : { rootid: caps.rootid }) } : null,
    privilege: words.join(', '),
    verdict: rule ? 'covered' : judged,
    judged,
    reason: rule ? coveredReason(rule, judged, reasons) : reasons.join('; '),
    rule,
    privileges,
  };
}

function coveredReason(rule: { file: string; where: string }, judged: string, reasons: string[]): string {
  const which = rule.where === 'installed'
    ? `rule ${rule.file} (installed)`
    : `shipped rule ${rule.file} (not installed; stx-elevate strip installs it)`;
  // a rule for such a program runs it without what it needs: say so
  return judged === 'not replaceable' ? `${which}; yet ${reasons.join('; ')}, which no rule can grant` : which;
}

function report(found: Found, coverage: Coverage, rules: Report['rules']): Report {
  return {
    roots: found.roots,
    rules,
    files: found.files.map((f) => entry(f, coverage)),
    errors: [
      ...found.rootProblems.map((p) => ({ kind: 'root' as const, ...p })),
      ...found.problems.map((p) => ({ kind: 'file' as const, ...p })),
      ...coverage.problems.map((p) => ({ kind: 'rules' as const, ...p })),
    ],
    notCrossed: found.notCrossed,
    notes: coverage.notes,
  };
}

/** The command line after `scan`; the exit status. Usage errors exit 2. */
export function scanCommand(argv: string[]): number {
  const parsed = yargs(argv)
    .scriptName('stx-elevate scan')
    .usage(`${SCAN_USAGE}\n\nList every setuid, setgid and file-capability binary under the ROOTs (default: ${DEFAULT_ROOTS.join(' ')}), `
      + 'the privilege it holds, and a verdict: covered (a rule names it), network (only calls the broker performs: a rule can replace it), '
      + 'not replaceable (credentials, files, devices: which, in the last column) or unknown. '
      + 'Does not follow symbolic links or cross file systems. Exit 0 scanned, 1 a root could not be scanned.')
    .option('rules', { type: 'string', describe: `installed rules directory (default ${DEFAULT_RULES})` })
    .option('json', { type: 'boolean', default: false, describe: 'print one JSON document' })
    .parserConfiguration({ 'parse-positional-numbers': false })
    .strictOptions()
    .version(false)
    .help()
    .fail((msg) => {
      process.stderr.write(`stx-elevate scan: ${msg}\nusage: ${SCAN_USAGE}\n`);
      process.exit(2);
    })
    .parseSync();
  const given = parsed._.map(String);
  if (given.some((r) => r === '')) {
    process.stderr.write(`stx-elevate scan: an empty ROOT; name a directory or file\nusage: ${SCAN_USAGE}\n`);
    return 2;
  }
  const found = given.length > 0 ? findPrivilegedFiles(given) : findPrivilegedFiles(DEFAULT_ROOTS, true);
  const installed = parsed.rules ?? DEFAULT_RULES;
  const coverage = loadCoverage(installed, SHIPPED_RULES, parsed.rules === undefined);
  const r = report(found, coverage, { installed, shipped: SHIPPED_RULES });
  if (parsed.json) {
    process.stdout.write(`${JSON.stringify(asJson(r))}\n`);
  } else {
    const { out, err } = humanReport(r);
    process.stdout.write(out.map((l) => `${l}\n`).join(''));
    process.stderr.write(err.map((l) => `stx-elevate scan: ${l}\n`).join(''));
  }
  return found.rootProblems.length > 0 ? 1 : 0;
}
