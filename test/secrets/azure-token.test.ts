import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DefaultAzureCredential } from '@azure/identity';
import { startLocalPostgres, type LocalPostgres } from '../../src/dev/embedded-postgres.js';
import { AzureTokenSource } from '../../src/secrets/azure-token-source.js';
import { startEngineHarness, type EngineHarness } from '../engine/helpers.js';
import { startManagedIdentityStandIn, type ManagedIdentityStandIn } from '../helpers/azure-stand-ins.js';

const DATABASE_RESOURCE = 'https://ossrdbms-aad.database.windows.net';
const ROLE = 'gateway_mi';

/**
 * `password: azure-ad` against a real PostgreSQL whose role's password is the token the local
 * managed-identity endpoint just issued, with @azure/identity's DefaultAzureCredential
 * unmodified (it finds the endpoint through IDENTITY_ENDPOINT / IDENTITY_HEADER).
 */
describe('Entra tokens as database passwords', () => {
  let db: LocalPostgres;
  let admin: pg.Client;
  let identity: ManagedIdentityStandIn;
  let h: EngineHarness;
  let source: AzureTokenSource;
  const saved = { ...process.env };

  const setRolePassword = (password: string) => admin.query(`ALTER ROLE ${ROLE} PASSWORD ${pg.escapeLiteral(password)}`);
  /** Off: the server stops accepting new tokens (the identity lost its database role). */
  let serverAcceptsTokens = true;

  beforeAll(async () => {
    db = await startLocalPostgres({ password: 'admin-only-secret' });
    admin = new pg.Client(db.url());
    await admin.connect();
    await admin.query(`CREATE ROLE ${ROLE} LOGIN`);
    // Each token is the role's password from the moment it is handed out, as Entra-enabled servers accept any valid token.
    identity = await startManagedIdentityStandIn({ lifetimeSec: 4, onIssue: (t) => (t.resource === DATABASE_RESOURCE && serverAcceptsTokens ? setRolePassword(t.token).then(() => undefined) : Promise.resolve()) });
    Object.assign(process.env, identity.env, { AZURE_TOKEN_CREDENTIALS: 'prod' });
    source = new AzureTokenSource({ credential: new DefaultAzureCredential() });
    h = await startEngineHarness({ db, target: { user: ROLE, password: source }, session: { database: 'postgres' } });
  });

  afterAll(async () => {
    await h?.stop();
    await admin?.end();
    await identity?.close();
    await db?.stop();
    process.env = saved;
  });

  it('logs in with a token for the Azure database resource, and reuses it while it is fresh', async () => {
    const client = await h.connect();
    const { rows } = await client.query('select current_user');
    expect(rows).toEqual([{ current_user: ROLE }]);
    const second = await h.connect();
    await second.query('select 1');
    expect(identity.issued.map((t) => t.resource)).toEqual([DATABASE_RESOURCE]);
    await Promise.all([client.end(), second.end()]);
  });

  it('gets a new token before the current one expires, and open connections keep running', async () => {
    const open = await h.connect();
    const before = identity.issued.length;
    const first = identity.issued.at(-1)!;
    // 4 s tokens are refreshed halfway through their life, well before expires_on.
    await new Promise((r) => setTimeout(r, 2300));
    expect(first.expiresOn.getTime()).toBeGreaterThan(Date.now());
    const fresh = await h.connect();
    expect(identity.issued.length).toBe(before + 1);
    expect((await fresh.query('select current_user')).rows).toEqual([{ current_user: ROLE }]);
    expect((await open.query('select 2 as still')).rows).toEqual([{ still: 2 }]);
    await Promise.all([open.end(), fresh.end()]);
  });

  it('a revoked token: the login asks for a new one at once and goes through; open connections continue', async () => {
    const open = await h.connect();
    const issued = identity.issued.length;
    await setRolePassword('revoked-' + Date.now());
    const client = await h.connect();
    expect(identity.issued.length).toBe(issued + 1);
    expect((await client.query('select current_user')).rows).toEqual([{ current_user: ROLE }]);
    expect((await open.query('select 3 as still')).rows).toEqual([{ still: 3 }]);
    await Promise.all([open.end(), client.end()]);
  });

  it('tokens the server no longer accepts: the client reads a clear error, other connections continue, and logins recover with the server', async () => {
    const open = await h.connect();
    serverAcceptsTokens = false;
    await setRolePassword('revoked-' + Date.now());
    const refused = await h.connect().then(
      () => undefined,
      (err: { code?: string; message: string; detail?: string; hint?: string }) => err,
    );
    expect(refused?.code).toBe('28000');
    expect(refused?.message).toContain(`refused the gateway's credentials`);
    expect(refused?.detail).toContain(`password authentication failed for user "${ROLE}"`);
    expect((await open.query('select 4 as still')).rows).toEqual([{ still: 4 }]);
    // The refusal made the source drop its token; once the server accepts tokens again, the next login gets one that works.
    serverAcceptsTokens = true;
    const issued = identity.issued.length;
    const again = await h.connect();
    expect(identity.issued.length).toBe(issued + 1);
    expect((await again.query('select current_user')).rows).toEqual([{ current_user: ROLE }]);
    await Promise.all([open.end(), again.end()]);
  });

  it('never logs a token', () => {
    const logged = JSON.stringify(h.logs);
    expect(identity.issued.length).toBeGreaterThan(2);
    for (const t of identity.issued) expect(logged).not.toContain(t.token);
  });

  it('no token: 28P01 with the identity endpoint’s own words, no secret, and a gateway log line', async () => {
    const alone = new AzureTokenSource({ credential: new DefaultAzureCredential() });
    const other = await startEngineHarness({ db, target: { user: ROLE, password: alone }, session: { database: 'postgres' } });
    identity.failWith = { status: 400, error: 'invalid_request', description: 'Identity not found for this resource' };
    try {
      const err = await other.connect().then(
        () => undefined,
        (e: { code?: string; message: string; detail?: string }) => e,
      );
      expect(err?.code).toBe('28P01');
      expect(err?.message).toContain('could not get its credentials');
      expect(err?.detail).toContain('Identity not found');
      expect(`${err?.message} ${err?.detail}`).not.toContain(identity.env.IDENTITY_HEADER);
      const logged = other.logs.find((l) => l.message === 'postgres upstream login failed');
      expect(logged?.fields?.['error']).toContain('Identity not found');
      expect(logged?.fields?.['code']).toBe('upstream_credentials');
      // The server was never dialled for a login that had no password.
      expect(other.upstreamDials).toBe(0);
    } finally {
      identity.failWith = undefined;
      await other.stop();
    }
  });
});
