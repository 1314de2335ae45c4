import type { LocalEndpoint } from '../client/local-endpoint.js';
import type { HeldReviewLookup } from './held-review-lookup.js';
import { MysqlSqlRunner } from './mysql-runner.js';
import { PostgresSqlRunner } from './postgres-runner.js';
import type { SqlRunner } from './sql-runner.js';

export interface EndpointRunnerOptions {
  /** PostgreSQL's `application_name` (MySQL has none to send). */
  applicationName: string;
  maxConnections?: number;
  /** How a MySQL runner learns that the gateway holds a statement (PostgreSQL hears a notice). */
  findHeld?: HeldReviewLookup;
}

/** The runner that speaks the tunnel's protocol: the session's answer says which database it is. */
export function runnerForEndpoint(endpoint: LocalEndpoint, options: EndpointRunnerOptions): SqlRunner {
  const limits = options.maxConnections === undefined ? {} : { maxConnections: options.maxConnections };
  if (endpoint.type === 'mysql') {
    return new MysqlSqlRunner(endpoint, { ...limits, ...(options.findHeld ? { findHeld: options.findHeld } : {}) });
  }
  return new PostgresSqlRunner({ ...endpoint, applicationName: options.applicationName }, limits);
}
