/**
 * CPU time and resident memory of a path's own processes, read from /proc (Linux): a root pid
 * and every live descendant (sshd forks a child per connection; the gateway runs threads, which
 * /proc/<pid>/stat already sums). CPU time moves far less with machine load than TPS does.
 *
 *   /proc/<pid>/stat: pid (comm) state ppid … utime stime …   fields 14 and 15, in clock ticks
 */
import fs from 'node:fs';

/** Linux reports utime/stime in USER_HZ, 100 on every architecture Node runs on. */
const TICKS_PER_SECOND = 100;

export interface ProcStat {
  pid: number;
  ppid: number;
  /** utime + stime, in clock ticks. */
  cpuTicks: number;
}

/** Parses one /proc/<pid>/stat line; undefined when it is not one. `comm` may hold spaces and parentheses. */
export function parseProcStat(line: string): ProcStat | undefined {
  const close = line.lastIndexOf(')');
  const pid = Number.parseInt(line, 10);
  if (close < 0 || !Number.isInteger(pid)) return undefined;
  const fields = line.slice(close + 2).split(' ');
  // fields[0] is field 3 (state): field n is fields[n - 3]
  const ppid = Number(fields[1]);
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (![ppid, utime, stime].every(Number.isFinite)) return undefined;
  return { pid, ppid, cpuTicks: utime + stime };
}

function readStat(pid: number): ProcStat | undefined {
  try {
    return parseProcStat(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
}

/** Every live process of the machine, by pid. */
function allStats(): Map<number, ProcStat> {
  const out = new Map<number, ProcStat>();
  let names: string[];
  try {
    names = fs.readdirSync('/proc');
  } catch {
    return out;
  }
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    const stat = readStat(Number(name));
    if (stat) out.set(stat.pid, stat);
  }
  return out;
}

/** The roots and their live descendants, from one snapshot of the process table. */
export function processTree(roots: readonly number[], stats: Map<number, ProcStat> = allStats()): ProcStat[] {
  const children = new Map<number, number[]>();
  for (const s of stats.values()) {
    const list = children.get(s.ppid);
    if (list) list.push(s.pid);
    else children.set(s.ppid, [s.pid]);
  }
  const seen = new Set<number>();
  const queue = [...roots];
  const out: ProcStat[] = [];
  while (queue.length > 0) {
    const pid = queue.pop()!;
    if (seen.has(pid)) continue;
    seen.add(pid);
    const stat = stats.get(pid);
    if (!stat) continue;
    out.push(stat);
    queue.push(...(children.get(pid) ?? []));
  }
  return out;
}

/** CPU time (user + system) of the roots and their live descendants, in µs; undefined without /proc. */
export function cpuMicros(roots: readonly number[]): number | undefined {
  const tree = processTree(roots);
  if (tree.length === 0) return undefined;
  let ticks = 0;
  for (const s of tree) ticks += s.cpuTicks;
  return (ticks * 1e6) / TICKS_PER_SECOND;
}

/** Summed VmRSS of the roots and their live descendants, in bytes; undefined without /proc. */
export function residentBytes(roots: readonly number[]): number | undefined {
  const tree = processTree(roots);
  if (tree.length === 0) return undefined;
  let total = 0;
  for (const s of tree) {
    try {
      const match = /^VmRSS:\s+(\d+) kB$/m.exec(fs.readFileSync(`/proc/${s.pid}/status`, 'utf8'));
      if (match) total += Number(match[1]) * 1024;
    } catch {
      // exited meanwhile
    }
  }
  return total;
}
