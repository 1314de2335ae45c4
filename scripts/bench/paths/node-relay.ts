/**
 * The floor of hoopctl's transport: two Node processes relaying through ssh2 as hoopctl's CLI
 * and gateway do, with nothing inspected (scripts/bench/node-relay.ts).
 *
 *   client ──TCP──▶ node-relay client :local ──SSH (direct-tcpip)──▶ node-relay server ──TCP──▶ PostgreSQL
 */
import path from 'node:path';
import { freePort } from '../../../src/dev/free-port.js';
import type { BenchPath } from '../definitions.js';
import { Daemon } from '../processes.js';

export const nodeRelayPath: BenchPath = {
  id: 'node-relay',
  label: 'Node ssh2 relay, no guards',
  async start(ctx) {
    const { cleanup, upstream } = ctx;
    const dir = await cleanup.tempDir('hoop-bench-relay-');
    const script = path.join(ctx.repoRoot, 'scripts', 'bench', 'node-relay.ts');
    const node = (name: string, args: string[]) =>
      Daemon.start(cleanup, name, process.execPath, ['--import', 'tsx', script, ...args], { cwd: ctx.repoRoot, logFile: path.join(dir, `${name.replace(/\W+/g, '-')}.log`) });
    const sshPort = await freePort();
    const server = node('relay server', ['server', String(sshPort), upstream.host, String(upstream.port)]);
    await server.listening(sshPort, 20_000);
    const localPort = await freePort();
    const client = node('relay client', ['client', String(localPort), String(sshPort)]);
    await client.listening(localPort, 20_000);
    ctx.progress(`node relay: ssh 127.0.0.1:${sshPort}, tunnel on 127.0.0.1:${localPort}`);
    const pid = (d: Daemon) => (d.child.pid === undefined ? [] : [d.child.pid]);
    return {
      endpoint: { ...upstream, host: '127.0.0.1', port: localPort },
      async stop() {
        await client.stop();
        await server.stop();
      },
      problem: () => client.problem() ?? server.problem(),
      processes: () => ({ server: pid(server), client: pid(client) }),
    };
  },
};
