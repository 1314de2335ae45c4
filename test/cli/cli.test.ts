import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launch } from '../../src/client/launcher.js';
import type { CliDeps } from '../../src/cli/context.js';
import { ExitCode, exitCodeFor } from '../../src/cli/exit-codes.js';
import { createCapturingIO, type CapturingIO } from '../../src/cli/io.js';
import { runCli } from '../../src/cli/run-cli.js';
import { readCliEnvironment, type CliEnvironment } from '../../src/cli/settings.js';
import { freePort } from '../../src/dev/free-port.js';
import { HoopError, type ErrorKind } from '../../src/errors.js';
import { startEchoServer } from '../client/ssh-test-server.js';
import { GOOD_TOKEN, startStubGateway, type StubGateway } from './stub-gateway.js';

let echo: Awaited<ReturnType<typeof startEchoServer>>;
let gateway: StubGateway;

beforeAll(async () => {
  echo = await startEchoServer();
  gateway = await startStubGateway({ host: '127.0.0.1', port: echo.port });
});
afterAll(async () => {
  await gateway.close();
  await echo.close();
});

interface Run {
  code: number;
  io: CapturingIO;
}

/** This process's environment minus what run-context detection reads, so CI=true on the runner does not change the expected context. */
const WITHOUT_CI = Object.fromEntries(
  Object.entries(process.env).filter(([name]) => !/^(CI|GITHUB_|GITLAB_CI|CI_|TF_BUILD|BUILDKITE|JENKINS_URL|BUILD_|JPY_|JUPYTER_|HOOP_AGENT)/.test(name)),
);

function deps(io: CapturingIO, env: Partial<CliEnvironment> = {}, signals = new EventEmitter()): Omit<CliDeps, 'setExitCode'> {
  return {
    io,
    env: { gateway: gateway.url, token: GOOD_TOKEN, debug: false, noColor: false, inherited: WITHOUT_CI, ...env },
    version: '0.1.0-test',
    hostname: 'test-host',
    pid: 4242,
    now: Date.now,
    signals,
    launch,
    tunnel: { reconnect: { initialDelayMs: 20, maxDelayMs: 100 } },
  };
}

async function hoopctl(argv: string[], env: Partial<CliEnvironment> = {}, options: { tty?: boolean } = {}): Promise<Run> {
  const io = createCapturingIO({ tty: options.tty, noColorEnv: env.noColor });
  const code = await runCli(argv, deps(io, env));
  return { code, io };
}

