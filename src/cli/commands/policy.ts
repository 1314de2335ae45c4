import { Command } from 'commander';
import { examples } from '../help-examples.js';
import type { PolicyTestResponse } from '../../api/types.js';
import { gatewayClientFor, globalFlags, type CliDeps } from '../context.js';
import type { IO } from '../io.js';

export interface PolicyTestOptions {
  connection: string;
  sql: string;
  /** Test as these groups instead of the caller's (admins, or a subset of your own). */
  groups?: string[];
  json: boolean;
}

export interface PolicyGateway {
  testPolicy(connection: string, sql: string, groups?: string[]): Promise<PolicyTestResponse>;
}

/**
 * `hoopctl policy test <connection> "SQL"`: the facts the gateway reads from the SQL, the rule
 * that matches each statement and the decision, without running anything.
 */
export async function runPolicyTest(deps: { io: IO; gateway: PolicyGateway }, options: PolicyTestOptions): Promise<void> {
  const result = await deps.gateway.testPolicy(options.connection, options.sql, options.groups);
  const { io } = deps;
  if (options.json) {
    deps.io.outJson(result);
    return;
  }
  const paint = (decision: string) =>
    decision === 'allow' ? io.color.green(decision) : decision === 'deny' ? io.color.red(decision) : io.color.yellow(decision);
  io.out(`${paint(result.decision)}${result.rule ? ` by rule "${result.rule}"` : ' (default)'}: ${result.reason}\n`);
  result.statements.forEach((s, i) => {
    io.out(`\n${i + 1}. ${s.kind}${s.nested ? ' (nested)' : ''}: ${s.text.replace(/\s+/g, ' ').slice(0, 120)}\n`);
    printStatementFacts(io, s);
    if (s.wouldMask.length > 0) io.out(`   ${'masks'.padEnd(10)}${s.wouldMask.map((m) => `${m.column} (${m.strategy})`).join(', ')}\n`);
    printOutput(io, s.output);
    io.out(`   ${'decision'.padEnd(10)}${paint(s.decision)}${s.rule ? ` (rule "${s.rule}")` : ''}: ${s.reason}\n`);
  });
  if (result.detect.length > 0) io.out(`\nwould mask by content in every result: ${result.detect.join(', ')}\n`);
}

/** Each column the statement returns: what flows into it and how masking treats it. */
function printOutput(io: IO, output: PolicyTestResponse['statements'][number]['output']): void {
  if (output === undefined || output.length === 0) return;
  output.forEach((c, i) => {
    const sources = c.sources.length > 0 ? ` ← ${c.sources.join(', ')}` : '';
    const strategy = c.strategy === null ? 'not masked' : c.strategy === 'detect' ? 'content detection' : `masked: ${c.strategy}`;
    io.out(`   ${(i === 0 ? 'returns' : '').padEnd(10)}${c.column}${sources}: ${strategy}${c.note ? ` (${c.note})` : ''}\n`);
  });
}

/** What the policy read in one statement, one fact a line (empty facts left out). */
export function printStatementFacts(io: IO, s: PolicyTestResponse['statements'][number]): void {
  const facts: [string, string][] = [
    ['tables', s.tables.join(', ')],
    ['writes', s.writes.join(', ')],
    ['columns', s.columns.join(', ')],
    ['functions', s.functions.join(', ')],
    ['features', s.features.join(', ')],
    ['where', s.whereAbsent ? 'absent' : ''],
  ];
  for (const [name, value] of facts) if (value !== '') io.out(`   ${name.padEnd(10)}${value}\n`);
}

export function buildPolicyCommand(deps: CliDeps): Command {
  const policy = new Command('policy').addHelpText('after', examples(['hoopctl policy test orders-db "DELETE FROM orders"', 'hoopctl policy test orders-db "SELECT ssn FROM customers" --group agents --json'])).description("see how a connection's SQL policy decides statements");
  policy
    .command('test')
    .description('decide a statement without running it: facts, matching rule, decision')
    .argument('<connection>', 'connection name')
    .argument('<sql>', 'the SQL text (several statements allowed)')
    .option('--group <group>', 'test as a member of this group (repeatable; admins may name any group)', (value: string, previous: string[] = []) => [...previous, value])
    .option('--json', 'print one JSON object')
    .action(async (connection: string, sql: string, opts: { group?: string[] }, command: Command) => {
      const flags = globalFlags(command);
      await runPolicyTest({ io: deps.io, gateway: gatewayClientFor(deps, flags) }, { connection, sql, groups: opts.group, json: flags.json });
    });
  return policy;
}
