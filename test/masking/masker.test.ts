import { describe, expect, it } from 'vitest';
import { Masker } from '../../src/masking/masker.js';
import { DETECTOR_NAMES, type ColumnSource, type MaskingConfig, type MaskStrategy } from '../../src/masking/types.js';
import { JWT_HS256 } from './samples.js';

const hashKey = Buffer.alloc(32, 3);
const config = (c: Partial<MaskingConfig>): MaskingConfig => ({ columns: [], detect: [], groups: {}, hashKey, ...c });
const detectAll = (strategy: MaskStrategy = 'redact') => DETECTOR_NAMES.map((detector) => ({ detector, strategy }));
const b = (s: string) => Buffer.from(s, 'utf8');

/** Masks one value as a text column with no reported source. */
function maskOne(masker: Masker, text: string): string | null {
  const plan = masker.planColumns([null]);
  const out = masker.maskValue(plan, 0, b(text));
  return out === null ? null : out.toString('utf8');
}

describe('Masker: content detection', () => {
  const masker = new Masker(config({ detect: detectAll() }), []);

  it.each([
    ['contact ada@example.com or 4111 1111 1111 1111', 'contact [redacted:email] or [redacted:credit_card]'],
    ['ssn 123-45-6789, phone +1 415 555 2671.', 'ssn [redacted:us_ssn], phone [redacted:phone].'],
    [`Bearer ${JWT_HS256}`, 'Bearer [redacted:jwt]'],
    ['id=AKIAIOSFODNN7EXAMPLE', 'id=[redacted:aws_access_key]'],
    ['IBAN DE89 3704 0044 0532 0130 00 EUR', 'IBAN [redacted:iban] EUR'],
  ])('masks just the sensitive parts of %j', (input, expected) => {
    expect(maskOne(masker, input)).toBe(expected);
  });

  it('returns the very same Buffer when nothing is sensitive', () => {
    const plan = masker.planColumns([null, null]);
    for (const text of ['hello world', '2024-01-15 10:30:00+00', '550e8400-e29b-41d4-a716-446655440000', '4111111111111112', 'a@b', '']) {
      const value = b(text);
      expect(masker.maskValue(plan, 1, value)).toBe(value);
    }
  });

  it.each([
    ['redact', (v: any) => expect(v).toEqual({ email: '[redacted:email]', card: '[redacted:credit_card]', n: 1, tags: ['x', '[redacted:us_ssn]'] })],
    ['hash', (v: any) => expect(v.email).toMatch(/^h:[0-9a-f]{16}$/)],
    ['partial', (v: any) => expect(v).toMatchObject({ email: '***@******e.com', card: '************4242' })],
  ] as const)('keeps JSON valid with %s, quoting a bare number it masks', (strategy, check) => {
    const m = new Masker(config({ detect: detectAll(strategy) }), []);
    const input = '{"email":"ada@example.com", "card": 4242424242424242, "n": 1, "tags": ["x", "123-45-6789"]}';
    const out = maskOne(m, input)!;
    check(JSON.parse(out));
  });

  it('does not quote inside a JSON string that merely contains a colon', () => {
    const out = maskOne(masker, '{"note":"card: 4111111111111111, thanks"}')!;
    expect(JSON.parse(out)).toEqual({ note: 'card: [redacted:credit_card], thanks' });
  });

  it('hash in content gives the same token as a hashed column with that value', () => {
    const m = new Masker(config({ columns: [{ pattern: '*.email', strategy: 'hash' }], detect: [{ detector: 'email', strategy: 'hash' }] }), []);
    const plan = m.planColumns([{ table: 'customers', column: 'email' }, null]);
    const fromColumn = m.maskValue(plan, 0, b('ada@example.com'))!.toString();
    const fromText = m.maskValue(plan, 1, b('write to ada@example.com'))!.toString();
    expect(fromText).toBe(`write to ${fromColumn}`);
  });

  it('null on a content hit makes the whole value NULL, but redacts inside COPY rows and free text', () => {
    const m = new Masker(config({ detect: [{ detector: 'us_ssn', strategy: 'null' }] }), []);
    expect(maskOne(m, 'ssn 123-45-6789')).toBeNull();
    expect(m.maskContent(b('1\t123-45-6789\tok\n')).toString()).toBe('1\t[redacted:us_ssn]\tok\n');
    expect(m.maskText('ssn 123-45-6789').text).toBe('ssn [redacted:us_ssn]');
  });

  it('masks a value that is not valid UTF-8, copying every other byte untouched', () => {
    const value = Buffer.concat([Buffer.from([0xff, 0xfe, 0x20]), b('ada@example.com'), Buffer.from([0x20, 0xc3])]);
    const out = masker.maskValue(masker.planColumns([null]), 0, value)!;
    expect(out.subarray(0, 3)).toEqual(Buffer.from([0xff, 0xfe, 0x20]));
    expect(out.subarray(3, -2).toString()).toBe('[redacted:email]');
    expect(out.subarray(-2)).toEqual(Buffer.from([0x20, 0xc3]));
  });

  it('masks a non-ASCII email whole and keeps surrounding multi-byte text', () => {
    expect(maskOne(masker, 'écrire à josé@exämple.de — merci')).toBe('écrire à [redacted:email] — merci');
  });

  it('turns a masked value of a non-text column into NULL', () => {
    const plan = masker.planColumns([null, null], [false, true]);
    expect(masker.maskValue(plan, 0, b('4111111111111111'))).toBeNull();
    const untouched = b('12345');
    expect(masker.maskValue(plan, 0, untouched)).toBe(untouched);
  });

  it('counts masked values by type and resets on takeCounts', () => {
    const m = new Masker(config({ columns: [{ pattern: 'customers.email', strategy: 'hash' }], detect: detectAll() }), []);
    const plan = m.planColumns([{ table: 'public.customers', column: 'email' }, null]);
    m.maskValue(plan, 0, b('ada@example.com'));
    m.maskValue(plan, 1, b('a@example.com b@example.com 4111111111111111'));
    m.maskValue(plan, 1, b('nothing here'));
    expect(m.takeCounts()).toEqual({ 'column:customers.email': 1, email: 2, credit_card: 1 });
    expect(m.takeCounts()).toEqual({});
  });

  it('maskText reports its own counts', () => {
    expect(masker.maskText('mail ada@example.com, ssn 123-45-6789')).toEqual({
      text: 'mail [redacted:email], ssn [redacted:us_ssn]',
      counts: { email: 1, us_ssn: 1 },
    });
  });

  it('runs only the configured detectors', () => {
    const m = new Masker(config({ detect: [{ detector: 'email', strategy: 'redact' }] }), []);
    expect(maskOne(m, 'ada@example.com 4111111111111111')).toBe('[redacted:email] 4111111111111111');
  });
});

