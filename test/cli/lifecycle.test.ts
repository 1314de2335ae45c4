import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { launch } from '../../src/client/launcher.js';
import { LocalTunnels } from '../../src/client/local-tunnels.js';
import type { CliDeps } from '../../src/cli/context.js';
import { cliLogger } from '../../src/cli/cli-logger.js';
import { createCapturingIO, type CapturingIO } from '../../src/cli/io.js';
import { COMMANDS } from '../../src/cli/program.js';
import { runCli } from '../../src/cli/run-cli.js';
import type { CliEnvironment } from '../../src/cli/settings.js';
import { startEchoServer } from '../client/ssh-test-server.js';
import { GOOD_TOKEN, startStubGateway, type StubGateway } from './stub-gateway.js';

/**
 * Tunnels with a lifecycle, in process against the stub gateway: the runtime directory that
 * `status` and `disconnect` read, lifelines (parent exit, stdin closed), wrap mode's free port
 * and expiry code, JSON errors, help examples.
 */
let echo: Awaited<ReturnType<typeof startEchoServer>>;
let gateway: StubGateway;
let runtime: string;

const WITHOUT_CI = Object.fromEntries(
  Object.entries(process.env).filter(([name]) => !/^(CI|GITHUB_|GITLAB_CI|CI_|TF_BUILD|BUILDKITE|JENKINS_URL|BUILD_|JPY_|JUPYTER_|HOOP_AGENT)/.test(name)),
);

beforeAll(async () => {
  echo = await startEchoServer();
  gateway = await startStubGateway({ host: '127.0.0.1', port: echo.port });
});
afterAll(async () => {
  await gateway.close();
  await echo.close();
});
afterEach(() => {
  if (runtime) fs.rmSync(runtime, { recursive: true, force: true });
  gateway.sessions.durationMs = 15 * 60_000;
});

/** One hoopctl run; `running` is true until it resolves (what isAlive answers for its pid). */
function start(argv: string[], extra: Partial<Omit<CliDeps, 'setExitCode'>> = {}, env: Partial<CliEnvironment> = {}) {
  const io = createCapturingIO();
  const signals = new EventEmitter();
  const run = { io, signals, running: true, code: undefined as Promise<number> | undefined };
  run.code = runCli(argv, {
    io,
    env: { gateway: gateway.url, token: GOOD_TOKEN, debug: false, noColor: false, inherited: WITHOUT_CI, runtimeDir: runtime, ...env },
    version: '0.1.0-test',
    hostname: 'test-host',
    pid: process.pid,
    now: Date.now,
    signals,
    launch,
    tunnel: { reconnect: { initialDelayMs: 20, maxDelayMs: 100 } },
    ...extra,
  }).finally(() => {
    run.running = false;
  });
  return run as typeof run & { code: Promise<number> };
}

async function hoopctl(argv: string[], extra: Partial<Omit<CliDeps, 'setExitCode'>> = {}): Promise<{ code: number; io: CapturingIO }> {
  const run = start(argv, extra);
  return { code: await run.code, io: run.io };
}

async function until(condition: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function newRuntime(): string {
  runtime = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'hoop-runtime-')), 'hoopctl');
  return runtime;
}

