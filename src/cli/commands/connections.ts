import { Command } from 'commander';
import { examples } from '../help-examples.js';
import type { ConnectionInfo } from '../../api/types.js';
import { gatewayClientFor, globalFlags, type CliDeps } from '../context.js';
import type { IO } from '../io.js';
import { printTable } from '../table.js';

export interface ConnectionsOptions {
  json: boolean;
}

export interface ConnectionsDeps {
  io: IO;
  gateway: { listConnections(): Promise<ConnectionInfo[]> };
}

/** Lists the connections the caller may open sessions on. */
export async function runConnections(deps: ConnectionsDeps, options: ConnectionsOptions): Promise<void> {
  const connections = await deps.gateway.listConnections();
  if (options.json) {
    deps.io.outJson({ connections });
    return;
  }
  if (connections.length === 0) {
    deps.io.err('no connections available to you\n');
    return;
  }
  printTable(
    deps.io,
    ['NAME', 'TYPE', 'DATABASE', 'DEFAULT', 'MAX'],
    connections.map((c) => [c.name, c.type, c.database, c.defaultDuration, c.maxDuration]),
  );
}

export function buildConnectionsCommand(deps: CliDeps): Command {
  return new Command('connections').addHelpText('after', examples(['hoopctl connections', 'hoopctl connections --json']))
    .description('list the database connections you may use')
    .option('--json', 'print JSON')
    .action(async (_opts: unknown, command: Command) => {
      const flags = globalFlags(command);
      await runConnections({ io: deps.io, gateway: gatewayClientFor(deps, flags) }, { json: flags.json });
    });
}
