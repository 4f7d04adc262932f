// Unit tests of the security.capability codec (src/client/file-caps.ts),
// checked against what setcap writes and getcap prints on this machine.
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { decodeFileCaps, FileCapsError, CAPABILITY_XATTR } from '../src/client/file-caps.js'
import { lgetxattr } from '../src/shared/native/xattr.js'

const v2 = (magicFlags: number, permitted: number, inheritable = 0) => {
  const b = Buffer.alloc(20)
  b.writeUInt32LE(0x02000000 | magicFlags, 0)
  b.writeUInt32LE(permitted, 4)
  b.writeUInt32LE(inheritable, 8)
  return b
}

t.test('revision 2: sets, effective flag and getcap text', async t => {
  const c = decodeFileCaps(v2(1, 1 << 13))
  t.same(c.permitted, ['cap_net_raw'])
  t.equal(c.effective, true)
  t.equal(c.text, 'cap_net_raw=ep')
  const d = decodeFileCaps(v2(0, (1 << 10) | (1 << 13), 1 << 13))
  t.equal(d.text, 'cap_net_bind_service=p cap_net_raw=ip')
  t.equal(d.rootid, undefined)
})

t.test('revision 3 carries the namespace root uid; high capabilities come from the second word', async t => {
  const b = Buffer.alloc(24)
  b.writeUInt32LE(0x03000001, 0)
  b.writeUInt32LE(1 << (38 - 32), 12)
  b.writeUInt32LE(100000, 20)
  const c = decodeFileCaps(b)
  t.same(c.permitted, ['cap_perfmon'])
  t.equal(c.rootid, 100000)
})

t.test('values the kernel does not define are refused, naming revision and size', async t => {
  t.throws(() => decodeFileCaps(Buffer.alloc(2)), /2 bytes is too short/)
  try { decodeFileCaps(Buffer.alloc(2)) } catch (e) { t.ok(e instanceof FileCapsError, 'a FileCapsError') }
  t.throws(() => decodeFileCaps(Buffer.alloc(20)), /revision 0x0 and 20 bytes/)
  const short = v2(1, 1).subarray(0, 16)
  t.throws(() => decodeFileCaps(short), /revision 0x2 and 16 bytes/)
})

t.test('agrees with setcap and getcap on a real file; the text is setcap syntax for the same value', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'stx-caps-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'prog')
  copyFileSync('/bin/true', file)
  t.equal(lgetxattr(file, CAPABILITY_XATTR), null, 'a file without capabilities has no attribute')
  for (const caps of ['cap_net_raw=ep', 'cap_net_admin,cap_net_raw=ep', 'cap_net_bind_service=p']) {
    execFileSync('setcap', [caps, file])
    const got = decodeFileCaps(lgetxattr(file, CAPABILITY_XATTR)!)
    const printed = execFileSync('getcap', [file], { encoding: 'utf8' }).trim()
    t.equal(`${file} ${got.text}`, printed, `${caps}: same text as getcap`)
  }
  execFileSync('setcap', ['cap_net_bind_service=p cap_net_raw=ip', file])
  const raw = lgetxattr(file, CAPABILITY_XATTR)!
  const text = decodeFileCaps(raw).text
  execFileSync('setcap', ['-r', file])
  execFileSync('setcap', [text, file])
  t.same(lgetxattr(file, CAPABILITY_XATTR), raw, `setcap ${text} writes the same value back`)
})
