import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { LoginSettings } from './login-config.js';

/** How a gateway's login was made; later commands refresh the same way. */
export type LoginKind = 'device_code' | 'client_credentials' | 'federated_token';

/** What hoopctl remembers about one gateway's login. No secret is kept here. */
export interface GatewayLogin {
  gatewayUrl: string;
  kind: LoginKind;
  settings: LoginSettings;
  /** The client that signed in: the gateway's public client, or AZURE_CLIENT_ID for CI logins. */
  clientId: string;
  authority: string;
  /** msal's account id (device code logins). */
  homeAccountId?: string;
  username?: string;
  /** Where the token cache lives: the OS keychain or the 0600 file. */
  store: 'keyring' | 'file';
  /** The federated token file re-read at each refresh. */
  federatedTokenFile?: string;
  /** Or: the GitHub Actions job's own OIDC token, asked for again (with this audience) at each refresh. */
  githubActions?: { audience: string };
  /** A PEM file to trust for the gateway and the issuer (`--ca` at login). */
  caFile?: string;
  loggedInAt: string;
}

interface StateFile {
  version: 1;
  /** The gateway of the last login, used when neither --gateway nor HOOPCTL_GATEWAY is given. */
  currentGateway?: string;
  logins: Record<string, GatewayLogin>;
}

/**
 * `$XDG_CONFIG_HOME/hoopctl/config.json` (0600, folder 0700): the last gateway and one login
 * record per gateway URL. Read synchronously so commands can fail at once when nothing is there.
 */
export class LoginState {
  readonly file: string;

  constructor(readonly dir: string) {
    this.file = path.join(dir, 'config.json');
  }

  /** The folder of the file-based token cache (`tokens/`, 0700). */
  get tokenDir(): string {
    return path.join(this.dir, 'tokens');
  }

  currentGateway(): string | undefined {
    return this.read().currentGateway;
  }

  login(gatewayUrl: string): GatewayLogin | undefined {
    return this.read().logins[normalizeGatewayUrl(gatewayUrl)];
  }

  logins(): GatewayLogin[] {
    return Object.values(this.read().logins);
  }

  save(login: GatewayLogin): void {
    const state = this.read();
    state.logins[login.gatewayUrl] = login;
    state.currentGateway = login.gatewayUrl;
    this.write(state);
  }

  remove(gatewayUrl: string): GatewayLogin | undefined {
    const state = this.read();
    const key = normalizeGatewayUrl(gatewayUrl);
    const removed = state.logins[key];
    delete state.logins[key];
    if (state.currentGateway === key) state.currentGateway = Object.keys(state.logins)[0];
    this.write(state);
    return removed;
  }

  private read(): StateFile {
    let text: string;
    try {
      text = fs.readFileSync(this.file, 'utf8');
    } catch {
      return { version: 1, logins: {} };
    }
    try {
      const parsed = JSON.parse(text) as Partial<StateFile>;
      return { version: 1, currentGateway: parsed.currentGateway, logins: typeof parsed.logins === 'object' && parsed.logins ? parsed.logins : {} };
    } catch {
      return { version: 1, logins: {} }; // a damaged file is replaced by the next login
    }
  }

  private write(state: StateFile): void {
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const temp = `${this.file}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`;
    fs.writeFileSync(temp, JSON.stringify(state, null, 2) + '\n', { mode: 0o600, flag: 'wx' });
    fs.renameSync(temp, this.file);
  }
}

/** One spelling per gateway: origin plus path, no trailing slash (the cache key). */
export function normalizeGatewayUrl(url: string): string {
  const parsed = new URL(url);
  return `${parsed.origin}${parsed.pathname.replace(/\/+$/, '')}`;
}