async function until(condition: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('exit codes', () => {
  it.each<[ErrorKind, number]>([
    ['usage', 2],
    ['auth', 3],
    ['denied', 4],
    ['not_found', 5],
    ['network', 6],
    ['protocol', 1],
    ['internal', 1],
  ])('%s → %i', (kind, code) => {
    expect(exitCodeFor(new HoopError(kind, 'x', 'y'))).toBe(code);
  });

  it('keeps connect-only codes distinct', () => {
    expect([ExitCode.sessionExpired, ExitCode.sessionEndedRemotely]).toEqual([8, 9]);
    expect(exitCodeFor(new Error('bug'))).toBe(1);
  });
});

describe('settings', () => {
  it('reads HOOPCTL_* and NO_COLOR from the environment it is given', () => {
    expect(readCliEnvironment({ HOOPCTL_GATEWAY: ' https://gw ', HOOPCTL_TOKEN: 't', NO_COLOR: '1', HOOPCTL_DEBUG: '1' })).toMatchObject({
      gateway: 'https://gw',
      token: 't',
      noColor: true,
      debug: true,
    });
    expect(readCliEnvironment({ NO_COLOR: '' })).toMatchObject({ gateway: undefined, token: undefined, noColor: false, debug: false });
  });
});

describe('errors as the user sees them', () => {
  it.each([
    ['no token', ['connections'], { token: undefined }, 3, /^error: no access token\nhint: set HOOPCTL_TOKEN/],
    ['no gateway', ['connections'], { gateway: undefined }, 2, /^error: no gateway URL given\nhint: pass --gateway URL or set HOOPCTL_GATEWAY\n$/],
    ['a bad gateway URL', ['--gateway', 'ftp://x', 'connections'], {}, 2, /not an http\(s\) URL/],
    ['a rejected token', ['connections'], { token: 'stale' }, 3, /^error: the access token is not valid.*\nhint: get a fresh token: set HOOPCTL_TOKEN\n$/],
    ['a forbidden connection', ['connect', 'forbidden', '--port', '0'], {}, 4, /^error: you may not use connection "forbidden"\nhint: ask an admin/],
    ['an unknown connection', ['connect', 'nope', '--port', '0'], {}, 5, /no connection named "nope"\nhint: list them with: hoopctl connections/],
    ['an unknown session', ['sessions', 'show', 's_missing'], {}, 5, /^error: no session s_missing\n$/],
    ['a bad duration', ['connect', 'orders-db', '--duration', '15 minutes'], {}, 2, /^error: "15 minutes" is not a duration\nhint: /],
    ['a bad port', ['connect', 'orders-db', '--port', 'x'], {}, 2, /error: option '--port <n>' argument 'x' is invalid/],
    ['--isolate without a command', ['connect', 'orders-db', '--isolate'], {}, 2, /^error: --isolate applies to a command run after --\nhint: /],
    ['an unknown option', ['connections', '--wat'], {}, 2, /error: unknown option '--wat'/],
    ['an unknown command', ['conect'], {}, 2, /error: unknown command 'conect'\n\(Did you mean connect\?\)/],
  ])('%s', async (_name, argv, env, code, stderr) => {
    const run = await hoopctl(argv, env);
    expect(run.io.stderr).toMatch(stderr);
    expect(run.io.stdout).toBe('');
    expect(run.code).toBe(code);
  });

  it('an unreachable gateway → 6, naming the URL and how to change it', async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    const run = await hoopctl(['connections'], { gateway: url });
    expect(run.code).toBe(6);
    expect(run.io.stderr).toContain(`error: cannot reach the gateway at ${url}`);
    expect(run.io.stderr).toMatch(/hint: .*--gateway URL or HOOPCTL_GATEWAY/);
  });

  it('refuses a plain-HTTP gateway off loopback unless told loudly, and then warns (regression: tokens sent to http:// gateways on any host)', async () => {
    const refused = await hoopctl(['--gateway', 'http://10.255.255.1:8080', 'connections']);
    expect(refused.code).toBe(2);
    expect(refused.io.stderr).toMatch(/^error: http:\/\/10\.255\.255\.1:8080 is plain HTTP off loopback: your access token and database passwords would cross the network in clear\nhint: use https:\/\/; for a development gateway only, pass --dangerously-allow-plain-http/);
    const io = createCapturingIO();
    const failingFetch = (async () => {
      throw new TypeError('fetch failed');
    }) as typeof fetch;
    const code = await runCli(['--gateway', 'http://10.255.255.1:8080', '--dangerously-allow-plain-http', 'connections'], { ...deps(io), fetch: failingFetch });
    expect(code).toBe(6);
    expect(io.stderr).toMatch(/^warning: talking to http:\/\/10\.255\.255\.1:8080 over plain HTTP/);
  });

  it('--gateway wins over HOOPCTL_GATEWAY', async () => {
    const run = await hoopctl(['--gateway', gateway.url, 'connections', '--json'], { gateway: 'http://127.0.0.1:9' });
    expect(run.code).toBe(0);
  });

  it('prints no stack trace unless HOOPCTL_DEBUG=1', async () => {
    const quiet = await hoopctl(['connections'], { token: 'stale' });
    expect(quiet.io.stderr).not.toMatch(/\n\s+at /);
    const debug = await hoopctl(['connections'], { token: 'stale', debug: true });
    expect(debug.io.stderr).toMatch(/\n\s+at /);
  });

  it('help goes to stdout and exits 0; no arguments prints help on stderr and exits 2', async () => {
    const help = await hoopctl(['--help']);
    expect(help.code).toBe(0);
    expect(help.io.stdout).toContain('Usage: hoopctl');
    const none = await hoopctl([]);
    expect(none.code).toBe(2);
    expect(none.io.stderr).toContain('Usage: hoopctl');
  });
});

