/**
 * In-process micro-benchmarks of the guards' own costs, printed after the path table: policy
 * decision time (cached and uncached), parsing inline vs on a worker, audit record() throughput,
 * masking throughput.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { benchmarkAudit, formatAuditBenchmark } from '../../src/audit/benchmark.js';
import { benchmarkMasking } from '../../src/masking/benchmark.js';
import { benchmarkPolicy } from '../../src/policy/benchmark.js';
import { benchmarkParserMicro, formatParserMicro } from './parser-micro.js';

export interface MicroResults {
  policy: Awaited<ReturnType<typeof benchmarkPolicy>>;
  audit: Awaited<ReturnType<typeof benchmarkAudit>>;
  masking: ReturnType<typeof benchmarkMasking>;
  parser: Awaited<ReturnType<typeof benchmarkParserMicro>>;
}

export async function runMicroBenchmarks(progress: (line: string) => void): Promise<{ lines: string[]; results: MicroResults }> {
  progress('micro: policy decisions');
  const policy = await benchmarkPolicy();
  progress('micro: policy parser inline vs worker');
  const parser = await benchmarkParserMicro();
  progress('micro: audit recorder');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hoop-bench-audit-'));
  let audit: MicroResults['audit'];
  try {
    audit = await benchmarkAudit({ dir });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  progress('micro: masking');
  const masking = benchmarkMasking();
  const lines = [
    'guard costs, in process:',
    `  policy decision: cached ${policy.cachedUs.toFixed(1)} µs (exact-text hit ${policy.exactHitUs.toFixed(1)} µs), uncached ${policy.uncachedUs.toFixed(1)} µs`,
    ...policy.statements.map(
      (s) =>
        `    ${s.name.padEnd(32)} uncached ${s.uncachedUs.toFixed(1).padStart(6)} µs  exact ${s.exactHitUs.toFixed(2).padStart(5)} µs  other literals ${s.shapeHitUs === null ? '   n/a' : `${s.shapeHitUs.toFixed(2).padStart(5)} µs`}`,
    ),
    ...formatParserMicro(parser),
    '  audit recorder (record() of statement events):',
    ...formatAuditBenchmark(audit).map((line) => `    ${line}`),
    `  masking maskValue over ${(masking.bytes / 1e6).toFixed(1)} MB (${masking.values} values):`,
    ...Object.entries(masking.scenarios).map(
      ([name, r]) => `    ${name.padEnd(18)} ${r.mbPerSec.toFixed(0).padStart(6)} MB/s  ${r.millionValuesPerSec.toFixed(2)} M values/s`,
    ),
  ];
  return { lines, results: { policy, audit, masking, parser } };
}
