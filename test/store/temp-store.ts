import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SqliteStore, type SqliteStoreOptions } from '../../src/store/sqlite-store.js';
import type { StatementData } from '../../src/audit/events.js';
import type { SessionRecord } from '../../src/store/store.js';

/** A fresh directory under the OS temp dir, removed by the returned cleanup. */
export function tempDir(prefix = 'hoop-audit-'): { dir: string; cleanup: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  return { dir, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/** A SqliteStore on a real file in a temp dir. */
export function tempStore(options?: SqliteStoreOptions): { store: SqliteStore; file: string; dir: string; cleanup: () => Promise<void> } {
  const { dir, cleanup } = tempDir();
  const file = path.join(dir, 'gateway.db');
  const store = SqliteStore.open(file, options);
  return {
    store,
    file,
    dir,
    cleanup: async () => {
      await store.close();
      cleanup();
    },
  };
}

export function sessionRecord(id: string, over: Partial<SessionRecord> = {}): SessionRecord {
  return {
    id,
    user: 'alice',
    issuer: 'https://idp.test',
    subject: 'alice',
    groups: ['agents'],
    connection: 'orders-db',
    reason: null,
    context: {},
    publicKey: 'ssh-ed25519 AAAA',
    localPassword: 'pw',
    createdAt: new Date('2025-01-01T00:00:00Z'),
    expiresAt: new Date('2025-01-01T00:15:00Z'),
    durationMs: 15 * 60_000,
    endedAt: null,
    endReason: null,
    status: 'active',
    ...over,
  };
}

import { GENESIS_HASH, canonicalJson, computeEventHash } from '../../src/audit/events.js';
import type { StoredAuditEvent } from '../../src/store/audit-store.js';

/** Hash-chained events for one session, continuing after `after` (or from the genesis). */
export function buildChain(
  sessionId: string,
  specs: { type: string; data: unknown; time?: string }[],
  after?: { seq: number; hash: string },
): StoredAuditEvent[] {
  let seq = after?.seq ?? 0;
  let prevHash = after?.hash ?? GENESIS_HASH;
  return specs.map((s, i) => {
    seq++;
    const unhashed = {
      sessionId,
      seq,
      time: s.time ?? new Date(Date.UTC(2025, 0, 1, 0, 0, 0) + seq * 1000 + i).toISOString(),
      type: s.type,
      data: s.data,
      dataJson: canonicalJson(s.data),
      prevHash,
    };
    const event = { ...unhashed, hash: computeEventHash(unhashed) };
    prevHash = event.hash;
    return event;
  });
}

/** The data of an allowed simple-protocol statement event, `SELECT n`. */
export const statement = (n: number, connectionId = 'c1'): StatementData => ({
  connectionId,
  statementId: `s${n}`,
  protocol: 'simple',
  text: `SELECT ${n}`,
  decision: 'allow',
  rule: null,
  reason: 'default allow',
});
