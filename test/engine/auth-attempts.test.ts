// Wrong local passwords are a signal: logged, counted, answered slowly, and locked out after a few.
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalPostgres, type LocalPostgres } from '../../src/dev/embedded-postgres.js';
import type { AuthFailure } from '../../src/engine/postgres/postgres-engine.js';
import { pgError, startEngineHarness, type EngineHarness } from './helpers.js';

let db: LocalPostgres;
const harnesses: EngineHarness[] = [];

beforeAll(async () => {
  db = await startLocalPostgres({ password: 'upstream-attempts' });
});

afterAll(async () => {
  for (const h of harnesses) await h.stop();
  await db?.stop();
});

async function harness(failures: AuthFailure[], overrides: { delayMs?: number; maxFailures?: number; lockMs?: number } = {}): Promise<EngineHarness> {
  const h = await startEngineHarness({
    db,
    engine: {
      authAttempts: { failureDelayMs: overrides.delayMs ?? 150, maxFailures: overrides.maxFailures ?? 3, lockMs: overrides.lockMs ?? 600 },
      onAuthFailure: (failure) => failures.push(failure),
    },
  });
  harnesses.push(h);
  return h;
}

describe('local authentication attempts', () => {
  it('answers a wrong password only after a delay, logs and reports each failure with its count (regression: attempts were neither counted nor slowed)', async () => {
    const failures: AuthFailure[] = [];
    const h = await harness(failures, { delayMs: 250, maxFailures: 10 });
    const started = performance.now();
    expect((await pgError(h.connect({ password: 'guess-1' })))?.code).toBe('28P01');
    expect(performance.now() - started).toBeGreaterThanOrEqual(240);
    expect((await pgError(h.connect({ password: 'guess-2' })))?.code).toBe('28P01');
    expect(failures.map((f) => [f.session.id, f.failures, f.locked])).toEqual([
      [h.session.id, 1, false],
      [h.session.id, 2, false],
    ]);
    expect(failures[0]!.reason).toMatch(/password|proof/i);
    const logged = h.logs.filter((l) => l.message === 'postgres local authentication failed');
    expect(logged.map((l) => l.fields?.failures)).toEqual([1, 2]);

    // A success resets the count.
    const client = await h.connect();
    await client.end();
    await pgError(h.connect({ password: 'guess-3' }));
    expect(failures.at(-1)!.failures).toBe(1);
  });

  it('after maxFailures in a row, refuses even the right password until the lock ends, opening nothing upstream', async () => {
    const failures: AuthFailure[] = [];
    const h = await harness(failures, { delayMs: 10, maxFailures: 3, lockMs: 800 });
    for (let i = 1; i <= 3; i++) expect((await pgError(h.connect({ password: `guess-${i}` })))?.code).toBe('28P01');
    expect(failures.map((f) => f.locked)).toEqual([false, false, true]);
    const dials = h.upstreamDials;
    const locked = await pgError(h.connect());
    expect(locked).toEqual({ code: '28000', message: 'hoop: too many wrong passwords for this session; logins are refused for a while' });
    expect(h.upstreamDials).toBe(dials);
    expect(h.logs.some((l) => l.level === 'warn' && l.message === 'postgres login refused: the session is locked after wrong passwords')).toBe(true);

    await new Promise((r) => setTimeout(r, 900));
    const client = await h.connect();
    expect((await client.query('select 1 as one')).rows).toEqual([{ one: 1 }]);
    await client.end();
  });

  it('locks one session only: another session’s logins go on', async () => {
    const failures: AuthFailure[] = [];
    const h = await harness(failures, { delayMs: 10, maxFailures: 2, lockMs: 5000 });
    for (let i = 0; i < 2; i++) await pgError(h.connect({ password: 'nope' }));
    expect((await pgError(h.connect()))?.code).toBe('28000');
    const bob = { ...h.session, id: `${h.session.id}-bob`, localPassword: 'bobs-own-password' };
    const server = net.createServer((socket) => h.engine.serve(socket, bob));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const client = await h.connect({ port: (server.address() as net.AddressInfo).port, password: bob.localPassword });
      await client.end();
    } finally {
      server.close();
    }
  });
});
