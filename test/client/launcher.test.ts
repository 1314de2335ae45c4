import { EventEmitter } from 'node:events';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { launch } from '../../src/client/launcher.js';

const node = process.execPath;

describe('launch', () => {
  it('passes the extra environment over the base one', async () => {
    const code = await launch({
      command: node,
      args: ['-e', "process.exit(process.env.DATABASE_URL === 'postgres://x' && process.env.KEEP === 'base' && process.env.OVER === 'new' ? 7 : 1)"],
      env: { DATABASE_URL: 'postgres://x', OVER: 'new' },
      baseEnv: { PATH: process.env.PATH, KEEP: 'base', OVER: 'old' },
      signals: new EventEmitter(),
    });
    expect(code).toBe(7);
  });

  it.each([
    ['exit 0', 'process.exit(0)', 0],
    ['exit 3', 'process.exit(3)', 3],
    ['killed by SIGKILL', "process.kill(process.pid, 'SIGKILL')", 137],
  ])('resolves with the exit code: %s', async (_name, script, expected) => {
    expect(await launch({ command: node, args: ['-e', script], env: {}, baseEnv: {}, signals: new EventEmitter() })).toBe(expected);
  });

  it('forwards SIGTERM to the command', async () => {
    const signals = new EventEmitter();
    const running = launch({
      command: node,
      args: ['-e', 'setTimeout(() => process.exit(0), 20000)'],
      env: {},
      baseEnv: {},
      signals,
      onSpawn: () => setTimeout(() => signals.emit('SIGTERM'), 100),
    });
    expect(await running).toBe(143);
    expect(signals.listenerCount('SIGTERM')).toBe(0);
  });

  it('lets the command handle a forwarded SIGINT itself', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'hoop-launch-'));
    const readyFile = path.join(dir, 'ready');
    const signals = new EventEmitter();
    const script = `process.on('SIGINT', () => process.exit(42)); require('fs').writeFileSync(${JSON.stringify(readyFile)}, ''); setInterval(() => {}, 1000)`;
    const poll = async () => {
      while (!(await fs.stat(readyFile).catch(() => false))) await new Promise((r) => setTimeout(r, 20));
      signals.emit('SIGINT');
    };
    try {
      const running = launch({ command: node, args: ['-e', script], env: {}, baseEnv: {}, signals, onSpawn: () => void poll() });
      expect(await running).toBe(42);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it('is a usage error when the command does not exist', async () => {
    await expect(
      launch({ command: 'hoopctl-no-such-command', args: [], env: {}, baseEnv: { PATH: process.env.PATH }, signals: new EventEmitter() }),
    ).rejects.toMatchObject({ kind: 'usage', code: 'command_not_found' });
  });
});
