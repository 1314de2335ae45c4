import { HoopError, errorMessage } from '../errors.js';
import type { HttpFetch, HttpResponse } from './http-fetch.js';

/** Entra ID's audience for federated credentials, and GitHub's documented default for Azure logins. */
export const DEFAULT_GITHUB_AUDIENCE = 'api://AzureADTokenExchange';

/**
 * A GitHub Actions job's own OIDC token, for a workload login with no secret: GET the runner's
 * `ACTIONS_ID_TOKEN_REQUEST_URL` with `audience=…`, authorized by `ACTIONS_ID_TOKEN_REQUEST_TOKEN`;
 * the answer is `{"value": "<JWT>"}`. The job needs `permissions: id-token: write`. Tokens live
 * minutes, so a fresh one is asked for at every refresh.
 */
export async function fetchGithubActionsToken(
  endpoint: { requestUrl: string; requestToken: string },
  audience: string,
  fetchImpl: HttpFetch = globalThis.fetch,
): Promise<string> {
  let url: URL;
  try {
    url = new URL(endpoint.requestUrl);
  } catch (err) {
    throw new HoopError('auth', 'github_oidc_failed', 'ACTIONS_ID_TOKEN_REQUEST_URL is not a URL', { cause: err });
  }
  url.searchParams.set('audience', audience);
  let response: HttpResponse;
  let text: string;
  try {
    response = await fetchImpl(url, { headers: { authorization: `Bearer ${endpoint.requestToken}`, accept: 'application/json' }, signal: AbortSignal.timeout(15_000) });
    text = await response.text();
  } catch (err) {
    throw new HoopError('network', 'github_oidc_unreachable', `cannot reach the GitHub Actions token endpoint: ${errorMessage(err)}`, { cause: err });
  }
  if (!response.ok) {
    throw new HoopError('auth', 'github_oidc_failed', `the GitHub Actions token endpoint answered HTTP ${response.status}`, {
      hint: 'the job needs `permissions: id-token: write`',
    });
  }
  let value: unknown;
  try {
    value = (JSON.parse(text) as { value?: unknown }).value;
  } catch {
    value = undefined;
  }
  if (typeof value !== 'string' || value.split('.').length !== 3) {
    throw new HoopError('auth', 'github_oidc_failed', 'the GitHub Actions token endpoint answered without a token');
  }
  return value;
}

/** The error when a login made from the runner's token is refreshed where the runner's variables are gone. */
export function githubOidcUnavailable(): HoopError {
  return new HoopError('auth', 'github_oidc_unavailable', 'this login uses the GitHub Actions job token, but ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN are not set', {
    hint: 'run hoopctl inside the job that logged in, with `permissions: id-token: write`',
  });
}
