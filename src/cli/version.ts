import { readFileSync } from 'node:fs';

/** hoopctl's version from package.json (two levels up from both src/cli and dist/cli). */
export function readVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : '0.0.0';
  } catch {
    return '0.0.0';
  }
}
