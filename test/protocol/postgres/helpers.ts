import { expect } from 'vitest';
import { ProtocolError, type Frame, type ProtocolErrorCode } from '../../../src/protocol/postgres/index.js';

/** A frame for one typed message, as the framer would give it. */
export function typedFrame(raw: Buffer): Frame {
  return { code: raw[0]!, raw, body: raw.subarray(5) };
}

/** A frame for one untyped startup-phase packet. */
export function startupFrame(raw: Buffer): Frame {
  return { code: 0, raw, body: raw.subarray(4) };
}

/** Runs fn and checks it throws a ProtocolError with this code (and message, when given). */
export function expectProtocolError(fn: () => unknown, code: ProtocolErrorCode, message?: string | RegExp): ProtocolError {
  let thrown: unknown;
  try {
    fn();
  } catch (err) {
    thrown = err;
  }
  expect(thrown).toBeInstanceOf(ProtocolError);
  const err = thrown as ProtocolError;
  expect(err.kind).toBe('protocol');
  expect(err.code).toBe(code);
  if (typeof message === 'string') expect(err.message).toBe(message);
  else if (message !== undefined) expect(err.message).toMatch(message);
  return err;
}
