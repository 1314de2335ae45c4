/**
 * Where the gateway spends its time: starts embedded PostgreSQL, `hoopctl gateway serve` (with
 * --cpu-prof when PROF=1) and a `hoopctl connect` tunnel as separate processes, runs one pgbench
 * workload through the tunnel, prints its TPS and the CPU time each transaction cost (the whole
 * machine, the gateway process, the CLI process: from /proc, so steadier than TPS on a busy
 * machine), then the gateway's hottest functions per thread.
 *
 *   npm run build && npx tsx scripts/profile-gateway.ts            # TPS only
 *   PROF=1 MODE=extended SECS=10 npx tsx scripts/profile-gateway.ts
 *   MODE=copy …                   # COPY out of 100 MB through the tunnel, repeated: CPU ms per MB instead of per transaction
 *   PROF=1 PROF_DIR=/tmp/p …      # keep the .cpuprofile files (wall-clock samples: time blocked in a syscall counts)
 *   PROF=perf …                   # gateway with --perf-basic-prof, for `perf record -e cpu-clock -g -p <pid>` (CPU samples)
 *   PROF=gc | PROF=opt …          # the gateway's --trace-gc, or --trace-opt/--trace-deopt, on stdout
 *   PROF=heap PROF_DIR=/tmp/h …   # --heap-prof (sampled allocations still live at exit)
 *   EXTRA_CONNECTION='policy: { default: allow, rules: [] }' …      # YAML merged into the connection
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { startLocalPostgres } from '../src/dev/embedded-postgres.js';
import { freePort } from '../src/dev/free-port.js';
import { startLocalTokenIssuer } from '../src/dev/token-issuer.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const bin = path.join(repo, 'bin', 'hoopctl');
const profDir = process.env.PROF_DIR ?? fs.mkdtempSync(path.join(os.tmpdir(), "hoop-profile-"));
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'hoop-profile-gw-'));

const pg = await startLocalPostgres({ password: 'profile-pw', flags: ['-c', 'max_connections=200'] });
const issuer = await startLocalTokenIssuer();
try {
  execFileSync('pgbench', ['-i', '-s', '2', '-h', '127.0.0.1', '-p', String(pg.port), '-U', 'postgres', 'postgres'], {
    env: { ...process.env, PGPASSWORD: 'profile-pw' },
    stdio: 'ignore',
  });
  const api = await freePort();
  const ssh = await freePort();
  const extra = process.env.EXTRA_CONNECTION ? `, ${process.env.EXTRA_CONNECTION}` : '';
  fs.writeFileSync(
    path.join(work, 'gateway.yaml'),
    [
      `listen: { api: 127.0.0.1:${api}, ssh: 127.0.0.1:${ssh} }`,
      `dataDir: ${path.join(work, 'data')}`,
      `auth: { issuers: [{ issuer: "${issuer.issuer}", audience: api://hoop-gateway }] }`,
      'connections:',
      `  bench: { type: postgres, host: 127.0.0.1, port: ${pg.port}, database: postgres, user: postgres, password: env:PW, access: { maxDuration: 2h }${extra} }`,
    ].join('\n'),
  );
  const profile = process.env.PROF === '1' ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : process.env.PROF === 'perf' ? ['--perf-basic-prof'] : process.env.PROF === 'gc' ? ['--trace-gc'] : process.env.PROF === 'opt' ? ['--trace-opt', '--trace-deopt'] : process.env.PROF === 'heap' ? ['--heap-prof', '--heap-prof-interval=65536', `--heap-prof-dir=${profDir}`] : [];
  const gateway = spawn(process.execPath, [...profile, bin, 'gateway', 'serve', '--config', path.join(work, 'gateway.yaml'), '--log-level', 'warn'], {
    env: { ...process.env, PW: 'profile-pw' },
    stdio: ['ignore', process.env.PROF === 'gc' || process.env.PROF === 'opt' ? 'inherit' : 'ignore', 'inherit'],
  });
  for (let i = 0; i < 100; i++) {
    if (await fetch(`http://127.0.0.1:${api}/healthz`).then((r) => r.ok, () => false)) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const cli = spawn(process.execPath, [bin, 'connect', 'bench', '--port', '0', '--json'], {
    env: { ...process.env, HOOPCTL_GATEWAY: `http://127.0.0.1:${api}`, HOOPCTL_TOKEN: await issuer.mint({ user: 'profiler', groups: [] }) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let ready: { port: number; user: string; password: string; database: string } | undefined;
  for await (const line of readline.createInterface({ input: cli.stdout! })) {
    const event = JSON.parse(line) as { event: string };
    if (event.event === 'ready') {
      ready = event as unknown as typeof ready;
      break;
    }
  }
  if (!ready) throw new Error('hoopctl connect ended before it was ready');
  /** Busy CPU ticks of the machine, and of the gateway and CLI processes (Linux /proc). */
  const cpu = () => {
    const fields = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    const idle = fields[3]! + fields[4]!;
    const total = fields.reduce((a, b) => a + b, 0);
    const proc = (pid: number) => { const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' '); return Number(f[11]) + Number(f[12]); };
    return { busy: total - idle, gw: proc(gateway.pid!), cli: proc(cli.pid!) };
  };
  const env = { ...process.env, PGPASSWORD: ready.password, PGSSLMODE: 'disable' };
  const before = cpu();
  if (process.env.MODE === 'copy') {
    // Bulk: COPY of 1000-byte rows out through the tunnel, repeated for SECS; CPU per MB moved.
    const started = Date.now();
    let bytes = 0;
    while (Date.now() - started < Number(process.env.SECS ?? '8') * 1000) {
      const copied = execFileSync('psql', ['-X', '-q', '-h', '127.0.0.1', '-p', String(ready.port), '-U', ready.user, '-d', ready.database, '-c', "COPY (SELECT g, repeat('x', 1000) FROM generate_series(1, 100000) g) TO STDOUT"], { env, maxBuffer: 1 << 30 });
      bytes += copied.length;
    }
    const after = cpu();
    const mb = bytes / 1e6;
    const ms = (ticks: number) => ((ticks * 10) / mb).toFixed(2);
    process.stdout.write(`${mb.toFixed(0)} MB in ${((Date.now() - started) / 1000).toFixed(1)} s (${(mb / ((Date.now() - started) / 1000)).toFixed(0)} MB/s)\n`);
    process.stdout.write(`cpu ms/MB: machine ${ms(after.busy - before.busy)} gateway ${ms(after.gw - before.gw)} cli ${ms(after.cli - before.cli)}\n`);
  } else {
    const out = execFileSync(
      'pgbench',
      ['-n', '-S', '-M', process.env.MODE ?? 'simple', '-c', '8', '-j', '2', '-T', process.env.SECS ?? '8', '-h', '127.0.0.1', '-p', String(ready.port), '-U', ready.user, ready.database],
      { env },
    ).toString();
    process.stdout.write(`${out.split('\n').filter((l) => /^tps|latency average/.test(l)).join('\n')}\n`);
    const after = cpu();
    const tx = Number(/number of transactions actually processed: (\d+)/.exec(out)![1]);
    const us = (ticks: number) => ((ticks * 10_000) / tx).toFixed(1);
    process.stdout.write(`cpu µs/tx: machine ${us(after.busy - before.busy)} gateway ${us(after.gw - before.gw)} cli ${us(after.cli - before.cli)}\n`);
  }
  // The tunnel ends its session while the gateway is still up, then the gateway stops.
  cli.kill('SIGINT');
  await new Promise((r) => cli.on('exit', r));
  gateway.kill('SIGINT');
  await new Promise((r) => gateway.on('exit', r));
  if (process.env.PROF === "1") for (const file of fs.readdirSync(profDir)) process.stdout.write(`\n${file}\n${hottest(path.join(profDir, file), 15)}\n`);
} finally {
  await issuer.close();
  await pg.stop();
  fs.rmSync(work, { recursive: true, force: true });
}

/** Self time by function from a V8 .cpuprofile, as percentages of the sampled time. */
function hottest(file: string, top: number): string {
  const profile = JSON.parse(fs.readFileSync(file, 'utf8')) as {
    nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[];
    samples: number[];
    timeDeltas: number[];
  };
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const frame = byId.get(id)!.callFrame;
    const key = `${frame.functionName || '(anonymous)'} ${frame.url.replace(/.*\/(node_modules|dist)\//, '$1/')}:${frame.lineNumber}`;
    const dt = profile.timeDeltas[i] ?? 0;
    self.set(key, (self.get(key) ?? 0) + dt);
    total += dt;
  });
  return [...self]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([key, t]) => `${((t / total) * 100).toFixed(1).padStart(5)}%  ${key}`)
    .join('\n');
}
