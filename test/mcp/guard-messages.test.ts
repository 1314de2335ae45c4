import { describe, expect, it } from 'vitest';
import { readGuardRefusal, readHeldNotice } from '../../src/mcp/guard-messages.js';

describe('the guard’s messages, read back', () => {
  it.each([
    ['hoop: blocked by rule "no-ssn": reads customers.ssn', { rule: 'no-ssn', reason: 'reads customers.ssn', reviewId: null }],
    ['hoop: blocked by the connection’s default policy: default deny', { rule: null, reason: 'default deny', reviewId: null }],
    ['hoop: statement needs approval (rule "no-ddl"): ddl', { rule: 'no-ddl', reason: 'ddl', reviewId: null }],
    ['hoop: statement rejected by bob (review rev_1): not during the sale', { rule: null, reason: 'rejected by bob: not during the sale', reviewId: 'rev_1' }],
    ['hoop: review rev_2 timed out: no reviewer decided within 1s; the statement was not run', { rule: null, reason: 'timed out: no reviewer decided within 1s; the statement was not run', reviewId: 'rev_2' }],
    ['hoop: review rev_3 was withdrawn: the session ended', { rule: null, reason: 'was withdrawn: the session ended', reviewId: 'rev_3' }],
  ])('%s', (message, expected) => {
    expect(readGuardRefusal(message)).toEqual(expected);
  });

  it.each(['relation "nope" does not exist', 'hoop: the audit log cannot record this statement, so it was not run'])('is not a refusal: %s', (message) => {
    expect(readGuardRefusal(message)).toBeUndefined();
  });

  it('reads a held statement’s notice', () => {
    expect(readHeldNotice('hoop: statement held for review rev_Xk2 (rule "reviewed-deletes"): deletes need a review')).toEqual({
      reviewId: 'rev_Xk2',
      rule: 'reviewed-deletes',
      reason: 'deletes need a review',
    });
    expect(readHeldNotice('hoop: statement held for review rev_9 (the connection’s default policy): default review')).toEqual({ reviewId: 'rev_9', rule: null, reason: 'default review' });
    expect(readHeldNotice('NOTICE: table "t" does not exist, skipping')).toBeUndefined();
  });
});