describe('the runtime directory, status and disconnect', () => {
  it('a running connect is listed by status (0700 directory, 0600 record, no password) and removed when it ends', async () => {
    newRuntime();
    const connect = start(['connect', 'orders-db', '--port', '0', '--json']);
    await until(() => connect.io.stdout.includes('"event":"ready"'), 'ready');
    const id = gateway.sessions.session!.id;
    expect(fs.statSync(runtime).mode & 0o777).toBe(0o700);
    const file = path.join(runtime, `${id}.json`);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(fs.readFileSync(file, 'utf8')).not.toContain('local-secret');

    const status = await hoopctl(['status', '--json']);
    const ready = connect.io.jsonLines()[1] as { port: number; expiresAt: string };
    expect(status.io.jsonLines()).toEqual([
      {
        tunnels: [
          expect.objectContaining({ connection: 'orders-db', sessionId: id, mode: 'foreground', state: 'up', pid: process.pid, address: `127.0.0.1:${ready.port}`, port: ready.port, expiresAt: ready.expiresAt }),
        ],
      },
    ]);
    const human = await hoopctl(['status']);
    expect(human.io.stdout).toBe(`orders-db\t${id}\t127.0.0.1:${ready.port}\t${process.pid}\tforeground\tup\t${ready.expiresAt}\n`);

    connect.signals.emit('SIGINT');
    expect(await connect.code).toBe(0);
    expect(fs.existsSync(file)).toBe(false);
    expect((await hoopctl(['status', '--json'])).io.jsonLines()).toEqual([{ tunnels: [] }]);
  });

  it('never shows a dead tunnel: a record whose process is gone is removed with its secret files', async () => {
    const tunnels = new LocalTunnels(newRuntime());
    tunnels.write({
      version: 1,
      sessionId: 'ses_dead',
      connection: 'orders-db',
      gateway: gateway.url,
      user: 'alice',
      issuer: null,
      subject: null,
      mode: 'background',
      pid: 2 ** 22 + 17, // above Linux's pid_max: never a live process
      address: { kind: 'tcp', host: '127.0.0.1', port: 1 },
      database: { user: 'postgres', name: 'postgres' },
      password: 'old-secret',
      expiresAt: new Date(Date.now() + 60_000).toISOString(),
      startedAt: new Date().toISOString(),
      state: 'up',
    });
    tunnels.writeSecret('ses_dead', '.pgpass', '127.0.0.1:1:postgres:postgres:old-secret\n');
    const status = await hoopctl(['status']);
    expect(status.io.stdout).toBe('');
    expect(status.io.stderr).toMatch(/^no tunnels running/);
    expect(fs.readdirSync(runtime)).toEqual([]);
  });

  it('refuses a runtime directory that is not a directory of ours', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hoop-runtime-'));
    runtime = path.join(dir, 'hoopctl');
    fs.writeFileSync(runtime, 'not a directory');
    const run = await hoopctl(['status']);
    expect(run.code).toBe(4);
    expect(run.io.stderr).toMatch(/is not a directory of yours; refusing to keep tunnel state/);
    fs.rmSync(dir, { recursive: true, force: true });
    runtime = '';
  });

  it('disconnect NAME asks the tunnel to stop (SIGTERM), which ends its session; --json says what happened', async () => {
    newRuntime();
    const connect = start(['connect', 'orders-db', '--port', '0', '--json']);
    await until(() => connect.io.stdout.includes('"event":"ready"'), 'ready');
    const id = gateway.sessions.session!.id;
    const disconnect = await hoopctl(['disconnect', 'orders-db', '--json'], {
      kill: (pid, signal) => {
        expect(pid).toBe(process.pid);
        connect.signals.emit(signal);
      },
      isAlive: () => connect.running,
    });
    expect(disconnect.code).toBe(0);
    expect(await connect.code).toBe(0);
    expect(disconnect.io.jsonLines()).toEqual([{ disconnected: [expect.objectContaining({ sessionId: id, connection: 'orders-db', how: 'stopped' })] }]);
    expect(gateway.sessions.session?.status).toBe('ended');
    expect(fs.readdirSync(runtime)).toEqual([]);
  });

  it('disconnect: a tunnel that does not stop is killed and its session ended from here; nothing to stop → exit 5 with a hint', async () => {
    newRuntime();
    const connect = start(['connect', 'orders-db', '--port', '0', '--json']);
    await until(() => connect.io.stdout.includes('"event":"ready"'), 'ready');
    const id = gateway.sessions.session!.id;
    const signals: string[] = [];
    let alive = true;
    const run = await hoopctl(['disconnect', '--session', id], {
      kill: (_pid, signal) => {
        signals.push(signal);
        if (signal === 'SIGKILL') alive = false;
      },
      isAlive: () => alive,
      disconnectGraceMs: 300,
    });
    expect(signals).toEqual(['SIGTERM', 'SIGKILL']);
    expect(run.code).toBe(0);
    expect(run.io.stderr).toContain(`✓ ended session ${id} (orders-db), tunnel on 127.0.0.1:`);
    expect(gateway.sessions.session?.status).toBe('ended');
    expect(await connect.code).toBe(9); // the in-process tunnel learns its session was ended
    const none = await hoopctl(['disconnect', 'orders-db']);
    expect(none.code).toBe(5);
    expect(none.io.stderr).toMatch(/^error: no tunnel of orders-db runs here\nhint: /);
  }, 30_000);

  it('a taken port that is your own tunnel says so (connection, session, pid) and what to do', async () => {
    newRuntime();
    const first = start(['connect', 'orders-db', '--port', '0', '--json']);
    await until(() => first.io.stdout.includes('"event":"ready"'), 'ready');
    const { port } = first.io.jsonLines()[1] as { port: number };
    const id = gateway.sessions.session!.id;
    const second = await hoopctl(['connect', 'billing', '--port', String(port)]);
    expect(second.code).toBe(2);
    expect(second.io.stderr).toBe(
      `error: 127.0.0.1:${port} is already in use: it is your tunnel (hoopctl connect in another terminal) for orders-db (session ${id}, pid ${process.pid})\n` +
        `hint: end it with hoopctl disconnect --session ${id}, or choose another port with --port N (--port 0 picks a free one)\n`,
    );
    first.signals.emit('SIGINT');
    expect(await first.code).toBe(0);
  });
});

