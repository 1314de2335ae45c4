import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { lockDataDir } from '../../src/gateway/data-dir-lock.js';
import { HoopError } from '../../src/errors.js';
import { startTestGateway } from '../helpers/gateway.js';

describe('one gateway per data directory', () => {
  const dirs: string[] = [];
  const tempDir = () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hoop-lock-'));
    dirs.push(dir);
    return dir;
  };
  afterEach(() => {
    for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a second gateway on the same dataDir, naming the holder, and frees it on close', async () => {
    const dataDir = tempDir();
    const connections = { db: { type: 'postgres', host: '127.0.0.1', database: 'd', user: 'u', password: 'env:PW' } };
    const first = await startTestGateway({ dataDir, env: { PW: 'x' }, connections });
    const second = startTestGateway({ dataDir, env: { PW: 'x' }, connections });
    await expect(second).rejects.toMatchObject({ code: 'data_dir_in_use', message: expect.stringContaining(`pid ${process.pid}`) });
    await first.stop();
    const third = await startTestGateway({ dataDir, env: { PW: 'x' }, connections });
    await third.stop();
  });

  it('takes over a lock left by a process that no longer runs', async () => {
    const dataDir = tempDir();
    const child = spawn(process.execPath, ['-e', '0']);
    const deadPid = await new Promise<number>((resolve) => child.on('exit', () => resolve(child.pid!)));
    fs.writeFileSync(path.join(dataDir, 'gateway.lock'), `${deadPid}\n`);
    const release = lockDataDir(dataDir);
    expect(fs.readFileSync(path.join(dataDir, 'gateway.lock'), 'utf8').trim()).toBe(String(process.pid));
    release();
    expect(fs.existsSync(path.join(dataDir, 'gateway.lock'))).toBe(false);
  });

  it('is a usage error with a hint', () => {
    const dataDir = tempDir();
    fs.writeFileSync(path.join(dataDir, 'gateway.lock'), `${process.ppid}\n`);
    try {
      lockDataDir(dataDir);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(HoopError);
      expect((err as HoopError).kind).toBe('usage');
      expect((err as HoopError).hint).toContain('own dataDir');
    }
  });
});
