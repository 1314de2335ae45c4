import { HoopError } from '../errors.js';

/** What the CLI takes from its environment. Only this file reads `process.env`. */
export interface CliEnvironment {
  /** HOOPCTL_GATEWAY: the gateway's base URL. */
  gateway?: string;
  /** HOOPCTL_TOKEN: the bearer access token. */
  token?: string;
  /** HOOPCTL_DEBUG=1: stack traces on errors. */
  debug: boolean;
  /** NO_COLOR set to anything non-empty. */
  noColor: boolean;
  /** The environment a launched command inherits. */
  inherited: Readonly<Record<string, string | undefined>>;
}

export function readCliEnvironment(env: NodeJS.ProcessEnv = process.env): CliEnvironment {
  return {
    gateway: nonEmpty(env.HOOPCTL_GATEWAY),
    token: nonEmpty(env.HOOPCTL_TOKEN),
    debug: env.HOOPCTL_DEBUG === '1' || env.HOOPCTL_DEBUG === 'true',
    noColor: nonEmpty(env.NO_COLOR) !== undefined,
    inherited: env,
  };
}

export interface GatewaySettings {
  gatewayUrl: string;
  token: string;
}

/** The gateway URL (`--gateway` wins over HOOPCTL_GATEWAY) and token, or an error saying what to set. */
export function resolveGatewaySettings(env: CliEnvironment, flags: { gateway?: string }): GatewaySettings {
  const gatewayUrl = nonEmpty(flags.gateway) ?? env.gateway;
  if (gatewayUrl === undefined) {
    throw new HoopError('usage', 'no_gateway', 'no gateway URL given', {
      hint: 'pass --gateway URL or set HOOPCTL_GATEWAY',
    });
  }
  const protocol = URL.canParse(gatewayUrl) ? new URL(gatewayUrl).protocol : undefined;
  if (protocol !== 'http:' && protocol !== 'https:') {
    throw new HoopError('usage', 'bad_gateway_url', `"${gatewayUrl}" is not an http(s) URL`, {
      hint: 'pass --gateway https://gateway.example.com or set HOOPCTL_GATEWAY',
    });
  }
  if (env.token === undefined) {
    throw new HoopError('auth', 'no_token', 'no access token', {
      hint: 'set HOOPCTL_TOKEN to an access token for the gateway',
    });
  }
  return { gatewayUrl, token: env.token };
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}
