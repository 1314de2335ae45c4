import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { pooledRandomFillSync } from '../../src/ssh/ssh2.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

describe('pooledRandomFillSync', () => {
  it('fills exactly the range asked for and returns the target', () => {
    const buf = Buffer.alloc(64, 0xee);
    expect(pooledRandomFillSync(buf, 10, 20)).toBe(buf);
    expect(buf.subarray(0, 10).every((b) => b === 0xee)).toBe(true);
    expect(buf.subarray(30).every((b) => b === 0xee)).toBe(true);
    // 20 random bytes all equal to 0xee: 2^-160.
    expect(buf.subarray(10, 30).every((b) => b === 0xee)).toBe(false);
  });

  it('never hands out the same bytes twice, across refills of the pool', () => {
    const seen = new Set<string>();
    // 16 bytes at a time, 4,000 times: 64 KB, four refills of the 16 KiB pool.
    for (let i = 0; i < 4000; i++) seen.add(pooledRandomFillSync(Buffer.alloc(16)).toString('hex'));
    expect(seen.size).toBe(4000);
  });

  it('gives bytes that look uniform (each byte value within 5 σ of its expected count)', () => {
    const counts = new Array<number>(256).fill(0);
    const n = 256 * 1000;
    for (let i = 0; i < n / 8; i++) for (const b of pooledRandomFillSync(Buffer.alloc(8))) counts[b]!++;
    const expected = n / 256;
    const sigma = Math.sqrt(expected * (1 - 1 / 256));
    for (const c of counts) expect(Math.abs(c - expected)).toBeLessThan(5 * sigma);
  });

  it('leaves large requests and bad arguments to crypto.randomFillSync, which checks them', () => {
    const big = Buffer.alloc(4096);
    pooledRandomFillSync(big);
    expect(big.every((b) => b === 0)).toBe(false);
    expect(() => pooledRandomFillSync(Buffer.alloc(8), 4, 8)).toThrow(RangeError);
    expect(() => pooledRandomFillSync(Buffer.alloc(8), -1, 2)).toThrow(RangeError);
  });
});

describe('ssh2 loaded through src/ssh/ssh2.ts', () => {
  it('pads its packets from the pool: a real SSH session calls crypto.randomFillSync a few times, not once per packet', () => {
    // A fresh process, so ssh2 is not already loaded by another test file.
    const script = `
      import crypto from 'node:crypto';
      // Counted from before ssh2 loads: whatever ssh2 ends up calling, pool or not, reaches this.
      let calls = 0;
      const real = crypto.randomFillSync;
      crypto.randomFillSync = (...args) => { calls++; return real(...args); };
      const { default: ssh2 } = await import(${JSON.stringify(path.join(repo, 'src/ssh/ssh2.ts'))});
      const { generateEphemeralKey } = await import(${JSON.stringify(path.join(repo, 'src/ssh/ed25519.ts'))});
      const hostKey = generateEphemeralKey().privateKey;
      const server = new ssh2.Server({ hostKeys: [hostKey] }, (client) => {
        client.on('authentication', (ctx) => ctx.accept());
        client.on('ready', () => client.on('session', (accept) => accept().on('exec', (accept) => {
          const stream = accept();
          stream.on('data', (d) => stream.write(d));
          stream.on('end', () => { stream.exit(0); stream.end(); });
        })));
      });
      await new Promise((r) => server.listen(0, '127.0.0.1', r));
      const client = new ssh2.Client();
      await new Promise((r, j) => client.on('ready', r).on('error', j).connect({ host: '127.0.0.1', port: server.address().port, username: 'u', password: 'p' }));
      const stream = await new Promise((r, j) => client.exec('echo', (err, s) => (err ? j(err) : r(s))));
      let echoed = 0;
      const done = new Promise((r) => stream.on('data', (d) => { echoed += d.length; if (echoed >= 500 * 64) r(); }));
      calls = 0;
      for (let i = 0; i < 500; i++) stream.write(Buffer.alloc(64, i));
      await done;
      stream.end(); client.end(); server.close();
      console.log(JSON.stringify({ calls, echoed }));
    `;
    const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: repo, encoding: 'utf8', timeout: 30_000 });
    const { calls, echoed } = JSON.parse(out.trim().split('\n').pop()!) as { calls: number; echoed: number };
    expect(echoed).toBe(500 * 64);
    // At least 1,000 packets went each way; the pool refills every 16 KiB of padding (≤ 20 bytes a packet).
    expect(calls).toBeLessThan(10);
  });

  it('is the only way hoopctl loads ssh2 (other files import only its types)', () => {
    const offenders: string[] = [];
    const walk = (dir: string) => {
      for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
        const file = path.join(dir, entry.name);
        if (entry.isDirectory()) walk(file);
        else if (file.endsWith('.ts') && file !== path.join(repo, 'src/ssh/ssh2.ts')) {
          const text = fs.readFileSync(file, 'utf8');
          if (/^import (?!type )[^;]*from 'ssh2';/m.test(text) || /require\('ssh2'\)/.test(text)) offenders.push(path.relative(repo, file));
        }
      }
    };
    walk(path.join(repo, 'src'));
    expect(offenders).toEqual([]);
  });
});
