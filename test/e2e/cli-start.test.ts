import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runHoopctl } from '../helpers/cli-process.js';

/**
 * The ES modules a run of the built CLI loads, from Node 20's `NODE_DEBUG=esm` trace ("Storing
 * <url> in ModuleLoadMap"). The trace is Node's own debug output: the test first checks that it
 * sees the CLI's entry module, so a changed format fails here instead of passing vacuously.
 */
async function loadedModules(args: string[], entry = '/dist/cli/main.js'): Promise<{ code: number | null; stdout: string; modules: string[] }> {
  const run = await runHoopctl(args, { NODE_DEBUG: 'esm' });
  const modules = [...run.stderr.matchAll(/Storing (\S+)/g)].map((m) => m[1]!);
  expect(modules.some((m) => m.endsWith(entry))).toBe(true);
  return { code: run.code, stdout: run.stdout, modules };
}

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

const HEAVY = ['/dist/cli/commands/', '/dist/ssh/ssh2.js', '/node_modules/ssh2/', '/node_modules/@azure/', '/node_modules/libpg-query/', '/node_modules/better-sqlite3/', '/node_modules/oidc-provider/', '/dist/gateway/'];

describe('CLI start: a command loads its heavy modules only when it runs', () => {
  it('hoopctl --version alone is answered by bin/hoopctl before the CLI loads (its version module only)', async () => {
    const { code, stdout, modules } = await loadedModules(['--version'], '/dist/cli/version.js');
    expect(code).toBe(0);
    expect(stdout).toBe(`${JSON.parse(fs.readFileSync(path.join(repo, 'package.json'), 'utf8')).version}\n`);
    expect(modules.filter((m) => m.includes('/dist/'))).toEqual([expect.stringMatching(/\/dist\/cli\/version\.js$/)]);
    expect(modules.filter((m) => m.includes('/node_modules/'))).toEqual([]);
  });

  it('hoopctl --json --version goes through the CLI and loads no command, no SSH, no identity library, no parser, no database driver', async () => {
    const { code, stdout, modules } = await loadedModules(['--json', '--version']);
    expect(code).toBe(0);
    expect(stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
    expect(modules.filter((m) => HEAVY.some((h) => m.includes(h)))).toEqual([]);
  });

  it('hoopctl connect loads its own command file, but not ssh2 (loaded while the session request is in flight), msal-node (only logins and token refreshes need it) nor the gateway', async () => {
    const { code, modules } = await loadedModules(['connect', '--help']);
    expect(code).toBe(0);
    expect(modules.filter((m) => m.includes('/dist/cli/commands/'))).toEqual([expect.stringMatching(/\/dist\/cli\/commands\/connect\.js$/)]);
    expect(modules.some((m) => m.endsWith('/dist/client/tunnel.js'))).toBe(true);
    expect(modules.some((m) => m.endsWith('/dist/ssh/ssh2.js'))).toBe(false); // ssh2 itself is require()d there, out of the ESM trace
    expect(modules.filter((m) => ['/node_modules/@azure/', '/node_modules/libpg-query/', '/node_modules/better-sqlite3/', '/dist/gateway/'].some((h) => m.includes(h)))).toEqual([]);
  });
});