describe('no orphans', () => {
  it('a connect whose parent process exits ends its session', async () => {
    newRuntime();
    let ppid = 4321;
    const connect = start(['connect', 'orders-db', '--port', '0', '--json'], { ppid: () => ppid });
    await until(() => connect.io.stdout.includes('"event":"ready"'), 'ready');
    ppid = 1; // re-parented to init: the parent died
    expect(await connect.code).toBe(0);
    expect(connect.io.jsonLines().at(-1)).toMatchObject({ event: 'ended', status: 'ended', cause: 'closed_locally' });
    expect(gateway.sessions.session?.status).toBe('ended');
  });

  it('--exit-with-stdin: closing stdin ends the session (a supervisor holding a pipe went away)', async () => {
    newRuntime();
    const stdin = new PassThrough();
    const connect = start(['connect', 'orders-db', '--port', '0', '--json', '--exit-with-stdin'], { stdin: () => stdin });
    await until(() => connect.io.stdout.includes('"event":"ready"'), 'ready');
    stdin.write('anything\n'); // data is read and ignored
    await new Promise((r) => setTimeout(r, 50));
    expect(connect.running).toBe(true);
    stdin.end();
    expect(await connect.code).toBe(0);
    expect(gateway.sessions.session?.status).toBe('ended');
  });

  it('without --exit-with-stdin, a closed stdin changes nothing', async () => {
    newRuntime();
    const stdin = new PassThrough();
    const connect = start(['connect', 'orders-db', '--port', '0', '--json'], { stdin: () => stdin });
    await until(() => connect.io.stdout.includes('"event":"ready"'), 'ready');
    stdin.end();
    await new Promise((r) => setTimeout(r, 200));
    expect(connect.running).toBe(true);
    connect.signals.emit('SIGTERM');
    expect(await connect.code).toBe(0);
  });

  it('wrap mode: a lifeline gone stops the command with SIGTERM and ends the session', async () => {
    newRuntime();
    let ppid = 4321;
    const script = "process.on('SIGTERM', () => { console.log('got SIGTERM'); process.exit(3); }); setInterval(() => {}, 1000);";
    const connect = start(['connect', 'orders-db', '--', process.execPath, '-e', script], { ppid: () => ppid });
    await until(() => connect.io.stderr.includes('running the command'), 'command');
    await new Promise((r) => setTimeout(r, 200));
    ppid = 1;
    expect(await connect.code).toBe(3);
    expect(connect.io.stderr).toMatch(/the parent process \(pid 4321\) exited: stopping the command/);
    expect(gateway.sessions.session?.status).toBe('ended');
  });
});

