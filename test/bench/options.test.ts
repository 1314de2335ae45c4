import { describe, expect, it } from 'vitest';
import { parseBenchOptions, UsageError } from '../../scripts/bench/options.js';

const PATHS = ['direct', 'hoop'];
const WORKLOADS = ['pgbench', 'latency'];

describe('npm run bench options', () => {
  it('runs every workload by default and the ones named with --workloads', () => {
    expect(parseBenchOptions([], PATHS, WORKLOADS)).toMatchObject({ workloads: WORKLOADS });
    expect(parseBenchOptions(['--workloads', 'latency'], PATHS, WORKLOADS)).toMatchObject({ workloads: ['latency'] });
  });

  it('--workloads none runs no workload, for the CLI rows alone', () => {
    expect(parseBenchOptions(['--workloads', 'none', '--paths', 'hoop', '--no-micro', '--no-isolation'], PATHS, WORKLOADS)).toMatchObject({ workloads: [], cli: true, paths: ['hoop'] });
  });

  it('refuses an empty or unknown workload list', () => {
    expect(() => parseBenchOptions(['--workloads', ','], PATHS, WORKLOADS)).toThrow(UsageError);
    expect(() => parseBenchOptions(['--workloads', 'nope'], PATHS, WORKLOADS)).toThrow(/unknown workload nope/);
  });
});
