import fs from 'node:fs';
import type { Command } from 'commander';
import { createHttpFetch, readCaFile, type HttpFetch } from '../auth/http-fetch.js';
import { GatewayAuth } from '../auth/gateway-auth.js';
import { LoginState } from '../auth/login-state.js';
import type { KeyringFactory } from '../auth/secret-store.js';
import { GatewayClient, isPlainHttpOffLoopback, refusePlainHttp } from '../client/gateway-client.js';
import { HoopError, errorMessage } from '../errors.js';
import type { LaunchOptions, SignalSource } from '../client/launcher.js';
import { LocalTunnels } from '../client/local-tunnels.js';
import type { TunnelOptions } from '../client/tunnel.js';
import type { BackgroundSpawner, ParentChannel } from './background.js';
import type { IO } from './io.js';
import { noTokenError, resolveGatewaySettings, tokenStoreMode, type CliEnvironment } from './settings.js';

/** Everything commands need from outside; `main.ts` wires the real ones, tests their own. */
export interface CliDeps {
  io: IO;
  env: CliEnvironment;
  version: string;
  hostname: string;
  pid: number;
  now: () => number;
  fetch?: HttpFetch;
  /** Where SIGINT/SIGTERM are heard (`process`). */
  signals: SignalSource;
  launch: (options: LaunchOptions) => Promise<number>;
  /** Test knobs for the tunnel (backoff, timeouts). */
  tunnel?: Omit<Partial<TunnelOptions>, 'gateway' | 'listen'>;
  /** The OS keychain binding; tests pass one that fails or remembers in memory. */
  keyring?: KeyringFactory;
  /** A command's result when it is not 0; thrown errors are mapped elsewhere. */
  setExitCode(code: number): void;
  /** Starts `hoopctl ARGS…` detached, for `connect --background`; absent: background tunnels are not available. */
  spawnBackground?: BackgroundSpawner;
  /** In a background tunnel's own process: the channel to the `connect --background` that started it. */
  parentChannel?: ParentChannel;
  /** Our parent's pid, read again at each call (it changes when the parent dies); absent: not watched. */
  ppid?: () => number;
  /** Our stdin, opened only for `--exit-with-stdin` (opening a pipe makes it non-blocking for a wrapped command too). */
  stdin?: () => NodeJS.ReadableStream;
  /** Our stdout as a stream, for a protocol that owns it (`hoopctl mcp` speaks MCP on stdin/stdout). */
  stdout?: () => NodeJS.WritableStream;
  /** Whether a process runs (tests replace it); default: signal 0 and its start time. */
  isAlive?: (pid: number, start?: string) => boolean;
  /** Sends a signal to a process (`disconnect`); default `process.kill`. */
  kill?: (pid: number, signal: NodeJS.Signals) => void;
  /** How long `disconnect` waits for a tunnel to stop after SIGTERM (default 15 s). */
  disconnectGraceMs?: number;
}

/** The local tunnels' runtime directory; a usage error when there is none to use. */
export function localTunnelsFor(deps: CliDeps): LocalTunnels {
  if (deps.env.runtimeDir === undefined) {
    throw new HoopError('usage', 'no_runtime_dir', 'no place to keep local tunnel state', { hint: 'set XDG_RUNTIME_DIR (or TMPDIR) to a directory of yours' });
  }
  return new LocalTunnels(deps.env.runtimeDir, deps.isAlive ? { isAlive: deps.isAlive } : {});
}

/** Flags every command accepts (defined on the program). */
export interface GlobalFlags {
  gateway?: string;
  /** `--ca FILE`: a PEM to trust for the gateway and the issuer. */
  ca?: string;
  /** `--dangerously-allow-plain-http`. */
  allowPlainHttp?: boolean;
  json: boolean;
  color: boolean;
}

/** Reads the global flags as seen from a (sub)command's action. */
export function globalFlags(command: Command): GlobalFlags {
  const opts = command.optsWithGlobals<{ gateway?: string; ca?: string; json?: boolean; color?: boolean; dangerouslyAllowPlainHttp?: boolean }>();
  return { gateway: opts.gateway, ca: opts.ca, allowPlainHttp: opts.dangerouslyAllowPlainHttp === true, json: opts.json === true, color: opts.color !== false };
}

/**
 * Refuses an `http://` gateway off loopback unless the user allowed it loudly (flag or
 * HOOPCTL_DANGEROUSLY_ALLOW_PLAIN_HTTP), and then warns each time. Returns whether it is allowed.
 */
export function checkGatewayTransport(deps: CliDeps, flags: GlobalFlags, gatewayUrl: string): boolean {
  const allowed = flags.allowPlainHttp === true || deps.env.allowPlainHttp === true;
  if (!allowed) {
    refusePlainHttp(gatewayUrl);
    return false;
  }
  if (isPlainHttpOffLoopback(gatewayUrl)) {
    deps.io.err(`warning: talking to ${gatewayUrl} over plain HTTP: your access token, the session's database password and the SSH host key cross the network in clear\n`);
  }
  return true;
}

/** The login records in the config dir; undefined when there is no config dir (no HOME). */
export function loginStateFor(deps: CliDeps): LoginState | undefined {
  return deps.env.configDir === undefined ? undefined : new LoginState(deps.env.configDir);
}

/** `--ca FILE`, else HOOPCTL_CA: the PEM text and where it came from. */
export function caFor(deps: CliDeps, flags: GlobalFlags): { pem: string; file: string } | undefined {
  const file = flags.ca ?? deps.env.caFile;
  if (file === undefined) return undefined;
  try {
    return { pem: fs.readFileSync(file, 'utf8'), file };
  } catch (err) {
    throw new HoopError('usage', 'ca_unreadable', `cannot read the CA file ${file}: ${errorMessage(err)}`, { hint: 'pass --ca FILE (or HOOPCTL_CA) with a PEM certificate', cause: err });
  }
}

export function gatewayAuthFor(deps: CliDeps, state: LoginState): GatewayAuth {
  return new GatewayAuth({
    state,
    storeMode: tokenStoreMode(deps.env),
    fetchFor: (pem) => (deps.fetch && pem === undefined ? deps.fetch : createHttpFetch(pem)),
    keyring: deps.keyring,
  });
}

export function gatewayClientFor(deps: CliDeps, flags: GlobalFlags): GatewayClient {
  const state = loginStateFor(deps);
  const settings = resolveGatewaySettings(deps.env, flags, state?.currentGateway());
  const allowPlainHttp = checkGatewayTransport(deps, flags, settings.gatewayUrl);
  const ca = caFor(deps, flags);
  if (settings.token !== undefined) {
    return new GatewayClient({
      baseUrl: settings.gatewayUrl,
      token: settings.token,
      tokenSource: 'env',
      fetch: deps.fetch ?? createHttpFetch(ca?.pem),
      userAgent: `hoopctl/${deps.version}`,
      allowPlainHttp,
    });
  }
  const login = state?.login(settings.gatewayUrl);
  if (!state || !login) throw noTokenError(settings.gatewayUrl);
  const auth = gatewayAuthFor(deps, state);
  const pem = ca?.pem ?? readCaFile(login.caFile);
  return new GatewayClient({
    baseUrl: settings.gatewayUrl,
    token: async () => (await auth.accessToken(settings.gatewayUrl, deps.env.machine, pem)).accessToken,
    tokenSource: 'login',
    fetch: deps.fetch ?? createHttpFetch(pem),
    userAgent: `hoopctl/${deps.version}`,
    allowPlainHttp,
  });
}