describe('Masker: column rules', () => {
  const rules = config({
    columns: [
      { pattern: 'customers.email', strategy: 'hash' },
      { pattern: '*.phone', strategy: 'partial' },
      { pattern: 'public.customers.ssn', strategy: 'redact' },
      { pattern: 'billing.*.card_*', strategy: 'null' },
      { pattern: 'orders.phone', strategy: 'redact' },
    ],
  });
  const masker = new Masker(rules, []);

  it.each<[string, ColumnSource, string | null]>([
    ['table.column', { table: 'customers', column: 'email' }, 'hash'],
    ['table.column under any schema', { table: 'sales.customers', column: 'email' }, 'hash'],
    ['case-insensitively', { table: 'Customers', column: 'EMAIL' }, 'hash'],
    ['a wildcard table', { table: 'leads', column: 'phone' }, 'partial'],
    ['the more specific rule over a wildcard', { table: 'orders', column: 'phone' }, 'redact'],
    ['schema-qualified', { table: 'public.customers', column: 'ssn' }, 'redact'],
    ['schema-qualified with an explicit schema field', { schema: 'public', table: 'customers', column: 'ssn' }, 'redact'],
    ['schema-qualified when the schema is unknown', { table: 'customers', column: 'ssn' }, 'redact'],
    ['not another schema', { table: 'archive.customers', column: 'ssn' }, null],
    ['a glob in a segment', { table: 'billing.payments', column: 'card_number' }, 'null'],
    ['not another column', { table: 'customers', column: 'name' }, null],
    ['not a prefix of the table', { table: 'customers_old', column: 'email' }, null],
  ])('matches %s', (_, source, strategy) => {
    const action = masker.planColumns([source]).actions[0]!;
    expect(action.kind === 'rule' ? action.strategy : null).toBe(strategy);
  });

  it('masks whole values per strategy and leaves other columns alone', () => {
    const plan = masker.planColumns([
      { table: 'customers', column: 'email' },
      { table: 'leads', column: 'phone' },
      { table: 'customers', column: 'ssn' },
      { table: 'billing.payments', column: 'card_no' },
      { table: 'customers', column: 'name' },
      null,
    ]);
    const name = b('Ada ada@example.com');
    const out = [b('ada@example.com'), b('+1 415 555 2671'), b('123-45-6789'), b('4111111111111111'), name, b('x@y.com')].map((v, i) =>
      masker.maskValue(plan, i, v),
    );
    expect(out[0]!.toString()).toMatch(/^h:[0-9a-f]{16}$/);
    expect(out[1]!.toString()).toBe('+* *** *** 2671');
    expect(out[2]!.toString()).toBe('[redacted]');
    expect(out[3]).toBeNull();
    expect(out[4]).toBe(name);
    expect(out[5]!.toString()).toBe('x@y.com');
    expect(plan.passThrough).toBe(false);
  });

  it('plans pass-through when no rule matches and nothing is detected', () => {
    expect(masker.planColumns([{ table: 'customers', column: 'name' }, null]).passThrough).toBe(true);
  });

  it('detects in columns without a rule, including expressions', () => {
    const m = new Masker(config({ columns: rules.columns, detect: detectAll() }), []);
    expect(m.planColumns([{ table: 'customers', column: 'name' }, null, { table: 'customers', column: 'email' }]).actions.map((a) => a.kind)).toEqual([
      'detect',
      'detect',
      'rule',
    ]);
  });
});

