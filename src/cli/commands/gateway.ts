import { Command, Option } from 'commander';
import { parseDuration } from '../../duration.js';
import { HoopError } from '../../errors.js';
import { loadGatewayConfig } from '../../gateway/config.js';
import { startGateway } from '../../gateway/gateway.js';
import { jsonLineLogger, type Logger } from '../../logger.js';
import { textLineLogger } from '../cli-logger.js';
import type { CliDeps } from '../context.js';
import { examples } from '../help-examples.js';
import { waitForStopSignal } from '../stop-signal.js';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface GatewayServeOptions {
  config: string;
  logLevel: LogLevel;
  /** `text`: readable lines; `json`: one object per line (for log shippers); `auto`: text on a terminal, else JSON. */
  logFormat: 'auto' | 'text' | 'json';
  /** On SIGTERM/SIGINT, how long database connections may run on before they are ended (57P01). */
  drainTimeoutMs: number;
}

/** Runs the gateway until SIGINT/SIGTERM; logs on stderr, as text on a terminal and JSON lines otherwise. */
export async function runGatewayServe(deps: CliDeps, options: GatewayServeOptions): Promise<void> {
  const config = loadGatewayConfig(options.config, deps.env.inherited as NodeJS.ProcessEnv);
  const logger = gatewayLogger(deps, options);
  const gateway = await startGateway(config, { logger, version: deps.version });
  const connections = [...config.connections.keys()].join(', ');
  logger.info('ready', { api: gateway.apiUrl, ssh: `${gateway.ssh.host}:${gateway.ssh.port}`, connections });
  const signal = await waitForStopSignal(deps.signals);
  logger.info('draining: not ready, taking no new connections', { signal, timeoutMs: options.drainTimeoutMs });
  const { drained, remaining } = await gateway.drain(options.drainTimeoutMs);
  logger.info(drained ? 'drained; shutting down' : 'drain timed out; ending the remaining connections (57P01)', { remaining });
  await gateway.close();
}

function gatewayLogger(deps: CliDeps, options: GatewayServeOptions): Logger {
  const text = options.logFormat === 'text' || (options.logFormat === 'auto' && deps.io.stderrIsTTY);
  return text ? textLineLogger(deps.io, options.logLevel) : jsonLineLogger((line) => deps.io.err(line), options.logLevel);
}

export function buildGatewayCommand(deps: CliDeps): Command {
  const gateway = new Command('gateway').addHelpText('after', examples(['hoopctl gateway serve --config gateway.yaml'])).description('run the hoopctl gateway');
  gateway
    .command('serve')
    .description('serve the API and SSH endpoint described by a gateway.yaml')
    .requiredOption('-c, --config <file>', 'gateway config file (YAML)')
    .option('--log-level <level>', 'debug, info, warn or error', 'info')
    .addOption(new Option('--log-format <format>', 'text or json (default: text on a terminal, JSON lines otherwise)').choices(['auto', 'text', 'json']).default('auto'))
    .option('--drain-timeout <duration>', 'on SIGTERM: how long open database connections may finish before they are ended', '25s')
    .addHelpText('after', examples([
      'ORDERS_DB_PASSWORD=… hoopctl gateway serve --config gateway.yaml',
      'hoopctl gateway serve -c gateway.yaml --log-format json 2>>gateway.log',
      'AZURE_TOKEN_CREDENTIALS=prod hoopctl gateway serve -c gateway.yaml   # on Azure: password: azure-ad, keyvault: references',
    ]))
    .action(async (opts: { config: string; logLevel: string; logFormat: 'auto' | 'text' | 'json'; drainTimeout: string }) => {
      const level = opts.logLevel;
      if (level !== 'debug' && level !== 'info' && level !== 'warn' && level !== 'error') {
        throw new HoopError('usage', 'bad_log_level', `unknown log level "${level}"`, { hint: 'use debug, info, warn or error' });
      }
      const drainTimeoutMs = parseDuration(opts.drainTimeout);
      if (drainTimeoutMs < 0) throw new HoopError('usage', 'bad_duration', '--drain-timeout must not be negative', { hint: 'e.g. --drain-timeout 25s (0s: end connections at once)' });
      await runGatewayServe(deps, { config: opts.config, logLevel: level, logFormat: opts.logFormat, drainTimeoutMs });
    });
  return gateway;
}
