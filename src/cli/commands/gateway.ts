import { Command } from 'commander';
import { HoopError } from '../../errors.js';
import { loadGatewayConfig } from '../../gateway/config.js';
import { startGateway } from '../../gateway/gateway.js';
import { jsonLineLogger } from '../../logger.js';
import type { CliDeps } from '../context.js';
import { waitForStopSignal } from '../stop-signal.js';

export interface GatewayServeOptions {
  config: string;
  logLevel: 'debug' | 'info' | 'warn' | 'error';
}

/** Runs the gateway until SIGINT/SIGTERM; logs are JSON lines on stderr. */
export async function runGatewayServe(deps: CliDeps, options: GatewayServeOptions): Promise<void> {
  const config = loadGatewayConfig(options.config, deps.env.inherited as NodeJS.ProcessEnv);
  const logger = jsonLineLogger((line) => deps.io.err(line), options.logLevel);
  const gateway = await startGateway(config, { logger });
  const connections = [...config.connections.keys()].join(', ');
  logger.info('ready', { api: gateway.apiUrl, ssh: `${gateway.ssh.host}:${gateway.ssh.port}`, connections });
  await waitForStopSignal(deps.signals);
  logger.info('shutting down');
  await gateway.close();
}

export function buildGatewayCommand(deps: CliDeps): Command {
  const gateway = new Command('gateway').description('run the hoopctl gateway');
  gateway
    .command('serve')
    .description('serve the API and SSH endpoint described by a gateway.yaml')
    .requiredOption('-c, --config <file>', 'gateway config file (YAML)')
    .option('--log-level <level>', 'debug, info, warn or error', 'info')
    .action(async (opts: { config: string; logLevel: string }) => {
      const level = opts.logLevel;
      if (level !== 'debug' && level !== 'info' && level !== 'warn' && level !== 'error') {
        throw new HoopError('usage', 'bad_log_level', `unknown log level "${level}"`, { hint: 'use debug, info, warn or error' });
      }
      await runGatewayServe(deps, { config: opts.config, logLevel: level });
    });
  return gateway;
}
