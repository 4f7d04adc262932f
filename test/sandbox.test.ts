// The sandbox decision, from what the kernel shows of the client and of the
// broker. The e2e tests (e2e-sandbox) cover no_new_privs, seccomp and the
// mount namespace on this kernel; LSM labels only exist where an LSM is
// active, so their rule is checked here.
import t from 'tap';
import { readFileSync, statSync } from 'node:fs';
import { readConfinement, sandboxReasons, type Confinement } from '../src/broker/sandbox.js';

const plain: Confinement = {
  noNewPrivs: false, seccompMode: 0, seccompFilters: 0, lsmLabel: '', mountNs: { dev: 4n, ino: 4026531832n },
};
const client = (c: Partial<Confinement>): Confinement => ({ ...plain, ...c });

t.test('a client like the broker is not sandboxed', async (t) => {
  t.strictSame(sandboxReasons(plain, plain), { reasons: [], phrases: [] });
});

t.test('no_new_privs', async (t) => {
  t.strictSame(sandboxReasons(client({ noNewPrivs: true }), plain).reasons, ['no_new_privs']);
  t.strictSame(sandboxReasons(client({ noNewPrivs: true }), client({ noNewPrivs: true })).reasons, ['no_new_privs'],
    'whatever the broker has: the elevated program is the very privilege gain it ruled out');
});

t.test('seccomp: any filter the broker does not share', async (t) => {
  const filtered = client({ seccompMode: 2, seccompFilters: 1 });
  t.strictSame(sandboxReasons(filtered, plain), { reasons: ['seccomp'], phrases: ['a seccomp filter'] });
  t.strictSame(sandboxReasons(client({ seccompMode: 1, seccompFilters: 0 }), plain).phrases, ['seccomp strict mode']);
  const broker = client({ seccompMode: 2, seccompFilters: 2 });
  t.strictSame(sandboxReasons(client({ seccompMode: 2, seccompFilters: 2 }), broker).reasons, [],
    'as many filters as the broker: the ones both inherited');
  t.strictSame(sandboxReasons(client({ seccompMode: 2, seccompFilters: 3 }), broker).reasons, ['seccomp'], 'one more');
  t.strictSame(sandboxReasons(client({ seccompMode: 2, seccompFilters: 1 }), broker).reasons, ['seccomp'],
    'fewer: not the broker\'s');
  t.strictSame(sandboxReasons(client({ seccompMode: 2, seccompFilters: undefined }), client({ seccompMode: 2, seccompFilters: undefined })).reasons,
    ['seccomp'], 'no count from the kernel: any filter counts');
});

t.test('LSM label: none, the broker\'s own and AppArmor\'s "unconfined" are the defaults', async (t) => {
  t.strictSame(sandboxReasons(client({ lsmLabel: 'unconfined' }), client({ lsmLabel: 'unconfined' })).reasons, []);
  t.strictSame(sandboxReasons(client({ lsmLabel: 'unconfined' }), client({ lsmLabel: 'stx-elevated (enforce)' })).reasons, [],
    'AppArmor: unconfined client, confined broker');
  t.strictSame(sandboxReasons(client({ lsmLabel: 'firefox (enforce)' }), client({ lsmLabel: 'unconfined' })),
    { reasons: ['lsm-label'], phrases: ['the LSM label "firefox (enforce)"'] });
  const selinux = 'system_u:system_r:stx_elevated_t:s0';
  t.strictSame(sandboxReasons(client({ lsmLabel: selinux }), client({ lsmLabel: selinux })).reasons, [], 'SELinux: the broker\'s domain');
  t.strictSame(sandboxReasons(client({ lsmLabel: 'user_u:user_r:sandbox_t:s0' }), client({ lsmLabel: selinux })).reasons,
    ['lsm-label'], 'SELinux: another domain');
  t.strictSame(sandboxReasons(client({ lsmLabel: '' }), client({ lsmLabel: selinux })).reasons, [], 'no label is no confinement');
  const long = sandboxReasons(client({ lsmLabel: 'x'.repeat(500) }), plain).phrases[0];
  t.ok(long.length < 250, 'a long label is cut short in the message');
});

t.test('mount namespace: by device and inode', async (t) => {
  t.strictSame(sandboxReasons(client({ mountNs: { dev: 4n, ino: 4026532000n } }), plain),
    { reasons: ['mount-namespace'], phrases: ["a mount namespace other than the broker's"] });
  t.strictSame(sandboxReasons(client({ mountNs: { dev: 5n, ino: 4026531832n } }), plain).reasons, ['mount-namespace']);
});

t.test('every reason that applies, in a fixed order', async (t) => {
  const all = sandboxReasons({
    noNewPrivs: true, seccompMode: 2, seccompFilters: 1, lsmLabel: 'bwrap', mountNs: { dev: 4n, ino: 1n },
  }, plain);
  t.strictSame(all.reasons, ['no_new_privs', 'seccomp', 'lsm-label', 'mount-namespace']);
});

t.test('readConfinement reads this process as the kernel shows it', async (t) => {
  const self = readConfinement('self');
  const status = readFileSync('/proc/self/status', 'utf8');
  t.equal(self.noNewPrivs, /^NoNewPrivs:\s+1$/m.test(status));
  t.equal(self.seccompMode, Number(/^Seccomp:\s+(\d)$/m.exec(status)![1]));
  const ns = statSync('/proc/self/ns/mnt', { bigint: true });
  t.strictSame(self.mountNs, { dev: ns.dev, ino: ns.ino });
  let label = '';
  try { label = readFileSync('/proc/self/attr/current', 'utf8').replace(/[\0\n]+$/, ''); } catch { /* no LSM */ }
  t.equal(self.lsmLabel, label, 'no LSM: empty');
  t.strictSame(sandboxReasons(self, readConfinement('self')).reasons, self.noNewPrivs ? ['no_new_privs'] : []);
});
