/**
 * The broker's audit file: JSON lines, one record per event
 * (doc/CONTRACTS.md, "Audit records").
 */
import { existsSync, readFileSync } from 'node:fs'
import { sleep } from './proc.js'

export interface AuditRecord {
  time?: string
  event?: string
  session?: number
  uid?: number
  user?: string
  pid?: number
  program?: string
  argv?: string[]
  rule?: { file?: string, section?: string }
  call?: { name?: string, args?: unknown }
  result?: unknown
  errno?: string
  reason?: string
  code?: number | null
  signal?: string | null
  status?: number
  client?: { pid?: number }
  dir?: string
  files?: string[]
  errors?: string[]
  [key: string]: unknown
}

/**
 * Every complete line of the audit file, parsed. A complete line that is not
 * a JSON object is a contract violation and throws. A last line without its
 * newline is being written: it is left for the next read.
 */
export function readAudit(file: string): AuditRecord[] {
  if (!existsSync(file)) return []
  const text = readFileSync(file, 'utf8')
  const lines = text.split('\n')
  lines.pop()
  return lines.filter(l => l.trim() !== '').map((l, i) => {
    let v: unknown
    try { v = JSON.parse(l) } catch { throw new Error(`${file}:${i + 1}: audit line is not JSON: ${l.slice(0, 300)}`) }
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`${file}:${i + 1}: audit line is not a JSON object: ${l.slice(0, 300)}`)
    return v as AuditRecord
  })
}

/** The last records of the file, for failure messages. */
export function auditTail(file: string, n = 8): string {
  try {
    return readAudit(file).slice(-n).map(r => JSON.stringify(r)).join('\n') || '(no records)'
  } catch (e) {
    return `(unreadable: ${(e as Error).message})`
  }
}

/** Poll the audit file until a record satisfies `pred`; rejects after timeoutMs with the file's last records. */
export async function waitForAudit(file: string, pred: (r: AuditRecord) => boolean, timeoutMs = 5000, what = 'a matching audit record'): Promise<AuditRecord> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const hit = readAudit(file).find(pred)
    if (hit) return hit
    if (Date.now() > deadline) throw new Error(`no ${what} in ${file} within ${timeoutMs} ms; last records:\n${auditTail(file)}`)
    await sleep(50)
  }
}
