import type { ConfigNode } from '../gateway/config-schema.js';
import { parseDottedName } from './names.js';
import { DEFAULT_MAX_STATEMENT_BYTES } from './statement-size.js';
import { functionName, NameResolver } from './rule-matcher.js';
import {
  POLICY_ACTIONS, POLICY_FEATURES, STATEMENT_KINDS,
  type ConnectionPolicy, type PolicyFeature, type PolicyRule, type PolicyRuleMatch, type StatementKind,
} from './types.js';

const POLICY_KEYS = ['default', 'unparsed', 'rules', 'searchPath', 'maxStatementSize'] as const;
const RULE_KEYS = ['name', 'match', 'action', 'groups', 'timeout'] as const;
const MATCH_KEYS = ['statements', 'tables', 'writes', 'columns', 'functions', 'where', 'features'] as const;

/** The policy of a connection when its config has none: allow what parses, deny what does not. */
export function defaultPolicy(): ConnectionPolicy {
  return { default: 'allow', unparsed: 'deny', rules: [], searchPath: ['public'] };
}

/**
 * Reads `connections.<name>.policy`. Every error names the field and, inside a rule, the rule:
 * `…policy.rules[2].match.statements: unknown statement kind "selekt" (rule "no-ddl")`.
 */
export function parsePolicyConfig(node: ConfigNode): ConnectionPolicy {
  if (!node.present) return defaultPolicy();
  node.onlyKeys(POLICY_KEYS);
  const defaultNode = node.child('default');
  const unparsedNode = node.child('unparsed');
  const searchPathNode = node.child('searchPath');
  const searchPath = searchPathNode.present ? parseSearchPath(searchPathNode) : ['public'];
  const rulesNode = node.child('rules');
  const rules: PolicyRule[] = [];
  const seen = new Map<string, number>();
  const resolver = new NameResolver(searchPath);
  if (rulesNode.present) {
    rulesNode.list().forEach((ruleNode, index) => {
      const rule = parseRule(ruleNode, resolver);
      const first = seen.get(rule.name);
      if (first !== undefined) {
        ruleNode.child('name').fail(`duplicate rule name "${rule.name}"`, `rule names must be unique; rules[${first}] already uses it`);
      }
      seen.set(rule.name, index);
      rules.push(rule);
    });
  }
  return {
    default: defaultNode.present ? defaultNode.oneOf(POLICY_ACTIONS) : 'allow',
    unparsed: unparsedNode.present ? unparsedNode.oneOf(POLICY_ACTIONS) : 'deny',
    rules,
    searchPath,
  };
}

/** `policy.maxStatementSize` (`512KiB`, `1MiB`, `4MB`): longer statement text is unparsed without being parsed. */
export function parseMaxStatementBytes(node: ConfigNode): number {
  const size = node.present ? node.child('maxStatementSize') : undefined;
  return size?.present ? size.byteSize(1, 1024 ** 3) : DEFAULT_MAX_STATEMENT_BYTES;
}

function parseSearchPath(node: ConfigNode): string[] {
  const schemas = node.stringList().map((text) => {
    const parts = parseDottedName(text);
    if (!parts || parts.length !== 1 || parts[0] === '*') node.fail(`"${text}" is not a schema name`);
    return parts[0]!;
  });
  if (schemas.length === 0) node.fail('must name at least one schema');
  return schemas;
}

