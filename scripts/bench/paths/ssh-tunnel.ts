/**
 * The OpenSSH baseline: a throwaway `sshd` on loopback and `ssh -N -L` in front of PostgreSQL,
 * the tunnel people build by hand today.
 *
 *   client ──TCP──▶ ssh -N -L :local ──SSH──▶ sshd :N ──TCP──▶ PostgreSQL
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../../../src/dev/free-port.js';
import { PathUnavailable, type BenchPath } from '../definitions.js';
import { Daemon, runCommand } from '../processes.js';

const SSHD = '/usr/sbin/sshd';
/** Debian's sshd, run as root, refuses to start without its privilege-separation directory. */
const PRIVSEP_DIR = '/run/sshd';

export const sshTunnelPath: BenchPath = {
  id: 'ssh',
  label: 'ssh -L',
  async start(ctx) {
    if (!fs.existsSync(SSHD)) {
      throw new PathUnavailable(`${SSHD} not found: the ssh -L baseline needs OpenSSH's server; install it with: apt-get install openssh-server`);
    }
    const { cleanup } = ctx;
    if (process.getuid?.() === 0 && !fs.existsSync(PRIVSEP_DIR)) {
      await fsp.mkdir(PRIVSEP_DIR, { mode: 0o755 });
      cleanup.defer(`remove ${PRIVSEP_DIR}`, () => fsp.rmdir(PRIVSEP_DIR).catch(() => undefined));
    }

    const dir = await cleanup.tempDir('hoop-bench-ssh-');
    const hostKey = path.join(dir, 'host_ed25519');
    const clientKey = path.join(dir, 'client_ed25519');
    for (const key of [hostKey, clientKey]) {
      await runCommand(cleanup, 'ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'hoopctl-bench', '-f', key]);
    }
    const authorizedKeys = path.join(dir, 'authorized_keys');
    await fsp.copyFile(`${clientKey}.pub`, authorizedKeys);

    const sshdPort = await freePort();
    const config = path.join(dir, 'sshd_config');
    await fsp.writeFile(
      config,
      [
        'ListenAddress 127.0.0.1',
        `Port ${sshdPort}`,
        `HostKey ${hostKey}`,
        `AuthorizedKeysFile ${authorizedKeys}`,
        `PidFile ${path.join(dir, 'sshd.pid')}`,
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'UsePAM no',
        'StrictModes no',
        'AllowTcpForwarding yes',
        'PermitRootLogin yes',
        '',
      ].join('\n'),
    );
    const sshd = Daemon.start(cleanup, 'sshd', SSHD, ['-D', '-e', '-f', config], { logFile: path.join(dir, 'sshd.log') });
    await sshd.listening(sshdPort, 10_000);

    const localPort = await freePort();
    const upstream = ctx.upstream;
    const tunnel = Daemon.start(
      cleanup,
      'ssh -L',
      'ssh',
      [
        '-N',
        '-F', '/dev/null',
        '-L', `127.0.0.1:${localPort}:${upstream.host}:${upstream.port}`,
        '-p', String(sshdPort),
        '-i', clientKey,
        '-o', 'IdentitiesOnly=yes',
        '-o', 'StrictHostKeyChecking=no',
        '-o', 'UserKnownHostsFile=/dev/null',
        '-o', 'BatchMode=yes',
        '-o', 'ExitOnForwardFailure=yes',
        '-o', 'LogLevel=ERROR',
        `${os.userInfo().username}@127.0.0.1`,
      ],
      { logFile: path.join(dir, 'ssh.log') },
    );
    await tunnel.listening(localPort, 15_000);
    ctx.progress(`ssh -L: sshd on 127.0.0.1:${sshdPort}, tunnel on 127.0.0.1:${localPort}`);

    return {
      endpoint: { ...upstream, host: '127.0.0.1', port: localPort },
      async stop() {
        await tunnel.stop();
        await sshd.stop();
      },
      problem: () => tunnel.problem() ?? sshd.problem(),
      processes: () => ({ server: sshd.child.pid === undefined ? [] : [sshd.child.pid], client: tunnel.child.pid === undefined ? [] : [tunnel.child.pid] }),
    };
  },
};