describe('Masker: groups', () => {
  const base = config({
    columns: [{ pattern: '*.email', strategy: 'hash' }],
    detect: detectAll(),
    groups: {
      dba: 'off',
      support: config({ detect: [{ detector: 'credit_card', strategy: 'partial' }] }),
    },
  });
  const email = { table: 'customers', column: 'email' };

  it.each([
    ['no group', [], true, 'h:'],
    ['an unrelated group', ['agents'], true, 'h:'],
    ['dba: off', ['dba'], false, 'ada@example.com'],
    ['the first matching group in config order', ['support', 'dba'], false, 'ada@example.com'],
    ['a replacing group config', ['support'], true, 'ada@example.com'],
  ])('%s', (_, groups, enabled, prefix) => {
    const m = new Masker(base, groups);
    expect(m.enabled).toBe(enabled);
    const plan = m.planColumns([email]);
    expect((m.maskValue(plan, 0, b('ada@example.com')) ?? b('NULL')).toString().startsWith(prefix)).toBe(true);
  });

  it('the support override masks cards partially', () => {
    const m = new Masker(base, ['support']);
    expect(maskOne(m, 'card 4111 1111 1111 1111')).toBe('card **** **** **** 1111');
  });

  it('an empty config is disabled', () => {
    expect(new Masker(config({}), []).enabled).toBe(false);
  });
});