function parseRule(node: ConfigNode, resolver: NameResolver): PolicyRule {
  node.object();
  const nameNode = node.child('name');
  const name = nameNode.string();
  if (name.startsWith('built-in:')) nameNode.fail(`"${name}": names starting with built-in: are reserved for the gateway's own rules`);
  const inRule = ` (rule "${name}")`;
  for (const key of Object.keys(node.object())) {
    if (!(RULE_KEYS as readonly string[]).includes(key)) {
      node.fail(`unknown field "${key}"${inRule}`, `allowed fields: ${RULE_KEYS.join(', ')}`);
    }
  }
  const actionNode = node.child('action');
  if (!actionNode.present) actionNode.fail(`is required${inRule}`, `one of ${POLICY_ACTIONS.join(', ')}`);
  const actionText = actionNode.string();
  if (!(POLICY_ACTIONS as readonly string[]).includes(actionText)) {
    actionNode.fail(`unknown action "${actionText}"${inRule}`, `one of ${POLICY_ACTIONS.join(', ')}`);
  }
  const groupsNode = node.child('groups');
  const groups = groupsNode.present ? groupsNode.stringList() : undefined;
  if (groups && groups.length === 0) groupsNode.fail(`is empty${inRule}`, 'leave groups out to apply the rule to everyone');
  const matchNode = node.child('match');
  if (!matchNode.present) matchNode.fail(`is required${inRule}`, `keys: ${MATCH_KEYS.join(', ')}; {} matches every statement`);
  const rule: PolicyRule = {
    name,
    action: actionText as PolicyRule['action'],
    match: parseMatch(matchNode, resolver, inRule),
  };
  if (groups) rule.groups = groups;
  const timeoutNode = node.child('timeout');
  if (timeoutNode.present) {
    if (rule.action !== 'review') timeoutNode.fail(`applies only to action review${inRule}`, 'a timeout says how long a held statement waits for a reviewer');
    rule.timeoutMs = timeoutNode.duration(inRule);
  }
  return rule;
}

function parseMatch(node: ConfigNode, resolver: NameResolver, inRule: string): PolicyRuleMatch {
  node.object();
  for (const key of Object.keys(node.object())) {
    if (!(MATCH_KEYS as readonly string[]).includes(key)) {
      node.fail(`unknown match key "${key}"${inRule}`, `allowed keys: ${MATCH_KEYS.join(', ')}`);
    }
  }
  const match: PolicyRuleMatch = {};
  const statements = node.child('statements');
  if (statements.present) {
    match.statements = nonEmpty(statements, inRule).map((kind) => {
      if (!(STATEMENT_KINDS as readonly string[]).includes(kind)) {
        statements.fail(`unknown statement kind "${kind}"${inRule}`, `kinds: ${STATEMENT_KINDS.join(', ')}`);
      }
      return kind as StatementKind;
    });
  }
  for (const key of ['tables', 'writes'] as const) {
    const child = node.child(key);
    if (!child.present) continue;
    match[key] = nonEmpty(child, inRule).map((text) => {
      const error = resolver.tableError(text);
      if (error !== null) child.fail(`${error}${inRule}`, 'write table, schema.table, "Quoted"."Name" or schema.* (pg_temp.* for temporary tables)');
      return text;
    });
  }
  const columns = node.child('columns');
  if (columns.present) {
    match.columns = nonEmpty(columns, inRule).map((text) => {
      if (resolver.columns(text) === null) {
        columns.fail(`"${text}" is not a column name${inRule}`, 'write table.column or schema.table.column (column may be *)');
      }
      return text;
    });
  }
  const functions = node.child('functions');
  if (functions.present) {
    match.functions = nonEmpty(functions, inRule).map((text) => {
      if (functionName(text) === null) functions.fail(`"${text}" is not a function name${inRule}`, 'write name or schema.name');
      return text;
    });
  }
  const where = node.child('where');
  if (where.present) {
    const text = where.string();
    if (text !== 'absent') where.fail(`must be "absent", got "${text}"${inRule}`);
    match.where = 'absent';
  }
  const features = node.child('features');
  if (features.present) {
    match.features = nonEmpty(features, inRule).map((feature) => {
      if (!(POLICY_FEATURES as readonly string[]).includes(feature)) {
        features.fail(`unknown feature "${feature}"${inRule}`, `features: ${POLICY_FEATURES.join(', ')}`);
      }
      return feature as PolicyFeature;
    });
  }
  return match;
}

function nonEmpty(node: ConfigNode, inRule: string): string[] {
  const list = node.stringList();
  if (list.length === 0) node.fail(`is empty${inRule}`, 'an empty list would never match; leave the key out instead');
  return list;
}
