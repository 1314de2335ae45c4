import crypto from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair } from 'jose';
import Provider, { type Adapter, type AdapterPayload, type Configuration } from 'oidc-provider';
import { createHttpFetch, type HttpFetch } from '../auth/http-fetch.js';
import { createLoopbackTls } from './loopback-ca.js';

/**
 * A development OpenID provider on `oidc-provider` (a certified implementation) for the demo
 * and the tests: the device authorization grant (RFC 8628), refresh tokens, client credentials
 * with a secret or a signed client assertion (private_key_jwt), JWT access tokens for the
 * gateway's audience carrying `preferred_username` and `groups` (or `roles` for machines),
 * TLS on loopback with a CA made at start, and small pages where a user enters the code,
 * signs in and confirms.
 *
 *   hoopctl ──POST /device/auth──▶ issuer            → user_code, verification_uri
 *   person  ──GET /device?user_code──▶ confirm ──▶ /interaction/:uid (sign in) ──▶ /device/callback
 *   hoopctl ──POST /token (device_code, polled)──▶ issuer → access, id and refresh tokens
 *
 * `entraTenant` mounts it the way Entra ID lays out its endpoints:
 * `/<tenant>/v2.0/.well-known/openid-configuration`, `/<tenant>/oauth2/v2.0/{token,devicecode}`,
 * issuer `…/<tenant>/v2.0`.
 */
export interface DevUser {
  username: string;
  password: string;
  /** Group names or ids (Entra puts group object ids here). */
  groups: string[];
  name?: string;
}

export interface DevMachineClient {
  clientId: string;
  /** client_secret_post / client_secret_basic. */
  secret?: string;
  /** private_key_jwt: the public keys that verify the client's assertions. */
  jwks?: { keys: Record<string, unknown>[] };
  /** App roles put in the access token's `roles` claim. */
  roles?: string[];
}

export interface DevIssuerOptions {
  audience?: string;
  /** Public client id of hoopctl (device code + refresh). */
  clientId?: string;
  users?: DevUser[];
  machines?: DevMachineClient[];
  /** `false`: plain http on loopback. Default true (a CA is made at start; see `caCert`). */
  tls?: boolean;
  accessTokenTtlSec?: number;
  deviceCodeTtlSec?: number;
  /** Answer `slow_down` to a device-code poll that comes sooner than this after the previous one (RFC 8628 §3.5). */
  minPollIntervalSec?: number;
  /** Lay the endpoints out like Entra ID under this tenant id. */
  entraTenant?: string;
  /** Put `interval` in device authorization answers, as Entra ID does; oidc-provider sends none by default. */
  interval?: number;
}

export interface DevIssuer {
  /** The `iss` of its tokens. */
  issuer: string;
  /** Base URL of the server, e.g. `https://127.0.0.1:43123`. */
  origin: string;
  /** The gateway's `auth.login` block for this issuer. */
  login: { authority: string; clientId: string; scopes: string[]; protocolMode: 'OIDC' | 'AAD'; knownAuthorities: string[] };
  audience: string;
  /** PEM of the CA that signed its TLS certificate (undefined without TLS). */
  caCert?: string;
  users: DevUser[];
  /** Device-code polls seen so far, for tests. */
  polls: number;
  /** Forgets every grant, refresh token and device code (a refresh then fails with invalid_grant). */
  forgetGrants(): void;
  close(): Promise<void>;
}

export const DEV_USERS: readonly DevUser[] = [
  { username: 'demo@hoop.local', password: 'demo', groups: ['agents'], name: 'Demo Agent' },
  { username: 'dba@hoop.local', password: 'demo', groups: ['dba', 'admins'], name: 'Dana DBA' },
];

export const DEV_CLIENT_ID = 'hoopctl';

