import type { AuthConfigResponse } from '../api/types.js';
import { HoopError } from '../errors.js';
import type { HttpFetch, HttpResponse } from './http-fetch.js';

/** A gateway's answer to `GET /api/v1/auth/config`: what msal-node needs to sign in for it. */
export type LoginSettings = AuthConfigResponse;

/** Fetches and checks the gateway's login settings (no token needed). */
export async function fetchLoginSettings(gatewayUrl: string, fetchImpl: HttpFetch): Promise<LoginSettings> {
  const url = `${gatewayUrl}/api/v1/auth/config`;
  let response: HttpResponse;
  let body: unknown;
  try {
    response = await fetchImpl(url, { headers: { accept: 'application/json' }, signal: AbortSignal.timeout(15_000) });
    body = await response.json().catch(() => undefined);
  } catch (err) {
    throw new HoopError('network', 'gateway_unreachable', `cannot reach the gateway at ${gatewayUrl}: ${describeFailure(err)}`, {
      hint: tlsHint(err) ?? `check the gateway URL (--gateway URL or HOOPCTL_GATEWAY)`,
      cause: err,
    });
  }
  if (response.status === 404) {
    const apiError = (body as { error?: { message?: string; hint?: string } } | undefined)?.error;
    throw new HoopError('usage', 'login_not_configured', apiError?.message ?? `${gatewayUrl} publishes no login settings`, {
      hint: apiError?.hint ?? 'is this a hoopctl gateway? otherwise set HOOPCTL_TOKEN',
    });
  }
  const s = body as Partial<LoginSettings> | undefined;
  if (
    !response.ok ||
    !s ||
    typeof s.authority !== 'string' ||
    typeof s.clientId !== 'string' ||
    !Array.isArray(s.scopes) ||
    (s.protocolMode !== 'AAD' && s.protocolMode !== 'OIDC')
  ) {
    throw new HoopError('protocol', 'bad_auth_config', `the gateway's GET /api/v1/auth/config answered HTTP ${response.status} without usable login settings`, {
      hint: 'the gateway and hoopctl versions may not match',
    });
  }
  return {
    authority: s.authority,
    clientId: s.clientId,
    scopes: s.scopes,
    protocolMode: s.protocolMode,
    knownAuthorities: Array.isArray(s.knownAuthorities) ? s.knownAuthorities : [],
    clientCredentialScopes: Array.isArray(s.clientCredentialScopes) ? s.clientCredentialScopes : s.scopes,
  };
}

const TLS_TRUST_CODES = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_GET_ISSUER_CERT',
  'CERT_UNTRUSTED',
  'CERT_HAS_EXPIRED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** The socket-level cause of a fetch failure (`fetch failed` hides it in `cause`). */
export function rootCause(err: unknown): Error | undefined {
  let current: unknown = err;
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    const next = (current as { cause?: unknown }).cause;
    if (!(next instanceof Error)) return current;
    current = next;
  }
  return current instanceof Error ? current : undefined;
}

export function describeFailure(err: unknown): string {
  const cause = rootCause(err);
  if (!cause) return String(err);
  const code = (cause as NodeJS.ErrnoException).code;
  return code !== undefined && !cause.message.includes(code) ? `${code} (${cause.message})` : cause.message;
}

/** "pass --ca FILE" when the failure is a certificate the system does not trust. */
export function tlsHint(err: unknown): string | undefined {
  const code = (rootCause(err) as NodeJS.ErrnoException | undefined)?.code;
  if (code === undefined || !TLS_TRUST_CODES.has(code)) return undefined;
  return 'the server’s TLS certificate is not trusted: pass --ca FILE (or set HOOPCTL_CA) with the PEM of the CA that signed it';
}
