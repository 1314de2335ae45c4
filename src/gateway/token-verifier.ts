import { createRemoteJWKSet, customFetch, decodeJwt, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import { createHttpFetch, type HttpFetch } from '../auth/http-fetch.js';
import { HoopError } from '../errors.js';
import type { IssuerConfig } from './config.js';

/**
 * Who is calling, as read from a verified access token. The caller IS (`issuer`, `subject`);
 * `user` is a label for people to read, never compared to decide who owns what.
 */
export interface Identity {
  user: string;
  groups: string[];
  issuer: string;
  subject: string;
  expiresAt: Date | null;
}

export interface TokenVerifierOptions {
  issuers: IssuerConfig[];
  clockToleranceSec: number;
  now?: () => Date;
  fetch?: HttpFetch;
}

type KeySet = ReturnType<typeof createRemoteJWKSet>;

/** An authentication failure with a reason code the CLI turns into advice. */
function authError(code: string, message: string, cause?: unknown): HoopError {
  return new HoopError('auth', code, message, { cause, hint: 'log in again or get a fresh token' });
}

/**
 * Verifies OIDC access tokens (JWTs): signature against the issuer's JWKS (found through OIDC
 * discovery), `iss`, `aud`, `exp` and `nbf` with a small clock skew.
 */
export class TokenVerifier {
  private readonly keySets = new Map<string, Promise<KeySet>>();
  private readonly now: () => Date;
  private readonly fetchFn: HttpFetch;

  constructor(private readonly options: TokenVerifierOptions) {
    this.now = options.now ?? (() => new Date());
    this.fetchFn = options.fetch ?? globalThis.fetch;
  }

  async verify(token: string): Promise<Identity> {
    let claims: JWTPayload;
    try {
      claims = decodeJwt(token);
    } catch (err) {
      throw authError('malformed_token', 'the access token is not a JWT', err);
    }
    const issuer = this.options.issuers.find((candidate) => candidate.issuer === claims.iss);
    if (!issuer) throw authError('unknown_issuer', `tokens from issuer ${JSON.stringify(claims.iss ?? null)} are not accepted here`);

    const keySet = await this.keySetFor(issuer);
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, keySet, {
        issuer: issuer.issuer,
        audience: issuer.audience,
        clockTolerance: this.options.clockToleranceSec,
        currentDate: this.now(),
        requiredClaims: ['exp'],
      }));
    } catch (err) {
      throw mapJoseError(err);
    }
    const userClaims = [issuer.userClaim].flat();
    const user = userClaims.map((claim) => payload[claim]).find((value): value is string => typeof value === 'string' && value.length > 0);
    if (user === undefined) {
      throw authError('missing_user_claim', `the token has no ${userClaims.map((c) => `"${c}"`).join(' or ')} claim to name the user`);
    }
    if (typeof payload.sub !== 'string' || payload.sub.length === 0) {
      throw authError('missing_subject', 'the token has no "sub" claim: the gateway cannot tell who it belongs to');
    }
    const groups = [...new Set(groupsOf(payload, issuer))];
    return {
      user,
      groups,
      issuer: issuer.issuer,
      subject: payload.sub,
      expiresAt: typeof payload.exp === 'number' ? new Date(payload.exp * 1000) : null,
    };
  }

  private keySetFor(issuer: IssuerConfig): Promise<KeySet> {
    let pending = this.keySets.get(issuer.issuer);
    if (!pending) {
      pending = this.discover(issuer);
      this.keySets.set(issuer.issuer, pending);
      // A failed discovery is retried by the next request instead of being cached forever.
      pending.catch(() => this.keySets.delete(issuer.issuer));
    }
    return pending;
  }

  private async discover(issuer: IssuerConfig): Promise<KeySet> {
    const url = `${issuer.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
    let jwksUri: unknown;
    try {
      const response = await this.fetchFor(issuer)(url, { signal: AbortSignal.timeout(10_000) });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      jwksUri = ((await response.json()) as { jwks_uri?: unknown }).jwks_uri;
    } catch (err) {
      throw new HoopError('network', 'issuer_unreachable', `cannot read the OIDC discovery document at ${url}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    if (typeof jwksUri !== 'string') {
      throw new HoopError('internal', 'issuer_misconfigured', `the discovery document at ${url} has no jwks_uri`);
    }
    const fetchKeys = this.fetchFor(issuer);
    return createRemoteJWKSet(new URL(jwksUri), {
      timeoutDuration: 10_000,
      cooldownDuration: 30_000,
      ...(fetchKeys === globalThis.fetch ? {} : { [customFetch]: (url: string, init: { headers: Headers; signal: AbortSignal; redirect: 'manual' }) => jwksResponse(fetchKeys, url, init) }),
    });
  }

  /** The issuer's own CA (`ca:` in its config) wins over the gateway-wide fetch. */
  private fetchFor(issuer: IssuerConfig): HttpFetch {
    return issuer.ca !== undefined ? createHttpFetch(issuer.ca) : this.fetchFn;
  }
}

