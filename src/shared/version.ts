/** The version both commands print: package.json's, read only when asked (not on the program-running path). */
import { readFileSync } from 'node:fs';

export function packageVersion(): string {
  const pkg = new URL('../../package.json', import.meta.url);
  return (JSON.parse(readFileSync(pkg, 'utf8')) as { version: string }).version;
}