describe('hoopctl connections', () => {
  it('prints a tab-separated table when piped', async () => {
    const run = await hoopctl(['connections']);
    expect(run.code).toBe(0);
    expect(run.io.stdout).toBe('orders-db\tpostgres\torders\t15m\t1h\nbilling\tpostgres\tbilling\t5m\t30m\n');
  });

  it('prints aligned columns under a header on a terminal, coloured unless --no-color', async () => {
    const run = await hoopctl(['connections', '--no-color'], {}, { tty: true });
    expect(run.io.stdout).toBe(
      ['NAME       TYPE      DATABASE  DEFAULT  MAX', 'orders-db  postgres  orders    15m      1h', 'billing    postgres  billing   5m       30m', ''].join('\n'),
    );
    const coloured = await hoopctl(['connections'], {}, { tty: true });
    expect(coloured.io.stdout).toContain('\u001b[1mNAME');
    const noColorEnv = await hoopctl(['connections'], { noColor: true }, { tty: true });
    expect(noColorEnv.io.stdout).not.toContain('\u001b[');
  });

  it('--json prints the API shape, before or after the command name', async () => {
    for (const argv of [['connections', '--json'], ['--json', 'connections']]) {
      const run = await hoopctl(argv);
      expect(run.io.jsonLines()).toEqual([{ connections: expect.arrayContaining([expect.objectContaining({ name: 'orders-db' })]) }]);
    }
  });
});

