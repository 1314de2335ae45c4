import os from 'node:os';
import { launch } from '../client/launcher.js';
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
    launch,
  });
  // Exit once stdout is flushed; lingering keep-alive sockets must not hold the process.
  process.stdout.write('', () => process.exit(code));
}

void main();
