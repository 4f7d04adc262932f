import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { SocketAddress } from 'node:net';
import {
  IFNAMSIZ, IPV6_TRANSPARENT, IP_TRANSPARENT, PRIVILEGED_OPTIONS, SOL_IP, SOL_IPV6, SOL_SOCKET, SO_BINDTODEVICE,
  SO_MARK, SO_PRIORITY, SO_RCVBUFFORCE, SO_REUSEPORT, SO_SNDBUFFORCE, addressBytes, addressText, canonicalAddress,
  decodeInetSockaddr, isWildcardAddress, levelName, optionName, privilegedOption,
} from '../src/broker/rules/names.js';

/** `#define NAME NUMBER` lines of a header under /usr/include; empty when it is not installed. */
function defines(header: string): Map<string, number> {
  const path = `/usr/include/${header}`;
  if (!existsSync(path)) return new Map();
  const out = new Map<string, number>();
  for (const m of readFileSync(path, 'utf8').matchAll(/^#define\s+(\w+)\s+(\d+)\b/gm)) out.set(m[1], Number(m[2]));
  return out;
}

t.test('option and level numbers agree with the kernel headers', async (t) => {
  const socket = defines('asm-generic/socket.h');
  const ip = defines('linux/in.h');
  const ip6 = defines('linux/in6.h');
  const glibc = defines('x86_64-linux-gnu/bits/in.h');
  if (socket.size === 0 || ip.size === 0 || ip6.size === 0) {
    t.comment('kernel headers not installed (linux-libc-dev): nothing to compare');
    return;
  }
  // the numbers the rules and the filter use
  t.equal(SOL_SOCKET, socket.get('SOL_SOCKET'));
  t.equal(SO_PRIORITY, socket.get('SO_PRIORITY'));
  t.equal(SO_BINDTODEVICE, socket.get('SO_BINDTODEVICE'));
  t.equal(SO_MARK, socket.get('SO_MARK'));
  t.equal(SO_RCVBUFFORCE, socket.get('SO_RCVBUFFORCE'));
  t.equal(SO_SNDBUFFORCE, socket.get('SO_SNDBUFFORCE'));
  t.equal(SO_REUSEPORT, socket.get('SO_REUSEPORT'));
  t.equal(IP_TRANSPARENT, ip.get('IP_TRANSPARENT'));
  t.equal(IPV6_TRANSPARENT, ip6.get('IPV6_TRANSPARENT'));
  t.equal(IFNAMSIZ, defines('linux/if.h').get('IFNAMSIZ') ?? IFNAMSIZ);
  if (glibc.size > 0) {
    t.equal(SOL_IP, glibc.get('SOL_IP'));
    t.equal(SOL_IPV6, glibc.get('SOL_IPV6'));
  }
  // every option the headers define decodes to its name (x86_64: *_OLD are the plain names)
  for (const [name, n] of socket) {
    if (!name.startsWith('SO_')) continue;
    t.equal(optionName(SOL_SOCKET, n), name.replace(/_OLD$/, ''), name);
  }
  const skip = /^(IP_PMTUDISC_|IP_DEFAULT_|IPV6_PMTUDISC_|IPV6_FL_|IPV6_TLV_|IPV6_PRIORITY_|IPV6_PREFER_)/;
  for (const [name, n] of ip) if (name.startsWith('IP_') && !skip.test(name)) t.equal(optionName(SOL_IP, n), name, name);
  for (const [name, n] of ip6) if (name.startsWith('IPV6_') && !skip.test(name)) t.equal(optionName(SOL_IPV6, n), name, name);
});

t.test('privileged options: level and number follow from the name', async (t) => {
  t.strictSame([...PRIVILEGED_OPTIONS.values()].map((o) => [o.name, o.level, o.option, o.value]), [
    ['SO_MARK', 1, 36, 'int'],
    ['SO_PRIORITY', 1, 12, 'int'],
    ['SO_BINDTODEVICE', 1, 25, 'interface'],
    ['SO_RCVBUFFORCE', 1, 33, 'int'],
    ['SO_SNDBUFFORCE', 1, 32, 'int'],
    ['IP_TRANSPARENT', 0, 19, 'bool'],
    ['IPV6_TRANSPARENT', 41, 75, 'bool'],
  ]);
  t.equal(privilegedOption(1, 36)?.name, 'SO_MARK');
  t.equal(privilegedOption(41, 75)?.name, 'IPV6_TRANSPARENT');
  t.equal(privilegedOption(0, 75), undefined, 'the level matters');
  t.equal(privilegedOption(1, 2), undefined, 'SO_REUSEADDR needs no privilege');
});

t.test('levels and options decode for audit records', async (t) => {
  t.equal(levelName(1), 'SOL_SOCKET');
  t.equal(levelName(0), 'SOL_IP');
  t.equal(levelName(41), 'SOL_IPV6');
  t.equal(levelName(6), 'SOL_TCP');
  t.equal(levelName(99), undefined);
  t.equal(optionName(1, 36), 'SO_MARK');
  t.equal(optionName(1, 15), 'SO_REUSEPORT');
  t.equal(optionName(0, 3), 'IP_HDRINCL');
  t.equal(optionName(41, 36), 'IPV6_HDRINCL');
  t.equal(optionName(1, 1000), undefined);
  t.equal(optionName(6, 1), undefined, 'no TCP table');
});

t.test('addresses: one canonical text', async (t) => {
  const cases: Array<[string, string | undefined]> = [
    ['127.0.0.1', '127.0.0.1'],
    ['0.0.0.0', '0.0.0.0'],
    ['::0001', '::1'],
    ['0:0:0:0:0:0:0:1', '::1'],
    ['::', '::'],
    ['0:0:0:0:0:0:0:0', '::'],
    ['FE80::A', 'fe80::a'],
    ['2001:0db8::0001', '2001:db8::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],    // the first of two equal runs
    ['1:0:0:2:0:0:0:3', '1:0:0:2::3'],                // the longest run
    ['1::2:3:4:5:6:7', '1:0:2:3:4:5:6:7'],            // one zero group is not a run
    ['1:2:3:4:5:6:7::', '1:2:3:4:5:6:7:0'],
    ['::ffff:127.0.0.1', '::ffff:127.0.0.1'],
    ['::FFFF:7f00:1', '::ffff:127.0.0.1'],            // mapped: always dotted
    ['::1.2.3.4', '::102:304'],                       // "compatible" addresses are plain IPv6
    ['::2:3', '::2:3'],
    ['127.0.0.01', undefined],
    ['1.2.3', undefined],
    ['localhost', undefined],
    ['[::1]', undefined],
    ['fe80::1%eth0', undefined],
    [' ::1', undefined],
    ['', undefined],
  ];
  for (const [text, canonical] of cases) t.equal(canonicalAddress(text), canonical, JSON.stringify(text));
  t.ok(isWildcardAddress('0.0.0.0'));
  t.ok(isWildcardAddress('::'));
  t.notOk(isWildcardAddress('::1'));
  t.strictSame([...addressBytes('::ffff:1.2.3.4')!], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 1, 2, 3, 4]);
  t.throws(() => addressText(new Uint8Array(5)), RangeError);
});

t.test('addressText and addressBytes round-trip, and read what Node reads', async (t) => {
  let seed = 5;
  const random = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  for (let i = 0; i < 5000; i++) {
    // mostly zero groups, so "::" runs of every length and place occur
    const bytes = Uint8Array.from({ length: 16 }, () => random() < 0.6 ? 0 : Math.floor(random() * 256));
    const text = addressText(bytes);
    const back = addressBytes(text);
    if (!back || Buffer.compare(back, bytes) !== 0) t.fail(`round trip of ${text}`);
    const node = new SocketAddress({ address: text, family: 'ipv6' }).address;
    if (canonicalAddress(node) !== text) t.fail(`${text}: Node reads ${node}`);
  }
  t.pass('5000 addresses');
});

t.test('decodeInetSockaddr: sockaddr_in and sockaddr_in6 as bind() gets them', async (t) => {
  const in4 = Buffer.alloc(16);
  in4.writeUInt16LE(2, 0);
  in4.writeUInt16BE(80, 2);
  in4.set([127, 0, 0, 1], 4);
  t.strictSame(decodeInetSockaddr(in4), { family: 2, address: '127.0.0.1', port: 80, scopeId: 0 });
  t.equal(decodeInetSockaddr(in4.subarray(0, 15)), undefined, 'shorter than sizeof(sockaddr_in)');

  const in6 = Buffer.alloc(28);
  in6.writeUInt16LE(10, 0);
  in6.writeUInt16BE(443, 2);
  in6[23] = 1;
  in6.writeUInt32LE(3, 24);
  t.strictSame(decodeInetSockaddr(in6), { family: 10, address: '::1', port: 443, scopeId: 3 });
  t.strictSame(decodeInetSockaddr(in6.subarray(0, 24)), { family: 10, address: '::1', port: 443, scopeId: 0 },
    'the RFC 2133 length, without scope id, is accepted by the kernel');
  t.equal(decodeInetSockaddr(in6.subarray(0, 23)), undefined);

  const unspec = Buffer.from(in4);
  unspec.writeUInt16LE(0, 0);
  t.equal(decodeInetSockaddr(unspec), undefined, 'AF_UNSPEC (the kernel\'s compatibility case) is refused');
  const unix = Buffer.alloc(110);
  unix.writeUInt16LE(1, 0);
  t.equal(decodeInetSockaddr(unix), undefined);
  t.equal(decodeInetSockaddr(new Uint8Array(1)), undefined);
  const offset = Buffer.concat([Buffer.alloc(3), in4]).subarray(3);
  t.equal(decodeInetSockaddr(offset)?.port, 80, 'a view at an odd offset');
});
