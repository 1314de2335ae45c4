// A statement's completion event does not hold up its reply, and still keeps its place in the chain.
import { describe, expect, it } from 'vitest';
import type { EngineSession } from '../../src/engine/engine.js';
import type { RelayContext } from '../../src/engine/postgres/hooks.js';
import { StatementGuard, type StatementRecorder } from '../../src/engine/postgres/statement-guard.js';
import { silentLogger } from '../../src/logger.js';
import { encodeBackendMessage, encodeFrontendMessage, type Frame } from '../../src/protocol/postgres/index.js';

const session: EngineSession = {
  id: 'ses_1', user: 'alice', groups: [], connection: 'db', localPassword: 'pw', localUser: 'alice', database: 'db', expiresAt: new Date(8.64e15),
};
const context: RelayContext = { session, transactionStatus: 'I', sendToClient: () => undefined, sendToServer: () => undefined };
const frame = (raw: Buffer): Frame => ({ code: raw[0]!, raw, body: raw.subarray(5) });
const query = (sql: string) => frame(encodeFrontendMessage({ type: 'Query', sql }));
const replies = (tag: string) => [frame(encodeBackendMessage({ type: 'CommandComplete', tag })), frame(encodeBackendMessage({ type: 'ReadyForQuery', status: 'I' }))];
/** Lets the microtask and the immediate the guard queued after a reply run. */
const afterReplyWrite = async () => {
  await Promise.resolve();
  await new Promise((r) => setImmediate(r));
};

function guarded() {
  const log: string[] = [];
  const recorder: StatementRecorder = {
    statement: (r) => void log.push(`statement ${r.statementId}`),
    completed: (r) => void log.push(`completed ${r.statementId} ${r.command}`),
    connectionOpened: () => void log.push('opened'),
    connectionClosed: () => void log.push('closed'),
  };
  const guard = new StatementGuard({ session, recorder, logger: silentLogger });
  const serverSays = (tag: string) => {
    for (const f of replies(tag)) expect(guard.backend.inspect(f, context)).toBeUndefined();
  };
  return { log, guard, serverSays };
}

describe('statement guard: completion events', () => {
  it('records a completion after the hook has let its reply go, not while the reply waits', async () => {
    const { log, guard, serverSays } = guarded();
    expect(guard.frontend.inspect(query('select 1'), context)).toBeUndefined();
    serverSays('SELECT 1');
    // The relay writes the ReadyForQuery once inspect returns: nothing was recorded meanwhile.
    expect(log).toEqual(['opened', 'statement 1']);
    await afterReplyWrite();
    expect(log).toEqual(['opened', 'statement 1', 'completed 1 SELECT 1']);
  });

  it('keeps each connection’s order: a waiting completion goes before the next statement and before the close', async () => {
    const { log, guard, serverSays } = guarded();
    guard.frontend.inspect(query('select 1'), context);
    guard.frontend.inspect(query('select 2'), context);
    serverSays('SELECT 1');
    serverSays('SELECT 2');
    guard.frontend.inspect(query('select 3'), context);
    serverSays('SELECT 3');
    guard.closed();
    expect(log).toEqual(['opened', 'statement 1', 'statement 2', 'completed 1 SELECT 1', 'completed 2 SELECT 2', 'statement 3', 'completed 3 SELECT 3', 'closed']);
    await afterReplyWrite();
    expect(log).toHaveLength(8);
  });
});