describe('hoopctl connect', () => {
  it('--json: session, ready, then ended after SIGINT, which ends the session (exit 0)', async () => {
    const io = createCapturingIO();
    const signals = new EventEmitter();
    const running = runCli(['connect', 'orders-db', '--port', '0', '--reason', 'debug ticket 42', '--json'], deps(io, {}, signals));
    await until(() => io.stdout.includes('"event":"ready"'), 'ready');
    const [session, ready] = io.jsonLines() as [Record<string, any>, Record<string, any>];
    expect(session).toMatchObject({ event: 'session', session: { connection: 'orders-db', reason: 'debug ticket 42', status: 'active' } });
    expect(session.session.context).toEqual({ client: 'hoopctl', source: 'script', version: '0.1.0-test', interactive: false, hostname: 'test-host', pid: 4242 });
    expect(ready).toMatchObject({ event: 'ready', host: '127.0.0.1', user: 'postgres', password: 'local-secret', database: 'postgres' });
    expect(ready.url).toBe(`postgresql://postgres:local-secret@127.0.0.1:${ready.port}/postgres?sslmode=disable`);
    expect(ready.expiresAt).toBe(session.session.expiresAt);

    // The tunnel works while connect runs.
    const reply = await new Promise<string>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port: ready.port, allowHalfOpen: true } as net.NetConnectOpts);
      let got = '';
      s.on('data', (d) => (got += d));
      s.on('end', () => resolve(got));
      s.on('connect', () => s.end('ping'));
    });
    expect(reply).toBe('ping');

    signals.emit('SIGINT');
    expect(await running).toBe(0);
    expect(io.jsonLines().at(-1)).toEqual({ event: 'ended', reason: 'ended by alice', status: 'ended', cause: 'closed_locally' });
    expect(gateway.sessions.session?.status).toBe('ended');
    expect(signals.listenerCount('SIGINT')).toBe(0);
  });

  it('human output: a psql line that keeps the password out of argv, and DATABASE_URL, on stdout; progress on stderr (regression: the password was in psql’s argv)', async () => {
    const io = createCapturingIO();
    const signals = new EventEmitter();
    const running = runCli(['connect', 'orders-db', '--port', '0'], deps(io, {}, signals));
    await until(() => io.stderr.includes('tunnel ready'), 'ready');
    const port = /127\.0\.0\.1:(\d+)/.exec(io.stdout)![1];
    expect(io.stdout).toBe(
      `PGPASSWORD=local-secret psql "postgresql://postgres@127.0.0.1:${port}/postgres?sslmode=disable"\n` +
        `DATABASE_URL=postgresql://postgres:local-secret@127.0.0.1:${port}/postgres?sslmode=disable\n`,
    );
    expect(io.stderr).toMatch(/^session s_test\d+ on orders-db for alice, expires \S+ \(in 15m\)\n/);
    expect(io.stderr).toMatch(/✓ tunnel ready on 127\.0\.0\.1:\d+, expires .*; Ctrl-C ends the session\n/);
    expect(io.stderr).not.toContain('local-secret');
    signals.emit('SIGTERM');
    expect(await running).toBe(0);
    expect(io.stderr).toMatch(/SIGTERM: ending session s_test\d+…\nsession ended \(ended by alice\)\n$/);
  });

  it('in GitHub Actions, masks the password before printing it', async () => {
    const io = createCapturingIO();
    const signals = new EventEmitter();
    const running = runCli(['connect', 'orders-db', '--port', '0'], deps(io, { inherited: { ...WITHOUT_CI, GITHUB_ACTIONS: 'true' } }, signals));
    await until(() => io.stderr.includes('tunnel ready'), 'ready');
    expect(io.stdout.split('\n')[0]).toBe('::add-mask::local-secret');
    signals.emit('SIGTERM');
    expect(await running).toBe(0);
  });

  it('--env-file: the connection details go to a 0600 file (removed at the end), and no password is printed', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hoop-env-file-'));
    try {
      const file = path.join(dir, 'orders.env');
      const io = createCapturingIO();
      const signals = new EventEmitter();
      const running = runCli(['connect', 'orders-db', '--port', '0', '--env-file', file], deps(io, {}, signals));
      await until(() => io.stderr.includes('tunnel ready'), 'ready');
      expect(fs.statSync(file).mode & 0o777).toBe(0o600);
      const text = fs.readFileSync(file, 'utf8');
      expect(text).toMatch(/^DATABASE_URL='postgresql:\/\/postgres:local-secret@127\.0\.0\.1:\d+\/postgres\?sslmode=disable'\nPGHOST='127\.0\.0\.1'\n/);
      expect(text).toContain("PGPASSWORD='local-secret'\n");
      expect(io.stdout + io.stderr).not.toContain('local-secret');
      expect(io.stdout).toBe(`set -a; . '${file}'; set +a; psql\n`);
      signals.emit('SIGTERM');
      expect(await running).toBe(0);
      expect(fs.existsSync(file)).toBe(false);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('exits 9 with the reason when the session is ended elsewhere', async () => {
    const io = createCapturingIO();
    const running = runCli(['connect', 'orders-db', '--port', '0', '--json'], deps(io));
    await until(() => io.stdout.includes('"event":"ready"'), 'ready');
    gateway.endRemotely('revoked by bob');
    expect(await running).toBe(9);
    expect(io.jsonLines().at(-1)).toEqual({ event: 'ended', reason: 'revoked by bob', status: 'ended', cause: 'ended_remotely' });
  });

  it('exits 8 when the session expires', async () => {
    gateway.sessions.durationMs = 800;
    try {
      const run = await hoopctl(['connect', 'orders-db', '--port', '0']);
      expect(run.code).toBe(8);
      expect(run.io.stderr).toMatch(/session expired: session expired at \S+\nhint: run hoopctl connect again for a new session\n$/);
    } finally {
      gateway.sessions.durationMs = 15 * 60_000;
    }
  });

  it('a taken port → exit 2 with a hint, and no session is created', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', () => resolve()));
    const port = (blocker.address() as net.AddressInfo).port;
    const before = gateway.sessions.created;
    try {
      const run = await hoopctl(['connect', 'orders-db', '--port', String(port)]);
      expect(run.code).toBe(2);
      expect(run.io.stderr).toBe(`error: 127.0.0.1:${port} is already in use\nhint: choose another port with --port N, or --port 0 to let the system pick a free one\n`);
      expect(gateway.sessions.created).toBe(before);
    } finally {
      blocker.close();
    }
  });

  it('a host key that does not match → exit 1, the session ended, nothing listening', async () => {
    gateway.sessions.fingerprint = 'SHA256:wrongwrongwrongwrongwrongwrongwrongwrongwro';
    try {
      const port = await freePort();
      const run = await hoopctl(['connect', 'orders-db', '--port', String(port)]);
      expect(run.code).toBe(1);
      expect(run.io.stderr).toMatch(/error: the SSH endpoint at 127\.0\.0\.1:\d+ presented host key SHA256:\S+, but the gateway announced SHA256:wrong\S+; refusing to connect\nhint: /);
      expect(gateway.sessions.session?.status).toBe('ended');
      await expect(new Promise((resolve, reject) => net.connect({ host: '127.0.0.1', port }).on('connect', resolve).on('error', reject))).rejects.toThrow(/ECONNREFUSED/);
    } finally {
      gateway.sessions.fingerprint = undefined;
    }
  });

  it('-- CMD: runs it with the tunnel env, ends the session when it exits, exits with its code', async () => {
    const script = [
      "const net = require('net');",
      "const e = process.env;",
      "const ok = e.PGHOST === '127.0.0.1' && e.PGUSER === 'postgres' && e.PGPASSWORD === 'local-secret' && e.PGDATABASE === 'postgres'",
      "  && e.PGSSLMODE === 'disable' && /^s_test/.test(e.HOOP_SESSION_ID) && !isNaN(Date.parse(e.HOOP_SESSION_EXPIRES_AT))",
      "  && e.DATABASE_URL === `postgresql://postgres:local-secret@127.0.0.1:${e.PGPORT}/postgres?sslmode=disable`;",
      'if (!ok) process.exit(1);',
      "const s = net.connect({ host: e.PGHOST, port: Number(e.PGPORT), allowHalfOpen: true });",
      "let got = ''; s.on('data', (d) => (got += d)); s.on('end', () => process.exit(got === 'through' ? 17 : 2));",
      "s.on('connect', () => s.end('through'));",
    ].join('\n');
    const io = createCapturingIO();
    const code = await runCli(['connect', 'orders-db', '--port', '0', '--', process.execPath, '-e', script], deps(io));
    expect(io.stderr).not.toContain('error');
    expect(code).toBe(17);
    expect(io.stdout).toBe(''); // connection details go to stderr when a command owns stdout
    expect(io.stderr).toMatch(/DATABASE_URL=postgresql:\/\/postgres@127\.0\.0\.1:\d+\/postgres\?sslmode=disable \(the password is in PGPASSWORD\)\n/);
    expect(gateway.sessions.session?.status).toBe('ended');
  });

  it('-- CMD never prints the password, human or --json, and masks it in GitHub Actions (regression: DATABASE_URL with the password went to CI logs)', async () => {
    for (const json of [false, true]) {
      const io = createCapturingIO();
      const inherited = { ...WITHOUT_CI, GITHUB_ACTIONS: 'true' };
      const code = await runCli(['connect', 'orders-db', '--port', '0', ...(json ? ['--json'] : []), '--', process.execPath, '-e', 'process.exit(0)'], deps(io, { inherited }));
      expect(code).toBe(0);
      const mask = '::add-mask::local-secret\n';
      expect(io.stderr.split(mask)).toHaveLength(2);
      expect((io.stdout + io.stderr.replace(mask, '')).includes('local-secret')).toBe(false);
      if (json) {
        const ready = io.jsonLines().find((e) => (e as { event: string }).event === 'ready') as Record<string, unknown>;
        expect(ready).not.toHaveProperty('password');
        expect(ready.url).toMatch(/^postgresql:\/\/postgres@127\.0\.0\.1:\d+\/postgres\?sslmode=disable$/);
      }
    }
  });

  it('-- CMD that does not exist → exit 127 as a shell says it (regression: it exited 2), session ended', async () => {
    const run = await hoopctl(['connect', 'orders-db', '--port', '0', '--', 'hoopctl-no-such-command']);
    expect(run.code).toBe(127);
    expect(run.io.stderr).toContain('error: command not found: hoopctl-no-such-command');
    expect(gateway.sessions.session?.status).toBe('ended');
  });
});

