import type { Command } from 'commander';
import { GatewayClient } from '../client/gateway-client.js';
import type { LaunchOptions, SignalSource } from '../client/launcher.js';
import type { TunnelOptions } from '../client/tunnel.js';
import type { IO } from './io.js';
import { resolveGatewaySettings, type CliEnvironment } from './settings.js';

/** Everything commands need from outside; `main.ts` wires the real ones, tests their own. */
export interface CliDeps {
  io: IO;
  env: CliEnvironment;
  version: string;
  hostname: string;
  pid: number;
  now: () => number;
  fetch?: typeof globalThis.fetch;
  /** Where SIGINT/SIGTERM are heard (`process`). */
  signals: SignalSource;
  launch: (options: LaunchOptions) => Promise<number>;
  /** Test knobs for the tunnel (backoff, timeouts). */
  tunnel?: Omit<Partial<TunnelOptions>, 'gateway' | 'listen'>;
  /** A command's result when it is not 0; thrown errors are mapped elsewhere. */
  setExitCode(code: number): void;
}

/** Flags every command accepts (defined on the program). */
export interface GlobalFlags {
  gateway?: string;
  json: boolean;
  color: boolean;
}

/** Reads the global flags as seen from a (sub)command's action. */
export function globalFlags(command: Command): GlobalFlags {
  const opts = command.optsWithGlobals<{ gateway?: string; json?: boolean; color?: boolean }>();
  return { gateway: opts.gateway, json: opts.json === true, color: opts.color !== false };
}

export function gatewayClientFor(deps: CliDeps, flags: GlobalFlags): GatewayClient {
  const settings = resolveGatewaySettings(deps.env, flags);
  return new GatewayClient({
    baseUrl: settings.gatewayUrl,
    token: settings.token,
    fetch: deps.fetch,
    userAgent: `hoopctl/${deps.version}`,
  });
}
