import { approvalKeyOf, describeApprovalOf, type ApprovalParser } from './approval-key.js';
import { findCopyOutTargets } from './copy-targets.js';
import { extractFacts } from './facts.js';
import { extractMysqlFacts } from './mysql/facts.js';
import { parseStatements, scanTokens } from './pg-parser.js';

const APPROVAL_PARSER: ApprovalParser = { parse: parseStatements, scan: scanTokens };

/**
 * The pure parser tasks a parser worker runs, by name. Inputs and results cross the thread
 * boundary by structured clone, so both are plain data. A new task is one line here.
 */
export const PARSER_TASKS = {
  facts: (input: { sql: string; searchPath: string[] }) => extractFacts(input.sql, { searchPath: input.searchPath }),
  mysqlFacts: (input: { sql: string; database: string }) => extractMysqlFacts(input.sql, { database: input.database }),
  copyOutTargets: (sql: string) => findCopyOutTargets(sql),
  approvalKey: (sql: string) => approvalKeyOf(sql, APPROVAL_PARSER),
  describeApproval: (sql: string) => describeApprovalOf(sql, APPROVAL_PARSER),
} satisfies Record<string, (input: never) => unknown>;

export type ParserTaskName = keyof typeof PARSER_TASKS;
export type ParserTaskInput<K extends ParserTaskName> = Parameters<(typeof PARSER_TASKS)[K]>[0];
export type ParserTaskOutput<K extends ParserTaskName> = ReturnType<(typeof PARSER_TASKS)[K]>;

/** Runs a task on this thread. */
export function runParserTask<K extends ParserTaskName>(task: K, input: ParserTaskInput<K>): ParserTaskOutput<K> {
  return (PARSER_TASKS[task] as (input: ParserTaskInput<K>) => ParserTaskOutput<K>)(input);
}