describe('a wrapped command’s environment', () => {
  const credentials = {
    HOOPCTL_TOKEN: 'the-users-gateway-token',
    HOOPCTL_GATEWAY: 'https://gateway.example.com',
    HOOPCTL_CA: '/etc/hoop/ca.pem',
    AZURE_CLIENT_SECRET: 'sp-secret',
    AZURE_FEDERATED_TOKEN_FILE: '/var/run/secrets/token',
    AZURE_CLIENT_CERTIFICATE_PATH: '/etc/sp.pem',
    MSAL_LOG_LEVEL: 'verbose',
    ACTIONS_ID_TOKEN_REQUEST_TOKEN: 'runner-oidc',
    ACTIONS_ID_TOKEN_REQUEST_URL: 'https://token.actions.example',
  };

  /** Runs `connect -- node` that writes its environment to a file; returns that environment. */
  async function childEnv(extraArgs: string[], inherited: Record<string, string | undefined>): Promise<{ code: number; env: Record<string, string>; io: CapturingIO }> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hoop-child-env-'));
    try {
      const out = path.join(dir, 'env.json');
      const io = createCapturingIO();
      const script = `require('fs').writeFileSync(${JSON.stringify(out)}, JSON.stringify({ ...process.env, HOME_LISTING: require('fs').readdirSync(process.env.HOME).join(',') }))`;
      const code = await runCli(['connect', 'orders-db', '--port', '0', ...extraArgs, '--', process.execPath, '-e', script], deps(io, { inherited }));
      return { code, env: JSON.parse(fs.readFileSync(out, 'utf8')) as Record<string, string>, io };
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }

  it('gets the session’s database variables and nothing that can mint a session (regression: the child inherited HOOPCTL_TOKEN)', async () => {
    const { code, env } = await childEnv([], { ...WITHOUT_CI, ...credentials, AZURE_CLIENT_ID: 'app-id', KEEP_ME: 'yes' });
    expect(code).toBe(0);
    expect(env).toMatchObject({ PGPASSWORD: 'local-secret', PGUSER: 'postgres', KEEP_ME: 'yes', AZURE_CLIENT_ID: 'app-id', HOME: process.env.HOME });
    expect(env.HOOP_SESSION_ID).toMatch(/^s_test/);
    for (const name of Object.keys(credentials)) expect([name, env[name]]).toEqual([name, undefined]);
  });

  it('--isolate: only the basics pass, HOME is an empty directory of its own, removed when the command ends', async () => {
    const { code, env } = await childEnv(['--isolate'], {
      ...WITHOUT_CI,
      ...credentials,
      KEEP_ME: 'no',
      DBUS_SESSION_BUS_ADDRESS: 'unix:path=/run/user/1000/bus',
      SSH_AUTH_SOCK: '/tmp/agent.sock',
      XDG_RUNTIME_DIR: '/run/user/1000',
      LANG: 'C.UTF-8',
    });
    expect(code).toBe(0);
    expect(env).toMatchObject({ PGPASSWORD: 'local-secret', PATH: process.env.PATH, LANG: 'C.UTF-8', HOME_LISTING: '' });
    for (const name of [...Object.keys(credentials), 'KEEP_ME', 'DBUS_SESSION_BUS_ADDRESS', 'SSH_AUTH_SOCK', 'XDG_RUNTIME_DIR']) expect([name, env[name]]).toEqual([name, undefined]);
    expect(env.HOME).not.toBe(process.env.HOME);
    expect(env.XDG_CONFIG_HOME).toBe(`${env.HOME}/.config`);
    expect(fs.existsSync(env.HOME!)).toBe(false);
  });
});

