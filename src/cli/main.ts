import { spawn } from 'node:child_process';
import os from 'node:os';
import type { BackgroundSpawner, ParentChannel } from './background.js';
import { createIO } from './io.js';
import { runCli } from './run-cli.js';
import { readCliEnvironment } from './settings.js';
import { readVersion } from './version.js';

/** The process wiring: real streams, environment, signals; then exit with runCli's code. */
async function main(): Promise<void> {
  const env = readCliEnvironment();
  const io = createIO({
    stdout: process.stdout,
    stderr: process.stderr,
    stdoutIsTTY: process.stdout.isTTY === true,
    stderrIsTTY: process.stderr.isTTY === true,
    stdinIsTTY: process.stdin.isTTY === true,
    noColorEnv: env.noColor,
  });
  const code = await runCli(process.argv.slice(2), {
    io,
    env,
    version: readVersion(),
    hostname: os.hostname(),
    pid: process.pid,
    now: Date.now,
    signals: process,
    // Loaded by the one command that wraps a program, when it does.
    launch: async (options) => (await import('../client/launcher.js')).launch(options),
    spawnBackground,
    parentChannel: parentChannel(),
    ppid: () => process.ppid,
    stdin: () => process.stdin,
    stdout: () => process.stdout,
  });
  // Exit once stdout is flushed; lingering keep-alive sockets must not hold the process.
  process.stdout.write('', () => process.exit(code));
}

/**
 * This same CLI, detached: its own session and process group (no terminal's Ctrl-C or hangup
 * reaches it), stdin closed, stdout and stderr into its log, an IPC channel for the ready event.
 */
const spawnBackground: BackgroundSpawner = (args, logFd) =>
  spawn(process.execPath, [...process.execArgv, process.argv[1]!, ...args], {
    detached: true,
    stdio: ['ignore', logFd, logFd, 'ipc'],
    env: process.env,
    cwd: '/',
  });

function parentChannel(): ParentChannel | undefined {
  if (typeof process.send !== 'function') return undefined;
  return {
    send: (message) => {
      if (process.connected) process.send!(message);
    },
    disconnect: () => {
      if (process.connected) process.disconnect();
    },
  };
}

void main();
