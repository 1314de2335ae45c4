// The engine's view of the audit log: what a statement's and a completion's events carry.
import crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { canonicalJson } from '../../src/audit/events.js';
import type { AuditRecorder } from '../../src/audit/recorder.js';
import { auditStatementRecorder } from '../../src/gateway/engine-wiring.js';
import { silentLogger } from '../../src/logger.js';

function capture() {
  const events: { type: string; data: Record<string, unknown> }[] = [];
  const recorder = {
    record: (_s: string, type: string, data: Record<string, unknown>) => {
      events.push({ type, data });
      return Promise.resolve({});
    },
    recordInBackground: (_s: string, type: string, data: Record<string, unknown>) => {
      events.push({ type, data });
      return undefined;
    },
  } as unknown as AuditRecorder;
  return { events, recorder };
}

/** The members canonical JSON keeps, in the order the object holds them. */
const definedKeys = (data: Record<string, unknown>) => Object.keys(data).filter((k) => data[k] !== undefined);

describe('auditStatementRecorder', () => {
  it.each([
    [
      'a plain statement',
      { text: 'select 1' },
      '{"connectionId":"c1","decision":"allow","protocol":"simple","reason":"ok","rule":null,"statementId":"7","text":"select 1"}',
    ],
    [
      'parameters, some dropped, and a session approval',
      { text: 'select $1, $2', params: ['a'.repeat(10), 'b'.repeat(10)], approvedBy: 'rev_1', protocol: 'extended' as const, decision: 'review' as const },
      '{"approvedBy":"rev_1","connectionId":"c1","decision":"review","params":["aaaaaaaaaa"],"paramsDropped":1,"protocol":"extended","reason":"ok","rule":null,"statementId":"7","text":"select $1, $2"}',
    ],
    [
      'a text cut to maxStatementBytes',
      { text: 'select 123456789' },
      '{"connectionId":"c1","decision":"allow","protocol":"simple","reason":"ok","rule":null,"statementId":"7","text":"select 12345678","textBytes":16,"textSha256":"__SHA__","textTruncated":true}',
    ],
  ])('records %s with the same canonical JSON, its keys already sorted', async (_label, fields, expected) => {
    const { events, recorder } = capture();
    const audit = auditStatementRecorder(recorder, silentLogger, { maxStatementBytes: 15 });
    await audit.statement({ sessionId: 's1', connectionId: 'c1', statementId: 7, protocol: 'simple', decision: 'allow', rule: null, reason: 'ok', ...fields });
    const data = events[0]!.data;
    const sha = crypto.createHash('sha256').update(fields.text).digest('hex');
    expect(canonicalJson(data)).toBe(expected.replace('__SHA__', sha));
    expect(definedKeys(data)).toEqual([...definedKeys(data)].sort());
  });

  it.each([
    ['a plain completion', {}, '{"command":"SELECT 1","connectionId":"c1","durationMs":1.5,"rows":1,"statementId":"7"}'],
    [
      'an error, masked counts, notes and a sample',
      { error: { code: '42P01', message: 'no such table' }, masked: { email: 2 }, maskingNotes: ['why'], sample: { columns: ['a'], rows: [['x']], truncated: false } },
      '{"command":"SELECT 1","connectionId":"c1","durationMs":1.5,"error":{"code":"42P01","message":"no such table"},"masked":{"email":2},"maskingNotes":["why"],"rows":1,"sample":{"columns":["a"],"rows":[["x"]],"truncated":false},"statementId":"7"}',
    ],
  ])('records %s with the same canonical JSON, its keys already sorted', (_label, fields, expected) => {
    const { events, recorder } = capture();
    auditStatementRecorder(recorder, silentLogger).completed({ sessionId: 's1', connectionId: 'c1', statementId: 7, durationMs: 1.5, rows: 1, command: 'SELECT 1', ...fields });
    const data = events[0]!.data;
    expect(canonicalJson(data)).toBe(expected);
    expect(definedKeys(data)).toEqual([...definedKeys(data)].sort());
  });
});