/** Starts the issuer on a free loopback port. */
export async function startDevOidcIssuer(options: DevIssuerOptions = {}): Promise<DevIssuer> {
  const audience = options.audience ?? 'api://hoop-gateway';
  const clientId = options.clientId ?? DEV_CLIENT_ID;
  const users = [...(options.users ?? DEV_USERS)];
  const machines = options.machines ?? [];
  const tls = options.tls === false ? undefined : createLoopbackTls({ name: 'hoopctl dev issuer' });
  const scopeSession = `${audience}/session`;
  const scopeDefault = `${audience}/.default`;
  const store = new MemoryStore();
  const minPollMs = (options.minPollIntervalSec ?? 0) * 1000;
  const lastPoll = new Map<string, number>();

  const server = tls ? https.createServer({ cert: tls.cert, key: tls.key }) : http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `${tls ? 'https' : 'http'}://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const tenant = options.entraTenant;
  const mount = tenant ? `/${tenant}` : '';
  const issuer = tenant ? `${origin}/${tenant}/v2.0` : origin;

  const signing = await generateKeyPair('ES256', { extractable: true });
  const jwk = { ...(await exportJWK(signing.privateKey)), kid: `dev-${crypto.randomBytes(4).toString('hex')}`, alg: 'ES256', use: 'sig' };
  const findUser = (id: string) => users.find((u) => u.username === id);

  const configuration: Configuration = {
    adapter: (name: string) => store.adapter(name),
    clients: [
      { client_id: clientId, client_name: 'hoopctl', id_token_signed_response_alg: 'ES256', token_endpoint_auth_method: 'none', grant_types: ['urn:ietf:params:oauth:grant-type:device_code', 'refresh_token'], response_types: [], redirect_uris: [] },
      ...machines.map((m) => ({
        client_id: m.clientId,
        client_name: m.clientId,
        id_token_signed_response_alg: 'ES256',
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        ...(m.secret !== undefined
          ? { client_secret: m.secret, token_endpoint_auth_method: 'client_secret_post' }
          : { token_endpoint_auth_method: 'private_key_jwt', token_endpoint_auth_signing_alg: 'ES256', jwks: m.jwks }),
      })),
    ] as Configuration['clients'],
    clientAuthMethods: ['none', 'client_secret_post', 'client_secret_basic', 'private_key_jwt'],
    jwks: { keys: [jwk as never] },
    cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
    scopes: ['openid', 'profile', 'offline_access'],
    claims: { openid: ['sub'], profile: ['name', 'preferred_username'] },
    findAccount: async (_ctx, id) => {
      const user = findUser(id);
      if (!user) return undefined;
      return { accountId: id, claims: async () => ({ sub: id, name: user.name ?? id, preferred_username: user.username }) };
    },
    ttl: {
      AccessToken: options.accessTokenTtlSec ?? 3600,
      ClientCredentials: options.accessTokenTtlSec ?? 3600,
      DeviceCode: options.deviceCodeTtlSec ?? 600,
      IdToken: 3600,
      RefreshToken: 14 * 86400,
      Grant: 14 * 86400,
      Interaction: 600,
      Session: 86400,
    },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      deviceFlow: {
        enabled: true,
        charset: 'base-20',
        mask: '****-****',
        userCodeInputSource: async (ctx, form, _out, err) => {
          const problem = (err as { name?: string } | undefined)?.name === 'AbortedError' ? 'The sign-in was denied.' : err ? 'That code is not valid. Try again.' : undefined;
          ctx.body = page('Sign in to hoopctl', `${problem ? `<p class="red">${problem}</p>` : '<p>Enter the code shown by hoopctl.</p>'}${form}<button type="submit" form="op.deviceInputForm">Continue</button>`);
        },
        userCodeConfirmSource: async (ctx, form, _client, _deviceInfo, userCode) => {
          ctx.body = page(
            'Confirm the device',
            `<p>hoopctl shows this code:</p><p><code>${escapeHtml(userCode)}</code></p>${form}` +
              '<button type="submit" form="op.deviceConfirmForm" name="confirm" value="yes">Continue</button>' +
              '<button type="submit" form="op.deviceConfirmForm" name="abort" value="yes">Deny</button>',
          );
        },
        successSource: async (ctx) => {
          ctx.body = page('Signed in', '<p>You are signed in to hoopctl. You can close this page.</p>');
        },
      },
      resourceIndicators: {
        enabled: true,
        defaultResource: async () => audience,
        useGrantedResource: async () => true,
        getResourceServerInfo: async (_ctx, resource) => {
          if (resource !== audience) throw new Error(`unknown resource ${resource}`);
          return {
            scope: `${scopeSession} ${scopeDefault}`,
            audience,
            accessTokenTTL: options.accessTokenTtlSec ?? 3600,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'ES256' } },
          };
        },
      },
      revocation: { enabled: true },
    },
    formats: {
      customizers: {
        jwt: async (_ctx, token, jwt) => {
          const accountId = (token as { accountId?: string }).accountId;
          const user = accountId ? findUser(accountId) : undefined;
          if (user) {
            jwt.payload.preferred_username = user.username;
            jwt.payload.name = user.name ?? user.username;
            jwt.payload.groups = user.groups;
          } else {
            const machine = machines.find((m) => m.clientId === (token as { clientId?: string }).clientId);
            jwt.payload.azp = machine?.clientId;
            jwt.payload.roles = machine?.roles ?? [];
          }
          return jwt;
        },
      },
    },
    loadExistingGrant: async (ctx) => {
      const grantId = ctx.oidc.result?.consent?.grantId ?? ctx.oidc.session?.grantIdFor(ctx.oidc.client!.clientId);
      return grantId ? ctx.oidc.provider.Grant.find(grantId) : undefined;
    },
    interactions: { url: (_ctx, interaction) => `${mount}/interaction/${interaction.uid}` },
    routes: tenant
      ? { token: '/oauth2/v2.0/token', device_authorization: '/oauth2/v2.0/devicecode', code_verification: '/oauth2/v2.0/deviceauth', jwks: '/discovery/v2.0/keys', authorization: '/oauth2/v2.0/authorize', end_session: '/oauth2/v2.0/logout' }
      : {},
    renderError: async (ctx, out) => {
      ctx.type = 'html';
      ctx.body = page('Sign-in failed', `<p class="red">${escapeHtml(String(out.error))}: ${escapeHtml(String(out.error_description ?? ''))}</p>`);
    },
    pkce: { required: () => false },
  };

  const provider = new Provider(issuer, configuration);
  provider.proxy = false;
  if (options.interval !== undefined) {
    const interval = options.interval;
    provider.on('device_authorization.success', (_ctx: unknown, body: Record<string, unknown>) => void (body.interval = interval));
  }
  let polls = 0;
  const callback = provider.callback();

  server.on('request', (req: http.IncomingMessage & { originalUrl?: string }, res: http.ServerResponse) => {
    const url = req.url ?? '/';
    if (tenant && url.startsWith(`/${tenant}/v2.0/.well-known/`)) req.url = url.replace(`/${tenant}/v2.0`, `/${tenant}`);
    if (mount && !req.url!.startsWith(`${mount}/`)) {
      res.writeHead(404).end();
      return;
    }
    req.originalUrl = req.url;
    req.url = req.url!.slice(mount.length) || '/';
    if (req.method === 'POST' && req.url.split('?')[0]!.endsWith('/token')) {
      polls++;
      if (minPollMs > 0) {
        void paced(req, res);
        return;
      }
    }
    if (req.url.startsWith('/interaction/')) {
      interaction(provider, users, audience, scopeSession, req, res).catch((err: unknown) => {
        res.writeHead(500, { 'content-type': 'text/html' }).end(page('Error', `<p>${escapeHtml((err as Error).message)}</p>`));
      });
      return;
    }
    void callback(req, res);
  });

  /** Answers `slow_down` to a device-code poll that comes too soon; hands the parsed form on otherwise. */
  async function paced(req: http.IncomingMessage & { body?: unknown }, res: http.ServerResponse): Promise<void> {
    const form = new URLSearchParams(await readBody(req));
    if (form.get('grant_type') === 'urn:ietf:params:oauth:grant-type:device_code') {
      const code = form.get('device_code') ?? '';
      const previous = lastPoll.get(code);
      lastPoll.set(code, Date.now());
      if (previous !== undefined && Date.now() - previous < minPollMs) {
        res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'slow_down', error_description: 'polling too quickly' }));
        return;
      }
    }
    req.body = Object.fromEntries(form); // oidc-provider reads a consumed request's `body`
    void callback(req, res);
  }

  return {
    issuer,
    origin,
    audience,
    caCert: tls?.caCert,
    users,
    get polls() {
      return polls;
    },
    login: {
      authority: tenant ? `${origin}/${tenant}` : issuer,
      clientId,
      scopes: [scopeSession],
      protocolMode: tenant ? 'AAD' : 'OIDC',
      knownAuthorities: [new URL(origin).host],
    },
    forgetGrants: () => store.clear(),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Sign-in page for an interaction: a username and password form; consent is implied for hoopctl. */
async function interaction(provider: Provider, users: DevUser[], audience: string, scope: string, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const details = await provider.interactionDetails(req, res);
  const { prompt, params, uid } = details;
  if (prompt.name === 'login') {
    if (req.method === 'POST') {
      const form = new URLSearchParams(await readBody(req));
      const user = users.find((u) => u.username === form.get('username'));
      if (!user || !safeEqual(user.password, form.get('password') ?? '')) {
        res.writeHead(200, { 'content-type': 'text/html' }).end(loginPage(uid, 'Unknown user or wrong password.'));
        return;
      }
      await provider.interactionFinished(req, res, { login: { accountId: user.username } }, { mergeWithLastSubmission: false });
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html' }).end(loginPage(uid));
    return;
  }
  // consent: hoopctl is a first-party client, so the grant covers what it asked for.
  const grant = details.grantId ? await provider.Grant.find(details.grantId) : new provider.Grant({ accountId: details.session!.accountId, clientId: String(params.client_id) });
  grant!.addOIDCScope(String(params.scope ?? 'openid'));
  grant!.addResourceScope(audience, `${scope} ${audience}/.default`);
  const grantId = await grant!.save();
  await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
}

function loginPage(uid: string, error?: string): string {
  return page(
    'Sign in',
    `${error ? `<p class="red">${escapeHtml(error)}</p>` : ''}<form method="post" action="${escapeHtml(uid)}" id="login">` +
      '<input name="username" placeholder="username" autofocus><input name="password" type="password" placeholder="password">' +
      '<button type="submit">Sign in</button></form>',
  );
}

function page(title: string, body: string): string {
  return `<!DOCTYPE html><html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>` +
    '<style>body{font-family:sans-serif;max-width:28em;margin:3em auto}.red{color:#b00}code{font-size:1.6em}input,button{display:block;margin:.5em 0;font-size:1em}</style>' +
    `</head><body><h1>${escapeHtml(title)}</h1>${body}</body></html>`;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function safeEqual(a: string, b: string): boolean {
  const x = crypto.createHash('sha256').update(a).digest();
  const y = crypto.createHash('sha256').update(b).digest();
  return crypto.timingSafeEqual(x, y);
}

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      text += chunk;
      if (text.length > 16_384) req.destroy(new Error('form too large'));
    });
    req.on('end', () => resolve(text));
    req.on('error', reject);
  });
}

/** oidc-provider's storage, in memory, per issuer (the bundled one is shared by the whole process). */
class MemoryStore {
  private readonly items = new Map<string, { payload: AdapterPayload; expiresAt: number }>();

  clear(): void {
    this.items.clear();
  }

  adapter(model: string): Adapter {
    const key = (id: string) => `${model}:${id}`;
    const live = (k: string) => {
      const item = this.items.get(k);
      if (!item) return undefined;
      if (item.expiresAt <= Date.now()) {
        this.items.delete(k);
        return undefined;
      }
      return item.payload;
    };
    const findBy = (field: 'userCode' | 'uid', value: string) => {
      for (const [k, item] of this.items) if (k.startsWith(`${model}:`) && item.payload[field] === value) return live(k);
      return undefined;
    };
    return {
      upsert: async (id, payload, expiresIn) => {
        // Kept a minute past expiry, so the provider can still answer `expired_token` (RFC 8628 §3.5).
        this.items.set(key(id), { payload, expiresAt: expiresIn ? Date.now() + expiresIn * 1000 + 60_000 : Infinity });
      },
      find: async (id) => live(key(id)),
      findByUserCode: async (userCode) => findBy('userCode', userCode),
      findByUid: async (uid) => findBy('uid', uid),
      consume: async (id) => {
        const payload = live(key(id));
        if (payload) payload.consumed = Math.floor(Date.now() / 1000);
      },
      destroy: async (id) => {
        this.items.delete(key(id));
      },
      revokeByGrantId: async (grantId) => {
        for (const [k, item] of this.items) if (item.payload.grantId === grantId) this.items.delete(k);
      },
    };
  }
}

/** What a person does in a browser, done with HTTP requests: open the verification page, enter the code, sign in, confirm (or deny). */
export async function approveDeviceCode(options: {
  verificationUri: string;
  userCode: string;
  username: string;
  password: string;
  deny?: boolean;
  ca?: string;
}): Promise<void> {
  const browser = new FormBrowser(createHttpFetch(options.ca));
  let html = await browser.get(options.verificationUri);
  html = await browser.submit(html, 'op.deviceInputForm', { user_code: options.userCode });
  html = await browser.submit(html, 'op.deviceConfirmForm', options.deny ? { abort: 'yes' } : { confirm: 'yes' });
  if (options.deny) {
    if (!html.includes('The sign-in was denied.')) throw new Error('the issuer did not confirm the denial');
    return;
  }
  if (html.includes('id="login"')) html = await browser.submit(html, 'login', { username: options.username, password: options.password });
  if (!html.includes('You are signed in')) throw new Error(`device sign-in did not finish: ${html.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').slice(0, 300)}`);
}

/** Just enough of a browser for the issuer's pages: a cookie jar, redirects, and posting a form by id. */
class FormBrowser {
  private readonly cookies = new Map<string, string>();
  private url = '';

  constructor(private readonly fetchImpl: HttpFetch) {}

  async get(url: string): Promise<string> {
    return this.request(url, 'GET');
  }

  async submit(html: string, formId: string, fields: Record<string, string>): Promise<string> {
    const form = new RegExp(`<form[^>]*id="${formId.replace('.', '\\.')}"[^>]*>([\\s\\S]*?)</form>`).exec(html);
    if (!form) throw new Error(`no form ${formId} on ${this.url}: ${html.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').slice(0, 300)}`);
    const action = /action="([^"]*)"/.exec(form[0])?.[1] ?? this.url;
    const body = new URLSearchParams();
    for (const input of form[1]!.matchAll(/<input[^>]*>/g)) {
      const name = /name="([^"]*)"/.exec(input[0])?.[1];
      const value = /value="([^"]*)"/.exec(input[0])?.[1] ?? '';
      if (name !== undefined) body.set(name, value.replace(/&#(\d+);/g, (_, c: string) => String.fromCharCode(Number(c))).replace(/&amp;/g, '&'));
    }
    for (const [name, value] of Object.entries(fields)) body.set(name, value);
    return this.request(new URL(action.replace(/&amp;/g, '&'), this.url).href, 'POST', body.toString());
  }

  private async request(url: string, method: string, body?: string): Promise<string> {
    for (let hops = 0; hops < 10; hops++) {
      this.url = url;
      const headers: Record<string, string> = { cookie: [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ') };
      if (body !== undefined) headers['content-type'] = 'application/x-www-form-urlencoded';
      const response = await this.fetchImpl(url, { method, headers, body, redirect: 'manual' });
      for (const line of response.headers.get('set-cookie')?.split(/,(?=\s*[^;,\s]+=)/) ?? []) {
        const [pair] = line.split(';');
        const eq = pair!.indexOf('=');
        if (eq > 0) this.cookies.set(pair!.slice(0, eq).trim(), pair!.slice(eq + 1).trim());
      }
      const location = response.headers.get('location');
      if (response.status >= 300 && response.status < 400 && location) {
        url = new URL(location, url).href;
        method = 'GET';
        body = undefined;
        continue;
      }
      return response.text();
    }
    throw new Error(`too many redirects from ${url}`);
  }
}