describe('wrap mode', () => {
  it('picks a free port by default, so two jobs on one runner do not collide; the child gets it in PGPORT and DATABASE_URL', async () => {
    const blocker = net.createServer();
    const held = await new Promise<boolean>((resolve) => blocker.once('error', () => resolve(false)).listen(5433, '127.0.0.1', () => resolve(true)));
    try {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hoop-wrap-'));
      const out = path.join(dir, 'env.json');
      const run = await hoopctl(['connect', 'orders-db', '--', process.execPath, '-e', `require('fs').writeFileSync(${JSON.stringify(out)}, JSON.stringify(process.env))`]);
      expect(run.code).toBe(0);
      const env = JSON.parse(fs.readFileSync(out, 'utf8')) as Record<string, string>;
      expect(env.PGPORT).not.toBe('5433');
      expect(env.DATABASE_URL).toBe(`postgresql://postgres:local-secret@127.0.0.1:${env.PGPORT}/postgres?sslmode=disable`);
      fs.rmSync(dir, { recursive: true, force: true });
    } finally {
      if (held) blocker.close();
    }
  });

  it('the session expiring under the command: warned first (expiring event), then exit 8 instead of the command’s 0, and says so', async () => {
    gateway.sessions.durationMs = 1500;
    const json = await hoopctl(['connect', 'orders-db', '--json', '--', process.execPath, '-e', 'setTimeout(() => process.exit(0), 2000)']);
    expect(json.code).toBe(8);
    const events = json.io.jsonLines() as { event: string }[];
    expect(events.map((e) => e.event)).toEqual(['session', 'ready', 'expiring', 'ended']);
    expect(events[2]).toMatchObject({ event: 'expiring', sessionId: gateway.sessions.session!.id, inMs: expect.any(Number) });
    expect(events[3]).toMatchObject({ event: 'ended' }); // this stub gateway does not cut the SSH connection at expiry; a real one does (e2e)

    const human = await hoopctl(['connect', 'orders-db', '--', process.execPath, '-e', 'setTimeout(() => process.exit(0), 2000)']);
    expect(human.code).toBe(8);
    expect(human.io.stderr).toMatch(/warning: session s_test\d+ ends \d\d:\d\d:\d\d \(in \d+s\); to keep it: hoopctl sessions extend s_test\d+ --duration 15m\n/);
    expect(human.io.stderr).toMatch(/the session expired while the command ran; exiting 8 \(the command exited 0\)\n$/);
  }, 20_000);
});

describe('--json errors', () => {
  it.each([
    ['an unknown connection', ['connect', 'nope', '--port', '0', '--json'], { event: 'error', code: 'unknown_connection', kind: 'not_found', message: 'no connection named "nope"', hint: 'list them with: hoopctl connections', exitCode: 5 }],
    ['an unknown option', ['--json', 'status', '--wat'], { event: 'error', code: 'unknown_option', kind: 'usage', message: "unknown option '--wat'", exitCode: 2 }],
    ['a missing command after --', ['connect', 'orders-db', '--json', '--', 'hoopctl-no-such-command'], expect.objectContaining({ event: 'error', code: 'command_not_found', exitCode: 127 })],
  ])('%s: one error event on stdout, the text on stderr', async (_name, argv, event) => {
    const run = await hoopctl(argv as string[]);
    expect(run.io.jsonLines().at(-1)).toEqual(event);
    expect(run.io.stderr).toMatch(/error: /);
    expect(run.code).toBe((event as { exitCode?: number }).exitCode ?? 127);
  });

  it('--help under --json is help, not an error', async () => {
    const run = await hoopctl(['status', '--help', '--json']);
    expect(run.code).toBe(0);
    expect(run.io.stdout).toContain('Usage: hoopctl status');
  });
});

describe('log lines on a terminal', () => {
  it('carry their fields as key=value, never a JSON object (regression: raw log JSON on stderr)', () => {
    const io = createCapturingIO();
    cliLogger(io, false).warn('could not end the session at the gateway', { session: 'ses_1', error: 'no route to host', attempt: 2 });
    expect(io.stderr).toBe('warning: could not end the session at the gateway (session=ses_1 error="no route to host" attempt=2)\n');
  });
});

describe('help', () => {
  it.each(COMMANDS.map((c) => c.name))('hoopctl %s --help shows examples', async (name) => {
    const run = await hoopctl([name, '--help']);
    expect(run.code).toBe(0);
    expect(run.io.stdout).toMatch(new RegExp(`\\nExamples:\\n  \\$ hoopctl ${name}`));
  });
});
