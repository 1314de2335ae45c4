import { describe, expect, it } from 'vitest';
import { ConfigNode } from '../../src/gateway/config-schema.js';
import { parsePolicyConfig } from '../../src/policy/config.js';
import { HoopError } from '../../src/errors.js';
import { EXAMPLE_POLICY_CONFIG, policyFrom } from './helpers.js';

function errorOf(value: unknown): HoopError {
  try {
    policyFrom(value);
  } catch (err) {
    if (err instanceof HoopError) return err;
    throw err;
  }
  throw new Error('expected a config error');
}

const rule = (extra: Record<string, unknown>) => ({ rules: [{ name: 'ok', match: { statements: ['select'] }, action: 'allow' }, extra] });

describe('parsePolicyConfig', () => {
  it('reads the DESIGN.md example', () => {
    const policy = policyFrom(EXAMPLE_POLICY_CONFIG);
    expect(policy.default).toBe('allow');
    expect(policy.unparsed).toBe('deny');
    expect(policy.searchPath).toEqual(['public']);
    expect(policy.rules.map((r) => r.name)).toEqual(['no-ddl', 'bounded-writes', 'no-ssn', 'no-escape', 'no-files']);
    expect(policy.rules[2]).toEqual({ name: 'no-ssn', match: { columns: ['customers.ssn'] }, action: 'deny', groups: ['agents'] });
  });

  it('an absent policy allows what parses and denies what does not', () => {
    expect(parsePolicyConfig(new ConfigNode(undefined, 'connections.orders-db.policy', 'gateway.yaml')))
      .toEqual({ default: 'allow', unparsed: 'deny', rules: [], searchPath: ['public'] });
  });

  it('reads searchPath, folding unquoted names', () => {
    expect(policyFrom({ searchPath: ['App', '"Mixed"', 'public'] }).searchPath).toEqual(['app', 'Mixed', 'public']);
  });

  it.each<[string, unknown, string]>([
    ['unknown statement kind', rule({ name: 'r', match: { statements: ['select', 'selekt'] }, action: 'deny' }),
      'gateway.yaml: connections.orders-db.policy.rules[1].match.statements: unknown statement kind "selekt" (rule "r")'],
    ['unknown feature', rule({ name: 'r', match: { features: ['sql_injection'] }, action: 'deny' }),
      'gateway.yaml: connections.orders-db.policy.rules[1].match.features: unknown feature "sql_injection" (rule "r")'],
    ['unknown action', rule({ name: 'r', match: {}, action: 'block' }),
      'gateway.yaml: connections.orders-db.policy.rules[1].action: unknown action "block" (rule "r")'],
    ['missing action', rule({ name: 'r', match: {} }),
      'gateway.yaml: connections.orders-db.policy.rules[1].action: is required (rule "r")'],
    ['missing name', rule({ match: {}, action: 'deny' }),
      'gateway.yaml: connections.orders-db.policy.rules[1].name: must be a non-empty string, got nothing'],
    ['duplicate name', rule({ name: 'ok', match: {}, action: 'deny' }),
      'gateway.yaml: connections.orders-db.policy.rules[1].name: duplicate rule name "ok"'],
    ['unknown match key', rule({ name: 'r', match: { colums: ['a.b'] }, action: 'deny' }),
      'gateway.yaml: connections.orders-db.policy.rules[1].match: unknown match key "colums" (rule "r")'],
    ['unknown rule field', rule({ name: 'r', match: {}, action: 'deny', group: ['x'] }),
      'gateway.yaml: connections.orders-db.policy.rules[1]: unknown field "group" (rule "r")'],
    ['missing match', rule({ name: 'r', action: 'deny' }),
      'gateway.yaml: connections.orders-db.policy.rules[1].match: is required (rule "r")'],
    ['bad where', rule({ name: 'r', match: { where: 'present' }, action: 'deny' }),
      'gateway.yaml: connections.orders-db.policy.rules[1].match.where: must be "absent", got "present" (rule "r")'],
    ['column without table', rule({ name: 'r', match: { columns: ['ssn'] }, action: 'deny' }),
      'gateway.yaml: connections.orders-db.policy.rules[1].match.columns: "ssn" is not a column name (rule "r")'],
    ['malformed table', rule({ name: 'r', match: { tables: ['"unterminated'] }, action: 'deny' }),
      'gateway.yaml: connections.orders-db.policy.rules[1].match.tables: ""unterminated" is not a table name (rule "r")'],
    ['wildcard over pg_catalog', rule({ name: 'r', match: { tables: ['pg_catalog.*'] }, action: 'deny' }),
      'gateway.yaml: connections.orders-db.policy.rules[1].match.tables: "pg_catalog.*" cannot be matched: unqualified names may resolve to pg_catalog, and facts spell them public.name (rule "r")'],
    ['bare wildcard', rule({ name: 'r', match: { writes: ['*'] }, action: 'deny' }),
      'gateway.yaml: connections.orders-db.policy.rules[1].match.writes: "*" is not a table name (rule "r")'],
    ['reserved rule name', rule({ name: 'built-in:parser-settings', match: {}, action: 'allow' }),
      'gateway.yaml: connections.orders-db.policy.rules[1].name: "built-in:parser-settings": names starting with built-in: are reserved for the gateway\'s own rules'],
    ['empty list', rule({ name: 'r', match: { tables: [] }, action: 'deny' }),
      'gateway.yaml: connections.orders-db.policy.rules[1].match.tables: is empty (rule "r")'],
    ['bad default', { default: 'maybe' },
      'gateway.yaml: connections.orders-db.policy.default: must be one of allow, deny, review, got "maybe"'],
    ['bad unparsed', { unparsed: 'allowed' },
      'gateway.yaml: connections.orders-db.policy.unparsed: must be one of allow, deny, review, got "allowed"'],
    ['unknown policy field', { defaults: 'allow' },
      'gateway.yaml: connections.orders-db.policy: unknown field "defaults"'],
    ['rules not a list', { rules: { name: 'x' } },
      'gateway.yaml: connections.orders-db.policy.rules: must be a list, got a mapping'],
  ])('%s', (_, value, message) => {
    const err = errorOf(value);
    expect(err.message).toBe(message);
    expect(err.code).toBe('bad_config');
    expect(err.kind).toBe('usage');
  });

  it('accepts schema.* for a schema unqualified names do not resolve to, and the first one', () => {
    expect(policyFrom({ rules: [{ name: 'temp', match: { tables: ['pg_temp.*', 'archive.*', 'public.*'] }, action: 'allow' }] }).rules[0]!.match.tables)
      .toEqual(['pg_temp.*', 'archive.*', 'public.*']);
    expect(errorOf({ searchPath: ['app', 'public'], rules: [{ name: 'r', match: { tables: ['public.*'] }, action: 'deny' }] }).message)
      .toContain('"public.*" cannot be matched');
  });

  it('hints at the allowed values', () => {
    expect(errorOf(rule({ name: 'r', match: { statements: ['selekt'] }, action: 'deny' })).hint).toContain('select, insert, update');
  });
});