describe('hoopctl sessions', () => {
  it('list, show and end, human and --json', async () => {
    const io = createCapturingIO();
    const signals = new EventEmitter();
    const running = runCli(['connect', 'orders-db', '--port', '0', '--reason', 'audit', '--json'], deps(io, {}, signals));
    await until(() => io.stdout.includes('"event":"ready"'), 'ready');
    const id = gateway.sessions.session!.id;

    const list = await hoopctl(['sessions']);
    expect(list.io.stdout).toMatch(new RegExp(`^${id}\torders-db\talice\tactive\t\\S+ \\(in \\d+m\\d*s?\\)\taudit\n$`));
    expect((await hoopctl(['sessions', 'list', '--json'])).io.jsonLines()).toEqual([{ sessions: [expect.objectContaining({ id, status: 'active' })] }]);

    const show = await hoopctl(['sessions', 'show', id]);
    expect(show.io.stdout).toContain(`id:         ${id}\nconnection: orders-db\nuser:       alice\ngroups:     agents\nstatus:     active\nreason:     audit\n`);
    expect((await hoopctl(['sessions', 'show', id, '--json'])).io.jsonLines()).toEqual([{ session: expect.objectContaining({ id }), extensions: [] }]);

    const end = await hoopctl(['sessions', 'end', id]);
    expect(end.code).toBe(0);
    expect(end.io.stderr).toBe(`✓ ended session ${id} (orders-db)\n`);
    // The connect in the other "terminal" learns why and exits 9.
    expect(await running).toBe(9);
    expect(io.jsonLines().at(-1)).toMatchObject({ event: 'ended', status: 'ended', reason: 'ended by alice' });
  });
});
