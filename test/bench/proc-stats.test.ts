import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { cpuMicros, parseProcStat, processTree, residentBytes, type ProcStat } from '../../scripts/bench/proc-stats.js';

describe('parseProcStat', () => {
  it.each([
    ['plain comm', '4242 (node) S 1 4242 4242 0 -1 4194304 100 0 0 0 250 40 0 0 20 0 11 0 100 0 0', { pid: 4242, ppid: 1, cpuTicks: 290 }],
    ['comm with spaces and parentheses', '77 (sshd: a (b) c) S 12 77 77 0 -1 0 0 0 0 0 7 3 0 0 20 0 1 0 1 0 0', { pid: 77, ppid: 12, cpuTicks: 10 }],
  ])('%s', (_name, line, expected) => {
    expect(parseProcStat(line)).toEqual(expected);
  });

  it('gives undefined for a line that is not a stat line', () => {
    expect(parseProcStat('garbage')).toBeUndefined();
  });
});

describe('processTree', () => {
  it('collects the roots and every descendant, nothing else', () => {
    const stats = new Map<number, ProcStat>(
      [
        { pid: 1, ppid: 0, cpuTicks: 1 },
        { pid: 10, ppid: 1, cpuTicks: 1 },
        { pid: 11, ppid: 10, cpuTicks: 1 },
        { pid: 12, ppid: 11, cpuTicks: 1 },
        { pid: 20, ppid: 1, cpuTicks: 1 },
      ].map((s) => [s.pid, s]),
    );
    expect(processTree([10], stats).map((s) => s.pid).sort()).toEqual([10, 11, 12]);
    expect(processTree([99], stats)).toEqual([]);
  });
});

describe.runIf(process.platform === 'linux')('cpuMicros and residentBytes on this machine', () => {
  it('count a busy child process and its memory', async () => {
    const busy = 'const t = process.cpuUsage(); while (process.cpuUsage(t).user < 300000); process.stdout.write("busy"); setTimeout(() => {}, 10000)';
    const child = spawn(process.execPath, ['-e', busy], { stdio: ['ignore', 'pipe', 'ignore'] });
    try {
      await new Promise((resolve) => child.stdout.once('data', resolve));
      expect(cpuMicros([child.pid!])).toBeGreaterThanOrEqual(200_000);
      expect(residentBytes([child.pid!])).toBeGreaterThan(10 * 1024 * 1024);
      expect(cpuMicros([2 ** 22 + 1])).toBeUndefined();
    } finally {
      child.kill();
    }
  });
});