/** jose's key fetch through hoopctl's HTTP client: jose reads a `Response`'s status and, on a 200, its JSON. */
async function jwksResponse(fetchKeys: HttpFetch, url: string, init: { headers: Headers; signal: AbortSignal; redirect: 'manual' }): Promise<Response> {
  const answer = await fetchKeys(url, { headers: Object.fromEntries(init.headers), signal: init.signal, redirect: init.redirect });
  return new Response(answer.status === 200 ? await answer.text() : null, { status: answer.status, statusText: answer.statusText });
}

/** The groups named by the issuer's groups claim(s), ids mapped to names through `groupsMap`. */
function groupsOf(payload: JWTPayload, issuer: IssuerConfig): string[] {
  return [issuer.groupsClaim].flat().flatMap((claim) => {
    const raw = payload[claim];
    const values = Array.isArray(raw) ? raw : typeof raw === 'string' ? [raw] : [];
    return values.filter((g): g is string => typeof g === 'string').map((g) => issuer.groupsMap?.[g] ?? g);
  });
}

function mapJoseError(err: unknown): HoopError {
  if (err instanceof joseErrors.JWTExpired) return authError('token_expired', 'the access token has expired', err);
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    switch (err.claim) {
      case 'aud':
        return authError('bad_audience', 'the access token was not issued for this gateway (audience mismatch)', err);
      case 'iss':
        return authError('unknown_issuer', 'the access token comes from an issuer this gateway does not trust', err);
      case 'nbf':
        return authError('token_not_yet_valid', 'the access token is not valid yet (nbf is in the future)', err);
      default:
        return authError('bad_claims', `the access token's "${err.claim}" claim failed: ${err.message}`, err);
    }
  }
  if (
    err instanceof joseErrors.JWSSignatureVerificationFailed ||
    err instanceof joseErrors.JWKSNoMatchingKey ||
    err instanceof joseErrors.JWKSMultipleMatchingKeys
  ) {
    return authError('bad_signature', 'the access token signature does not verify against the issuer keys', err);
  }
  if (err instanceof joseErrors.JOSEAlgNotAllowed || err instanceof joseErrors.JOSENotSupported) {
    return authError('bad_signature', `the access token uses an algorithm this gateway does not accept: ${(err as Error).message}`, err);
  }
  if (err instanceof joseErrors.JWKSTimeout || err instanceof joseErrors.JWKSInvalid) {
    return new HoopError('network', 'issuer_unreachable', `cannot fetch the issuer keys: ${(err as Error).message}`, { cause: err });
  }
  if (err instanceof joseErrors.JOSEError) return authError('malformed_token', `the access token is invalid: ${err.message}`, err);
  return new HoopError('internal', 'token_check_failed', `token check failed: ${(err as Error).message}`, { cause: err });
}
