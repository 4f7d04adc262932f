// findCgroup2: where the cgroup v2 hierarchy is mounted and where the
// broker's own cgroup sits in it, from /proc/self/mountinfo and
// /proc/self/cgroup (no kernel needed: sample texts).
import t from 'tap';
import { findCgroup2 } from '../src/broker/cgroup.js';

const HYBRID = [
  '31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755',
  '32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu',
  '40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd',
  '41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw',
].join('\n');
const UNIFIED = '29 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate';

t.test('hybrid (v2 beside v1 controllers), own cgroup the root', async (t) => {
  t.same(findCgroup2(HYBRID, '9:name=systemd:/\n1:cpu:/\n0::/\n'),
    { mount: '/sys/fs/cgroup/unified', own: '/', dir: '/sys/fs/cgroup/unified' });
});

t.test('unified, optional fields before the separator, own cgroup a service', async (t) => {
  t.same(findCgroup2(UNIFIED, '0::/system.slice/stx-elevated.service\n'),
    { mount: '/sys/fs/cgroup', own: '/system.slice/stx-elevated.service', dir: '/sys/fs/cgroup/system.slice/stx-elevated.service' });
});

t.test('a mount of a subtree: the path below its root; a mount that does not show our cgroup is skipped', async (t) => {
  const info = [
    '50 23 0:26 /other /mnt/other rw - cgroup2 cgroup2 rw',
    '51 23 0:26 /system.slice /mnt/sys\\040slice rw - cgroup2 cgroup2 rw',
  ].join('\n');
  t.same(findCgroup2(info, '0::/system.slice/a.service\n'),
    { mount: '/mnt/sys slice', own: '/system.slice/a.service', dir: '/mnt/sys slice/a.service' });
});

t.test('no cgroup v2: no cgroup2 mount, or no "0::" line', async (t) => {
  t.equal(findCgroup2(HYBRID.split('\n').slice(0, 3).join('\n'), '0::/\n'), undefined, 'v1 only');
  t.equal(findCgroup2(HYBRID, '9:name=systemd:/\n1:cpu:/\n'), undefined, 'no v2 line');
  t.equal(findCgroup2('', '0::/\n'), undefined, 'empty mountinfo');
});

t.test('a cgroup2 name in another field is not the file system type', async (t) => {
  t.equal(findCgroup2('60 23 0:40 / /cgroup2 rw - tmpfs cgroup2 rw', '0::/\n'), undefined);
});
