// The parts of oidc-provider 9 that src/dev/oidc-issuer.ts uses (the package ships no types).
declare module 'oidc-provider' {
  import type http from 'node:http';

  export type AdapterPayload = Record<string, unknown> & { grantId?: string; userCode?: string; uid?: string; consumed?: number };

  export interface Adapter {
    upsert(id: string, payload: AdapterPayload, expiresIn?: number): Promise<void>;
    find(id: string): Promise<AdapterPayload | undefined>;
    findByUserCode(userCode: string): Promise<AdapterPayload | undefined>;
    findByUid(uid: string): Promise<AdapterPayload | undefined>;
    consume(id: string): Promise<void>;
    destroy(id: string): Promise<void>;
    revokeByGrantId(grantId: string): Promise<void>;
  }

  export interface OidcContext {
    body: unknown;
    type: string;
    status: number;
    oidc: {
      client?: { clientId: string };
      session?: { accountId?: string; grantIdFor(clientId: string): string | undefined };
      result?: { consent?: { grantId?: string } };
      provider: Provider;
    };
  }

  export interface Configuration {
    adapter?: (name: string) => Adapter;
    clients?: Record<string, unknown>[];
    clientAuthMethods?: string[];
    jwks?: { keys: Record<string, unknown>[] };
    cookies?: { keys: string[] };
    scopes?: string[];
    claims?: Record<string, string[]>;
    findAccount?: (ctx: OidcContext, id: string) => Promise<{ accountId: string; claims: () => Promise<Record<string, unknown>> } | undefined>;
    ttl?: Record<string, number>;
    features?: {
      devInteractions?: { enabled: boolean };
      clientCredentials?: { enabled: boolean };
      revocation?: { enabled: boolean };
      deviceFlow?: {
        enabled: boolean;
        charset?: string;
        mask?: string;
        userCodeInputSource?: (ctx: OidcContext, form: string, out: unknown, err: unknown) => Promise<void>;
        userCodeConfirmSource?: (ctx: OidcContext, form: string, client: unknown, deviceInfo: unknown, userCode: string) => Promise<void>;
        successSource?: (ctx: OidcContext) => Promise<void>;
      };
      resourceIndicators?: {
        enabled: boolean;
        defaultResource?: (ctx: OidcContext) => Promise<string>;
        useGrantedResource?: (ctx: OidcContext) => Promise<boolean>;
        getResourceServerInfo?: (ctx: OidcContext, resource: string, client: unknown) => Promise<Record<string, unknown>>;
      };
    };
    formats?: {
      customizers?: {
        jwt?: (ctx: OidcContext, token: unknown, jwt: { header: Record<string, unknown>; payload: Record<string, unknown> }) => Promise<unknown>;
      };
    };
    loadExistingGrant?: (ctx: OidcContext) => Promise<Grant | undefined>;
    interactions?: { url: (ctx: OidcContext, interaction: { uid: string }) => string };
    routes?: Record<string, string>;
    renderError?: (ctx: OidcContext, out: Record<string, unknown>, error: unknown) => Promise<void>;
    pkce?: { required: () => boolean };
  }

  export class Grant {
    constructor(options: { accountId?: string; clientId: string });
    static find(id: string): Promise<Grant | undefined>;
    addOIDCScope(scope: string): void;
    addResourceScope(resource: string, scope: string): void;
    save(): Promise<string>;
  }

  export interface InteractionDetails {
    uid: string;
    prompt: { name: string };
    params: Record<string, unknown>;
    grantId?: string;
    session?: { accountId: string };
  }

  export default class Provider {
    constructor(issuer: string, configuration: Configuration);
    proxy: boolean;
    on(event: string, listener: (...args: never[]) => void): this;
    Grant: typeof Grant;
    callback(): (req: http.IncomingMessage, res: http.ServerResponse) => Promise<void>;
    interactionDetails(req: http.IncomingMessage, res: http.ServerResponse): Promise<InteractionDetails>;
    interactionFinished(req: http.IncomingMessage, res: http.ServerResponse, result: Record<string, unknown>, options?: { mergeWithLastSubmission?: boolean }): Promise<void>;
  }
}
