import { describe, expect, it } from 'vitest';
import { colors } from '../../src/cli/colors.js';

describe('colors', () => {
  const on = colors(true);
  const off = colors(false);

  it.each([
    ['bold', '\u001b[1mx\u001b[22m'],
    ['dim', '\u001b[2mx\u001b[22m'],
    ['red', '\u001b[31mx\u001b[39m'],
    ['green', '\u001b[32mx\u001b[39m'],
    ['yellow', '\u001b[33mx\u001b[39m'],
    ['cyan', '\u001b[36mx\u001b[39m'],
  ] as const)('%s wraps text in its SGR codes (as chalk does at level 1)', (name, expected) => {
    expect(on[name]('x')).toBe(expected);
    expect(off[name]('x')).toBe('x');
  });

  it('closes a style before a line break and opens it again after', () => {
    expect(on.red('a\nb\r\nc')).toBe('\u001b[31ma\u001b[39m\n\u001b[31mb\u001b[39m\r\n\u001b[31mc\u001b[39m');
  });

  it('leaves empty text empty, and works detached from its object (as a map of styles uses it)', () => {
    expect(on.green('')).toBe('');
    const { yellow } = on;
    expect(yellow('w')).toBe('\u001b[33mw\u001b[39m');
  });

  it('says its level: 1 colouring, 0 plain', () => {
    expect([on.level, off.level]).toEqual([1, 0]);
  });
});
