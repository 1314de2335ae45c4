import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startLocalPostgres, type LocalPostgres } from '../dev/embedded-postgres.js';
import { startDevOidcIssuer, type DevIssuer } from '../dev/oidc-issuer.js';
import { parseGatewayConfig } from '../gateway/config.js';
import { startGateway, type RunningGateway } from '../gateway/gateway.js';
import type { Logger } from '../logger.js';
import { seedDemoDatabase } from './seed.js';

export interface DemoStack {
  postgres: LocalPostgres;
  /** The development OpenID provider (oidc-provider, device flow, TLS with its own CA). */
  issuer: DevIssuer;
  gateway: RunningGateway;
  /** Where the issuer's CA certificate is written, for `--ca`. */
  caFile: string;
  /** A scratch config dir for the demo's own login (never the user's). */
  cliConfigDir: string;
  user: string;
  password: string;
  /** A second person, in the reviewers' group, who decides held statements. */
  reviewer: { user: string; password: string; cliConfigDir: string };
  stop(): Promise<void>;
}

export const DEMO_USER = 'demo@hoop.local';
export const DEMO_REVIEWER = 'dba@hoop.local';

/**
 * Everything `hoopctl demo` needs, in this process, on free loopback ports: PostgreSQL with an
 * `orders` database whose `app` password only the gateway knows, a local token issuer, and a
 * gateway serving `orders-db`.
 */
export async function startDemoStack(options: { logger: Logger; progress: (line: string) => void; tempDir?: (dir: string) => void }): Promise<DemoStack> {
  const cleanups: (() => Promise<void>)[] = [];
  const stop = async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  };
  try {
    options.progress('starting PostgreSQL (embedded-postgres, SCRAM password auth)');
    const postgres = await startLocalPostgres({ password: crypto.randomBytes(16).toString('base64url') });
    options.tempDir?.(path.dirname(postgres.dataDir));
    cleanups.push(() => postgres.stop());
    const appPassword = crypto.randomBytes(18).toString('base64url');
    await seedDemoDatabase(postgres.url('postgres'), appPassword);
    options.progress(`seeded database "orders" on 127.0.0.1:${postgres.port} (role app; its password lives only in the gateway's config)`);

    const issuer = await startDevOidcIssuer({ interval: 1 });
    cleanups.push(() => issuer.close());
    const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'hoop-demo-'));
    options.tempDir?.(dataDir);
    cleanups.push(() => fs.rm(dataDir, { recursive: true, force: true }));
    const caFile = path.join(dataDir, 'dev-issuer-ca.pem');
    await fs.writeFile(caFile, issuer.caCert!);
    options.progress(`started the dev OpenID provider (oidc-provider, device flow) at ${issuer.issuer}, TLS from a CA made just now`);
    const config = parseGatewayConfig(
      {
        listen: { api: '127.0.0.1:0', ssh: '127.0.0.1:0' },
        dataDir,
        auth: { issuers: [{ issuer: issuer.issuer, audience: issuer.audience, ca: caFile }], login: issuer.login },
        connections: {
          'orders-db': {
            type: 'postgres',
            host: '127.0.0.1',
            port: postgres.port,
            database: 'orders',
            user: 'app',
            password: 'env:ORDERS_DB_PASSWORD',
            access: { groups: ['agents'], defaultDuration: '1h', maxDuration: '8h' },
            reviewers: { groups: ['dba'], timeout: '10m' },
            policy: {
              default: 'allow',
              unparsed: 'deny',
              rules: [
                { name: 'no-ddl', match: { statements: ['drop', 'alter', 'truncate', 'create', 'grant', 'revoke'] }, action: 'review' },
                { name: 'bounded-writes', match: { statements: ['update', 'delete'], where: 'absent' }, action: 'deny' },
                { name: 'no-escape', match: { features: ['copy_program', 'dynamic_sql', 'role_change'] }, action: 'deny' },
                { name: 'no-files', match: { functions: ['pg_read_file', 'lo_export', 'dblink'] }, action: 'deny' },
              ],
            },
            masking: {
              columns: { 'customers.email': 'hash', 'customers.ssn': 'redact', '*.phone': 'partial' },
              detect: ['email', 'credit_card', 'us_ssn', 'jwt', 'private_key'],
            },
          },
        },
      },
      { source: 'demo', baseDir: dataDir, env: { ORDERS_DB_PASSWORD: appPassword } },
    );
    const gateway = await startGateway(config, { logger: options.logger });
    cleanups.push(() => gateway.close());
    options.progress(`gateway listening: API ${gateway.apiUrl}, SSH ${gateway.ssh.host}:${gateway.ssh.port} (${gateway.ssh.hostKeyFingerprint})`);
    return {
      postgres,
      issuer,
      gateway,
      caFile,
      cliConfigDir: path.join(dataDir, 'cli'),
      user: DEMO_USER,
      password: issuer.users.find((u) => u.username === DEMO_USER)!.password,
      // Under <dir>/hoopctl, so that XDG_CONFIG_HOME=<dir> hoopctl … acts as the reviewer.
      reviewer: { user: DEMO_REVIEWER, password: issuer.users.find((u) => u.username === DEMO_REVIEWER)!.password, cliConfigDir: path.join(dataDir, 'reviewer', 'hoopctl') },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
