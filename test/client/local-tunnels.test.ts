import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LocalTunnels, processAlive, processStartTime, type LocalTunnelRecord } from '../../src/client/local-tunnels.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

function runtime(): LocalTunnels {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'hoop-local-tunnels-'));
  dirs.push(base);
  return new LocalTunnels(path.join(base, 'hoopctl'));
}

const record = (over: Partial<LocalTunnelRecord>): LocalTunnelRecord => ({
  version: 1,
  sessionId: 'ses_a',
  connection: 'orders-db',
  gateway: 'https://gw',
  user: 'alice',
  issuer: 'https://idp',
  subject: 'alice',
  mode: 'background',
  pid: process.pid,
  processStart: processStartTime(process.pid),
  address: { kind: 'tcp', host: '127.0.0.1', port: 5433 },
  database: { user: 'app', name: 'orders' },
  password: 'pw',
  expiresAt: new Date(Date.now() + 60_000).toISOString(),
  startedAt: new Date().toISOString(),
  state: 'up',
  ...over,
});

describe('local tunnel records', () => {
  it('keeps a live one (0600 in a 0700 directory) and removes it with its secret files', () => {
    const tunnels = runtime();
    tunnels.write(record({}));
    const pgpass = tunnels.writeSecret('ses_a', '.pgpass', 'x');
    expect(fs.statSync(tunnels.dir).mode & 0o777).toBe(0o700);
    expect(fs.statSync(pgpass).mode & 0o777).toBe(0o600);
    expect(tunnels.list().map((r) => r.sessionId)).toEqual(['ses_a']);
    tunnels.remove('ses_a');
    expect(fs.readdirSync(tunnels.dir)).toEqual([]);
  });

  it('a live pid that started at another time is another process: the record is dropped (regression guard: reused pids)', () => {
    const tunnels = runtime();
    tunnels.write(record({ processStart: '1' }));
    tunnels.writeSecret('ses_a', '.pg_service.conf', 'x');
    expect(tunnels.list()).toEqual([]);
    expect(fs.readdirSync(tunnels.dir)).toEqual([]);
    expect(processAlive(process.pid, processStartTime(process.pid))).toBe(true);
  });

  it('tightens a directory of ours that others could read, and refuses a session id that is not a file name', () => {
    const tunnels = runtime();
    fs.mkdirSync(tunnels.dir, { mode: 0o755 });
    fs.chmodSync(tunnels.dir, 0o755);
    tunnels.ensureDir();
    expect(fs.statSync(tunnels.dir).mode & 0o777).toBe(0o700);
    expect(() => tunnels.fileOf('../../etc/passwd', '.json')).toThrow(/the gateway named a session/);
  });
});
