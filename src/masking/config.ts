/**
 * Reads the `masking:` block of a connection:
 *
 * ```yaml
 * masking:
 *   columns: { customers.email: hash, "*.phone": partial, public.customers.ssn: redact }
 *   detect: [email, credit_card]          # list form: every detector redacts
 *   # detect: { email: hash, credit_card: partial }
 *   groups: { dba: off, support: { detect: [credit_card] } }   # a group's block replaces the rest
 * ```
 */
import type { ConfigNode } from '../gateway/config-schema.js';
import { HoopError } from '../errors.js';
import { columnPatternProblem } from './column-pattern.js';
import { DETECTOR_NAMES, MASK_STRATEGIES, type ColumnRule, type DetectorName, type DetectRule, type MaskingConfig } from './types.js';

export const MIN_HASH_KEY_BYTES = 16;

/** The masking config at `node`, or undefined when the block is absent. */
export function parseMaskingConfig(node: ConfigNode, options: { hashKey: Buffer }): MaskingConfig | undefined {
  if (!node.present) return undefined;
  if (options.hashKey.length < MIN_HASH_KEY_BYTES) {
    throw new HoopError('internal', 'masking_hash_key', `masking hash key must be at least ${MIN_HASH_KEY_BYTES} bytes`);
  }
  node.onlyKeys(['columns', 'detect', 'groups']);
  const config = parseRules(node, options.hashKey);
  const groupsNode = node.child('groups');
  if (groupsNode.present) {
    for (const [group, groupNode] of groupsNode.entries()) {
      if (groupNode.value === 'off') {
        config.groups[group] = 'off';
      } else if (typeof groupNode.value === 'object' && groupNode.value !== null && !Array.isArray(groupNode.value)) {
        groupNode.onlyKeys(['columns', 'detect']);
        config.groups[group] = parseRules(groupNode, options.hashKey);
      } else {
        groupNode.fail('must be off or a mapping with columns and detect', 'e.g. groups: { dba: off }');
      }
    }
  }
  return config;
}

function parseRules(node: ConfigNode, hashKey: Buffer): MaskingConfig {
  return { columns: parseColumns(node.child('columns')), detect: parseDetect(node.child('detect')), groups: {}, hashKey };
}

function parseColumns(node: ConfigNode): ColumnRule[] {
  if (!node.present) return [];
  const seen = new Set<string>();
  return node.entries().map(([pattern, strategyNode]) => {
    const problem = columnPatternProblem(pattern);
    if (problem) strategyNode.fail(problem, 'e.g. customers.email, "*.phone" or public.customers.ssn');
    const key = pattern.toLowerCase();
    if (seen.has(key)) strategyNode.fail(`"${pattern}" is listed twice (patterns ignore case)`);
    seen.add(key);
    return { pattern, strategy: strategyNode.oneOf(MASK_STRATEGIES) };
  });
}

function parseDetect(node: ConfigNode): DetectRule[] {
  if (!node.present) return [];
  const rules: DetectRule[] = [];
  const add = (detector: string, strategy: DetectRule['strategy'], at: ConfigNode) => {
    if (!DETECTOR_NAMES.includes(detector as DetectorName)) {
      at.fail(`unknown detector "${detector}"`, `detectors: ${[...DETECTOR_NAMES].sort().join(', ')}`);
    }
    if (rules.some((r) => r.detector === detector)) at.fail(`detector "${detector}" is listed twice`);
    rules.push({ detector: detector as DetectorName, strategy });
  };
  if (Array.isArray(node.value) || typeof node.value === 'string') {
    for (const detector of node.stringList()) add(detector, 'redact', node);
  } else if (typeof node.value === 'object') {
    for (const [detector, strategyNode] of node.entries()) add(detector, strategyNode.oneOf(MASK_STRATEGIES), strategyNode);
  } else {
    node.fail('must be a list of detectors or a mapping detector → strategy', 'e.g. detect: [email, credit_card]');
  }
  return rules;
}
