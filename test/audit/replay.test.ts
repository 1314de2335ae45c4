import { describe, expect, it } from 'vitest';
import { formatOffset, formatReplay, replayDelays, replayFrames, type ReplayEvent } from '../../src/audit/replay.js';

const at = (ms: number) => new Date(Date.parse('2025-03-01T10:00:00.000Z') + ms).toISOString();

const session: ReplayEvent[] = [
  { seq: 1, time: at(0), type: 'session_started', data: { user: 'alice', groups: ['agents', 'dba'], connection: 'orders-db', durationMs: 900_000, reason: 'fix order 42', context: { source: 'ci', interactive: false, ci: { provider: 'github_actions', runId: '123' }, agent: 'claude code' } } },
  { seq: 2, time: at(120), type: 'connection_opened', data: { connectionId: 'c1', clientAddress: '127.0.0.1:51000', applicationName: 'psql' } },
  { seq: 3, time: at(130), type: 'statement', data: { connectionId: 'c1', statementId: 's1', protocol: 'simple', text: 'SELECT id, email\nFROM customers\nLIMIT 2', decision: 'allow', rule: null, reason: 'default allow' } },
  { seq: 4, time: at(134), type: 'statement_completed', data: { connectionId: 'c1', statementId: 's1', durationMs: 3.24, rows: 2, command: 'SELECT 2', masked: { email: 2 } } },
  { seq: 5, time: at(1500), type: 'statement', data: { connectionId: 'c1', statementId: 's2', protocol: 'simple', text: 'DROP TABLE orders', decision: 'deny', rule: 'no-ddl', reason: 'DDL is not allowed' } },
  { seq: 6, time: at(2000), type: 'statement', data: { connectionId: 'c1', statementId: 's3', protocol: 'extended', text: 'UPDATE orders SET status = $1 WHERE id = $2', params: ['shipped', null], decision: 'allow', rule: null, reason: 'default allow' } },
  { seq: 7, time: at(2011), type: 'statement_completed', data: { connectionId: 'c1', statementId: 's3', durationMs: 11, rows: 1, command: 'UPDATE 1' } },
  { seq: 8, time: at(2500), type: 'statement', data: { connectionId: 'c1', statementId: 's4', protocol: 'simple', text: 'SELECT * FROM nope', decision: 'allow', rule: null, reason: 'default allow' } },
  { seq: 9, time: at(2501), type: 'statement_completed', data: { connectionId: 'c1', statementId: 's4', durationMs: 0.8, rows: null, command: null, error: { code: '42P01', message: 'relation "nope" does not exist' } } },
  { seq: 10, time: at(65_000), type: 'connection_closed', data: { connectionId: 'c1', reason: 'client closed' } },
  { seq: 11, time: at(3_725_250), type: 'session_ended', data: { status: 'expired', reason: 'time limit reached' } },
];

describe('formatReplay', () => {
  it('renders a known session line by line', () => {
    expect(formatReplay(session)).toEqual([
      '+00:00.000  session started · alice (agents, dba) · orders-db · 15m · reason: fix order 42',
      '            context: agent="claude code" ci.provider=github_actions ci.runId=123 interactive=false source=ci',
      '+00:00.120  [c1] connected from 127.0.0.1:51000 (psql)',
      '+00:00.130  [c1] s1 ALLOW  SELECT id, email',
      '                           FROM customers',
      '                           LIMIT 2',
      '+00:00.134  [c1] s1 → SELECT 2 · 2 rows · 3.2 ms · masked: email 2',
      '+00:01.500  [c1] s2 DENY no-ddl  DROP TABLE orders',
      '            reason: DDL is not allowed',
      '+00:02.000  [c1] s3 ALLOW (extended)  UPDATE orders SET status = $1 WHERE id = $2',
      "            params: $1='shipped', $2=NULL",
      '+00:02.011  [c1] s3 → UPDATE 1 · 1 row · 11.0 ms',
      '+00:02.500  [c1] s4 ALLOW  SELECT * FROM nope',
      '+00:02.501  [c1] s4 → ERROR 42P01 relation "nope" does not exist · 0.8 ms',
      '+01:05.000  [c1] disconnected (client closed)',
      '+1:02:05.250  session ended (expired): time limit reached',
    ]);
  });

  it('orders by seq whatever the input order', () => {
    expect(formatReplay([...session].reverse())).toEqual(formatReplay(session));
  });

  it('colours decisions and errors only when asked', () => {
    const colored = formatReplay(session, { color: true });
    expect(colored[7]).toContain('\x1b[31mDENY\x1b[0m');
    expect(colored[3]).toContain('\x1b[32mALLOW\x1b[0m');
    expect(colored[13]).toContain('\x1b[31mERROR 42P01');
    expect(colored.map((l) => l.replace(/\x1b\[[0-9;]*m/g, ''))).toEqual(formatReplay(session));
    expect(formatReplay(session).some((l) => l.includes('\x1b'))).toBe(false);
  });

  it('shows an unknown event type rather than dropping it', () => {
    expect(formatReplay([{ seq: 1, time: at(0), type: 'result_sample', data: { rows: [] } }])).toEqual(['+00:00.000  result_sample {"rows":[]}']);
  });
});

describe('replay timing', () => {
  it.each<[string, Parameters<typeof replayDelays>[1], number[]]>([
    ['real time', {}, [0, 120, 10, 4, 1366, 500, 11, 489, 1, 62499, 3660250]],
    ['--speed 2', { speed: 2 }, [0, 60, 5, 2, 683, 250, 5.5, 244.5, 0.5, 31249.5, 1830125]],
    ['--no-delay', { noDelay: true }, Array(11).fill(0)],
    ['idle gaps capped', { maxGapMs: 1000 }, [0, 120, 10, 4, 1000, 500, 11, 489, 1, 1000, 1000]],
    ['a bad speed falls back to 1', { speed: 0 }, [0, 120, 10, 4, 1366, 500, 11, 489, 1, 62499, 3660250]],
  ])('%s', (_name, timing, expected) => {
    expect(replayDelays(session, timing)).toEqual(expected);
  });

  it('gives one frame per event with its lines', () => {
    const frames = replayFrames(session, { speed: 10 });
    expect(frames).toHaveLength(11);
    expect(frames[2]).toEqual({ delayMs: 1, lines: ['+00:00.130  [c1] s1 ALLOW  SELECT id, email', '                           FROM customers', '                           LIMIT 2'] });
  });

  it('never waits a negative time when the clock went backwards', () => {
    expect(replayDelays([{ time: at(100) }, { time: at(0) }])).toEqual([0, 0]);
  });

  it.each([[0, '+00:00.000'], [61_001, '+01:01.001'], [3_600_000, '+1:00:00.000'], [-5, '+00:00.000']])('formats offset %s as %s', (ms, text) => {
    expect(formatOffset(ms)).toBe(text);
  });
});
