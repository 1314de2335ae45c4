/**
 * hoopctl as deployed: the gateway and the CLI as two processes, with a local token issuer
 * in the benchmark process standing in for the identity provider.
 *
 *   client ──TCP──▶ hoopctl connect :local ──SSH (direct-tcpip)──▶ hoopctl gateway serve
 *                   (session user/password)                       └─ PostgreSQL engine ──TCP──▶ PostgreSQL
 *                                                                    (real credentials)
 */
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { stringify as toYaml } from 'yaml';
import { freePort } from '../../../src/dev/free-port.js';
import { startLocalTokenIssuer } from '../../../src/dev/token-issuer.js';
import { withTimeout } from '../cleanup.js';
import { assertLoopback, type BenchPath, type Endpoint } from '../definitions.js';
import { Daemon, indent, sleep } from '../processes.js';
import { residentBytes } from '../proc-stats.js';
import { SCALE_CONNECTIONS } from '../workloads.js';

const CONNECTION = 'bench';

/** The `"event":"ready"` line `hoopctl connect --json` prints once the local port accepts. */
interface ReadyEvent {
  event: 'ready';
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
}

export interface HoopPathOptions {
  id?: string;
  label?: string;
  /** Merged into the `bench` connection of gateway.yaml, for variants such as policy or masking. */
  connectionExtras?: Record<string, unknown>;
  /** Another checkout (built) whose bin/hoopctl to run, to compare a baseline in the same run. */
  repoRoot?: string;
}

/** A hoopctl path; variants with another gateway config get their own id and label. */
export function hoopTunnelPath(options: HoopPathOptions = {}): BenchPath {
  return {
    id: options.id ?? 'hoop',
    label: options.label ?? 'hoopctl',
    async start(ctx) {
      const { cleanup, upstream } = ctx;
      const bin = path.join(options.repoRoot ?? ctx.repoRoot, 'bin', 'hoopctl');
      if (!fs.existsSync(bin)) throw new Error(`${bin} not found; the hoopctl path needs the CLI (run with --paths direct,ssh to skip it)`);

      const issuer = await startLocalTokenIssuer();
      cleanup.defer('close token issuer', () => issuer.close());
      const dir = await cleanup.tempDir('hoop-bench-gw-');
      const apiPort = await freePort();
      const sshPort = await freePort();
      const configFile = path.join(dir, 'gateway.yaml');
      const config = {
        listen: { api: `127.0.0.1:${apiPort}`, ssh: `127.0.0.1:${sshPort}` },
        dataDir: path.join(dir, 'data'),
        auth: { issuers: [{ issuer: issuer.issuer, audience: 'api://hoop-gateway' }] },
        connections: {
          [CONNECTION]: {
            type: 'postgres',
            host: upstream.host,
            port: upstream.port,
            database: upstream.database,
            user: upstream.user,
            password: 'env:BENCH_PG_PASSWORD',
            // The scale workload holds SCALE_CONNECTIONS at once through one session.
            maxConnections: SCALE_CONNECTIONS + 50,
            access: { maxDuration: '2h', defaultDuration: '1h', maxConnections: SCALE_CONNECTIONS + 50 },
            ...options.connectionExtras,
          },
        },
      };
      fs.writeFileSync(configFile, toYaml(config));

      const gateway = Daemon.start(cleanup, 'hoopctl gateway', process.execPath, [bin, 'gateway', 'serve', '--config', configFile], {
        env: { ...process.env, BENCH_PG_PASSWORD: upstream.password },
        cwd: dir,
        logFile: path.join(dir, 'gateway.log'),
      });
      const apiUrl = `http://127.0.0.1:${apiPort}`;
      await Promise.race([waitForHealthz(apiUrl, 20_000, () => gateway.running), gateway.exited.then((s) => Promise.reject(gateway.diedError(s)))]);

      const token = await issuer.mint({ user: 'bench', groups: ['bench'] });
      const localPort = await freePort();
      const cli = Daemon.start(
        cleanup,
        'hoopctl connect',
        process.execPath,
        [bin, 'connect', CONNECTION, '--port', String(localPort), '--duration', '1h', '--json'],
        {
          env: { ...process.env, HOOPCTL_GATEWAY: apiUrl, HOOPCTL_TOKEN: token, HOME: dir, NO_COLOR: '1' },
          cwd: dir,
          logFile: path.join(dir, 'connect.log'),
          pipeStdout: true,
        },
      );
      const ready = await withTimeout(
        Promise.race([readyEvent(cli), cli.exited.then((s) => Promise.reject(cli.diedError(s)))]),
        30_000,
        'hoopctl connect --json "ready" event',
      ).catch((err: Error) => {
        throw new Error(`${err.message}\n  gateway log:\n${indent(gateway.tail())}`);
      });

      const endpoint: Endpoint = {
        host: '127.0.0.1',
        port: Number(ready.port),
        user: ready.user,
        password: ready.password,
        database: ready.database,
      };
      assertLoopback({ ...endpoint, host: ready.host === 'localhost' ? '127.0.0.1' : ready.host }, 'hoopctl connect');
      ctx.progress(`hoopctl: gateway api ${apiUrl}, ssh 127.0.0.1:${sshPort}; tunnel on 127.0.0.1:${endpoint.port} as ${endpoint.user}`);
      return {
        endpoint,
        async stop() {
          await cli.stop();
          await gateway.stop();
        },
        problem: () => gateway.problem() ?? cli.problem(),
        rssBytes: () => (gateway.child.pid === undefined ? undefined : residentBytes([gateway.child.pid])),
        processes: () => ({ server: pidList(gateway), client: pidList(cli) }),
        wrapCommand: (command) => ({
          command: process.execPath,
          args: [bin, 'connect', CONNECTION, '--duration', '5m', '--', ...command],
          env: { ...process.env, HOOPCTL_GATEWAY: apiUrl, HOOPCTL_TOKEN: token, HOME: dir, NO_COLOR: '1' },
        }),
      };
    },
  };
}

function pidList(daemon: Daemon): number[] {
  return daemon.child.pid === undefined ? [] : [daemon.child.pid];
}

/** Reads JSON lines from the CLI's stdout until the ready event; keeps draining afterwards. */
function readyEvent(cli: Daemon): Promise<ReadyEvent> {
  return new Promise((resolve, reject) => {
    const stdout = cli.child.stdout;
    if (!stdout) return reject(new Error('hoopctl connect: no stdout'));
    const lines = readline.createInterface({ input: stdout });
    const seen: string[] = [];
    let done = false;
    lines.on('line', (line) => {
      if (done) return;
      seen.push(line);
      let event: unknown;
      try {
        event = JSON.parse(line);
      } catch {
        return;
      }
      if (typeof event === 'object' && event !== null && (event as { event?: unknown }).event === 'ready') {
        done = true;
        resolve(event as ReadyEvent);
      }
    });
    lines.on('close', () => {
      if (!done) reject(new Error(`hoopctl connect closed stdout without a ready event; it printed:\n${indent(seen.slice(-10).join('\n') || '(nothing)')}\n  its stderr:\n${indent(cli.tail())}`));
    });
  });
}

async function waitForHealthz(apiUrl: string, timeoutMs: number, alive: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!alive()) throw new Error('the gateway exited while starting');
    try {
      const res = await fetch(`${apiUrl}/healthz`, { signal: AbortSignal.timeout(1000) });
      await res.body?.cancel();
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  throw new Error(`the gateway did not answer ${apiUrl}/healthz within ${timeoutMs} ms`);
}
